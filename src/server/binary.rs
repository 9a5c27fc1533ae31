//! Binary-protocol dispatch (placeholder until the binary codec lands).
//!
//! Owns: executing binary requests against the store and writing binary responses.

use super::conn::{Conn, Ctx, Step};

/// Handle one binary request at the start of `input`.
pub fn step(_conn: &mut Conn, input: &[u8], _out: &mut Vec<u8>, _ctx: &Ctx<'_>) -> Step {
    // Not served yet: close, so binary clients fail fast instead of hanging.
    Step::Close(input.len())
}

//! Meta-protocol dispatch (placeholder until the meta parser lands).
//!
//! Owns: executing meta commands (mg, ms, md, ma, me) against the store.

use super::conn::{Conn, Ctx, Step};
use crate::protocol::text::reply;

/// Handle one meta command whose line is `input[..len]` (`consumed` bytes with its newline).
pub fn step(_conn: &mut Conn, _input: &[u8], _len: usize, consumed: usize, out: &mut Vec<u8>, _ctx: &Ctx<'_>) -> Step {
    out.extend_from_slice(reply::ERROR);
    Step::Done(consumed)
}

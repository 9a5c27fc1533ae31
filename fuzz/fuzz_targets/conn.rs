//! Stateful fuzzing of the connection layer: the bytes are a script of clients (text, meta,
//! binary) sending split requests, stopping reading, disconnecting mid-value or mid-reply,
//! while items being sent are overwritten, deleted and evicted; `sim::run` checks every reply
//! against its model and that nothing stays pinned or reserved. See `rustcached::server::sim`.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use rustcached::server::{sim, Shared};

/// One server state per process: `sim::run` clears what an earlier script left.
static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    sim::run(SHARED.get_or_init(sim::shared), data);
});

//! What the store reports about its work while someone is listening (memcached's `watch`):
//! every item lookup, every store attempt, every eviction.
//!
//! Owns: the `Events` trait and the `Switch` the store reads before calling it. The store calls
//! it at three places and knows nothing of who listens or how lines are written;
//! `server::watch` implements it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{Mode, StoreOutcome};

/// Whether the listener wants any report. The store reads it before each hook with one
/// relaxed load and no call, so with nobody listening a lookup pays one branch (asking the
/// listener through `dyn Events` cost ~9 instructions a lookup, callgrind); the listener sets
/// it whenever what it wants changes.
#[derive(Debug, Default)]
pub struct Switch(AtomicBool);

impl Switch {
    pub fn set(&self, on: bool) {
        self.0.store(on, Ordering::Relaxed);
    }

    #[inline]
    pub fn on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

pub trait Events: Send + Sync {
    /// The store takes this listener: keep `switch` on while any report below is wanted
    /// (none is made while it is off).
    fn attach(&self, switch: Arc<Switch>);
    /// A lookup of `key`: the item's slab class and value length when found.
    fn fetched(&self, key: &[u8], found: Option<(u8, usize)>);
    /// A store attempt and its outcome; `class` is the class the item needs (0 if none),
    /// `size` the value length stored (after append/prepend, the new total).
    fn stored(&self, key: &[u8], mode: Mode, outcome: &StoreOutcome, exptime: i64, class: u8, size: usize);
    /// An item evicted to make room: whether it was ever fetched, its remaining TTL (-1: none),
    /// seconds since its last access, its class.
    fn evicted(&self, key: &[u8], fetched: bool, ttl: i64, last_access: u32, class: u8);
}

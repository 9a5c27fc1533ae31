//! What the store reports about its work while someone is listening (memcached's `watch`):
//! every item lookup, every store attempt, every eviction.
//!
//! Owns: the `Events` trait only. The store calls it at three places and knows nothing of
//! who listens or how lines are written; `server::watch` implements it. `on()` is checked
//! first, so with nobody listening a lookup costs one relaxed load.

use super::{Mode, StoreOutcome};

pub trait Events: Send + Sync {
    /// Anyone listening at all (cheap; checked before any other call).
    fn on(&self) -> bool;
    /// A lookup of `key`: the item's slab class and value length when found.
    fn fetched(&self, key: &[u8], found: Option<(u8, usize)>);
    /// A store attempt and its outcome; `class` is the class the item needs (0 if none),
    /// `size` the value length stored (after append/prepend, the new total).
    fn stored(&self, key: &[u8], mode: Mode, outcome: &StoreOutcome, exptime: i64, class: u8, size: usize);
    /// An item evicted to make room: whether it was ever fetched, its remaining TTL (-1: none),
    /// seconds since its last access, its class.
    fn evicted(&self, key: &[u8], fetched: bool, ttl: i64, last_access: u32, class: u8);
}

//! Handles on items that outlive one call into the store: a value being received
//! (`Reservation`) and a value being sent (`Pinned`).
//!
//! Owns: the reservation of a chunk before its value has arrived (so a value is read straight
//! into slab memory, counted against `-m`, instead of into a connection buffer) and the pin
//! counts that keep an item's chunk allocated and its value unchanged while a reply that
//! references it is still unsent. Knows nothing of sockets or protocols.
//!
//! Rules kept here and in `Store` (see `Store::release`):
//! * A reserved chunk is RESERVED: the eviction hand and the crawler skip it, a page mover
//!   gives up on its page. Only the `Reservation` writes its value; dropping it frees the chunk.
//! * A pinned item has `BIT_PINNED` set and an entry in `Store::pins`. Pins are taken under the
//!   item's shard lock. Eviction skips pinned items; a pinned item that is unlinked (deleted,
//!   replaced, expired) becomes RESERVED instead of free, and the last unpin frees it. Nothing
//!   rewrites a pinned item's value in place (incr/decr build a new item instead), so readers of
//!   `Pinned::value` need no lock.
//!
//! Both handles own an `Arc<Store>`, so the slab pages they point into live as long as they do.

use std::sync::Arc;

use super::item::{ItemPtr, BIT_PINNED, STATE_RESERVED};
use super::slab::ChunkRef;
use super::{Entry, Mode, Store, StoreOutcome, StoreReq};

/// A chunk reserved for an item whose value is still arriving.
pub struct Reservation {
    store: Arc<Store>,
    r: ChunkRef,
    it: ItemPtr,
    /// Still ours to free (false once committed).
    live: bool,
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation").field("chunk", &self.r).field("len", &self.it.vlen()).finish()
    }
}

impl Reservation {
    pub(super) fn new(store: Arc<Store>, r: ChunkRef, it: ItemPtr) -> Reservation {
        Reservation { store, r, it, live: true }
    }

    /// Length of the value.
    pub fn len(&self) -> usize {
        self.it.vlen()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value bytes received so far (and whatever the chunk held before, past them).
    pub fn value(&self) -> &[u8] {
        self.it.value()
    }

    /// The value bytes, to be filled.
    pub fn value_mut(&mut self) -> &mut [u8] {
        // The chunk is RESERVED and only this handle knows it: the borrow is exclusive.
        self.it.value_mut()
    }

    /// Store the reserved item as `req` says (`req.key` must be the reserved key; `req.value`
    /// is ignored: the reserved value is used). Returns the outcome and the stored length, as
    /// `Store::store_sized`.
    pub fn commit(mut self, req: &StoreReq<'_>) -> (StoreOutcome, usize) {
        debug_assert_eq!(req.key, self.it.key());
        let store = self.store.clone();
        let done = if matches!(req.mode, Mode::Append | Mode::Prepend) {
            // The reserved chunk only stages the new part; the item is rebuilt around it.
            let mut r2 = *req;
            r2.value = self.it.value();
            store.store_concat(&r2)
        } else {
            self.live = false;
            (store.store_whole_in(req, self.r), self.it.vlen())
        };
        // A value that arrived over several reads is reported like one that came whole.
        store.report_store(req, &done);
        done
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.live {
            self.store.abandon(self.r);
        }
    }
}

/// A reference to a live item's value that keeps it allocated and unchanged until dropped.
pub struct Pinned {
    store: Arc<Store>,
    r: ChunkRef,
    it: ItemPtr,
}

impl std::fmt::Debug for Pinned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pinned").field("chunk", &self.r).field("len", &self.it.vlen()).finish()
    }
}

impl Pinned {
    /// The value. Immutable while pinned (module rules), so no lock is needed.
    pub fn value(&self) -> &[u8] {
        self.it.value()
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        self.store.unpin(self.r, self.it);
    }
}

/// Pin count of one chunk, in `Store::pins`.
#[derive(Debug, Default)]
pub(super) struct PinCount {
    pub count: u32,
    /// Unlinked while pinned: the last unpin frees the chunk.
    pub unlinked: bool,
}

impl Entry<'_> {
    /// Pin this item so its value can be sent after the shard lock is released. `owner` must be
    /// the `Arc` of the store this entry came from.
    pub fn pin(&self, owner: &Arc<Store>) -> Pinned {
        assert!(std::ptr::eq(Arc::as_ptr(owner), self.store), "pin: entry from another store");
        let r = self.chunk;
        let mut pins = self.store.pins.lock();
        pins.entry(r).or_default().count += 1;
        self.it.set_bits(BIT_PINNED);
        drop(pins);
        Pinned { store: owner.clone(), r, it: self.it }
    }
}

impl Store {
    /// Items currently pinned by unsent replies.
    pub fn pinned(&self) -> usize {
        self.pins.lock().len()
    }

    /// Drop one pin; the last one on an unlinked chunk frees it.
    fn unpin(&self, r: ChunkRef, it: ItemPtr) {
        let mut pins = self.pins.lock();
        let Some(p) = pins.get_mut(&r) else {
            debug_assert!(false, "unpin of an unpinned chunk");
            return;
        };
        p.count -= 1;
        if p.count > 0 {
            return;
        }
        let unlinked = p.unlinked;
        pins.remove(&r);
        it.clear_bits(BIT_PINNED);
        drop(pins);
        if unlinked {
            self.slabs.free(r, it);
        }
    }

    /// Free a chunk just unlinked from the index (its shard lock held), unless a reply still
    /// references it: then it stays allocated (RESERVED, invisible to eviction) until unpinned.
    pub(super) fn release(&self, r: ChunkRef, it: ItemPtr) {
        if it.bits() & BIT_PINNED != 0 {
            let mut pins = self.pins.lock();
            if let Some(p) = pins.get_mut(&r) {
                p.unlinked = true;
                it.set_state(STATE_RESERVED);
                return;
            }
        }
        self.slabs.free(r, it);
    }

    /// Reserve a chunk for an item of this key, value length and client flags, evicting as a
    /// store would. `TooLarge` when it can never fit, `NoMemory` when no chunk can be had.
    pub fn reserve(self: &Arc<Self>, key: &[u8], vlen: usize, flags: u32) -> Result<Reservation, StoreOutcome> {
        if key.len() > super::KEY_MAX
            || self.too_large(key.len(), vlen, flags)
            || self.slabs.class_for(super::item::item_size(key.len(), vlen)).is_none()
        {
            return Err(StoreOutcome::TooLarge);
        }
        let size = super::item::item_size_flags(key.len(), vlen, flags);
        let Some(r) = self.alloc(size) else {
            return Err(StoreOutcome::NoMemory);
        };
        let class = self.slabs.class_for(size).unwrap_or(0);
        let it = self.slabs.ptr_in(class, r);
        it.init(class, key, flags, 0, self.clock.now(), vlen);
        Ok(Reservation::new(self.clone(), r, it))
    }
}

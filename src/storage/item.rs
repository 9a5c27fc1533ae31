//! The item header and its accessors: how one cached item is laid out inside a slab chunk.
//!
//! Owns: the byte layout of an item (`HEADER` bytes of metadata, then the key, then the value)
//! and the only raw-pointer reads and writes of item memory. Knows nothing of locks, shards or
//! protocols; the rules for *when* each field may be touched are stated here and kept by
//! `storage::Store`:
//!
//! * `state`, `bits`, `exptime`, `atime` are atomics: any thread may read or update them.
//! * `klen`, `class` and the key bytes are written once while the chunk is RESERVED (owned by
//!   one thread) and are immutable while it is LINKED; the evictor and the page mover read them
//!   while holding the class lock or while the page is draining, when the chunk cannot be
//!   reallocated.
//! * `cas`, `vlen`, `flags` and the value bytes are written while RESERVED, or while LINKED by
//!   the holder of the item's shard lock, and read under that lock.
//!
//! Layout (24 bytes, 4 more for non-zero client flags, then key, then value; chunks are
//! 8-aligned). As in memcached, flags that are 0 take no space; bit 7 of the bits byte says
//! whether they are present (set once by `init`, so the class byte can hold ids up to 255).
//! ```text
//!  0 cas u64 | 8 exptime u32 | 12 atime u32 | 16 vlen u32
//! 20 state u8 | 21 bits u8 (bit 7: flags present) | 22 klen u8 | 23 class u8
//! 24 [flags u32] | key.. | value..
//! ```

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};

/// Bytes of metadata before the key (4 more when the client flags are not 0).
pub const HEADER: usize = 24;

/// Bit of the bits byte: client flags are stored (non-zero). Written by `init` only and never
/// cleared while the chunk holds the item; `bits()` does not show it.
const HAS_FLAGS: u8 = 0x80;

const OFF_CAS: usize = 0;
const OFF_EXPTIME: usize = 8;
const OFF_ATIME: usize = 12;
const OFF_VLEN: usize = 16;
const OFF_STATE: usize = 20;
const OFF_BITS: usize = 21;
const OFF_KLEN: usize = 22;
const OFF_CLASS: usize = 23;
const OFF_FLAGS: usize = 24;

/// Chunk state: on no list, owned by nobody (free list or uncarved).
pub const STATE_FREE: u8 = 0;
/// Allocated by one thread that is filling it; not reachable through the index.
pub const STATE_RESERVED: u8 = 1;
/// Reachable through its shard's index.
pub const STATE_LINKED: u8 = 2;

/// Accessed since the eviction hand last passed (second chance).
pub const BIT_ACTIVE: u8 = 1;
/// Fetched at least once since stored (meta `h`, `expired_unfetched`, `evicted_unfetched`).
pub const BIT_FETCHED: u8 = 2;
/// Marked stale by a meta invalidation (`X`).
pub const BIT_STALE: u8 = 4;
/// A client already won the right to recache this item (`W` sent, later fetches see `Z`).
pub const BIT_TOKEN_SENT: u8 = 8;
/// The client gave the key base64-encoded (meta `b`): replies echo it the same way.
pub const BIT_KEY_BINARY: u8 = 16;
/// Referenced by an unsent reply (`storage::handle`): not evicted, not rewritten in place, and
/// not freed when unlinked until the last reference is dropped.
pub const BIT_PINNED: u8 = 32;

/// A pointer to the start of an item's chunk.
///
/// Only `storage` creates these, from chunks of live slab pages, so the pointer is always
/// valid for at least `HEADER + klen + vlen` bytes (the chunk size) for the life of the store;
/// pages are never returned to the OS while the store exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ItemPtr(NonNull<u8>);

// SAFETY: an ItemPtr is an address into slab memory shared by all threads; which thread may
// touch which bytes is governed by the locking rules in the module docs.
unsafe impl Send for ItemPtr {}
unsafe impl Sync for ItemPtr {}

impl ItemPtr {
    /// Wrap the start of a chunk.
    ///
    /// # Safety
    /// `p` must point to a chunk of slab memory that is 8-aligned and stays allocated for as
    /// long as the returned pointer is used.
    pub(super) unsafe fn from_raw(p: NonNull<u8>) -> ItemPtr {
        ItemPtr(p)
    }

    #[inline]
    fn at(self, off: usize) -> *mut u8 {
        // SAFETY: every offset used is inside the chunk (see the type's invariant).
        unsafe { self.0.as_ptr().add(off) }
    }

    #[inline]
    fn atomic_u32(self, off: usize) -> &'static AtomicU32 {
        // SAFETY: the offsets are 4-aligned inside an 8-aligned chunk that outlives every use;
        // these fields are only ever accessed atomically.
        unsafe { &*(self.at(off) as *const AtomicU32) }
    }

    #[inline]
    fn atomic_u8(self, off: usize) -> &'static AtomicU8 {
        // SAFETY: as above; u8 needs no alignment.
        unsafe { &*(self.at(off) as *const AtomicU8) }
    }

    #[inline]
    fn read_u32(self, off: usize) -> u32 {
        // SAFETY: in-bounds aligned read; the caller holds the right per the module rules.
        unsafe { std::ptr::read(self.at(off) as *const u32) }
    }

    #[inline]
    fn write_u32(self, off: usize, v: u32) {
        // SAFETY: in-bounds aligned write; the caller holds the right per the module rules.
        unsafe { std::ptr::write(self.at(off) as *mut u32, v) }
    }

    /// Write a whole new item into a RESERVED chunk (the caller owns it exclusively).
    /// `value_len` bytes of value space are left for `value_mut` to fill.
    pub(super) fn init(self, class: u8, key: &[u8], flags: u32, exptime: u32, now: u32, value_len: usize) {
        debug_assert!(key.len() <= u8::MAX as usize);
        // Written first because key_off() reads it.
        self.atomic_u8(OFF_BITS).store(if flags != 0 { HAS_FLAGS } else { 0 }, Ordering::Relaxed);
        // SAFETY: exclusive, in bounds.
        unsafe {
            *self.at(OFF_KLEN) = key.len() as u8;
            *self.at(OFF_CLASS) = class;
        }
        if flags != 0 {
            self.write_u32(OFF_FLAGS, flags);
        }
        // SAFETY: the chunk is RESERVED (exclusively ours) and at least item_size(key, value,
        // flags) bytes long because the caller chose the class from that size.
        unsafe {
            std::ptr::write(self.at(OFF_CAS) as *mut u64, 0);
            std::ptr::copy_nonoverlapping(key.as_ptr(), self.at(self.key_off()), key.len());
        }
        self.atomic_u32(OFF_EXPTIME).store(exptime, Ordering::Relaxed);
        self.atomic_u32(OFF_ATIME).store(now, Ordering::Relaxed);
        self.write_u32(OFF_VLEN, value_len as u32);
    }

    /// The chunk's address (for prefetching; never dereferenced as such).
    #[inline]
    pub(super) fn addr(self) -> *const u8 {
        self.0.as_ptr()
    }

    /// Chunk state (FREE / RESERVED / LINKED).
    #[inline]
    pub(super) fn state(self) -> u8 {
        self.atomic_u8(OFF_STATE).load(Ordering::Acquire)
    }

    #[inline]
    pub(super) fn set_state(self, s: u8) {
        self.atomic_u8(OFF_STATE).store(s, Ordering::Release)
    }

    #[inline]
    pub(super) fn bits(self) -> u8 {
        self.atomic_u8(OFF_BITS).load(Ordering::Relaxed) & !HAS_FLAGS
    }

    #[inline]
    pub(super) fn set_bits(self, b: u8) {
        self.atomic_u8(OFF_BITS).fetch_or(b & !HAS_FLAGS, Ordering::Relaxed);
    }

    #[inline]
    pub(super) fn clear_bits(self, b: u8) {
        self.atomic_u8(OFF_BITS).fetch_and(!(b & !HAS_FLAGS), Ordering::Relaxed);
    }

    /// Whether the client flags are stored (immutable while the chunk holds the item).
    #[inline]
    fn has_flags(self) -> bool {
        self.atomic_u8(OFF_BITS).load(Ordering::Relaxed) & HAS_FLAGS != 0
    }

    #[inline]
    pub(super) fn exptime(self) -> u32 {
        self.atomic_u32(OFF_EXPTIME).load(Ordering::Relaxed)
    }

    #[inline]
    pub(super) fn set_exptime(self, t: u32) {
        self.atomic_u32(OFF_EXPTIME).store(t, Ordering::Relaxed)
    }

    /// Last access (or store) time, relative seconds.
    #[inline]
    pub(super) fn atime(self) -> u32 {
        self.atomic_u32(OFF_ATIME).load(Ordering::Relaxed)
    }

    #[inline]
    pub(super) fn set_atime(self, t: u32) {
        self.atomic_u32(OFF_ATIME).store(t, Ordering::Relaxed)
    }

    #[inline]
    pub(super) fn cas(self) -> u64 {
        // SAFETY: aligned in-bounds read under the shard lock (module rules).
        unsafe { std::ptr::read(self.at(OFF_CAS) as *const u64) }
    }

    #[inline]
    pub(super) fn set_cas(self, cas: u64) {
        // SAFETY: aligned in-bounds write under the shard lock or while RESERVED.
        unsafe { std::ptr::write(self.at(OFF_CAS) as *mut u64, cas) }
    }

    #[inline]
    pub(super) fn flags(self) -> u32 {
        if self.has_flags() {
            self.read_u32(OFF_FLAGS)
        } else {
            0
        }
    }

    /// Offset of the key: after the header and, when present, the flags.
    #[inline]
    fn key_off(self) -> usize {
        HEADER + if self.has_flags() { 4 } else { 0 }
    }

    #[inline]
    pub(super) fn vlen(self) -> usize {
        self.read_u32(OFF_VLEN) as usize
    }

    #[inline]
    pub(super) fn klen(self) -> usize {
        // SAFETY: immutable while linked; in bounds.
        unsafe { *self.at(OFF_KLEN) as usize }
    }

    /// Slab class the chunk belongs to.
    #[inline]
    pub(super) fn class(self) -> u8 {
        // SAFETY: immutable while the chunk is allocated; in bounds.
        unsafe { *self.at(OFF_CLASS) }
    }

    /// Bytes this item occupies (header + key + value), as reported in `bytes`.
    #[inline]
    pub(super) fn total(self) -> usize {
        self.key_off() + self.klen() + self.vlen()
    }

    #[inline]
    pub(super) fn key<'a>(self) -> &'a [u8] {
        // SAFETY: the key is immutable while the chunk is allocated; callers only hold the
        // slice while the item cannot be freed and reused (module rules).
        unsafe { std::slice::from_raw_parts(self.at(self.key_off()), self.klen()) }
    }

    #[inline]
    pub(super) fn value<'a>(self) -> &'a [u8] {
        // SAFETY: read under the shard lock; the returned slice must not outlive it.
        unsafe { std::slice::from_raw_parts(self.at(self.key_off() + self.klen()), self.vlen()) }
    }

    /// The value bytes, for filling a RESERVED item or rewriting a LINKED one in place under
    /// its shard lock.
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub(super) fn value_mut<'a>(self) -> &'a mut [u8] {
        // SAFETY: exclusive access per the module rules; in bounds.
        unsafe { std::slice::from_raw_parts_mut(self.at(self.key_off() + self.klen()), self.vlen()) }
    }
}

/// Bytes a chunk needs for an item with this key and value, whatever its flags (the upper
/// bound: used to decide whether an item can ever fit).
#[inline]
pub fn item_size(klen: usize, vlen: usize) -> usize {
    HEADER + 4 + klen + vlen
}

/// Bytes a chunk needs for an item with this key, value and client flags.
#[inline]
pub fn item_size_flags(klen: usize, vlen: usize, flags: u32) -> usize {
    HEADER + if flags != 0 { 4 } else { 0 } + klen + vlen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let mut mem = vec![0u64; 32];
        let p = NonNull::new(mem.as_mut_ptr() as *mut u8).unwrap();
        // SAFETY: `mem` is 8-aligned, 256 bytes, and outlives `it`.
        let it = unsafe { ItemPtr::from_raw(p) };
        it.set_state(STATE_RESERVED);
        it.init(3, b"hello", 0xdead_beef, 77, 5, 4);
        it.value_mut().copy_from_slice(b"abcd");
        it.set_cas(42);
        assert_eq!(it.key(), b"hello");
        assert_eq!(it.value(), b"abcd");
        assert_eq!(it.flags(), 0xdead_beef);
        assert_eq!(it.exptime(), 77);
        assert_eq!(it.atime(), 5);
        assert_eq!(it.cas(), 42);
        assert_eq!(it.class(), 3);
        assert_eq!(it.state(), STATE_RESERVED);
        assert_eq!(it.total(), HEADER + 4 + 5 + 4);
        assert_eq!(it.total(), item_size_flags(5, 4, 0xdead_beef));
        // flags 0 take no space
        let mut mem2 = vec![0u64; 32];
        // SAFETY: as above.
        let it2 = unsafe { ItemPtr::from_raw(NonNull::new(mem2.as_mut_ptr() as *mut u8).unwrap()) };
        it2.init(3, b"hello", 0, 0, 0, 2);
        it2.value_mut().copy_from_slice(b"xy");
        assert_eq!((it2.flags(), it2.class(), it2.key(), it2.value()), (0, 3, &b"hello"[..], &b"xy"[..]));
        assert_eq!(it2.total(), HEADER + 5 + 2);
        it.set_bits(BIT_ACTIVE | BIT_STALE);
        it.clear_bits(BIT_ACTIVE);
        assert_eq!(it.bits(), BIT_STALE);
        // clearing every bit leaves the flags-present mark, which bits() does not show
        it.clear_bits(u8::MAX);
        assert_eq!((it.bits(), it.flags(), it.key()), (0, 0xdead_beef, &b"hello"[..]));
    }

    #[test]
    fn class_ids_use_the_whole_byte() {
        let mut mem = vec![0u64; 32];
        // SAFETY: `mem` is 8-aligned, 256 bytes, and outlives `it`.
        let it = unsafe { ItemPtr::from_raw(NonNull::new(mem.as_mut_ptr() as *mut u8).unwrap()) };
        for (class, flags) in [(255u8, 7u32), (200, 0), (128, 1)] {
            it.init(class, b"k", flags, 0, 0, 1);
            assert_eq!(
                (it.class(), it.flags(), it.key(), it.total()),
                (class, flags, &b"k"[..], item_size_flags(1, 1, flags))
            );
        }
    }
}

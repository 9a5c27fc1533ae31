//! The index of one lock stripe: key hash -> chunk reference, one cache line per bucket.
//!
//! Owns: the table layout and its growth. Knows nothing of keys or items: lookups take the
//! key's hash and a predicate over chunk references (the store compares the key stored in the
//! chunk), growth takes a function that rehashes a reference.
//!
//! Layout: 64-byte buckets, each with 12 slots: a one-byte tag per slot (the hash's top byte),
//! the number of slots in use (slots are kept packed at the front), an overflow count, and 12
//! 4-byte chunk references. A key's home bucket is `hash & mask`; when it is full an insert
//! goes on to the next bucket (linear probing over buckets) and counts itself in the overflow
//! count of every bucket it passed, so a lookup stops at the first bucket whose overflow count
//! is 0. With at most 7/8 of the slots in use nearly every lookup reads its home bucket only.
//!
//! Why not `hashbrown`: a hashbrown lookup reads a control-byte group and then, in another
//! cache line, the slot it selects; here both are one line, whose address is known from the
//! hash alone (`Hint`), so a batch of lookups (a multi-get, a pipeline of gets) can have every
//! bucket on its way from memory before the first stripe is locked. Memory is the same: 5.3
//! bytes per slot (hashbrown: 5), both filled to at most 7/8 of their slots.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::cpu::{eq_mask, prefetch};
use super::slab::ChunkRef;

/// Slots per bucket.
const SLOTS: usize = 12;
/// An insert that finds no room within this many buckets grows the table instead (so the
/// overflow counts stay small: at most `(MAX_PROBE - 1) * SLOTS`).
const MAX_PROBE: usize = 8;
/// Bytes of one bucket (one cache line).
pub const BUCKET_BYTES: usize = std::mem::size_of::<Bucket>();

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Bucket {
    /// Bytes 0..12: the tags of the slots; 12: slots in use; 13: unused; 14..16: overflow
    /// count (little-endian u16). One array so the tags can be matched as one 16-byte word.
    head: [u8; 16],
    refs: [ChunkRef; SLOTS],
}

const LEN: usize = 12;
const OVERFLOW: usize = 14;

impl Bucket {
    const EMPTY: Bucket = Bucket { head: [0; 16], refs: [0; SLOTS] };

    #[inline]
    fn len(&self) -> usize {
        self.head[LEN] as usize
    }

    #[inline]
    fn overflow(&self) -> u16 {
        u16::from_le_bytes([self.head[OVERFLOW], self.head[OVERFLOW + 1]])
    }

    #[inline]
    fn set_overflow(&mut self, n: u16) {
        [self.head[OVERFLOW], self.head[OVERFLOW + 1]] = n.to_le_bytes();
    }

    /// Slots in use whose tag is `tag`: bit i set for slot i.
    #[inline]
    fn matches(&self, tag: u8) -> u32 {
        eq_mask(&self.head, tag) & ((1u32 << self.len()) - 1)
    }

    #[inline]
    fn push(&mut self, tag: u8, r: ChunkRef) {
        let n = self.len();
        debug_assert!(n < SLOTS);
        self.head[n] = tag;
        self.refs[n] = r;
        self.head[LEN] = n as u8 + 1;
    }

    /// Remove slot `i`, moving the last slot into its place.
    #[inline]
    fn remove_at(&mut self, i: usize) {
        let last = self.len() - 1;
        self.head[i] = self.head[last];
        self.refs[i] = self.refs[last];
        self.head[LEN] = last as u8;
    }
}

#[inline]
fn tag(h: u64) -> u8 {
    (h >> 56) as u8
}

/// Slot numbers in a `matches` mask.
#[inline]
fn slots(mut m: u32) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        if m == 0 {
            return None;
        }
        let i = m.trailing_zeros() as usize;
        m &= m - 1;
        Some(i)
    })
}

/// One stripe's table (kept behind the stripe's lock).
pub struct Index {
    buckets: Box<[Bucket]>,
    len: usize,
}

impl Default for Index {
    fn default() -> Self {
        Index::new()
    }
}

impl Index {
    pub fn new() -> Index {
        Index { buckets: Box::new([]), len: 0 }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Slots allocated (for `stats`: `hash_power_level`).
    pub fn capacity(&self) -> usize {
        self.buckets.len() * SLOTS
    }

    /// Bytes allocated (for `stats`: `hash_bytes`).
    pub fn bytes(&self) -> usize {
        self.buckets.len() * BUCKET_BYTES
    }

    #[inline]
    fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }

    /// `hit` of the first entry with hash `h` for which it gives something (the store compares
    /// the key stored in the chunk).
    #[inline]
    pub fn find_map<T>(&self, h: u64, mut hit: impl FnMut(ChunkRef) -> Option<T>) -> Option<T> {
        if self.is_empty() {
            return None;
        }
        let mask = self.mask();
        let mut b = h as usize & mask;
        // nothing is placed further than `MAX_PROBE - 1` buckets from its home
        for _ in 0..MAX_PROBE.min(self.buckets.len()) {
            let bk = &self.buckets[b];
            for i in slots(bk.matches(tag(h))) {
                if let Some(t) = hit(bk.refs[i]) {
                    return Some(t);
                }
            }
            if bk.overflow() == 0 {
                return None;
            }
            b = (b + 1) & mask;
        }
        None
    }

    /// Start loading the items an entry with hash `h` may be in: `item(r)` is called for every
    /// slot with `h`'s tag (rarely more than one) without looking at the items themselves.
    #[inline]
    pub fn candidates(&self, h: u64, mut item: impl FnMut(ChunkRef)) {
        if let Some(bk) = self.buckets.get(h as usize & self.mask()) {
            for i in slots(bk.matches(tag(h))) {
                item(bk.refs[i]);
            }
        }
    }

    /// Add `r` (not already present) under hash `h`. `rehash` gives the hash of any entry,
    /// for growing.
    pub fn insert(&mut self, h: u64, r: ChunkRef, rehash: impl Fn(ChunkRef) -> u64) {
        if (self.len + 1) * 8 > self.capacity() * 7 {
            self.grow(&rehash);
        }
        while !self.place(h, r) {
            self.grow(&rehash);
        }
        self.len += 1;
    }

    /// Put `r` into the first bucket with room within `MAX_PROBE` of its home.
    fn place(&mut self, h: u64, r: ChunkRef) -> bool {
        let mask = self.mask();
        let home = h as usize & mask;
        let mut b = home;
        for _ in 0..MAX_PROBE.min(self.buckets.len()) {
            if self.buckets[b].len() < SLOTS {
                let mut p = home;
                while p != b {
                    let o = self.buckets[p].overflow();
                    self.buckets[p].set_overflow(o + 1);
                    p = (p + 1) & mask;
                }
                self.buckets[b].push(tag(h), r);
                return true;
            }
            b = (b + 1) & mask;
        }
        false
    }

    /// Double the buckets (at least one) and place every entry again.
    fn grow(&mut self, rehash: &impl Fn(ChunkRef) -> u64) {
        let mut n = (self.buckets.len() * 2).max(1);
        let old = std::mem::replace(&mut self.buckets, Box::new([]));
        'size: loop {
            self.buckets = vec![Bucket::EMPTY; n].into_boxed_slice();
            for bk in old.iter() {
                for &r in &bk.refs[..bk.len()] {
                    if !self.place(rehash(r), r) {
                        n *= 2;
                        continue 'size;
                    }
                }
            }
            return;
        }
    }

    /// Remove entry `r`, stored under hash `h`. Returns whether it was there.
    pub fn remove(&mut self, h: u64, r: ChunkRef) -> bool {
        if self.buckets.is_empty() {
            return false;
        }
        let mask = self.mask();
        let home = h as usize & mask;
        let mut b = home;
        for _ in 0..MAX_PROBE.min(self.buckets.len()) {
            let bk = &self.buckets[b];
            if let Some(i) = slots(bk.matches(tag(h))).find(|&i| bk.refs[i] == r) {
                self.buckets[b].remove_at(i);
                // it counted itself in the overflow of every bucket it passed
                let mut p = home;
                while p != b {
                    let o = self.buckets[p].overflow();
                    self.buckets[p].set_overflow(o - 1);
                    p = (p + 1) & mask;
                }
                self.len -= 1;
                return true;
            }
            if bk.overflow() == 0 {
                return false;
            }
            b = (b + 1) & mask;
        }
        false
    }

    /// Every entry, in table order.
    pub fn iter(&self) -> impl Iterator<Item = ChunkRef> + '_ {
        self.buckets.iter().flat_map(|bk| bk.refs[..bk.len()].iter().copied())
    }
}

/// Where a stripe's buckets are, readable without its lock, so a lookup can prefetch its
/// bucket before taking the lock. Written under the lock after every change of the table's
/// allocation (`publish`); a reader may see an old or mixed value, which only makes it prefetch
/// a useless address: prefetching never faults and reads nothing the program can observe.
#[derive(Default)]
pub struct Hint {
    base: AtomicUsize,
    mask: AtomicUsize,
}

impl Hint {
    /// Record `index`'s allocation (its stripe lock held).
    #[inline]
    pub fn publish(&self, index: &Index) {
        let base = index.buckets.as_ptr() as usize;
        if self.base.load(Ordering::Relaxed) != base {
            self.base.store(base, Ordering::Relaxed);
            self.mask.store(index.mask(), Ordering::Relaxed);
        }
    }

    /// Start loading the bucket of hash `h`.
    #[inline]
    pub fn prefetch(&self, h: u64) {
        let base = self.base.load(Ordering::Relaxed);
        if base != 0 {
            let off = (h as usize & self.mask.load(Ordering::Relaxed)) * BUCKET_BYTES;
            prefetch(base.wrapping_add(off) as *const u8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(i: u32) -> u64 {
        // spread like a real hash, but with collisions of the home bucket and of the tag
        (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ ((i as u64 % 7) << 56)
    }

    impl Index {
        fn find(&self, h: u64, mut eq: impl FnMut(ChunkRef) -> bool) -> Option<ChunkRef> {
            self.find_map(h, |r| eq(r).then_some(r))
        }
    }

    #[test]
    fn layout_is_one_cache_line() {
        assert_eq!(BUCKET_BYTES, 64);
        assert_eq!(std::mem::align_of::<Bucket>(), 64);
    }

    #[test]
    fn tags_match_exactly() {
        let mut b = Bucket::EMPTY;
        for (i, t) in [5u8, 0x85, 5, 0, 0xff, 4, 6, 5, 0x7f, 0x80, 5, 1].into_iter().enumerate() {
            b.push(t, i as u32);
        }
        assert_eq!(slots(b.matches(5)).collect::<Vec<_>>(), [0, 2, 7, 10]);
        assert_eq!(slots(b.matches(0)).collect::<Vec<_>>(), [3]);
        assert_eq!(slots(b.matches(0x80)).collect::<Vec<_>>(), [9]);
        b.remove_at(0);
        assert_eq!(b.len(), 11);
        assert_eq!(slots(b.matches(1)).collect::<Vec<_>>(), [0]);
        // slots past len never match, whatever their stale tag
        assert_eq!(slots(b.matches(5)).collect::<Vec<_>>(), [2, 7, 10]);
    }

    #[test]
    fn insert_find_remove_through_growth_and_overflow() {
        let mut ix = Index::new();
        // a tiny hash space: many keys share home buckets, so buckets overflow
        let hh = |i: u32| h(i) & !0xf0;
        let n = 5000u32;
        for i in 0..n {
            ix.insert(hh(i), i, hh);
            assert_eq!(ix.find(hh(i), |r| r == i), Some(i));
        }
        assert_eq!(ix.len(), n as usize);
        for i in 0..n {
            assert_eq!(ix.find(hh(i), |r| r == i), Some(i), "{i}");
        }
        assert_eq!(ix.find(hh(n + 1), |r| r == n + 1), None);
        for i in (0..n).step_by(3) {
            assert!(ix.remove(hh(i), i));
            assert!(!ix.remove(hh(i), i));
        }
        for i in 0..n {
            assert_eq!(ix.find(hh(i), |r| r == i).is_some(), i % 3 != 0, "{i}");
        }
        let mut all: Vec<u32> = ix.iter().collect();
        all.sort();
        assert_eq!(all, (0..n).filter(|i| i % 3 != 0).collect::<Vec<_>>());
        // every overflow count is back to what the entries left need
        for i in (0..n).filter(|i| i % 3 != 0) {
            assert!(ix.remove(hh(i), i));
        }
        assert!(ix.is_empty());
        assert!(ix.buckets.iter().all(|b| b.overflow() == 0 && b.len() == 0));
    }

    #[test]
    fn lookups_end_when_every_bucket_has_overflowed() {
        let mut ix = Index::new();
        for i in 0..20 {
            ix.insert(h(i), i, h);
        }
        for b in ix.buckets.iter_mut() {
            b.set_overflow(1);
        }
        assert_eq!(ix.find(h(99), |r| r == 99), None);
        assert!(!ix.remove(h(99), 99));
    }

    #[test]
    fn candidates_are_the_slots_with_the_tag() {
        let mut ix = Index::new();
        for i in 0..100 {
            ix.insert(h(i), i, h);
        }
        let mut seen = Vec::new();
        ix.candidates(h(42), |r| seen.push(r));
        assert!(seen.contains(&42));
        assert!(seen.iter().all(|&r| tag(h(r)) == tag(h(42))));
        let hint = Hint::default();
        hint.publish(&ix);
        hint.prefetch(h(42));
        Hint::default().prefetch(1);
    }
}

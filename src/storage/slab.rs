//! The slab allocator: memory pages bounded by `-m`, carved into fixed-size chunks by class.
//!
//! Owns: the page table, the slab classes (sizes from `-n`, `-f`, `-I`), each class's pages,
//! free list, carving position and eviction hand, and per-class counters. Knows nothing of keys,
//! the index or protocols: eviction *policy* lives in `storage::Store`, which asks this module
//! for chunks and walks the class hand.
//!
//! A chunk is named by a `ChunkRef` (`u32`: page number in the high bits, slot in the low
//! bits), so the index and the free lists hold 4-byte references instead of pointers.
//!
//! Pages are allocated lazily (zeroed, from `storage::arena`'s huge-page-friendly mappings, so
//! untouched memory is not resident) until the page
//! budget (`-m` / page size) is spent; after that a class gets memory only by evicting one of
//! its own items or by taking a whole page from another class (`Store` drives both).
//!
//! Locking: one mutex per class (`ClassState`). Lock order: shard -> class; code holding a
//! class lock may only `try_lock` a shard.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;
use parking_lot::{Mutex, MutexGuard};

use super::arena::Arena;
use super::item::{ItemPtr, STATE_FREE, STATE_RESERVED};

/// A chunk reference: `page << slot_bits | slot`.
pub type ChunkRef = u32;

/// Largest number of slab classes (memcached's MAX_NUMBER_OF_SLAB_CLASSES is 64, ids 1..63).
pub const MAX_CLASSES: usize = 63;

/// Alignment of chunk sizes.
const CHUNK_ALIGN: usize = 8;

/// Pages of a class a page move looks at to find one with no busy chunk.
const DRAIN_CANDIDATES: usize = 8;

/// Sizing of the allocator.
#[derive(Clone, Debug)]
pub struct SlabConfig {
    /// Memory limit in bytes (`-m`).
    pub limit_bytes: usize,
    /// Largest item in bytes (`-I`).
    pub item_size_max: usize,
    /// Growth factor between classes (`-f`).
    pub factor: f64,
    /// Minimum space for key + value in the smallest class (`-n`).
    pub min_space: usize,
    /// Size of the smallest class's chunks is `header + min_space`.
    pub header: usize,
    /// Largest chunk of the ordinary classes (`-o slab_chunk_max`, default page / 2).
    pub chunk_max: usize,
    /// Explicit class sizes (`-o slab_sizes`), overriding the factor.
    pub sizes: Option<Vec<usize>>,
}

/// Static description of one class.
#[derive(Clone, Copy, Debug)]
pub struct ClassInfo {
    pub size: usize,
    pub per_page: usize,
}

/// Per-class counters, readable without the class lock.
#[derive(Default, Debug)]
pub struct ClassCounters {
    pub evicted: AtomicU64,
    pub evicted_nonzero: AtomicU64,
    pub evicted_time: AtomicU64,
    pub evicted_unfetched: AtomicU64,
    pub evicted_active: AtomicU64,
    pub expired_unfetched: AtomicU64,
    pub reclaimed: AtomicU64,
    pub outofmemory: AtomicU64,
    pub crawler_reclaimed: AtomicU64,
    pub crawler_items_checked: AtomicU64,
    /// Chunks in use (reserved or linked).
    pub used: AtomicU64,
    /// Sum of item sizes of used chunks.
    pub requested: AtomicU64,
}

impl ClassCounters {
    /// Zero the event counters (not `used`/`requested`, which describe current contents).
    pub fn reset(&self) {
        for a in [
            &self.evicted,
            &self.evicted_nonzero,
            &self.evicted_time,
            &self.evicted_unfetched,
            &self.evicted_active,
            &self.expired_unfetched,
            &self.reclaimed,
            &self.outofmemory,
            &self.crawler_reclaimed,
            &self.crawler_items_checked,
        ] {
            a.store(0, Ordering::Relaxed);
        }
    }
}

/// Mutable state of one class, behind its lock.
#[derive(Debug, Default)]
pub struct ClassState {
    /// Pages owned, in the order they were assigned. All but the last are fully carved.
    pub pages: Vec<u32>,
    /// Freed chunks, reused LIFO.
    pub free: Vec<ChunkRef>,
    /// Next uncarved slot of the last page (== per_page when exhausted).
    pub carve_next: usize,
    /// Eviction hand: index into `pages` and slot.
    pub hand_page: usize,
    pub hand_slot: usize,
}

/// A snapshot of one class for `stats slabs` / `stats items`.
#[derive(Clone, Debug, Default)]
pub struct ClassSnapshot {
    pub id: usize,
    pub size: usize,
    pub per_page: usize,
    pub pages: usize,
    pub free: usize,
    pub free_end: usize,
    pub used: u64,
    pub requested: u64,
    pub evicted: u64,
    pub evicted_nonzero: u64,
    pub evicted_time: u64,
    pub evicted_unfetched: u64,
    pub evicted_active: u64,
    pub expired_unfetched: u64,
    pub reclaimed: u64,
    pub outofmemory: u64,
    pub crawler_reclaimed: u64,
    pub crawler_items_checked: u64,
}

/// The allocator.
pub struct Slabs {
    page_size: usize,
    slot_bits: u32,
    /// Class descriptions; index 0 unused so ids match memcached's (1-based).
    classes: Vec<ClassInfo>,
    state: Vec<CachePadded<Mutex<ClassState>>>,
    counters: Vec<ClassCounters>,
    /// Page memory, allocated lazily. Length = page capacity.
    pages: Box<[AtomicPtr<u8>]>,
    /// Owning class of each page (0 = none). Kept while the page drains.
    page_class: Box<[AtomicU8]>,
    /// Set while a page is being emptied to move to another class: its freed chunks are
    /// not reused.
    page_draining: Box<[AtomicBool]>,
    /// Pages allocated so far (never freed while the store lives).
    pages_allocated: AtomicUsize,
    /// Page budget: `-m` / page size (changed by `cache_memlimit`).
    page_limit: AtomicUsize,
    /// Pages taken back from classes and not yet reassigned.
    spare: Mutex<Vec<u32>>,
    /// Where new pages come from.
    arena: Arena,
    /// Serialises page moves.
    pub(super) mover: Mutex<()>,
    pub(super) moves: AtomicU64,
}

/// Compute class sizes the way memcached's `slabs_init` does, with our header size.
pub fn class_sizes(cfg: &SlabConfig, page_size: usize) -> Vec<usize> {
    let mut out = Vec::new();
    if let Some(sizes) = &cfg.sizes {
        for &s in sizes {
            let s = align(s);
            if s >= cfg.header && out.last().is_none_or(|&l| s > l) && out.len() < MAX_CLASSES - 1 {
                out.push(s);
            }
        }
    } else {
        // Geometric sizes rounded up to 8, compounding the exact (unrounded) size: memcached
        // compounds the rounded one, which drifts upwards and wastes more per chunk.
        let base = (cfg.header + cfg.min_space) as f64;
        let stop = (cfg.chunk_max as f64 / cfg.factor) as usize;
        let mut exact = base;
        let mut size = align(base as usize);
        while out.len() < MAX_CLASSES - 1 && size < stop {
            out.push(size);
            exact *= cfg.factor;
            let next = align(exact.ceil() as usize);
            size = if next > size { next } else { size + CHUNK_ALIGN };
        }
        out.push(cfg.chunk_max);
    }
    // Items bigger than the ordinary classes get a chunk of their own page-sized class.
    let top = align(cfg.item_size_max.min(page_size));
    if out.last().is_none_or(|&l| top > l) {
        out.push(top);
    }
    out
}

#[inline]
fn align(n: usize) -> usize {
    n.div_ceil(CHUNK_ALIGN) * CHUNK_ALIGN
}

impl Slabs {
    /// Build the allocator. Pages are not allocated until used.
    pub fn new(cfg: &SlabConfig) -> Slabs {
        let page_size = (1usize << 20).max(cfg.item_size_max);
        let sizes = class_sizes(cfg, page_size);
        let mut classes = vec![ClassInfo { size: 0, per_page: 0 }];
        for s in &sizes {
            classes.push(ClassInfo { size: *s, per_page: (page_size / s).max(1) });
        }
        let max_per_page = classes[1..].iter().map(|c| c.per_page).max().unwrap_or(1);
        let slot_bits = usize::BITS - (max_per_page - 1).leading_zeros();
        let capacity = (1usize << (32 - slot_bits).min(24)).min(1 << 22);
        let page_limit = (cfg.limit_bytes / page_size).clamp(1, capacity);
        Slabs {
            page_size,
            slot_bits,
            state: (0..classes.len()).map(|_| CachePadded::new(Mutex::new(ClassState::default()))).collect(),
            counters: (0..classes.len()).map(|_| ClassCounters::default()).collect(),
            classes,
            pages: (0..capacity).map(|_| AtomicPtr::new(std::ptr::null_mut())).collect(),
            page_class: (0..capacity).map(|_| AtomicU8::new(0)).collect(),
            page_draining: (0..capacity).map(|_| AtomicBool::new(false)).collect(),
            pages_allocated: AtomicUsize::new(0),
            page_limit: AtomicUsize::new(page_limit),
            spare: Mutex::new(Vec::new()),
            arena: Arena::new(page_size),
            mover: Mutex::new(()),
            moves: AtomicU64::new(0),
        }
    }

    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// Number of classes (ids are 1..=n).
    pub fn class_count(&self) -> usize {
        self.classes.len() - 1
    }

    pub fn class_info(&self, id: usize) -> ClassInfo {
        self.classes[id]
    }

    pub fn counters(&self, id: usize) -> &ClassCounters {
        &self.counters[id]
    }

    /// Smallest class whose chunks hold `size` bytes, if any.
    #[inline]
    pub fn class_for(&self, size: usize) -> Option<u8> {
        // Classes are few (<= 63) and the small ones are hot: a linear scan beats a search.
        self.classes[1..].iter().position(|c| c.size >= size).map(|i| (i + 1) as u8)
    }

    /// Largest item the classes can hold.
    pub fn largest_chunk(&self) -> usize {
        self.classes.last().map(|c| c.size).unwrap_or(0)
    }

    /// Pages allocated so far and the budget.
    pub fn pages_allocated(&self) -> usize {
        self.pages_allocated.load(Ordering::Relaxed)
    }

    pub fn page_limit(&self) -> usize {
        self.page_limit.load(Ordering::Relaxed)
    }

    /// Change the page budget (`cache_memlimit`). Memory already allocated is kept.
    pub fn set_limit_bytes(&self, bytes: usize) {
        let pages = (bytes / self.page_size).clamp(1, self.pages.len());
        self.page_limit.store(pages, Ordering::Relaxed);
    }

    /// Pointer to a chunk.
    #[inline]
    pub(super) fn ptr(&self, r: ChunkRef) -> ItemPtr {
        let page = (r >> self.slot_bits) as usize;
        let class = self.page_class[page].load(Ordering::Acquire);
        self.ptr_in(class, r)
    }

    #[inline]
    fn make_ref(&self, page: u32, slot: usize) -> ChunkRef {
        (page << self.slot_bits) | slot as u32
    }

    #[inline]
    pub(super) fn page_of(&self, r: ChunkRef) -> u32 {
        r >> self.slot_bits
    }

    /// Lock one class.
    pub(super) fn lock(&self, class: u8) -> MutexGuard<'_, ClassState> {
        self.state[class as usize].lock()
    }

    /// Take a chunk of `class` without evicting: free list, then carving, then a new page.
    /// The chunk comes back RESERVED. `size` is the item size (for `mem_requested`).
    pub(super) fn try_alloc(&self, class: u8, size: usize) -> Option<ChunkRef> {
        let mut st = self.lock(class);
        let r = self.try_alloc_locked(class, &mut st)?;
        self.mark_reserved(class, r, size);
        Some(r)
    }

    /// A chunk of a class that owns no page, from a page taken past the budget (see
    /// `take_page`). `None` when the class already has pages or memory is exhausted.
    pub(super) fn try_alloc_first_page(&self, class: u8, size: usize) -> Option<ChunkRef> {
        let mut st = self.lock(class);
        if !st.pages.is_empty() {
            return None;
        }
        let page = self.take_page(true)?;
        self.page_class[page as usize].store(class, Ordering::Release);
        st.pages.push(page);
        st.carve_next = 1;
        let r = self.make_ref(page, 0);
        drop(st);
        self.mark_reserved(class, r, size);
        Some(r)
    }

    /// Count a chunk handed out under the class lock.
    pub(super) fn mark_reserved(&self, class: u8, r: ChunkRef, size: usize) {
        self.ptr_in(class, r).set_state(STATE_RESERVED);
        let c = &self.counters[class as usize];
        c.used.fetch_add(1, Ordering::Relaxed);
        c.requested.fetch_add(size as u64, Ordering::Relaxed);
    }

    /// Pointer to a chunk whose class is known (cheaper than `ptr`).
    #[inline]
    pub(super) fn ptr_in(&self, class: u8, r: ChunkRef) -> ItemPtr {
        let page = (r >> self.slot_bits) as usize;
        let slot = (r & ((1 << self.slot_bits) - 1)) as usize;
        let base = self.pages[page].load(Ordering::Acquire);
        // SAFETY: live page of this class; slot < per_page.
        unsafe { ItemPtr::from_raw(NonNull::new_unchecked(base.add(slot * self.classes[class as usize].size))) }
    }

    fn try_alloc_locked(&self, class: u8, st: &mut ClassState) -> Option<ChunkRef> {
        if let Some(r) = st.free.pop() {
            return Some(r);
        }
        let per_page = self.classes[class as usize].per_page;
        if let Some(&last) = st.pages.last() {
            if st.carve_next < per_page {
                let r = self.make_ref(last, st.carve_next);
                st.carve_next += 1;
                return Some(r);
            }
        }
        let page = self.take_page(false)?;
        self.page_class[page as usize].store(class, Ordering::Release);
        st.pages.push(page);
        st.carve_next = 1;
        Some(self.make_ref(page, 0))
    }

    /// A page from the spare pool or fresh memory within the budget. With `first_of_class` (a
    /// class that owns no page, when nothing could be evicted or moved) the page may come past
    /// the budget, as memcached's `do_slabs_newslab` allows: so small items can still be stored
    /// when every page is held by values still arriving or being sent (neither can be evicted).
    /// That bounds the overshoot by one page per class.
    fn take_page(&self, first_of_class: bool) -> Option<u32> {
        if let Some(p) = self.spare.lock().pop() {
            return Some(p);
        }
        loop {
            let n = self.pages_allocated.load(Ordering::Relaxed);
            let over = n >= self.page_limit.load(Ordering::Relaxed) && !first_of_class;
            if over || n >= self.pages.len() {
                return None;
            }
            if self.pages_allocated.compare_exchange(n, n + 1, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                // Zeroed memory means every chunk starts FREE; untouched pages stay
                // non-resident.
                let Some(mem) = self.arena.page() else {
                    self.pages_allocated.fetch_sub(1, Ordering::Relaxed);
                    return None;
                };
                self.pages[n].store(mem.as_ptr(), Ordering::Release);
                return Some(n as u32);
            }
        }
    }

    /// Return a chunk. The caller has unlinked it (or never linked it).
    pub(super) fn free(&self, r: ChunkRef, it: ItemPtr) {
        let class = it.class();
        let size = it.total() as u64;
        let st = &mut *self.lock(class);
        it.set_state(STATE_FREE);
        let c = &self.counters[class as usize];
        c.used.fetch_sub(1, Ordering::Relaxed);
        c.requested.fetch_sub(size, Ordering::Relaxed);
        if !self.page_draining[self.page_of(r) as usize].load(Ordering::Relaxed) {
            st.free.push(r);
        }
    }

    /// Free a chunk while already holding its class lock (eviction reuses chunks instead).
    pub(super) fn uncount(&self, class: u8, size: usize) {
        let c = &self.counters[class as usize];
        c.used.fetch_sub(1, Ordering::Relaxed);
        c.requested.fetch_sub(size as u64, Ordering::Relaxed);
    }

    /// Advance `class`'s eviction hand and return the chunk it now points at.
    /// Returns `None` when the class has no carved chunks.
    pub(super) fn hand_next(&self, class: u8, st: &mut ClassState) -> Option<ChunkRef> {
        if st.pages.is_empty() {
            return None;
        }
        let per_page = self.classes[class as usize].per_page;
        let last = st.pages.len() - 1;
        loop {
            if st.hand_page > last {
                st.hand_page = 0;
                st.hand_slot = 0;
            }
            let limit = if st.hand_page == last { st.carve_next.min(per_page) } else { per_page };
            if st.hand_slot < limit {
                let r = self.make_ref(st.pages[st.hand_page], st.hand_slot);
                st.hand_slot += 1;
                return Some(r);
            }
            st.hand_page += 1;
            st.hand_slot = 0;
            if st.hand_page > last && limit == 0 && last == 0 {
                return None;
            }
        }
    }

    /// Number of chunks the hand can visit in `class`.
    pub(super) fn carved_chunks(&self, class: u8, st: &ClassState) -> usize {
        if st.pages.is_empty() {
            return 0;
        }
        let per_page = self.classes[class as usize].per_page;
        (st.pages.len() - 1) * per_page + st.carve_next.min(per_page)
    }

    /// Start moving a page out of `class`: the page nearest the eviction hand is detached
    /// from the class, its free chunks dropped, and it is marked DRAINING so that chunks freed
    /// from now on are not reused. Returns the page and how many slots were carved in it.
    /// Pages holding a chunk for which `busy` is true (reserved for a value still arriving, or
    /// pinned by an unsent reply) are passed over; `None` if every page looked at is busy.
    pub(super) fn begin_drain(&self, class: u8, busy: impl Fn(ItemPtr) -> bool) -> Option<(u32, usize)> {
        let st = &mut *self.lock(class);
        if st.pages.is_empty() {
            return None;
        }
        let per_page = self.classes[class as usize].per_page;
        let last = st.pages.len() - 1;
        let carved_in = |st: &ClassState, idx: usize| if idx == last { st.carve_next.min(per_page) } else { per_page };
        let start = st.hand_page.min(last);
        // Look at a few pages from the hand on: a page with a busy chunk cannot be emptied now.
        let idx = (0..st.pages.len().min(DRAIN_CANDIDATES)).map(|i| (start + i) % st.pages.len()).find(|&idx| {
            let page = st.pages[idx];
            !(0..carved_in(st, idx)).any(|slot| busy(self.ptr_in(class, self.make_ref(page, slot))))
        })?;
        let carved = carved_in(st, idx);
        let page = st.pages.remove(idx);
        if idx == last {
            // The carving page left: the new last page (if any) is fully carved.
            st.carve_next = per_page;
        }
        if st.hand_page > idx {
            st.hand_page -= 1;
        } else if st.hand_page == idx {
            st.hand_slot = 0;
        }
        let shift = self.slot_bits;
        st.free.retain(|&r| r >> shift != page);
        self.page_draining[page as usize].store(true, Ordering::Release);
        Some((page, carved))
    }

    /// Pointer to slot `slot` of a draining page of `class`.
    pub(super) fn drain_ptr(&self, class: u8, page: u32, slot: usize) -> (ChunkRef, ItemPtr) {
        let r = self.make_ref(page, slot);
        (r, self.ptr_in(class, r))
    }

    /// Give up a move (a chunk of the page became busy): the page goes back to `class` as a
    /// fully carved page, its free chunks (and any never carved) onto the free list.
    pub(super) fn abort_drain(&self, class: u8, page: u32, carved: usize) {
        let st = &mut *self.lock(class);
        // Under the class lock, so a concurrent `free` either already ran (its chunk is FREE and
        // pushed here) or runs after and pushes its chunk itself.
        self.page_draining[page as usize].store(false, Ordering::Release);
        let per_page = self.classes[class as usize].per_page;
        for slot in 0..per_page {
            let it = self.ptr_in(class, self.make_ref(page, slot));
            if slot >= carved {
                it.set_state(STATE_FREE);
            }
            if it.state() == STATE_FREE {
                st.free.push(self.make_ref(page, slot));
            }
        }
        st.pages.insert(0, page);
        if st.pages.len() > 1 {
            st.hand_page += 1;
        } else {
            st.carve_next = per_page;
        }
    }

    /// Finish a move: the emptied page becomes a spare page for any class.
    pub(super) fn end_drain(&self, page: u32) {
        self.page_class[page as usize].store(0, Ordering::Release);
        self.page_draining[page as usize].store(false, Ordering::Release);
        self.spare.lock().push(page);
        self.moves.fetch_add(1, Ordering::Relaxed);
    }

    /// Pages currently owned by each class (index = class id).
    pub fn pages_per_class(&self) -> Vec<usize> {
        self.state.iter().map(|s| s.lock().pages.len()).collect()
    }

    /// Spare pages not assigned to any class.
    pub fn spare_pages(&self) -> usize {
        self.spare.lock().len()
    }

    /// Snapshot of every class that owns pages.
    pub fn snapshot(&self) -> Vec<ClassSnapshot> {
        let mut out = Vec::new();
        for id in 1..self.classes.len() {
            let (pages, free, free_end) = {
                let st = self.state[id].lock();
                let per_page = self.classes[id].per_page;
                (
                    st.pages.len(),
                    st.free.len(),
                    if st.pages.is_empty() { 0 } else { per_page - st.carve_next.min(per_page) },
                )
            };
            if pages == 0 {
                continue;
            }
            let c = &self.counters[id];
            let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
            out.push(ClassSnapshot {
                id,
                size: self.classes[id].size,
                per_page: self.classes[id].per_page,
                pages,
                free,
                free_end,
                used: l(&c.used),
                requested: l(&c.requested),
                evicted: l(&c.evicted),
                evicted_nonzero: l(&c.evicted_nonzero),
                evicted_time: l(&c.evicted_time),
                evicted_unfetched: l(&c.evicted_unfetched),
                evicted_active: l(&c.evicted_active),
                expired_unfetched: l(&c.expired_unfetched),
                reclaimed: l(&c.reclaimed),
                outofmemory: l(&c.outofmemory),
                crawler_reclaimed: l(&c.crawler_reclaimed),
                crawler_items_checked: l(&c.crawler_items_checked),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::item::{HEADER, STATE_RESERVED};

    fn cfg(limit_mb: usize) -> SlabConfig {
        SlabConfig {
            limit_bytes: limit_mb << 20,
            item_size_max: 1 << 20,
            factor: 1.25,
            min_space: 48,
            header: HEADER,
            chunk_max: 512 * 1024,
            sizes: None,
        }
    }

    #[test]
    fn classes_grow_by_factor_and_end_at_item_max() {
        let sizes = class_sizes(&cfg(64), 1 << 20);
        assert_eq!(sizes[0], 72); // 24 + 48, a multiple of 8
        assert!(sizes.windows(2).all(|w| w[1] > w[0] && w[1] % 8 == 0));
        assert_eq!(*sizes.last().unwrap(), 1 << 20);
        assert_eq!(sizes[sizes.len() - 2], 512 * 1024);
    }

    #[test]
    fn a_120_byte_payload_fits_a_144_byte_chunk() {
        // 20-byte key + 100-byte value + 24-byte header (flags 0) = 144 bytes
        let sizes = class_sizes(&cfg(64), 1 << 20);
        let fit = sizes.iter().find(|&&s| s >= 144).unwrap();
        assert_eq!(*fit, 144, "{sizes:?}");
    }

    #[test]
    fn alloc_respects_page_budget() {
        let s = Slabs::new(&cfg(2));
        assert_eq!(s.page_limit(), 2);
        let class = s.class_for(1000).unwrap();
        let per_page = s.class_info(class as usize).per_page;
        let mut n = 0;
        while let Some(r) = s.try_alloc(class, 1000) {
            assert_eq!(s.ptr(r).state(), STATE_RESERVED);
            n += 1;
        }
        assert_eq!(n, 2 * per_page);
        // other classes cannot get memory either...
        assert!(s.try_alloc(1, 50).is_none());
        // ...except a first page past the budget, when asked (memcached's rule), and no more
        let small = s.class_info(1).per_page;
        assert_eq!((0..small + 1).filter(|_| s.try_alloc_first_page(1, 50).is_some()).count(), 1);
        assert_eq!((0..small).filter(|_| s.try_alloc(1, 50).is_some()).count(), small - 1);
        assert!(s.try_alloc_first_page(1, 50).is_none());
        assert_eq!(s.pages_allocated(), 3);
    }

    #[test]
    fn freed_chunks_are_reused() {
        let s = Slabs::new(&cfg(2));
        let a = s.try_alloc(1, 50).unwrap();
        let p = s.ptr(a);
        p.init(1, b"k", 0, 0, 0, 1);
        s.free(a, p);
        assert_eq!(s.try_alloc(1, 50), Some(a));
    }

    #[test]
    fn hand_walks_carved_chunks_only() {
        let s = Slabs::new(&cfg(4));
        let refs: Vec<_> = (0..3).map(|_| s.try_alloc(1, 50).unwrap()).collect();
        let mut st = s.lock(1);
        let seen: Vec<_> = (0..6).map(|_| s.hand_next(1, &mut st).unwrap()).collect();
        assert_eq!(&seen[..3], &refs[..]);
        assert_eq!(&seen[3..], &refs[..]);
    }

    #[test]
    fn drained_page_becomes_spare() {
        let s = Slabs::new(&cfg(2));
        let class = s.class_for(1000).unwrap();
        while s.try_alloc(class, 1000).is_some() {}
        let (page, carved) = s.begin_drain(class, |_| false).unwrap();
        assert_eq!(carved, s.class_info(class as usize).per_page);
        s.end_drain(page);
        assert!(s.try_alloc(1, 50).is_some());
    }
}

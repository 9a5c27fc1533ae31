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

/// Largest number of slab classes: ids are 1..=255, one byte in `page_class` and in the item
/// header, 0 meaning none. Only the automatic factor goes past memcached's 63
/// (`memcached::SLAB_CLASSES_MAX`).
pub const MAX_CLASSES: usize = 255;

/// With no `-f`, classes are made as fine as one class per this many pages of `-m` allows, so
/// that the classes a workload uses each get several pages (a class with one page evicts
/// within that page while the others keep theirs until a page move).
const PAGES_PER_AUTO_CLASS: usize = 4;

/// The finest automatic factor (228 classes from 72 bytes to 512 KB). Finer buys little: at
/// 1.04 chunk rounding is ~2 % of memory for values spread over a range; with 8-byte steps
/// (the chunk alignment) it would still be ~1 %.
const FINEST_AUTO_FACTOR: f64 = 1.04;

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
    /// Growth factor between classes (`-f`); `None`: chosen from the page budget
    /// (`auto_factor`).
    pub factor: Option<f64>,
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
    /// The growth factor in effect (`-f`, or `auto_factor`'s), for `stats settings`.
    factor: f64,
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

/// Class sizes and the factor they grow by: memcached's `slabs_init` with our header size, with
/// the factor given (`-f`, at most memcached's 63 classes) or, without one, `auto_factor`'s.
pub fn class_sizes(cfg: &SlabConfig, page_size: usize) -> (Vec<usize>, f64) {
    let mut out = Vec::new();
    let factor = match cfg.factor {
        Some(f) => f,
        None if cfg.sizes.is_some() => crate::memcached::GROWTH_FACTOR,
        None => auto_factor(cfg, page_size),
    };
    if let Some(sizes) = &cfg.sizes {
        for &s in sizes {
            let s = align(s);
            if s >= cfg.header
                && out.last().is_none_or(|&l| s > l)
                && out.len() < crate::memcached::SLAB_CLASSES_MAX - 1
            {
                out.push(s);
            }
        }
    } else {
        // memcached's 62 + `slab_chunk_max` for a given factor; for ours, room for the top class.
        let cap = if cfg.factor.is_some() { crate::memcached::SLAB_CLASSES_MAX } else { MAX_CLASSES - 1 };
        out = geometric(cfg.header + cfg.min_space, factor, cfg.chunk_max, cap);
    }
    // Items bigger than the ordinary classes get a chunk of their own page-sized class.
    let top = align(cfg.item_size_max.min(page_size));
    if out.last().is_none_or(|&l| top > l) {
        out.push(top);
    }
    (out, factor)
}

/// At most `max - 1` sizes from `base` growing by `factor`, rounded up to 8, then `chunk_max`.
/// Compounds the exact (unrounded) size: memcached compounds the rounded one, which drifts
/// upwards and wastes more per chunk.
fn geometric(base: usize, factor: f64, chunk_max: usize, max: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let stop = (chunk_max as f64 / factor) as usize;
    let mut exact = base as f64;
    let mut size = align(base);
    while out.len() < max - 1 && size < stop {
        out.push(size);
        exact *= factor;
        let next = align(exact.ceil() as usize);
        size = if next > size { next } else { size + CHUNK_ALIGN };
    }
    out.push(chunk_max);
    out
}

/// The growth factor used when `-f` is not given: the finest hundredth between
/// `FINEST_AUTO_FACTOR` and memcached's 1.25 whose classes (the page-sized one included) number
/// at most one per `PAGES_PER_AUTO_CLASS` pages of the budget. 1.25 up to `-m 160`, 1.16 at
/// 256, 1.08 at 512, 1.04 from 1024 on (default `-n`, `-I`, `slab_chunk_max`).
///
/// Why finer classes: a chunk wastes on average half the gap to the class below, so with
/// sizes spread over a range 1.25 loses ~10 % of memory to rounding and 1.04 ~2 %; at
/// `-m 1024`, 20-byte keys and values of 32-1000 bytes that is 1.08x -> 1.17x memcached's items
/// (README, "Memory").
pub fn auto_factor(cfg: &SlabConfig, page_size: usize) -> f64 {
    let budget = (cfg.limit_bytes / page_size / PAGES_PER_AUTO_CLASS).min(MAX_CLASSES);
    let coarsest = (crate::memcached::GROWTH_FACTOR * 100.0).round() as u32;
    let finest = (FINEST_AUTO_FACTOR * 100.0).round() as u32;
    (finest..=coarsest)
        .map(|h| h as f64 / 100.0)
        .find(|&f| geometric(cfg.header + cfg.min_space, f, cfg.chunk_max, MAX_CLASSES - 1).len() < budget)
        .unwrap_or(crate::memcached::GROWTH_FACTOR)
}

#[inline]
fn align(n: usize) -> usize {
    n.div_ceil(CHUNK_ALIGN) * CHUNK_ALIGN
}

impl Slabs {
    /// Build the allocator. Pages are not allocated until used.
    pub fn new(cfg: &SlabConfig) -> Slabs {
        let page_size = (1usize << 20).max(cfg.item_size_max);
        let (sizes, factor) = class_sizes(cfg, page_size);
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
            factor,
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

    /// The growth factor between classes (`-f`, or the one chosen from `-m`).
    pub fn factor(&self) -> f64 {
        self.factor
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
        // Up to 255 classes: a binary search (8 probes) rather than a scan.
        let i = self.classes[1..].partition_point(|c| c.size < size);
        (i + 1 < self.classes.len()).then_some((i + 1) as u8)
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

    /// Finish a move by giving the emptied page straight to class `dst` (a page move that
    /// follows the size mix, `Store::automove`), so that no other class takes it first. The
    /// rest of `dst`'s carving page is carved onto its free list, and the new page becomes the
    /// carving page: only carved slots are ever read, so what the page held before is never
    /// taken for an item of `dst`.
    pub(super) fn end_drain_to(&self, page: u32, dst: u8) {
        let st = &mut *self.lock(dst);
        let per_page = self.classes[dst as usize].per_page;
        if let Some(&last) = st.pages.last() {
            for slot in st.carve_next.min(per_page)..per_page {
                let r = self.make_ref(last, slot);
                self.ptr_in(dst, r).set_state(STATE_FREE);
                st.free.push(r);
            }
        }
        self.page_class[page as usize].store(dst, Ordering::Release);
        self.page_draining[page as usize].store(false, Ordering::Release);
        st.pages.push(page);
        st.carve_next = 0;
        self.moves.fetch_add(1, Ordering::Relaxed);
    }

    /// Call `f` on up to `n` carved chunks of `class` from its eviction hand on, without moving
    /// the hand: the chunks the hand reaches next, the oldest in CLOCK order (their ages tell
    /// `Store::automove` how long the class keeps items). Class lock held meanwhile.
    pub(super) fn peek_hand(&self, class: u8, n: usize, mut f: impl FnMut(ItemPtr)) {
        let st = self.lock(class);
        let n = n.min(self.carved_chunks(class, &st));
        if n == 0 {
            return;
        }
        let per_page = self.classes[class as usize].per_page;
        let last = st.pages.len() - 1;
        let (mut page, mut slot) = (st.hand_page, st.hand_slot);
        for _ in 0..n {
            // Some carved chunk exists, so this finds one within a lap.
            loop {
                if page > last {
                    (page, slot) = (0, 0);
                }
                let limit = if page == last { st.carve_next.min(per_page) } else { per_page };
                if slot < limit {
                    break;
                }
                (page, slot) = (page + 1, 0);
            }
            f(self.ptr_in(class, self.make_ref(st.pages[page], slot)));
            slot += 1;
        }
    }

    /// Chunks of `class` holding no item: its free list and the uncarved rest of its carving
    /// page (memcached's `free_chunks` + `free_chunks_end`).
    pub(super) fn free_chunks(&self, class: u8) -> usize {
        let st = self.lock(class);
        let per_page = self.classes[class as usize].per_page;
        st.free.len() + if st.pages.is_empty() { 0 } else { per_page - st.carve_next.min(per_page) }
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
            factor: Some(1.25),
            min_space: 48,
            header: HEADER,
            chunk_max: 512 * 1024,
            sizes: None,
        }
    }

    #[test]
    fn classes_grow_by_factor_and_end_at_item_max() {
        let (sizes, factor) = class_sizes(&cfg(64), 1 << 20);
        assert_eq!(factor, 1.25);
        assert_eq!(sizes[0], 72); // 24 + 48, a multiple of 8
        assert!(sizes.windows(2).all(|w| w[1] > w[0] && w[1] % 8 == 0));
        assert_eq!(*sizes.last().unwrap(), 1 << 20);
        assert_eq!(sizes[sizes.len() - 2], 512 * 1024);
    }

    #[test]
    fn a_120_byte_payload_fits_a_144_byte_chunk() {
        // 20-byte key + 100-byte value + 24-byte header (flags 0) = 144 bytes, with the given
        // factor and with the automatic ones of -m 64 (1.25) and from -m 1024 (1.04; at 1.16
        // and 1.08, -m 256 and 512, it takes a 152-byte chunk)
        for mb in [64, 1024, 4096] {
            for c in [cfg(mb), SlabConfig { factor: None, ..cfg(mb) }] {
                let (sizes, _) = class_sizes(&c, 1 << 20);
                let fit = sizes.iter().find(|&&s| s >= 144).unwrap();
                assert_eq!(*fit, 144, "{sizes:?}");
            }
        }
    }

    #[test]
    fn the_automatic_factor_is_finer_with_more_pages() {
        let auto = |mb: usize| SlabConfig { factor: None, ..cfg(mb) };
        let factor = |mb| class_sizes(&auto(mb), 1 << 20).1;
        assert_eq!(
            [factor(64), factor(160), factor(256), factor(512), factor(1024), factor(65536)],
            [1.25, 1.25, 1.16, 1.08, 1.04, 1.04]
        );
        // at 1.25 the automatic classes are the explicit ones
        assert_eq!(class_sizes(&auto(64), 1 << 20).0, class_sizes(&cfg(64), 1 << 20).0);
        for mb in [64, 256, 512, 1024, 65536] {
            let (sizes, _) = class_sizes(&auto(mb), 1 << 20);
            let pages = mb;
            assert!(
                sizes.len() <= MAX_CLASSES && (sizes.len() <= pages / 4 || sizes.len() <= 41),
                "{mb}: {}",
                sizes.len()
            );
            assert!(sizes.windows(2).all(|w| w[1] > w[0] && w[1] % 8 == 0));
            assert_eq!(sizes[sizes.len() - 2..], [512 * 1024, 1 << 20]);
        }
        let (fine, _) = class_sizes(&auto(1024), 1 << 20);
        assert_eq!(fine.len(), 228);
        // 8-byte steps while 4 % is under 8 bytes, then 4 % apart
        assert_eq!(fine[..4], [72, 80, 88, 96]);
        // (rounding up to 8 adds at most 8 bytes to a 4 % step)
        assert!(fine[..fine.len() - 2].windows(2).all(|w| w[1] as f64 <= w[0] as f64 * 1.04 + 8.0), "{fine:?}");
    }

    #[test]
    fn a_given_factor_stops_at_memcacheds_class_count() {
        // memcached: 62 classes growing by -f, then slab_chunk_max; ours adds the page-sized one
        let (sizes, f) = class_sizes(&SlabConfig { factor: Some(1.01), ..cfg(4096) }, 1 << 20);
        assert_eq!((sizes.len(), f), (crate::memcached::SLAB_CLASSES_MAX + 1, 1.01));
        assert_eq!(sizes[sizes.len() - 2..], [512 * 1024, 1 << 20]);
        // slab_sizes: as given (aligned), the reported factor stays memcached's default
        let given = SlabConfig { factor: None, sizes: Some(vec![100, 200, 300]), ..cfg(4096) };
        assert_eq!(class_sizes(&given, 1 << 20), (vec![104, 200, 304, 1 << 20], 1.25));
    }

    #[test]
    fn class_for_finds_the_smallest_class_that_fits() {
        let s = Slabs::new(&SlabConfig { factor: None, ..cfg(1024) });
        assert_eq!(s.class_count(), 228);
        let sizes: Vec<_> = (1..=s.class_count()).map(|c| s.class_info(c).size).collect();
        for size in (0..=(1 << 20) + 1).step_by(3).chain([72, 73, 1 << 20, (1 << 20) + 1]) {
            let linear = sizes.iter().position(|&c| c >= size).map(|i| (i + 1) as u8);
            assert_eq!(s.class_for(size), linear, "{size}");
        }
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
    fn a_drained_page_can_go_straight_to_another_class() {
        let s = Slabs::new(&cfg(3));
        let big = s.class_for(1000).unwrap();
        while s.try_alloc(big, 1000).is_some() {}
        // the receiver carves part of a page first (memory is full, so it got a first page)
        let small = s.class_for(50).unwrap();
        let a = s.try_alloc_first_page(small, 50).unwrap();
        let (page, _) = s.begin_drain(big, |_| false).unwrap();
        s.end_drain_to(page, small);
        assert_eq!((s.spare_pages(), s.moves.load(Ordering::Relaxed)), (0, 1));
        let per_page = s.class_info(small as usize).per_page;
        // every chunk of both pages can be had, each once, and then nothing more
        let mut got = std::collections::HashSet::from([a]);
        while let Some(r) = s.try_alloc(small, 50) {
            assert!(got.insert(r), "{r} twice");
            assert_eq!(s.ptr(r).state(), STATE_RESERVED);
        }
        assert_eq!(got.len(), 2 * per_page);
        assert!(got.iter().filter(|&&r| s.page_of(r) == page).count() == per_page);
        assert_eq!(s.pages_per_class()[small as usize], 2);
        assert_eq!(s.counters(small as usize).used.load(Ordering::Relaxed), 2 * per_page as u64);
        // the hand walks both pages
        let mut st = s.lock(small);
        assert_eq!(s.carved_chunks(small, &st), 2 * per_page);
        let seen: std::collections::HashSet<_> =
            (0..2 * per_page).map(|_| s.hand_next(small, &mut st).unwrap()).collect();
        assert_eq!(seen, got);
    }

    #[test]
    fn peek_hand_looks_ahead_of_the_hand_without_moving_it() {
        let s = Slabs::new(&cfg(4));
        let refs: Vec<_> = (0..5).map(|_| s.try_alloc(1, 50).unwrap()).collect();
        s.hand_next(1, &mut s.lock(1));
        let mut seen = Vec::new();
        s.peek_hand(1, 10, |it| seen.push(it));
        // four after the hand, then around to the first: never more than the carved chunks
        let want: Vec<_> = [1, 2, 3, 4, 0].iter().map(|&i| s.ptr(refs[i])).collect();
        assert_eq!(seen, want);
        assert_eq!(s.hand_next(1, &mut s.lock(1)), Some(refs[1]));
        assert_eq!(s.free_chunks(1), s.class_info(1).per_page - 5);
        let mut none = 0;
        s.peek_hand(2, 10, |_| none += 1);
        assert_eq!(none, 0);
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

//! Storage: the cache itself. Keys and values in, domain outcomes out; no wire formats.
//!
//! Owns: the lock-striped index (`shards`: many more stripes than threads, each a
//! `parking_lot::Mutex` around an `index::Index` of 4-byte chunk references), the slab
//! allocator (`slab`), item layout (`item`), CAS uniques, flush deadlines, eviction, page moves
//! between classes, and the expiry crawler step. Time comes from `clock::Clock`, so tests can
//! move it.
//!
//! Every operation hashes the key once; the hash picks the stripe (bits 32..), the bucket (low
//! bits) and the bucket's tag (top byte).
//!
//! Lock order: shard -> class (slab). Code that holds a class lock only `try_lock`s shards
//! (eviction). Allocation (`alloc`) is never called with a shard lock held: it may evict or move
//! a page, which locks shards. Operations that must allocate while an item is locked
//! (append, growing incr) read what they need, unlock, allocate, relock and re-check.
//!
//! Visibility: `item` and `slab` are crate-private, and their raw chunk access (`ItemPtr`,
//! `Slabs::ptr`, `value_mut`) is visible only inside `storage`, which keeps the rules written
//! in `item`; everything else reaches items through `Entry` (under the shard lock), `Pinned`
//! (a value kept alive and unchanged) and `Reservation` (a value being filled), whose safe APIs
//! cannot outlive or alias the memory they point into.
//!
//! Eviction is CLOCK with second chance per slab class: every access sets the item's ACTIVE
//! bit; the class hand clears it when passing and evicts the first linked item without it.
//! This keeps reads free of any global LRU lock, like memcached's segmented LRU keeps reads off
//! its LRU locks.

mod arena;
pub mod automove;
pub mod clock;
mod cpu;
pub mod events;
mod handle;
mod index;
pub(crate) mod item;
pub(crate) mod slab;

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;

pub use clock::Clock;
pub use handle::{Pinned, Reservation};
use index::{Hint, Index};
use item::{
    ItemPtr, BIT_ACTIVE, BIT_FETCHED, BIT_KEY_BINARY, BIT_PINNED, BIT_STALE, BIT_TOKEN_SENT, HEADER, STATE_FREE,
    STATE_LINKED, STATE_RESERVED,
};
use slab::{ChunkRef, ClassSnapshot, SlabConfig, Slabs};

pub use item::{BIT_KEY_BINARY as KEY_BINARY, BIT_STALE as STALE, BIT_TOKEN_SENT as TOKEN_SENT};

pub use crate::memcached::KEY_MAX;

/// Record a fetch on a live item (its shard lock held). The first fetch marks it FETCHED and
/// ACTIVE but leaves the last-access time alone, as memcached does (its time moves on the
/// second fetch, `mg k l` shows that); later fetches move the time. Nothing is written that
/// already holds the value, so many readers of one hot item share its header's cache line
/// instead of bouncing it between cores (store/hot_90_10_x2: see the commit message).
#[inline]
fn mark_fetched(it: ItemPtr, now: u32) {
    let bits = it.bits();
    if bits & (BIT_ACTIVE | BIT_FETCHED) != BIT_ACTIVE | BIT_FETCHED {
        it.set_bits(BIT_ACTIVE | BIT_FETCHED);
    }
    if bits & BIT_FETCHED != 0 && it.atime() != now {
        it.set_atime(now);
    }
}

/// How the store is sized and behaves.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub limit_bytes: usize,
    pub item_size_max: usize,
    /// `-f`; `None`: chosen from `limit_bytes` (`slab::auto_factor`).
    pub factor: Option<f64>,
    pub min_space: usize,
    pub chunk_max: usize,
    pub slab_sizes: Option<Vec<usize>>,
    /// Evict when memory is full (`-M` turns this off).
    pub evictions: bool,
    /// CAS uniques visible to clients (`-C` turns this off).
    pub use_cas: bool,
    /// log2 of the number of lock stripes.
    pub shard_bits: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            limit_bytes: 64 << 20,
            item_size_max: 1 << 20,
            factor: None,
            min_space: 48,
            chunk_max: 512 * 1024,
            slab_sizes: None,
            evictions: true,
            use_cas: true,
            shard_bits: 10,
        }
    }
}

/// Storage commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
    /// Set only if the CAS matches (text `cas`, any binary store with a CAS).
    Cas,
}

/// One store request.
#[derive(Clone, Copy, Debug)]
pub struct StoreReq<'a> {
    pub mode: Mode,
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub flags: u32,
    /// Client exptime (0 never, negative expired, <= 30 days relative, else absolute).
    pub exptime: i64,
    /// CAS to compare against (0: none).
    pub cas: u64,
    /// Use this CAS for the new item instead of the next unique (meta `E`).
    pub new_cas: Option<u64>,
    /// Accept a lower CAS and store the item marked stale (meta `I` with `C`).
    pub stale_ok: bool,
    /// Append/prepend create the item when missing, with this exptime (meta `N`).
    pub vivify: Option<i64>,
    /// Mark the new item `KEY_BINARY` (the client sent the key base64-encoded). Append and
    /// prepend build a fresh item that does not keep the mark, as memcached does.
    pub key_binary: bool,
}

impl<'a> StoreReq<'a> {
    pub fn new(mode: Mode, key: &'a [u8], value: &'a [u8], flags: u32, exptime: i64) -> Self {
        StoreReq {
            mode,
            key,
            value,
            flags,
            exptime,
            cas: 0,
            new_cas: None,
            stale_ok: false,
            vivify: None,
            key_binary: false,
        }
    }
}

/// Result of a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOutcome {
    Stored { cas: u64 },
    NotStored,
    Exists,
    NotFound,
    TooLarge,
    NoMemory,
}

/// Result of incr/decr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeltaOutcome {
    /// The new number, the item's CAS and slab class (for per-class `stats slabs` counters).
    Value {
        value: u64,
        cas: u64,
        class: u8,
    },
    NotFound,
    NonNumeric,
    Exists,
    /// No memory for the changed number's new item.
    NoMemory,
    /// No memory (or room) for the item `create` asked for (binary tells the two apart).
    CreateNoMemory,
}

/// Result of delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Removed; the item was in this slab class.
    Deleted {
        class: u8,
    },
    NotFound,
    Exists,
}

/// Why `blank` left the item alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlankMiss {
    NotFound,
    /// The CAS did not match.
    Exists,
    NoMemory,
}

/// Why a lookup missed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Miss {
    Absent,
    Expired,
    Flushed,
}

/// Options for reads.
#[derive(Clone, Copy, Debug)]
pub struct GetOpts {
    /// Count as an access: mark ACTIVE (LRU), set last-access time and FETCHED.
    pub bump: bool,
    /// New client exptime (touch / gat / meta `T`).
    pub touch: Option<i64>,
}

impl GetOpts {
    pub const GET: GetOpts = GetOpts { bump: true, touch: None };
    pub fn touch(exptime: i64) -> GetOpts {
        GetOpts { bump: true, touch: Some(exptime) }
    }
}

/// A key and its hash (`Store::hashed`): hashed once for the prefetches of a batch of lookups
/// and the lookup itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct Hashed<'k> {
    pub key: &'k [u8],
    h: u64,
}

/// A live item, seen while its shard is locked (only inside the callbacks of `get`/`update`).
pub struct Entry<'s> {
    it: ItemPtr,
    chunk: ChunkRef,
    store: &'s Store,
    /// Last access before this request (relative seconds).
    pub prev_atime: u32,
    /// Whether it had been fetched before this request.
    pub fetched_before: bool,
    /// This request created the item (`get_or_create`, or `delta_with` with `create`).
    pub created: bool,
}

impl Entry<'_> {
    pub fn key(&self) -> &[u8] {
        self.it.key()
    }
    pub fn value(&self) -> &[u8] {
        self.it.value()
    }
    pub fn flags(&self) -> u32 {
        self.it.flags()
    }
    /// CAS unique as clients see it (0 with `-C`).
    pub fn cas(&self) -> u64 {
        self.store.visible_cas(self.it)
    }
    /// Relative exptime (0 = never).
    pub fn exptime(&self) -> u32 {
        self.it.exptime()
    }
    /// Seconds to live, -1 for never.
    pub fn ttl(&self) -> i64 {
        match self.it.exptime() {
            0 => -1,
            e => e as i64 - self.store.clock.now() as i64,
        }
    }
    /// Total bytes of the item as stored.
    pub fn total(&self) -> usize {
        self.it.total()
    }
    pub fn class(&self) -> u8 {
        self.it.class()
    }
    pub fn bits(&self) -> u8 {
        self.it.bits()
    }
    pub fn set_bits(&self, b: u8) {
        self.it.set_bits(b)
    }
    pub fn clear_bits(&self, b: u8) {
        self.it.clear_bits(b)
    }
    pub fn is_stale(&self) -> bool {
        self.it.bits() & BIT_STALE != 0
    }
    pub fn token_sent(&self) -> bool {
        self.it.bits() & BIT_TOKEN_SENT != 0
    }
    /// Set a new client exptime.
    pub fn set_exptime(&self, exptime: i64) {
        self.store.set_exptime_locked(self.it, self.store.clock.realtime(exptime))
    }
    /// Set a new exptime already on the server clock (`Clock::realtime`; 0 = never).
    pub fn set_exptime_rel(&self, exptime: u32) {
        self.store.set_exptime_locked(self.it, exptime)
    }
    /// Count an access now: LRU second chance, FETCHED, last-access time. For callers that
    /// read with `GetOpts { bump: false, .. }` and decide afterwards.
    pub fn bump(&self) {
        mark_fetched(self.it, self.store.clock.now());
    }
    /// Give the item a new CAS unique (or the one given), returning it.
    pub fn renew_cas(&self, cas: Option<u64>) -> u64 {
        let c = cas.unwrap_or_else(|| self.store.next_cas());
        self.it.set_cas(c);
        self.store.visible_cas(self.it)
    }
}

/// Store-wide counters (per-class ones live in the slab classes).
#[derive(Default, Debug)]
pub struct StoreCounters {
    pub total_items: AtomicU64,
    pub evictions: AtomicU64,
    pub reclaimed: AtomicU64,
    pub expired_unfetched: AtomicU64,
    pub evicted_unfetched: AtomicU64,
    pub evicted_active: AtomicU64,
    pub crawler_reclaimed: AtomicU64,
    pub crawler_items_checked: AtomicU64,
    pub slab_reassign_evictions: AtomicU64,
    pub outofmemory: AtomicU64,
    pub direct_reclaims: AtomicU64,
    /// Lookups (by any command) that found the key expired or flushed, as memcached's
    /// `do_item_get` counts `get_expired` / `get_flushed` for every caller.
    pub get_expired: AtomicU64,
    pub get_flushed: AtomicU64,
}

/// Outcome of [`Store::reassign`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reassign {
    Ok,
    /// The source class has fewer than two pages.
    NoSpare,
    /// No class could be picked for source `-1`.
    BadClass,
}

/// A consistent-enough view of the store for `stats`.
#[derive(Clone, Debug, Default)]
pub struct StoreSnapshot {
    pub curr_items: u64,
    pub bytes: u64,
    pub total_items: u64,
    pub evictions: u64,
    pub reclaimed: u64,
    pub expired_unfetched: u64,
    pub evicted_unfetched: u64,
    pub evicted_active: u64,
    pub crawler_reclaimed: u64,
    pub crawler_items_checked: u64,
    pub get_expired: u64,
    pub get_flushed: u64,
    pub limit_bytes: u64,
    pub malloced: u64,
    pub hash_bytes: u64,
    pub hash_buckets: u64,
    pub slabs_moved: u64,
    pub spare_pages: u64,
    pub classes: Vec<ClassSnapshot>,
}

struct Shard {
    index: Mutex<Index>,
    /// Some item of the stripe may have an exptime (set under the lock whenever one is given
    /// one; cleared by the crawler, under the lock, when it finds none). The crawler passes
    /// over a stripe without it unless a flush is pending: with 1M items that never expire,
    /// its pass over every item every 5 s was 1.7-2.3 % of the server's CPU samples under
    /// load, one cache miss per item.
    expiring: AtomicBool,
    items: AtomicU64,
    bytes: AtomicU64,
}

/// The cache.
pub struct Store {
    slabs: Slabs,
    shards: Box<[CachePadded<Shard>]>,
    /// Where each stripe's index buckets are, for prefetching without its lock: apart from the
    /// stripes so that they stay cached (16 KB; 1,024 padded stripes take 128 KB, and reading
    /// the hint from the stripe missed the cache in ~half of the lookahead's samples).
    hints: Box<[Hint]>,
    shard_mask: u64,
    hasher: foldhash::fast::FixedState,
    clock: Arc<Clock>,
    next_cas: AtomicU64,
    /// Relative time up to which items are flushed (0: none pending).
    oldest_live: AtomicU32,
    /// Items with a CAS below this are flushed (with `oldest_live`).
    oldest_cas: AtomicU64,
    evictions_enabled: bool,
    use_cas: bool,
    item_size_max: usize,
    limit_bytes: AtomicU64,
    pub counters: StoreCounters,
    /// Pin counts of items referenced by unsent replies (`handle::Pinned`). Lock order:
    /// shard -> pins -> class.
    pins: Mutex<std::collections::HashMap<ChunkRef, handle::PinCount>>,
    /// Who is told about lookups, stores and evictions (`watch`); set once by the server.
    events: std::sync::OnceLock<Arc<dyn events::Events>>,
    /// Whether `events` wants to be told anything now (set by the listener).
    listening: Arc<events::Switch>,
}

/// Chunks the eviction hand may look at for one allocation before giving up.
const EVICT_SCAN_LIMIT: usize = 50_000;

/// How long a page move waits (in yields) for a RESERVED chunk before giving up on the page.
const DRAIN_WAIT_YIELDS: u32 = 64;

/// Chunks looked at from a class's eviction hand to tell how old its oldest items are
/// (`automove`): the oldest of a few, so one recently reused chunk does not hide the rest.
const AGE_SAMPLE: usize = 8;

impl Store {
    pub fn new(cfg: &StoreConfig, clock: Arc<Clock>) -> Store {
        let slabs = Slabs::new(&SlabConfig {
            limit_bytes: cfg.limit_bytes,
            item_size_max: cfg.item_size_max,
            factor: cfg.factor,
            min_space: cfg.min_space,
            header: HEADER,
            chunk_max: cfg.chunk_max,
            sizes: cfg.slab_sizes.clone(),
        });
        let n = 1usize << cfg.shard_bits;
        let seed = {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            t ^ (std::process::id() as u64).rotate_left(32) ^ (&t as *const u64 as u64)
        };
        Store {
            slabs,
            shards: (0..n)
                .map(|_| {
                    CachePadded::new(Shard {
                        index: Mutex::new(Index::new()),
                        expiring: AtomicBool::new(false),
                        items: AtomicU64::new(0),
                        bytes: AtomicU64::new(0),
                    })
                })
                .collect(),
            hints: (0..n).map(|_| Hint::default()).collect(),
            shard_mask: (n - 1) as u64,
            hasher: foldhash::fast::FixedState::with_seed(seed),
            clock,
            next_cas: AtomicU64::new(0),
            oldest_live: AtomicU32::new(0),
            oldest_cas: AtomicU64::new(0),
            evictions_enabled: cfg.evictions,
            use_cas: cfg.use_cas,
            item_size_max: cfg.item_size_max,
            limit_bytes: AtomicU64::new(cfg.limit_bytes as u64),
            counters: StoreCounters::default(),
            pins: Mutex::new(std::collections::HashMap::new()),
            events: std::sync::OnceLock::new(),
            listening: Arc::default(),
        }
    }

    /// Report lookups, stores and evictions to `ev` (once; later calls are ignored).
    pub fn set_events(&self, ev: Arc<dyn events::Events>) {
        if self.events.set(ev.clone()).is_ok() {
            ev.attach(self.listening.clone());
        }
    }

    /// The listener, when one is set and listening.
    #[inline]
    fn watching(&self) -> Option<&dyn events::Events> {
        if self.listening.on() {
            self.events.get().map(|e| &**e)
        } else {
            None
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn slabs(&self) -> &Slabs {
        &self.slabs
    }

    pub fn item_size_max(&self) -> usize {
        self.item_size_max
    }

    pub fn use_cas(&self) -> bool {
        self.use_cas
    }

    #[inline]
    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    #[inline]
    fn stripe(&self, h: u64) -> usize {
        ((h >> 32) & self.shard_mask) as usize
    }

    #[inline]
    fn shard(&self, h: u64) -> &Shard {
        &self.shards[self.stripe(h)]
    }

    #[inline]
    fn next_cas(&self) -> u64 {
        self.next_cas.fetch_add(1, Ordering::Relaxed) + 1
    }

    #[inline]
    fn visible_cas(&self, it: ItemPtr) -> u64 {
        if self.use_cas {
            it.cas()
        } else {
            0
        }
    }

    /// The slab class an item of this key length, value length and client flags is stored in
    /// (0 when none fits): the class its per-class `stats slabs` counters go to, whatever the
    /// protocol.
    pub fn class_of(&self, klen: usize, vlen: usize, flags: u32) -> usize {
        self.slabs.class_for(item::item_size_flags(klen, vlen, flags)).map_or(0, usize::from)
    }

    /// Whether an item of this key/value/flags is over `-I`, counted as memcached counts it
    /// (48-byte header, 8-byte CAS, key + NUL, value + CRLF, 4 bytes of non-zero flags), so the
    /// limit falls exactly where memcached's does.
    pub fn too_large(&self, klen: usize, vlen: usize, flags: u32) -> bool {
        crate::memcached::item_total(klen, vlen, flags, self.use_cas) > self.item_size_max
    }

    #[inline]
    fn find(&self, table: &Index, h: u64, key: &[u8]) -> Option<ChunkRef> {
        self.find_item(table, h, key).map(|(r, _)| r)
    }

    /// `find`, with the item's pointer (computed once for the key compare).
    #[inline]
    fn find_item(&self, table: &Index, h: u64, key: &[u8]) -> Option<(ChunkRef, ItemPtr)> {
        table.find_map(h, |r| {
            let it = self.slabs.ptr(r);
            (it.key() == key).then_some((r, it))
        })
    }

    /// An `Entry` for a live item whose shard lock the caller holds.
    #[inline]
    fn entry(&self, chunk: ChunkRef, created: bool) -> Entry<'_> {
        self.entry_at(chunk, self.slabs.ptr(chunk), created)
    }

    /// `entry` of a chunk whose pointer is at hand.
    #[inline]
    fn entry_at(&self, chunk: ChunkRef, it: ItemPtr, created: bool) -> Entry<'_> {
        Entry { it, chunk, store: self, prev_atime: it.atime(), fetched_before: it.bits() & BIT_FETCHED != 0, created }
    }

    /// Give a linked item a new exptime (server clock; 0 = never). Its stripe is locked.
    fn set_exptime_locked(&self, it: ItemPtr, exptime: u32) {
        it.set_exptime(exptime);
        if exptime != 0 {
            self.shard(self.hash(it.key())).expiring.store(true, Ordering::Relaxed);
        }
    }

    /// Why `it` is not live, if it is not.
    #[inline]
    fn dead(&self, it: ItemPtr, now: u32) -> Option<Miss> {
        let oldest = self.oldest_live.load(Ordering::Relaxed);
        if oldest != 0 && oldest <= now {
            let ocas = self.oldest_cas.load(Ordering::Relaxed);
            if it.atime() <= oldest || (ocas != 0 && it.cas() != 0 && it.cas() < ocas) {
                return Some(Miss::Flushed);
            }
        }
        let e = it.exptime();
        if e != 0 && e <= now {
            return Some(Miss::Expired);
        }
        None
    }

    /// Remove a linked item from its shard and free its chunk. Shard lock held.
    fn unlink_locked(&self, table: &mut Index, shard: &Shard, h: u64, r: ChunkRef) {
        table.remove(h, r);
        let it = self.slabs.ptr(r);
        shard.items.fetch_sub(1, Ordering::Relaxed);
        shard.bytes.fetch_sub(it.total() as u64, Ordering::Relaxed);
        self.release(r, it);
    }

    /// Link a RESERVED chunk, replacing `old` if given. Shard lock held.
    fn link_locked(&self, table: &mut Index, shard: &Shard, h: u64, r: ChunkRef, old: Option<ChunkRef>) {
        let it = self.slabs.ptr(r);
        if let Some(o) = old {
            self.unlink_locked(table, shard, h, o);
        }
        table.insert(h, r, |x| self.hash(self.slabs.ptr(x).key()));
        self.hints[self.stripe(h)].publish(table);
        it.set_state(STATE_LINKED);
        if it.exptime() != 0 {
            shard.expiring.store(true, Ordering::Relaxed);
        }
        shard.items.fetch_add(1, Ordering::Relaxed);
        shard.bytes.fetch_add(it.total() as u64, Ordering::Relaxed);
        self.counters.total_items.fetch_add(1, Ordering::Relaxed);
    }

    /// Find a live item, reporting the lookup to a `watch`er.
    fn lookup_locked(&self, table: &mut Index, shard: &Shard, h: u64, key: &[u8], now: u32) -> Result<ChunkRef, Miss> {
        self.lookup_item_locked(table, shard, h, key, now).map(|(r, _)| r)
    }

    /// `lookup_locked`, with the item's pointer. A dead item found is unlinked (lazy expiry).
    #[inline]
    fn lookup_item_locked(
        &self,
        table: &mut Index,
        shard: &Shard,
        h: u64,
        key: &[u8],
        now: u32,
    ) -> Result<(ChunkRef, ItemPtr), Miss> {
        let found = match self.find_item(table, h, key) {
            None => Err(Miss::Absent),
            Some((r, it)) => match self.dead(it, now) {
                None => Ok((r, it)),
                Some(why) => {
                    let seen =
                        if why == Miss::Expired { &self.counters.get_expired } else { &self.counters.get_flushed };
                    seen.fetch_add(1, Ordering::Relaxed);
                    if why == Miss::Expired && it.bits() & BIT_FETCHED == 0 {
                        self.counters.expired_unfetched.fetch_add(1, Ordering::Relaxed);
                        self.slabs.counters(it.class() as usize).expired_unfetched.fetch_add(1, Ordering::Relaxed);
                    }
                    self.unlink_locked(table, shard, h, r);
                    Err(why)
                }
            },
        };
        if let Some(ev) = self.watching() {
            ev.fetched(key, found.ok().map(|(_, it)| (it.class(), it.value().len())));
        }
        found
    }

    /// `key` with its hash, for `prefetch_bucket`, `prefetch_item` and `get_hashed`.
    #[inline]
    pub fn hashed<'k>(&self, key: &'k [u8]) -> Hashed<'k> {
        Hashed { key, h: self.hash(key) }
    }

    /// Start loading the index bucket of `k`, and its stripe (lock and table), from memory,
    /// without locking or waiting.
    #[inline]
    pub fn prefetch_bucket(&self, k: &Hashed<'_>) {
        let i = self.stripe(k.h);
        if let Some(shard) = self.shards.get(i) {
            cpu::prefetch(&**shard as *const Shard as *const u8);
        }
        self.hints[i].prefetch(k.h);
    }

    /// Start loading the item `k` names (its header, key and the start of its value): reads
    /// `k`'s bucket, which `prefetch_bucket` should have started loading a little earlier, if
    /// its stripe is not locked at the moment (else nothing is done: this is only a hint).
    #[inline]
    pub fn prefetch_item(&self, k: &Hashed<'_>) {
        if let Some(table) = self.shard(k.h).index.try_lock() {
            table.candidates(k.h, |r| {
                let p = self.slabs.ptr(r).addr();
                // 24-byte header, key, the value's start (its copy then streams on)
                cpu::prefetch(p);
                cpu::prefetch(p.wrapping_add(64));
            });
        }
    }

    /// Look up `key`; on a hit, apply `opts` and call `f` with the item while it is locked.
    pub fn get<R>(&self, key: &[u8], opts: GetOpts, f: impl FnOnce(&Entry<'_>) -> R) -> Result<R, Miss> {
        self.get_hashed(self.hashed(key), opts, f)
    }

    /// `get` of a key hashed already.
    #[inline]
    pub fn get_hashed<R>(&self, k: Hashed<'_>, opts: GetOpts, f: impl FnOnce(&Entry<'_>) -> R) -> Result<R, Miss> {
        let Hashed { key, h } = k;
        let shard = self.shard(h);
        let now = self.clock.now();
        let mut table = shard.index.lock();
        let (r, it) = self.lookup_item_locked(&mut table, shard, h, key, now)?;
        Ok(self.hit_at(r, it, opts, now, false, f))
    }

    /// Apply `opts` to a live item and call `f`. Shard lock held.
    fn hit_locked<R>(&self, r: ChunkRef, opts: GetOpts, now: u32, created: bool, f: impl FnOnce(&Entry<'_>) -> R) -> R {
        self.hit_at(r, self.slabs.ptr(r), opts, now, created, f)
    }

    /// `hit_locked` of a chunk whose pointer is at hand.
    #[inline]
    fn hit_at<R>(
        &self,
        r: ChunkRef,
        it: ItemPtr,
        opts: GetOpts,
        now: u32,
        created: bool,
        f: impl FnOnce(&Entry<'_>) -> R,
    ) -> R {
        let entry = self.entry_at(r, it, created);
        let it = entry.it;
        if let Some(t) = opts.touch {
            self.set_exptime_locked(it, self.clock.realtime(t));
        }
        if opts.bump {
            mark_fetched(it, now);
        }
        f(&entry)
    }

    /// `get`, but a miss creates an empty item (flags 0, never expires, CAS `cas` or the next
    /// unique) and `f` sees it with `Entry::created` set. The creation and `f` happen under one
    /// hold of the item's lock, so whatever `f` marks on the new item (a win token) is seen by
    /// every later reader: of several racing callers exactly one sees `created`. Fails only when
    /// no memory can be had for the new item.
    pub fn get_or_create<R>(
        &self,
        key: &[u8],
        opts: GetOpts,
        cas: Option<u64>,
        f: impl FnOnce(&Entry<'_>) -> R,
    ) -> Result<R, Miss> {
        let h = self.hash(key);
        let shard = self.shard(h);
        // A first look without allocating: the common case is a hit.
        {
            let now = self.clock.now();
            let mut table = shard.index.lock();
            if let Ok(r) = self.lookup_locked(&mut table, shard, h, key, now) {
                return Ok(self.hit_locked(r, opts, now, false, f));
            }
        }
        if key.len() > KEY_MAX || self.too_large(key.len(), 0, 0) {
            return Err(Miss::Absent);
        }
        let Some(r) = self.build(key, &[], 0, 0) else {
            return Err(Miss::Absent);
        };
        let now = self.clock.now();
        let mut table = shard.index.lock();
        match self.lookup_locked(&mut table, shard, h, key, now) {
            Ok(o) => {
                // Someone created it meanwhile: ours is not needed.
                self.abandon(r);
                Ok(self.hit_locked(o, opts, now, false, f))
            }
            Err(_) => {
                let it = self.slabs.ptr(r);
                it.set_cas(cas.unwrap_or_else(|| self.next_cas()));
                self.link_locked(&mut table, shard, h, r, None);
                Ok(self.hit_locked(r, opts, now, true, f))
            }
        }
    }

    /// Like `get` but never counts as an access (meta `me`, internal use).
    pub fn peek<R>(&self, key: &[u8], f: impl FnOnce(&Entry<'_>) -> R) -> Result<R, Miss> {
        self.get(key, GetOpts { bump: false, touch: None }, f)
    }

    /// Set a new exptime on a live item.
    pub fn touch(&self, key: &[u8], exptime: i64) -> Result<(), Miss> {
        self.get(key, GetOpts::touch(exptime), |_| ())
    }

    /// Allocate a RESERVED chunk for an item of `size` bytes, evicting or moving a page when
    /// memory is full. Must not be called with a shard lock held.
    fn alloc(&self, size: usize) -> Option<ChunkRef> {
        let class = self.slabs.class_for(size)?;
        if let Some(r) = self.slabs.try_alloc(class, size) {
            return Some(r);
        }
        if !self.evictions_enabled {
            let r = self.slabs.try_alloc_first_page(class, size);
            if r.is_none() {
                self.note_oom(class);
            }
            return r;
        }
        for _ in 0..4 {
            if let Some(r) = self.evict_one(class, size) {
                return Some(r);
            }
            if !self.move_page_to(class) {
                break;
            }
            if let Some(r) = self.slabs.try_alloc(class, size) {
                return Some(r);
            }
        }
        // Last try: somebody may have freed memory meanwhile; a class with no page at all may
        // take one past the budget (memcached's rule; see `Slabs::take_page`).
        let r = self.slabs.try_alloc(class, size).or_else(|| self.slabs.try_alloc_first_page(class, size));
        if r.is_none() {
            self.note_oom(class);
        }
        r
    }

    fn note_oom(&self, class: u8) {
        self.counters.outofmemory.fetch_add(1, Ordering::Relaxed);
        self.slabs.counters(class as usize).outofmemory.fetch_add(1, Ordering::Relaxed);
    }

    /// Run the class hand until one linked item can be taken; its chunk is returned RESERVED.
    fn evict_one(&self, class: u8, size: usize) -> Option<ChunkRef> {
        let now = self.clock.now();
        let mut st = self.slabs.lock(class);
        // Someone may have freed a chunk while we waited for the lock.
        if let Some(r) = st.free.pop() {
            drop(st);
            self.slabs.mark_reserved(class, r, size);
            return Some(r);
        }
        let carved = self.slabs.carved_chunks(class, &st);
        let limit = (carved * 2 + 1).min(EVICT_SCAN_LIMIT);
        let counters = self.slabs.counters(class as usize);
        for _ in 0..limit {
            let r = self.slabs.hand_next(class, &mut st)?;
            let it = self.slabs.ptr_in(class, r);
            if it.state() != STATE_LINKED {
                continue;
            }
            let why = self.dead(it, now);
            if why.is_none() && it.bits() & BIT_ACTIVE != 0 {
                it.clear_bits(BIT_ACTIVE);
                continue;
            }
            // The key is immutable while we hold the class lock (the chunk cannot be freed
            // into the free list and reused without it).
            let h = self.hash(it.key());
            let shard = self.shard(h);
            let Some(mut table) = shard.index.try_lock() else {
                continue;
            };
            // A pinned item is still being sent: its chunk cannot be reused yet.
            if it.state() != STATE_LINKED || it.bits() & BIT_PINNED != 0 {
                continue;
            }
            table.remove(h, r);
            let total = it.total();
            shard.items.fetch_sub(1, Ordering::Relaxed);
            shard.bytes.fetch_sub(total as u64, Ordering::Relaxed);
            drop(table);
            match why {
                Some(_) => {
                    self.counters.reclaimed.fetch_add(1, Ordering::Relaxed);
                    counters.reclaimed.fetch_add(1, Ordering::Relaxed);
                    if it.bits() & BIT_FETCHED == 0 {
                        self.counters.expired_unfetched.fetch_add(1, Ordering::Relaxed);
                        counters.expired_unfetched.fetch_add(1, Ordering::Relaxed);
                    }
                }
                None => {
                    if let Some(ev) = self.watching() {
                        let ttl = if it.exptime() == 0 { -1 } else { it.exptime() as i64 - now as i64 };
                        let la = now.saturating_sub(it.atime());
                        ev.evicted(it.key(), it.bits() & BIT_FETCHED != 0, ttl, la, class);
                    }
                    self.counters.evictions.fetch_add(1, Ordering::Relaxed);
                    counters.evicted.fetch_add(1, Ordering::Relaxed);
                    if it.exptime() != 0 {
                        counters.evicted_nonzero.fetch_add(1, Ordering::Relaxed);
                    }
                    counters.evicted_time.store(now.saturating_sub(it.atime()) as u64, Ordering::Relaxed);
                    if it.bits() & BIT_FETCHED == 0 {
                        self.counters.evicted_unfetched.fetch_add(1, Ordering::Relaxed);
                        counters.evicted_unfetched.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            // Hand the chunk straight to the caller.
            self.slabs.uncount(class, total);
            it.set_state(STATE_FREE);
            drop(st);
            self.slabs.mark_reserved(class, r, size);
            return Some(r);
        }
        None
    }

    /// Take a page from the class holding the most pages and give it to `dst` (via the spare
    /// pool). Every item on the page is evicted. Returns false if no page could be moved.
    fn move_page_to(&self, dst: u8) -> bool {
        let _mover = self.slabs.mover.lock();
        // Another thread may have moved a page while we waited.
        if self.slabs.spare_pages() > 0 {
            return true;
        }
        let per_class = self.slabs.pages_per_class();
        let victim = per_class
            .iter()
            .enumerate()
            // A class keeps its last page (as `slabs reassign` needs two): taking it would
            // evict every item of that class for one item of another, and when the other's
            // pages are all held by values still arriving, a stream of failing reservations
            // would empty the small classes one after the other.
            .filter(|&(c, &n)| c != dst as usize && n >= 2)
            .max_by_key(|&(_, &n)| n)
            .map(|(c, _)| c as u8);
        let Some(victim) = victim else {
            return false;
        };
        self.drain_page(victim, None)
    }

    /// One second of `slab_automove` (the maintenance thread calls it): sample every class's
    /// pages, free chunks, evictions and the age of the items at its eviction hand, and move
    /// the page `am` asks for. Returns the move made. Nothing moves with `-M`: a move evicts
    /// what the page holds.
    pub fn automove(&self, am: &mut automove::Automove) -> Option<automove::Move> {
        if !self.evictions_enabled {
            return None;
        }
        let now = self.clock.now();
        let pages = self.slabs.pages_per_class();
        let samples: Vec<_> = (0..=self.slabs.class_count())
            .map(|id| {
                let c = self.slabs.counters(id);
                let mut s = automove::ClassSample {
                    pages: pages[id],
                    per_page: self.slabs.class_info(id).per_page,
                    evicted: c.evicted.load(Ordering::Relaxed),
                    outofmemory: c.outofmemory.load(Ordering::Relaxed),
                    ..Default::default()
                };
                if id > 0 && s.pages > 0 {
                    s.free_chunks = self.slabs.free_chunks(id as u8);
                    self.slabs.peek_hand(id as u8, AGE_SAMPLE, |it| {
                        if it.state() == STATE_LINKED {
                            s.age = s.age.max(now.saturating_sub(it.atime()) as u64);
                        }
                    });
                }
                s
            })
            .collect();
        let mv = am.decide(&samples)?;
        let _mover = self.slabs.mover.lock();
        let moved = match mv {
            automove::Move::ToClass { src, dst } => self.drain_page(src as u8, Some(dst as u8)),
            automove::Move::ToPool { src } => self.drain_page(src as u8, None),
        };
        moved.then_some(mv)
    }

    /// `slabs reassign <src> <dst>`: empty one page of class `src` (evicting its items) into
    /// the global page pool, from which `dst`, or whichever class next runs out of memory,
    /// takes it. `None` for `src` picks the class with the most pages other than `dst`.
    /// memcached's outcomes: the source needs at least two pages (`NoSpare` otherwise).
    pub fn reassign(&self, src: Option<u8>, dst: u8) -> Reassign {
        let _mover = self.slabs.mover.lock();
        let per_class = self.slabs.pages_per_class();
        let src = match src {
            Some(s) => s,
            None => match per_class
                .iter()
                .enumerate()
                .filter(|&(c, &n)| c != 0 && c != dst as usize && n >= 2)
                .max_by_key(|&(_, &n)| n)
            {
                Some((c, _)) => c as u8,
                None => return Reassign::BadClass,
            },
        };
        if src == 0 {
            // the pool itself: nothing to move, its pages are free for every class already
            return if self.slabs.spare_pages() >= 2 { Reassign::Ok } else { Reassign::NoSpare };
        }
        if per_class.get(src as usize).copied().unwrap_or(0) < 2 {
            return Reassign::NoSpare;
        }
        self.drain_page(src, None);
        Reassign::Ok
    }

    /// Empty one page of `victim`, evicting what it holds, into class `dst` or (`None`) the
    /// spare pool. The caller holds the mover lock.
    fn drain_page(&self, victim: u8, dst: Option<u8>) -> bool {
        let busy = |it: ItemPtr| it.state() == STATE_RESERVED || it.bits() & BIT_PINNED != 0;
        let Some((page, carved)) = self.slabs.begin_drain(victim, busy) else {
            return false;
        };
        let counters = self.slabs.counters(victim as usize);
        for slot in 0..carved {
            let (r, it) = self.slabs.drain_ptr(victim, page, slot);
            let mut waited = 0;
            loop {
                match it.state() {
                    STATE_FREE => break,
                    STATE_RESERVED if waited < DRAIN_WAIT_YIELDS => {
                        // Usually an item being built by another thread, linked or freed
                        // within microseconds.
                        waited += 1;
                        std::thread::yield_now();
                        continue;
                    }
                    STATE_RESERVED => {
                        // A value still arriving from a client, or a replaced item still being
                        // sent: it may stay for as long as that client stalls. Give up.
                        self.slabs.abort_drain(victim, page, carved);
                        return false;
                    }
                    _ => {}
                }
                // LINKED: the page is draining, so the chunk cannot be reused and its key is
                // stable even if it is freed concurrently.
                let h = self.hash(it.key());
                let shard = self.shard(h);
                let mut table = shard.index.lock();
                if it.state() != STATE_LINKED {
                    continue;
                }
                if it.bits() & BIT_PINNED != 0 {
                    drop(table);
                    self.slabs.abort_drain(victim, page, carved);
                    return false;
                }
                table.remove(h, r);
                shard.items.fetch_sub(1, Ordering::Relaxed);
                shard.bytes.fetch_sub(it.total() as u64, Ordering::Relaxed);
                self.slabs.uncount(victim, it.total());
                it.set_state(STATE_FREE);
                drop(table);
                self.counters.slab_reassign_evictions.fetch_add(1, Ordering::Relaxed);
                self.counters.evictions.fetch_add(1, Ordering::Relaxed);
                counters.evicted.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
        match dst {
            Some(dst) => self.slabs.end_drain_to(page, dst),
            None => self.slabs.end_drain(page),
        }
        true
    }

    /// Allocate and fill a new item (RESERVED, not linked).
    fn build(&self, key: &[u8], parts: &[&[u8]], flags: u32, exptime_rel: u32) -> Option<ChunkRef> {
        let vlen: usize = parts.iter().map(|p| p.len()).sum();
        let size = item::item_size_flags(key.len(), vlen, flags);
        let r = self.alloc(size)?;
        let class = self.slabs.class_for(size)?;
        let it = self.slabs.ptr_in(class, r);
        it.init(class, key, flags, exptime_rel, self.clock.now(), vlen);
        let v = it.value_mut();
        let mut off = 0;
        for p in parts {
            v[off..off + p.len()].copy_from_slice(p);
            off += p.len();
        }
        Some(r)
    }

    /// Free a chunk that was never linked.
    fn abandon(&self, r: ChunkRef) {
        self.slabs.free(r, self.slabs.ptr(r));
    }

    /// set / add / replace / append / prepend / cas.
    pub fn store(&self, req: &StoreReq<'_>) -> StoreOutcome {
        self.store_sized(req).0
    }

    /// `store`, also returning the length of the stored value (after append/prepend: the new
    /// total; when nothing was stored: the request's value length).
    pub fn store_sized(&self, req: &StoreReq<'_>) -> (StoreOutcome, usize) {
        let done = self.store_unwatched(req);
        self.report_store(req, &done);
        done
    }

    /// Tell a watcher (`watch mutations`) how a store ended. Every way a store completes goes
    /// through here: a value from the input buffer (`store_sized`) and one received into its
    /// reserved chunk (`Reservation::commit`) alike.
    pub(super) fn report_store(&self, req: &StoreReq<'_>, done: &(StoreOutcome, usize)) {
        if let Some(ev) = self.watching() {
            let class = self.slabs.class_for(item::item_size_flags(req.key.len(), done.1, req.flags)).unwrap_or(0);
            ev.stored(req.key, req.mode, &done.0, req.exptime, class, done.1);
        }
    }

    fn store_unwatched(&self, req: &StoreReq<'_>) -> (StoreOutcome, usize) {
        if req.key.len() > KEY_MAX {
            return (StoreOutcome::NotStored, req.value.len());
        }
        if matches!(req.mode, Mode::Append | Mode::Prepend) {
            return self.store_concat(req);
        }
        (self.store_whole(req), req.value.len())
    }

    fn store_whole(&self, req: &StoreReq<'_>) -> StoreOutcome {
        if self.too_large(req.key.len(), req.value.len(), req.flags)
            || self.slabs.class_for(item::item_size(req.key.len(), req.value.len())).is_none()
        {
            return StoreOutcome::TooLarge;
        }
        let exptime = self.clock.realtime(req.exptime);
        let Some(r) = self.build(req.key, &[req.value], req.flags, exptime) else {
            return StoreOutcome::NoMemory;
        };
        self.store_whole_in(req, r)
    }

    /// The second half of a whole-value store: link the filled RESERVED chunk `r` (key, flags
    /// and value already in place) as `req.mode` says, or free it.
    fn store_whole_in(&self, req: &StoreReq<'_>, r: ChunkRef) -> StoreOutcome {
        let it = self.slabs.ptr(r);
        it.set_exptime(self.clock.realtime(req.exptime));
        if req.key_binary {
            it.set_bits(BIT_KEY_BINARY);
        }
        let h = self.hash(req.key);
        let shard = self.shard(h);
        let now = self.clock.now();
        let mut table = shard.index.lock();
        let old = self.lookup_locked(&mut table, shard, h, req.key, now).ok();
        let outcome = match old {
            Some(o) => {
                let oit = self.slabs.ptr(o);
                let ocas = self.visible_cas(oit);
                match req.mode {
                    Mode::Add => {
                        oit.set_bits(BIT_ACTIVE);
                        StoreOutcome::NotStored
                    }
                    Mode::Cas if req.cas == ocas && req.cas != 0 => StoreOutcome::Stored { cas: 0 },
                    Mode::Cas if req.stale_ok && req.cas < ocas && req.cas != 0 => {
                        // Stale set: keep TTL, mark stale, keep the win token.
                        it.set_exptime(oit.exptime());
                        it.set_bits(BIT_STALE | (oit.bits() & BIT_TOKEN_SENT));
                        StoreOutcome::Stored { cas: 0 }
                    }
                    Mode::Cas => StoreOutcome::Exists,
                    _ => StoreOutcome::Stored { cas: 0 },
                }
            }
            None => match req.mode {
                Mode::Add | Mode::Set => StoreOutcome::Stored { cas: 0 },
                Mode::Cas => StoreOutcome::NotFound,
                _ => StoreOutcome::NotStored,
            },
        };
        match outcome {
            StoreOutcome::Stored { .. } => {
                let cas = req.new_cas.unwrap_or_else(|| self.next_cas());
                it.set_cas(cas);
                self.link_locked(&mut table, shard, h, r, old);
                StoreOutcome::Stored { cas: self.visible_cas(it) }
            }
            other => {
                drop(table);
                self.abandon(r);
                other
            }
        }
    }

    fn store_concat(&self, req: &StoreReq<'_>) -> (StoreOutcome, usize) {
        let none = req.value.len();
        let h = self.hash(req.key);
        let shard = self.shard(h);
        for _ in 0..16 {
            let now = self.clock.now();
            let (old, old_cas, old_len, flags, exptime) = {
                let mut table = shard.index.lock();
                match self.lookup_locked(&mut table, shard, h, req.key, now) {
                    Ok(o) => {
                        let oit = self.slabs.ptr(o);
                        let vc = self.visible_cas(oit);
                        if req.cas != 0 && req.cas != vc {
                            return (StoreOutcome::Exists, none);
                        }
                        (o, oit.cas(), oit.vlen(), oit.flags(), oit.exptime())
                    }
                    Err(_) => {
                        drop(table);
                        if let Some(ttl) = req.vivify {
                            let mut add = *req;
                            add.mode = Mode::Add;
                            add.exptime = ttl;
                            add.vivify = None;
                            match self.store_whole(&add) {
                                StoreOutcome::NotStored => continue,
                                other => return (other, none),
                            }
                        }
                        return (StoreOutcome::NotStored, none);
                    }
                }
            };
            let vlen = old_len + req.value.len();
            if self.too_large(req.key.len(), vlen, flags) {
                return (StoreOutcome::NotStored, none);
            }
            let size = item::item_size_flags(req.key.len(), vlen, flags);
            let Some(r) = self.alloc(size) else {
                return (StoreOutcome::NotStored, none);
            };
            let class = self.slabs.class_for(size).unwrap_or(0);
            let it = self.slabs.ptr_in(class, r);
            it.init(class, req.key, flags, exptime, now, vlen);
            let mut table = shard.index.lock();
            match self.find(&table, h, req.key) {
                Some(o) if o == old && self.slabs.ptr(o).cas() == old_cas => {
                    let oval = self.slabs.ptr(o).value();
                    let v = it.value_mut();
                    if req.mode == Mode::Append {
                        v[..old_len].copy_from_slice(oval);
                        v[old_len..].copy_from_slice(req.value);
                    } else {
                        v[..req.value.len()].copy_from_slice(req.value);
                        v[req.value.len()..].copy_from_slice(oval);
                    }
                    // A fresh item: the stale mark, a win token and the base64-key mark of
                    // the old one are not carried over (memcached builds a new item too).
                    let cas = req.new_cas.unwrap_or_else(|| self.next_cas());
                    it.set_cas(cas);
                    self.link_locked(&mut table, shard, h, r, Some(o));
                    return (StoreOutcome::Stored { cas: self.visible_cas(it) }, vlen);
                }
                _ => {
                    drop(table);
                    self.abandon(r);
                }
            }
        }
        (StoreOutcome::NotStored, none)
    }

    /// incr / decr. `create`: (initial, exptime) to create a missing item with (binary, meta N).
    pub fn delta(
        &self,
        key: &[u8],
        incr: bool,
        delta: u64,
        cas_in: u64,
        create: Option<(u64, i64)>,
        new_cas: Option<u64>,
    ) -> DeltaOutcome {
        self.delta_with(key, incr, delta, cas_in, create, new_cas, |e, value| DeltaOutcome::Value {
            value,
            cas: e.cas(),
            class: e.class(),
        })
        .unwrap_or_else(|miss| miss)
    }

    /// incr / decr, calling `f` with the changed (or, with `create`, created) item and the new
    /// number while the item is still locked; the error is never `DeltaOutcome::Value`.
    /// A CAS to compare (`cas_in`) of 0 means none. A created item has `Entry::created` set,
    /// flags 0 and holds `initial` without the delta applied. The access counts for the LRU
    /// and the last-access time but does not mark the item fetched (as memcached's incr).
    #[allow(clippy::too_many_arguments)]
    pub fn delta_with<R>(
        &self,
        key: &[u8],
        incr: bool,
        delta: u64,
        cas_in: u64,
        create: Option<(u64, i64)>,
        new_cas: Option<u64>,
        f: impl FnOnce(&Entry<'_>, u64) -> R,
    ) -> Result<R, DeltaOutcome> {
        let h = self.hash(key);
        let shard = self.shard(h);
        let mut buf = itoa::Buffer::new();
        for _ in 0..16 {
            let now = self.clock.now();
            let mut table = shard.index.lock();
            let o = match self.lookup_locked(&mut table, shard, h, key, now) {
                Ok(o) => o,
                Err(_) => {
                    drop(table);
                    let Some((initial, exptime)) = create else {
                        return Err(DeltaOutcome::NotFound);
                    };
                    if key.len() > KEY_MAX {
                        return Err(DeltaOutcome::CreateNoMemory);
                    }
                    let digits = buf.format(initial).as_bytes();
                    let Some(r) = self.build(key, &[digits], 0, self.clock.realtime(exptime)) else {
                        return Err(DeltaOutcome::CreateNoMemory);
                    };
                    let now = self.clock.now();
                    let mut table = shard.index.lock();
                    if self.lookup_locked(&mut table, shard, h, key, now).is_ok() {
                        // Created by someone else meanwhile: start over on theirs.
                        drop(table);
                        self.abandon(r);
                        continue;
                    }
                    let it = self.slabs.ptr(r);
                    it.set_cas(new_cas.unwrap_or_else(|| self.next_cas()));
                    self.link_locked(&mut table, shard, h, r, None);
                    return Ok(f(&self.entry(r, true), initial));
                }
            };
            let oit = self.slabs.ptr(o);
            if cas_in != 0 && cas_in != self.visible_cas(oit) {
                return Err(DeltaOutcome::Exists);
            }
            let Some(cur) = parse_counter(oit.value()) else {
                return Err(DeltaOutcome::NonNumeric);
            };
            let value = if incr { cur.wrapping_add(delta) } else { cur.saturating_sub(delta) };
            let digits = buf.format(value).as_bytes();
            // In place only when no unsent reply references the value (see `handle`).
            if digits.len() <= oit.vlen() && oit.bits() & BIT_PINNED == 0 {
                let v = oit.value_mut();
                v[..digits.len()].copy_from_slice(digits);
                v[digits.len()..].fill(b' ');
                let cas = new_cas.unwrap_or_else(|| self.next_cas());
                oit.set_cas(cas);
                oit.set_bits(BIT_ACTIVE);
                oit.set_atime(now);
                return Ok(f(&self.entry(o, false), value));
            }
            // The number grew: build a new item and swap it in if nothing changed meanwhile.
            let (old_cas, flags, exptime) = (oit.cas(), oit.flags(), oit.exptime());
            drop(table);
            let Some(r) = self.build(key, &[digits], flags, exptime) else {
                return Err(DeltaOutcome::NoMemory);
            };
            let mut table = shard.index.lock();
            match self.find(&table, h, key) {
                Some(x) if x == o && self.slabs.ptr(x).cas() == old_cas => {
                    let it = self.slabs.ptr(r);
                    let cas = new_cas.unwrap_or_else(|| self.next_cas());
                    it.set_cas(cas);
                    it.set_bits(BIT_ACTIVE);
                    self.link_locked(&mut table, shard, h, r, Some(o));
                    return Ok(f(&self.entry(r, false), value));
                }
                _ => {
                    drop(table);
                    self.abandon(r);
                }
            }
        }
        Err(DeltaOutcome::NoMemory)
    }

    /// Replace a live item by an empty one with the same key, `flags` and client `exptime`,
    /// CAS `cas` (None: the old item's), if `cas_in` (when given; 0 is compared too) matches
    /// the old item's CAS. `f` runs on the new item under the same lock. The new item is fresh:
    /// not fetched, not stale, no win token.
    pub fn blank<R>(
        &self,
        key: &[u8],
        cas_in: Option<u64>,
        flags: u32,
        exptime: i64,
        cas: Option<u64>,
        f: impl FnOnce(&Entry<'_>) -> R,
    ) -> Result<R, BlankMiss> {
        let h = self.hash(key);
        let shard = self.shard(h);
        let exptime = self.clock.realtime(exptime);
        for _ in 0..16 {
            let now = self.clock.now();
            let (o, old_cas) = {
                let mut table = shard.index.lock();
                let o = self.lookup_locked(&mut table, shard, h, key, now).map_err(|_| BlankMiss::NotFound)?;
                let oit = self.slabs.ptr(o);
                if cas_in.is_some_and(|c| c != self.visible_cas(oit)) {
                    return Err(BlankMiss::Exists);
                }
                (o, oit.cas())
            };
            let Some(r) = self.build(key, &[], flags, exptime) else {
                return Err(BlankMiss::NoMemory);
            };
            let mut table = shard.index.lock();
            match self.find(&table, h, key) {
                Some(x) if x == o && self.slabs.ptr(x).cas() == old_cas => {
                    let it = self.slabs.ptr(r);
                    it.set_cas(cas.unwrap_or(old_cas));
                    self.link_locked(&mut table, shard, h, r, Some(o));
                    return Ok(f(&self.entry(r, false)));
                }
                _ => {
                    drop(table);
                    self.abandon(r);
                }
            }
        }
        Err(BlankMiss::NoMemory)
    }

    /// delete, optionally only if the CAS matches.
    pub fn delete(&self, key: &[u8], cas_in: u64) -> DeleteOutcome {
        let h = self.hash(key);
        let shard = self.shard(h);
        let now = self.clock.now();
        let mut table = shard.index.lock();
        match self.lookup_locked(&mut table, shard, h, key, now) {
            Ok(r) => {
                if cas_in != 0 && cas_in != self.visible_cas(self.slabs.ptr(r)) {
                    return DeleteOutcome::Exists;
                }
                let class = self.slabs.ptr(r).class();
                self.unlink_locked(&mut table, shard, h, r);
                DeleteOutcome::Deleted { class }
            }
            Err(_) => DeleteOutcome::NotFound,
        }
    }

    /// Run `f` on a live item without counting an access; `f` returns whether to delete it.
    pub fn update<R>(&self, key: &[u8], f: impl FnOnce(&Entry<'_>) -> (R, bool)) -> Result<R, Miss> {
        let h = self.hash(key);
        let shard = self.shard(h);
        let now = self.clock.now();
        let mut table = shard.index.lock();
        let r = self.lookup_locked(&mut table, shard, h, key, now)?;
        let entry = self.entry(r, false);
        let (out, remove) = f(&entry);
        if remove {
            self.unlink_locked(&mut table, shard, h, r);
        }
        Ok(out)
    }

    /// flush_all with memcached's deadline semantics.
    pub fn flush_all(&self, delay: i64) {
        let now = self.clock.now();
        let new_oldest = if delay > 0 { self.clock.realtime(delay) } else { now };
        if self.use_cas {
            let ol = new_oldest.saturating_sub(1);
            self.oldest_live.store(ol, Ordering::Relaxed);
            if ol <= now {
                let c = self.next_cas();
                self.oldest_cas.store(c, Ordering::Relaxed);
            }
        } else {
            self.oldest_live.store(new_oldest, Ordering::Relaxed);
        }
    }

    /// Change the memory limit (`cache_memlimit`).
    pub fn set_limit_bytes(&self, bytes: usize) {
        self.limit_bytes.store(bytes as u64, Ordering::Relaxed);
        self.slabs.set_limit_bytes(bytes);
    }

    pub fn limit_bytes(&self) -> u64 {
        self.limit_bytes.load(Ordering::Relaxed)
    }

    /// Number of lock stripes.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Reclaim expired and flushed items in stripes `[from, to)`. Returns items reclaimed.
    /// Each stripe is locked on its own, briefly.
    pub fn crawl(&self, from: usize, to: usize) -> u64 {
        let now = self.clock.now();
        let mut reclaimed = 0;
        let mut dead = Vec::new();
        // After a flush any item may be dead; else only one with an exptime can be.
        let flushing = self.oldest_live.load(Ordering::Relaxed) != 0;
        for shard in &self.shards[from.min(self.shards.len())..to.min(self.shards.len())] {
            if shard.items.load(Ordering::Relaxed) == 0 || !(flushing || shard.expiring.load(Ordering::Relaxed)) {
                continue;
            }
            let mut table = shard.index.lock();
            let checked = table.len() as u64;
            let mut expiring = false;
            for r in table.iter() {
                let it = self.slabs.ptr(r);
                match self.dead(it, now) {
                    Some(why) => dead.push((r, why)),
                    None => expiring |= it.exptime() != 0,
                }
            }
            shard.expiring.store(expiring, Ordering::Relaxed);
            for (r, why) in dead.drain(..) {
                let it = self.slabs.ptr(r);
                let class = it.class() as usize;
                let c = self.slabs.counters(class);
                c.crawler_reclaimed.fetch_add(1, Ordering::Relaxed);
                if why == Miss::Expired && it.bits() & BIT_FETCHED == 0 {
                    self.counters.expired_unfetched.fetch_add(1, Ordering::Relaxed);
                    c.expired_unfetched.fetch_add(1, Ordering::Relaxed);
                }
                // hashed before `release`: a freed chunk's key may be overwritten
                table.remove(self.hash(it.key()), r);
                shard.items.fetch_sub(1, Ordering::Relaxed);
                shard.bytes.fetch_sub(it.total() as u64, Ordering::Relaxed);
                self.release(r, it);
                reclaimed += 1;
            }
            self.counters.crawler_items_checked.fetch_add(checked, Ordering::Relaxed);
        }
        self.counters.crawler_reclaimed.fetch_add(reclaimed, Ordering::Relaxed);
        reclaimed
    }

    /// Visit every live item (for `stats cachedump`); stops when `f` returns false. Locks one
    /// stripe at a time.
    pub fn for_each(&self, mut f: impl FnMut(&Entry<'_>) -> bool) {
        for stripe in 0..self.shards.len() {
            if !self.for_each_in(stripe, &mut f) {
                return;
            }
        }
    }

    /// Visit the live items of one stripe (`0..shard_count()`), under its lock, so a long walk
    /// (`lru_crawler metadump`) can be done a stripe at a time with pauses in between. Returns
    /// false if `f` asked to stop.
    pub fn for_each_in(&self, stripe: usize, mut f: impl FnMut(&Entry<'_>) -> bool) -> bool {
        let Some(shard) = self.shards.get(stripe) else {
            return true;
        };
        if shard.items.load(Ordering::Relaxed) == 0 {
            return true;
        }
        let now = self.clock.now();
        let table = shard.index.lock();
        for r in table.iter() {
            if self.dead(self.slabs.ptr(r), now).is_some() {
                continue;
            }
            if !f(&self.entry(r, false)) {
                return false;
            }
        }
        true
    }

    /// `stats reset`: zero the counters (not the items).
    pub fn reset_counters(&self) {
        let c = &self.counters;
        for a in [
            &c.total_items,
            &c.evictions,
            &c.reclaimed,
            &c.expired_unfetched,
            &c.evicted_unfetched,
            &c.evicted_active,
            &c.crawler_reclaimed,
            &c.crawler_items_checked,
            &c.slab_reassign_evictions,
            &c.outofmemory,
            &c.direct_reclaims,
            &c.get_expired,
            &c.get_flushed,
        ] {
            a.store(0, Ordering::Relaxed);
        }
        for id in 1..=self.slabs.class_count() {
            self.slabs.counters(id).reset();
        }
    }

    /// Counters for `stats`, read without stopping anyone.
    pub fn snapshot(&self) -> StoreSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut s = StoreSnapshot::default();
        let (mut buckets, mut hash_bytes) = (0u64, 0u64);
        for sh in self.shards.iter() {
            s.curr_items += l(&sh.items);
            s.bytes += l(&sh.bytes);
            let index = sh.index.lock();
            buckets += index.capacity() as u64;
            hash_bytes += index.bytes() as u64;
        }
        let c = &self.counters;
        s.total_items = l(&c.total_items);
        s.evictions = l(&c.evictions);
        s.reclaimed = l(&c.reclaimed);
        s.expired_unfetched = l(&c.expired_unfetched);
        s.evicted_unfetched = l(&c.evicted_unfetched);
        s.evicted_active = l(&c.evicted_active);
        s.crawler_reclaimed = l(&c.crawler_reclaimed);
        s.crawler_items_checked = l(&c.crawler_items_checked);
        s.get_expired = l(&c.get_expired);
        s.get_flushed = l(&c.get_flushed);
        s.limit_bytes = self.limit_bytes();
        s.malloced = (self.slabs.pages_allocated() * self.slabs.page_size()) as u64;
        s.hash_buckets = buckets;
        s.hash_bytes = hash_bytes;
        s.slabs_moved = l(&self.slabs.moves);
        s.spare_pages = self.slabs.spare_pages() as u64;
        s.classes = self.slabs.snapshot();
        s
    }
}

/// memcached's `safe_strtoull` on a stored value: optional leading whitespace, decimal digits
/// (optionally `+`), then end or whitespace; no minus sign; must fit in 64 bits.
pub fn parse_counter(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let mut i = 0;
    while i < v.len() && is_c_space(v[i]) {
        i += 1;
    }
    if i < v.len() && v[i] == b'+' {
        i += 1;
    }
    let start = i;
    let mut n: u64 = 0;
    while i < v.len() && v[i].is_ascii_digit() {
        n = n.checked_mul(10)?.checked_add((v[i] - b'0') as u64)?;
        i += 1;
    }
    if i == start {
        return None;
    }
    if i < v.len() && !is_c_space(v[i]) {
        return None;
    }
    Some(n)
}

#[inline]
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

#[cfg(test)]
mod tests;

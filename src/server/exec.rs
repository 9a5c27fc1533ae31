//! Executing commands: the one place where a decoded request of any protocol meets the store
//! and is counted in `stats`.
//!
//! Owns: what each retrieval, touch, storage, delete, arithmetic and flush command does to the
//! store, and how memcached 1.6.18 counts it and login attempts (per worker, per slab class,
//! `stats detail`), including the few places where memcached counts the same command differently by protocol
//! (`Dialect`: each difference is named once, there). The protocol dispatchers (`text`, `meta`,
//! `binary`) decode a request with `protocol::*`, call one function here, and encode what it
//! returns; a hit's reply is encoded by the closure they pass, which runs under the item's lock,
//! so a value is copied or pinned before anyone can change it.
//!
//! Must not know: wire formats, reply strings, sockets, connections or framing.

use crate::stats::ThreadStats;
use crate::storage::{
    item, BlankMiss, DeltaOutcome, Entry, GetOpts, Hashed, Miss, Mode, Reservation, StoreOutcome, StoreReq, STALE,
    TOKEN_SENT,
};

use super::Shared;

/// Everything a command needs: the server's shared state and this worker's counters.
pub struct Ctx<'a> {
    pub shared: &'a Shared,
    pub stats: &'a ThreadStats,
}

/// Which protocol a request came in, where memcached counts or treats it differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Text,
    Meta,
    Binary,
}

impl Dialect {
    /// `stats detail` records the sets and deletes of text and binary commands; memcached's
    /// `ms` and `md` do not call its prefix recorder.
    fn records_detail(self) -> bool {
        self != Dialect::Meta
    }

    /// `store_too_large` / `store_no_memory` count text and meta refusals; memcached's binary
    /// path answers them without counting.
    fn counts_refusals(self) -> bool {
        self != Dialect::Binary
    }

    /// `ms` counts `cmd_set` as soon as its item is allocated, so also when the store then
    /// fails; text and binary count a store that ran.
    fn counts_failed_sets(self) -> bool {
        self == Dialect::Meta
    }

    /// A store that fails for memory or size drops the old item: for meta whatever the mode,
    /// for text and binary only when the command was a `set` (with or without a CAS).
    fn drops_on_failure(self, sent_set: bool) -> bool {
        self == Dialect::Meta || sent_set
    }

    /// A delete whose CAS does not match is a `delete_misses` for meta (`EX`); binary does not
    /// count it (text has no CAS on delete).
    fn counts_delete_mismatch(self) -> bool {
        self == Dialect::Meta
    }

    /// `flush_all` refused by `-F` still counts for text; binary counts only a flush that runs.
    fn counts_refused_flush(self) -> bool {
        self == Dialect::Text
    }
}

/// The value of a storage command: in the input buffer, or received into its reserved item.
pub enum Value<'a> {
    Bytes(&'a [u8]),
    Staged(Reservation),
}

impl<'a> Value<'a> {
    pub fn len(&self) -> usize {
        match self {
            Value::Bytes(b) => b.len(),
            Value::Staged(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes for `StoreReq::value` (empty for a staged value: the reservation holds it).
    pub fn bytes(&self) -> &'a [u8] {
        match self {
            Value::Bytes(b) => b,
            Value::Staged(_) => &[],
        }
    }
}

/// What a delete should do besides removing the item (meta `md` flags; plain deletes use the
/// default).
#[derive(Clone, Copy, Debug, Default)]
pub struct DeleteOpts {
    /// Only if the item's CAS is this (meta `C`; binary's CAS, where 0 means none).
    pub cas: Option<u64>,
    /// Keep the item, marked stale with a new CAS, so the next fetch wins the recache (`I`).
    pub invalidate: bool,
    /// With `invalidate`: the new client exptime (`T`).
    pub ttl: Option<i64>,
    /// The CAS a marked or blanked item gets (`E`).
    pub new_cas: Option<u64>,
    /// Replace the value by an empty one with these client flags instead of removing (`x`).
    pub blank: Option<u32>,
}

/// What a delete did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deleted {
    Removed,
    /// Kept, marked stale (`DeleteOpts::invalidate`).
    Marked,
    /// The CAS did not match.
    Exists,
    NotFound,
    /// No memory for the blank item (`DeleteOpts::blank`).
    NoMemory,
}

impl Ctx<'_> {
    /// `key` with its hash, for `fetch` (see `server::ahead` for where else hashes come from).
    #[inline]
    pub fn hashed<'k>(&self, key: &'k [u8]) -> Hashed<'k> {
        self.shared.store.hashed(key)
    }

    /// One key of a retrieval (text `get`/`gets`/`gat`/`gats`, binary get/gat): look it up,
    /// touching it with `touch`, `hit` encoding the reply under the item's lock. memcached
    /// counts a gat only as a touch, a get as a get; hits per slab class; `stats detail`.
    /// (Expired and flushed finds are counted by the store, for every command that looks.)
    pub fn fetch<R>(&self, key: Hashed<'_>, touch: Option<i64>, hit: impl FnOnce(&Entry<'_>) -> R) -> Option<R> {
        let opts = touch.map_or(GetOpts::GET, GetOpts::touch);
        let r = self.shared.store.get_hashed(key, opts, |e| (hit(e), e.class()));
        self.shared.detail.get(key.key, r.is_ok());
        self.count_access(touch.is_some(), r.as_ref().ok().map(|&(_, class)| class));
        r.ok().map(|(r, _)| r)
    }

    /// One retrieval or touch counted: the command, then a hit in the item's class or a miss.
    fn count_access(&self, touched: bool, hit: Option<u8>) {
        let s = self.stats;
        match (touched, hit) {
            (false, Some(class)) => s.slab[class as usize].get_hits.inc(),
            (true, Some(class)) => s.slab[class as usize].touch_hits.inc(),
            (false, None) => s.get_misses.inc(),
            (true, None) => s.touch_misses.inc(),
        }
        if touched {
            s.touch_cmds.inc();
        } else {
            s.get_cmds.inc();
        }
    }

    /// Meta `mg`: no access is counted before `hit` has encoded the reply (`h`, `l` show the
    /// state before this request), `vivify` (`N`: the new item's CAS, if `E` gave one) creates
    /// a missing item. `hit` returns whether it touched the item: counted as a touch, else a
    /// get. `late_error`: memcached reports a late error before counting a hit, so none is.
    pub fn meta_fetch<R>(
        &self,
        key: &[u8],
        vivify: Option<Option<u64>>,
        late_error: bool,
        hit: impl FnOnce(&Entry<'_>) -> (R, bool),
    ) -> Option<R> {
        let store = &self.shared.store;
        let opts = GetOpts { bump: false, touch: None };
        let f = |e: &Entry<'_>| (hit(e), e.class());
        let r = match vivify {
            Some(cas) => store.get_or_create(key, opts, cas, f),
            None => store.get(key, opts, f),
        };
        match r {
            Ok(((r, _), _)) if late_error => Some(r),
            Ok(((r, touched), class)) => {
                self.count_access(touched, Some(class));
                Some(r)
            }
            Err(_) => {
                // A miss counts as a get even with `T` (memcached knows it touched only on a hit).
                self.count_access(false, None);
                None
            }
        }
    }

    /// `touch` (text and binary): a new exptime for a live item, `hit` encoding the reply.
    pub fn touch<R>(&self, key: &[u8], exptime: i64, hit: impl FnOnce(&Entry<'_>) -> R) -> Option<R> {
        let r = self.shared.store.get(key, GetOpts::touch(exptime), |e| (hit(e), e.class()));
        self.count_access(true, r.as_ref().ok().map(|&(_, class)| class));
        r.ok().map(|(r, _)| r)
    }

    /// Meta `me`: look without counting an access.
    pub fn debug<R>(&self, key: &[u8], f: impl FnOnce(&Entry<'_>) -> R) -> Result<R, Miss> {
        self.stats.meta_cmds.inc();
        self.shared.store.peek(key, f)
    }

    /// Whether an item of this size can ever be stored: checked when a storage command's head
    /// arrives, before its value.
    pub fn fits(&self, klen: usize, vlen: usize, flags: u32) -> bool {
        let store = &self.shared.store;
        !store.too_large(klen, vlen, flags) && store.slabs().class_for(item::item_size(klen, vlen)).is_some()
    }

    /// Reserve the item a value still arriving will be received into (evicting as a store
    /// would); the error is `TooLarge` or `NoMemory`, for `refuse_store`.
    pub fn reserve(&self, key: &[u8], vlen: usize, flags: u32) -> Result<Reservation, StoreOutcome> {
        self.shared.store.reserve(key, vlen, flags)
    }

    /// A storage command refused before its value was stored (`why`: `TooLarge` or
    /// `NoMemory`): counted as memcached counts it, and the old item dropped where memcached
    /// drops it (`sent_set`: the command was a `set`, with or without a CAS), so stale data
    /// does not outlive a failed set. The one place that rule lives: the store leaves the old
    /// item alone when a store fails.
    pub fn refuse_store(&self, d: Dialect, sent_set: bool, key: &[u8], why: StoreOutcome) {
        if d.counts_refusals() {
            if why == StoreOutcome::TooLarge {
                self.stats.store_too_large.inc();
            } else {
                self.stats.store_no_memory.inc();
            }
        }
        if d.drops_on_failure(sent_set) {
            self.shared.store.delete(key, 0);
        }
    }

    /// A data block not ended by `\r\n` (text, meta): memcached has allocated the item already,
    /// so it counts as a set of that size class, and nothing is stored.
    pub fn bad_chunk(&self, key: &[u8], vlen: usize, flags: u32) {
        self.stats.slab[self.shared.store.class_of(key.len(), vlen, flags)].set_cmds.inc();
    }

    /// A storage command with its whole value (`req.value` must be `value.bytes()`). Returns
    /// the outcome and the stored value's length (after append/prepend: the new total).
    /// `sent_set` as in `refuse_store`.
    pub fn store(&self, d: Dialect, sent_set: bool, req: &StoreReq<'_>, value: Value<'_>) -> (StoreOutcome, usize) {
        let store = &self.shared.store;
        if d.records_detail() {
            self.shared.detail.set(req.key);
        }
        let slab = &self.stats.slab[store.class_of(req.key.len(), value.len(), req.flags)];
        let (outcome, size) = match value {
            Value::Bytes(_) => store.store_sized(req),
            Value::Staged(res) => res.commit(req),
        };
        let failed = matches!(outcome, StoreOutcome::NoMemory | StoreOutcome::TooLarge);
        if !failed || d.counts_failed_sets() {
            slab.set_cmds.inc();
        }
        match outcome {
            StoreOutcome::Stored { .. } if req.mode == Mode::Cas => slab.cas_hits.inc(),
            // An append/prepend CAS mismatch (binary) is not a CAS command: not counted.
            StoreOutcome::Exists if req.mode == Mode::Cas => slab.cas_badval.inc(),
            StoreOutcome::NotFound => self.stats.cas_misses.inc(),
            _ if failed => self.refuse_store(d, sent_set, req.key, outcome),
            _ => {}
        }
        (outcome, size)
    }

    /// Delete (text `delete`, binary delete, meta `md`).
    pub fn delete(&self, d: Dialect, key: &[u8], o: DeleteOpts) -> Deleted {
        let store = &self.shared.store;
        if d.records_detail() {
            self.shared.detail.delete(key);
        }
        // `I`: keep the item, marked stale with a new CAS so the next fetch wins the recache.
        let mark = |e: &Entry<'_>| {
            if let Some(t) = o.ttl {
                e.set_exptime(t);
            }
            e.set_bits(STALE);
            e.clear_bits(TOKEN_SENT);
            e.renew_cas(o.new_cas);
        };
        let r: Result<(Deleted, u8), Deleted> = match o.blank {
            // x: replace the value by an empty one (flags from F, TTL from T, CAS kept unless E).
            Some(flags) => {
                let r = store.blank(key, o.cas, flags, o.ttl.unwrap_or(0), o.new_cas, |e| {
                    if o.invalidate {
                        mark(e);
                        (Deleted::Marked, e.class())
                    } else {
                        (Deleted::Removed, e.class())
                    }
                });
                r.map_err(|m| match m {
                    BlankMiss::NotFound => Deleted::NotFound,
                    BlankMiss::Exists => Deleted::Exists,
                    BlankMiss::NoMemory => Deleted::NoMemory,
                })
            }
            None => store
                .update(key, |e| {
                    if o.cas.is_some_and(|c| c != e.cas()) {
                        ((Deleted::Exists, 0), false)
                    } else if o.invalidate {
                        mark(e);
                        ((Deleted::Marked, 0), false)
                    } else {
                        ((Deleted::Removed, e.class()), true)
                    }
                })
                .map_err(|_| Deleted::NotFound),
        };
        let s = self.stats;
        match r {
            Ok((Deleted::Removed, class)) => {
                s.slab[class as usize].delete_hits.inc();
                Deleted::Removed
            }
            Ok((Deleted::Exists, _)) | Err(Deleted::Exists) => {
                if d.counts_delete_mismatch() {
                    s.delete_misses.inc();
                }
                Deleted::Exists
            }
            Ok((other, _)) => other,
            Err(Deleted::NotFound) => {
                s.delete_misses.inc();
                Deleted::NotFound
            }
            Err(other) => other,
        }
    }

    /// incr/decr (text `incr`/`decr`, binary, meta `ma`): `hit` sees the changed or created
    /// item and the new number under its lock. `create`: (initial, client exptime) for a
    /// missing item (binary unless its exptime is all ones, meta `N`); it holds `initial`, the
    /// delta not applied, and counts neither a hit, a miss nor a set (memcached `add`s it).
    /// Returns `hit`'s result and whether the item was created.
    #[allow(clippy::too_many_arguments)]
    pub fn delta<R>(
        &self,
        key: &[u8],
        incr: bool,
        delta: u64,
        cas: u64,
        create: Option<(u64, i64)>,
        new_cas: Option<u64>,
        hit: impl FnOnce(&Entry<'_>, u64) -> R,
    ) -> Result<(R, bool), DeltaOutcome> {
        let r = self
            .shared
            .store
            .delta_with(key, incr, delta, cas, create, new_cas, |e, v| (hit(e, v), e.class(), e.created));
        let s = self.stats;
        match (&r, incr) {
            (Ok((_, class, false)), true) => s.slab[*class as usize].incr_hits.inc(),
            (Ok((_, class, false)), false) => s.slab[*class as usize].decr_hits.inc(),
            (Err(DeltaOutcome::NotFound), true) => s.incr_misses.inc(),
            (Err(DeltaOutcome::NotFound), false) => s.decr_misses.inc(),
            _ => {}
        }
        r.map(|(r, _, created)| (r, created))
    }

    /// `flush_all` (text, binary): false when `-F` forbids it.
    pub fn flush(&self, d: Dialect, delay: i64) -> bool {
        let enabled = self.shared.config.flush_enabled;
        if enabled || d.counts_refused_flush() {
            self.stats.flush_cmds.inc();
        }
        if enabled {
            self.shared.store.flush_all(delay);
        }
        enabled
    }

    /// A login attempt (binary SASL, ASCII auth) with this verdict, counted; returns it.
    pub fn authenticated(&self, ok: bool) -> bool {
        self.stats.auth_cmds.inc();
        if !ok {
            self.stats.auth_errors.inc();
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    /// The protocol dispatchers and the session decode, encode and frame; a command's effect
    /// on the store and its counting happen here only, so a fix to either is made once.
    #[test]
    fn only_exec_runs_and_counts_data_commands() {
        let modules = [
            ("text", include_str!("text.rs")),
            ("meta", include_str!("meta.rs")),
            ("binary", include_str!("binary.rs")),
            ("session", include_str!("session.rs")),
            ("asciiauth", include_str!("asciiauth.rs")),
            ("discovery", include_str!("discovery.rs")),
        ];
        let banned = [
            "ctx.stats",
            ".store(&",
            "store.store",
            "store.get(",
            "store.get_or_create(",
            "store.peek(",
            "store.delete(",
            "store.delta",
            "store.update(",
            "store.blank(",
            "store.reserve(",
            "flush_all(",
            "detail.set(",
            "detail.get(",
            "detail.delete(",
        ];
        for (name, src) in modules {
            for b in banned {
                assert!(!src.contains(b), "server/{name}.rs uses `{b}`: run and count commands in server/exec.rs");
            }
        }
    }
}

//! Meta-protocol dispatch: the only place where parsed meta commands meet the store.
//!
//! Owns: executing `mg`, `ms`, `md`, `ma`, `me` (the text path answers `mn` itself) against
//! `storage::Store`, waiting for and checking the `ms` data block, counting each command in the
//! worker's `ThreadStats` as memcached 1.6.18 counts it, and writing the reply with
//! `protocol::meta`'s encoders. Requests are parsed in the extended dialect: everything 1.6.18
//! defines behaves as in 1.6.18, and the later flags are additions (`E<cas>` on all four
//! commands, `md x`, `ms s`, `ms N` with mode A/P, `mg C<cas>`).
//!
//! Every read-modify step of one command runs inside one storage callback, under the item's
//! lock: the reply is encoded there and what it decided (new TTL, win token, LRU bump) is applied
//! before anyone else can see the item. That is what makes "exactly one client wins `W`" hold.

use super::conn::{Conn, Ctx, Staged, StagedKind, Step, Value};
use super::out::Out;
use crate::protocol::meta::{
    self as pm, ArithMiss, ArithMode, DeleteStatus, MaItem, MeInfo, MetaCommand, MetaRequest, MgItem, ReqTimes,
    SetMode, SetStatus,
};
use crate::protocol::text::reply;
use crate::storage::{
    item, BlankMiss, Clock, DeltaOutcome, Entry, GetOpts, Mode, StoreOutcome, StoreReq, KEY_BINARY, STALE, TOKEN_SENT,
};

/// Handle one meta command whose line is `input[..len]` (`consumed` bytes with its newline).
/// For `ms` the data block follows at `input[consumed..]`.
pub fn step(conn: &mut Conn, input: &[u8], len: usize, consumed: usize, out: &mut Out, ctx: &Ctx<'_>) -> Step {
    let req = match pm::parse(&input[..len]) {
        Ok(req) => req,
        Err(e) => {
            out.extend_from_slice(e.error_line());
            conn.swallow = e.swallow;
            conn.need = 0;
            return Step::Done(consumed);
        }
    };
    match req.command {
        MetaCommand::Get => mg(ctx, &req, out),
        MetaCommand::Set => return ms(conn, ctx, &req, input, consumed, out),
        MetaCommand::Delete => md(ctx, &req, out),
        MetaCommand::Arithmetic => ma(ctx, &req, out),
        MetaCommand::Debug => me(ctx, &req, out),
        MetaCommand::Noop => out.extend_from_slice(pm::MN_REPLY),
    }
    Step::Done(consumed)
}

/// The request's `T`, `N`, `R` as server-clock exptimes (memcached's `realtime()`).
fn req_times(clock: &Clock, req: &MetaRequest<'_>) -> ReqTimes {
    let f = &req.flags;
    let rel = |t: Option<i32>| t.map_or(0, |t| clock.realtime(t as i64));
    ReqTimes { now: clock.now(), ttl: rel(f.ttl), vivify: rel(f.vivify_ttl), recache: rel(f.recache_ttl) }
}

fn key_binary(e: &Entry<'_>) -> bool {
    e.bits() & KEY_BINARY != 0
}

fn mg(ctx: &Ctx<'_>, req: &MetaRequest<'_>, out: &mut Out) {
    let store = &ctx.shared.store;
    let times = req_times(store.clock(), req);
    // The bump waits until the reply is written: `h` and `l` show the state before this request.
    let opts = GetOpts { bump: false, touch: None };
    let hit = |e: &Entry<'_>| {
        let it = MgItem {
            key: e.key(),
            key_binary: key_binary(e),
            cas: e.cas(),
            client_flags: e.flags(),
            value_len: e.value().len() as u32,
            exptime: e.exptime(),
            time: e.prev_atime,
            fetched: e.fetched_before,
            token_sent: e.token_sent(),
            stale: e.is_stale(),
            created: e.created,
        };
        let o = pm::encode_mg_hit(out, req, &it, &times);
        if o.exptime != it.exptime {
            e.set_exptime_rel(o.exptime);
        }
        if o.won {
            e.set_bits(TOKEN_SENT);
        }
        if o.value {
            out.value(e, store);
            out.extend_from_slice(b"\r\n");
        }
        if o.bump {
            e.bump();
        }
        (o.touched, e.class())
    };
    let r = if req.flags.has(b'N') {
        store.get_or_create(req.key(), opts, req.flags.new_cas, hit)
    } else {
        store.get(req.key(), opts, hit)
    };
    let stats = ctx.stats;
    match r {
        // memcached reports the late error before counting a hit.
        Ok(_) if req.late_error().is_some() => {}
        Ok((true, class)) => {
            stats.touch_cmds.inc();
            stats.slab[class as usize].touch_hits.inc();
        }
        Ok((false, class)) => {
            stats.get_cmds.inc();
            stats.slab[class as usize].get_hits.inc();
        }
        Err(_) => {
            // A miss counts as a get even with T (memcached knows it touched only on a hit).
            stats.get_cmds.inc();
            stats.get_misses.inc();
            pm::encode_mg_miss(out, req);
        }
    }
}

/// `ms`: refuse what can never fit before its data arrives, then wait for the data block.
fn ms(conn: &mut Conn, ctx: &Ctx<'_>, req: &MetaRequest<'_>, input: &[u8], consumed: usize, out: &mut Vec<u8>) -> Step {
    let store = &ctx.shared.store;
    let key = req.key();
    let datalen = req.datalen as usize;
    let class = store.slabs().class_for(item::item_size(key.len(), datalen));
    if store.too_large(key.len(), datalen, req.flags.client_flags) || class.is_none() {
        // memcached fails the allocation before reading the data: it deletes the old item
        // (whatever the mode), replies even with q, and swallows the data block.
        ctx.stats.store_too_large.inc();
        store.delete(key, 0);
        out.extend_from_slice(pm::OBJECT_TOO_LARGE);
        conn.swallow = req.payload_len();
        conn.need = 0;
        return Step::Done(consumed);
    }
    let total = consumed + req.payload_len();
    conn.need = 0;
    if input.len() < total {
        // The value is still arriving: receive it into its item.
        return match store.reserve(key, datalen, req.flags.client_flags) {
            Ok(res) => {
                conn.stage(StagedKind::Meta, &input[..consumed], res, &input[consumed..]);
                Step::Done(input.len())
            }
            Err(failed) => {
                fail_unstored(ctx, key, failed, out);
                conn.swallow = req.payload_len();
                Step::Done(consumed)
            }
        };
    }
    let terminated = &input[consumed + datalen..total] == b"\r\n";
    ms_data(ctx, req, Value::Bytes(&input[consumed..consumed + datalen]), terminated, out);
    Step::Done(total)
}

/// A staged `ms` whose value (and terminator) has arrived.
pub fn finish_staged(ctx: &Ctx<'_>, st: Staged, out: &mut Out) {
    let terminated = st.terminated();
    match pm::parse(super::text::line_of(&st.head)) {
        Ok(req) => ms_data(ctx, &req, Value::Staged(st.res), terminated, out),
        Err(_) => unreachable!("a staged meta head parsed before"),
    }
}

/// A store that could not be done for lack of memory (or size): memcached deletes the old item
/// whatever the mode and replies even with `q`.
fn fail_unstored(ctx: &Ctx<'_>, key: &[u8], failed: StoreOutcome, out: &mut Vec<u8>) {
    let too_large = failed == StoreOutcome::TooLarge;
    if too_large {
        ctx.stats.store_too_large.inc();
    } else {
        ctx.stats.store_no_memory.inc();
    }
    ctx.shared.store.delete(key, 0);
    out.extend_from_slice(if too_large { pm::OBJECT_TOO_LARGE } else { pm::OUT_OF_MEMORY_STORING });
}

/// `ms` with its data block: count, check the terminator, store, reply.
fn ms_data(ctx: &Ctx<'_>, req: &MetaRequest<'_>, value: Value<'_>, terminated: bool, out: &mut Vec<u8>) {
    let store = &ctx.shared.store;
    let key = req.key();
    // memcached counts the set once the item is allocated, before checking the terminator.
    let slab = &ctx.stats.slab[store.class_of(key.len(), value.len(), req.flags.client_flags)];
    slab.set_cmds.inc();
    if !terminated {
        out.extend_from_slice(pm::BAD_DATA_CHUNK);
        return;
    }
    let f = &req.flags;
    let cas = f.compare_cas;
    let mode = match req.set_mode() {
        SetMode::Set | SetMode::Replace if cas.is_some() => Mode::Cas,
        SetMode::Set => Mode::Set,
        SetMode::Add => Mode::Add,
        SetMode::Replace => Mode::Replace,
        SetMode::Append => Mode::Append,
        SetMode::Prepend => Mode::Prepend,
    };
    let mut sr = StoreReq::new(mode, key, value.bytes(), f.client_flags, 0);
    sr.exptime = f.ttl.unwrap_or(0) as i64;
    if mode != Mode::Add {
        sr.cas = cas.unwrap_or(0);
    }
    sr.new_cas = f.new_cas;
    sr.stale_ok = mode == Mode::Cas && f.invalidate();
    sr.key_binary = req.key_is_binary();
    if matches!(mode, Mode::Append | Mode::Prepend) && req.dialect() == pm::Dialect::Extended {
        sr.vivify = f.vivify_ttl.map(|t| t as i64);
    }
    let (outcome, size) = value.store(store, &sr);
    let status = match outcome {
        StoreOutcome::Stored { .. } => {
            if mode == Mode::Cas {
                slab.cas_hits.inc();
            }
            SetStatus::Stored
        }
        StoreOutcome::NotStored => SetStatus::NotStored,
        StoreOutcome::Exists => {
            if mode == Mode::Cas {
                slab.cas_badval.inc();
            }
            SetStatus::Exists
        }
        StoreOutcome::NotFound => {
            ctx.stats.cas_misses.inc();
            SetStatus::NotFound
        }
        StoreOutcome::TooLarge | StoreOutcome::NoMemory => {
            fail_unstored(ctx, key, outcome, out);
            return;
        }
    };
    let new_cas = match outcome {
        StoreOutcome::Stored { cas } => cas,
        _ => 0,
    };
    pm::encode_ms(out, req, status, new_cas, size);
}

/// What an `md` did, decided under the item's lock.
enum Deleted {
    Removed(u8),
    Marked,
    Exists,
}

fn md(ctx: &Ctx<'_>, req: &MetaRequest<'_>, out: &mut Vec<u8>) {
    let store = &ctx.shared.store;
    let f = &req.flags;
    let ttl = f.ttl.map(|t| t as i64);
    // I: keep the item, marked stale with a new CAS so the next fetch wins the recache.
    let mark = |e: &Entry<'_>| {
        if let Some(t) = ttl {
            e.set_exptime(t);
        }
        e.set_bits(STALE);
        e.clear_bits(TOKEN_SENT);
        e.renew_cas(f.new_cas);
    };
    let r = if req.dialect() == pm::Dialect::Extended && f.has(b'x') {
        // x: replace the value by an empty one (flags from F, TTL from T, CAS kept unless E).
        let r = store.blank(req.key(), f.compare_cas, f.client_flags, ttl.unwrap_or(0), f.new_cas, |e| {
            if f.invalidate() {
                mark(e);
                Deleted::Marked
            } else {
                Deleted::Removed(e.class())
            }
        });
        match r {
            Ok(d) => Ok(d),
            Err(BlankMiss::NotFound) => Err(()),
            Err(BlankMiss::Exists) => Ok(Deleted::Exists),
            Err(BlankMiss::NoMemory) => {
                out.extend_from_slice(reply::NO_MEMORY_DELTA);
                return;
            }
        }
    } else {
        store
            .update(req.key(), |e| {
                if f.compare_cas.is_some_and(|c| c != e.cas()) {
                    (Deleted::Exists, false)
                } else if f.invalidate() {
                    mark(e);
                    (Deleted::Marked, false)
                } else {
                    (Deleted::Removed(e.class()), true)
                }
            })
            .map_err(|_| ())
    };
    let status = match r {
        Ok(Deleted::Removed(class)) => {
            ctx.stats.slab[class as usize].delete_hits.inc();
            DeleteStatus::Deleted
        }
        Ok(Deleted::Marked) => DeleteStatus::Deleted,
        Ok(Deleted::Exists) => {
            ctx.stats.delete_misses.inc();
            DeleteStatus::Exists
        }
        Err(()) => {
            ctx.stats.delete_misses.inc();
            DeleteStatus::NotFound
        }
    };
    pm::encode_md(out, req, status);
}

fn ma(ctx: &Ctx<'_>, req: &MetaRequest<'_>, out: &mut Vec<u8>) {
    let store = &ctx.shared.store;
    let f = &req.flags;
    let times = req_times(store.clock(), req);
    let incr = req.arith_mode() == ArithMode::Incr;
    // A created item starts without TTL; N sets it where it stands in the flags.
    let create = f.has(b'N').then_some((f.initial, 0));
    let r = store.delta_with(req.key(), incr, f.delta, f.compare_cas.unwrap_or(0), create, f.new_cas, |e, value| {
        let it = MaItem { value, cas: e.cas(), exptime: e.exptime(), created: e.created };
        let o = pm::encode_ma_hit(out, req, &it, &times);
        if o.exptime != it.exptime {
            e.set_exptime_rel(o.exptime);
        }
        (e.class(), e.created)
    });
    let stats = ctx.stats;
    match r {
        Ok((class, false)) => {
            let slab = &stats.slab[class as usize];
            if incr {
                slab.incr_hits.inc();
            } else {
                slab.decr_hits.inc();
            }
        }
        Ok((_, true)) => {}
        Err(DeltaOutcome::NotFound) => {
            if incr {
                stats.incr_misses.inc();
            } else {
                stats.decr_misses.inc();
            }
            pm::encode_ma_miss(out, req, ArithMiss::NotFound);
        }
        Err(DeltaOutcome::Exists) => pm::encode_ma_miss(out, req, ArithMiss::Exists),
        Err(DeltaOutcome::NonNumeric) => out.extend_from_slice(pm::NON_NUMERIC_VALUE),
        Err(DeltaOutcome::NoMemory | DeltaOutcome::Value { .. }) => out.extend_from_slice(pm::OUT_OF_MEMORY),
    }
}

fn me(ctx: &Ctx<'_>, req: &MetaRequest<'_>, out: &mut Vec<u8>) {
    let store = &ctx.shared.store;
    ctx.stats.meta_cmds.inc();
    let now = store.clock().now();
    let r = store.peek(req.key(), |e| {
        let info = MeInfo {
            now,
            exptime: e.exptime(),
            time: e.prev_atime,
            cas: e.cas(),
            fetched: e.fetched_before,
            cls: u32::from(e.class()),
            size: e.total() as u64,
        };
        pm::encode_me(out, e.key(), key_binary(e), &info);
    });
    if r.is_err() {
        out.extend_from_slice(pm::ME_MISS_REPLY);
    }
}

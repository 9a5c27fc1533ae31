//! Meta-protocol dispatch: a parsed meta command is run through `exec` and its reply encoded.
//!
//! Owns: mapping `mg`, `ms`, `md`, `ma`, `me` (the text path answers `mn` itself) to `exec`,
//! with the per-request decisions the meta flags make under the item's lock, and writing the
//! reply with `protocol::meta`'s encoders. Must not know: framing (the session receives the
//! `ms` data block) or how commands are counted (`exec`'s). Requests are parsed in the extended dialect: everything 1.6.18
//! defines behaves as in 1.6.18, and the later flags are additions (`E<cas>` on all four
//! commands, `md x`, `ms s`, `ms N` with mode A/P, `mg C<cas>`).
//!
//! Every read-modify step of one command runs inside one storage callback, under the item's
//! lock: the reply is encoded there and what it decided (new TTL, win token, LRU bump) is applied
//! before anyone else can see the item. That is what makes "exactly one client wins `W`" hold.

use super::exec::{Ctx, DeleteOpts, Deleted, Dialect, Value};
use super::out::Out;
use super::session::{Block, Session, Staged, StagedKind, Step, StoreHead};
use crate::protocol::meta::{
    self as pm, ArithMiss, ArithMode, DeleteStatus, MaItem, MeInfo, MetaCommand, MetaRequest, MgItem, ReqTimes,
    SetMode, SetStatus,
};
use crate::protocol::text::reply;
use crate::storage::{Clock, DeltaOutcome, Entry, Mode, StoreOutcome, StoreReq, KEY_BINARY, TOKEN_SENT};

/// Handle one meta command whose line is `input[..len]` (`consumed` bytes with its newline).
/// For `ms` the data block follows at `input[consumed..]`.
pub fn step(session: &mut Session, input: &[u8], len: usize, consumed: usize, out: &mut Out, ctx: &Ctx<'_>) -> Step {
    let req = match pm::parse(&input[..len]) {
        Ok(req) => req,
        Err(e) => {
            out.extend_from_slice(e.error_line());
            session.swallow = e.swallow;
            session.need = 0;
            return Step::Done(consumed);
        }
    };
    match req.command {
        MetaCommand::Get => mg(ctx, &req, out),
        MetaCommand::Set => return ms(session, ctx, &req, input, consumed, out),
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
        ((), o.touched)
    };
    let vivify = req.flags.has(b'N').then_some(req.flags.new_cas);
    if ctx.meta_fetch(req.key(), vivify, req.late_error().is_some(), hit).is_none() {
        pm::encode_mg_miss(out, req);
    }
}

/// `ms`: refuse what can never fit before its data arrives, else store the data block here
/// or receive it into its item.
fn ms(
    session: &mut Session,
    ctx: &Ctx<'_>,
    req: &MetaRequest<'_>,
    input: &[u8],
    consumed: usize,
    out: &mut Vec<u8>,
) -> Step {
    let key = req.key();
    let head = StoreHead {
        kind: StagedKind::Meta,
        key,
        vlen: req.datalen as usize,
        flags: req.flags.client_flags,
        head_len: consumed,
    };
    match session.data_block(input, &head, ctx) {
        Block::Refused(why) => {
            fail_unstored(ctx, key, why, out);
            Step::Done(consumed)
        }
        Block::Staged => Step::Done(input.len()),
        Block::Here { value, terminated, total } => {
            ms_data(ctx, req, Value::Bytes(value), terminated, out);
            Step::Done(total)
        }
    }
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
    ctx.refuse_store(Dialect::Meta, false, key, failed);
    unstored(failed, out);
}

/// The reply to a store refused for size (`TooLarge`) or memory (`NoMemory`).
fn unstored(failed: StoreOutcome, out: &mut Vec<u8>) {
    out.extend_from_slice(if failed == StoreOutcome::TooLarge {
        pm::OBJECT_TOO_LARGE
    } else {
        pm::OUT_OF_MEMORY_STORING
    });
}

/// `ms` with its data block: count, check the terminator, store, reply.
fn ms_data(ctx: &Ctx<'_>, req: &MetaRequest<'_>, value: Value<'_>, terminated: bool, out: &mut Vec<u8>) {
    let key = req.key();
    if !terminated {
        ctx.bad_chunk(key, value.len(), req.flags.client_flags);
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
    let (outcome, size) = ctx.store(Dialect::Meta, false, &sr, value);
    let status = match outcome {
        StoreOutcome::Stored { .. } => SetStatus::Stored,
        StoreOutcome::NotStored => SetStatus::NotStored,
        StoreOutcome::Exists => SetStatus::Exists,
        StoreOutcome::NotFound => SetStatus::NotFound,
        StoreOutcome::TooLarge | StoreOutcome::NoMemory => return unstored(outcome, out),
    };
    let new_cas = match outcome {
        StoreOutcome::Stored { cas } => cas,
        _ => 0,
    };
    pm::encode_ms(out, req, status, new_cas, size);
}

fn md(ctx: &Ctx<'_>, req: &MetaRequest<'_>, out: &mut Vec<u8>) {
    let f = &req.flags;
    let opts = DeleteOpts {
        cas: f.compare_cas,
        invalidate: f.invalidate(),
        ttl: f.ttl.map(|t| t as i64),
        new_cas: f.new_cas,
        blank: (req.dialect() == pm::Dialect::Extended && f.has(b'x')).then_some(f.client_flags),
    };
    let status = match ctx.delete(Dialect::Meta, req.key(), opts) {
        Deleted::Removed | Deleted::Marked => DeleteStatus::Deleted,
        Deleted::Exists => DeleteStatus::Exists,
        Deleted::NotFound => DeleteStatus::NotFound,
        Deleted::NoMemory => {
            out.extend_from_slice(reply::NO_MEMORY_DELTA);
            return;
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
    let r = ctx.delta(req.key(), incr, f.delta, f.compare_cas.unwrap_or(0), create, f.new_cas, |e, value| {
        let it = MaItem { value, cas: e.cas(), exptime: e.exptime(), created: e.created };
        let o = pm::encode_ma_hit(out, req, &it, &times);
        if o.exptime != it.exptime {
            e.set_exptime_rel(o.exptime);
        }
    });
    match r {
        Ok(_) => {}
        Err(DeltaOutcome::NotFound) => pm::encode_ma_miss(out, req, ArithMiss::NotFound),
        Err(DeltaOutcome::Exists) => pm::encode_ma_miss(out, req, ArithMiss::Exists),
        Err(DeltaOutcome::NonNumeric) => out.extend_from_slice(pm::NON_NUMERIC_VALUE),
        Err(DeltaOutcome::NoMemory | DeltaOutcome::CreateNoMemory | DeltaOutcome::Value { .. }) => {
            out.extend_from_slice(pm::OUT_OF_MEMORY)
        }
    }
}

fn me(ctx: &Ctx<'_>, req: &MetaRequest<'_>, out: &mut Vec<u8>) {
    let now = ctx.shared.clock().now();
    let r = ctx.debug(req.key(), |e| {
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

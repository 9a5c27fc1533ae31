//! Binary-protocol dispatch: the only place where binary requests meet the store.
//!
//! Owns: framing a connection's binary input with `protocol::binary`, executing each request
//! against `storage::Store`, counting it in the worker's `ThreadStats` as memcached 1.6.18
//! counts it, writing the byte-exact responses (quiet variants, opaque echo, CAS), SASL PLAIN
//! under `-S`, and discarding refused bodies. Per-connection state lives in `State`, one field
//! of `Conn`.

use std::sync::atomic::Ordering;

use super::conn::{Conn, Ctx, Staged, StagedKind, Step, Value};
use super::out::Out;
use super::report::{self, Pairs};
use super::sasl;
use crate::config::VERSION;
use crate::protocol::binary::{self as pb, Command, Frame, Limits, Opcode, Request, Status};
use crate::protocol::KEY_MAX;
use crate::storage::{DeleteOutcome, DeltaOutcome, GetOpts, Mode, StoreOutcome, StoreReq};

/// memcached's `MAX_SASL_MECH_LEN`: a longer mechanism name is `Invalid arguments`.
const SASL_MECH_MAX: usize = 32;

/// Binary-protocol state of one connection.
#[derive(Debug, Default)]
pub struct State {
    /// SASL: the last auth/step exchange succeeded (memcached's `c->authenticated`).
    authenticated: bool,
    /// SASL PLAIN was started without a response and answered "continue": a step follows.
    sasl_waiting: bool,
    /// Bytes of a refused request still to discard (they may not have arrived yet).
    skip: usize,
    /// The reply to that request: memcached sends it only once the bytes are discarded.
    pending: Vec<u8>,
}

/// Handle one binary request (or one piece of a body being discarded) at the start of `input`.
pub fn step(conn: &mut Conn, input: &[u8], out: &mut Out, ctx: &Ctx<'_>) -> Step {
    let st = &mut conn.binary;
    if st.skip > 0 {
        let n = st.skip.min(input.len());
        st.skip -= n;
        if st.skip == 0 {
            out.append(&mut st.pending);
        }
        return Step::Done(n);
    }
    let sh = ctx.shared;
    if sh.config.sasl && !st.authenticated {
        if let Some(s) = refuse_unauthenticated(conn, input, out) {
            return s;
        }
    }
    if let Some(s) = super::discovery::binary_step(conn, input, out, ctx) {
        return s;
    }
    let limits = Limits { max_key: KEY_MAX, item_size_max: sh.store.item_size_max(), use_cas: sh.store.use_cas() };
    match pb::parse_limited(input, &limits) {
        Frame::Incomplete { need } => match pb::store_head(input, &limits) {
            // A storage request whose value is still arriving: receive it into its item.
            Some(head) => match sh.store.reserve(head.key, head.value_len, head.flags) {
                Ok(res) => {
                    conn.stage(StagedKind::Binary, &input[..head.head_len], res, &input[head.head_len..]);
                    Step::Done(input.len())
                }
                Err(failed) => {
                    conn.need = 0;
                    let req = pb::assemble(&input[..head.head_len]);
                    let mut reply = Vec::new();
                    fail_unstored(ctx, &req, failed, &mut reply);
                    skip_then_reply(conn, input.len(), head.total, reply, out)
                }
            },
            None => {
                conn.need = need;
                Step::Incomplete
            }
        },
        Frame::Request(req, n) => {
            conn.need = 0;
            if execute(conn, ctx, &req, out) {
                Step::Close(n)
            } else {
                Step::Done(n)
            }
        }
        Frame::TooLarge { opcode, opaque, key, skip } => {
            conn.need = 0;
            // Not counted in store_too_large (memcached counts it for text only). Avoid stale
            // data persisting: a refused set drops the old item (add/replace/... do not).
            if opcode.base() == Opcode::Set {
                sh.store.delete(key, 0);
            }
            let mut reply = Vec::new();
            pb::write_error(&mut reply, opcode.as_u8(), Status::TooLarge, opaque);
            skip_then_reply(conn, input.len(), skip, reply, out)
        }
        Frame::Invalid(inv) => {
            conn.need = 0;
            if inv.close {
                super::watch::bad_input(ctx);
                inv.write_reply(out);
                return Step::Close(input.len());
            }
            let mut reply = Vec::new();
            inv.write_reply(&mut reply);
            skip_then_reply(conn, input.len(), inv.skip, reply, out)
        }
    }
}

/// Discard `skip` bytes from the start of the frame (`have` of them are buffered), then send
/// `reply`: at once if everything is here, else when the last byte has been read.
fn skip_then_reply(conn: &mut Conn, have: usize, skip: usize, mut reply: Vec<u8>, out: &mut Vec<u8>) -> Step {
    if have >= skip {
        out.append(&mut reply);
        return Step::Done(skip);
    }
    conn.binary.skip = skip - have;
    conn.binary.pending = reply;
    Step::Done(have)
}

/// Under `-S`, before authentication, memcached answers every opcode except SASL and Version
/// with `Auth failure.` and closes, as soon as header, extras and key are in (after its
/// magic and length-consistency checks, which the codec does). `None`: parse normally.
fn refuse_unauthenticated(conn: &mut Conn, input: &[u8], out: &mut Vec<u8>) -> Option<Step> {
    if input.len() < pb::HEADER_LEN {
        return None;
    }
    let h = pb::parse_header(input);
    let (ext, key, body) = (h.extras_len as usize, h.key_len as usize, h.body_len as usize);
    let head = pb::HEADER_LEN + ext + key;
    let allowed = [Opcode::SaslListMechs, Opcode::SaslAuth, Opcode::SaslStep, Opcode::Version];
    if h.magic != pb::REQ_MAGIC
        || head > pb::READ_BUFFER_SIZE
        || key + ext > body
        || allowed.iter().any(|o| o.as_u8() == h.opcode)
    {
        return None;
    }
    if input.len() < head {
        conn.need = head;
        return Some(Step::Incomplete);
    }
    conn.need = 0;
    pb::write_error(out, h.opcode, Status::AuthError, h.opaque);
    Some(Step::Close(input.len()))
}

/// Run one request. Returns true when the connection must close after the reply.
fn execute(conn: &mut Conn, ctx: &Ctx<'_>, req: &Request<'_>, out: &mut Out) -> bool {
    let sh = ctx.shared;
    let (op, opaque, quiet) = (req.opcode_byte(), req.opaque, req.is_quiet());
    match req.command {
        Command::Get { with_key } => get(ctx, req, None, with_key, out),
        Command::Gat { with_key, exptime } => get(ctx, req, Some(exptime), with_key, out),
        Command::Touch { exptime } => touch(ctx, req, exptime, out),
        Command::Set { flags, exptime } => store(ctx, req, Mode::Set, flags, exptime, Value::Bytes(req.value), out),
        Command::Add { flags, exptime } => store(ctx, req, Mode::Add, flags, exptime, Value::Bytes(req.value), out),
        Command::Replace { flags, exptime } => {
            store(ctx, req, Mode::Replace, flags, exptime, Value::Bytes(req.value), out)
        }
        Command::Append => store(ctx, req, Mode::Append, 0, 0, Value::Bytes(req.value), out),
        Command::Prepend => store(ctx, req, Mode::Prepend, 0, 0, Value::Bytes(req.value), out),
        Command::Delete => delete(ctx, req, out),
        Command::Incr { delta, initial, exptime } => arith(ctx, req, true, delta, initial, exptime, out),
        Command::Decr { delta, initial, exptime } => arith(ctx, req, false, delta, initial, exptime, out),
        Command::Flush { exptime } => {
            if !sh.config.flush_enabled {
                pb::write_error(out, op, Status::AuthError, opaque);
            } else {
                ctx.stats.flush_cmds.inc();
                sh.store.flush_all(exptime as i64);
                ok(out, req, 0);
            }
        }
        Command::Quit => {
            if !quiet {
                ok(out, req, 0);
            }
            return true;
        }
        Command::Noop => ok(out, req, 0),
        Command::Version => pb::write_response(out, op, Status::NoError, opaque, 0, &[], &[], VERSION.as_bytes()),
        Command::Stat => stat(ctx, req, out),
        Command::SaslListMechs | Command::SaslAuth | Command::SaslStep if !sh.config.sasl => {
            pb::write_error(out, op, Status::UnknownCommand, opaque);
        }
        Command::SaslListMechs => {
            pb::write_response(out, op, Status::NoError, opaque, 0, &[], &[], sasl::MECHANISMS.as_bytes())
        }
        Command::SaslAuth | Command::SaslStep => sasl_auth(conn, ctx, req, out),
    }
    false
}

/// An empty success reply (suppressed for quiet opcodes), with this CAS.
fn ok(out: &mut Vec<u8>, req: &Request<'_>, cas: u64) {
    if !req.is_quiet() {
        pb::write_response(out, req.opcode_byte(), Status::NoError, req.opaque, cas, &[], &[], &[]);
    }
}

fn error(out: &mut Vec<u8>, req: &Request<'_>, status: Status) {
    pb::write_error(out, req.opcode_byte(), status, req.opaque);
}

/// Get/GetK/Gat/GatK and their quiet variants.
fn get(ctx: &Ctx<'_>, req: &Request<'_>, touch: Option<u32>, with_key: bool, out: &mut Out) {
    let store = &ctx.shared.store;
    let opts = match touch {
        Some(t) => GetOpts::touch(t as i64),
        None => GetOpts::GET,
    };
    // memcached counts gat only as a touch.
    if touch.is_some() {
        ctx.stats.touch_cmds.inc();
    } else {
        ctx.stats.get_cmds.inc();
    }
    let key = req.key;
    let r = store.get(key, opts, |e| {
        let v = e.value();
        let k: &[u8] = if with_key { key } else { &[] };
        pb::write_hit_head(out, req.opcode_byte(), req.opaque, e.cas(), e.flags(), k, v.len());
        out.value(e, store);
        e.class()
    });
    ctx.count_fetch(key, r, touch.is_some());
    if r.is_err() && !req.is_quiet() {
        if with_key {
            pb::write_key_miss(out, req.opcode_byte(), req.opaque, key);
        } else {
            error(out, req, Status::KeyNotFound);
        }
    }
}

/// Touch: the reply carries the flags (extras) and the item's CAS, no value.
fn touch(ctx: &Ctx<'_>, req: &Request<'_>, exptime: u32, out: &mut Vec<u8>) {
    ctx.stats.touch_cmds.inc();
    let r = ctx.shared.store.get(req.key, GetOpts::touch(exptime as i64), |e| {
        pb::write_hit_head(out, req.opcode_byte(), req.opaque, e.cas(), e.flags(), &[], 0);
        e.class()
    });
    match r {
        Ok(class) => ctx.stats.slab[class as usize].touch_hits.inc(),
        Err(_) => {
            ctx.stats.touch_misses.inc();
            error(out, req, Status::KeyNotFound);
        }
    }
}

/// Set/Add/Replace/Append/Prepend. A non-zero request CAS turns set/add/replace into a
/// compare-and-swap (memcached's `NREAD_CAS`); append/prepend check it themselves.
/// Counted as memcached counts binary stores: cmd_set per slab class and the CAS counters of
/// CAS stores; unlike text, never store_too_large/store_no_memory.
/// A staged storage request whose value has arrived.
pub fn finish_staged(ctx: &Ctx<'_>, st: Staged, out: &mut Out) {
    let req = pb::assemble(&st.head);
    let (mode, flags, exptime) = match req.command {
        Command::Set { flags, exptime } => (Mode::Set, flags, exptime),
        Command::Add { flags, exptime } => (Mode::Add, flags, exptime),
        Command::Replace { flags, exptime } => (Mode::Replace, flags, exptime),
        Command::Append => (Mode::Append, 0, 0),
        Command::Prepend => (Mode::Prepend, 0, 0),
        _ => unreachable!("a staged binary head is a storage request"),
    };
    store(ctx, &req, mode, flags, exptime, Value::Staged(st.res), out);
}

fn store(ctx: &Ctx<'_>, req: &Request<'_>, mode: Mode, flags: u32, exptime: u32, value: Value<'_>, out: &mut Vec<u8>) {
    let sh = ctx.shared;
    let store = &sh.store;
    // With -C memcached cannot even record the request CAS on the new item: it is ignored.
    let cas = if store.use_cas() { req.cas } else { 0 };
    let mode = if cas != 0 && matches!(mode, Mode::Set | Mode::Add | Mode::Replace) { Mode::Cas } else { mode };
    sh.detail.set(req.key);
    let mut sr = StoreReq::new(mode, req.key, value.bytes(), flags, exptime as i64);
    sr.cas = cas;
    let slab = &ctx.stats.slab[store.class_of(req.key.len(), value.len(), flags)];
    let outcome = value.store(store, &sr).0;
    if !matches!(outcome, StoreOutcome::NoMemory | StoreOutcome::TooLarge) {
        slab.set_cmds.inc();
    }
    // What a failed add/replace/append/prepend answers (memcached's complete_update_bin).
    let not_stored = match mode {
        Mode::Add => Status::KeyExists,
        Mode::Replace => Status::KeyNotFound,
        _ => Status::NotStored,
    };
    match outcome {
        StoreOutcome::Stored { cas } => {
            if mode == Mode::Cas {
                slab.cas_hits.inc();
            }
            ok(out, req, cas);
        }
        StoreOutcome::NotStored => error(out, req, not_stored),
        StoreOutcome::Exists => {
            // An append/prepend CAS mismatch is not a CAS command: not counted.
            if mode == Mode::Cas {
                slab.cas_badval.inc();
            }
            error(out, req, Status::KeyExists);
        }
        StoreOutcome::NotFound => {
            ctx.stats.cas_misses.inc();
            error(out, req, Status::KeyNotFound);
        }
        StoreOutcome::TooLarge | StoreOutcome::NoMemory => fail_unstored(ctx, req, outcome, out),
    }
}

/// A store that found no memory (or room): a set drops the old item, then the error reply.
fn fail_unstored(ctx: &Ctx<'_>, req: &Request<'_>, outcome: StoreOutcome, out: &mut Vec<u8>) {
    drop_after_failed_set(ctx, req);
    if outcome == StoreOutcome::TooLarge {
        error(out, req, Status::TooLarge);
    } else {
        pb::write_error_text(out, req.opcode_byte(), Status::OutOfMemory, req.opaque, pb::oom::ALLOCATING_ITEM);
    }
}

/// A set that could not allocate deletes the old item, even when it carried a CAS.
fn drop_after_failed_set(ctx: &Ctx<'_>, req: &Request<'_>) {
    if req.opcode.base() == Opcode::Set {
        ctx.shared.store.delete(req.key, 0);
    }
}

fn delete(ctx: &Ctx<'_>, req: &Request<'_>, out: &mut Vec<u8>) {
    ctx.shared.detail.delete(req.key);
    match ctx.shared.store.delete(req.key, req.cas) {
        DeleteOutcome::Deleted { class } => {
            ctx.stats.slab[class as usize].delete_hits.inc();
            ok(out, req, 0);
        }
        DeleteOutcome::Exists => error(out, req, Status::KeyExists),
        DeleteOutcome::NotFound => {
            ctx.stats.delete_misses.inc();
            error(out, req, Status::KeyNotFound);
        }
    }
}

/// Increment/Decrement. A missing key is created holding `initial` (the delta is not applied)
/// unless `exptime` is 0xffffffff; creation counts neither a hit nor a miss.
#[allow(clippy::too_many_arguments)]
fn arith(ctx: &Ctx<'_>, req: &Request<'_>, incr: bool, delta: u64, initial: u64, exptime: u32, out: &mut Vec<u8>) {
    let store = &ctx.shared.store;
    let (op, opaque) = (req.opcode_byte(), req.opaque);
    match store.delta(req.key, incr, delta, req.cas, None, None) {
        DeltaOutcome::Value { value, cas, class } => {
            let slab = &ctx.stats.slab[class as usize];
            if incr {
                slab.incr_hits.inc();
            } else {
                slab.decr_hits.inc();
            }
            if !req.is_quiet() {
                pb::write_counter(out, op, opaque, cas, value);
            }
        }
        DeltaOutcome::NotFound if exptime != pb::NO_AUTOVIVIFY => {
            let mut digits = itoa::Buffer::new();
            let sr = StoreReq::new(Mode::Add, req.key, digits.format(initial).as_bytes(), 0, exptime as i64);
            match store.store(&sr) {
                StoreOutcome::Stored { cas } => {
                    if !req.is_quiet() {
                        pb::write_counter(out, op, opaque, cas, initial);
                    }
                }
                StoreOutcome::TooLarge | StoreOutcome::NoMemory => {
                    pb::write_error_text(out, op, Status::OutOfMemory, opaque, pb::oom::ALLOCATING_NEW_ITEM)
                }
                _ => error(out, req, Status::NotStored),
            }
        }
        DeltaOutcome::NotFound => {
            if incr {
                ctx.stats.incr_misses.inc();
            } else {
                ctx.stats.decr_misses.inc();
            }
            error(out, req, Status::KeyNotFound);
        }
        DeltaOutcome::Exists => error(out, req, Status::KeyExists),
        DeltaOutcome::NonNumeric => error(out, req, Status::DeltaBadValue),
        DeltaOutcome::NoMemory => {
            pb::write_error_text(out, op, Status::OutOfMemory, opaque, pb::oom::INCREMENTING_VALUE)
        }
    }
}

fn write_pairs(out: &mut Vec<u8>, opaque: u32, pairs: &Pairs) {
    for (k, v) in pairs {
        pb::write_stat(out, opaque, k.as_bytes(), v.as_bytes());
    }
    pb::write_stat(out, opaque, b"", b"");
}

/// Stat: memcached 1.6.18's `process_bin_stat`. "reset", "settings" and "detail" match as
/// prefixes; "items", "slabs" and "sizes" exactly; anything else (including "conns", which
/// only the text protocol serves) is `Not found`.
fn stat(ctx: &Ctx<'_>, req: &Request<'_>, out: &mut Vec<u8>) {
    let sh = ctx.shared;
    let (key, opaque) = (req.key, req.opaque);
    if key.is_empty() {
        write_pairs(out, opaque, &report::general(sh));
    } else if key.starts_with(b"reset") {
        report::reset(sh);
        write_pairs(out, opaque, &Pairs::new());
    } else if key.starts_with(b"settings") {
        write_pairs(out, opaque, &report::settings(sh));
    } else if let Some(sub) = key.strip_prefix(b"detail") {
        if sub.starts_with(b" dump") {
            let mut dump = Vec::new();
            sh.detail.dump(&mut dump);
            pb::write_stat(out, opaque, b"detailed", &dump);
            pb::write_stat(out, opaque, b"", b"");
        } else if sub.starts_with(b" on") {
            sh.detail.enabled.store(true, Ordering::Relaxed);
            write_pairs(out, opaque, &Pairs::new());
        } else if sub.starts_with(b" off") {
            sh.detail.enabled.store(false, Ordering::Relaxed);
            write_pairs(out, opaque, &Pairs::new());
        } else {
            error(out, req, Status::KeyNotFound);
        }
    } else {
        match key {
            b"items" => write_pairs(out, opaque, &report::items(sh)),
            b"slabs" => write_pairs(out, opaque, &report::slabs(sh)),
            b"sizes" if sh.config.track_sizes => write_pairs(out, opaque, &report::sizes(sh)),
            b"sizes" => write_pairs(out, opaque, &vec![("sizes_status".into(), "disabled".into())]),
            _ => error(out, req, Status::KeyNotFound),
        }
    }
}

/// SASL auth/step with PLAIN against the `MEMCACHED_SASL_PWDB` table, as memcached with
/// Cyrus SASL answers: every exchange first drops the authentication; an empty PLAIN start is
/// answered "continue" and the response comes with a step; a failure keeps the connection.
fn sasl_auth(conn: &mut Conn, ctx: &Ctx<'_>, req: &Request<'_>, out: &mut Vec<u8>) {
    if req.key.len() > SASL_MECH_MAX {
        error(out, req, Status::InvalidArguments);
        return;
    }
    let st = &mut conn.binary;
    st.authenticated = false;
    let verdict = if req.opcode == Opcode::SaslAuth {
        st.sasl_waiting = false;
        if !req.key.eq_ignore_ascii_case(b"PLAIN") {
            false
        } else if req.value.is_empty() {
            st.sasl_waiting = true;
            pb::write_response(out, req.opcode_byte(), Status::AuthContinue, req.opaque, 0, &[], &[], &[]);
            return;
        } else {
            ctx.shared.sasl.check_plain(req.value)
        }
    } else {
        st.sasl_waiting && ctx.shared.sasl.check_plain(req.value)
    };
    ctx.stats.auth_cmds.inc();
    if verdict {
        st.authenticated = true;
        st.sasl_waiting = false;
        pb::write_response(out, req.opcode_byte(), Status::NoError, req.opaque, 0, &[], &[], b"Authenticated");
    } else {
        ctx.stats.auth_errors.inc();
        error(out, req, Status::AuthError);
    }
}

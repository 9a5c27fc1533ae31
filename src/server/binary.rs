//! Binary-protocol dispatch: a binary request is decoded with `protocol::binary`, run through
//! `exec`, and its byte-exact response encoded (quiet variants, opaque echo, CAS).
//!
//! Owns: SASL PLAIN under `-S`, discarding refused bodies before their reply (as memcached
//! does), and the binary-only `stat` key matching. Per-connection state lives in `State`, one
//! field of `Session`. Must not know: how commands are counted (`exec`'s) or sockets.

use std::sync::atomic::Ordering;

use super::exec::{Ctx, DeleteOpts, Deleted, Dialect, Value};
use super::out::Out;
use super::report::{self, Pairs};
use super::sasl;
use super::session::{Session, Staged, StagedKind, Step, StoreHead};
use crate::config::VERSION;
use crate::protocol::binary::{self as pb, Command, Frame, Limits, Opcode, Request, Status};
use crate::protocol::KEY_MAX;
use crate::storage::{DeltaOutcome, Mode, StoreOutcome, StoreReq};

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
    /// The current request's header has been traced (`-vv`).
    traced: bool,
    /// The current request closes the connection as malformed: (magic, opcode), for `-v`.
    malformed: Option<(u8, u8)>,
}

/// Handle one binary request (or one piece of a body being discarded) at the start of `input`.
pub fn step(session: &mut Session, input: &[u8], out: &mut Out, ctx: &Ctx<'_>) -> Step {
    let st = &mut session.binary;
    if st.skip > 0 {
        let n = st.skip.min(input.len());
        st.skip -= n;
        if st.skip == 0 {
            out.append(&mut st.pending);
        }
        return Step::Done(n);
    }
    // -vv: memcached dumps a header as soon as it has read one, and each response as it is
    // queued (the reply to a refused body when it is decided: `skip_then_reply`).
    if !st.traced && input.len() >= pb::HEADER_LEN {
        st.traced = true;
        super::trace::binary_header(ctx, &input[..pb::HEADER_LEN]);
    }
    let mark = out.len();
    let step = request(session, input, out, ctx);
    if !matches!(step, Step::Incomplete) {
        session.binary.traced = false;
        super::trace::binary_replies(ctx, out, mark);
        if let Some((magic, opcode)) = session.binary.malformed.take() {
            super::trace::binary_bad_request(ctx, magic, opcode);
        }
    }
    step
}

/// `step` for a request whose header has been traced.
fn request(session: &mut Session, input: &[u8], out: &mut Out, ctx: &Ctx<'_>) -> Step {
    let sh = ctx.shared;
    if sh.config.sasl && !session.binary.authenticated {
        if let Some(s) = refuse_unauthenticated(session, input, out) {
            return s;
        }
    }
    if let Some(s) = super::discovery::binary_step(session, input, out, ctx) {
        return s;
    }
    let limits = Limits { max_key: KEY_MAX, item_size_max: sh.store.item_size_max(), use_cas: sh.store.use_cas() };
    match pb::parse_limited(input, &limits) {
        Frame::Incomplete { need } => match pb::store_head(input, &limits) {
            // A storage request whose value is still arriving: receive it into its item.
            Some(head) => {
                super::trace::binary_request(ctx, &input[..head.head_len]);
                let sh = StoreHead {
                    kind: StagedKind::Binary,
                    key: head.key,
                    vlen: head.value_len,
                    flags: head.flags,
                    head_len: head.head_len,
                };
                match session.receive(&sh, input, ctx) {
                    Ok(()) => Step::Done(input.len()),
                    Err(failed) => {
                        session.need = 0;
                        let req = pb::assemble(&input[..head.head_len]);
                        ctx.refuse_store(Dialect::Binary, sent_set(&req), req.key, failed);
                        let mut reply = Vec::new();
                        unstored(&req, failed, &mut reply);
                        skip_then_reply(session, ctx, input.len(), head.total, reply, out)
                    }
                }
            }
            None => {
                session.need = need;
                Step::Incomplete
            }
        },
        Frame::Request(req, n) => {
            session.need = 0;
            super::trace::binary_request(ctx, &input[..n]);
            if execute(session, ctx, &req, out) {
                Step::Close(n)
            } else {
                Step::Done(n)
            }
        }
        Frame::TooLarge { opcode, opaque, key, skip } => {
            session.need = 0;
            super::trace::binary_request(ctx, input);
            ctx.refuse_store(Dialect::Binary, opcode.base() == Opcode::Set, key, StoreOutcome::TooLarge);
            let mut reply = Vec::new();
            pb::write_error(&mut reply, opcode.as_u8(), Status::TooLarge, opaque);
            skip_then_reply(session, ctx, input.len(), skip, reply, out)
        }
        Frame::Invalid(inv) => {
            session.need = 0;
            if inv.close {
                super::watch::bad_input(ctx);
                session.binary.malformed = Some((input[0], inv.opcode));
                inv.write_reply(out);
                return Step::Close(input.len());
            }
            let mut reply = Vec::new();
            inv.write_reply(&mut reply);
            skip_then_reply(session, ctx, input.len(), inv.skip, reply, out)
        }
    }
}

/// Discard `skip` bytes from the start of the frame (`have` of them are buffered), then send
/// `reply`: at once if everything is here, else when the last byte has been read.
fn skip_then_reply(
    session: &mut Session,
    ctx: &Ctx<'_>,
    have: usize,
    skip: usize,
    mut reply: Vec<u8>,
    out: &mut Vec<u8>,
) -> Step {
    if have >= skip {
        out.append(&mut reply);
        return Step::Done(skip);
    }
    super::trace::binary_held_reply(ctx, &reply);
    session.binary.skip = skip - have;
    session.binary.pending = reply;
    Step::Done(have)
}

/// Under `-S`, before authentication, memcached answers every opcode except SASL and Version
/// with `Auth failure.` and closes, as soon as header, extras and key are in (after its
/// magic and length-consistency checks, which the codec does). `None`: parse normally.
fn refuse_unauthenticated(session: &mut Session, input: &[u8], out: &mut Vec<u8>) -> Option<Step> {
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
        session.need = head;
        return Some(Step::Incomplete);
    }
    session.need = 0;
    pb::write_error(out, h.opcode, Status::AuthError, h.opaque);
    Some(Step::Close(input.len()))
}

/// Run one request. Returns true when the connection must close after the reply.
fn execute(session: &mut Session, ctx: &Ctx<'_>, req: &Request<'_>, out: &mut Out) -> bool {
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
            if ctx.flush(Dialect::Binary, exptime as i64) {
                ok(out, req, 0);
            } else {
                pb::write_error(out, op, Status::AuthError, opaque);
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
        Command::SaslAuth | Command::SaslStep => sasl_auth(session, ctx, req, out),
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
    let key = req.key;
    let hit = ctx.fetch(ctx.hashed(key), touch.map(i64::from), |e| {
        let k: &[u8] = if with_key { key } else { &[] };
        pb::write_hit_head(out, req.opcode_byte(), req.opaque, e.cas(), e.flags(), k, e.value().len());
        out.value(e, store);
    });
    if hit.is_none() && !req.is_quiet() {
        if with_key {
            pb::write_key_miss(out, req.opcode_byte(), req.opaque, key);
        } else {
            error(out, req, Status::KeyNotFound);
        }
    }
}

/// Touch: the reply carries the flags (extras) and the item's CAS, no value.
fn touch(ctx: &Ctx<'_>, req: &Request<'_>, exptime: u32, out: &mut Vec<u8>) {
    let hit = ctx.touch(req.key, exptime as i64, |e| {
        pb::write_hit_head(out, req.opcode_byte(), req.opaque, e.cas(), e.flags(), &[], 0);
    });
    if hit.is_none() {
        error(out, req, Status::KeyNotFound);
    }
}

/// The request was a set (with or without a CAS): a failed one drops the old item.
fn sent_set(req: &Request<'_>) -> bool {
    req.opcode.base() == Opcode::Set
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
    let mark = out.len();
    store(ctx, &req, mode, flags, exptime, Value::Staged(st.res), out);
    super::trace::binary_replies(ctx, out, mark);
}

fn store(ctx: &Ctx<'_>, req: &Request<'_>, mode: Mode, flags: u32, exptime: u32, value: Value<'_>, out: &mut Vec<u8>) {
    // With -C memcached cannot even record the request CAS on the new item: it is ignored.
    let cas = if ctx.shared.store.use_cas() { req.cas } else { 0 };
    let mode = if cas != 0 && matches!(mode, Mode::Set | Mode::Add | Mode::Replace) { Mode::Cas } else { mode };
    let mut sr = StoreReq::new(mode, req.key, value.bytes(), flags, exptime as i64);
    sr.cas = cas;
    let outcome = ctx.store(Dialect::Binary, sent_set(req), &sr, value).0;
    // What a failed add/replace/append/prepend answers (memcached's complete_update_bin).
    let not_stored = match mode {
        Mode::Add => Status::KeyExists,
        Mode::Replace => Status::KeyNotFound,
        _ => Status::NotStored,
    };
    match outcome {
        StoreOutcome::Stored { cas } => ok(out, req, cas),
        StoreOutcome::NotStored => error(out, req, not_stored),
        StoreOutcome::Exists => error(out, req, Status::KeyExists),
        StoreOutcome::NotFound => error(out, req, Status::KeyNotFound),
        StoreOutcome::TooLarge | StoreOutcome::NoMemory => unstored(req, outcome, out),
    }
}

/// The reply to a store that found no memory (or room).
fn unstored(req: &Request<'_>, outcome: StoreOutcome, out: &mut Vec<u8>) {
    if outcome == StoreOutcome::TooLarge {
        error(out, req, Status::TooLarge);
    } else {
        pb::write_error_text(out, req.opcode_byte(), Status::OutOfMemory, req.opaque, pb::oom::ALLOCATING_ITEM);
    }
}

fn delete(ctx: &Ctx<'_>, req: &Request<'_>, out: &mut Vec<u8>) {
    let opts = DeleteOpts { cas: (req.cas != 0).then_some(req.cas), ..DeleteOpts::default() };
    match ctx.delete(Dialect::Binary, req.key, opts) {
        Deleted::Removed | Deleted::Marked => ok(out, req, 0),
        Deleted::Exists => error(out, req, Status::KeyExists),
        Deleted::NotFound | Deleted::NoMemory => error(out, req, Status::KeyNotFound),
    }
}

/// Increment/Decrement. A missing key is created holding `initial` (the delta not applied)
/// unless `exptime` is 0xffffffff.
#[allow(clippy::too_many_arguments)]
fn arith(ctx: &Ctx<'_>, req: &Request<'_>, incr: bool, delta: u64, initial: u64, exptime: u32, out: &mut Vec<u8>) {
    let (op, opaque) = (req.opcode_byte(), req.opaque);
    let create = (exptime != pb::NO_AUTOVIVIFY).then_some((initial, exptime as i64));
    match ctx.delta(req.key, incr, delta, req.cas, create, None, |e, v| (v, e.cas())) {
        Ok(((value, cas), _)) => {
            if !req.is_quiet() {
                pb::write_counter(out, op, opaque, cas, value);
            }
        }
        Err(DeltaOutcome::CreateNoMemory) => {
            pb::write_error_text(out, op, Status::OutOfMemory, opaque, pb::oom::ALLOCATING_NEW_ITEM)
        }
        Err(DeltaOutcome::NotFound | DeltaOutcome::Value { .. }) => error(out, req, Status::KeyNotFound),
        Err(DeltaOutcome::Exists) => error(out, req, Status::KeyExists),
        Err(DeltaOutcome::NonNumeric) => error(out, req, Status::DeltaBadValue),
        Err(DeltaOutcome::NoMemory) => {
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
fn sasl_auth(session: &mut Session, ctx: &Ctx<'_>, req: &Request<'_>, out: &mut Vec<u8>) {
    if req.key.len() > SASL_MECH_MAX {
        error(out, req, Status::InvalidArguments);
        return;
    }
    let st = &mut session.binary;
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
    if ctx.authenticated(verdict) {
        st.authenticated = true;
        st.sasl_waiting = false;
        pb::write_response(out, req.opcode_byte(), Status::NoError, req.opaque, 0, &[], &[], b"Authenticated");
    } else {
        error(out, req, Status::AuthError);
    }
}

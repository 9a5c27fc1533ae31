//! Text-protocol dispatch: a parsed text command is run through `exec` and its reply encoded.
//!
//! Owns: mapping each classic command to `exec` (retrievals, storage, delete, incr/decr, touch,
//! flush) and encoding the byte-exact reply (or nothing, under `noreply`), and executing the
//! administrative commands only the text protocol has (`stats`, `verbosity`, `lru`,
//! `lru_crawler`, `slabs`, `shutdown`, `cache_memlimit`, ...; they have no other copy).
//! Must not know: framing (the session's) or how commands are counted (`exec`'s).

use std::sync::atomic::Ordering;

use super::ahead::Ahead;
use super::exec::{Ctx, DeleteOpts, Deleted, Dialect, Value};
use super::out::Out;
use super::report;
use super::session::{Action, Staged};
use crate::config::VERSION;
use crate::protocol::text::{self as ptext, encode, reply, Command, LruCmd, StoreCmd, StoreKind};
use crate::protocol::KEY_MAX;
use crate::storage::{DeltaOutcome, Mode, Reassign, StoreOutcome, StoreReq};

#[inline]
fn put(out: &mut Vec<u8>, noreply: bool, r: &[u8]) {
    if !noreply {
        out.extend_from_slice(r);
    } else {
        super::trace::noreply(r);
    }
}

/// A storage command refused before its data block was stored (`why`: `TooLarge` or
/// `NoMemory`); the session swallows the block.
pub fn refuse_store(ctx: &Ctx<'_>, sc: &StoreCmd<'_>, why: StoreOutcome, out: &mut Vec<u8>) {
    super::watch::store_refused(ctx.shared, sc.key, mode_of(sc.kind), &why);
    ctx.refuse_store(Dialect::Text, sc.kind == StoreKind::Set, sc.key, why);
    put(out, sc.noreply, unstored(why));
}

/// The reply to a store refused for size (`TooLarge`) or memory (`NoMemory`).
fn unstored(why: StoreOutcome) -> &'static [u8] {
    if why == StoreOutcome::TooLarge {
        reply::TOO_LARGE
    } else {
        reply::NO_MEMORY
    }
}

/// A staged storage command whose value (and terminator) has arrived.
pub fn finish_staged(ctx: &Ctx<'_>, st: Staged, out: &mut Out) {
    let Command::Store(sc) = ptext::parse(line_of(&st.head)) else {
        unreachable!("a staged text head is a storage command");
    };
    let terminated = st.terminated();
    store(ctx, &sc, Value::Staged(st.res), terminated, out);
}

/// A request line without its `\r\n` or `\n`.
pub fn line_of(head: &[u8]) -> &[u8] {
    match ptext::frame(head) {
        ptext::Frame::Line { len, .. } => &head[..len],
        _ => head,
    }
}

/// The store's mode for a text storage command.
fn mode_of(kind: StoreKind) -> Mode {
    match kind {
        StoreKind::Set => Mode::Set,
        StoreKind::Add => Mode::Add,
        StoreKind::Replace => Mode::Replace,
        StoreKind::Append => Mode::Append,
        StoreKind::Prepend => Mode::Prepend,
        StoreKind::Cas => Mode::Cas,
    }
}

/// A storage command with its data block (`terminated`: followed by `\r\n`; if not, memcached
/// has allocated the item, counts the set and answers `bad data chunk`).
pub fn store(ctx: &Ctx<'_>, sc: &StoreCmd<'_>, value: Value<'_>, terminated: bool, out: &mut Vec<u8>) {
    if !terminated {
        ctx.bad_chunk(sc.key, value.len(), sc.flags);
        put(out, sc.noreply, reply::BAD_CHUNK);
        return;
    }
    let mut req = StoreReq::new(mode_of(sc.kind), sc.key, value.bytes(), sc.flags, sc.exptime);
    req.cas = sc.cas;
    let r = match ctx.store(Dialect::Text, sc.kind == StoreKind::Set, &req, value).0 {
        StoreOutcome::Stored { .. } => reply::STORED,
        StoreOutcome::NotStored => reply::NOT_STORED,
        StoreOutcome::Exists => reply::EXISTS,
        StoreOutcome::NotFound => reply::NOT_FOUND,
        why @ (StoreOutcome::TooLarge | StoreOutcome::NoMemory) => unstored(why),
    };
    put(out, sc.noreply, r);
}

/// Every other command (`ahead`: the lookahead over the input `cmd` was parsed from).
pub fn execute<'i>(ctx: &Ctx<'_>, cmd: Command<'i>, out: &mut Out, ahead: &mut Ahead<'i>) -> Action {
    let sh = ctx.shared;
    let store = &sh.store;
    match cmd {
        Command::Get { cas, touch, keys } => {
            if !super::discovery::legacy_get(ctx, cas, touch.is_some(), keys, out) {
                get(ctx, cas, touch, keys, out, ahead)
            }
        }
        Command::Store(_) => unreachable!("storage commands are handled with their data"),
        Command::Delete { key, noreply } => {
            let r = match ctx.delete(Dialect::Text, key, DeleteOpts::default()) {
                Deleted::Removed => reply::DELETED,
                _ => reply::NOT_FOUND,
            };
            put(out, noreply, r);
        }
        Command::Arith { incr, key, delta, noreply } => match ctx.delta(key, incr, delta, 0, None, None, |_, v| v) {
            Ok((value, _)) => {
                if !noreply {
                    encode::number(out, value);
                }
            }
            Err(DeltaOutcome::NotFound | DeltaOutcome::Exists) => put(out, noreply, reply::NOT_FOUND),
            Err(DeltaOutcome::NonNumeric) => put(out, noreply, reply::NON_NUMERIC),
            Err(DeltaOutcome::NoMemory | DeltaOutcome::CreateNoMemory | DeltaOutcome::Value { .. }) => {
                put(out, noreply, reply::NO_MEMORY_DELTA)
            }
        },
        Command::Touch { key, exptime, noreply } => {
            let r = match ctx.touch(key, exptime, |_| ()) {
                Some(()) => reply::TOUCHED,
                None => reply::NOT_FOUND,
            };
            put(out, noreply, r);
        }
        Command::FlushAll { delay, noreply } => {
            put(out, noreply, if ctx.flush(Dialect::Text, delay) { reply::OK } else { reply::FLUSH_DISABLED });
        }
        Command::Version => encode::version(out, VERSION),
        Command::Quit => return Action::Close,
        Command::Shutdown { graceful } => {
            if !sh.config.shutdown_command {
                out.extend_from_slice(reply::SHUTDOWN_DISABLED);
            } else {
                log::info!("shutdown{} requested by a client", if graceful { " graceful" } else { "" });
                sh.request_shutdown();
                return Action::Close;
            }
        }
        Command::Verbosity { level, noreply } => {
            let level = level.min(3);
            sh.verbosity.store(level, Ordering::Relaxed);
            crate::set_log_level(level as u8);
            put(out, noreply, reply::OK);
        }
        Command::CacheMemlimit { mb, noreply } => {
            if mb < 8 {
                put(out, noreply, reply::MEMLIMIT_SMALL);
            } else if mb > 1_000_000_000 {
                put(out, noreply, reply::MEMLIMIT_UNITS);
            } else {
                store.set_limit_bytes(mb as usize * 1024 * 1024);
                put(out, noreply, reply::OK);
            }
        }
        Command::Stats { args, nargs } => stats(ctx, &args[..nargs], out),
        Command::Meta { .. } | Command::Config { .. } => out.extend_from_slice(reply::ERROR),
        Command::MetaNoop => out.extend_from_slice(crate::protocol::meta::MN_REPLY),
        Command::DebugTime { secs } => {
            if sh.config.debug_time {
                sh.clock().advance(secs);
                out.extend_from_slice(reply::OK);
            } else {
                out.extend_from_slice(reply::ERROR);
            }
        }
        Command::SlabsAutomove { mode } => {
            sh.tunables.slab_automove.store(mode, Ordering::Relaxed);
            out.extend_from_slice(reply::OK);
        }
        Command::Lru { cmd, noreply } => lru(ctx, cmd, noreply, out),
        Command::SlabsReassign { src, dst } => {
            let n = store.slabs().class_count() as i32;
            let r: &[u8] = if !sh.config.slab_reassign {
                reply::REASSIGN_DISABLED
            } else if src == dst {
                reply::REASSIGN_SAME
            } else if src < -1 || src > n || dst < 0 || dst > n {
                reply::REASSIGN_BADCLASS
            } else {
                // class 0 is memcached's global page pool (our spare pages)
                match store.reassign(u8::try_from(src).ok(), dst as u8) {
                    Reassign::Ok => reply::OK,
                    Reassign::NoSpare => reply::REASSIGN_NOSPARE,
                    Reassign::BadClass => reply::REASSIGN_BADCLASS,
                }
            };
            out.extend_from_slice(r);
        }
        Command::LruCrawler { sub, arg, nargs } => return lru_crawler(ctx, sub, arg, nargs, out),
        Command::Close => return super::watch::refuse(ctx),
        Command::Watch { args, nargs } => return super::watch::command(ctx, &args, nargs, out),
        Command::RefreshCerts { noreply } => match super::tls::refresh_certs(ctx.shared) {
            Ok(()) => put(out, noreply, reply::OK),
            Err(message) => {
                // memcached writes its message whatever `noreply` says
                out.extend_from_slice(message.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        },
        Command::Error { reply, noreply } => put(out, noreply, reply),
    }
    Action::Continue
}

fn get<'i>(ctx: &Ctx<'_>, cas: bool, touch: Option<i64>, keys: &'i [u8], out: &mut Out, ahead: &mut Ahead<'i>) {
    let start = out.len();
    if get_keys(ctx, cas, touch, keys, out, ahead) {
        out.extend_from_slice(reply::END);
    } else {
        out.truncate(start);
        out.extend_from_slice(reply::BAD_FORMAT);
    }
}

/// The next keys of a `get`/`gets` line too long to buffer whole (`Conn::long_get`): their
/// values now, `END` (`last`) when the line has ended. A key over `KEY_MAX` ends the line with
/// `CLIENT_ERROR bad command line format` at once: the caller discards the rest of the line.
/// (memcached buffers such a line whole and then answers only the error; values of the keys
/// before the bad one have been sent here already.)
pub fn get_more<'i>(
    ctx: &Ctx<'_>,
    cas: bool,
    keys: &'i [u8],
    last: bool,
    out: &mut Out,
    ahead: &mut Ahead<'i>,
) -> bool {
    let ok = get_keys(ctx, cas, None, keys, out, ahead);
    if !ok {
        out.extend_from_slice(reply::BAD_FORMAT);
    } else if last {
        out.extend_from_slice(reply::END);
    }
    ok
}

/// The values of `keys`; false at the first key over `KEY_MAX` (the keys before it were served).
fn get_keys<'i>(
    ctx: &Ctx<'_>,
    cas: bool,
    touch: Option<i64>,
    keys: &'i [u8],
    out: &mut Out,
    ahead: &mut Ahead<'i>,
) -> bool {
    let store = &ctx.shared.store;
    let mut pos = 0;
    while let Some(k) = ahead.next(store, keys, &mut pos) {
        let key = k.key;
        if key.len() > KEY_MAX {
            return false;
        }
        ctx.fetch(k, touch, |e| {
            encode::value_head(out, key, e.flags(), e.value().len(), cas.then(|| e.cas()));
            out.value(e, store);
            out.extend_from_slice(b"\r\n");
        });
    }
    true
}

/// `lru tune|mode|temp_ttl`: recorded for `stats settings` (see `server::tunables`).
fn lru(ctx: &Ctx<'_>, cmd: LruCmd, noreply: bool, out: &mut Vec<u8>) {
    let t = &ctx.shared.tunables;
    let r = match cmd {
        LruCmd::Tune { hot_pct, warm_pct, hot_factor, warm_factor } => {
            t.tune(hot_pct, warm_pct, hot_factor, warm_factor);
            reply::OK
        }
        // memcached takes these only while its LRU maintainer runs
        _ if !ctx.shared.config.lru_maintainer => reply::ERROR,
        LruCmd::Mode { segmented } => {
            t.lru_segmented.store(segmented, Ordering::Relaxed);
            reply::OK
        }
        LruCmd::TempTtl { ttl } => {
            if ttl < 0 {
                t.temp_lru.store(false, Ordering::Relaxed);
            } else {
                t.temp_lru.store(true, Ordering::Relaxed);
                t.temporary_ttl.store(ttl as u32, Ordering::Relaxed);
            }
            reply::OK
        }
    };
    put(out, noreply, r);
}

/// `lru_crawler`: the background expiry crawler (`enable`/`disable`, `crawl` runs a full pass
/// now), its memcached tuning knobs (validated, then ignored: ours paces itself), and
/// `metadump`, which hands the connection a streaming cursor (`server::dump`).
fn lru_crawler(ctx: &Ctx<'_>, sub: &[u8], arg: &[u8], nargs: usize, out: &mut Vec<u8>) -> Action {
    use crate::protocol::metadump::parse_classes;
    use crate::protocol::num::strtoul32;
    let sh = ctx.shared;
    let enabled = sh.crawler_enabled.load(Ordering::Relaxed);
    let r: &[u8] = match (sub, nargs) {
        (b"enable" | b"disable", 1) => {
            sh.crawler_enabled.store(sub == b"enable", Ordering::Relaxed);
            reply::OK
        }
        (b"sleep", 2) => match strtoul32(arg) {
            Some(us) if us <= 1_000_000 => reply::OK,
            Some(_) => reply::CRAWLER_SLEEP,
            None => reply::BAD_FORMAT,
        },
        (b"tocrawl", 2) => match strtoul32(arg) {
            Some(_) => reply::OK,
            None => reply::BAD_FORMAT,
        },
        (b"crawl", 2) if !enabled => reply::CRAWLER_DISABLED,
        (b"crawl", 2) => match parse_classes(arg, false) {
            Some(_) => {
                sh.store.crawl(0, sh.store.shard_count());
                reply::OK
            }
            None => reply::CRAWLER_BADCLASS,
        },
        (b"metadump", 2) if !enabled => reply::CRAWLER_DISABLED,
        (b"metadump", 2) if !sh.config.dump_enabled => reply::METADUMP_DISABLED,
        // memcached streams the dump from its crawler thread and refuses while earlier
        // replies of this connection are still queued.
        (b"metadump", 2) if !out.is_empty() => reply::METADUMP_PIPELINED,
        (b"metadump", 2) => match parse_classes(arg, true) {
            Some(classes) => return Action::Dump(classes),
            None => reply::CRAWLER_BADCLASS,
        },
        _ => reply::ERROR,
    };
    out.extend_from_slice(r);
    Action::Continue
}

fn write_pairs(pairs: &report::Pairs, out: &mut Vec<u8>) {
    for (k, v) in pairs {
        encode::stat(out, k.as_bytes(), v.as_bytes());
    }
    out.extend_from_slice(reply::END);
}

fn stats(ctx: &Ctx<'_>, args: &[&[u8]], out: &mut Vec<u8>) {
    let sh = ctx.shared;
    let Some(&sub) = args.first() else {
        write_pairs(&report::general(sh), out);
        return;
    };
    match sub {
        b"reset" => {
            report::reset(sh);
            out.extend_from_slice(reply::RESET);
        }
        b"settings" => write_pairs(&report::settings(sh), out),
        b"items" => write_pairs(&report::items(sh), out),
        b"slabs" => write_pairs(&report::slabs(sh), out),
        b"conns" => write_pairs(&report::conns(sh), out),
        b"sizes" if sh.config.track_sizes => write_pairs(&report::sizes(sh), out),
        b"sizes" => {
            encode::stat(out, b"sizes_status", b"disabled");
            out.extend_from_slice(reply::END);
        }
        b"detail" => match args.get(1).copied() {
            Some(b"on") => {
                sh.detail.enabled.store(true, Ordering::Relaxed);
                out.extend_from_slice(reply::OK)
            }
            Some(b"off") => {
                sh.detail.enabled.store(false, Ordering::Relaxed);
                out.extend_from_slice(reply::OK)
            }
            Some(b"dump") => sh.detail.dump(out),
            _ => out.extend_from_slice(reply::DETAIL_USAGE),
        },
        b"cachedump" => {
            if !sh.config.dump_enabled {
                out.extend_from_slice(reply::CACHEDUMP_DISABLED);
            } else if args.len() < 3 {
                out.extend_from_slice(reply::BAD_COMMAND_LINE);
            } else {
                match (crate::protocol::num::strtoul32(args[1]), crate::protocol::num::strtoul32(args[2])) {
                    // memcached's ids are below 64; ours go on to the last class (finer classes)
                    (Some(id), Some(limit)) if id < 64 || id <= sh.store.slabs().class_count() as u32 => {
                        report::cachedump(sh, id, limit, out)
                    }
                    (Some(_), Some(_)) => out.extend_from_slice(reply::CACHEDUMP_BADCLASS),
                    _ => out.extend_from_slice(reply::BAD_FORMAT),
                }
            }
        }
        _ => out.extend_from_slice(reply::ERROR),
    }
}

//! Text-protocol dispatch: the only place where parsed text commands meet the store.
//!
//! Owns: executing each classic command against `storage::Store`, counting it in the worker's
//! `ThreadStats` the way memcached counts it, and writing the byte-exact reply (or nothing,
//! under `noreply`).

use std::sync::atomic::Ordering;

use super::conn::{Action, Ctx, Staged, Value};
use super::out::Out;
use super::report;
use crate::config::VERSION;
use crate::protocol::text::{self as ptext, reply, Command, LruCmd, StoreCmd, StoreKind};
use crate::protocol::KEY_MAX;
use crate::storage::{item, DeltaOutcome, GetOpts, Mode, Reassign, StoreOutcome, StoreReq};

#[inline]
fn put(out: &mut Vec<u8>, noreply: bool, r: &[u8]) {
    if !noreply {
        out.extend_from_slice(r);
    } else {
        super::trace::noreply(r);
    }
}

#[inline]
fn num(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Refuse a storage command before its data arrives when the item can never fit: reply, count,
/// drop the old item for `set`. Returns true when refused (the caller swallows the data).
pub fn refuse_store(ctx: &Ctx<'_>, sc: &StoreCmd<'_>, out: &mut Vec<u8>) -> bool {
    let store = &ctx.shared.store;
    let fits_class = store.slabs().class_for(item::item_size(sc.key.len(), sc.bytes)).is_some();
    if !store.too_large(sc.key.len(), sc.bytes, sc.flags) && fits_class {
        return false;
    }
    ctx.stats.store_too_large.inc();
    super::watch::store_refused(ctx.shared, sc.key, mode_of(sc.kind), &StoreOutcome::TooLarge);
    if sc.kind == StoreKind::Set {
        store.delete(sc.key, 0);
    }
    put(out, sc.noreply, reply::TOO_LARGE);
    true
}

/// A data block not ended by CRLF: memcached has already allocated the item, so it counts as a
/// set of that size class, then replies `bad data chunk`.
pub fn bad_chunk(ctx: &Ctx<'_>, sc: &StoreCmd<'_>, out: &mut Vec<u8>) {
    ctx.stats.slab[ctx.shared.store.class_of(sc.key.len(), sc.bytes, sc.flags)].set_cmds.inc();
    put(out, sc.noreply, reply::BAD_CHUNK);
}

/// A storage command whose item could not be reserved when its line arrived (the caller
/// swallows the data block): memcached's reply, and a `set` drops the old item.
pub fn refuse_unallocated(ctx: &Ctx<'_>, sc: &StoreCmd<'_>, failed: StoreOutcome, out: &mut Vec<u8>) {
    super::watch::store_refused(ctx.shared, sc.key, mode_of(sc.kind), &failed);
    if sc.kind == StoreKind::Set {
        ctx.shared.store.delete(sc.key, 0);
    }
    if failed == StoreOutcome::TooLarge {
        ctx.stats.store_too_large.inc();
        put(out, sc.noreply, reply::TOO_LARGE);
    } else {
        ctx.stats.store_no_memory.inc();
        put(out, sc.noreply, reply::NO_MEMORY);
    }
}

/// A staged storage command whose value (and terminator) has arrived.
pub fn finish_staged(ctx: &Ctx<'_>, st: Staged, out: &mut Out) {
    let Command::Store(sc) = ptext::parse(line_of(&st.head)) else {
        unreachable!("a staged text head is a storage command");
    };
    if st.terminated() {
        store(ctx, &sc, Value::Staged(st.res), out);
    } else {
        bad_chunk(ctx, &sc, out);
    }
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

/// A storage command with its data block.
pub fn store(ctx: &Ctx<'_>, sc: &StoreCmd<'_>, value: Value<'_>, out: &mut Vec<u8>) {
    let store = &ctx.shared.store;
    let mode = mode_of(sc.kind);
    ctx.shared.detail.set(sc.key);
    let mut req = StoreReq::new(mode, sc.key, value.bytes(), sc.flags, sc.exptime);
    req.cas = sc.cas;
    let slab = &ctx.stats.slab[store.class_of(sc.key.len(), value.len(), sc.flags)];
    let outcome = value.store(store, &req).0;
    if !matches!(outcome, StoreOutcome::NoMemory | StoreOutcome::TooLarge) {
        slab.set_cmds.inc();
    }
    let r = match outcome {
        StoreOutcome::Stored { .. } => {
            if mode == Mode::Cas {
                slab.cas_hits.inc();
            }
            reply::STORED
        }
        StoreOutcome::NotStored => reply::NOT_STORED,
        StoreOutcome::Exists => {
            slab.cas_badval.inc();
            reply::EXISTS
        }
        StoreOutcome::NotFound => {
            ctx.stats.cas_misses.inc();
            reply::NOT_FOUND
        }
        StoreOutcome::TooLarge => {
            ctx.stats.store_too_large.inc();
            reply::TOO_LARGE
        }
        StoreOutcome::NoMemory => {
            ctx.stats.store_no_memory.inc();
            reply::NO_MEMORY
        }
    };
    put(out, sc.noreply, r);
}

/// Every other command.
pub fn execute(ctx: &Ctx<'_>, cmd: Command<'_>, out: &mut Out) -> Action {
    let sh = ctx.shared;
    let store = &sh.store;
    match cmd {
        Command::Get { cas, touch, keys } => {
            if !super::discovery::legacy_get(ctx, cas, touch.is_some(), keys, out) {
                get(ctx, cas, touch, keys, out)
            }
        }
        Command::Store(_) => unreachable!("storage commands are handled with their data"),
        Command::Delete { key, noreply } => {
            sh.detail.delete(key);
            // remove under the item lock, learning its slab class for `stats slabs`
            let r = match store.update(key, |e| (e.class(), true)) {
                Ok(class) => {
                    ctx.stats.slab[class as usize].delete_hits.inc();
                    reply::DELETED
                }
                Err(_) => {
                    ctx.stats.delete_misses.inc();
                    reply::NOT_FOUND
                }
            };
            put(out, noreply, r);
        }
        Command::Arith { incr, key, delta, noreply } => {
            match store.delta_with(key, incr, delta, 0, None, None, |e, v| (e.class(), v)) {
                Ok((class, value)) => {
                    let slab = &ctx.stats.slab[class as usize];
                    if incr {
                        slab.incr_hits.inc();
                    } else {
                        slab.decr_hits.inc();
                    }
                    if !noreply {
                        num(out, value);
                        out.extend_from_slice(b"\r\n");
                    }
                }
                Err(DeltaOutcome::NotFound | DeltaOutcome::Exists) => {
                    if incr {
                        ctx.stats.incr_misses.inc();
                    } else {
                        ctx.stats.decr_misses.inc();
                    }
                    put(out, noreply, reply::NOT_FOUND);
                }
                Err(DeltaOutcome::NonNumeric) => put(out, noreply, reply::NON_NUMERIC),
                Err(DeltaOutcome::NoMemory | DeltaOutcome::Value { .. }) => put(out, noreply, reply::NO_MEMORY_DELTA),
            }
        }
        Command::Touch { key, exptime, noreply } => {
            ctx.stats.touch_cmds.inc();
            match store.get(key, GetOpts::touch(exptime), |e| e.class()) {
                Ok(class) => {
                    ctx.stats.slab[class as usize].touch_hits.inc();
                    put(out, noreply, reply::TOUCHED);
                }
                Err(_) => {
                    ctx.stats.touch_misses.inc();
                    put(out, noreply, reply::NOT_FOUND);
                }
            }
        }
        Command::FlushAll { delay, noreply } => {
            ctx.stats.flush_cmds.inc();
            if !sh.config.flush_enabled {
                put(out, noreply, reply::FLUSH_DISABLED);
            } else {
                store.flush_all(delay);
                put(out, noreply, reply::OK);
            }
        }
        Command::Version => {
            out.extend_from_slice(b"VERSION ");
            out.extend_from_slice(VERSION.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
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
        Command::MetaNoop => out.extend_from_slice(b"MN\r\n"),
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
            const BADCLASS: &[u8] = b"BADCLASS invalid src or dst class id\r\n";
            let n = store.slabs().class_count() as i32;
            let r: &[u8] = if !sh.config.slab_reassign {
                b"CLIENT_ERROR slab reassignment disabled\r\n"
            } else if src == dst {
                b"SAME src and dst class are identical\r\n"
            } else if src < -1 || src > n || dst < 0 || dst > n {
                BADCLASS
            } else {
                // class 0 is memcached's global page pool (our spare pages)
                match store.reassign(u8::try_from(src).ok(), dst as u8) {
                    Reassign::Ok => reply::OK,
                    Reassign::NoSpare => b"NOSPARE source class has no spare pages\r\n",
                    Reassign::BadClass => BADCLASS,
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

fn get(ctx: &Ctx<'_>, cas: bool, touch: Option<i64>, keys: &[u8], out: &mut Out) {
    let start = out.len();
    if get_keys(ctx, cas, touch, keys, out) {
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
pub fn get_more(ctx: &Ctx<'_>, cas: bool, keys: &[u8], last: bool, out: &mut Out) -> bool {
    let ok = get_keys(ctx, cas, None, keys, out);
    if !ok {
        out.extend_from_slice(reply::BAD_FORMAT);
    } else if last {
        out.extend_from_slice(reply::END);
    }
    ok
}

/// The values of `keys`; false at the first key over `KEY_MAX` (the keys before it were served).
fn get_keys(ctx: &Ctx<'_>, cas: bool, touch: Option<i64>, keys: &[u8], out: &mut Out) -> bool {
    let store = &ctx.shared.store;
    let opts = match touch {
        Some(t) => GetOpts::touch(t),
        None => GetOpts::GET,
    };
    for key in ptext::keys(keys) {
        if key.len() > KEY_MAX {
            return false;
        }
        // memcached counts gat/gats only as touches.
        if touch.is_some() {
            ctx.stats.touch_cmds.inc();
        } else {
            ctx.stats.get_cmds.inc();
        }
        let r = store.get(key, opts, |e| {
            let v = e.value();
            out.extend_from_slice(b"VALUE ");
            out.extend_from_slice(key);
            out.push(b' ');
            num(out, e.flags());
            out.push(b' ');
            num(out, v.len());
            if cas {
                out.push(b' ');
                num(out, e.cas());
            }
            out.extend_from_slice(b"\r\n");
            out.value(e, store);
            out.extend_from_slice(b"\r\n");
            e.class()
        });
        ctx.count_fetch(key, r, touch.is_some());
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
    const DISABLED: &[u8] = b"CLIENT_ERROR lru crawler disabled\r\n";
    const BADCLASS: &[u8] = b"BADCLASS invalid class id\r\n";
    let sh = ctx.shared;
    let enabled = sh.crawler_enabled.load(Ordering::Relaxed);
    let r: &[u8] = match (sub, nargs) {
        (b"enable" | b"disable", 1) => {
            sh.crawler_enabled.store(sub == b"enable", Ordering::Relaxed);
            reply::OK
        }
        (b"sleep", 2) => match strtoul32(arg) {
            Some(us) if us <= 1_000_000 => reply::OK,
            Some(_) => b"CLIENT_ERROR sleep must be one second or less\r\n",
            None => reply::BAD_FORMAT,
        },
        (b"tocrawl", 2) => match strtoul32(arg) {
            Some(_) => reply::OK,
            None => reply::BAD_FORMAT,
        },
        (b"crawl", 2) if !enabled => DISABLED,
        (b"crawl", 2) => match parse_classes(arg, false) {
            Some(_) => {
                sh.store.crawl(0, sh.store.shard_count());
                reply::OK
            }
            None => BADCLASS,
        },
        (b"metadump", 2) if !enabled => DISABLED,
        (b"metadump", 2) if !sh.config.dump_enabled => b"ERROR metadump not allowed\r\n",
        // memcached streams the dump from its crawler thread and refuses while earlier
        // replies of this connection are still queued.
        (b"metadump", 2) if !out.is_empty() => b"ERROR cannot pipeline other commands before metadump\r\n",
        (b"metadump", 2) => match parse_classes(arg, true) {
            Some(classes) => return Action::Dump(classes),
            None => BADCLASS,
        },
        _ => reply::ERROR,
    };
    out.extend_from_slice(r);
    Action::Continue
}

fn write_pairs(pairs: &report::Pairs, out: &mut Vec<u8>) {
    for (k, v) in pairs {
        out.extend_from_slice(b"STAT ");
        out.extend_from_slice(k.as_bytes());
        out.push(b' ');
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
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
            out.extend_from_slice(b"STAT sizes_status disabled\r\n");
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
            _ => out.extend_from_slice(b"CLIENT_ERROR usage: stats detail on|off|dump\r\n"),
        },
        b"cachedump" => {
            if !sh.config.dump_enabled {
                out.extend_from_slice(b"CLIENT_ERROR stats cachedump not allowed\r\n");
            } else if args.len() < 3 {
                out.extend_from_slice(reply::BAD_COMMAND_LINE);
            } else {
                match (crate::protocol::num::strtoul32(args[1]), crate::protocol::num::strtoul32(args[2])) {
                    (Some(id), Some(limit)) if id < 64 => report::cachedump(sh, id, limit, out),
                    (Some(_), Some(_)) => out.extend_from_slice(b"CLIENT_ERROR Illegal slab id\r\n"),
                    _ => out.extend_from_slice(reply::BAD_FORMAT),
                }
            }
        }
        _ => out.extend_from_slice(reply::ERROR),
    }
}

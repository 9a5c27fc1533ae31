//! `stats` and its subcommands as (name, value) pairs, in memcached 1.6.18's order.
//!
//! Owns: which statistics exist, their names, formats and order. Knows no wire format: the
//! text dispatcher writes `STAT name value` lines, the binary one writes one packet per pair.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::Shared;
use crate::config::VERSION;

/// A list of statistics.
pub type Pairs = Vec<(String, String)>;

fn push(p: &mut Pairs, k: impl Into<String>, v: impl ToString) {
    p.push((k.into(), v.to_string()));
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// User and system CPU time as memcached prints them (`seconds.microseconds`).
fn rusage() -> (String, String) {
    // SAFETY: getrusage only writes the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    (
        format!("{}.{:06}", ru.ru_utime.tv_sec, ru.ru_utime.tv_usec),
        format!("{}.{:06}", ru.ru_stime.tv_sec, ru.ru_stime.tv_usec),
    )
}

/// Plain `stats`.
pub fn general(sh: &Shared) -> Pairs {
    let t = sh.stats.totals();
    let s = sh.store.snapshot();
    let g = &sh.stats.global;
    let now = sh.clock().now();
    let listeners = g.listeners.load(Ordering::Relaxed);
    let clients = g.curr_conns.load(Ordering::Relaxed);
    let (ru_user, ru_sys) = rusage();
    let mut p = Pairs::with_capacity(100);
    push(&mut p, "pid", std::process::id());
    push(&mut p, "uptime", now.saturating_sub(60));
    push(&mut p, "time", sh.clock().unix_now());
    push(&mut p, "version", VERSION);
    push(&mut p, "libevent", "mio");
    push(&mut p, "pointer_size", usize::BITS);
    push(&mut p, "rusage_user", ru_user);
    push(&mut p, "rusage_system", ru_sys);
    push(&mut p, "max_connections", sh.config.maxconns);
    push(&mut p, "curr_connections", (clients + listeners).saturating_sub(1));
    push(&mut p, "total_connections", g.total_conns.load(Ordering::Relaxed));
    push(&mut p, "rejected_connections", g.rejected_conns.load(Ordering::Relaxed));
    push(&mut p, "connection_structures", clients + listeners);
    push(&mut p, "response_obj_oom", 0);
    push(&mut p, "response_obj_count", 0);
    push(&mut p, "response_obj_bytes", 0);
    push(&mut p, "read_buf_count", 0);
    push(&mut p, "read_buf_bytes", 0);
    push(&mut p, "read_buf_bytes_free", 0);
    push(&mut p, "read_buf_oom", 0);
    push(&mut p, "reserved_fds", RESERVED_FDS);
    push(&mut p, "cmd_get", t.get_cmds);
    push(&mut p, "cmd_set", t.set_cmds());
    push(&mut p, "cmd_flush", t.flush_cmds);
    push(&mut p, "cmd_touch", t.touch_cmds);
    push(&mut p, "cmd_meta", t.meta_cmds);
    push(&mut p, "get_hits", t.get_hits());
    push(&mut p, "get_misses", t.get_misses);
    // counted by the store for every lookup, as memcached's do_item_get does
    push(&mut p, "get_expired", s.get_expired);
    push(&mut p, "get_flushed", s.get_flushed);
    push(&mut p, "delete_misses", t.delete_misses);
    push(&mut p, "delete_hits", t.sum(|s| s.delete_hits));
    push(&mut p, "incr_misses", t.incr_misses);
    push(&mut p, "incr_hits", t.sum(|s| s.incr_hits));
    push(&mut p, "decr_misses", t.decr_misses);
    push(&mut p, "decr_hits", t.sum(|s| s.decr_hits));
    push(&mut p, "cas_misses", t.cas_misses);
    push(&mut p, "cas_hits", t.sum(|s| s.cas_hits));
    push(&mut p, "cas_badval", t.sum(|s| s.cas_badval));
    push(&mut p, "touch_hits", t.sum(|s| s.touch_hits));
    push(&mut p, "touch_misses", t.touch_misses);
    push(&mut p, "store_too_large", t.store_too_large);
    push(&mut p, "store_no_memory", t.store_no_memory);
    push(&mut p, "auth_cmds", t.auth_cmds);
    push(&mut p, "auth_errors", t.auth_errors);
    if sh.config.idle_timeout > 0 {
        push(&mut p, "idle_kicks", t.idle_kicks); // only with -o idle_timeout, as memcached
    }
    push(&mut p, "bytes_read", t.bytes_read);
    push(&mut p, "bytes_written", t.bytes_written);
    push(&mut p, "limit_maxbytes", s.limit_bytes);
    push(&mut p, "accepting_conns", 1);
    push(&mut p, "listen_disabled_num", 0);
    push(&mut p, "time_in_listen_disabled_us", 0);
    push(&mut p, "threads", sh.config.threads);
    push(&mut p, "conn_yields", t.conn_yields);
    push(&mut p, "hash_power_level", 64 - s.hash_buckets.max(1).leading_zeros() - 1);
    push(&mut p, "hash_bytes", s.hash_bytes);
    push(&mut p, "hash_is_expanding", 0);
    // Some fields are printed only while the feature they count is on, as memcached does.
    let c = &sh.config;
    if c.slab_reassign {
        push(&mut p, "slab_reassign_rescues", 0);
        push(&mut p, "slab_reassign_chunk_rescues", 0);
        push(&mut p, "slab_reassign_evictions_nomem", 0);
        push(&mut p, "slab_reassign_inline_reclaim", 0);
        push(&mut p, "slab_reassign_busy_items", 0);
        push(&mut p, "slab_reassign_busy_deletes", 0);
        push(&mut p, "slab_reassign_running", 0);
        push(&mut p, "slabs_moved", s.slabs_moved);
    }
    if sh.crawler_enabled.load(Ordering::Relaxed) {
        push(&mut p, "lru_crawler_running", 0);
        push(&mut p, "lru_crawler_starts", 0);
    }
    if c.lru_maintainer {
        push(&mut p, "lru_maintainer_juggles", 0);
    }
    push(&mut p, "malloc_fails", 0);
    push(&mut p, "log_worker_dropped", 0);
    push(&mut p, "log_worker_written", 0);
    push(&mut p, "log_watcher_skipped", sh.watch.skipped.load(Ordering::Relaxed));
    push(&mut p, "log_watcher_sent", sh.watch.sent.load(Ordering::Relaxed));
    push(&mut p, "log_watchers", sh.watch.count());
    for (k, v) in sh.tls.as_ref().map(|tls| tls.stats(now)).unwrap_or_default() {
        push(&mut p, k, v);
    }
    push(&mut p, "unexpected_napi_ids", 0);
    push(&mut p, "round_robin_fallback", 0);
    push(&mut p, "bytes", s.bytes);
    push(&mut p, "curr_items", s.curr_items);
    push(&mut p, "total_items", s.total_items);
    push(&mut p, "slab_global_page_pool", s.spare_pages);
    push(&mut p, "expired_unfetched", s.expired_unfetched);
    push(&mut p, "evicted_unfetched", s.evicted_unfetched);
    if c.lru_maintainer {
        push(&mut p, "evicted_active", s.evicted_active);
    }
    push(&mut p, "evictions", s.evictions);
    push(&mut p, "reclaimed", s.reclaimed);
    push(&mut p, "crawler_reclaimed", s.crawler_reclaimed);
    push(&mut p, "crawler_items_checked", s.crawler_items_checked);
    push(&mut p, "lrutail_reflocked", 0);
    if c.lru_maintainer {
        push(&mut p, "moves_to_cold", 0);
        push(&mut p, "moves_to_warm", 0);
        push(&mut p, "moves_within_lru", 0);
        push(&mut p, "direct_reclaims", 0);
        push(&mut p, "lru_bumps_dropped", 0);
    }
    p
}

/// `stats reset`: the counters, and the `stats detail` prefixes, as memcached clears both.
pub fn reset(sh: &Shared) {
    sh.stats.reset();
    sh.store.reset_counters();
    sh.detail.reset();
}

/// File descriptors memcached keeps in reserve (counted against `-c`).
pub const RESERVED_FDS: usize = 20;

/// `stats settings`.
pub fn settings(sh: &Shared) -> Pairs {
    let c = &sh.config;
    let mut p = Pairs::with_capacity(90);
    push(&mut p, "maxbytes", sh.store.limit_bytes());
    push(&mut p, "maxconns", c.maxconns);
    // `-p -1` / `-U -1` (kernel-picked ports) show as -1, as in memcached
    push(&mut p, "tcpport", if c.tcp_ephemeral { -1 } else { c.port as i32 });
    push(&mut p, "udpport", if c.udp_ephemeral { -1 } else { c.udp_port as i32 });
    push(&mut p, "inter", c.listen_str.clone().unwrap_or_else(|| "NULL".into()));
    push(&mut p, "verbosity", sh.verbosity.load(Ordering::Relaxed));
    push(&mut p, "oldest", 0);
    push(&mut p, "evictions", if c.evictions { "on" } else { "off" });
    push(
        &mut p,
        "domain_socket",
        c.unix_socket.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "NULL".into()),
    );
    push(&mut p, "umask", format!("{:o}", c.unix_mask));
    push(&mut p, "shutdown_command", yes_no(c.shutdown_command));
    push(&mut p, "growth_factor", format!("{:.2}", sh.store.slabs().factor()));
    push(&mut p, "chunk_size", c.chunk_size);
    push(&mut p, "num_threads", c.threads);
    push(&mut p, "num_threads_per_udp", c.threads);
    push(&mut p, "stat_key_prefix", c.prefix_delimiter);
    push(&mut p, "detail_enabled", yes_no(sh.detail.on()));
    push(&mut p, "reqs_per_event", c.reqs_per_event);
    push(&mut p, "cas_enabled", yes_no(c.use_cas));
    push(&mut p, "tcp_backlog", c.backlog);
    push(&mut p, "binding_protocol", c.binding.stat_name());
    push(&mut p, "auth_enabled_sasl", yes_no(c.sasl));
    // memcached shows the authfile's path
    push(&mut p, "auth_enabled_ascii", sh.ascii_auth.path().map_or("no".into(), |p| p.display().to_string()));
    push(&mut p, "item_size_max", c.item_size_max);
    push(&mut p, "maxconns_fast", yes_no(c.maxconns_fast));
    push(&mut p, "hashpower_init", c.hashpower_init);
    push(&mut p, "slab_reassign", yes_no(c.slab_reassign));
    let t = &sh.tunables;
    push(&mut p, "slab_automove", t.slab_automove.load(Ordering::Relaxed));
    push(&mut p, "slab_automove_ratio", format!("{:.2}", c.slab_automove_ratio));
    push(&mut p, "slab_automove_window", c.slab_automove_window);
    push(&mut p, "slab_chunk_max", c.slab_chunk_max);
    push(&mut p, "lru_crawler", yes_no(c.lru_crawler));
    push(&mut p, "lru_crawler_sleep", c.lru_crawler_sleep);
    push(&mut p, "lru_crawler_tocrawl", c.lru_crawler_tocrawl);
    push(&mut p, "tail_repair_time", c.tail_repair_time);
    push(&mut p, "flush_enabled", yes_no(c.flush_enabled));
    push(&mut p, "dump_enabled", yes_no(c.dump_enabled));
    push(&mut p, "hash_algorithm", &c.hash_algorithm);
    push(&mut p, "lru_maintainer_thread", yes_no(c.lru_maintainer));
    push(&mut p, "lru_segmented", yes_no(t.lru_segmented.load(Ordering::Relaxed)));
    push(&mut p, "hot_lru_pct", t.hot_lru_pct.load(Ordering::Relaxed));
    push(&mut p, "warm_lru_pct", t.warm_lru_pct.load(Ordering::Relaxed));
    push(&mut p, "hot_max_factor", format!("{:.2}", t.hot_max_factor()));
    push(&mut p, "warm_max_factor", format!("{:.2}", t.warm_max_factor()));
    push(&mut p, "temp_lru", yes_no(t.temp_lru.load(Ordering::Relaxed)));
    push(&mut p, "temporary_ttl", t.temporary_ttl.load(Ordering::Relaxed));
    push(&mut p, "idle_timeout", c.idle_timeout);
    push(&mut p, "watcher_logbuf_size", c.watcher_logbuf_size);
    push(&mut p, "worker_logbuf_size", c.worker_logbuf_size);
    push(&mut p, "read_buf_mem_limit", c.read_buf_mem_limit);
    push(&mut p, "track_sizes", yes_no(c.track_sizes));
    push(&mut p, "inline_ascii_response", "no");
    push(&mut p, "ext_item_size", 512);
    push(&mut p, "ext_item_age", u32::MAX);
    push(&mut p, "ext_low_ttl", 0);
    push(&mut p, "ext_recache_rate", 2000);
    push(&mut p, "ext_wbuf_size", 4194304);
    push(&mut p, "ext_compact_under", 0);
    push(&mut p, "ext_drop_under", 0);
    push(&mut p, "ext_max_sleep", 1000000);
    push(&mut p, "ext_max_frag", "0.80");
    push(&mut p, "slab_automove_freeratio", "0.010");
    push(&mut p, "ext_drop_unread", "no");
    for (k, v) in c.tls.settings() {
        push(&mut p, k, v);
    }
    push(&mut p, "num_napi_ids", "(null)");
    push(&mut p, "memory_file", "(null)");
    // ours, only with --cluster-file (so the list matches memcached's without it)
    if let Some(d) = &sh.cluster {
        push(&mut p, "cluster_file", d.path().display().to_string());
        push(&mut p, "cluster_version", d.snapshot().version);
    }
    p
}

/// `stats items`.
pub fn items(sh: &Shared) -> Pairs {
    let s = sh.store.snapshot();
    let mut p = Pairs::new();
    for c in s.classes.iter().filter(|c| c.used > 0) {
        let k = |name: &str| format!("items:{}:{}", c.id, name);
        push(&mut p, k("number"), c.used);
        push(&mut p, k("number_hot"), 0);
        push(&mut p, k("number_warm"), 0);
        push(&mut p, k("number_cold"), c.used);
        push(&mut p, k("age_hot"), 0);
        push(&mut p, k("age_warm"), 0);
        push(&mut p, k("age"), 0);
        push(&mut p, k("mem_requested"), c.requested);
        push(&mut p, k("evicted"), c.evicted);
        push(&mut p, k("evicted_nonzero"), c.evicted_nonzero);
        push(&mut p, k("evicted_time"), c.evicted_time);
        push(&mut p, k("outofmemory"), c.outofmemory);
        push(&mut p, k("tailrepairs"), 0);
        push(&mut p, k("reclaimed"), c.reclaimed);
        push(&mut p, k("expired_unfetched"), c.expired_unfetched);
        push(&mut p, k("evicted_unfetched"), c.evicted_unfetched);
        push(&mut p, k("evicted_active"), c.evicted_active);
        push(&mut p, k("crawler_reclaimed"), c.crawler_reclaimed);
        push(&mut p, k("crawler_items_checked"), c.crawler_items_checked);
        push(&mut p, k("lrutail_reflocked"), 0);
        push(&mut p, k("moves_to_cold"), 0);
        push(&mut p, k("moves_to_warm"), 0);
        push(&mut p, k("moves_within_lru"), 0);
        push(&mut p, k("direct_reclaims"), 0);
        push(&mut p, k("hits_to_hot"), 0);
        push(&mut p, k("hits_to_warm"), 0);
        push(&mut p, k("hits_to_cold"), 0);
        push(&mut p, k("hits_to_temp"), 0);
    }
    p
}

/// `stats slabs`.
pub fn slabs(sh: &Shared) -> Pairs {
    let s = sh.store.snapshot();
    let t = sh.stats.totals();
    let mut p = Pairs::new();
    for c in &s.classes {
        let k = |name: &str| format!("{}:{}", c.id, name);
        let total = c.pages * c.per_page;
        let st = &t.slab[c.id];
        push(&mut p, k("chunk_size"), c.size);
        push(&mut p, k("chunks_per_page"), c.per_page);
        push(&mut p, k("total_pages"), c.pages);
        push(&mut p, k("total_chunks"), total);
        push(&mut p, k("used_chunks"), c.used);
        push(&mut p, k("free_chunks"), (total as u64).saturating_sub(c.used));
        push(&mut p, k("free_chunks_end"), c.free_end);
        push(&mut p, k("get_hits"), st.get_hits);
        push(&mut p, k("cmd_set"), st.set_cmds);
        push(&mut p, k("delete_hits"), st.delete_hits);
        push(&mut p, k("incr_hits"), st.incr_hits);
        push(&mut p, k("decr_hits"), st.decr_hits);
        push(&mut p, k("cas_hits"), st.cas_hits);
        push(&mut p, k("cas_badval"), st.cas_badval);
        push(&mut p, k("touch_hits"), st.touch_hits);
    }
    push(&mut p, "active_slabs", s.classes.len());
    push(&mut p, "total_malloced", s.malloced);
    p
}

/// `stats conns`.
pub fn conns(sh: &Shared) -> Pairs {
    let now = sh.clock().now();
    let mut p = Pairs::new();
    for (fd, c) in sh.conns.lock().iter() {
        if c.udp {
            push(&mut p, format!("{fd}:UDP"), "UDP");
        }
        push(&mut p, format!("{fd}:addr"), &c.addr);
        if !c.listening && !c.udp {
            push(&mut p, format!("{fd}:listen_addr"), &c.listen_addr);
        }
        let state = match (c.listening, c.udp) {
            (true, _) => "conn_listening",
            (_, true) => "conn_read",
            _ => c.state.get().name(),
        };
        push(&mut p, format!("{fd}:state"), state);
        push(&mut p, format!("{fd}:secs_since_last_cmd"), now.saturating_sub(c.last_cmd.load(Ordering::Relaxed)));
    }
    p
}

/// `stats sizes` with `-o track_sizes`: items per 32-byte size bucket, sizes counted as
/// memcached counts them (so the histogram reads the same).
pub fn sizes(sh: &Shared) -> Pairs {
    let mut hist = std::collections::BTreeMap::<usize, u64>::new();
    let use_cas = sh.config.use_cas;
    sh.store.for_each(|e| {
        let ntotal = 48
            + if use_cas { 8 } else { 0 }
            + e.key().len()
            + 1
            + e.value().len()
            + 2
            + if e.flags() != 0 { 4 } else { 0 };
        *hist.entry(ntotal.div_ceil(32) * 32).or_default() += 1;
        true
    });
    hist.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// `stats cachedump <class> <limit>`: memcached's ITEM lines (not STAT pairs).
pub fn cachedump(sh: &Shared, class: u32, limit: u32, out: &mut Vec<u8>) {
    let mut n = 0u32;
    let started = sh.clock().process_started();
    let mut line = String::new();
    sh.store.for_each(|e| {
        if e.class() as u32 != class {
            return true;
        }
        line.clear();
        let exp = if e.exptime() == 0 { 0 } else { e.exptime() as i64 + started };
        let _ = write!(line, " [{} b; {} s]\r\n", e.value().len(), exp);
        out.extend_from_slice(b"ITEM ");
        out.extend_from_slice(e.key());
        out.extend_from_slice(line.as_bytes());
        n += 1;
        limit == 0 || n < limit
    });
    out.extend_from_slice(b"END\r\n");
}

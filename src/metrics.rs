//! Optional Prometheus endpoint (`-o metrics_port=N`): what prometheus/memcached_exporter would
//! export for this server, so dashboards and alerts written for the exporter work unchanged.
//!
//! Owns: the mapping from `stats`, `stats settings`, `stats items` and `stats slabs` to the
//! exporter's series (names, labels, help, types, and its arithmetic: `set` hits are `cmd_set`
//! minus the CAS commands memcached counts in it), the page's text format, and a small
//! blocking HTTP/1.0 responder on its own thread (`GET /metrics`; 404 elsewhere; a deadline per
//! request). Knows nothing of how the counters are kept: it reads the same `report` pairs the
//! `stats` commands print. Off by default; binds to loopback unless `-o metrics_addr=` says
//! otherwise.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::server::{report, Shared};

/// How long one HTTP request may take to arrive (a slow client cannot hold the endpoint).
const REQUEST_DEADLINE: Duration = Duration::from_secs(2);

/// `stats` fields exported as they are: (stats name, metric, type, help). Help texts are the
/// exporter's.
const GENERAL: &[(&str, &str, &str, &str)] = &[
    ("uptime", "memcached_uptime_seconds", "counter", "Number of seconds since the server started."),
    ("time", "memcached_time_seconds", "gauge", "current UNIX time according to the server."),
    ("rusage_user", "memcached_process_user_cpu_seconds_total", "counter", "Accumulated user time for this process."),
    (
        "rusage_system",
        "memcached_process_system_cpu_seconds_total",
        "counter",
        "Accumulated system time for this process.",
    ),
    ("bytes", "memcached_current_bytes", "gauge", "Current number of bytes used to store items."),
    ("limit_maxbytes", "memcached_limit_bytes", "gauge", "Number of bytes this server is allowed to use for storage."),
    ("curr_items", "memcached_current_items", "gauge", "Current number of items stored by this instance."),
    (
        "total_items",
        "memcached_items_total",
        "counter",
        "Total number of items stored during the life of this instance.",
    ),
    ("bytes_read", "memcached_read_bytes_total", "counter", "Total number of bytes read by this server from network."),
    (
        "bytes_written",
        "memcached_written_bytes_total",
        "counter",
        "Total number of bytes sent by this server to network.",
    ),
    ("curr_connections", "memcached_current_connections", "gauge", "Current number of open connections."),
    (
        "total_connections",
        "memcached_connections_total",
        "counter",
        "Total number of connections opened since the server started running.",
    ),
    (
        "rejected_connections",
        "memcached_connections_rejected_total",
        "counter",
        "Total number of connections rejected due to hitting the memcached's -c limit in maxconns_fast mode.",
    ),
    (
        "conn_yields",
        "memcached_connections_yielded_total",
        "counter",
        "Total number of connections yielded running due to hitting the memcached's -R limit.",
    ),
    (
        "listen_disabled_num",
        "memcached_connections_listener_disabled_total",
        "counter",
        "Number of times that memcached has hit its connections limit and disabled its listener.",
    ),
    (
        "evictions",
        "memcached_items_evicted_total",
        "counter",
        "Total number of valid items removed from cache to free memory for new items.",
    ),
    (
        "reclaimed",
        "memcached_items_reclaimed_total",
        "counter",
        "Total number of times an entry was stored using memory from an expired entry.",
    ),
    (
        "store_too_large",
        "memcached_item_too_large_total",
        "counter",
        "The number of times an item exceeded the max-item-size when being stored.",
    ),
    (
        "store_no_memory",
        "memcached_item_no_memory_total",
        "counter",
        "The number of times an item could not be stored due to no more memory.",
    ),
    ("lru_crawler_starts", "memcached_lru_crawler_starts_total", "counter", "Times an LRU crawler was started."),
    (
        "direct_reclaims",
        "memcached_direct_reclaims_total",
        "counter",
        "Times worker threads had to directly reclaim or evict items.",
    ),
    (
        "crawler_items_checked",
        "memcached_lru_crawler_items_checked_total",
        "counter",
        "Total items examined by LRU Crawler.",
    ),
    ("crawler_reclaimed", "memcached_lru_crawler_reclaimed_total", "counter", "Total items freed by LRU Crawler."),
    (
        "moves_to_cold",
        "memcached_lru_crawler_moves_to_cold_total",
        "counter",
        "Total number of items moved from HOT/WARM to COLD LRU's.",
    ),
    (
        "moves_to_warm",
        "memcached_lru_crawler_moves_to_warm_total",
        "counter",
        "Total number of items moved from COLD to WARM LRU.",
    ),
    (
        "moves_within_lru",
        "memcached_lru_crawler_moves_within_lru_total",
        "counter",
        "Total number of items reshuffled within HOT or WARM LRU's.",
    ),
    // `total_malloced` is printed by `stats slabs`; the exporter's client merges it in.
    ("total_malloced", "memcached_malloced_bytes", "gauge", "Number of bytes of memory allocated to slab pages."),
    (
        "accepting_conns",
        "memcached_accepting_connections",
        "gauge",
        "The Memcached server is currently accepting new connections.",
    ),
];

const COMMANDS: &str = "memcached_commands_total";
const COMMANDS_HELP: &str = "Total number of all requests broken down by command (get, set, etc.) and status.";
/// Commands with `<op>_hits` / `<op>_misses` counters.
const HIT_MISS_OPS: &[&str] = &["get", "delete", "incr", "decr", "cas", "touch"];

/// `stats settings` fields, exported only while the LRU crawler is on (`lru_crawler yes`), as
/// the exporter does: (setting, metric, help, yes/no setting).
const CRAWLER_SETTINGS: &[(&str, &str, &str, bool)] = &[
    ("lru_crawler", "memcached_lru_crawler_enabled", "Whether the LRU crawler is enabled.", true),
    ("lru_crawler_sleep", "memcached_lru_crawler_sleep", "Microseconds to sleep between LRU crawls.", false),
    ("lru_crawler_tocrawl", "memcached_lru_crawler_to_crawl", "Max items to crawl per slab per run.", false),
    (
        "lru_maintainer_thread",
        "memcached_lru_crawler_maintainer_thread",
        "Split LRU mode and background threads.",
        true,
    ),
    ("hot_lru_pct", "memcached_lru_crawler_hot_percent", "Percent of slab memory reserved for HOT LRU.", false),
    ("warm_lru_pct", "memcached_lru_crawler_warm_percent", "Percent of slab memory reserved for WARM LRU.", false),
    ("hot_max_factor", "memcached_lru_crawler_hot_max_factor", "Set idle age of HOT LRU to COLD age * this", false),
    ("warm_max_factor", "memcached_lru_crawler_warm_max_factor", "Set idle age of WARM LRU to COLD age * this", false),
];

/// `stats items` fields per slab class (`items:<id>:<field>`): (field, metric, type, help).
const ITEMS: &[(&str, &str, &str, &str)] = &[
    ("number", "memcached_slab_current_items", "gauge", "Number of items currently stored in this slab class."),
    ("age", "memcached_slab_items_age_seconds", "gauge", "Number of seconds the oldest item has been in the slab class."),
    (
        "crawler_reclaimed",
        "memcached_slab_items_crawler_reclaimed_total",
        "counter",
        "Number of items freed by the LRU Crawler.",
    ),
    (
        "evicted",
        "memcached_slab_items_evicted_total",
        "counter",
        "Total number of times an item had to be evicted from the LRU before it expired.",
    ),
    (
        "evicted_nonzero",
        "memcached_slab_items_evicted_nonzero_total",
        "counter",
        "Total number of times an item which had an explicit expire time set had to be evicted from the LRU before it expired.",
    ),
    (
        "evicted_time",
        "memcached_slab_items_evicted_time_seconds",
        "counter",
        "Seconds since the last access for the most recent item evicted from this class.",
    ),
    (
        "evicted_unfetched",
        "memcached_slab_items_evicted_unfetched_total",
        "counter",
        "Total nmber of items evicted and never fetched.",
    ),
    (
        "expired_unfetched",
        "memcached_slab_items_expired_unfetched_total",
        "counter",
        "Total number of valid items evicted from the LRU which were never touched after being set.",
    ),
    (
        "outofmemory",
        "memcached_slab_items_outofmemory_total",
        "counter",
        "Total number of items for this slab class that have triggered an out of memory error.",
    ),
    ("reclaimed", "memcached_slab_items_reclaimed_total", "counter", "Total number of items reclaimed."),
    (
        "tailrepairs",
        "memcached_slab_items_tailrepairs_total",
        "counter",
        "Total number of times the entries for a particular ID need repairing.",
    ),
    (
        "mem_requested",
        "memcached_slab_mem_requested_bytes",
        "counter",
        "Number of bytes of memory actual items take up within a slab.",
    ),
    ("moves_to_cold", "memcached_slab_items_moves_to_cold", "counter", "Number of items moved from HOT or WARM into COLD."),
    ("moves_to_warm", "memcached_slab_items_moves_to_warm", "counter", "Number of items moves from COLD into WARM."),
    (
        "moves_within_lru",
        "memcached_slab_items_moves_within_lru",
        "counter",
        "Number of times active items were bumped within HOT or WARM.",
    ),
    ("number_hot", "memcached_slab_hot_items", "gauge", "Number of items presently stored in the HOT LRU."),
    ("number_warm", "memcached_slab_warm_items", "gauge", "Number of items presently stored in the WARM LRU."),
    ("number_cold", "memcached_slab_cold_items", "gauge", "Number of items presently stored in the COLD LRU."),
    ("number_temp", "memcached_slab_temporary_items", "gauge", "Number of items presently stored in the TEMPORARY LRU."),
    ("age_hot", "memcached_slab_hot_age_seconds", "gauge", "Age of the oldest item in HOT LRU."),
    ("age_warm", "memcached_slab_warm_age_seconds", "gauge", "Age of the oldest item in HOT LRU."),
];

const LRU_HITS: &str = "memcached_slab_lru_hits_total";
/// `items:<id>:hits_to_<lru>` → `lru` label.
const LRU_HIT_FIELDS: &[(&str, &str)] =
    &[("hits_to_hot", "hot"), ("hits_to_warm", "warm"), ("hits_to_cold", "cold"), ("hits_to_temp", "temporary")];

/// `stats slabs` fields per class (`<id>:<field>`): (field, metric, help); all gauges.
const SLABS: &[(&str, &str, &str)] = &[
    (
        "chunk_size",
        "memcached_slab_chunk_size_bytes",
        "Number of bytes allocated to each chunk within this slab class.",
    ),
    ("chunks_per_page", "memcached_slab_chunks_per_page", "Number of chunks within a single page for this slab class."),
    ("total_pages", "memcached_slab_current_pages", "Number of pages allocated to this slab class."),
    ("total_chunks", "memcached_slab_current_chunks", "Number of chunks allocated to this slab class."),
    ("used_chunks", "memcached_slab_chunks_used", "Number of chunks allocated to an item."),
    ("free_chunks", "memcached_slab_chunks_free", "Number of chunks not yet allocated items."),
    (
        "free_chunks_end",
        "memcached_slab_chunks_free_end",
        "Number of free chunks at the end of the last allocated page.",
    ),
];

const SLAB_COMMANDS: &str = "memcached_slab_commands_total";
const SLAB_COMMANDS_HELP: &str =
    "Total number of all requests broken down by command (get, set, etc.) and status per slab.";

/// One metric family: every series of a name together, under one HELP and TYPE.
struct Family {
    help: &'static str,
    kind: &'static str,
    series: Vec<(String, String)>,
}

/// The page being built, families in first-seen order.
#[derive(Default)]
struct Page {
    order: Vec<&'static str>,
    families: BTreeMap<&'static str, Family>,
}

impl Page {
    fn add(&mut self, name: &'static str, kind: &'static str, help: &'static str, labels: String, value: String) {
        let fam = self.families.entry(name).or_insert_with(|| {
            self.order.push(name);
            Family { help, kind, series: Vec::new() }
        });
        // One series per label set: a second one would make Prometheus reject the whole scrape.
        if !fam.series.iter().any(|(l, _)| *l == labels) {
            fam.series.push((labels, value));
        }
    }

    fn render(&self) -> String {
        let mut out = String::with_capacity(16384);
        for name in &self.order {
            let f = &self.families[name];
            let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} {}", f.help, f.kind);
            for (labels, value) in &f.series {
                if labels.is_empty() {
                    let _ = writeln!(out, "{name} {value}");
                } else {
                    let _ = writeln!(out, "{name}{{{labels}}} {value}");
                }
            }
        }
        out
    }
}

fn num(map: &BTreeMap<String, String>, key: &str) -> Option<f64> {
    map.get(key)?.parse().ok()
}

/// A label value, escaped as the text format wants.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The metrics page for these `stats` outputs (exposed for tests; `render` reads them live).
pub fn page(general: &report::Pairs, settings: &report::Pairs, items: &report::Pairs, slabs: &report::Pairs) -> String {
    let mut p = Page::default();
    p.add("memcached_up", "gauge", "Could the memcached server be reached.", String::new(), "1".into());
    // The exporter reads `stats` with `stats slabs`' global lines merged in.
    let mut s: BTreeMap<String, String> = general.iter().cloned().collect();
    s.extend(slabs.iter().filter(|(k, _)| !k.contains(':')).cloned());
    if let Some(v) = s.get("version") {
        let labels = format!("version=\"{}\"", label(v));
        p.add("memcached_version", "gauge", "The version of this memcached server.", labels, "1".into());
    }
    let cmd = |p: &mut Page, value: String, command: &str, status: &str| {
        p.add(COMMANDS, "counter", COMMANDS_HELP, format!("command=\"{command}\",status=\"{status}\""), value)
    };
    for op in HIT_MISS_OPS {
        for (suffix, status) in [("hits", "hit"), ("misses", "miss")] {
            if let Some(v) = s.get(&format!("{op}_{suffix}")) {
                cmd(&mut p, v.clone(), op, status);
            }
        }
    }
    if let Some(v) = s.get("cas_badval") {
        cmd(&mut p, v.clone(), "cas", "badval");
    }
    if let Some(v) = s.get("cmd_flush") {
        cmd(&mut p, v.clone(), "flush", "hit");
    }
    // memcached counts CAS commands in cmd_set too; the exporter takes them out.
    if let (Some(set), Some(m), Some(h), Some(b)) =
        (num(&s, "cmd_set"), num(&s, "cas_misses"), num(&s, "cas_hits"), num(&s, "cas_badval"))
    {
        cmd(&mut p, (set - m - h - b).to_string(), "set", "hit");
    }
    for (stat, name, kind, help) in GENERAL {
        if let Some(v) = s.get(*stat) {
            p.add(name, kind, help, String::new(), v.clone());
        }
    }
    let settings: BTreeMap<String, String> = settings.iter().cloned().collect();
    if let Some(v) = settings.get("maxconns") {
        p.add("memcached_max_connections", "gauge", "Maximum number of clients allowed.", String::new(), v.clone());
    }
    if settings.get("lru_crawler").map(String::as_str) == Some("yes") {
        for (key, name, help, yes_no) in CRAWLER_SETTINGS {
            let Some(v) = settings.get(*key) else { continue };
            let v = if *yes_no { if v == "yes" { "1" } else { "0" }.to_string() } else { v.clone() };
            p.add(name, "gauge", help, String::new(), v);
        }
    }
    for (key, v) in items {
        let Some((slab, field)) = key.strip_prefix("items:").and_then(|k| k.split_once(':')) else { continue };
        let slab_label = format!("slab=\"{slab}\"");
        if let Some((name, kind, help)) = ITEMS.iter().find(|i| i.0 == field).map(|i| (i.1, i.2, i.3)) {
            p.add(name, kind, help, slab_label, v.clone());
        } else if let Some((_, lru)) = LRU_HIT_FIELDS.iter().find(|(f, _)| *f == field) {
            p.add(
                LRU_HITS,
                "counter",
                "Number of get_hits to the LRU.",
                format!("{slab_label},lru=\"{lru}\""),
                v.clone(),
            );
        }
    }
    // Per slab class, from `stats slabs`: the class's commands, then its memory.
    let mut per_class: BTreeMap<u32, BTreeMap<String, String>> = BTreeMap::new();
    for (key, v) in slabs {
        if let Some((id, field)) = key.split_once(':').and_then(|(i, f)| Some((i.parse::<u32>().ok()?, f))) {
            per_class.entry(id).or_default().insert(field.to_string(), v.clone());
        }
    }
    for (id, c) in &per_class {
        let slab_cmd = |p: &mut Page, value: String, command: &str, status: &str| {
            let labels = format!("slab=\"{id}\",command=\"{command}\",status=\"{status}\"");
            p.add(SLAB_COMMANDS, "counter", SLAB_COMMANDS_HELP, labels, value)
        };
        for op in HIT_MISS_OPS {
            if let Some(v) = c.get(&format!("{op}_hits")) {
                slab_cmd(&mut p, v.clone(), op, "hit");
            }
        }
        if let Some(v) = c.get("cas_badval") {
            slab_cmd(&mut p, v.clone(), "cas", "badval");
        }
        if let (Some(set), Some(h), Some(b)) = (num(c, "cmd_set"), num(c, "cas_hits"), num(c, "cas_badval")) {
            slab_cmd(&mut p, (set - h - b).to_string(), "set", "hit");
        }
        for (field, name, help) in SLABS {
            if let Some(v) = c.get(*field) {
                p.add(name, "gauge", help, format!("slab=\"{id}\""), v.clone());
            }
        }
    }
    // Ours, beyond the exporter: which server answers (`version` says memcached's release).
    let build = format!("version=\"{}\"", crate::config::RUSTCACHED_VERSION);
    p.add("rustcached_build_info", "gauge", "The rustcached release serving these metrics.", build, "1".into());
    p.render()
}

/// The metrics page, read live.
pub fn render(sh: &Shared) -> String {
    page(&report::general(sh), &report::settings(sh), &report::items(sh), &report::slabs(sh))
}

/// Read one request head before the deadline; its request line, or None (timeout, junk).
fn read_request_line(s: &mut TcpStream) -> Option<String> {
    let deadline = Instant::now() + REQUEST_DEADLINE;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") && !got.windows(2).any(|w| w == b"\n\n") {
        let left = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())?;
        s.set_read_timeout(Some(left)).ok()?;
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        if got.len() > 16384 {
            return None;
        }
    }
    let line = got.split(|&b| b == b'\n').next()?;
    Some(String::from_utf8_lossy(line).trim_end().to_string())
}

fn respond(s: &mut TcpStream, status: &str, body: &str) {
    let head = format!(
        "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.set_write_timeout(Some(REQUEST_DEADLINE));
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body.as_bytes());
}

/// Serve the metrics on `addr` from a background thread.
pub fn spawn(shared: Arc<Shared>, addr: SocketAddr) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new().name("metrics".into()).spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { continue };
            let Some(line) = read_request_line(&mut s) else {
                respond(&mut s, "408 Request Timeout", "request not received in time\n");
                continue;
            };
            let mut words = line.split_whitespace();
            let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            let path = path.split('?').next().unwrap_or("");
            match (method, path) {
                ("GET", "/metrics") => respond(&mut s, "200 OK", &render(&shared)),
                (_, "/metrics") => respond(&mut s, "405 Method Not Allowed", "only GET\n"),
                _ => respond(&mut s, "404 Not Found", "metrics are at /metrics\n"),
            }
        }
    })?;
    Ok(local)
}

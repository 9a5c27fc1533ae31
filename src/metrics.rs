//! Optional Prometheus endpoint (`-o metrics_port=N`): the `stats` counters under the metric
//! names prometheus/memcached_exporter uses, so dashboards work without a sidecar.
//!
//! Owns: a tiny blocking HTTP/1.0 responder on its own thread (any request path gets the
//! metrics) and the mapping from `stats` names to exporter names. Off by default; binds to
//! loopback unless `-o metrics_addr=` says otherwise.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use crate::server::{report, Shared};

/// (stats name, exporter metric, type, help, labels)
const MAP: &[(&str, &str, &str, &str, &str)] = &[
    ("uptime", "memcached_uptime_seconds", "counter", "Number of seconds since the server started.", ""),
    ("time", "memcached_time_seconds", "gauge", "Current UNIX time according to the server.", ""),
    (
        "rusage_user",
        "memcached_process_user_cpu_seconds_total",
        "counter",
        "Accumulated user time for this process.",
        "",
    ),
    (
        "rusage_system",
        "memcached_process_system_cpu_seconds_total",
        "counter",
        "Accumulated system time for this process.",
        "",
    ),
    ("curr_connections", "memcached_current_connections", "gauge", "Current number of open connections.", ""),
    ("total_connections", "memcached_connections_total", "counter", "Total number of connections opened.", ""),
    (
        "rejected_connections",
        "memcached_connections_rejected_total",
        "counter",
        "Connections rejected at the -c limit.",
        "",
    ),
    (
        "conn_yields",
        "memcached_connections_yielded_total",
        "counter",
        "Times a connection yielded after -R requests.",
        "",
    ),
    (
        "listen_disabled_num",
        "memcached_connections_listener_disabled_total",
        "counter",
        "Times the listener was disabled.",
        "",
    ),
    ("max_connections", "memcached_max_connections", "gauge", "Maximum number of clients allowed.", ""),
    ("accepting_conns", "memcached_accepting_connections", "gauge", "The server is accepting new connections.", ""),
    ("bytes", "memcached_current_bytes", "gauge", "Current bytes used to store items.", ""),
    ("limit_maxbytes", "memcached_limit_bytes", "gauge", "Storage limit in bytes (-m).", ""),
    ("curr_items", "memcached_current_items", "gauge", "Current number of items stored.", ""),
    ("total_items", "memcached_items_total", "counter", "Total number of items stored.", ""),
    ("evictions", "memcached_items_evicted_total", "counter", "Items evicted to free memory.", ""),
    ("reclaimed", "memcached_items_reclaimed_total", "counter", "Times an expired item's memory was reused.", ""),
    ("bytes_read", "memcached_read_bytes_total", "counter", "Bytes read from clients.", ""),
    ("bytes_written", "memcached_written_bytes_total", "counter", "Bytes sent to clients.", ""),
    ("store_too_large", "memcached_item_too_large_total", "counter", "Stores refused as too large.", ""),
    ("store_no_memory", "memcached_item_no_memory_total", "counter", "Stores refused for lack of memory.", ""),
    (
        "get_hits",
        "memcached_commands_total",
        "counter",
        "Commands by type and result.",
        "command=\"get\",status=\"hit\"",
    ),
    ("get_misses", "memcached_commands_total", "counter", "", "command=\"get\",status=\"miss\""),
    ("get_expired", "memcached_commands_total", "counter", "", "command=\"get\",status=\"expired\""),
    ("get_flushed", "memcached_commands_total", "counter", "", "command=\"get\",status=\"flushed\""),
    ("cmd_set", "memcached_commands_total", "counter", "", "command=\"set\",status=\"hit\""),
    ("cmd_flush", "memcached_commands_total", "counter", "", "command=\"flush\",status=\"hit\""),
    ("cmd_touch", "memcached_commands_total", "counter", "", "command=\"touch\",status=\"hit\""),
    ("delete_hits", "memcached_commands_total", "counter", "", "command=\"delete\",status=\"hit\""),
    ("delete_misses", "memcached_commands_total", "counter", "", "command=\"delete\",status=\"miss\""),
    ("incr_hits", "memcached_commands_total", "counter", "", "command=\"incr\",status=\"hit\""),
    ("incr_misses", "memcached_commands_total", "counter", "", "command=\"incr\",status=\"miss\""),
    ("decr_hits", "memcached_commands_total", "counter", "", "command=\"decr\",status=\"hit\""),
    ("decr_misses", "memcached_commands_total", "counter", "", "command=\"decr\",status=\"miss\""),
    ("cas_hits", "memcached_commands_total", "counter", "", "command=\"cas\",status=\"hit\""),
    ("cas_misses", "memcached_commands_total", "counter", "", "command=\"cas\",status=\"miss\""),
    ("cas_badval", "memcached_commands_total", "counter", "", "command=\"cas\",status=\"badval\""),
    ("touch_hits", "memcached_commands_total", "counter", "", "command=\"touch\",status=\"hit\""),
    ("touch_misses", "memcached_commands_total", "counter", "", "command=\"touch\",status=\"miss\""),
];

/// The metrics page.
pub fn render(sh: &Shared) -> String {
    let general: BTreeMap<String, String> = report::general(sh).into_iter().collect();
    let mut out = String::with_capacity(8192);
    out.push_str(
        "# HELP memcached_up Could the memcached server be reached.\n# TYPE memcached_up gauge\nmemcached_up 1\n",
    );
    if let Some(v) = general.get("version") {
        let _ = writeln!(out, "# HELP memcached_version The version of this memcached server.\n# TYPE memcached_version gauge\nmemcached_version{{version=\"{v}\"}} 1");
    }
    let mut last = "";
    for (stat, name, kind, help, labels) in MAP {
        let Some(v) = general.get(*stat) else { continue };
        if *name != last {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            last = name;
        }
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
    let slabs: Vec<(String, String)> = report::slabs(sh);
    let per_slab = [
        ("chunk_size", "memcached_slab_chunk_size_bytes", "gauge"),
        ("total_chunks", "memcached_slab_current_chunks", "gauge"),
        ("used_chunks", "memcached_slab_chunks_used", "gauge"),
        ("free_chunks", "memcached_slab_chunks_free", "gauge"),
        ("total_pages", "memcached_slab_current_pages", "gauge"),
    ];
    for (field, name, kind) in per_slab {
        let _ = writeln!(out, "# HELP {name} Per slab class {field}.\n# TYPE {name} {kind}");
        for (k, v) in &slabs {
            if let Some((id, f)) = k.split_once(':') {
                if f == field {
                    let _ = writeln!(out, "{name}{{slab=\"{id}\"}} {v}");
                }
            }
        }
    }
    out
}

/// Serve the metrics on `addr` from a background thread.
pub fn spawn(shared: Arc<Shared>, addr: SocketAddr) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new().name("metrics".into()).spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
            // Read the request head (we answer every path the same way).
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") && got.len() < 16384 {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let body = render(&shared);
            let head = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body.as_bytes());
        }
    })?;
    Ok(local)
}

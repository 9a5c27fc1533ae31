//! rustcached: a memcached-compatible, multithreaded cache daemon.
//!
//! Module map:
//! - `config`: memcached's command line (clap) and validated settings.
//! - `tlsconf`: the TLS settings (`-Z`, `-o ssl_*`) validated for rustls; `server::tls` loads
//!   the certificates and wraps connections.
//! - `cluster`: ElastiCache-style auto-discovery: the `--cluster-file` node list, its version
//!   and the `config get cluster` reply bytes.
//! - `protocol`: pure parsers and encoders over byte buffers (`text`, `meta`, `binary`, UDP
//!   framing in `udp`, metadump lines in `metadump`, number rules in `num`).
//! - `storage`: the cache: slab allocator, lock-striped index, eviction, expiry, page moves
//!   that follow the size mix (`storage::automove`). No protocol;
//!   it reports lookups, stores and evictions through `storage::events` (for `watch`).
//! - `server`: listeners, worker event loops, connections, and the dispatch glue that is the
//!   only code seeing both protocols and storage.
//! - `stats`: per-worker counters, read by `stats` without stopping anyone.
//! - `metrics`: the optional Prometheus endpoint (`-o metrics_port=N`).
//! - `limits`: `-k` (mlockall), `-r` (core-file limit) and `-L` (huge-page check) at startup.
//! - `ring`: client-side placement (libmemcached-compatible ketama, jump hash) for running many
//!   independent nodes; used by the `rustcached-ring` command.
//!
//! Thread model:
//! ```text
//!  main ── binds listeners, spawns workers, waits for a signal or `shutdown`
//!   ├─ worker-0 .. worker-(t-1): one mio::Poll each; accept on every listener and hand each
//!   │    connection to the least-loaded worker; serve own conns and the shared UDP sockets
//!   ├─ maintenance: ticks the clock, crawls stripes for expired items, moves a slab page
//!   │    a second at most (`slab_automove`)
//!   ├─ watch (started by the first `watch`): sends watchers their log lines
//!   └─ metrics (with `-o metrics_port`): answers scrapes
//! ```
//! Lock order: shard (index stripe) -> slab class. Never two shards at once, except by
//! `try_lock` while holding a class lock (eviction). See `storage` for details.
//!
//! Dependency direction: `server` -> `protocol`, `storage`, `stats`; `protocol` and `storage`
//! know nothing of each other or of sockets.

pub mod cluster;
pub mod config;
pub mod limits;
pub mod memcached;
pub mod metrics;
pub mod protocol;
pub mod ring;
pub mod server;
pub mod stats;
pub mod storage;
pub mod tlsconf;

/// Map memcached verbosity (`-v` count, `verbosity N`) onto the log level.
pub fn set_log_level(verbosity: u8) {
    if std::env::var_os("RUST_LOG").is_some() {
        return;
    }
    log::set_max_level(match verbosity {
        0 => log::LevelFilter::Warn,
        1 => log::LevelFilter::Info,
        2 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    });
}

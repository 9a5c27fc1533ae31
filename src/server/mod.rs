//! The server: listeners, worker threads and the glue between protocols and storage.
//!
//! Owns: binding (`listener`), the worker event loops (`worker`), spreading connections over
//! workers (`handoff`), closing idle connections (`idle`), per-connection buffers and framing
//! (`conn`), protocol dispatch (`text`, `binary`, `meta`), unsent replies (`out`), UDP datagrams
//! (`udp`), streamed metadumps (`dump`), run-time settings (`tunables`), SASL users (`sasl`),
//! ASCII auth logins (`asciiauth`), TLS sessions (`tls`), `stats` output (`report`),
//! auto-discovery requests (`discovery`), what `stats conns` says a connection is doing
//! (`connstate`), `watch` log streams (`watch`), `-vv` traces (`trace`), and the background
//! maintenance thread (clock ticks, expiry crawling).
//! `Server::bind` binds everything and returns; `Server::run` serves until
//! `ServerHandle::shutdown` (or the `shutdown` command), then drains and joins every thread.
//!
//! Thread model: `-t` workers, each with its own `mio::Poll`, each accepting on (a clone of)
//! every listener, handing each new connection to the worker with the fewest, and serving
//! its connections until they close; every worker also reads the shared UDP sockets. Workers share only
//! `Shared`: the store (lock-striped), the counters (per-worker, single writer) and flags.

pub mod ahead;
pub mod asciiauth;
pub mod binary;
pub mod conn;
pub mod connstate;
pub mod detail;
pub mod discovery;
pub mod dump;
pub mod exec;
pub mod handoff;
pub mod idle;
pub mod listener;
pub mod meta;
pub mod out;
pub mod report;
pub mod sasl;
pub mod session;
#[doc(hidden)]
pub mod sim;
pub mod text;
pub mod tls;
pub mod trace;
pub mod tunables;
pub mod udp;
pub mod watch;
pub mod worker;

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex as StdMutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::Config;
use crate::stats::Stats;
use crate::storage::automove::Automove;
use crate::storage::{Clock, Store, StoreConfig};

/// What `stats conns` shows about one connection or listener.
#[derive(Debug)]
pub struct ConnInfo {
    pub addr: String,
    pub listen_addr: String,
    pub listening: bool,
    pub udp: bool,
    /// Relative time of the last command.
    pub last_cmd: AtomicU32,
    /// What a client connection is doing (`stats conns` `state`).
    pub state: connstate::StateCell,
}

/// State shared by all threads.
pub struct Shared {
    pub config: Config,
    pub store: Arc<Store>,
    pub stats: Stats,
    pub started: Instant,
    pub verbosity: AtomicU32,
    /// Set when the server must stop.
    pub stopping: AtomicBool,
    /// The background crawler runs (`-o no_lru_crawler`, `lru_crawler enable|disable`).
    pub crawler_enabled: AtomicBool,
    /// Settings changed at run time by `lru` and `slabs automove`.
    pub tunables: tunables::Tunables,
    /// Spreads accepted connections over the workers.
    pub handoff: handoff::Handoff,
    /// `stats detail` prefix counters.
    pub detail: detail::Detail,
    /// Open connections and listeners by fd, for `stats conns`.
    pub conns: Mutex<BTreeMap<i32, Arc<ConnInfo>>>,
    /// SASL users (`-S`), loaded once at startup from `MEMCACHED_SASL_PWDB`.
    pub sasl: sasl::Passwords,
    /// The node list served to auto-discovery clients (`--cluster-file`), if any.
    pub cluster: Option<crate::cluster::Discovery>,
    /// ASCII auth users (`-Y`), reloaded on SIGHUP.
    pub ascii_auth: asciiauth::AuthFile,
    /// TLS (`-Z`): certificates, sessions, counters.
    pub tls: Option<Arc<tls::Tls>>,
    /// For each listener (in `Server::listeners` order): its connections speak TLS.
    pub tls_listeners: Vec<bool>,
    /// `watch` log streams; also the store's event listener.
    pub watch: Arc<watch::Watchers>,
    stop_lock: StdMutex<bool>,
    stop_cv: Condvar,
}

impl Shared {
    /// The state of a server with these settings, before anything is bound.
    pub fn new(config: Config, sasl: sasl::Passwords, ascii_auth: asciiauth::AuthFile) -> Arc<Shared> {
        let clock = Arc::new(Clock::new());
        let store_cfg = StoreConfig {
            limit_bytes: config.maxbytes,
            item_size_max: config.item_size_max,
            factor: config.factor,
            min_space: config.chunk_size,
            chunk_max: config.slab_chunk_max,
            slab_sizes: config.slab_sizes.clone(),
            evictions: config.evictions,
            use_cas: config.use_cas,
            shard_bits: 10,
        };
        let store = Arc::new(Store::new(&store_cfg, clock));
        let watch = Arc::new(watch::Watchers::new(config.watcher_logbuf_size as usize, config.watch_enabled));
        store.set_events(watch.clone());
        let cluster = config.cluster.clone().map(|(path, members)| crate::cluster::Discovery::new(path, members));
        Arc::new(Shared {
            verbosity: AtomicU32::new(config.verbose as u32),
            stats: Stats::new(config.threads),
            detail: detail::Detail::new(config.prefix_delimiter, config.detail_enabled),
            crawler_enabled: AtomicBool::new(config.lru_crawler),
            tunables: tunables::Tunables::new(&config),
            handoff: handoff::Handoff::new(config.threads),
            config,
            store,
            started: Instant::now(),
            stopping: AtomicBool::new(false),
            conns: Mutex::new(BTreeMap::new()),
            sasl,
            ascii_auth,
            cluster,
            tls: None,
            tls_listeners: Vec::new(),
            watch,
            stop_lock: StdMutex::new(false),
            stop_cv: Condvar::new(),
        })
    }

    pub fn clock(&self) -> &Clock {
        self.store.clock()
    }

    /// Ask the server to stop (SIGTERM, SIGINT, the `shutdown` command).
    pub fn request_shutdown(&self) {
        let mut s = self.stop_lock.lock().unwrap_or_else(|e| e.into_inner());
        *s = true;
        self.stop_cv.notify_all();
    }

    fn wait_for_shutdown(&self) {
        let mut s = self.stop_lock.lock().unwrap_or_else(|e| e.into_inner());
        while !*s {
            s = self.stop_cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// A handle to stop a running server from another thread.
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
}

impl ServerHandle {
    pub fn shutdown(&self) {
        self.shared.request_shutdown();
    }

    /// SIGHUP: re-read `--cluster-file` (a bad file keeps the old list, logged as an error).
    pub fn reload_cluster(&self) {
        discovery::reload(&self.shared);
    }

    /// Read the `-Y` authfile again (SIGHUP), as memcached does.
    pub fn reload_auth_file(&self) {
        self.shared.ascii_auth.reload();
    }
}

/// A bound, not yet running server.
pub struct Server {
    shared: Arc<Shared>,
    listeners: Vec<listener::Listener>,
    udp: Vec<std::net::UdpSocket>,
}

impl Server {
    /// Build the store and bind every listener.
    pub fn bind(config: Config) -> io::Result<Server> {
        let sasl = if config.sasl { sasl::Passwords::from_env() } else { sasl::Passwords::default() };
        let listeners = listener::bind_all(&config)?;
        let udp = listener::bind_udp(&config)?;
        listener::write_port_file(&config, &listeners, &udp)?;
        let ascii_auth = asciiauth::AuthFile::load(config.auth_file.as_deref()).map_err(io::Error::other)?;
        let tls = tls::Tls::load(&config.tls).map_err(io::Error::other)?.map(Arc::new);
        let tls_listeners = listeners.iter().map(|l| tls.is_some() && tls::serves_tls(&config, l)).collect();
        let mut shared = Shared::new(config, sasl, ascii_auth);
        let fresh = Arc::get_mut(&mut shared).expect("nothing else holds the new state yet");
        (fresh.tls, fresh.tls_listeners) = (tls, tls_listeners);
        {
            let mut reg = shared.conns.lock();
            for l in &listeners {
                reg.insert(
                    l.fd(),
                    Arc::new(ConnInfo {
                        addr: l.describe(),
                        listen_addr: l.describe(),
                        listening: true,
                        udp: false,
                        last_cmd: AtomicU32::new(shared.clock().now()),
                        state: Default::default(),
                    }),
                );
            }
            shared.stats.global.listeners.store(listeners.len(), Ordering::Relaxed);
            trace::slab_classes(&shared);
            listeners.iter().for_each(|l| trace::listening(&shared, l.fd(), false));
            udp.iter().for_each(|u| trace::listening(&shared, std::os::fd::AsRawFd::as_raw_fd(u), true));
            // memcached counts its listening sockets as connections made.
            shared.stats.global.total_conns.store(listeners.len() as u64, Ordering::Relaxed);
        }
        Ok(Server { shared, listeners, udp })
    }

    /// TCP addresses actually bound (useful with port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().filter_map(|l| l.local_addr()).collect()
    }

    pub fn handle(&self) -> ServerHandle {
        ServerHandle { shared: self.shared.clone() }
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Serve until shutdown is requested; `on_ready` runs once every worker is started.
    pub fn run(self, on_ready: impl FnOnce()) -> io::Result<()> {
        let shared = self.shared;
        // Every worker opens its descriptors (event loop, UDP sockets) before any accepts: as in
        // memcached, a client's descriptor is then above every one the server opened at
        // startup (t/watcher_connid.t takes the last `stats conns` line for its own).
        let built = (0..shared.config.threads)
            .map(|id| worker::Worker::new(id, shared.clone(), &self.listeners, &self.udp))
            .collect::<io::Result<Vec<_>>>()?;
        let mut workers = Vec::new();
        let mut wakers = Vec::new();
        for (id, w) in built.into_iter().enumerate() {
            wakers.push(w.waker());
            workers.push(std::thread::Builder::new().name(format!("worker-{id}")).spawn(move || w.run())?);
        }
        let maint = spawn_maintenance(shared.clone())?;
        on_ready();
        shared.wait_for_shutdown();
        log::info!("shutting down");
        shared.stopping.store(true, Ordering::SeqCst);
        for w in &wakers {
            let _ = w.wake();
        }
        for w in workers {
            if w.join().is_err() {
                log::error!("a worker thread panicked during shutdown");
            }
        }
        let _ = maint.join();
        drop(self.listeners);
        drop(self.udp);
        if let Some(path) = &shared.config.unix_socket {
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }
}

/// Clock ticks, the expiry crawler and page moves that follow the size mix.
fn spawn_maintenance(shared: Arc<Shared>) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("maintenance".into()).spawn(move || {
        let tick = Duration::from_millis(100);
        let shards = shared.store.shard_count();
        // A full crawl pass takes about 5 seconds.
        let per_tick = shards.div_ceil(50);
        let mut cursor = 0;
        let mut last_tick = Instant::now();
        let c = &shared.config;
        let mut automove = Automove::new(c.slab_automove_window as usize, c.slab_automove_ratio);
        let mut last_automove = Instant::now();
        while !shared.stopping.load(Ordering::Relaxed) {
            std::thread::sleep(tick);
            if last_tick.elapsed() >= Duration::from_millis(200) {
                shared.clock().tick();
                last_tick = Instant::now();
            }
            shared.clock().tick();
            // memcached's slab_automove: one look a second (`-o slab_reassign`, `slabs automove`).
            if last_automove.elapsed() >= Duration::from_secs(1) {
                last_automove = Instant::now();
                if c.slab_reassign && shared.tunables.slab_automove.load(Ordering::Relaxed) != 0 {
                    shared.store.automove(&mut automove);
                }
            }
            if shared.crawler_enabled.load(Ordering::Relaxed) {
                let end = (cursor + per_tick).min(shards);
                shared.store.crawl(cursor, end);
                cursor = if end >= shards { 0 } else { end };
            }
        }
    })
}

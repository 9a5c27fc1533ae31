//! `watch`: memcached's live log streams (`watch [fetchers] [mutations] [evictions]
//! [connevents]`), in memcached 1.6.18's line formats.
//!
//! Owns: the watchers (each a connection its worker handed over after `watch`, as memcached
//! hands it to its logger thread: the kinds it asked for, and a buffer bounded by
//! `-o watcher_logbuf_size` that drops lines and reports how many as `skipped=N`), the
//! formatting of `item_get`, `item_store`, `eviction`, `conn_new` and `conn_close` lines, the
//! writer thread that sends them (through the connection's stream, so TLS watchers get TLS
//! records), reads and drops whatever a watcher sends (memcached answers nothing there either),
//! closes a watcher whose peer went away, and the `log_watcher*` counters. A watcher is no
//! longer its worker's, so the idle timeout does not close it (memcached skips `conn_watch`).
//! Lookups, stores and evictions arrive through `storage::events::Events`; connection events
//! and the current connection's descriptor (`cfd=`) through one-line calls from the worker.
//! Knows nothing of how commands are parsed or executed.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex as StdMutex, OnceLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use super::conn::Stream;
use super::exec::Ctx;
use super::session::Action;
use super::{ConnInfo, Shared};
use crate::storage::events::{Events, Switch};
use crate::storage::{Mode, StoreOutcome};

/// Kinds of lines a watcher asks for (memcached's `LOG_*` flags).
pub const FETCHERS: u8 = 1;
pub const MUTATIONS: u8 = 2;
pub const EVICTIONS: u8 = 4;
pub const CONNEVENTS: u8 = 8;

/// `watch` arguments, as memcached 1.6.18 names them (others, `deletions` included, are an
/// `ERROR` there too).
const KINDS: &[(&[u8], u8)] =
    &[(b"fetchers", FETCHERS), (b"mutations", MUTATIONS), (b"evictions", EVICTIONS), (b"connevents", CONNEVENTS)];

use crate::protocol::text::reply::{ERROR, WATCH_DISABLED};

/// How often the writer looks for closed watchers when nothing is logged.
const WRITER_TICK: Duration = Duration::from_millis(100);

/// How soon the writer tries a watcher whose socket was full again.
const BACKLOG_RETRY: Duration = Duration::from_millis(5);

/// Room kept for a `skipped=N` note when deciding that a watcher's buffer is full.
const SKIP_NOTE_MAX: usize = 32;

thread_local! {
    /// The connection this worker thread is serving (`cfd=` of lines it causes).
    static CFD: Cell<i32> = const { Cell::new(-1) };
}

/// A worker starts serving connection `fd`.
#[inline]
pub fn serving(fd: i32) {
    CFD.with(|c| c.set(fd));
}

/// The connection this thread is serving (-1: none, or a UDP request).
pub fn current_fd() -> i32 {
    CFD.with(Cell::get)
}

struct Watcher {
    /// The connection, no longer served by a worker (plain, UNIX or TLS).
    stream: Stream,
    fd: i32,
    info: Arc<ConnInfo>,
    kinds: u8,
    /// Lines not yet sent; never more than the log buffer size.
    pending: Vec<u8>,
    /// Lines dropped since the last `skipped=` report.
    skipped: u64,
}

/// Every watcher of the server.
pub struct Watchers {
    /// Union of the kinds asked for by live watchers: 0 makes every hook a single load.
    active: AtomicU8,
    list: Mutex<Vec<Watcher>>,
    gid: AtomicU64,
    /// Per-watcher buffer bound (`-o watcher_logbuf_size`, bytes).
    cap: usize,
    /// `watch` allowed (not `-W`).
    allowed: bool,
    pub sent: AtomicU64,
    pub skipped: AtomicU64,
    /// Set when the writer starts: what it needs to close a watcher as a worker would.
    writer: OnceLock<Weak<Shared>>,
    /// The store's switch for its lookup, store and eviction hooks (`Events::attach`): on
    /// while a watcher wants fetchers, mutations or evictions.
    store_switch: OnceLock<Arc<Switch>>,
    wake: (StdMutex<bool>, Condvar),
}

impl Watchers {
    pub fn new(cap: usize, allowed: bool) -> Watchers {
        Watchers {
            active: AtomicU8::new(0),
            list: Mutex::new(Vec::new()),
            gid: AtomicU64::new(0),
            cap: cap.max(1024),
            allowed,
            sent: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            writer: OnceLock::new(),
            store_switch: OnceLock::new(),
            wake: (StdMutex::new(false), Condvar::new()),
        }
    }

    /// Live watchers (`stats` `log_watchers`).
    pub fn count(&self) -> usize {
        self.list.lock().len()
    }

    #[inline]
    fn wants(&self, kind: u8) -> bool {
        self.active.load(Ordering::Relaxed) & kind != 0
    }

    fn recompute(&self, list: &[Watcher]) {
        let active = list.iter().fold(0, |a, w| a | w.kinds);
        self.active.store(active, Ordering::Relaxed);
        if let Some(s) = self.store_switch.get() {
            s.set(active & (FETCHERS | MUTATIONS | EVICTIONS) != 0);
        }
    }

    /// Queue one line (`type=...` onwards) for every watcher of `kind`.
    fn emit(&self, kind: u8, body: std::fmt::Arguments<'_>) {
        let gid = self.gid.fetch_add(1, Ordering::Relaxed) + 1;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let line = format!("ts={}.{:06} gid={gid} {body}\n", now.as_secs(), now.subsec_micros());
        let mut list = self.list.lock();
        for w in list.iter_mut().filter(|w| w.kinds & kind != 0) {
            if w.pending.len() + line.len() + SKIP_NOTE_MAX > self.cap {
                // Full: make room by sending what the socket takes now, as memcached's logger
                // flushes a full watcher before giving up on a line. Waiting for the writer
                // instead would drop every line that arrives while a reader drains its socket,
                // so a reader waiting for the `skipped=N` note could wait forever.
                self.send(w);
            }
            if w.skipped > 0 {
                let note = format!("skipped={}\n", w.skipped);
                if w.pending.len() + note.len() + line.len() > self.cap {
                    w.skipped += 1;
                    self.skipped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                w.pending.extend_from_slice(note.as_bytes());
                w.skipped = 0;
            }
            if w.pending.len() + line.len() > self.cap {
                w.skipped += 1;
                self.skipped.fetch_add(1, Ordering::Relaxed);
            } else {
                w.pending.extend_from_slice(line.as_bytes());
            }
        }
        drop(list);
        self.poke();
    }

    fn poke(&self) {
        let (m, cv) = &self.wake;
        *m.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_one();
    }

    /// Take over a connection that asked to watch `kinds`; its first line is `OK`.
    fn adopt(&self, shared: &Arc<Shared>, stream: Stream, fd: i32, info: Arc<ConnInfo>, kinds: u8, unsent: Vec<u8>) {
        info.state.watching();
        let mut pending = unsent;
        pending.extend_from_slice(b"OK\r\n");
        let mut list = self.list.lock();
        list.push(Watcher { stream, fd, info, kinds, pending, skipped: 0 });
        self.recompute(&list);
        drop(list);
        self.writer.get_or_init(|| {
            let me = shared.clone();
            let _ = std::thread::Builder::new().name("watch".into()).spawn(move || me.watch.write_loop(&me));
            Arc::downgrade(shared)
        });
        self.poke();
    }

    /// Send pending lines without blocking; close watchers whose peer is gone.
    fn write_loop(&self, shared: &Shared) {
        let mut backlog = false;
        loop {
            {
                let (m, cv) = &self.wake;
                let mut woken = m.lock().unwrap_or_else(|e| e.into_inner());
                if !*woken {
                    // a full socket: try again soon (not a whole tick later)
                    let wait = if backlog { BACKLOG_RETRY } else { WRITER_TICK };
                    woken = cv.wait_timeout(woken, wait).unwrap_or_else(|e| e.into_inner()).0;
                }
                *woken = false;
            }
            let mut list = self.list.lock();
            let mut gone = Vec::new();
            let mut i = 0;
            while i < list.len() {
                if self.flush(&mut list[i]) {
                    i += 1;
                } else {
                    gone.push(list.swap_remove(i));
                }
            }
            if !gone.is_empty() {
                self.recompute(&list);
            }
            backlog = list.iter().any(|w| !w.pending.is_empty() || w.stream.pending_output());
            drop(list);
            for w in gone {
                close(shared, w);
            }
        }
    }

    /// Drop what the watcher sent (memcached reads and ignores it), then write what the socket
    /// takes; false when the watcher is gone.
    fn flush(&self, w: &mut Watcher) -> bool {
        let mut p = libc::pollfd { fd: w.fd, events: libc::POLLIN | libc::POLLRDHUP, revents: 0 };
        // SAFETY: one valid pollfd, zero timeout.
        if unsafe { libc::poll(&mut p, 1, 0) } > 0 {
            if p.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                return false;
            }
            if p.revents & (libc::POLLIN | libc::POLLRDHUP) != 0 && !discard_input(&mut w.stream) {
                return false;
            }
        }
        self.send(w)
    }

    /// Send pending lines until the socket takes no more; false on a send error other than
    /// a full socket (the writer then closes the watcher).
    fn send(&self, w: &mut Watcher) -> bool {
        while !w.pending.is_empty() {
            match w.stream.write(&w.pending) {
                Ok(0) => return false,
                Ok(n) => {
                    self.sent
                        .fetch_add(w.pending[..n].iter().filter(|&&b| b == b'\n').count() as u64, Ordering::Relaxed);
                    w.pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return e.kind() == io::ErrorKind::WouldBlock,
            }
        }
        // TLS records rustls still holds
        w.stream.flush().is_ok()
    }
}

/// Read and drop what a watcher sent; false at end of stream or on an error.
fn discard_input(stream: &mut Stream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// A watcher's peer went away: close the connection as its worker would have (memcached's
/// logger hands it back to a worker to close, with `reason=error`).
fn close(sh: &Shared, w: Watcher) {
    super::trace::side_close(sh, w.fd);
    // forgotten before its descriptor is closed and can be reused by a new connection
    sh.conns.lock().remove(&w.fd);
    if sh.watch.wants(CONNEVENTS) {
        let (rip, rport, transport) = peer(&w.info.addr);
        let fd = w.fd;
        sh.watch.emit(
            CONNEVENTS,
            format_args!("type=conn_close rip={rip} rport={rport} transport={transport} reason=error cfd={fd}"),
        );
    }
    super::trace::conn_closed(sh, w.fd);
    sh.stats.global.curr_conns.fetch_sub(1, Ordering::Relaxed);
    drop(w.stream);
}

/// `key=` value: URI-encoded as memcached does (unreserved characters kept).
fn uri(key: &[u8]) -> String {
    let mut s = String::with_capacity(key.len());
    for &b in key {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

impl Events for Watchers {
    fn attach(&self, switch: Arc<Switch>) {
        if self.store_switch.set(switch).is_ok() {
            self.recompute(&self.list.lock());
        }
    }

    fn fetched(&self, key: &[u8], found: Option<(u8, usize)>) {
        if !self.wants(FETCHERS) {
            return;
        }
        let (status, class, size) = match found {
            Some((c, n)) => ("found", c, n),
            None => ("not_found", 0, 0),
        };
        let key = uri(key);
        let cfd = current_fd();
        self.emit(
            FETCHERS,
            format_args!("type=item_get key={key} status={status} clsid={class} cfd={cfd} size={size}"),
        );
    }

    fn stored(&self, key: &[u8], mode: Mode, outcome: &StoreOutcome, exptime: i64, class: u8, size: usize) {
        if !self.wants(MUTATIONS) {
            return;
        }
        let status = match outcome {
            StoreOutcome::Stored { .. } => "stored",
            StoreOutcome::NotStored => "not_stored",
            StoreOutcome::Exists => "exists",
            StoreOutcome::NotFound => "not_found",
            StoreOutcome::TooLarge => "too_large",
            StoreOutcome::NoMemory => "no_memory",
        };
        let cmd = match mode {
            Mode::Set => "set",
            Mode::Add => "add",
            Mode::Replace => "replace",
            Mode::Append => "append",
            Mode::Prepend => "prepend",
            Mode::Cas => "cas",
        };
        let key = uri(key);
        let cfd = current_fd();
        self.emit(
            MUTATIONS,
            format_args!(
                "type=item_store key={key} status={status} cmd={cmd} ttl={exptime} clsid={class} cfd={cfd} size={size}"
            ),
        );
    }

    fn evicted(&self, key: &[u8], fetched: bool, ttl: i64, last_access: u32, class: u8) {
        if !self.wants(EVICTIONS) {
            return;
        }
        let key = uri(key);
        let fetch = if fetched { "yes" } else { "no" };
        self.emit(
            EVICTIONS,
            format_args!("type=eviction key={key} fetch={fetch} ttl={ttl} la={last_access} clsid={class}"),
        );
    }
}

/// A text storage command refused when its line arrived (too large, or no memory for it):
/// memcached logs an `item_store` line for it with no value size and no TTL. (1.6.18 passes
/// its arguments shifted, so its line says `clsid=<connection fd> cfd=<garbage>`; ours says
/// `clsid=0` and the real `cfd`.)
pub fn store_refused(sh: &Shared, key: &[u8], mode: Mode, outcome: &StoreOutcome) {
    sh.watch.stored(key, mode, outcome, 0, 0, 0);
}

/// The `watch` command: the connection becomes a watcher. Its worker hands it over
/// (`Action::Watch`, then `adopt`); its `OK` and lines come from the writer thread, so `OK`
/// always comes first. Over UDP there is no connection to hand over: no reply, as memcached
/// (whose `watch` there turns the UDP socket into a watcher that can write nothing).
pub fn command(ctx: &Ctx<'_>, args: &[&[u8]], nargs: usize, out: &mut Vec<u8>) -> Action {
    let w = &ctx.shared.watch;
    if !w.allowed {
        out.extend_from_slice(WATCH_DISABLED);
        return Action::Continue;
    }
    let mut kinds = if nargs == 0 { FETCHERS } else { 0 };
    for i in 0..nargs {
        match args.get(i).and_then(|a| KINDS.iter().find(|(name, _)| name == a)) {
            Some((_, k)) => kinds |= k,
            None => {
                out.extend_from_slice(ERROR);
                return Action::Continue;
            }
        }
    }
    let udp = ctx.shared.conns.lock().get(&current_fd()).is_none_or(|info| info.udp);
    if udp {
        return Action::Continue;
    }
    Action::Watch(kinds)
}

/// The worker hands over connection `fd` whose `watch` asked for `kinds` (it serves it no
/// more; the connection stays counted and listed in `stats conns` as `conn_watch`), with the
/// replies to earlier commands its socket has not taken yet (`unsent`, sent before `OK`).
pub fn adopt(shared: &Arc<Shared>, stream: Stream, fd: i32, info: Arc<ConnInfo>, kinds: u8, unsent: Vec<u8>) {
    shared.watch.adopt(shared, stream, fd, info, kinds, unsent);
}

fn peer(addr: &str) -> (&str, &str, &str) {
    match addr.strip_prefix("tcp:").and_then(|a| a.rsplit_once(':')) {
        Some((ip, port)) => (ip.trim_start_matches('[').trim_end_matches(']'), port, "tcp"),
        None => ("", "0", "local"),
    }
}

/// A connection was accepted (`addr`: `tcp:ip:port` or `unix:`).
pub fn conn_new(sh: &Shared, fd: i32, addr: &str) {
    if sh.watch.wants(CONNEVENTS) {
        let (rip, rport, transport) = peer(addr);
        sh.watch.emit(CONNEVENTS, format_args!("type=conn_new rip={rip} rport={rport} transport={transport} cfd={fd}"));
    }
}

/// A worker closes a connection: `normal`, `error` when the server closed it for bad input,
/// `idle_timeout` when the idle timeout did.
pub fn conn_close(sh: &Shared, fd: i32, info: &ConnInfo) {
    if sh.watch.wants(CONNEVENTS) {
        let (rip, rport, transport) = peer(&info.addr);
        let reason = info.state.close_reason();
        sh.watch.emit(
            CONNEVENTS,
            format_args!("type=conn_close rip={rip} rport={rport} transport={transport} reason={reason} cfd={fd}"),
        );
    }
}

/// The connection being served is closed for bad input (e.g. an HTTP request): remembered
/// for its `conn_close` line.
pub fn refuse(ctx: &Ctx<'_>) -> Action {
    bad_input(ctx);
    Action::Close
}

/// The connection being served is closed for bad input (e.g. a binary protocol error):
/// remembered for its `conn_close` line (`reason=error`, as memcached).
pub fn bad_input(ctx: &Ctx<'_>) {
    if let Some(info) = ctx.shared.conns.lock().get(&current_fd()) {
        info.state.mark_error();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_uri_encoded() {
        assert_eq!(uri(b"foo"), "foo");
        assert_eq!(uri(b"k#"), "k%23");
        assert_eq!(uri(&[b'#'; 250]).len(), 750);
    }

    #[test]
    fn a_full_buffer_drops_lines_and_says_how_many() {
        let w = Watchers::new(1024, true);
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap(); // as every connection's socket
                                          // a small socket buffer that nobody reads: the watcher's own buffer must fill
        let small: libc::c_int = 4096;
        // SAFETY: setsockopt on a socket we own, with a valid int option value.
        unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&a),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&small as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        let stream = Stream::Unix(mio::net::UnixStream::from_std(a));
        let info = Arc::new(ConnInfo {
            addr: "unix:".into(),
            listen_addr: String::new(),
            listening: false,
            udp: false,
            last_cmd: 0.into(),
            state: Default::default(),
        });
        w.list.lock().push(Watcher { stream, fd: -1, info, kinds: FETCHERS, pending: Vec::new(), skipped: 0 });
        w.recompute(&w.list.lock());
        for _ in 0..1000 {
            w.fetched(b"some-key", None);
        }
        let skipped = w.list.lock()[0].skipped;
        assert!(skipped > 0 && w.list.lock()[0].pending.len() <= 1024);
        w.list.lock()[0].pending.clear();
        w.fetched(b"k", Some((1, 4)));
        let text = String::from_utf8(w.list.lock()[0].pending.clone()).unwrap();
        assert!(text.starts_with(&format!("skipped={skipped}\nts=")), "{text}");
        assert!(text.contains(" type=item_get key=k status=found clsid=1 cfd=-1 size=4\n"), "{text}");
    }
}

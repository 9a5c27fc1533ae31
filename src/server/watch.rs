//! `watch`: memcached's live log streams (`watch [fetchers] [mutations] [evictions]
//! [connevents]`), in memcached 1.6.18's line formats.
//!
//! Owns: the watchers (each a duplicate of its connection's descriptor, the kinds it asked for,
//! and a buffer bounded by `-o watcher_logbuf_size` that drops lines and reports how many as
//! `skipped=N`), the formatting of `item_get`, `item_store`, `eviction`, `conn_new` and
//! `conn_close` lines, the writer thread that sends them, and the `log_watcher*` counters.
//! Lookups, stores and evictions arrive through `storage::events::Events`; connection events
//! and the current connection's descriptor (`cfd=`) through one-line calls from the worker.
//! Knows nothing of how commands are parsed or executed.

use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex as StdMutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use super::exec::Ctx;
use super::session::Action;
use super::Shared;
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
    fd: OwnedFd,
    /// The connection's own descriptor: when the worker closes it, the watch ends too.
    origin: i32,
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
    writer: OnceLock<()>,
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

    /// Add a watcher on a duplicate of descriptor `fd`; its first line is `OK`.
    fn add(self: &Arc<Self>, fd: i32, kinds: u8) -> io::Result<()> {
        let raw_origin = fd;
        // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a descriptor the calling worker owns and keeps open
        // for the duration of this call; the new descriptor is owned by the OwnedFd.
        let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `dup` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(dup) };
        let mut list = self.list.lock();
        list.push(Watcher { fd, origin: raw_origin, kinds, pending: b"OK\r\n".to_vec(), skipped: 0 });
        self.recompute(&list);
        drop(list);
        self.writer.get_or_init(|| {
            let me = self.clone();
            let _ = std::thread::Builder::new().name("watch".into()).spawn(move || me.write_loop());
        });
        self.poke();
        Ok(())
    }

    /// Send pending lines without blocking; drop watchers whose peer is gone.
    fn write_loop(self: Arc<Self>) {
        loop {
            {
                let (m, cv) = &self.wake;
                let mut woken = m.lock().unwrap_or_else(|e| e.into_inner());
                if !*woken {
                    woken = cv.wait_timeout(woken, WRITER_TICK).unwrap_or_else(|e| e.into_inner()).0;
                }
                *woken = false;
            }
            let mut list = self.list.lock();
            let before = list.len();
            list.retain_mut(|w| self.flush(w));
            if list.len() != before {
                self.recompute(&list);
            }
            let backlog = list.iter().any(|w| !w.pending.is_empty());
            drop(list);
            if backlog {
                std::thread::sleep(Duration::from_millis(5)); // a full socket: try again soon
            }
        }
    }

    /// Write what the socket takes; false when the watcher is gone.
    fn flush(&self, w: &mut Watcher) -> bool {
        let raw = w.fd.as_raw_fd();
        let mut p = libc::pollfd { fd: raw, events: libc::POLLRDHUP, revents: 0 };
        // SAFETY: one valid pollfd, zero timeout.
        if unsafe { libc::poll(&mut p, 1, 0) } > 0 && p.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
        {
            return false;
        }
        while !w.pending.is_empty() {
            // SAFETY: sending from a live buffer on a descriptor we own; MSG_DONTWAIT never blocks.
            let n = unsafe {
                libc::send(raw, w.pending.as_ptr().cast(), w.pending.len(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                return matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted);
            }
            let n = n as usize;
            self.sent.fetch_add(w.pending[..n].iter().filter(|&&b| b == b'\n').count() as u64, Ordering::Relaxed);
            w.pending.drain(..n);
        }
        true
    }
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

/// The `watch` command: the connection becomes a watcher (its `OK` and lines come from the
/// writer thread, so `OK` always comes first).
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
    let fd = current_fd();
    if fd < 0 || w.add(fd, kinds).is_err() {
        out.extend_from_slice(ERROR);
    } else if let Some(info) = ctx.shared.conns.lock().get(&fd) {
        info.state.watching();
    }
    Action::Continue
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

/// A connection is being closed: `normal` unless the server closed it for bad input. A watch
/// on it ends (its duplicate descriptor would otherwise keep the socket open).
pub fn conn_close(sh: &Shared, fd: i32, addr: &str, error: bool) {
    if sh.watch.active.load(Ordering::Relaxed) != 0 {
        let mut list = sh.watch.list.lock();
        list.retain(|w| w.origin != fd);
        sh.watch.recompute(&list);
    }
    if sh.watch.wants(CONNEVENTS) {
        let (rip, rport, transport) = peer(addr);
        let reason = if error { "error" } else { "normal" };
        sh.watch.emit(
            CONNEVENTS,
            format_args!("type=conn_close rip={rip} rport={rport} transport={transport} reason={reason} cfd={fd}"),
        );
    }
}

/// The connection being served is closed for bad input (e.g. an HTTP request): remembered
/// for its `conn_close` line.
pub fn refuse(ctx: &Ctx<'_>) -> Action {
    if let Some(info) = ctx.shared.conns.lock().get(&current_fd()) {
        info.state.mark_error();
    }
    Action::Close
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
        let fd: OwnedFd = a.into();
        w.list.lock().push(Watcher { fd, origin: -1, kinds: FETCHERS, pending: Vec::new(), skipped: 0 });
        w.recompute(&w.list.lock());
        for _ in 0..100 {
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

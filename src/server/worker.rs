//! One worker thread: a `mio::Poll` that accepts connections and serves them to the end.
//!
//! Owns: accepting (with the `-c` limit), the connection table, reading (drain until the
//! socket is empty, detected by a short read or WouldBlock), fairness between connections (a
//! connection that used up its `-R` budget is queued behind the others, a `conn_yields`), writing
//! with backpressure (a connection with too much unsent output is not read until it drains),
//! and shutdown (stop accepting, flush what is pending for a bounded time, close).
//!
//! Buffers: the worker owns one input and one output scratch buffer, lent to the connection
//! being served; a connection keeps its own copy only of leftovers (a partial request, output
//! the socket did not take), so idle connections hold no buffer memory.

use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token, Waker};

use super::conn::{Conn, InBuf, Stream};
use super::exec::Ctx;
use super::handoff::Arrival;
use super::idle::IdleCheck;
use super::listener::{Listener, MioListener};
use super::out::Out;
use super::report::RESERVED_FDS;
use super::session::Outcome;
use super::udp::UdpPort;
use super::{ConnInfo, Shared};
use crate::protocol::text::reply;

const WAKER: Token = Token(usize::MAX);
const LISTENER_BASE: usize = usize::MAX / 2;
const UDP_BASE: usize = usize::MAX / 4 * 3;
/// Datagrams served from one UDP socket before other events get a turn.
const UDP_BUDGET: usize = 64;

/// Bytes offered to one read call.
const READ_CHUNK: usize = 64 * 1024;
/// Scratch buffers larger than this are released after use.
const SCRATCH_KEEP: usize = 1024 * 1024;
/// How long shutdown waits for pending output.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Worker {
    id: usize,
    shared: Arc<Shared>,
    poll: Poll,
    waker: Arc<Waker>,
    listeners: Vec<MioListener>,
    udp: Vec<UdpPort>,
    /// UDP sockets whose budget ran out with datagrams possibly left.
    udp_pending: Vec<usize>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    ready: Vec<usize>,
    input: InBuf,
    output: Out,
    /// `-o idle_timeout`: when to look for idle connections.
    idle: IdleCheck,
}

/// Serve `conn` again after the events at hand, once (not when it is closing).
fn requeue(ready: &mut Vec<usize>, conn: &mut Conn, t: usize) {
    if !conn.queued && !conn.closing {
        conn.queued = true;
        ready.push(t);
    }
}

/// Write as much of `out` as the socket takes. A write error marks the connection for a hard
/// close (pending output is dropped).
/// What one read gave.
enum Got {
    /// `n` bytes; `drained` when the socket has no more for now (a short read).
    Bytes {
        n: usize,
        drained: bool,
    },
    WouldBlock,
    /// End of stream.
    Eof,
    /// The socket failed.
    Failed,
}

/// Read once into `buf` (retrying interrupted reads). A short read means the socket is drained
/// and edge-triggered readiness will report new data, except once the peer has closed its
/// side: then no event comes again, so the caller must read on to the end of the stream.
fn read_once(stream: &mut Stream, buf: &mut [u8], peer_closed: bool, fd: i32) -> Got {
    let offered = buf.len();
    loop {
        match stream.read(buf) {
            Ok(0) => return Got::Eof,
            Ok(n) => return Got::Bytes { n, drained: n < offered && !peer_closed && stream.short_read_drains() },
            Err(e) if would_block(&e) => return Got::WouldBlock,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                log::debug!("read error on fd {fd}: {e}");
                return Got::Failed;
            }
        }
    }
}

/// Write what the socket takes of `out` (and what the stream holds: TLS records); a failed
/// socket marks the connection broken.
fn write_some(conn: &mut Conn, out: &mut Out) -> usize {
    match out.write_to(&mut conn.stream).and_then(|n| conn.stream.flush().map(|()| n)) {
        Ok(n) => n,
        Err(_) => {
            conn.closing = true;
            conn.broken = true;
            0
        }
    }
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == ErrorKind::WouldBlock
}

impl Worker {
    pub fn new(
        id: usize,
        shared: Arc<Shared>,
        listeners: &[Listener],
        udp: &[std::net::UdpSocket],
    ) -> io::Result<Worker> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        shared.handoff.set_waker(id, waker.clone());
        let mut ls = Vec::new();
        for (i, l) in listeners.iter().enumerate() {
            let mut m = l.try_clone_mio()?;
            let t = Token(LISTENER_BASE + i);
            match &mut m {
                MioListener::Tcp(l) => poll.registry().register(l, t, Interest::READABLE)?,
                MioListener::Unix(l) => poll.registry().register(l, t, Interest::READABLE)?,
            }
            ls.push(m);
        }
        let mut ports = Vec::new();
        for (i, sock) in udp.iter().enumerate() {
            let (mut port, fd, info) = UdpPort::new(sock)?;
            poll.registry().register(&mut port.sock, Token(UDP_BASE + i), Interest::READABLE)?;
            shared.conns.lock().insert(fd, info);
            ports.push(port);
        }
        let idle = IdleCheck::new(shared.config.idle_timeout);
        Ok(Worker {
            id,
            shared,
            poll,
            waker,
            listeners: ls,
            udp: ports,
            udp_pending: Vec::new(),
            conns: Vec::new(),
            free: Vec::new(),
            ready: Vec::new(),
            input: InBuf::with_capacity(READ_CHUNK),
            output: Out::with_capacity(READ_CHUNK),
            idle,
        })
    }

    pub fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
    }

    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            let idle = self.ready.is_empty() && self.udp_pending.is_empty();
            let timeout = if idle { self.idle.poll_timeout(Instant::now()) } else { Some(Duration::ZERO) };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                log::error!("worker {}: poll failed: {e}", self.id);
                break;
            }
            if self.shared.stopping.load(Ordering::Relaxed) {
                break;
            }
            let n_events = events.iter().count();
            for ev in events.iter() {
                match ev.token() {
                    WAKER => self.adopt_arrivals(),
                    Token(t) if t >= UDP_BASE => self.serve_udp(t - UDP_BASE),
                    Token(t) if t >= LISTENER_BASE => self.accept(t - LISTENER_BASE),
                    Token(t) => {
                        if ev.is_writable() {
                            self.flush(t);
                        }
                        if ev.is_read_closed() || ev.is_error() {
                            if let Some(c) = self.conns.get_mut(t).and_then(|c| c.as_mut()) {
                                c.peer_closed = true;
                            }
                        }
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            self.serve(t);
                        }
                    }
                }
            }
            // after serving the events, so input that just arrived counts as activity
            if self.idle.due(Instant::now()) {
                self.kick_idle();
            }
            for i in std::mem::take(&mut self.udp_pending) {
                self.serve_udp(i);
            }
            // Connections that yielded: serve them again, in order.
            let queued = std::mem::take(&mut self.ready);
            let n = queued.len();
            for t in queued {
                if let Some(c) = self.conns.get_mut(t).and_then(|c| c.as_mut()) {
                    c.queued = false;
                    self.serve(t);
                }
            }
            // A busy iteration ends by offering the core to other runnable threads. When workers
            // outnumber free cores (`-t 4` on two cores, or a server pinned to one core) a worker
            // that is always runnable otherwise keeps the core for a whole scheduler slice while
            // the other workers' clients wait: unpipelined p99 on one core fell from 4.2 ms to
            // 0.57 ms (benches/compare.sh get90_unpipelined, memcached 2.4-3.0 ms), same
            // throughput. With a free core the call returns at once; one event is not "busy".
            if n_events + n >= 2 {
                std::thread::yield_now();
            }
        }
        self.drain_and_close();
    }

    /// `-o idle_timeout`: close the connections idle for too long (see `idle`).
    fn kick_idle(&mut self) {
        let now = self.shared.clock().now();
        for t in 0..self.conns.len() {
            if self.conns[t].as_ref().is_some_and(|c| self.idle.kicks(c, now)) {
                log::debug!("closing idle connection {t}");
                if let Some(c) = &self.conns[t] {
                    c.info.state.mark_idle_kick();
                }
                self.shared.stats.threads[self.id].idle_kicks.inc();
                self.close(t);
            }
        }
    }

    /// Serve datagrams from UDP socket `i`; come back next turn if some may be left.
    fn serve_udp(&mut self, i: usize) {
        let ctx = Ctx { shared: &self.shared, stats: &self.shared.stats.threads[self.id] };
        if self.udp[i].serve(&ctx, UDP_BUDGET) && !self.udp_pending.contains(&i) {
            self.udp_pending.push(i);
        }
    }

    fn accept(&mut self, li: usize) {
        loop {
            let accepted = match &self.listeners[li] {
                MioListener::Tcp(l) => l.accept().map(|(s, a)| {
                    let _ = s.set_nodelay(true);
                    let local = s.local_addr().map(|a| format!("tcp:{a}")).unwrap_or_default();
                    (Stream::Tcp(s), format!("tcp:{a}"), local)
                }),
                MioListener::Unix(l) => {
                    l.accept().map(|(s, _)| (Stream::Unix(s), "unix:".to_string(), super::listener::unix_addr(l)))
                }
            };
            let (stream, addr, local) = match accepted {
                Ok(x) => x,
                Err(e) if would_block(&e) => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("accept failed: {e}");
                    return;
                }
            };
            let g = &self.shared.stats.global;
            let listeners = g.listeners.load(Ordering::Relaxed);
            let curr = g.curr_conns.fetch_add(1, Ordering::Relaxed) + 1;
            // -c counts descriptors as memcached does: 20 reserved, the listeners, and the
            // process's own (stdio, event loop), so `-c N` admits N - 24 - listeners clients.
            if curr + listeners + RESERVED_FDS + 4 > self.shared.config.maxconns {
                g.curr_conns.fetch_sub(1, Ordering::Relaxed);
                g.rejected_conns.fetch_add(1, Ordering::Relaxed);
                let mut stream = stream;
                let _ = stream.write(reply::TOO_MANY_CONNS);
                log::debug!("rejected connection from {addr}: too many open connections");
                continue;
            }
            // (refused above in plaintext, as memcached does before its SSL_accept)
            let stream = match stream {
                Stream::Tcp(s) if self.shared.tls_listeners.get(li) == Some(&true) => {
                    let tls = self.shared.tls.as_ref().expect("a TLS listener implies -Z");
                    match super::tls::Tls::accept(tls, s) {
                        Ok(s) => Stream::Tls(Box::new(s)),
                        Err(e) => {
                            g.curr_conns.fetch_sub(1, Ordering::Relaxed);
                            log::warn!("TLS session for {addr} not created: {e}");
                            continue;
                        }
                    }
                }
                other => other,
            };
            g.total_conns.fetch_add(1, Ordering::Relaxed);
            let fd = match &stream {
                Stream::Tcp(s) => s.as_raw_fd(),
                Stream::Unix(s) => s.as_raw_fd(),
                Stream::Tls(s) => s.sock.as_raw_fd(),
            };
            let info = Arc::new(ConnInfo {
                addr,
                listen_addr: local,
                listening: false,
                udp: false,
                last_cmd: self.shared.clock().now().into(),
                state: Default::default(),
            });
            self.shared.conns.lock().insert(fd, info.clone());
            super::watch::conn_new(&self.shared, fd, &info.addr);
            super::trace::conn_new(&self.shared, fd);
            let handoff = &self.shared.handoff;
            let to = handoff.pick(self.id);
            let arrival = Arrival { stream, fd, info };
            if to == self.id {
                self.adopt(arrival);
            } else if let Err(arrival) = handoff.send(to, arrival) {
                handoff.moved(to, self.id);
                self.adopt(arrival);
            }
        }
    }

    /// Register connections other workers handed to this one.
    fn adopt_arrivals(&mut self) {
        for a in self.shared.handoff.take(self.id) {
            self.adopt(a);
        }
    }

    /// Start serving an accepted connection (already counted in `curr_conns`, in this
    /// worker's load and in the `stats conns` registry).
    fn adopt(&mut self, a: Arrival) {
        let Arrival { mut stream, fd, info } = a;
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.conns.push(None);
                self.conns.len() - 1
            }
        };
        if let Err(e) = self.poll.registry().register(&mut stream, Token(idx), Interest::READABLE | Interest::WRITABLE)
        {
            log::warn!("register failed: {e}");
            self.shared.stats.global.curr_conns.fetch_sub(1, Ordering::Relaxed);
            self.shared.conns.lock().remove(&fd);
            self.shared.handoff.done(self.id);
            self.free.push(idx);
            return;
        }
        self.conns[idx] = Some(Conn::new(stream, fd, info));
    }

    /// Read what is available, process it, write the replies.
    fn serve(&mut self, t: usize) {
        let Some(mut conn) = self.conns.get_mut(t).and_then(|c| c.take()) else {
            return;
        };
        if conn.wbuf.over_high_water() {
            // Backpressure: resume when the socket drains. The readable event is spent, so the
            // flush that drains it must come back here to read what the socket holds.
            conn.read_skipped = true;
            self.conns[t] = Some(conn);
            return;
        }
        conn.read_skipped = false;
        let stats = &self.shared.stats.threads[self.id];
        // Lend the scratch buffers unless the connection holds leftovers.
        let own_input = !conn.rbuf.is_empty();
        let mut input = if own_input { std::mem::take(&mut conn.rbuf) } else { std::mem::take(&mut self.input) };
        let own_output = !conn.wbuf.is_done();
        let mut output = if own_output { std::mem::take(&mut conn.wbuf) } else { std::mem::take(&mut self.output) };

        let mut eof = false;
        let mut more_to_read = false;
        if !conn.closing && input.is_empty() {
            // A value in flight is read straight into its item, without passing a buffer.
            while let Some(st) = conn.session.staged.as_mut() {
                let spare = st.spare();
                if spare.is_empty() {
                    break;
                }
                match read_once(&mut conn.stream, spare, conn.peer_closed, conn.fd) {
                    Got::Bytes { n, drained } => {
                        st.commit(n);
                        stats.bytes_read.add(n as u64);
                        if drained {
                            break;
                        }
                    }
                    Got::WouldBlock => break,
                    Got::Eof => eof = true,
                    Got::Failed => (eof, conn.closing) = (true, true),
                }
                if eof {
                    break;
                }
            }
        }
        while !conn.closing && !eof {
            let want = READ_CHUNK.max(conn.session.need.saturating_sub(input.len()));
            match read_once(&mut conn.stream, input.spare(want), conn.peer_closed, conn.fd) {
                Got::Bytes { n, drained } => {
                    input.commit(n);
                    stats.bytes_read.add(n as u64);
                    if drained {
                        break;
                    }
                    if input.len() >= 4 * READ_CHUNK && conn.session.need <= input.len() {
                        more_to_read = true; // enough to chew on; come back after processing
                        break;
                    }
                }
                Got::WouldBlock => break,
                Got::Eof => eof = true,
                Got::Failed => (eof, conn.closing) = (true, true),
            }
        }

        let ctx = Ctx { shared: &self.shared, stats };
        // -R: as memcached, yield after that many requests whether or not others wait.
        let budget = self.shared.config.reqs_per_event;
        super::watch::serving(conn.fd);
        let before = conn.info.state.enter();
        let (used, outcome) = if conn.closing {
            (input.len(), Outcome::Close)
        } else {
            conn.session.process(input.data(), &mut output, &ctx, budget)
        };
        conn.info.state.leave(
            before,
            used,
            conn.session.need.max(conn.session.staged.is_some() as usize),
            conn.session.swallow,
        );
        super::trace::replies(&self.shared, &output);
        if used > 0 {
            conn.info.last_cmd.store(self.shared.clock().now(), Ordering::Relaxed);
        }
        match outcome {
            Outcome::Close => conn.closing = true,
            Outcome::Yield => {
                stats.conn_yields.inc();
                requeue(&mut self.ready, &mut conn, t);
            }
            Outcome::Continue | Outcome::Blocked | Outcome::Watch(_) => {}
        }
        if eof {
            conn.closing = true;
        }
        if more_to_read {
            // The socket may still hold data and edge-triggered readiness will not say so again.
            requeue(&mut self.ready, &mut conn, t);
        }

        // Keep leftovers; return the scratch buffers.
        input.consume(used);
        if conn.closing {
            input.clear();
        }
        if own_input {
            conn.rbuf = input;
        } else {
            if !input.is_empty() {
                conn.rbuf = InBuf::from_slice(input.data(), conn.session.need);
                input.clear();
            }
            if input.capacity() <= SCRATCH_KEEP {
                self.input = input;
            }
        }

        // Write what we can.
        let written = write_some(&mut conn, &mut output);
        stats.bytes_written.add(written as u64);
        if !output.is_done() && !conn.closing_hard() {
            if own_output {
                conn.wbuf = output;
            } else {
                conn.wbuf = output.take_unsent();
                if output.capacity() <= SCRATCH_KEEP {
                    self.output = output;
                }
            }
        } else {
            output.clear();
            if !own_output && output.capacity() <= SCRATCH_KEEP {
                self.output = output;
            }
        }
        if outcome == Outcome::Blocked && conn.output_done() {
            // Stopped for output room and the socket took it all: continue with the input.
            requeue(&mut self.ready, &mut conn, t);
        }
        if let Outcome::Watch(kinds) = outcome {
            if !conn.closing {
                self.hand_to_watch(conn, t, kinds);
                return;
            }
        }
        self.put_back(conn, t);
    }

    /// `watch`: the connection leaves this worker for the watch writer, as memcached hands a
    /// watcher to its logger thread (still counted in `curr_connections` and `stats conns`).
    /// Replies the socket has not taken yet go first.
    fn hand_to_watch(&mut self, conn: Conn, t: usize, kinds: u8) {
        let Conn { mut stream, fd, info, mut wbuf, .. } = conn;
        let _ = self.poll.registry().deregister(&mut stream);
        let mut unsent = Vec::new();
        let _ = wbuf.write_to(&mut unsent); // into memory: takes everything
        self.shared.handoff.done(self.id);
        self.free.push(t);
        super::watch::adopt(&self.shared, stream, fd, info, kinds, unsent);
    }

    /// Write pending output after a writable event; resume reading if it drained.
    fn flush(&mut self, t: usize) {
        let Some(mut conn) = self.conns.get_mut(t).and_then(|c| c.take()) else {
            return;
        };
        if !conn.output_done() {
            let mut out = std::mem::take(&mut conn.wbuf);
            let written = write_some(&mut conn, &mut out);
            self.shared.stats.threads[self.id].bytes_written.add(written as u64);
            if !out.is_done() && !conn.closing_hard() {
                conn.wbuf = out;
            } else if conn.stream.pending_output() && !conn.closing_hard() {
                // TLS records still waiting for the socket: the next writable event sends them
            } else if !conn.rbuf.is_empty() || conn.session.dump.is_some() || conn.read_skipped {
                // Input (or a metadump, or unread socket data) was held back by backpressure:
                // go on with it now.
                requeue(&mut self.ready, &mut conn, t);
            }
        }
        self.put_back(conn, t);
    }

    /// Return a connection to its slot, or release it once it is closing with nothing to send.
    fn put_back(&mut self, conn: Conn, t: usize) {
        if conn.closing && (conn.output_done() || conn.closing_hard()) {
            self.release(conn, t);
        } else {
            self.conns[t] = Some(conn);
        }
    }

    fn release(&mut self, mut c: Conn, t: usize) {
        let _ = self.poll.registry().deregister(&mut c.stream);
        super::watch::conn_close(&self.shared, c.fd, &c.info);
        super::trace::conn_closed(&self.shared, c.fd);
        self.shared.conns.lock().remove(&c.fd);
        self.shared.stats.global.curr_conns.fetch_sub(1, Ordering::Relaxed);
        self.shared.handoff.done(self.id);
        self.free.push(t);
    }

    fn close(&mut self, t: usize) {
        if let Some(c) = self.conns.get_mut(t).and_then(|c| c.take()) {
            self.release(c, t);
        }
    }

    /// Shutdown: stop accepting, give pending output a bounded time, close everything.
    fn drain_and_close(&mut self) {
        for l in &mut self.listeners {
            let _ = match l {
                MioListener::Tcp(l) => self.poll.registry().deregister(l),
                MioListener::Unix(l) => self.poll.registry().deregister(l),
            };
        }
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        let mut events = Events::with_capacity(256);
        while Instant::now() < deadline {
            let pending: Vec<usize> =
                (0..self.conns.len()).filter(|&i| self.conns[i].as_ref().is_some_and(|c| !c.output_done())).collect();
            if pending.is_empty() {
                break;
            }
            for t in pending {
                self.flush(t);
            }
            let _ = self.poll.poll(&mut events, Some(Duration::from_millis(20)));
        }
        for t in 0..self.conns.len() {
            self.close(t);
        }
    }
}

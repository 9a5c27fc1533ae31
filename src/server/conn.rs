//! One client connection: its socket, its leftover buffers and its framing state.
//!
//! Owns: protocol detection (first byte, or `-B`), the request loop that frames commands out of
//! the input and hands them to the dispatcher, data-block waiting (`need`), swallowing data that
//! is refused (`swallow`), receiving a storage command's value straight into its reserved item
//! (`Staged`, for all three protocols), and the per-wakeup request budget (`-R`). Buffers are
//! kept only while they hold leftovers: idle connections own no buffer memory (the worker lends
//! its scratch buffers while a connection is being served).
//!
//! Memory per connection: the input it keeps is at most a partial request head (a text line
//! of at most `LINE_MAX` bytes, a binary header with extras and key); a value that has not all
//! arrived lives in its item's chunk in slab memory (within `-m`), and replies are bounded as
//! `out` describes.

use std::io::{self, Read, Write};
use std::sync::Arc;

use mio::event::Source;
use mio::{Interest, Registry, Token};

use super::out::Out;
use super::text;
use super::{ConnInfo, Shared};
use crate::config::Binding;
use crate::protocol::text::{self as ptext, Command, Frame};
use crate::stats::ThreadStats;
use crate::storage::{Miss, Reservation, Store, StoreOutcome, StoreReq};

/// A connected socket, or none for the one-shot connection a UDP datagram is served as
/// (its replies are sent by `server::udp`).
pub enum Stream {
    Tcp(mio::net::TcpStream),
    Unix(mio::net::UnixStream),
    /// TCP with TLS (`-Z`): reads give plaintext, writes take it (`server::tls`).
    Tls(Box<super::tls::TlsStream>),
    Datagram,
}

impl Stream {
    /// A read that filled less than the buffer means the socket is empty for now. Not so with
    /// TLS: a read stops at a record boundary, so only `WouldBlock` says the socket is drained.
    pub fn short_read_drains(&self) -> bool {
        !matches!(self, Stream::Tls(_))
    }

    /// Output accepted from the connection but not yet taken by the socket (TLS records).
    pub fn pending_output(&self) -> bool {
        match self {
            Stream::Tls(s) => s.pending_output(),
            _ => false,
        }
    }
}

fn no_stream() -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, "a datagram connection has no stream")
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
            Stream::Datagram => Err(no_stream()),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::Datagram => Err(no_stream()),
        }
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
            Stream::Tls(s) => s.write_vectored(bufs),
            Stream::Datagram => Err(no_stream()),
        }
    }
    /// Hand the socket what the stream still holds (TLS records); `Ok` when it would block.
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tls(s) => s.flush(),
            _ => Ok(()),
        }
    }
}

impl Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(r, t, i),
            Stream::Unix(s) => s.register(r, t, i),
            Stream::Tls(s) => s.sock.register(r, t, i),
            Stream::Datagram => Err(no_stream()),
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(r, t, i),
            Stream::Unix(s) => s.reregister(r, t, i),
            Stream::Tls(s) => s.sock.reregister(r, t, i),
            Stream::Datagram => Err(no_stream()),
        }
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(r),
            Stream::Unix(s) => s.deregister(r),
            Stream::Tls(s) => s.sock.deregister(r),
            Stream::Datagram => Ok(()),
        }
    }
}

/// An input buffer whose bytes are always initialized (so reads need no zeroing or `unsafe`):
/// `buf[..len]` holds data, the rest is spare room.
#[derive(Default, Debug)]
pub struct InBuf {
    buf: Vec<u8>,
    len: usize,
}

impl InBuf {
    pub fn with_capacity(n: usize) -> InBuf {
        InBuf { buf: vec![0; n], len: 0 }
    }

    /// A buffer holding `data`, with room for at least `want` bytes.
    pub fn from_slice(data: &[u8], want: usize) -> InBuf {
        let mut b = InBuf::with_capacity(want.max(data.len()).max(1024));
        b.buf[..data.len()].copy_from_slice(data);
        b.len = data.len();
        b
    }

    pub fn data(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Spare room of at least `min` bytes (grows, zeroing only the new part).
    pub fn spare(&mut self, min: usize) -> &mut [u8] {
        if self.buf.len() - self.len < min {
            let new = (self.len + min).max(self.buf.len() * 2);
            self.buf.resize(new, 0);
        }
        &mut self.buf[self.len..]
    }

    /// Count `n` bytes written into the spare room as data.
    pub fn commit(&mut self, n: usize) {
        self.len = (self.len + n).min(self.buf.len());
    }

    /// Drop the first `n` bytes of data.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.buf.copy_within(n..self.len, 0);
        self.len -= n;
    }
}

/// The value of a storage command: in the input buffer, or received into its reserved item.
pub enum Value<'a> {
    Bytes(&'a [u8]),
    Staged(Reservation),
}

impl<'a> Value<'a> {
    pub fn len(&self) -> usize {
        match self {
            Value::Bytes(b) => b.len(),
            Value::Staged(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes for `StoreReq::value` (empty for a staged value: the reservation holds it).
    pub fn bytes(&self) -> &'a [u8] {
        match self {
            Value::Bytes(b) => b,
            Value::Staged(_) => &[],
        }
    }

    /// Execute the store: `req.value` must be `self.bytes()`.
    pub fn store(self, store: &Store, req: &StoreReq<'_>) -> (StoreOutcome, usize) {
        match self {
            Value::Bytes(_) => store.store_sized(req),
            Value::Staged(res) => res.commit(req),
        }
    }
}

/// Where a long `get`/`gets` line is (`Conn::long_get`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LongGet {
    /// Its keys are being served as they arrive.
    Keys { cas: bool },
    /// A key was too long: the error is sent, the rest of the line is dropped.
    Discard,
}

/// Which protocol module finishes a staged storage command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StagedKind {
    Text,
    Meta,
    Binary,
}

/// A storage command whose value is being received straight into its reserved item.
#[derive(Debug)]
pub struct Staged {
    /// The request head, decoded again when the value is complete: the text or meta line with
    /// its newline, or the binary header, extras and key.
    pub head: Vec<u8>,
    pub kind: StagedKind,
    pub res: Reservation,
    /// Value bytes received so far.
    filled: usize,
    /// The terminator after the value (`\r\n` for text and meta; none for binary).
    trailer: [u8; 2],
    trailer_len: usize,
    trailer_got: usize,
}

impl Staged {
    /// Take bytes from `input` into the value, then the terminator. Returns bytes used.
    pub fn feed(&mut self, input: &[u8]) -> usize {
        let mut used = 0;
        let want = self.res.len() - self.filled;
        if want > 0 {
            let n = want.min(input.len());
            self.res.value_mut()[self.filled..self.filled + n].copy_from_slice(&input[..n]);
            self.filled += n;
            used = n;
        }
        while used < input.len() && self.trailer_got < self.trailer_len {
            self.trailer[self.trailer_got] = input[used];
            self.trailer_got += 1;
            used += 1;
        }
        used
    }

    /// Room for value bytes still to come (read from the socket straight into the item).
    pub fn spare(&mut self) -> &mut [u8] {
        let filled = self.filled;
        &mut self.res.value_mut()[filled..]
    }

    /// Count `n` bytes written into `spare` as received.
    pub fn commit(&mut self, n: usize) {
        self.filled = (self.filled + n).min(self.res.len());
    }

    pub fn complete(&self) -> bool {
        self.filled == self.res.len() && self.trailer_got == self.trailer_len
    }

    /// The value was followed by `\r\n` (always true for binary).
    pub fn terminated(&self) -> bool {
        self.trailer[..self.trailer_len] == *b"\r\n"
    }
}

/// A connection whose pending output is over `out`'s high-water marks is not served until the
/// socket drains it, so a client that does not read cannot make the server buffer without
/// bound. `lru_crawler metadump` streams in steps of this many bytes.
pub const DUMP_STEP: usize = super::out::COPY_HIGH_WATER;

/// Which protocol a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Unknown,
    Text,
    Binary,
}

/// What the worker should do after processing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything complete was processed; wait for more input.
    Continue,
    /// The request budget ran out with complete requests left: serve others, then come back.
    Yield,
    /// Too much output is pending: stop until the socket takes it (backpressure).
    Blocked,
    /// Close once the pending output is written.
    Close,
    /// The connection became a watcher of these kinds (`watch`): hand it over.
    Watch(u8),
}

/// Result of one request handled by a protocol module (`binary::step`, `meta::step`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// One request handled; this many input bytes consumed (the module may also have set
    /// `Conn::swallow` to discard more, or `Conn::need` while waiting for a data block).
    Done(usize),
    /// Not enough input yet (set `Conn::need` to the bytes required to avoid re-parsing).
    Incomplete,
    /// Close the connection after writing pending output; this many bytes consumed.
    Close(usize),
}

/// What the dispatcher asks of the connection after one command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Continue,
    /// Start streaming `lru_crawler metadump` for these slab classes (bit i = class i).
    Dump(u64),
    /// Stop reading, write what is pending, close.
    Close,
    /// `watch` for these kinds: stop reading; the worker hands the connection to `watch`.
    Watch(u8),
}

/// Everything a dispatcher needs besides the connection.
pub struct Ctx<'a> {
    pub shared: &'a Shared,
    pub stats: &'a ThreadStats,
}

impl Ctx<'_> {
    /// Count one key of a get/gat (any protocol) as memcached does: gat counts only as a
    /// touch, get as a get; hits per slab class. (Expired and flushed finds are counted by
    /// the store, for every command that looks a key up.)
    pub fn count_fetch(&self, key: &[u8], result: Result<u8, Miss>, touch: bool) {
        self.shared.detail.get(key, result.is_ok());
        match result {
            Ok(class) if touch => self.stats.slab[class as usize].touch_hits.inc(),
            Ok(class) => self.stats.slab[class as usize].get_hits.inc(),
            Err(_) => {
                if touch {
                    self.stats.touch_misses.inc();
                } else {
                    self.stats.get_misses.inc();
                }
            }
        }
    }
}

/// A client connection.
pub struct Conn {
    pub stream: Stream,
    pub fd: i32,
    /// Unprocessed input kept between wakeups (empty when idle).
    pub rbuf: InBuf,
    /// Output not yet accepted by the socket (empty when idle).
    pub wbuf: Out,
    /// A storage command's value being received into its item.
    pub staged: Option<Box<Staged>>,
    /// A `get`/`gets` line longer than `LINE_MAX` whose keys are served as they arrive.
    pub long_get: Option<LongGet>,
    pub proto: Proto,
    /// Bytes of refused data still to discard.
    pub swallow: usize,
    /// Input bytes needed before the next request can be parsed (a data block in flight).
    pub need: usize,
    /// The peer closed its side, or we decided to close: finish writing, then close.
    pub closing: bool,
    /// Queued on the worker's ready list (yielded with input left).
    pub queued: bool,
    /// The event loop saw the peer shut down its sending side (or an error): the read loop
    /// must go on to end-of-stream, as no further readiness event will say so.
    pub peer_closed: bool,
    /// The socket failed: drop pending output and close.
    pub broken: bool,
    /// A readable event was passed over for backpressure: read again once output drains.
    pub read_skipped: bool,
    pub info: Arc<ConnInfo>,
    /// Binary-protocol state: SASL authentication, a refused body being discarded.
    pub binary: super::binary::State,
    /// An `lru_crawler metadump` being streamed; later requests wait for it.
    pub dump: Option<Box<super::dump::Dump>>,
    /// ASCII auth (`-Y`): this text connection has not logged in yet.
    pub login_pending: bool,
}

impl Conn {
    pub fn new(stream: Stream, fd: i32, info: Arc<ConnInfo>) -> Conn {
        Conn {
            stream,
            fd,
            rbuf: InBuf::default(),
            wbuf: Out::default(),
            staged: None,
            long_get: None,
            proto: Proto::Unknown,
            swallow: 0,
            need: 0,
            closing: false,
            queued: false,
            peer_closed: false,
            broken: false,
            read_skipped: false,
            info,
            binary: super::binary::State::default(),
            dump: None,
            login_pending: false,
        }
    }

    /// Start over for the next datagram: UDP requests share nothing but the socket.
    pub fn reset_for_datagram(&mut self) {
        self.proto = Proto::Unknown;
        self.swallow = 0;
        self.need = 0;
        self.closing = false;
        self.dump = None;
        self.staged = None;
        self.long_get = None;
    }

    /// The next part of a long `get`/`gets` line: its whole keys are served (with `END` once the
    /// line ends), so such a line never has to be buffered whole. Returns the bytes consumed (0:
    /// wait for more input).
    fn long_get_step(&mut self, rest: &[u8], out: &mut Out, ctx: &Ctx<'_>) -> usize {
        let nl = memchr::memchr(b'\n', rest);
        match (self.long_get, nl) {
            (Some(LongGet::Discard), Some(nl)) => {
                self.long_get = None;
                nl + 1
            }
            (Some(LongGet::Discard), None) => rest.len(),
            (Some(LongGet::Keys { cas }), Some(nl)) => {
                let line = rest[..nl].strip_suffix(b"\r").unwrap_or(&rest[..nl]);
                // A NUL ends a command line, as in `ptext::parse`.
                let line = &line[..memchr::memchr(0, line).unwrap_or(line.len())];
                text::get_more(ctx, cas, line, true, out);
                self.long_get = None;
                nl + 1
            }
            (Some(LongGet::Keys { cas }), None) if rest.len() > ptext::LINE_MAX => {
                // No space in LINE_MAX bytes: a key longer than any key can be; get_more refuses it.
                let cut = match ptext::whole_keys(rest) {
                    0 => rest.len(),
                    n => n,
                };
                if !text::get_more(ctx, cas, &rest[..cut], false, out) {
                    self.long_get = Some(LongGet::Discard);
                }
                cut
            }
            _ => 0,
        }
    }

    /// Start receiving a storage command's value into `res`: `head` is the request head, `have`
    /// the value bytes already read (fewer than the value and its terminator). The caller
    /// consumes `head` and `have`.
    pub fn stage(&mut self, kind: StagedKind, head: &[u8], res: Reservation, have: &[u8]) {
        let trailer_len = if kind == StagedKind::Binary { 0 } else { 2 };
        let mut st = Box::new(Staged {
            head: head.to_vec(),
            kind,
            res,
            filled: 0,
            trailer: [0; 2],
            trailer_len,
            trailer_got: 0,
        });
        let used = st.feed(have);
        debug_assert_eq!(used, have.len());
        self.need = 0;
        self.staged = Some(st);
    }

    /// Nothing left to send: no replies, and no TLS records the socket has not taken.
    pub fn output_done(&self) -> bool {
        self.wbuf.is_done() && !self.stream.pending_output()
    }

    /// The connection must close without writing anything more.
    pub fn closing_hard(&self) -> bool {
        self.broken
    }

    /// Process complete requests at the start of `input`, appending replies to `out`.
    /// Returns the bytes consumed and what to do next. At most `budget` requests are served.
    pub fn process(&mut self, input: &[u8], out: &mut Out, ctx: &Ctx<'_>, mut budget: usize) -> (usize, Outcome) {
        let mut pos = 0;
        loop {
            if let Some(st) = &mut self.staged {
                pos += st.feed(&input[pos..]);
                if !st.complete() {
                    return (pos, Outcome::Continue);
                }
                let st = self.staged.take().expect("staged");
                match st.kind {
                    StagedKind::Text => text::finish_staged(ctx, *st, out),
                    StagedKind::Meta => super::meta::finish_staged(ctx, *st, out),
                    StagedKind::Binary => super::binary::finish_staged(ctx, *st, out),
                }
            }
            if let Some(dump) = &mut self.dump {
                if !dump.more(ctx, out) {
                    return (pos, Outcome::Blocked);
                }
                self.dump = None;
            }
            if self.swallow > 0 {
                let n = self.swallow.min(input.len() - pos);
                self.swallow -= n;
                pos += n;
                if self.swallow > 0 {
                    return (pos, Outcome::Continue);
                }
            }
            let rest = &input[pos..];
            if rest.is_empty() || rest.len() < self.need {
                return (pos, Outcome::Continue);
            }
            if out.over_high_water() {
                return (pos, Outcome::Blocked);
            }
            if budget == 0 {
                return (pos, Outcome::Yield);
            }
            if self.proto == Proto::Unknown {
                self.proto = match ctx.shared.config.binding {
                    Binding::Ascii => Proto::Text,
                    Binding::Binary => Proto::Binary,
                    Binding::Auto if rest[0] == crate::memcached::BINARY_REQ_MAGIC => Proto::Binary,
                    Binding::Auto => Proto::Text,
                };
                self.login_pending = self.proto == Proto::Text && ctx.shared.ascii_auth.enabled();
            }
            match self.proto {
                Proto::Binary => match super::binary::step(self, rest, out, ctx) {
                    Step::Done(n) => {
                        budget -= 1;
                        pos += n;
                    }
                    Step::Incomplete => return (pos, Outcome::Continue),
                    Step::Close(n) => return (pos + n, Outcome::Close),
                },
                _ if self.login_pending => match super::asciiauth::step(self, rest, out, ctx) {
                    Step::Done(n) => {
                        budget -= 1;
                        pos += n;
                    }
                    Step::Incomplete => return (pos, Outcome::Continue),
                    Step::Close(n) => return (pos + n, Outcome::Close),
                },
                _ if self.long_get.is_some() => match self.long_get_step(rest, out, ctx) {
                    0 => return (pos, Outcome::Continue),
                    n => {
                        budget -= 1;
                        pos += n;
                    }
                },
                _ => match ptext::frame(rest) {
                    Frame::Incomplete if rest.len() > ptext::LINE_MAX => match ptext::long_get_head(rest) {
                        Some((cas, keys_at)) => {
                            self.long_get = Some(LongGet::Keys { cas });
                            pos += keys_at;
                        }
                        None => return (pos, Outcome::Continue),
                    },
                    Frame::Incomplete => return (pos, Outcome::Continue),
                    Frame::TooLong => return (pos, Outcome::Close),
                    Frame::Line { len, consumed } => {
                        budget -= 1;
                        let cmd = ptext::parse(&rest[..len]);
                        super::trace::command(
                            ctx,
                            &rest[..len],
                            self.need == 0,
                            matches!(cmd, Command::Meta { .. }),
                            out,
                        );
                        if let Command::Meta { .. } | Command::Config { .. } = cmd {
                            let step = match cmd {
                                Command::Meta { .. } => super::meta::step(self, rest, len, consumed, out, ctx),
                                _ => super::discovery::step(self, rest, len, consumed, out, ctx),
                            };
                            match step {
                                Step::Done(n) => pos += n,
                                Step::Incomplete => return (pos, Outcome::Continue),
                                Step::Close(n) => return (pos + n, Outcome::Close),
                            }
                            continue;
                        }
                        if let Command::Store(sc) = cmd {
                            if text::refuse_store(ctx, &sc, out) {
                                pos += consumed;
                                self.swallow = sc.bytes + 2;
                                continue;
                            }
                            let total = consumed + sc.bytes + 2;
                            if rest.len() < total {
                                // The value is still arriving: receive it into its item.
                                match ctx.shared.store.reserve(sc.key, sc.bytes, sc.flags) {
                                    Ok(res) => {
                                        self.stage(StagedKind::Text, &rest[..consumed], res, &rest[consumed..]);
                                        pos = input.len();
                                    }
                                    Err(failed) => {
                                        text::refuse_unallocated(ctx, &sc, failed, out);
                                        pos += consumed;
                                        self.swallow = sc.bytes + 2;
                                    }
                                }
                                continue;
                            }
                            self.need = 0;
                            let data = &rest[consumed..consumed + sc.bytes];
                            if &rest[consumed + sc.bytes..total] != b"\r\n" {
                                text::bad_chunk(ctx, &sc, out);
                            } else {
                                text::store(ctx, &sc, Value::Bytes(data), out);
                            }
                            pos += total;
                        } else {
                            pos += consumed;
                            match text::execute(ctx, cmd, out) {
                                Action::Continue => {}
                                Action::Close => return (pos, Outcome::Close),
                                Action::Watch(kinds) => return (pos, Outcome::Watch(kinds)),
                                Action::Dump(classes) => self.dump = Some(Box::new(super::dump::Dump::new(classes))),
                            }
                        }
                    }
                },
            }
        }
    }
}

//! One client connection: its socket, its leftover buffers and its framing state.
//!
//! Owns: protocol detection (first byte, or `-B`), the request loop that frames commands out of
//! the input and hands them to the dispatcher, data-block waiting (`need`), swallowing data that
//! is refused (`swallow`), and the per-wakeup request budget (`-R`). Buffers are kept only while
//! they hold leftovers: idle connections own no buffer memory (the worker lends its scratch
//! buffers while a connection is being served).

use std::io::{self, Read, Write};
use std::sync::Arc;

use mio::event::Source;
use mio::{Interest, Registry, Token};

use super::text;
use super::{ConnInfo, Shared};
use crate::config::Binding;
use crate::protocol::text::{self as ptext, Command, Frame};
use crate::stats::ThreadStats;
use crate::storage::Miss;

/// A connected socket, or none for the one-shot connection a UDP datagram is served as
/// (its replies are sent by `server::udp`).
pub enum Stream {
    Tcp(mio::net::TcpStream),
    Unix(mio::net::UnixStream),
    Datagram,
}

fn no_stream() -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, "a datagram connection has no stream")
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            Stream::Datagram => Err(no_stream()),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
            Stream::Datagram => Err(no_stream()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(r, t, i),
            Stream::Unix(s) => s.register(r, t, i),
            Stream::Datagram => Err(no_stream()),
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(r, t, i),
            Stream::Unix(s) => s.reregister(r, t, i),
            Stream::Datagram => Err(no_stream()),
        }
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(r),
            Stream::Unix(s) => s.deregister(r),
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

/// A connection with more unsent output than this is not served until the socket drains it,
/// so a client that does not read cannot make the server buffer without bound.
pub const OUTPUT_HIGH_WATER: usize = 4 * 1024 * 1024;

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
    pub wbuf: Vec<u8>,
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
    pub info: Arc<ConnInfo>,
    /// Binary-protocol state: SASL authentication, a refused body being discarded.
    pub binary: super::binary::State,
    /// An `lru_crawler metadump` being streamed; later requests wait for it.
    pub dump: Option<Box<super::dump::Dump>>,
}

impl Conn {
    pub fn new(stream: Stream, fd: i32, info: Arc<ConnInfo>) -> Conn {
        Conn {
            stream,
            fd,
            rbuf: InBuf::default(),
            wbuf: Vec::new(),
            proto: Proto::Unknown,
            swallow: 0,
            need: 0,
            closing: false,
            queued: false,
            peer_closed: false,
            broken: false,
            info,
            binary: super::binary::State::default(),
            dump: None,
        }
    }

    /// Start over for the next datagram: UDP requests share nothing but the socket.
    pub fn reset_for_datagram(&mut self) {
        self.proto = Proto::Unknown;
        self.swallow = 0;
        self.need = 0;
        self.closing = false;
        self.dump = None;
    }

    /// The connection must close without writing anything more.
    pub fn closing_hard(&self) -> bool {
        self.broken
    }

    /// Process complete requests at the start of `input`, appending replies to `out`.
    /// Returns the bytes consumed and what to do next. At most `budget` requests are served.
    pub fn process(&mut self, input: &[u8], out: &mut Vec<u8>, ctx: &Ctx<'_>, mut budget: usize) -> (usize, Outcome) {
        let mut pos = 0;
        loop {
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
            if out.len() > OUTPUT_HIGH_WATER {
                return (pos, Outcome::Blocked);
            }
            if budget == 0 {
                return (pos, Outcome::Yield);
            }
            if self.proto == Proto::Unknown {
                self.proto = match ctx.shared.config.binding {
                    Binding::Ascii => Proto::Text,
                    Binding::Binary => Proto::Binary,
                    Binding::Auto if rest[0] == 0x80 => Proto::Binary,
                    Binding::Auto => Proto::Text,
                };
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
                _ => match ptext::frame(rest) {
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
                        if let Command::Meta { .. } = cmd {
                            match super::meta::step(self, rest, len, consumed, out, ctx) {
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
                                self.need = total;
                                return (pos, Outcome::Continue);
                            }
                            self.need = 0;
                            let data = &rest[consumed..consumed + sc.bytes];
                            if &rest[consumed + sc.bytes..total] != b"\r\n" {
                                text::bad_chunk(ctx, &sc, out);
                            } else {
                                text::store(ctx, &sc, data, out);
                            }
                            pos += total;
                        } else {
                            pos += consumed;
                            match text::execute(ctx, cmd, out) {
                                Action::Continue => {}
                                Action::Close => return (pos, Outcome::Close),
                                Action::Dump(classes) => self.dump = Some(Box::new(super::dump::Dump::new(classes))),
                            }
                        }
                    }
                },
            }
        }
    }
}

//! The socket side of a client connection: its stream (TCP, UNIX or TLS), the input left over
//! between wakeups, the output the socket has not taken, and whether it is closing.
//!
//! Owns: the `Stream` abstraction over the three socket kinds and `InBuf`. Buffers are kept only
//! while they hold leftovers: idle connections own no buffer memory (the worker lends its
//! scratch buffers while a connection is being served). Framing and commands are the session's
//! (`session`); reading, writing and readiness are the worker's.
//! Must not know: protocols or the store.

use std::io::{self, Read, Write};
use std::sync::Arc;

use mio::event::Source;
use mio::{Interest, Registry, Token};

use super::out::Out;
use super::session::Session;
use super::ConnInfo;

/// A connected socket.
pub enum Stream {
    Tcp(mio::net::TcpStream),
    Unix(mio::net::UnixStream),
    /// TCP with TLS (`-Z`): reads give plaintext, writes take it (`server::tls`).
    Tls(Box<super::tls::TlsStream>),
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

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
            Stream::Tls(s) => s.write_vectored(bufs),
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
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(r, t, i),
            Stream::Unix(s) => s.reregister(r, t, i),
            Stream::Tls(s) => s.sock.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(r),
            Stream::Unix(s) => s.deregister(r),
            Stream::Tls(s) => s.sock.deregister(r),
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

/// A client connection: the socket side (stream, leftover input, unsent output, closing) and
/// the session that frames and serves its requests.
pub struct Conn {
    pub stream: Stream,
    pub fd: i32,
    /// Unprocessed input kept between wakeups (empty when idle).
    pub rbuf: InBuf,
    /// Output not yet accepted by the socket (empty when idle).
    pub wbuf: Out,
    pub session: Session,
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
}

impl Conn {
    pub fn new(stream: Stream, fd: i32, info: Arc<ConnInfo>) -> Conn {
        Conn {
            stream,
            fd,
            rbuf: InBuf::default(),
            wbuf: Out::default(),
            session: Session::new(),
            closing: false,
            queued: false,
            peer_closed: false,
            broken: false,
            read_skipped: false,
            info,
        }
    }

    /// Nothing left to send: no replies, and no TLS records the socket has not taken.
    pub fn output_done(&self) -> bool {
        self.wbuf.is_done() && !self.stream.pending_output()
    }

    /// The connection must close without writing anything more.
    pub fn closing_hard(&self) -> bool {
        self.broken
    }
}

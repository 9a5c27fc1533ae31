//! The session side of a client connection: framing its requests and handing them to the
//! protocol dispatchers, for text, meta and binary alike, over TCP, UNIX sockets, TLS and UDP.
//!
//! Owns: protocol detection (first byte, or `-B`), the request loop that frames commands out of
//! the input and hands them to the dispatcher, data-block waiting (`need`), swallowing data that
//! is refused (`swallow`), receiving a storage command's value straight into its reserved item
//! (`Staged`, for all three protocols), long `get` lines served key by key, streamed metadumps,
//! the ASCII-auth login gate, and the per-wakeup request budget (`-R`).
//! Must not know: sockets. Input arrives as bytes, replies leave in an `Out`; `conn` (a TCP,
//! UNIX or TLS socket) and `udp` (one datagram at a time) own the I/O.
//!
//! Memory per session: the input it keeps is at most a partial request head (a text line of at
//! most `LINE_MAX` bytes, a binary header with extras and key); a value that has not all
//! arrived lives in its item's chunk in slab memory (within `-m`), and replies are bounded as
//! `out` describes.

use super::ahead::Ahead;
use super::exec::{Ctx, Value};
use super::out::Out;
use super::text;
use crate::config::Binding;
use crate::protocol::text::{self as ptext, Command, Frame};
use crate::storage::{Reservation, StoreOutcome};

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

/// A storage request whose head has been decoded: what receiving its value takes.
#[derive(Clone, Copy, Debug)]
pub struct StoreHead<'a> {
    pub kind: StagedKind,
    pub key: &'a [u8],
    /// Value length (without a terminator).
    pub vlen: usize,
    pub flags: u32,
    /// Bytes of the head: the command line with its newline, or binary header, extras and key.
    pub head_len: usize,
}

/// Where a text or meta data block is (`Session::data_block`).
pub enum Block<'i> {
    /// Refused before it arrived (`TooLarge` or `NoMemory`); it is being swallowed.
    Refused(StoreOutcome),
    /// Being received into its item; the command finishes when it is complete.
    Staged,
    /// Here whole: the value, whether `\r\n` followed it, and the bytes of head and block.
    Here { value: &'i [u8], terminated: bool, total: usize },
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Proto {
    #[default]
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

/// The framing state of one client connection (or of one UDP datagram).
#[derive(Debug, Default)]
pub struct Session {
    pub proto: Proto,
    /// A storage command's value being received into its item.
    pub staged: Option<Box<Staged>>,
    /// A `get`/`gets` line longer than `LINE_MAX` whose keys are served as they arrive.
    pub long_get: Option<LongGet>,
    /// Bytes of refused data still to discard.
    pub swallow: usize,
    /// Input bytes needed before the next request can be parsed (a data block in flight).
    pub need: usize,
    /// Binary-protocol state: SASL authentication, a refused body being discarded.
    pub binary: super::binary::State,
    /// An `lru_crawler metadump` being streamed; later requests wait for it.
    pub dump: Option<Box<super::dump::Dump>>,
    /// ASCII auth (`-Y`): this text connection has not logged in yet.
    pub login_pending: bool,
}

impl Session {
    pub fn new() -> Session {
        Session::default()
    }

    /// In the middle of a command: a data block or a refused body still to come, a value being
    /// received, a metadump being streamed.
    pub fn mid_command(&self) -> bool {
        // `need` is also set while a binary header is incomplete; that is still "waiting".
        let reading_body =
            self.need > 0 && !(self.proto == Proto::Binary && self.need <= crate::protocol::binary::HEADER_LEN);
        reading_body || self.staged.is_some() || self.swallow > 0 || self.dump.is_some()
    }

    /// The next part of a long `get`/`gets` line: its whole keys are served (with `END` once the
    /// line ends), so such a line never has to be buffered whole. Returns the bytes consumed (0:
    /// wait for more input).
    fn long_get_step<'i>(&mut self, rest: &'i [u8], out: &mut Out, ctx: &Ctx<'_>, ahead: &mut Ahead<'i>) -> usize {
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
                text::get_more(ctx, cas, line, true, out, ahead);
                self.long_get = None;
                nl + 1
            }
            (Some(LongGet::Keys { cas }), None) if rest.len() > ptext::LINE_MAX => {
                // No space in LINE_MAX bytes: a key longer than any key can be; get_more refuses it.
                let cut = match ptext::whole_keys(rest) {
                    0 => rest.len(),
                    n => n,
                };
                if !text::get_more(ctx, cas, &rest[..cut], false, out, ahead) {
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

    /// The data block of a text or meta storage command whose line (`head.head_len` bytes with
    /// its newline) is at the start of `rest`: refused before it arrives when its item can never
    /// fit or cannot be had (the caller replies; the block is swallowed), here whole, or still
    /// arriving (received straight into its reserved item; the caller consumes all of `rest`).
    pub fn data_block<'i>(&mut self, rest: &'i [u8], head: &StoreHead<'_>, ctx: &Ctx<'_>) -> Block<'i> {
        self.need = 0;
        let payload = head.vlen + 2;
        if !ctx.fits(head.key.len(), head.vlen, head.flags) {
            self.swallow = payload;
            return Block::Refused(StoreOutcome::TooLarge);
        }
        let total = head.head_len + payload;
        if rest.len() < total {
            return match self.receive(head, rest, ctx) {
                Ok(()) => Block::Staged,
                Err(why) => {
                    self.swallow = payload;
                    Block::Refused(why)
                }
            };
        }
        let value = &rest[head.head_len..head.head_len + head.vlen];
        Block::Here { value, terminated: &rest[head.head_len + head.vlen..total] == b"\r\n", total }
    }

    /// A storage request (any protocol) whose value is still arriving: reserve its item and
    /// receive the value into it. `input` starts with the request head; all of it is used.
    pub fn receive(&mut self, head: &StoreHead<'_>, input: &[u8], ctx: &Ctx<'_>) -> Result<(), StoreOutcome> {
        let res = ctx.reserve(head.key, head.vlen, head.flags)?;
        self.stage(head.kind, &input[..head.head_len], res, &input[head.head_len..]);
        Ok(())
    }

    /// Process complete requests at the start of `input`, appending replies to `out`.
    /// Returns the bytes consumed and what to do next. At most `budget` requests are served.
    pub fn process(&mut self, input: &[u8], out: &mut Out, ctx: &Ctx<'_>, mut budget: usize) -> (usize, Outcome) {
        let mut pos = 0;
        let mut ahead = Ahead::new(input);
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
                _ if self.long_get.is_some() => match self.long_get_step(rest, out, ctx, &mut ahead) {
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
                            let head = StoreHead {
                                kind: StagedKind::Text,
                                key: sc.key,
                                vlen: sc.bytes,
                                flags: sc.flags,
                                head_len: consumed,
                            };
                            match self.data_block(rest, &head, ctx) {
                                Block::Refused(why) => {
                                    text::refuse_store(ctx, &sc, why, out);
                                    pos += consumed;
                                }
                                Block::Staged => pos = input.len(),
                                Block::Here { value, terminated, total } => {
                                    text::store(ctx, &sc, Value::Bytes(value), terminated, out);
                                    pos += total;
                                }
                            }
                        } else {
                            pos += consumed;
                            match text::execute(ctx, cmd, out, &mut ahead) {
                                Action::Continue => {}
                                Action::Close => return (pos, Outcome::Close),
                                Action::Dump(classes) => self.dump = Some(Box::new(super::dump::Dump::new(classes))),
                                Action::Watch(kinds) => return (pos, Outcome::Watch(kinds)),
                            }
                        }
                    }
                },
            }
        }
    }
}

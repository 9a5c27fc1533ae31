//! A deterministic simulation of the connection layer, for the stateful fuzz target
//! (`fuzz/fuzz_targets/conn.rs`) and its bounded run in `cargo test` (`tests/conn_sim.rs`).
//!
//! Owns: driving `Session::process` as the worker does (leftover input, a value in flight read
//! straight into its reserved item, replies written to a socket that takes what it likes)
//! for several clients of all three protocols, from a script decoded out of arbitrary bytes:
//! requests split at any point, clients that stop reading, disconnect mid-value or mid-reply,
//! and items overwritten, deleted and evicted while replies still reference them. It checks
//! every reply against a model: each value is self-describing (`key:version:` then a pattern
//! of the length that version was stored with), so a reply carrying bytes of a freed or
//! reused chunk, a torn value or a misframed reply is caught; every request gets exactly one
//! reply, in order; and when everything is closed no pinned or reserved chunk is left.
//! Knows nothing of sockets: no I/O happens here.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::ops::Range;
use std::sync::Arc;

use super::exec::Ctx;
use super::out::Out;
use super::session::{Outcome, Session};
use super::{sasl, Shared};
use crate::config::{Args, Config};
use crate::storage::{Mode, StoreReq};

/// Keys the clients share (few, so that overwrites hit items being sent).
const KEYS: u8 = 6;

/// Reads script bytes; zeros once exhausted.
struct Script<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Script<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
    /// A value length: mostly small, sometimes over the pin threshold, sometimes large.
    fn value_len(&mut self) -> usize {
        let b = self.byte() as usize;
        match b % 8 {
            0..=3 => 16 + b,
            4 | 5 => 3000 + b * 40,
            6 => 60_000 + b * 500,
            _ => 200_000 + b * 1000,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    Text,
    Meta,
    Binary,
}

/// Every value ever stored, by (key, version): its length.
#[derive(Default)]
struct Model {
    lens: HashMap<(Vec<u8>, u32), usize>,
    next_version: u32,
}

/// The pattern after a value's prefix: byte `i` of version `v` is `b'a' + (i + v) % 26`,
/// handed out a run of the alphabet at a time (byte by byte it was a third of a run's time).
fn pattern(range: Range<usize>, v: u32, mut f: impl FnMut(usize, &[u8])) {
    const ABC: &[u8; 26] = b"abcdefghijklmnopqrstuvwxyz";
    let mut i = range.start;
    while i < range.end {
        let o = (i + v as usize) % 26;
        let n = (26 - o).min(range.end - i);
        f(i, &ABC[o..o + n]);
        i += n;
    }
}

impl Model {
    fn value(&mut self, key: &[u8], len: usize) -> Vec<u8> {
        self.next_version += 1;
        let v = self.next_version;
        self.lens.insert((key.to_vec(), v), len);
        let mut out = Vec::with_capacity(len.max(32));
        out.extend_from_slice(key);
        out.extend_from_slice(format!(":{v:08x}:").as_bytes());
        pattern(out.len()..len, v, |_, run| out.extend_from_slice(run));
        out.truncate(len);
        out
    }

    /// A value returned for `key` is one that was stored for it, whole.
    fn check(&self, key: &[u8], data: &[u8]) {
        let text = String::from_utf8_lossy(&data[..data.len().min(32)]).into_owned();
        let mut parts = text.splitn(3, ':');
        let (k, v) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        assert_eq!(k.as_bytes(), key, "value of {:?} starts {text:?}", String::from_utf8_lossy(key));
        let v = u32::from_str_radix(v, 16).unwrap_or_else(|_| panic!("bad version in {text:?}"));
        let len = self.lens.get(&(key.to_vec(), v)).unwrap_or_else(|| panic!("version {v} never stored"));
        assert_eq!(*len, data.len(), "length of {text:?}");
        let start = (k.len() + 10).min(data.len());
        pattern(start..data.len(), v, |i, run| {
            assert_eq!(&data[i..i + run.len()], run, "bytes from {i} of {text:?}");
        });
    }
}

/// A byte queue: appended at the back, taken from the front without moving the rest each time
/// (a `VecDeque<u8>` drained byte by byte was a fifth of a run's time).
#[derive(Default)]
struct Bytes {
    buf: Vec<u8>,
    head: usize,
}

impl Bytes {
    fn data(&self) -> &[u8] {
        &self.buf[self.head..]
    }
    fn len(&self) -> usize {
        self.buf.len() - self.head
    }
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn push(&mut self, b: &[u8]) {
        if self.head > 0 && self.head >= self.buf.len() / 2 {
            self.buf.drain(..self.head);
            self.head = 0;
        }
        self.buf.extend_from_slice(b);
    }
    /// The first `n` bytes (at most all), now consumed.
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.len());
        self.head += n;
        &self.buf[self.head - n..self.head]
    }
}

/// A socket that takes at most `room` bytes, then would block.
struct Sink<'a> {
    got: &'a mut Vec<u8>,
    room: usize,
}

impl Write for Sink<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = b.len().min(self.room);
        self.got.extend_from_slice(&b[..n]);
        self.room -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Client {
    proto: Proto,
    session: Session,
    /// The session asked to close: nothing more is processed.
    closing: bool,
    out: Out,
    /// Server side: input not yet processed.
    rbuf: Bytes,
    /// Client side: request bytes not yet sent.
    to_send: Bytes,
    /// Client side: reply bytes received and not yet parsed.
    received: Vec<u8>,
    /// Keys of the retrievals sent, in order (None for other requests), for checking replies.
    expect: VecDeque<Option<Vec<u8>>>,
    reading: bool,
}

impl Client {
    fn new(proto: Proto) -> Client {
        Client {
            proto,
            session: Session::new(),
            closing: false,
            out: Out::default(),
            rbuf: Bytes::default(),
            to_send: Bytes::default(),
            received: Vec::new(),
            expect: VecDeque::new(),
            reading: true,
        }
    }

    fn key(s: &mut Script<'_>) -> Vec<u8> {
        format!("k{}", s.byte() % KEYS).into_bytes()
    }

    /// Queue one request.
    fn request(&mut self, s: &mut Script<'_>, model: &mut Model) {
        let key = Client::key(s);
        let kind = s.byte() % 3;
        let mut req = Vec::new();
        let retrieval = match (self.proto, kind) {
            (Proto::Text, 0) => {
                let v = model.value(&key, s.value_len());
                req.extend_from_slice(format!("set {} 0 0 {}\r\n", String::from_utf8_lossy(&key), v.len()).as_bytes());
                req.extend_from_slice(&v);
                req.extend_from_slice(b"\r\n");
                None
            }
            (Proto::Text, 1) => {
                // Around the key, keys never stored: up to ~3 KB of line, so lines longer than
                // LINE_MAX (served key by key as they arrive) are split like any other request.
                let pad = |n: u8| (0..n).map(|i| format!(" missing-{i:0>30}")).collect::<String>();
                let (before, after) = (s.byte() % 48, s.byte() % 48);
                let line = format!("get{} {}{}\r\n", pad(before), String::from_utf8_lossy(&key), pad(after));
                req.extend_from_slice(line.as_bytes());
                Some(key)
            }
            (Proto::Text, _) => {
                req.extend_from_slice(format!("delete {}\r\n", String::from_utf8_lossy(&key)).as_bytes());
                None
            }
            (Proto::Meta, 0) => {
                let v = model.value(&key, s.value_len());
                req.extend_from_slice(format!("ms {} {}\r\n", String::from_utf8_lossy(&key), v.len()).as_bytes());
                req.extend_from_slice(&v);
                req.extend_from_slice(b"\r\n");
                None
            }
            (Proto::Meta, 1) => {
                req.extend_from_slice(format!("mg {} v\r\n", String::from_utf8_lossy(&key)).as_bytes());
                Some(key)
            }
            (Proto::Meta, _) => {
                req.extend_from_slice(format!("md {}\r\n", String::from_utf8_lossy(&key)).as_bytes());
                None
            }
            (Proto::Binary, 0) => {
                let v = model.value(&key, s.value_len());
                binary_request(&mut req, 0x01, &[0; 8], &key, &v);
                None
            }
            (Proto::Binary, 1) => {
                binary_request(&mut req, 0x0c, &[], &key, &[]);
                Some(key)
            }
            (Proto::Binary, _) => {
                binary_request(&mut req, 0x04, &[], &key, &[]);
                None
            }
        };
        self.to_send.push(&req);
        self.expect.push_back(retrieval);
    }

    /// Deliver up to `n` request bytes and let the server process, as `Worker::serve` does.
    fn serve(&mut self, n: usize, ctx: &Ctx<'_>, budget: usize) {
        let mut n = n.min(self.to_send.len());
        if self.closing {
            n = 0;
        }
        // A value in flight is read straight into its item.
        if self.rbuf.is_empty() {
            if let Some(st) = self.session.staged.as_mut() {
                let spare = st.spare();
                let k = spare.len().min(n);
                spare[..k].copy_from_slice(self.to_send.take(k));
                st.commit(k);
                n -= k;
            }
        }
        self.rbuf.push(self.to_send.take(n));
        if self.closing || self.out.over_high_water() {
            return;
        }
        let (used, outcome) = self.session.process(self.rbuf.data(), &mut self.out, ctx, budget);
        self.rbuf.take(used);
        if outcome == Outcome::Close {
            self.closing = true;
        }
    }

    /// Read up to `room` reply bytes and check every complete reply.
    fn read(&mut self, room: usize, model: &Model) {
        let room = if self.reading { room } else { 0 };
        let mut sink = Sink { got: &mut self.received, room };
        self.out.write_to(&mut sink).expect("a simulated socket does not fail");
        while let Some(n) = self.parse_one(model) {
            self.received.drain(..n);
        }
    }

    /// Parse and check the reply at the front of `received`; its length, if complete.
    fn parse_one(&mut self, model: &Model) -> Option<usize> {
        let buf = &self.received;
        let want = self.expect.front()?.clone();
        let n = match self.proto {
            Proto::Binary => {
                if buf.len() < 24 {
                    return None;
                }
                assert_eq!(buf[0], 0x81, "binary reply magic");
                let ext = buf[4] as usize;
                let key_len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
                let body = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
                if buf.len() < 24 + body {
                    return None;
                }
                let status = u16::from_be_bytes([buf[6], buf[7]]);
                if let (Some(key), 0x0c, 0) = (&want, buf[1], status) {
                    assert_eq!(&buf[24 + ext..24 + ext + key_len], &key[..]);
                    model.check(key, &buf[24 + ext + key_len..24 + body]);
                }
                24 + body
            }
            Proto::Text | Proto::Meta => {
                let mut pos = 0;
                loop {
                    let nl = buf[pos..].iter().position(|&b| b == b'\n')? + pos;
                    let line = String::from_utf8_lossy(&buf[pos..nl - 1]).into_owned();
                    pos = nl + 1;
                    let words: Vec<&str> = line.split(' ').collect();
                    let data_len = match (self.proto, words[0]) {
                        (Proto::Text, "VALUE") => Some(words[3]),
                        (Proto::Meta, "VA") => Some(words[1]),
                        _ => None,
                    };
                    let Some(len) = data_len else {
                        assert!(!line.is_empty() && !line.starts_with("CLIENT_ERROR"), "reply {line:?}");
                        break;
                    };
                    let len: usize = len.parse().expect("value length");
                    if buf.len() < pos + len + 2 {
                        return None;
                    }
                    let key = want.as_ref().expect("a value in the reply to a retrieval");
                    if self.proto == Proto::Text {
                        assert_eq!(words[1].as_bytes(), &key[..]);
                    }
                    model.check(key, &buf[pos..pos + len]);
                    assert_eq!(&buf[pos + len..pos + len + 2], b"\r\n");
                    pos += len + 2;
                    if self.proto == Proto::Meta {
                        break; // `VA` is the whole reply
                    }
                }
                pos
            }
        };
        self.expect.pop_front();
        Some(n)
    }

    /// Everything sent was answered (after a final drain).
    fn finished(&self) -> bool {
        self.to_send.is_empty() && self.expect.is_empty() && self.received.is_empty()
    }
}

fn binary_request(out: &mut Vec<u8>, opcode: u8, extras: &[u8], key: &[u8], value: &[u8]) {
    let body = (extras.len() + key.len() + value.len()) as u32;
    out.extend_from_slice(&[0x80, opcode]);
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.extend_from_slice(&[extras.len() as u8, 0, 0, 0]);
    out.extend_from_slice(&body.to_be_bytes());
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(extras);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
}

/// A server's shared state for the simulation: 2 MB of memory, so values compete for it.
pub fn shared() -> Arc<Shared> {
    use clap::Parser;
    let args = Args::try_parse_from(["rustcached", "-m", "2", "-t", "1"]).expect("simulation settings");
    let config = Config::from_args(&args).expect("simulation settings");
    Shared::new(config, sasl::Passwords::default(), super::asciiauth::AuthFile::default())
}

/// Run one script on `shared`. Panics when a reply or the store breaks an invariant.
/// `shared` may have run scripts before (the fuzz target keeps one per process: a fresh store
/// zeroes fresh pages, a sixth of a run's time); their keys are deleted first, so the model,
/// which starts empty, knows every value the store holds.
pub fn run(shared: &Arc<Shared>, data: &[u8]) {
    let ctx = Ctx { shared, stats: &shared.stats.threads[0] };
    let store = &shared.store;
    for k in 0..KEYS {
        store.delete(format!("k{k}").as_bytes(), 0);
    }
    for n in 0..=u8::MAX {
        store.delete(format!("junk{n}").as_bytes(), 0);
    }
    let mut s = Script { data, pos: 0 };
    let mut model = Model::default();
    let mut clients: Vec<Client> = Vec::new();
    let mut ops = 0;
    while !s.done() && ops < 2000 {
        ops += 1;
        let op = s.byte();
        let c = s.byte() as usize;
        if clients.is_empty() || op % 16 == 0 {
            if clients.len() < 4 {
                let proto = [Proto::Text, Proto::Meta, Proto::Binary][s.byte() as usize % 3];
                clients.push(Client::new(proto));
            }
            continue;
        }
        let i = c % clients.len();
        match op % 16 {
            1..=4 => clients[i].request(&mut s, &mut model),
            5..=8 => {
                let n = [1, 7, 100, 4096, 70_000, usize::MAX][s.byte() as usize % 6];
                let budget = [1, 3, usize::MAX][s.byte() as usize % 3];
                clients[i].serve(n, &ctx, budget);
            }
            9..=11 => {
                let room = [0, 1, 13, 1000, 65_536, usize::MAX][s.byte() as usize % 6];
                clients[i].read(room, &model);
            }
            12 => clients[i].reading = !clients[i].reading,
            13 => {
                // Gone mid-value or mid-reply: its reservation and pins are released.
                clients.swap_remove(i);
            }
            14 => {
                // Another client overwrites or deletes an item that may be in flight.
                let key = Client::key(&mut s);
                if s.byte() % 2 == 0 {
                    let v = model.value(&key, s.value_len());
                    store.store(&StoreReq::new(Mode::Set, &key, &v, 0, 0));
                } else {
                    store.delete(&key, 0);
                }
            }
            _ => {
                // Memory pressure: evictions and page moves under items being sent.
                let n = s.byte() as usize;
                let len = [100, 5_000, 300_000][n % 3];
                store.store(&StoreReq::new(Mode::Set, format!("junk{n}").as_bytes(), &vec![b'j'; len], 0, 0));
            }
        }
    }
    // Drain: every client reads and is served until nothing moves, then all replies are in.
    for c in &mut clients {
        c.reading = true;
        for _ in 0..10_000 {
            let before = (c.to_send.len(), c.rbuf.len(), c.expect.len(), c.out.unsent());
            c.serve(usize::MAX, &ctx, usize::MAX);
            c.read(usize::MAX, &model);
            if (c.to_send.len(), c.rbuf.len(), c.expect.len(), c.out.unsent()) == before {
                break;
            }
        }
        if !c.closing {
            assert!(c.finished(), "{:?} client left {} requests unanswered", c.proto, c.expect.len());
        }
    }
    drop(clients);
    // Nothing is pinned or reserved once every connection is gone.
    assert_eq!(store.pinned(), 0, "pins left after every connection closed");
    let snap = store.snapshot();
    let used: u64 = snap.classes.iter().map(|c| c.used).sum();
    assert_eq!(used, snap.curr_items, "chunks in use that no item accounts for");
}

//! Hostile and slow clients, shared by `tests/hostile.rs` (bounds asserted on rustcached) and
//! `benches/hostile.rs` (the same scenarios printed side by side with memcached).
//!
//! Each scenario opens many connections that misbehave in one way, then a well-behaved client
//! (the probe) does its work, and reports the server's peak RSS and the probe's latency.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// What one scenario did to the server.
#[derive(Debug)]
pub struct Outcome {
    /// Peak resident set of the server process over its life (VmHWM), kB.
    pub peak_rss_kb: u64,
    /// Resident set at the end, kB.
    pub rss_kb: u64,
    /// How long the probe's request took (median of `PROBES`).
    pub probe: Duration,
    /// The probe got the exact reply it expected.
    pub probe_ok: bool,
    /// Misbehaving connections that could be opened.
    pub opened: usize,
}

/// A `/proc/<pid>/status` field in kB.
pub fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A client socket with a small receive buffer: a client that does not read then holds little
/// kernel memory, and the server's own buffering is what the scenario measures.
fn small_client(port: u16) -> Option<TcpStream> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
    s.set_recv_buffer_size(16 * 1024).ok()?;
    s.connect_timeout(&addr.into(), Duration::from_secs(5)).ok()?;
    let s: TcpStream = s.into();
    s.set_write_timeout(Some(Duration::from_secs(5))).ok()?;
    Some(s)
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Send `req` and read exactly `want.len()` bytes; whether they were `want`.
fn ask(s: &mut TcpStream, req: &[u8], want: &[u8]) -> bool {
    if s.write_all(req).is_err() {
        return false;
    }
    let mut got = vec![0; want.len()];
    let read = s.read_exact(&mut got);
    if read.is_ok() && got == want {
        return true;
    }
    // What came instead: the first bytes that differ, for the failure's message.
    let at = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(0);
    let show = |b: &[u8]| String::from_utf8_lossy(&b[at.saturating_sub(40)..(at + 40).min(b.len())]).into_owned();
    eprintln!("probe: {read:?}; at byte {at} got {:?}, wanted {:?}", show(&got), show(want));
    false
}

fn value(n: usize, seed: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + ((i + seed) % 26) as u8).collect()
}

/// Store `keys` items `big0..` of `size` bytes.
pub fn fill(port: u16, keys: usize, size: usize) {
    let mut s = connect(port);
    for k in 0..keys {
        let mut req = format!("set big{k} 0 0 {size}\r\n").into_bytes();
        req.extend_from_slice(&value(size, k));
        req.extend_from_slice(b"\r\n");
        assert!(ask(&mut s, &req, b"STORED\r\n"), "storing big{k}");
    }
}

/// Probes per scenario: the median is reported.
const PROBES: usize = 21;

/// Run `PROBES` probes, each on a fresh connection: (median time, all replies right).
fn probes(port: u16, req: &[u8], want: &[u8]) -> (Duration, bool) {
    let mut times = Vec::with_capacity(PROBES);
    let mut ok = true;
    for _ in 0..PROBES {
        let mut s = connect(port);
        let t = Instant::now();
        ok &= ask(&mut s, req, want);
        times.push(t.elapsed());
    }
    times.sort();
    (times[PROBES / 2], ok)
}

/// The probe: a get of `big0` (`size` bytes), timed.
fn probe_get(port: u16, size: usize) -> (Duration, bool) {
    let mut want = format!("VALUE big0 0 {size}\r\n").into_bytes();
    want.extend_from_slice(&value(size, 0));
    want.extend_from_slice(b"\r\nEND\r\n");
    probes(port, b"get big0\r\n", &want)
}

/// The probe for stalled stores: a small set and get, timed.
fn probe_set_get(port: u16) -> (Duration, bool) {
    probes(port, b"set probe 0 0 5\r\nhello\r\nget probe\r\n", b"STORED\r\nVALUE probe 0 5\r\nhello\r\nEND\r\n")
}

/// Let the server take in what was sent, then read its memory.
fn settle(pid: u32) -> (u64, u64) {
    let mut last = 0;
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(100));
        let now = status_kb(pid, "VmRSS:");
        if now == last {
            break;
        }
        last = now;
    }
    (status_kb(pid, "VmHWM:"), status_kb(pid, "VmRSS:"))
}

/// `conns` connections each send a `set` header for a `size`-byte value and `sent` bytes of
/// it, then stall (a crashed client holding its socket, a client behind a dead link).
pub fn stalled_sets(port: u16, pid: u32, conns: usize, size: usize, sent: usize) -> Outcome {
    let mut held = Vec::with_capacity(conns);
    let part = value(sent, 7);
    for i in 0..conns {
        let Some(mut s) = small_client(port) else { break };
        let mut req = format!("set stall{i} 0 0 {size}\r\n").into_bytes();
        req.extend_from_slice(&part);
        if s.write_all(&req).is_err() {
            break;
        }
        held.push(s);
    }
    let (peak_rss_kb, rss_kb) = settle(pid);
    let (probe, probe_ok) = probe_set_get(port);
    Outcome { peak_rss_kb, rss_kb, probe, probe_ok, opened: held.len() }
}

/// `conns` connections each pipeline `reqs` multi-gets of the `keys` items stored by `fill`
/// and never read a reply (consumers behind a slow link, a client stuck in a long GC).
pub fn unread_multigets(port: u16, pid: u32, conns: usize, reqs: usize, keys: usize, size: usize) -> Outcome {
    let line = format!("get {}\r\n", (0..keys).map(|k| format!("big{k}")).collect::<Vec<_>>().join(" "));
    let req = line.repeat(reqs);
    let mut held = Vec::with_capacity(conns);
    for _ in 0..conns {
        let Some(mut s) = small_client(port) else { break };
        if s.write_all(req.as_bytes()).is_err() {
            break;
        }
        held.push(s);
    }
    let (peak_rss_kb, rss_kb) = settle(pid);
    let (probe, probe_ok) = probe_get(port, size);
    Outcome { peak_rss_kb, rss_kb, probe, probe_ok, opened: held.len() }
}

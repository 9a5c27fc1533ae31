//! rcbench: a small closed-loop load generator for memcached-compatible servers.
//!
//! mio event loop per thread; N connections each keep a batch of `--depth` requests in flight
//! (depth 1 = unpipelined); text, binary or meta protocol; uniform keys over `--keys`; values
//! of `--value-min..=--value-max` bytes; `--get-ratio` of gets; `--multiget` keys per get;
//! fixed `--duration`. Prints throughput, latency percentiles (every request is timed) and,
//! with `--server-pid`, server CPU seconds per million operations read from /proc.
//!
//! `--fill N`: store keys 0..N once (pipelined) and exit, for prefilling and memory tests.

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

#[derive(Parser, Debug, Clone)]
#[command(name = "rcbench", about = "Load generator for memcached-compatible servers")]
struct Opts {
    #[arg(long, default_value = "127.0.0.1:11211")]
    server: SocketAddr,
    /// text, binary or meta
    #[arg(long, default_value = "text")]
    protocol: String,
    #[arg(long, default_value_t = 50)]
    conns: usize,
    #[arg(long, default_value_t = 1)]
    depth: usize,
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// seconds
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    #[arg(long, default_value_t = 32)]
    value_min: usize,
    #[arg(long, default_value_t = 100)]
    value_max: usize,
    #[arg(long, default_value_t = 0.9)]
    get_ratio: f64,
    /// keys per get request
    #[arg(long, default_value_t = 1)]
    multiget: usize,
    /// extra idle connections opened before the run and held
    #[arg(long, default_value_t = 0)]
    idle: usize,
    /// store keys 0..N once and exit
    #[arg(long)]
    fill: Option<u64>,
    /// server pid, to report its CPU time per million operations
    #[arg(long)]
    server_pid: Option<u32>,
    /// label printed with the result line
    #[arg(long, default_value = "")]
    label: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Proto {
    Text,
    Binary,
    Meta,
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn key(n: u64) -> [u8; 20] {
    let mut k = [b'0'; 20];
    k[0] = b'k';
    let mut n = n;
    for i in (1..20).rev() {
        k[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    k
}

/// Append one request; returns how many responses it produces.
fn push_get(out: &mut Vec<u8>, proto: Proto, keys: &[[u8; 20]]) -> usize {
    match proto {
        Proto::Text => {
            out.extend_from_slice(b"get");
            for k in keys {
                out.push(b' ');
                out.extend_from_slice(k);
            }
            out.extend_from_slice(b"\r\n");
            1
        }
        Proto::Meta => {
            for k in keys {
                out.extend_from_slice(b"mg ");
                out.extend_from_slice(k);
                out.extend_from_slice(b" v f\r\n");
            }
            keys.len()
        }
        Proto::Binary => {
            if keys.len() == 1 {
                bin_header(out, 0x00, 20, 0, 20);
                out.extend_from_slice(&keys[0]);
                1
            } else {
                for k in keys {
                    bin_header(out, 0x0d, 20, 0, 20); // GetKQ
                    out.extend_from_slice(k);
                }
                bin_header(out, 0x0a, 0, 0, 0); // Noop ends the batch
                1
            }
        }
    }
}

fn push_set(out: &mut Vec<u8>, proto: Proto, k: &[u8; 20], vlen: usize) -> usize {
    match proto {
        Proto::Text => {
            out.extend_from_slice(b"set ");
            out.extend_from_slice(k);
            out.extend_from_slice(format!(" 0 0 {vlen}\r\n").as_bytes());
        }
        Proto::Meta => {
            out.extend_from_slice(b"ms ");
            out.extend_from_slice(k);
            out.extend_from_slice(format!(" {vlen}\r\n").as_bytes());
        }
        Proto::Binary => {
            bin_header(out, 0x01, 20, 8, 20 + 8 + vlen);
            out.extend_from_slice(&[0; 8]);
            out.extend_from_slice(k);
            out.resize(out.len() + vlen, b'x');
            return 1;
        }
    }
    out.resize(out.len() + vlen, b'x');
    out.extend_from_slice(b"\r\n");
    1
}

fn bin_header(out: &mut Vec<u8>, op: u8, klen: u16, elen: u8, body: usize) {
    out.push(0x80);
    out.push(op);
    out.extend_from_slice(&klen.to_be_bytes());
    out.push(elen);
    out.push(0);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&(body as u32).to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&[0; 8]);
}

/// Length of one complete response at the start of `b`, and whether it is an error.
fn response_len(b: &[u8], proto: Proto) -> Option<(usize, bool)> {
    match proto {
        Proto::Binary => {
            if b.len() < 24 {
                return None;
            }
            let body = u32::from_be_bytes([b[8], b[9], b[10], b[11]]) as usize;
            if b.len() < 24 + body {
                return None;
            }
            let status = u16::from_be_bytes([b[6], b[7]]);
            // quiet GetKQ hits precede the Noop: count the batch at the Noop
            Some((24 + body, status != 0 && status != 1))
        }
        Proto::Text | Proto::Meta => {
            let mut pos = 0;
            loop {
                let nl = b[pos..].iter().position(|&c| c == b'\n')? + pos;
                let line = &b[pos..nl];
                if let Some(rest) = line.strip_prefix(b"VALUE ") {
                    let n: usize = std::str::from_utf8(rest).ok()?.split(' ').nth(2)?.trim().parse().ok()?;
                    pos = nl + 1 + n + 2;
                    if b.len() < pos {
                        return None;
                    }
                    continue;
                }
                if let Some(rest) = line.strip_prefix(b"VA ") {
                    let n: usize = std::str::from_utf8(rest).ok()?.split(' ').next()?.trim().parse().ok()?;
                    let end = nl + 1 + n + 2;
                    return if b.len() < end { None } else { Some((end, false)) };
                }
                let err = line.starts_with(b"SERVER_ERROR")
                    || line.starts_with(b"CLIENT_ERROR")
                    || line.starts_with(b"ERROR");
                return Some((nl + 1, err));
            }
        }
    }
}

struct Conn {
    stream: TcpStream,
    out: Vec<u8>,
    written: usize,
    inbuf: Vec<u8>,
    /// responses still expected for the batch in flight, and when it was sent
    pending: usize,
    sent_at: Instant,
    ops_in_batch: usize,
}

#[derive(Default)]
struct Tally {
    ops: u64,
    errors: u64,
    lat: Vec<u32>, // latency per batch, in 100 ns units, repeated per op in the batch
}

#[allow(clippy::too_many_arguments)]
fn refill(c: &mut Conn, o: &Opts, proto: Proto, rng: &mut Rng, fill: &mut Option<(u64, u64)>) -> bool {
    c.out.clear();
    c.written = 0;
    let mut responses = 0;
    let mut ops = 0;
    for _ in 0..o.depth {
        if let Some((next, end)) = fill {
            if *next >= *end {
                break;
            }
            let vlen = o.value_min + (*next as usize % (o.value_max - o.value_min + 1));
            responses += push_set(&mut c.out, proto, &key(*next), vlen);
            *next += 1;
            ops += 1;
            continue;
        }
        let r = rng.next();
        if (r % 10_000) as f64 / 10_000.0 < o.get_ratio {
            let keys: Vec<[u8; 20]> = (0..o.multiget).map(|_| key(rng.next() % o.keys)).collect();
            responses += push_get(&mut c.out, proto, &keys);
            ops += 1;
        } else {
            let vlen = o.value_min + (rng.next() as usize % (o.value_max - o.value_min + 1));
            responses += push_set(&mut c.out, proto, &key(rng.next() % o.keys), vlen);
            ops += 1;
        }
    }
    c.pending = responses;
    c.ops_in_batch = ops;
    c.sent_at = Instant::now();
    responses > 0
}

fn flush(c: &mut Conn) -> std::io::Result<()> {
    while c.written < c.out.len() {
        match c.stream.write(&c.out[c.written..]) {
            Ok(n) => c.written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn run_thread(o: Opts, tid: usize, conns: usize, fill_range: Option<(u64, u64)>) -> Tally {
    let proto = match o.protocol.as_str() {
        "binary" => Proto::Binary,
        "meta" => Proto::Meta,
        _ => Proto::Text,
    };
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(1024);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (tid as u64 + 1).wrapping_mul(0x1234_5678_9abc_def1));
    let mut fill = fill_range;
    let mut cs: Vec<Conn> = Vec::new();
    for i in 0..conns {
        let std = std::net::TcpStream::connect(o.server).expect("connect");
        std.set_nodelay(true).unwrap();
        std.set_nonblocking(true).unwrap();
        let mut stream = TcpStream::from_std(std);
        poll.registry().register(&mut stream, Token(i), Interest::READABLE | Interest::WRITABLE).unwrap();
        cs.push(Conn {
            stream,
            out: Vec::new(),
            written: 0,
            inbuf: Vec::new(),
            pending: 0,
            sent_at: Instant::now(),
            ops_in_batch: 0,
        });
    }
    let mut t = Tally::default();
    let deadline = Instant::now() + Duration::from_secs_f64(o.duration);
    for c in cs.iter_mut() {
        if refill(c, &o, proto, &mut rng, &mut fill) {
            flush(c).unwrap();
        }
    }
    let mut buf = vec![0u8; 256 * 1024];
    let mut active = cs.iter().filter(|c| c.pending > 0).count();
    while active > 0 {
        if fill.is_none() && Instant::now() >= deadline {
            break;
        }
        poll.poll(&mut events, Some(Duration::from_millis(100))).unwrap();
        for ev in events.iter() {
            let c = &mut cs[ev.token().0];
            if ev.is_writable() && c.written < c.out.len() {
                flush(c).unwrap();
            }
            if !ev.is_readable() {
                continue;
            }
            loop {
                match c.stream.read(&mut buf) {
                    Ok(0) => panic!("server closed the connection"),
                    Ok(n) => c.inbuf.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("read: {e}"),
                }
            }
            let mut pos = 0;
            while c.pending > 0 {
                let Some((n, err)) = response_len(&c.inbuf[pos..], proto) else { break };
                // binary multi-get: only the Noop (opcode 0x0a) ends the batch
                let counts = !(proto == Proto::Binary && o.multiget > 1 && c.inbuf[pos + 1] != 0x0a);
                pos += n;
                if err {
                    t.errors += 1;
                }
                if counts {
                    c.pending -= 1;
                }
            }
            c.inbuf.drain(..pos);
            if c.pending == 0 {
                let lat = (c.sent_at.elapsed().as_nanos() / 100).min(u32::MAX as u128) as u32;
                t.ops += c.ops_in_batch as u64;
                for _ in 0..c.ops_in_batch {
                    t.lat.push(lat);
                }
                let more = (fill.is_some() || Instant::now() < deadline) && refill(c, &o, proto, &mut rng, &mut fill);
                if more {
                    flush(c).unwrap();
                } else {
                    active -= 1;
                }
            }
        }
    }
    t
}

fn proc_cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz)
}

fn main() {
    let o = Opts::parse();
    assert!(o.value_max >= o.value_min, "--value-max < --value-min");
    let _idle: Vec<std::net::TcpStream> =
        (0..o.idle).map(|_| std::net::TcpStream::connect(o.server).expect("idle connect")).collect();
    let cpu0 = o.server_pid.and_then(proc_cpu_secs);
    let start = Instant::now();
    let threads = o.threads.max(1);
    let handles: Vec<_> = (0..threads)
        .map(|tid| {
            let o = o.clone();
            let conns = (o.conns / threads + usize::from(tid < o.conns % threads)).max(1);
            let fill = o.fill.map(|n| (n * tid as u64 / threads as u64, n * (tid as u64 + 1) / threads as u64));
            std::thread::spawn(move || run_thread(o, tid, conns, fill))
        })
        .collect();
    let mut total = Tally::default();
    for h in handles {
        let t = h.join().unwrap();
        total.ops += t.ops;
        total.errors += t.errors;
        total.lat.extend(t.lat);
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = match (cpu0, o.server_pid.and_then(proc_cpu_secs)) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    total.lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if total.lat.is_empty() {
            return 0.0;
        }
        let i = ((total.lat.len() as f64 * p) as usize).min(total.lat.len() - 1);
        total.lat[i] as f64 / 10.0
    };
    let ops_s = total.ops as f64 / secs;
    let cpu_per_mop = cpu.map(|c| c / (total.ops as f64 / 1e6)).unwrap_or(f64::NAN);
    println!(
        "{}ops={} secs={:.2} ops_per_sec={:.0} p50_us={:.1} p99_us={:.1} p999_us={:.1} errors={} server_cpu_s={:.3} server_cpu_s_per_mop={:.3}",
        if o.label.is_empty() { String::new() } else { format!("label={} ", o.label) },
        total.ops,
        secs,
        ops_s,
        pct(0.5),
        pct(0.99),
        pct(0.999),
        total.errors,
        cpu.unwrap_or(f64::NAN),
        cpu_per_mop
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_responses_are_framed() {
        assert_eq!(response_len(b"STORED\r\n", Proto::Text), Some((8, false)));
        assert_eq!(response_len(b"VALUE k 0 3\r\nabc\r\nEND\r\n", Proto::Text), Some((23, false)));
        assert_eq!(response_len(b"VALUE k 0 3\r\nabc\r\nEN", Proto::Text), None);
        assert_eq!(response_len(b"VA 2 f0\r\nab\r\n", Proto::Meta), Some((13, false)));
        assert_eq!(response_len(b"SERVER_ERROR x\r\n", Proto::Text), Some((16, true)));
        assert_eq!(key(42).len(), 20);
    }
}

//! Criterion: request parsing per protocol (requests per second) and reply encoding, so a
//! regression points at one layer.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rustcached::protocol::text::{encode, frame, keys, parse, Command, Frame};
use rustcached::protocol::{binary, meta};

fn bench_text(c: &mut Criterion) {
    let mut g = c.benchmark_group("text_parse");
    g.throughput(Throughput::Elements(1));
    for (name, req) in [
        ("get", &b"get user:1234567890\r\n"[..]),
        ("set", &b"set user:1234567890 0 0 100\r\n"[..]),
        ("multiget_10", &b"get k0 k1 k2 k3 k4 k5 k6 k7 k8 k9\r\n"[..]),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| match frame(std::hint::black_box(req)) {
                Frame::Line { len, .. } => std::hint::black_box(parse(&req[..len])),
                _ => unreachable!(),
            })
        });
    }
    // A 100-key get line (mc-crusher's ascii_mget), parsed and split into its keys.
    let line =
        format!("get {}\r\n", (0..100).map(|i| format!("memtier-{}", 1000 + i * 7919)).collect::<Vec<_>>().join(" "));
    g.throughput(Throughput::Elements(100));
    g.bench_function("multiget_100_keys", |b| {
        b.iter(|| match frame(std::hint::black_box(line.as_bytes())) {
            Frame::Line { len, .. } => match parse(&line.as_bytes()[..len]) {
                Command::Get { keys: k, .. } => keys(k).map(|k| k.len()).sum::<usize>(),
                _ => unreachable!(),
            },
            _ => unreachable!(),
        })
    });
    g.finish();
}

fn bench_meta(c: &mut Criterion) {
    let mut g = c.benchmark_group("meta_parse");
    g.throughput(Throughput::Elements(1));
    for (name, line) in [
        ("mg_v_f_t", &b"mg user:1234567890 v f t"[..]),
        ("ms_T_F", &b"ms user:1234567890 100 T60 F5"[..]),
        ("ma_N_J_v", &b"ma counter:1 N60 J10 v"[..]),
    ] {
        g.bench_function(name, |b| b.iter(|| std::hint::black_box(meta::parse(std::hint::black_box(line)).is_ok())));
    }
    g.finish();
}

fn bench_binary(c: &mut Criterion) {
    let key = b"user:1234567890";
    let mut get = vec![0x80, 0x00, 0, key.len() as u8, 0, 0, 0, 0];
    get.extend_from_slice(&(key.len() as u32).to_be_bytes());
    get.extend_from_slice(&[0; 12]);
    get.extend_from_slice(key);
    let mut set = vec![0x80, 0x01, 0, key.len() as u8, 8, 0, 0, 0];
    set.extend_from_slice(&((key.len() + 8 + 100) as u32).to_be_bytes());
    set.extend_from_slice(&[0; 12]);
    set.extend_from_slice(&[0; 8]);
    set.extend_from_slice(key);
    set.extend_from_slice(&[b'v'; 100]);
    let mut g = c.benchmark_group("binary_parse");
    g.throughput(Throughput::Elements(1));
    for (name, frame) in [("get", &get), ("set", &set)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                std::hint::black_box(matches!(
                    binary::parse(std::hint::black_box(frame), 250),
                    binary::Frame::Request(..)
                ))
            })
        });
    }
    g.finish();
}

fn bench_encode(c: &mut Criterion) {
    let value = vec![b'v'; 100];
    let mut out = Vec::with_capacity(1 << 16);
    let mut g = c.benchmark_group("reply_encode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("text_value", |b| {
        b.iter(|| {
            out.clear();
            encode::value_head(&mut out, b"user:1234567890", 5, value.len(), None);
            out.extend_from_slice(&value);
            out.extend_from_slice(b"\r\nEND\r\n");
            std::hint::black_box(out.len())
        })
    });
    g.bench_function("binary_value", |b| {
        b.iter(|| {
            out.clear();
            binary::write_response(&mut out, 0x00, binary::Status::NoError, 7, 42, &5u32.to_be_bytes(), &[], &value);
            std::hint::black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench_text, bench_meta, bench_binary, bench_encode);
criterion_main!(benches);

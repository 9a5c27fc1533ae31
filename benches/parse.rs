//! Criterion: text-protocol framing + parsing throughput (requests per second).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rustcached::protocol::text::{frame, parse, Frame};

fn bench_text(c: &mut Criterion) {
    let mut g = c.benchmark_group("text_parse");
    for (name, req) in [
        ("get", &b"get user:1234567890\r\n"[..]),
        ("set", &b"set user:1234567890 0 0 100\r\n"[..]),
        ("multiget_10", &b"get k0 k1 k2 k3 k4 k5 k6 k7 k8 k9\r\n"[..]),
    ] {
        g.throughput(Throughput::Elements(1));
        g.bench_function(name, |b| {
            b.iter(|| match frame(std::hint::black_box(req)) {
                Frame::Line { len, .. } => std::hint::black_box(parse(&req[..len])),
                _ => unreachable!(),
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_text);
criterion_main!(benches);

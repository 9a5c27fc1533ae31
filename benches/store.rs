//! Criterion: the store alone (no sockets): get hits and misses, sets, and sets under eviction,
//! on 1, 2 and 4 threads; and a large-value get reply built by copying the value (the old
//! path) against pinning it and writing it from the item (`server::out::Out`).

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rustcached::storage::{Clock, GetOpts, Mode, Store, StoreConfig, StoreReq};

fn store(mb: usize) -> Arc<Store> {
    let cfg = StoreConfig { limit_bytes: mb << 20, ..StoreConfig::default() };
    Arc::new(Store::new(&cfg, Arc::new(Clock::new())))
}

fn keys(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("key:{i:08}").into_bytes()).collect()
}

fn bench_store(c: &mut Criterion) {
    let s = store(256);
    let ks = keys(100_000);
    let v = vec![b'v'; 100];
    for k in &ks {
        s.store(&StoreReq::new(Mode::Set, k, &v, 0, 0));
    }
    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("get_hit", |b| {
        b.iter(|| {
            i = (i + 7919) % ks.len();
            s.get(&ks[i], GetOpts::GET, |e| e.value().len()).ok()
        })
    });
    g.bench_function("get_miss", |b| b.iter(|| s.get(b"no-such-key", GetOpts::GET, |e| e.value().len()).ok()));
    g.bench_function("set", |b| {
        b.iter(|| {
            i = (i + 7919) % ks.len();
            s.store(&StoreReq::new(Mode::Set, &ks[i], &v, 0, 0))
        })
    });
    let small = store(4);
    let mut n = 0u64;
    g.bench_function("set_evicting", |b| {
        b.iter(|| {
            n += 1;
            small.store(&StoreReq::new(Mode::Set, format!("e{n}").as_bytes(), &v, 0, 0))
        })
    });
    // Wide: threads spread over 100,000 keys. Hot: every thread on the same 100 keys, so they
    // meet on the same lock stripes and (for the sets) the same slab class.
    for (name, span) in [("mixed_90_10", ks.len()), ("hot_90_10", 100)] {
        for threads in [1usize, 2, 4] {
            g.throughput(Throughput::Elements(threads as u64 * 10_000));
            g.bench_function(format!("{name}_x{threads}"), |b| {
                b.iter(|| {
                    std::thread::scope(|sc| {
                        for t in 0..threads {
                            let (s, ks, v) = (&s, &ks, &v);
                            sc.spawn(move || {
                                for j in 0..10_000usize {
                                    let k = &ks[(j * 7919 + t * 104729) % span];
                                    if j % 10 == 0 {
                                        s.store(&StoreReq::new(Mode::Set, k, v, 0, 0));
                                    } else {
                                        let _ = s.get(k, GetOpts::GET, |e| e.value().len());
                                    }
                                }
                            });
                        }
                    })
                })
            });
        }
    }
    g.finish();
}

/// A get reply of one value written to a socket that takes everything: copy the value into the
/// output buffer, or pin it and `writev` it from slab memory.
fn bench_reply(c: &mut Criterion) {
    use rustcached::server::out::Out;
    let s = store(64);
    let mut g = c.benchmark_group("reply");
    for size in [1024usize, 16 * 1024, 100 * 1024, 1000 * 1000] {
        let key = format!("v{size}").into_bytes();
        s.store(&StoreReq::new(Mode::Set, &key, &vec![b'x'; size], 0, 0));
        g.throughput(Throughput::Bytes(size as u64));
        let mut buf: Vec<u8> = Vec::with_capacity(2 << 20);
        g.bench_function(format!("copy_{size}"), |b| {
            b.iter(|| {
                buf.clear();
                buf.extend_from_slice(b"VALUE k 0 n\r\n");
                s.get(&key, GetOpts::GET, |e| buf.extend_from_slice(e.value())).ok();
                buf.extend_from_slice(b"\r\nEND\r\n");
                std::io::Write::write_all(&mut std::io::sink(), &buf).ok()
            })
        });
        let mut out = Out::with_capacity(64 * 1024);
        g.bench_function(format!("pin_{size}"), |b| {
            b.iter(|| {
                out.extend_from_slice(b"VALUE k 0 n\r\n");
                s.get(&key, GetOpts::GET, |e| out.value(e, &s)).ok();
                out.extend_from_slice(b"\r\nEND\r\n");
                out.write_to(&mut std::io::sink()).ok()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_store, bench_reply);
criterion_main!(benches);

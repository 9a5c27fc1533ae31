//! Criterion: the store alone (no sockets): get hits and misses, sets, and sets under eviction,
//! on 1, 2 and 4 threads.

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

criterion_group!(benches, bench_store);
criterion_main!(benches);

//! Criterion: the server's request path without sockets, over 1M items (more than the caches
//! hold, as in benches/users.sh), so what a lookup waits for in memory is part of the figure:
//!
//! * `session`: `Session::process` on 16 pipelined `get k` lines, and on one 100-key `get`
//!   line (mc-crusher's ascii_get and ascii_mget): framing, parsing, the lookahead, the store,
//!   counters and the reply. Throughput is keys.
//! * `lookup`: the store alone, 100 random hits one after the other, and the same with each
//!   bucket prefetched 8 keys ahead and each item 4 keys ahead (what `server::ahead` does).

use std::sync::Arc;

use clap::Parser;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rustcached::config::{Args, Config};
use rustcached::server::exec::Ctx;
use rustcached::server::out::Out;
use rustcached::server::session::Session;
use rustcached::server::{asciiauth, sasl, Shared};
use rustcached::storage::{GetOpts, Mode, StoreReq};

const ITEMS: u64 = 1_000_000;

fn shared() -> Arc<Shared> {
    let args = Args::try_parse_from(["rustcached", "-m", "512", "-t", "1"]).expect("settings");
    let sh = Shared::new(
        Config::from_args(&args).expect("settings"),
        sasl::Passwords::default(),
        asciiauth::AuthFile::default(),
    );
    let value = [b'x'; 100];
    for i in 1..=ITEMS {
        let key = format!("memtier-{i}");
        let len = 32 + (i as usize * 7919) % 69; // 32..100 bytes
        sh.store.store(&StoreReq::new(Mode::Set, key.as_bytes(), &value[..len], 0, 0));
    }
    sh
}

/// A pseudo-random key number in 1..=ITEMS.
fn pick(n: &mut u64) -> u64 {
    *n = n.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    1 + (*n >> 33) % ITEMS
}

/// `batches` request buffers, each made by `one` from successive random keys.
fn requests(batches: usize, keys: usize, one: impl Fn(&[u64]) -> Vec<u8>) -> Vec<Vec<u8>> {
    let mut n = 7;
    (0..batches).map(|_| one(&(0..keys).map(|_| pick(&mut n)).collect::<Vec<_>>())).collect()
}

fn bench_session(c: &mut Criterion) {
    let sh = shared();
    let ctx = Ctx { shared: &sh, stats: &sh.stats.threads[0] };
    let mut g = c.benchmark_group("session");
    let pipelined =
        requests(4096, 16, |ks| ks.iter().flat_map(|k| format!("get memtier-{k}\r\n").into_bytes()).collect());
    let multi = requests(1024, 100, |ks| {
        let keys: Vec<String> = ks.iter().map(|k| format!("memtier-{k}")).collect();
        format!("get {}\r\n", keys.join(" ")).into_bytes()
    });
    for (name, reqs, keys) in [("gets_16_deep", &pipelined, 16), ("multiget_100", &multi, 100)] {
        g.throughput(Throughput::Elements(keys));
        let mut session = Session::new();
        let mut out = Out::with_capacity(64 * 1024);
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % reqs.len();
                out.clear();
                let (used, _) = session.process(&reqs[i], &mut out, &ctx, 1000);
                debug_assert_eq!(used, reqs[i].len());
                out.len()
            })
        });
    }
    g.finish();
}

fn bench_lookup(c: &mut Criterion) {
    let sh = shared();
    let store = &sh.store;
    let batches: Vec<Vec<Vec<u8>>> = {
        let mut n = 11;
        (0..1024).map(|_| (0..100).map(|_| format!("memtier-{}", pick(&mut n)).into_bytes()).collect()).collect()
    };
    let mut g = c.benchmark_group("lookup");
    g.throughput(Throughput::Elements(100));
    let mut i = 0;
    g.bench_function("hits_one_by_one", |b| {
        b.iter(|| {
            i = (i + 1) % batches.len();
            batches[i].iter().map(|k| store.get(k, GetOpts::GET, |e| e.value().len()).unwrap_or(0)).sum::<usize>()
        })
    });
    g.bench_function("hits_prefetched", |b| {
        b.iter(|| {
            i = (i + 1) % batches.len();
            let keys: Vec<_> = batches[i].iter().map(|k| store.hashed(k)).collect();
            let mut sum = 0;
            for (j, k) in keys.iter().enumerate() {
                if let Some(ahead) = keys.get(j + 8) {
                    store.prefetch_bucket(ahead);
                }
                if let Some(ahead) = keys.get(j + 4) {
                    store.prefetch_item(ahead);
                }
                sum += store.get_hashed(*k, GetOpts::GET, |e| e.value().len()).unwrap_or(0);
            }
            sum
        })
    });
    g.finish();
}

criterion_group!(benches, bench_session, bench_lookup);
criterion_main!(benches);

//! Counters for `stats`: per-worker, written by one thread, read by any.
//!
//! Owns: the per-thread command counters (memcached's `thread_stats` and `slab_stats`) and the
//! server-wide connection counters. Knows no wire format: the server turns snapshots into
//! `STAT` lines or binary packets.
//!
//! Each worker owns one `ThreadStats`; only that worker writes it, so an increment is a relaxed
//! load and store (no locked instruction). `stats reset` does not write the counters: it records
//! a baseline that later snapshots subtract.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::storage::slab::MAX_CLASSES;

/// A single-writer counter.
#[derive(Default, Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Add one. Only the owning worker may call this.
    #[inline]
    pub fn inc(&self) {
        self.add(1)
    }

    /// Add `n`. Only the owning worker may call this.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Per-class counters of one worker (memcached's `slab_stats`).
#[derive(Default, Debug)]
pub struct SlabCounters {
    pub get_hits: Counter,
    pub set_cmds: Counter,
    pub delete_hits: Counter,
    pub incr_hits: Counter,
    pub decr_hits: Counter,
    pub cas_hits: Counter,
    pub cas_badval: Counter,
    pub touch_hits: Counter,
}

macro_rules! thread_counters {
    ($($name:ident),* $(,)?) => {
        /// Command counters of one worker.
        #[derive(Debug)]
        pub struct ThreadStats {
            $(pub $name: Counter,)*
            pub slab: Box<[SlabCounters]>,
        }

        impl Default for ThreadStats {
            fn default() -> Self {
                ThreadStats {
                    $($name: Counter::default(),)*
                    slab: (0..=MAX_CLASSES).map(|_| SlabCounters::default()).collect(),
                }
            }
        }

        /// Summed counters (all workers, minus the reset baseline).
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct Totals {
            $(pub $name: u64,)*
            pub slab: Vec<SlabTotals>,
        }

        impl Totals {
            fn add(&mut self, t: &ThreadStats) {
                $(self.$name = self.$name.wrapping_add(t.$name.get());)*
                for (dst, src) in self.slab.iter_mut().zip(t.slab.iter()) {
                    dst.add(src);
                }
            }

            fn sub(&mut self, b: &Totals) {
                $(self.$name = self.$name.wrapping_sub(b.$name);)*
                for (dst, src) in self.slab.iter_mut().zip(b.slab.iter()) {
                    dst.sub(src);
                }
            }
        }
    };
}

thread_counters!(
    get_cmds,
    get_misses,
    touch_cmds,
    touch_misses,
    delete_misses,
    incr_misses,
    decr_misses,
    cas_misses,
    bytes_read,
    bytes_written,
    flush_cmds,
    conn_yields,
    auth_cmds,
    auth_errors,
    idle_kicks,
    meta_cmds,
    store_too_large,
    store_no_memory,
);

/// Summed per-class counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlabTotals {
    pub get_hits: u64,
    pub set_cmds: u64,
    pub delete_hits: u64,
    pub incr_hits: u64,
    pub decr_hits: u64,
    pub cas_hits: u64,
    pub cas_badval: u64,
    pub touch_hits: u64,
}

impl SlabTotals {
    fn add(&mut self, s: &SlabCounters) {
        self.get_hits += s.get_hits.get();
        self.set_cmds += s.set_cmds.get();
        self.delete_hits += s.delete_hits.get();
        self.incr_hits += s.incr_hits.get();
        self.decr_hits += s.decr_hits.get();
        self.cas_hits += s.cas_hits.get();
        self.cas_badval += s.cas_badval.get();
        self.touch_hits += s.touch_hits.get();
    }

    fn sub(&mut self, b: &SlabTotals) {
        self.get_hits = self.get_hits.wrapping_sub(b.get_hits);
        self.set_cmds = self.set_cmds.wrapping_sub(b.set_cmds);
        self.delete_hits = self.delete_hits.wrapping_sub(b.delete_hits);
        self.incr_hits = self.incr_hits.wrapping_sub(b.incr_hits);
        self.decr_hits = self.decr_hits.wrapping_sub(b.decr_hits);
        self.cas_hits = self.cas_hits.wrapping_sub(b.cas_hits);
        self.cas_badval = self.cas_badval.wrapping_sub(b.cas_badval);
        self.touch_hits = self.touch_hits.wrapping_sub(b.touch_hits);
    }
}

/// Sum over the per-class counters.
impl Totals {
    pub fn get_hits(&self) -> u64 {
        self.slab.iter().map(|s| s.get_hits).sum()
    }
    pub fn set_cmds(&self) -> u64 {
        self.slab.iter().map(|s| s.set_cmds).sum()
    }
    pub fn sum(&self, f: impl Fn(&SlabTotals) -> u64) -> u64 {
        self.slab.iter().map(f).sum()
    }
}

/// Server-wide counters.
#[derive(Default, Debug)]
pub struct GlobalStats {
    /// Open client connections.
    pub curr_conns: AtomicUsize,
    pub total_conns: AtomicU64,
    pub rejected_conns: AtomicU64,
    pub listeners: AtomicUsize,
}

/// All the counters of a server.
pub struct Stats {
    pub threads: Vec<ThreadStats>,
    pub global: GlobalStats,
    baseline: parking_lot::Mutex<Totals>,
}

impl Stats {
    pub fn new(workers: usize) -> Stats {
        Stats {
            threads: (0..workers + 1).map(|_| ThreadStats::default()).collect(),
            global: GlobalStats::default(),
            baseline: parking_lot::Mutex::new(Totals {
                slab: vec![SlabTotals::default(); MAX_CLASSES + 1],
                ..Default::default()
            }),
        }
    }

    fn raw(&self) -> Totals {
        let mut t = Totals { slab: vec![SlabTotals::default(); MAX_CLASSES + 1], ..Default::default() };
        for th in &self.threads {
            t.add(th);
        }
        t
    }

    /// Current totals since start or the last reset.
    pub fn totals(&self) -> Totals {
        let mut t = self.raw();
        t.sub(&self.baseline.lock());
        t
    }

    /// `stats reset`.
    pub fn reset(&self) {
        let now = self.raw();
        *self.baseline.lock() = now;
        self.global.total_conns.store(0, Ordering::Relaxed);
        self.global.rejected_conns.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_sum_threads_and_reset_uses_a_baseline() {
        let s = Stats::new(2);
        s.threads[0].get_cmds.add(3);
        s.threads[1].get_cmds.inc();
        s.threads[1].slab[1].get_hits.inc();
        let t = s.totals();
        assert_eq!(t.get_cmds, 4);
        assert_eq!(t.get_hits(), 1);
        s.reset();
        assert_eq!(s.totals().get_cmds, 0);
        s.threads[0].get_cmds.inc();
        assert_eq!(s.totals().get_cmds, 1);
    }
}

//! Settings an administrator may change while the server runs (`lru tune|mode|temp_ttl`,
//! `slabs automove`), kept so that `stats settings` reports them as memcached does. Only
//! `slab_automove` is read (by the maintenance thread: 0 stops page moves that follow the size
//! mix); the LRU ones change nothing, as eviction is CLOCK per slab class and there is no
//! segmented LRU to tune (README, "Compatibility").

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

use crate::config::Config;

pub struct Tunables {
    pub hot_lru_pct: AtomicU32,
    pub warm_lru_pct: AtomicU32,
    hot_max_factor: AtomicU64,
    warm_max_factor: AtomicU64,
    pub lru_segmented: AtomicBool,
    pub temp_lru: AtomicBool,
    pub temporary_ttl: AtomicU32,
    pub slab_automove: AtomicU32,
}

impl Tunables {
    pub fn new(c: &Config) -> Tunables {
        Tunables {
            hot_lru_pct: AtomicU32::new(c.hot_lru_pct),
            warm_lru_pct: AtomicU32::new(c.warm_lru_pct),
            hot_max_factor: AtomicU64::new(c.hot_max_factor.to_bits()),
            warm_max_factor: AtomicU64::new(c.warm_max_factor.to_bits()),
            lru_segmented: AtomicBool::new(c.lru_segmented),
            temp_lru: AtomicBool::new(c.temp_lru),
            temporary_ttl: AtomicU32::new(c.temporary_ttl),
            slab_automove: AtomicU32::new(c.slab_automove),
        }
    }

    pub fn hot_max_factor(&self) -> f64 {
        f64::from_bits(self.hot_max_factor.load(Relaxed))
    }

    pub fn warm_max_factor(&self) -> f64 {
        f64::from_bits(self.warm_max_factor.load(Relaxed))
    }

    /// `lru tune <hot pct> <warm pct> <hot factor> <warm factor>` (already validated).
    pub fn tune(&self, hot_pct: u32, warm_pct: u32, hot_factor: f64, warm_factor: f64) {
        self.hot_lru_pct.store(hot_pct, Relaxed);
        self.warm_lru_pct.store(warm_pct, Relaxed);
        self.hot_max_factor.store(hot_factor.to_bits(), Relaxed);
        self.warm_max_factor.store(warm_factor.to_bits(), Relaxed);
    }
}

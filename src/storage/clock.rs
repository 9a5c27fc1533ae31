//! The server clock: coarse seconds since the process started, and memcached's exptime rules.
//!
//! Owns: the current relative time (`rel`, a `u32` like memcached's `rel_time_t`) and the
//! conversion of client exptimes into it. Knows nothing of items or protocols.
//!
//! Time is a relative second counter that a ticker thread (or a test) advances; reads are one
//! relaxed atomic load, so hot paths never call into the OS for the time. The counter starts at
//! 62 like memcached's (process start is back-dated by 60 + 2 seconds), so that an absolute
//! exptime at or before the start always maps to "already expired".

use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Relative exptimes up to this many seconds (30 days) are offsets; larger ones are unix times.
pub const REALTIME_MAXDELTA: i64 = 60 * 60 * 24 * 30;

/// memcached back-dates the process start by ITEM_UPDATE_INTERVAL + 2 seconds.
const START_BACKDATE: i64 = 62;

/// A coarse, shareable clock.
#[derive(Debug)]
pub struct Clock {
    /// Unix time (seconds) that relative time 0 corresponds to.
    process_started: i64,
    /// Current relative time in seconds.
    now: AtomicU32,
    /// Seconds added by `advance` (the `debugtime` test hook), kept across ticks.
    offset: AtomicI64,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock starting now.
    pub fn new() -> Clock {
        let started = unix_now() - START_BACKDATE;
        Clock { process_started: started, now: AtomicU32::new(START_BACKDATE as u32), offset: AtomicI64::new(0) }
    }

    /// Current relative time in seconds.
    #[inline]
    pub fn now(&self) -> u32 {
        self.now.load(Ordering::Relaxed)
    }

    /// Unix time of relative time 0.
    pub fn process_started(&self) -> i64 {
        self.process_started
    }

    /// Current unix time as the server sees it (including any test offset).
    pub fn unix_now(&self) -> i64 {
        self.process_started + self.now() as i64
    }

    /// Re-read the system clock. Called about once a second by the ticker thread.
    pub fn tick(&self) {
        let rel = unix_now() - self.process_started + self.offset.load(Ordering::Relaxed);
        let rel = rel.clamp(1, u32::MAX as i64) as u32;
        // Never go backwards: a stepped wall clock must not resurrect expired items.
        self.now.fetch_max(rel, Ordering::Relaxed);
    }

    /// Move the clock forward by `secs` (test hook behind `-o debug_time`).
    pub fn advance(&self, secs: u32) {
        self.offset.fetch_add(secs as i64, Ordering::Relaxed);
        self.now.fetch_add(secs, Ordering::Relaxed);
    }

    /// memcached's `realtime()`: convert a client exptime into relative time.
    /// 0 means never; negative means already expired (1); up to 30 days is an offset from now;
    /// larger is an absolute unix time (at or before process start means already expired).
    pub fn realtime(&self, exptime: i64) -> u32 {
        if exptime == 0 {
            return 0;
        }
        if exptime < 0 {
            return 1;
        }
        if exptime > REALTIME_MAXDELTA {
            if exptime <= self.process_started {
                return 1;
            }
            return (exptime - self.process_started).min(u32::MAX as i64) as u32;
        }
        (exptime + self.now() as i64).min(u32::MAX as i64) as u32
    }
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exptime_rules() {
        let c = Clock::new();
        let now = c.now();
        assert_eq!(c.realtime(0), 0);
        assert_eq!(c.realtime(-1), 1);
        assert_eq!(c.realtime(10), now + 10);
        assert_eq!(c.realtime(REALTIME_MAXDELTA), now + REALTIME_MAXDELTA as u32);
        // just over 30 days: an absolute time in 1970, long before start
        assert_eq!(c.realtime(REALTIME_MAXDELTA + 1), 1);
        let future = c.unix_now() + 100;
        assert_eq!(c.realtime(future), now + 100);
    }

    #[test]
    fn advance_moves_time_and_survives_ticks() {
        let c = Clock::new();
        let before = c.now();
        c.advance(100);
        assert!(c.now() >= before + 100);
        c.tick();
        assert!(c.now() >= before + 100);
    }
}

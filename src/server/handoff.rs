//! Spreading connections over the workers. Every worker accepts on the shared listeners, and
//! whichever wakes first would otherwise take a whole burst of new connections (17/7/10/16
//! of 50 seen with `-t 4`), leaving cores idle under load. The accepting worker instead
//! hands each connection to the worker with the fewest (itself on a tie, so a balanced
//! server hands nothing off): it is queued in that worker's inbox and the worker is woken to
//! register it, as memcached's dispatcher deals connections round-robin.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crossbeam_utils::CachePadded;
use mio::Waker;
use parking_lot::Mutex;

use super::conn::Stream;
use super::ConnInfo;

/// An accepted connection on its way to another worker.
pub struct Arrival {
    pub stream: Stream,
    pub fd: i32,
    pub info: Arc<ConnInfo>,
}

struct Inbox {
    /// Connections this worker serves (or has been handed and not yet registered).
    load: CachePadded<AtomicUsize>,
    queue: Mutex<Vec<Arrival>>,
    waker: OnceLock<Arc<Waker>>,
}

/// One inbox per worker.
pub struct Handoff {
    inboxes: Vec<Inbox>,
}

impl Handoff {
    pub fn new(workers: usize) -> Handoff {
        Handoff {
            inboxes: (0..workers)
                .map(|_| Inbox {
                    load: CachePadded::new(AtomicUsize::new(0)),
                    queue: Mutex::new(Vec::new()),
                    waker: OnceLock::new(),
                })
                .collect(),
        }
    }

    /// Worker `id`'s waker, set once when the worker starts.
    pub fn set_waker(&self, id: usize, waker: Arc<Waker>) {
        let _ = self.inboxes[id].waker.set(waker);
    }

    /// The worker that should serve the next connection accepted by worker `me`, already
    /// counted as one more connection there.
    pub fn pick(&self, me: usize) -> usize {
        let load = |i: usize| self.inboxes[i].load.load(Ordering::Relaxed);
        let mut best = me;
        for i in 0..self.inboxes.len() {
            if load(i) < load(best) {
                best = i;
            }
        }
        self.inboxes[best].load.fetch_add(1, Ordering::Relaxed);
        best
    }

    /// Queue a connection for worker `to` and wake it. Returns the connection if that worker
    /// has no waker yet (not started), for the caller to serve itself.
    pub fn send(&self, to: usize, a: Arrival) -> Result<(), Arrival> {
        let Some(waker) = self.inboxes[to].waker.get() else {
            return Err(a);
        };
        self.inboxes[to].queue.lock().push(a);
        let _ = waker.wake();
        Ok(())
    }

    /// Move the load count of one connection from worker `from` to worker `to`.
    pub fn moved(&self, from: usize, to: usize) {
        self.inboxes[from].load.fetch_sub(1, Ordering::Relaxed);
        self.inboxes[to].load.fetch_add(1, Ordering::Relaxed);
    }

    /// Connections handed to worker `id`.
    pub fn take(&self, id: usize) -> Vec<Arrival> {
        std::mem::take(&mut *self.inboxes[id].queue.lock())
    }

    /// Worker `id` stopped serving one connection.
    pub fn done(&self, id: usize) {
        self.inboxes[id].load.fetch_sub(1, Ordering::Relaxed);
    }

    /// Connections per worker (for tests and `stats`-like introspection).
    pub fn loads(&self) -> Vec<usize> {
        self.inboxes.iter().map(|i| i.load.load(Ordering::Relaxed)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_least_loaded_and_prefers_itself_on_ties() {
        let h = Handoff::new(3);
        assert_eq!(h.pick(1), 1); // all equal: keep it
        assert_eq!(h.pick(1), 0); // 0 and 2 now have fewer
        assert_eq!(h.pick(1), 2);
        assert_eq!(h.loads(), [1, 1, 1]);
        h.done(2);
        assert_eq!(h.pick(0), 2);
        h.moved(2, 0);
        assert_eq!(h.loads(), [2, 1, 0]);
    }
}

//! Idle timeout (`-o idle_timeout=N`): when a worker looks for idle connections, and which it
//! closes.
//!
//! Owns: the once-a-second check schedule (the poll timeout a worker needs for it) and
//! memcached 1.6.18's rule: a TCP connection whose last command is more than N seconds old on
//! the server clock is closed and counted in `idle_kicks`, unless it is in the middle of a
//! command (a data block or binary body still arriving, a refused value being discarded,
//! replies the socket has not taken, a metadump streaming). A partial command line does not
//! protect it (memcached kicks connections in its read states), and UNIX-socket connections
//! are never kicked (memcached only kicks TCP ones). Knows nothing of mio; the worker closes.

use std::time::{Duration, Instant};

use super::conn::{Conn, Stream};

/// How often a worker looks (memcached's idle thread also wakes about once a second).
const EVERY: Duration = Duration::from_secs(1);

/// A worker's schedule of idle checks; does nothing when the timeout is 0.
pub struct IdleCheck {
    timeout: u32,
    next: Instant,
}

impl IdleCheck {
    pub fn new(timeout_secs: u32) -> IdleCheck {
        IdleCheck { timeout: timeout_secs, next: Instant::now() + EVERY }
    }

    /// How long the event loop may sleep before the next check (`None`: as long as it likes).
    pub fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        (self.timeout > 0).then(|| self.next.saturating_duration_since(now))
    }

    /// Whether a check is due now; if so, the next one is scheduled.
    pub fn due(&mut self, now: Instant) -> bool {
        if self.timeout == 0 || now < self.next {
            return false;
        }
        self.next = now + EVERY;
        true
    }

    /// Whether `conn` is to be closed at server time `now` (seconds).
    pub fn kicks(&self, conn: &Conn, now: u32) -> bool {
        let last = conn.info.last_cmd.load(std::sync::atomic::Ordering::Relaxed);
        self.timeout > 0
            && matches!(conn.stream, Stream::Tcp(_) | Stream::Tls(_))
            && now.saturating_sub(last) > self.timeout
            // memcached would be reading a value or body, discarding, or writing, not waiting
            && !conn.session.mid_command()
            && conn.output_done()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule() {
        let off = IdleCheck::new(0);
        let mut on = IdleCheck::new(2);
        let start = Instant::now();
        assert_eq!(off.poll_timeout(start), None);
        assert!(on.poll_timeout(start).is_some_and(|d| d <= EVERY));
        assert!(!on.due(start));
        let later = start + EVERY * 2;
        assert!(on.due(later) && !on.due(later), "one check per second");
        assert_eq!(on.poll_timeout(later), Some(EVERY));
    }
}

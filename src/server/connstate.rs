//! What `stats conns` says a client connection is doing, in memcached's state names.
//!
//! Owns: the state names and the rule mapping a connection's input position to one of them.
//! The worker sets the state around each round of request processing (two calls); `report`
//! reads it. Knows nothing of sockets or protocols. Listeners and UDP sockets have fixed states
//! (`conn_listening`, `conn_read`) and do not use this.

use std::sync::atomic::{AtomicU8, Ordering};

/// memcached's `conn_*` states that a client connection of ours can be seen in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ConnState {
    /// Accepted, nothing read yet.
    NewCmd = 0,
    /// Between commands, waiting for the next one (or for the rest of a command line).
    Read,
    /// A command line was read and its data block is still arriving.
    Nread,
    /// Discarding the data block of a refused command.
    Swallow,
    /// Its commands are being executed (the connection asking `stats conns` sees itself so).
    ParseCmd,
    /// A `watch` log stream (stays so).
    Watch,
}

impl ConnState {
    pub fn name(self) -> &'static str {
        match self {
            ConnState::NewCmd => "conn_new_cmd",
            ConnState::Read => "conn_read",
            ConnState::Nread => "conn_nread",
            ConnState::Swallow => "conn_swallow",
            ConnState::ParseCmd => "conn_parse_cmd",
            ConnState::Watch => "conn_watch",
        }
    }

    fn from_u8(v: u8) -> ConnState {
        [
            ConnState::NewCmd,
            ConnState::Read,
            ConnState::Nread,
            ConnState::Swallow,
            ConnState::ParseCmd,
            ConnState::Watch,
        ]
        .get(v as usize)
        .copied()
        .unwrap_or(ConnState::Read)
    }
}

/// Kept beside the state: the connection is being closed for bad input.
const ERROR_BIT: u8 = 0x80;
/// Kept beside the state: the connection is being closed by the idle timeout.
const IDLE_BIT: u8 = 0x40;
const FLAGS: u8 = ERROR_BIT | IDLE_BIT;

/// A connection's state, shared between its worker and `stats conns` readers.
#[derive(Debug, Default)]
pub struct StateCell(AtomicU8);

impl StateCell {
    pub fn get(&self) -> ConnState {
        ConnState::from_u8(self.0.load(Ordering::Relaxed) & !FLAGS)
    }

    fn set(&self, s: ConnState) {
        self.0.fetch_and(FLAGS, Ordering::Relaxed);
        self.0.fetch_or(s as u8, Ordering::Relaxed);
    }

    /// The connection became a `watch` stream.
    pub fn watching(&self) {
        self.set(ConnState::Watch);
    }

    /// The server closes this connection for bad input (`watch connevents` says `error`).
    pub fn mark_error(&self) {
        self.0.fetch_or(ERROR_BIT, Ordering::Relaxed);
    }

    pub fn errored(&self) -> bool {
        self.0.load(Ordering::Relaxed) & ERROR_BIT != 0
    }

    /// The idle timeout closes this connection (`watch connevents` says `idle_timeout`).
    pub fn mark_idle_kick(&self) {
        self.0.fetch_or(IDLE_BIT, Ordering::Relaxed);
    }

    /// memcached's close reason for a connection the worker closes now.
    pub fn close_reason(&self) -> &'static str {
        let v = self.0.load(Ordering::Relaxed);
        if v & ERROR_BIT != 0 {
            "error"
        } else if v & IDLE_BIT != 0 {
            "idle_timeout"
        } else {
            "normal"
        }
    }

    /// Processing starts; returns the state to restore if nothing gets consumed.
    pub fn enter(&self) -> ConnState {
        let before = self.get();
        self.set(ConnState::ParseCmd);
        before
    }

    /// Processing ended having consumed `used` bytes, waiting for a data block (`need`) or
    /// discarding one (`swallow`).
    pub fn leave(&self, before: ConnState, used: usize, need: usize, swallow: usize) {
        if before == ConnState::Watch || self.get() == ConnState::Watch {
            return self.set(ConnState::Watch);
        }
        self.set(if swallow > 0 {
            ConnState::Swallow
        } else if need > 0 {
            ConnState::Nread
        } else if used == 0 && before != ConnState::ParseCmd {
            before
        } else {
            ConnState::Read
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_follow_the_input() {
        let c = StateCell::default();
        assert_eq!(c.get().name(), "conn_new_cmd");
        let before = c.enter();
        assert_eq!(c.get().name(), "conn_parse_cmd");
        c.leave(before, 0, 0, 0);
        assert_eq!(c.get(), ConnState::NewCmd, "nothing consumed: still new");
        let before = c.enter();
        c.leave(before, 15, 8, 0);
        assert_eq!(c.get().name(), "conn_nread");
        let before = c.enter();
        c.leave(before, 8, 0, 0);
        assert_eq!(c.get().name(), "conn_read");
        let before = c.enter();
        c.leave(before, 20, 0, 100);
        assert_eq!(c.get().name(), "conn_swallow");
        let before = c.enter();
        c.watching();
        c.leave(before, 7, 0, 0);
        assert_eq!(c.get().name(), "conn_watch");
        let before = c.enter();
        c.leave(before, 9, 0, 0);
        assert_eq!(c.get().name(), "conn_watch", "stays");
    }
}

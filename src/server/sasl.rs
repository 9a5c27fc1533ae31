//! SASL (`-S`): the password table and the PLAIN mechanism.
//!
//! Owns: loading the users named by `MEMCACHED_SASL_PWDB` (lines `user:password`, as memcached's
//! built-in password database reads them) once at startup, and checking a PLAIN response
//! (`authzid NUL authcid NUL password`) against them. Knows no wire format and no sockets.
//! Passwords are never logged, not even their length.

use std::collections::HashMap;
use std::fmt;

/// The only mechanism we offer (memcached lists what its Cyrus SASL library offers; a
/// password file supports PLAIN).
pub const MECHANISMS: &str = "PLAIN";

/// Environment variable naming the password file (as in memcached).
pub const PWDB_ENV: &str = "MEMCACHED_SASL_PWDB";

/// Users and their passwords.
#[derive(Default)]
pub struct Passwords {
    users: HashMap<Vec<u8>, Vec<u8>>,
}

impl fmt::Debug for Passwords {
    // Never print the passwords.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passwords").field("users", &self.users.len()).finish()
    }
}

impl Passwords {
    /// Parse a password file. Like memcached: a line is `user:password`, optionally followed
    /// by `:more` fields (ignored); the first line of a user wins; lines without `:` are ignored.
    pub fn parse(text: &[u8]) -> Passwords {
        let mut users = HashMap::new();
        for line in text.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (user, rest) = (&line[..colon], &line[colon + 1..]);
            let pass = rest.split(|&b| b == b':').next().unwrap_or_default();
            users.entry(user.to_vec()).or_insert_with(|| pass.to_vec());
        }
        Passwords { users }
    }

    /// The table named by `MEMCACHED_SASL_PWDB`, or an empty one (every login then fails).
    pub fn from_env() -> Passwords {
        let Some(path) = std::env::var_os(PWDB_ENV) else {
            log::warn!("SASL enabled but {PWDB_ENV} is not set: every authentication will fail");
            return Passwords::default();
        };
        match std::fs::read(&path) {
            Ok(text) => {
                let p = Passwords::parse(&text);
                log::info!("SASL: {} user(s) loaded from {}", p.len(), path.to_string_lossy());
                p
            }
            Err(e) => {
                log::warn!("SASL: cannot read {}: {e}; every authentication will fail", path.to_string_lossy());
                Passwords::default()
            }
        }
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Check a PLAIN response: exactly `authzid NUL authcid NUL password`, a non-empty authcid,
    /// an authzid that is empty or the authcid itself (no proxying), and the right password.
    pub fn check_plain(&self, response: &[u8]) -> bool {
        let mut parts = response.split(|&b| b == 0);
        let (Some(authzid), Some(user), Some(pass), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        if user.is_empty() || (!authzid.is_empty() && authzid != user) {
            return false;
        }
        match self.users.get(user) {
            Some(expected) => constant_time_eq(expected, pass),
            None => false,
        }
    }
}

/// Compare without an early exit on the first differing byte (also used by `asciiauth`).
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_memcached_pwdb_lines() {
        let p = Passwords::parse(b"alice:secret\r\nbob:pw:extra\nnocolon\nalice:other\n:empty\n");
        assert_eq!(p.len(), 3);
        assert!(p.check_plain(b"\0alice\0secret"));
        assert!(!p.check_plain(b"\0alice\0other"), "the first line of a user wins");
        assert!(p.check_plain(b"\0bob\0pw"));
        assert!(!p.check_plain(b"\0bob\0pw:extra"));
    }

    #[test]
    fn plain_response_shape() {
        let p = Passwords::parse(b"alice:secret\n");
        assert!(p.check_plain(b"alice\0alice\0secret"));
        assert!(!p.check_plain(b"bob\0alice\0secret"), "no proxy authorization");
        assert!(!p.check_plain(b"alice\0secret"));
        assert!(!p.check_plain(b"\0alice\0secret\0"));
        assert!(!p.check_plain(b"\0alice\0secreT"));
        assert!(!p.check_plain(b"\0alice\0"));
        assert!(!p.check_plain(b""));
        assert!(!p.check_plain(b"\0\0secret"));
        assert!(!Passwords::default().check_plain(b"\0alice\0secret"));
    }

    #[test]
    fn debug_hides_passwords() {
        let p = Passwords::parse(b"alice:hunter2\n");
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}

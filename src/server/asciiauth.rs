//! ASCII authentication (`-Y FILE`): the loaded password table and the login step of a text
//! connection.
//!
//! Owns: loading the authfile at startup (a missing or malformed file stops the server with
//! memcached's messages) and again on SIGHUP (keeping the old table when the new file cannot be
//! read or is malformed), checking credentials, and serving a connection's input until it has
//! logged in, counting `auth_cmds` / `auth_errors`. The wire format is `protocol::asciiauth`'s;
//! framing after login is the connection's. Passwords are never logged.

use std::fmt;
use std::path::{Path, PathBuf};

use parking_lot::RwLock;

use super::exec::Ctx;
use super::sasl::constant_time_eq;
use super::session::{Session, Step};
use crate::protocol::asciiauth::{self as pauth, reply, Login};

/// `(user, password)` entries, in file order.
type Users = Vec<(Vec<u8>, Vec<u8>)>;

/// Users and passwords read from the authfile, or none when `-Y` is not given.
#[derive(Default)]
pub struct AuthFile {
    path: Option<PathBuf>,
    users: RwLock<Users>,
}

impl fmt::Debug for AuthFile {
    // Never print the passwords.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthFile").field("path", &self.path).field("users", &self.users.read().len()).finish()
    }
}

/// An I/O error as C's `strerror` words it (without Rust's " (os error N)").
fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    s.split(" (os error").next().unwrap_or(&s).to_string()
}

/// Read and parse the file as memcached does: a file that opens but cannot be read (a
/// directory) has no entries.
fn read_users(path: &Path) -> Result<Users, String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| {
        let why = strerror(&e);
        format!("Could not open authfile [{}] for reading, error {why}: {why}", path.display())
    })?;
    let mut text = Vec::new();
    if f.read_to_end(&mut text).is_err() {
        text.clear();
    }
    let entries = pauth::parse_file(&text)
        .map_err(|_| format!("Authfile [{}] has a malformed entry. Should be 'user:password'", path.display()))?;
    Ok(entries.iter().map(|(u, p)| (u.to_vec(), p.to_vec())).collect())
}

impl AuthFile {
    /// Load `-Y FILE`; the error is memcached's message (the server exits with status 1).
    pub fn load(path: Option<&Path>) -> Result<AuthFile, String> {
        let Some(path) = path else {
            return Ok(AuthFile::default());
        };
        let users = read_users(path)?;
        log::info!("ASCII auth: {} user(s) loaded from {}", users.len(), path.display());
        Ok(AuthFile { path: Some(path.to_path_buf()), users: RwLock::new(users) })
    }

    /// Check that the file can be loaded (at startup, before anything is bound), with
    /// memcached's message when not.
    pub fn check_file(path: Option<&Path>) -> Result<(), String> {
        path.map_or(Ok(()), |p| read_users(p).map(drop))
    }

    /// Read the file again (SIGHUP); on failure the loaded users stay.
    pub fn reload(&self) {
        let Some(path) = &self.path else {
            return;
        };
        match read_users(path) {
            Ok(users) => {
                log::info!("ASCII auth: {} user(s) reloaded from {}", users.len(), path.display());
                *self.users.write() = users;
            }
            Err(e) => log::warn!("ASCII auth: {e}; keeping the users loaded before"),
        }
    }

    /// Text connections must log in first.
    pub fn enabled(&self) -> bool {
        self.path.is_some()
    }

    /// The file, for `stats settings` (`auth_enabled_ascii`).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Whether some entry has this user and password (every entry is compared in full).
    pub fn check(&self, user: &[u8], pass: &[u8]) -> bool {
        self.users.read().iter().fold(false, |ok, (u, p)| ok | (constant_time_eq(u, user) & constant_time_eq(p, pass)))
    }
}

/// Serve one request of a connection that has not logged in: a login (`STORED` and the
/// connection is in, or `CLIENT_ERROR authentication failure`), or anything else (`CLIENT_ERROR
/// unauthenticated`, and the like). `noreply` is ignored, as in memcached.
pub fn step(session: &mut Session, input: &[u8], out: &mut Vec<u8>, ctx: &Ctx<'_>) -> Step {
    match pauth::login(input) {
        Login::Incomplete { need } => {
            session.need = need;
            Step::Incomplete
        }
        Login::Close => Step::Close(0),
        Login::Refused { consumed, reply } => {
            session.need = 0;
            out.extend_from_slice(reply);
            Step::Done(consumed)
        }
        Login::Credentials { consumed, user, pass } => {
            session.need = 0;
            if ctx.authenticated(ctx.shared.ascii_auth.check(user, pass)) {
                session.login_pending = false;
                out.extend_from_slice(reply::STORED);
            } else {
                out.extend_from_slice(reply::FAILURE);
            }
            Step::Done(consumed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &[u8]) -> PathBuf {
        let p = std::env::temp_dir().join(format!("rc-authfile-{}-{name}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn load_check_and_reload() {
        let p = file("ok", b"foo:bar\nbaaaz:quux\n");
        let a = AuthFile::load(Some(&p)).unwrap();
        assert!(a.enabled() && a.check(b"foo", b"bar") && a.check(b"baaaz", b"quux"));
        assert!(!a.check(b"foo", b"quux") && !a.check(b"foo", b"ba") && !a.check(b"", b""));
        assert!(!format!("{a:?}").contains("bar"));
        std::fs::write(&p, b"nocolon\n").unwrap();
        a.reload();
        assert!(a.check(b"foo", b"bar"), "a malformed file keeps the old users");
        std::fs::write(&p, b"new:pw\n").unwrap();
        a.reload();
        assert!(a.check(b"new", b"pw") && !a.check(b"foo", b"bar"));
        std::fs::remove_file(&p).unwrap();
        a.reload();
        assert!(a.check(b"new", b"pw"), "a missing file keeps the old users");
        let e = AuthFile::load(Some(&p)).unwrap_err();
        assert_eq!(
            e,
            format!(
                "Could not open authfile [{}] for reading, error No such file or directory: No such file or directory",
                p.display()
            )
        );
        let bad = file("bad", b"a:b\n\n");
        assert_eq!(
            AuthFile::load(Some(&bad)).unwrap_err(),
            format!("Authfile [{}] has a malformed entry. Should be 'user:password'", bad.display())
        );
        let _ = std::fs::remove_file(&bad);
        assert!(!AuthFile::load(None).unwrap().enabled());
    }
}

//! Process-level chores of the binary: root checks and `-u`, `-d`, `-P`, the fd limit for `-c`,
//! signals, and systemd readiness notifications.
//!
//! The few libc calls here (getuid, getpwnam, setgid/setuid, setrlimit, fork/setsid via
//! `daemon`) have no safe wrapper in our dependencies; each is commented.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use rustcached::config::Config;
use rustcached::server::ServerHandle;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

fn is_root() -> bool {
    // SAFETY: getuid/geteuid have no preconditions.
    unsafe { libc::getuid() == 0 || libc::geteuid() == 0 }
}

/// memcached refuses to run as root unless told which user to become.
pub fn check_root(c: &Config) -> Result<(), String> {
    if is_root() && c.user.as_deref().unwrap_or("").is_empty() {
        return Err("can't run as root without the -u switch".into());
    }
    Ok(())
}

/// The `-u` user's ids, looked up before anything is bound (as memcached does, so an unknown
/// user fails with EX_NOUSER whatever else is wrong). `None` when not root or without `-u`.
pub fn find_user(c: &Config) -> Result<Option<(libc::uid_t, libc::gid_t)>, String> {
    let Some(user) = c.user.as_deref() else {
        return Ok(None);
    };
    if !is_root() {
        return Ok(None);
    }
    let not_found = || format!("can't find the user {user} to switch to");
    let name = CString::new(user).map_err(|_| not_found())?;
    // SAFETY: getpwnam returns a pointer to static storage or null; we read it at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err(not_found());
    }
    // SAFETY: pw is non-null and points to a valid passwd record.
    Ok(Some(unsafe { ((*pw).pw_uid, (*pw).pw_gid) }))
}

/// Become the `-u` user found by `find_user`, after binding.
pub fn drop_privileges(user: Option<(libc::uid_t, libc::gid_t)>) -> Result<(), String> {
    let Some((uid, gid)) = user else {
        return Ok(());
    };
    // SAFETY: plain syscalls; failures are checked.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) < 0 {
            return Err("failed to drop supplementary groups".into());
        }
        if libc::setgid(gid) < 0 || libc::setuid(uid) < 0 {
            return Err("failed to assume identity of user".into());
        }
    }
    Ok(())
}

/// Raise RLIMIT_NOFILE so that `-c` connections fit.
pub fn raise_fd_limit(maxconns: usize) {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 {
            return;
        }
        let want = maxconns as libc::rlim_t;
        if rl.rlim_cur < want {
            let new = libc::rlimit { rlim_cur: want.min(rl.rlim_max.max(want)), rlim_max: rl.rlim_max.max(want) };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &new) != 0 {
                let capped = libc::rlimit { rlim_cur: want.min(rl.rlim_max), rlim_max: rl.rlim_max };
                libc::setrlimit(libc::RLIMIT_NOFILE, &capped);
                log::warn!("could not raise the open files limit to {want}: connections may fail before -c");
            }
        }
    }
}

/// `-d`: detach like memcached (chdir to / unless -r, close stdio unless -v).
pub fn daemonize(c: &Config) -> Result<(), String> {
    let nochdir = c.coredumps as i32;
    let noclose = (c.verbose > 0) as i32;
    // SAFETY: called before any thread is started (workers start in `Server::run`), so fork
    // in daemon() is safe.
    if unsafe { libc::daemon(nochdir, noclose) } != 0 {
        return Err("failed to daemon() in order to daemonize".into());
    }
    Ok(())
}

/// `-P`: written at start, removed at exit.
pub struct PidFile(Option<PathBuf>);

impl PidFile {
    pub fn create(path: Option<&Path>) -> PidFile {
        let Some(p) = path else {
            return PidFile(None);
        };
        match std::fs::write(p, format!("{}\n", std::process::id())) {
            Ok(()) => PidFile(Some(p.to_path_buf())),
            Err(e) => {
                log::error!("Could not open the pid file {} for writing: {e}", p.display());
                PidFile(None)
            }
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The log file (`logfile` in a conf file), reopened on SIGHUP so logrotate can move it.
pub struct LogFile;

static LOG_PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
static LOG_FILE: std::sync::Mutex<Option<std::fs::File>> = std::sync::Mutex::new(None);

fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().create(true).append(true).open(path)
}

impl LogFile {
    pub fn open(path: &Path) -> std::io::Result<LogFile> {
        let f = open_append(path)?;
        let _ = LOG_PATH.set(path.to_path_buf());
        *LOG_FILE.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
        Ok(LogFile)
    }

    /// Reopen the file at the same path (after rotation). No-op without a log file.
    pub fn reopen() {
        if let Some(path) = LOG_PATH.get() {
            if let Ok(f) = open_append(path) {
                *LOG_FILE.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
            }
        }
    }
}

impl std::io::Write for LogFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match LOG_FILE.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(f) => f.write(buf),
            None => Ok(buf.len()),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match LOG_FILE.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

/// SIGTERM/SIGINT/SIGUSR1 stop the server; SIGHUP reopens the log file and re-reads
/// `--cluster-file`.
/// Catch the signals we handle. Called first thing, so that a SIGHUP (log rotation) arriving
/// while we start up cannot kill the process with its default action.
pub fn install_signals() -> std::io::Result<Signals> {
    Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1])
}

/// Handle the caught signals on a thread of their own.
pub fn spawn_signal_thread(mut signals: Signals, handle: ServerHandle) -> std::io::Result<()> {
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        for sig in signals.forever() {
            match sig {
                SIGHUP => {
                    LogFile::reopen();
                    log::info!("SIGHUP received: log file reopened");
                    handle.reload_cluster();
                    handle.reload_auth_file();
                }
                s => {
                    log::info!("signal {s} received, shutting down");
                    handle.shutdown();
                }
            }
        }
    })?;
    Ok(())
}

/// Whether stderr is connected to the journal: systemd sets `JOURNAL_STREAM=<dev>:<inode>` for
/// a service whose stderr goes there, and stderr must still be that stream (not redirected by a
/// wrapper), as sd_journal_stream_fd(3) and systemd.exec(5) say to check.
pub fn stderr_is_journal() -> bool {
    let Some(want) = std::env::var("JOURNAL_STREAM").ok() else {
        return false;
    };
    let Some((dev, ino)) = want.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd).metadata().is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// sd-daemon.h's priority prefixes: `<3>` SD_ERR, `<4>` SD_WARNING, `<6>` SD_INFO, `<7>` SD_DEBUG.
pub fn journal_priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

#[cfg(test)]
#[test]
fn journal_priorities_are_sd_daemons() {
    use log::Level::*;
    let got: Vec<u8> = [Error, Warn, Info, Debug, Trace].into_iter().map(journal_priority).collect();
    assert_eq!(got, [3, 4, 6, 7, 7]);
}

/// Tell systemd we are ready (no-op without NOTIFY_SOCKET).
pub fn notify_ready(status: &str) {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready, sd_notify::NotifyState::Status(status)]);
}

pub fn notify_stopping() {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
}

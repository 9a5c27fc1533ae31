//! Operations: memcached.conf files, systemd socket activation, journald priorities, log files
//! and privilege dropping.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{expect, free_port, is_root, rustcached_bin, stats};

fn tmpdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("rustcached-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Wait until `child` itself listens on `port` (not merely some process: two tests can draw
/// the same free port, and a connect would then reach the other test's server).
fn wait_port(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !common::listening(child.id(), port) {
        assert!(child.try_wait().unwrap().is_none(), "server exited early");
        assert!(Instant::now() < deadline, "server did not listen on {port}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Debian's stock /etc/memcached.conf, with the port and user adjusted for the test.
fn debian_conf(port: u16, extra: &str) -> String {
    format!(
        "# memcached default config file\n# 2003 - Jay Bonci <jaybonci@debian.org>\n\
         # Run memcached as a daemon. This command is implied, and is not needed for the\n\
         # daemon to run. See the README.Debian that comes with this package for more\n\
         # information.\n-d\n\n# Log memcached's output to /var/log/memcached\nlogfile /tmp/rustcached-test-unused.log\n\n\
         # Be verbose\n# -v\n\n# Start with a cap of 64 megs of memory.\n-m 64\n\n\
         # Default connection port is 11211\n-p {port}\n\n# Run the daemon as root.\n-u {user}\n\n\
         # Specify which IP address to listen on.\n-l 127.0.0.1\n\n# Limit the number of simultaneous incoming connections.\n# -c 1024\n\
         {extra}",
        user = if is_root() { "root" } else { "nobody" }
    )
}

#[test]
fn debian_memcached_conf_runs_under_systemd_rules() {
    let dir = tmpdir("conf");
    let port = free_port();
    let conf = dir.join("memcached.conf");
    std::fs::write(&conf, debian_conf(port, "-c 512\n")).unwrap();
    // INVOCATION_ID makes us follow Debian's systemd wrapper: -d and logfile are dropped.
    let child = Command::new(rustcached_bin())
        .args(["--conf-file", conf.to_str().unwrap()])
        .env("INVOCATION_ID", "test")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut k = Kill(child);
    wait_port(port, &mut k.0);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let st = stats(&mut s, "settings");
    assert_eq!(st["maxconns"], "512");
    assert_eq!(st["maxbytes"], (64 << 20).to_string());
    assert_eq!(st["inter"], "127.0.0.1");
    assert!(k.0.try_wait().unwrap().is_none(), "must stay in the foreground under systemd");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn command_line_overrides_the_conf_file() {
    let dir = tmpdir("conf2");
    let port = free_port();
    let conf = dir.join("memcached.conf");
    std::fs::write(&conf, debian_conf(1, "")).unwrap();
    let child = Command::new(rustcached_bin())
        .args(["--conf-file", conf.to_str().unwrap(), "-p", &port.to_string(), "-m", "32"])
        .env("INVOCATION_ID", "test")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut k = Kill(child);
    wait_port(port, &mut k.0);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(stats(&mut s, "settings")["maxbytes"], (32 << 20).to_string());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn broken_conf_files_are_refused_with_file_and_line() {
    let dir = tmpdir("badconf");
    for (content, want) in [
        ("-m 64\n-p 11211\n-Q\n", ":3:"),
        ("-m 64\nport 11211\n", ":2: not a flag"),
        ("-o nonsense_option\n", ":1: Illegal suboption"),
        ("-B sometimes\n", ":1: Invalid value for binding protocol"),
    ] {
        let conf = dir.join("bad.conf");
        std::fs::write(&conf, content).unwrap();
        let out = Command::new(rustcached_bin()).args(["--conf-file", conf.to_str().unwrap()]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{content:?}: {err}");
        assert!(err.contains(&format!("bad.conf{want}")), "{content:?}: {err}");
    }
    let out = Command::new(rustcached_bin()).args(["--conf-file", "/nonexistent/memcached.conf"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn systemd_socket_activation_is_adopted() {
    common::needs(
        Command::new("systemd-socket-activate").arg("--help").output().is_ok(),
        "systemd-socket-activate (apt-get install systemd)",
    );
    let port = free_port();
    let mut cmd = Command::new("systemd-socket-activate");
    cmd.args(["-l", &format!("127.0.0.1:{port}"), "--", rustcached_bin(), "-p", "1"]);
    if is_root() {
        cmd.args(["-u", "root"]);
    }
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let _k = Kill(child);
    // The socket exists before the daemon starts; the first connection starts it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut s = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("{e}"),
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    expect(&mut s, b"set sa 0 0 2\r\nok\r\nget sa\r\n", b"STORED\r\nVALUE sa 0 2\r\nok\r\nEND\r\n");
}

#[test]
fn logfile_is_written_and_reopened_on_sighup() {
    let dir = tmpdir("log");
    let port = free_port();
    let log = dir.join("rustcached.log");
    let conf = dir.join("memcached.conf");
    let user = if is_root() { "-u root\n" } else { "" };
    std::fs::write(&conf, format!("logfile {}\n-p {port}\n-l 127.0.0.1\n-v\n{user}", log.display())).unwrap();
    let child = Command::new(rustcached_bin())
        .args(["--conf-file", conf.to_str().unwrap()])
        .env_remove("INVOCATION_ID")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut k = Kill(child);
    wait_port(port, &mut k.0);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("listening on tcp:127.0.0.1"), "{text}");
    std::fs::rename(&log, dir.join("rustcached.log.1")).unwrap();
    // SAFETY: signalling our child.
    unsafe { libc::kill(k.0.id() as i32, libc::SIGHUP) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !log.exists() {
        assert!(Instant::now() < deadline, "log not reopened");
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dash_u_drops_root_privileges() {
    if !is_root() {
        eprintln!("not root: skipped");
        return;
    }
    let srv = common::Server::start(&["-u", "nobody"]);
    let mut s = srv.connect();
    expect(&mut s, b"version\r\n", format!("VERSION {}\r\n", rustcached::config::VERSION).as_bytes());
    let status = std::fs::read_to_string(format!("/proc/{}/status", srv.child.id())).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(!uid_line.split_whitespace().skip(1).any(|u| u == "0"), "{uid_line}");
}

/// Start rustcached with its stderr on a pipe whose `<dev>:<inode>` is known, as systemd's
/// journal stream is, and return everything it logged until SIGTERM.
fn log_with_journal_stream(args: &[&str], journal_stream: impl Fn(u64, u64) -> String) -> String {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::fs::MetadataExt;
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two descriptors we pass; both are owned below.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh descriptors from pipe2, owned only here.
    let (read_end, write_end) = unsafe { (std::fs::File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let meta = std::fs::File::from(write_end.try_clone().unwrap()).metadata().unwrap();
    let port = free_port();
    let mut cmd = Command::new(rustcached_bin());
    cmd.args(["-p", &port.to_string(), "-l", "127.0.0.1", "-U", "0"]).args(args);
    if is_root() {
        cmd.args(["-u", "root"]);
    }
    cmd.env("JOURNAL_STREAM", journal_stream(meta.dev(), meta.ino())).env_remove("RUST_LOG");
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::from(write_end)).spawn().unwrap();
    drop(cmd); // the parent's copy of the write end goes with it
    let mut child = Kill(child);
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = { read_end }.read_to_string(&mut text);
        text
    });
    wait_port(port, &mut child.0);
    // a client that connects and leaves: per-connection lines at -vv
    drop(TcpStream::connect(("127.0.0.1", port)).unwrap());
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: signalling our child.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let _ = child.0.wait();
    reader.join().unwrap()
}

#[test]
fn journald_gets_priorities_and_no_timestamps() {
    let dir = tmpdir("journal");
    let pid = dir.join("missing-dir").join("rc.pid");
    // -S without a password file warns; a pid file in a missing directory is an error.
    let args = ["-vv", "-S", "-P", pid.to_str().unwrap()];
    let log = log_with_journal_stream(&args, |dev, ino| format!("{dev}:{ino}"));
    let lines: Vec<&str> = log.lines().collect();
    let with = |prefix: &str, text: &str| lines.iter().any(|l| l.starts_with(prefix) && l.contains(text));
    assert!(with("<3>", "Could not open the pid file"), "{log}");
    assert!(with("<4>", "SASL enabled but"), "{log}");
    assert!(with("<6>", "listening on tcp:127.0.0.1:"), "{log}");
    assert!(with("<7>", " new binary client connection"), "-vv traces are debug (-S: binary): {log}");
    for l in &lines {
        let rest = ["<3>", "<4>", "<6>", "<7>"].iter().find_map(|p| l.strip_prefix(p));
        let rest = rest.unwrap_or_else(|| panic!("no priority prefix: {l:?}"));
        assert!(!rest.starts_with('[') && !rest.starts_with("20"), "a timestamp or level tag: {l:?}");
    }
    // JOURNAL_STREAM inherited but stderr redirected elsewhere: plain lines.
    let log = log_with_journal_stream(&["-v"], |dev, ino| format!("{dev}:{}", ino + 1));
    assert!(log.lines().any(|l| l.contains("listening on")), "{log}");
    assert!(log.lines().all(|l| !l.starts_with('<')), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

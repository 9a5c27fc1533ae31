//! The binary as a process: flags, exit codes, signals, daemon mode, systemd readiness.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{expect, free_port, is_root, rustcached_bin, Server};

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(rustcached_bin()).args(args).stdin(Stdio::null()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

#[test]
fn help_and_version() {
    let (code, text) = run(&["-h"]);
    assert_eq!(code, 0);
    assert!(text.contains("--memory-limit") && text.contains("--max-reqs-per-event"));
    let (code, text) = run(&["-V"]);
    assert_eq!(code, 0);
    assert!(text.starts_with("rustcached 1.6.18"));
}

#[test]
fn bad_flags_exit_like_memcached() {
    let (code, text) = run(&["-o", "bogus"]);
    assert_eq!(code, 1);
    assert!(text.contains("Illegal suboption \"bogus\""));
    let (code, text) = run(&["-m", "2", "-I", "2m"]);
    assert_eq!(code, 64);
    assert!(text.contains("Cannot set item size limit higher than 1/2 of memory max."));
    let (code, _) = run(&["-p", "notaport"]);
    assert_ne!(code, 0);
    let (code, text) = run(&["-t", "0"]);
    assert_eq!(code, 1);
    assert!(text.contains("Number of threads must be greater than 0"));
}

#[test]
fn root_needs_dash_u() {
    if !is_root() {
        eprintln!("not root: skipped");
        return;
    }
    let port = free_port().to_string();
    let (code, text) = run(&["-p", &port, "-l", "127.0.0.1"]);
    assert_eq!(code, 64);
    assert!(text.contains("can't run as root without the -u switch"));
}

#[test]
fn sigterm_exits_zero_after_answering() {
    let srv = Server::start(&[]);
    let mut s = srv.connect();
    expect(&mut s, b"set a 0 0 1\r\nx\r\n", b"STORED\r\n");
    let status = srv.terminate();
    assert!(status.success(), "{status:?}");
}

#[test]
fn daemon_mode_writes_and_removes_the_pid_file() {
    let dir = std::env::temp_dir().join(format!("rustcached-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("rc.pid");
    let port = free_port();
    let mut cmd = Command::new(rustcached_bin());
    cmd.args(["-d", "-P", pidfile.to_str().unwrap(), "-p", &port.to_string(), "-l", "127.0.0.1", "-U", "0"]);
    if is_root() {
        cmd.args(["-u", "root"]);
    }
    let status = cmd.stdin(Stdio::null()).status().unwrap();
    assert!(status.success(), "the foreground parent exits 0");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pidfile.exists() {
        assert!(Instant::now() < deadline, "no pid file");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(50));
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    expect(&mut s, b"version\r\n", format!("VERSION {}\r\n", rustcached::config::VERSION).as_bytes());
    // SAFETY: signalling the daemon we started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while pidfile.exists() {
        assert!(Instant::now() < deadline, "pid file not removed on exit");
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn notify_socket_gets_ready_then_stopping() {
    let dir = std::env::temp_dir().join(format!("rustcached-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&path);
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let port = free_port();
    let mut cmd = Command::new(rustcached_bin());
    cmd.args(["-p", &port.to_string(), "-l", "127.0.0.1", "-U", "0"]).env("NOTIFY_SOCKET", &path);
    if is_root() {
        cmd.args(["-u", "root"]);
    }
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).unwrap();
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.contains("READY=1"), "{msg}");
    // ready means listening
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    // SAFETY: signalling our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let n = sock.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1"));
    assert!(child.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn memcstat_reads_our_stats() {
    common::needs(
        Command::new("memcstat").arg("--help").output().is_ok(),
        "memcstat (apt-get install libmemcached-tools)",
    );
    let srv = Server::start(&[]);
    let out = Command::new("memcstat").arg(format!("--servers=127.0.0.1:{}", srv.port)).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("curr_items: 0") && text.contains("version: 1.6.18-rustcached"), "{text}");
}

#[test]
fn sigterm_under_load_loses_no_acknowledged_reply() {
    use std::io::{Read, Write};
    let srv = Server::start(&[]);
    let mut s = srv.connect();
    let mut reader = s.try_clone().unwrap();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen2 = seen.clone();
    let done = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => return got,
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    seen2.store(got.len(), std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    });
    // keep the server busy with pipelined sets, then stop it mid-stream
    let batch: Vec<u8> = (0..2000).flat_map(|i| format!("set load{i} 0 0 5\r\nvalue\r\n").into_bytes()).collect();
    for _ in 0..5 {
        s.write_all(&batch).unwrap();
    }
    // Mid-stream: once replies flow (on a loaded machine the first may take a while).
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.load(std::sync::atomic::Ordering::Relaxed) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let pid = srv.child.id() as i32;
    // SAFETY: signalling our child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let _ = s.write_all(&batch); // may fail once the server is gone
    let got = done.join().unwrap();
    assert!(!got.is_empty());
    // every reply that reached us is whole: no reply was cut in the middle
    assert!(got.len() % b"STORED\r\n".len() == 0, "{} bytes", got.len());
    assert!(got.chunks(8).all(|c| c == b"STORED\r\n"));
    let status = srv.terminate();
    assert!(status.success(), "{status:?}");
}

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
    assert_eq!(text, format!("rustcached {} (memcached 1.6.18)\n", env!("CARGO_PKG_VERSION")));
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
    assert!(text.contains("curr_items: 0") && text.contains("version: 1.6.18\n"), "{text}");
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

/// Run any binary with the given arguments (plus `-u` when root); exit code and stderr, with the
/// program's own path replaced by `PROG` so memcached's and ours compare.
fn run_bin(bin: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(bin);
    if is_root() && !args.contains(&"-u") {
        cmd.args(["-u", "nobody"]);
    }
    let out = cmd.args(args).envs(env.iter().copied()).stdin(Stdio::null()).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).replace(bin, "PROG"))
}

#[test]
fn command_line_errors_are_getopts_with_memcacheds_exit_code() {
    let cases: &[(&[&str], &str)] = &[
        (&["-q"], "PROG: invalid option -- 'q'\nIllegal argument \"?\"\n"),
        (&["-vq"], "PROG: invalid option -- 'q'\nIllegal argument \"?\"\n"),
        (&["--bogus"], "PROG: unrecognized option '--bogus'\nIllegal argument \"?\"\n"),
        (&["-m"], "PROG: option requires an argument -- 'm'\nIllegal argument \"?\"\n"),
        (&["--memory-limit"], "PROG: option '--memory-limit' requires an argument\nIllegal argument \"?\"\n"),
        (
            &["--p=2"],
            "PROG: option '--p=2' is ambiguous; possibilities: '--port' '--pidfile' '--protocol'\nIllegal argument \"?\"\n",
        ),
    ];
    let bins = [rustcached_bin(), common::memcached_bin()];
    for bin in bins {
        for (args, want) in cases {
            assert_eq!(run_bin(bin, args, &[]), (1, want.to_string()), "{bin} {args:?}");
        }
    }
}

#[test]
fn unknown_user_exits_67_before_binding() {
    if !is_root() {
        eprintln!("not root: -u is ignored, skipped");
        return;
    }
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let bins = [rustcached_bin(), common::memcached_bin()];
    for bin in bins {
        // the port is taken too: the user is checked first, as memcached does
        let got = run_bin(bin, &["-u", "no-such-user-13", "-p", &port, "-l", "127.0.0.1"], &[]);
        assert_eq!(got, (67, "can't find the user no-such-user-13 to switch to\n".into()), "{bin}");
    }
}

#[test]
fn unambiguous_long_option_prefixes_are_accepted() {
    let srv = Server::start(&["--thr=3", "--max-r", "7", "--memory-l=32"]);
    let mut s = srv.connect();
    let settings = common::stats(&mut s, "settings");
    assert_eq!(settings["num_threads"], "3");
    assert_eq!(settings["reqs_per_event"], "7");
    assert_eq!(settings["maxbytes"], (32u64 << 20).to_string());
}

#[test]
fn bind_failure_names_the_port() {
    // Both wildcards taken: memcached tolerates one taken family, not both.
    let v4 = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    v4.bind(&"0.0.0.0:0".parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
    v4.listen(1).unwrap();
    let port = v4.local_addr().unwrap().as_socket().unwrap().port();
    let v6 = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::STREAM, None).unwrap();
    v6.set_only_v6(true).unwrap();
    let v6_ok = v6.bind(&format!("[::]:{port}").parse::<std::net::SocketAddr>().unwrap().into()).is_ok();
    let _ = v6.listen(1);
    let p = port.to_string();
    let bins = [rustcached_bin(), common::memcached_bin()];
    for bin in bins {
        if !v6_ok {
            break; // no IPv6 here: the v6 bind would not be tried the same way
        }
        let (code, text) = run_bin(bin, &["-p", &p, "-U", "0"], &[]);
        assert_eq!(code, 71, "{bin}: {text}");
        assert!(
            text.ends_with(&format!("failed to listen on TCP port {port}: Address already in use\n")),
            "{bin}: {text}"
        );
    }
    let (code, text) = run_bin(rustcached_bin(), &["-p", &p, "-U", "0", "-l", "0.0.0.0"], &[]);
    assert_eq!(code, 71);
    assert!(text.contains(&format!("port {port} of interface 0.0.0.0: Address already in use")), "{text}");
}

/// `-p -1 -U -1` with `MEMCACHED_PORT_FILENAME`: the kernel picks the ports and the file says
/// which, in memcached's format; what memcached's test harness (t/lib/MemcachedTest.pm) reads.
#[test]
fn ephemeral_ports_are_reported_in_the_port_file() {
    let dir = std::env::temp_dir().join(format!("rustcached-portfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // memcached writes the file after dropping root for `-u nobody`
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let bins = [rustcached_bin(), common::memcached_bin()];
    let mut shapes = Vec::new();
    for (i, bin) in bins.iter().enumerate() {
        let file = dir.join(format!("ports-{i}"));
        let mut cmd = Command::new(bin);
        if is_root() {
            cmd.args(["-u", "nobody"]);
        }
        cmd.args(["-p", "-1", "-U", "-1"]).env("MEMCACHED_PORT_FILENAME", &file);
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !file.exists() {
            assert!(Instant::now() < deadline, "{bin}: no port file");
            std::thread::sleep(Duration::from_millis(10));
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let mut shape = Vec::new();
        for line in text.lines() {
            let (kind, port) = line.split_once(": ").unwrap_or_else(|| panic!("{bin}: {line:?}"));
            let port: u16 = port.parse().unwrap_or_else(|_| panic!("{bin}: {line:?}"));
            assert_ne!(port, 0);
            if kind == "TCP INET" {
                let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut buf = [0u8; 64];
                use std::io::{Read, Write};
                s.write_all(b"version\r\n").unwrap();
                let n = s.read(&mut buf).unwrap();
                assert!(buf[..n].starts_with(b"VERSION "), "{bin}");
            }
            shape.push(kind.to_string());
        }
        assert!(!dir.join(format!("ports-{i}.lck")).exists());
        let _ = child.kill();
        let _ = child.wait();
        shapes.push(shape);
    }
    assert!(shapes[0].starts_with(&["TCP INET".to_string()]), "{:?}", shapes[0]);
    assert!(shapes[0].contains(&"UDP INET".to_string()), "{:?}", shapes[0]);
    if shapes.len() == 2 {
        assert_eq!(shapes[0], shapes[1], "same lines as memcached");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

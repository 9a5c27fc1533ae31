//! Test support: start the real `rustcached` binary (or Debian's memcached) on a free loopback
//! port, talk to it over TCP, and stop it when done.
#![allow(dead_code)]

pub mod golden;
pub mod hostile;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn rustcached_bin() -> &'static str {
    env!("CARGO_BIN_EXE_rustcached")
}

/// Debian's memcached, the oracle of the differential tests: a test that needs it fails
/// when it is missing (`.ci/run` installs it).
pub fn memcached_bin() -> &'static str {
    let found =
        ["/usr/bin/memcached", "/usr/local/bin/memcached"].into_iter().find(|p| std::path::Path::new(p).exists());
    found.expect("Debian's memcached is not installed: apt-get install memcached (.ci/run does)")
}

/// Fail (not skip) when a tool a test needs is missing.
pub fn needs(present: bool, what: &str) {
    assert!(present, "{what} is not installed (.ci/run installs it)");
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A port that was free a moment ago, and never handed out before in this test binary (tests
/// run in parallel threads, and the kernel readily gives a just-released port again).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Whether process `pid` itself listens on TCP `port` (Linux: a LISTEN row for the port in
/// `/proc/net/tcp{,6}` whose socket inode is one of the process's descriptors). Checking the
/// owner matters: two tests may be handed the same free port, and then the second server
/// fails to bind while the first one's socket makes the port look taken.
pub fn listening(pid: u32, port: u16) -> bool {
    let want = format!(":{port:04X}");
    let inodes: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .skip(1)
                .filter_map(|l| {
                    let cols: Vec<&str> = l.split_whitespace().collect();
                    (cols.len() > 9 && cols[1].ends_with(&want) && cols[3] == "0A")
                        .then(|| format!("socket:[{}]", cols[9]))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    if inodes.is_empty() {
        return false;
    }
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| inodes.iter().any(|i| l.to_string_lossy() == i.as_str())))
}

/// rustcached, plus Debian's memcached when installed, started with the same arguments: the
/// scenarios 1.6.18 defines run against both (memcached as the oracle).
pub fn servers(args: &[&str]) -> Vec<(&'static str, Server)> {
    let mut v = vec![("rustcached", Server::start(args))];
    v.push(("memcached", Server::start_bin(memcached_bin(), args)));
    v
}

/// A running server process, killed on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
}

impl Server {
    /// Start rustcached with extra memcached-style arguments.
    pub fn start(args: &[&str]) -> Server {
        Server::start_bin(rustcached_bin(), args)
    }

    /// Start any memcached-compatible binary on a free loopback port.
    pub fn start_bin(bin: &str, args: &[&str]) -> Server {
        Server::start_bin_env(bin, args, &[])
    }

    /// Start rustcached with extra arguments and environment variables.
    pub fn start_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start_bin_env(rustcached_bin(), args, env)
    }

    /// Start any memcached-compatible binary with extra environment variables.
    pub fn start_bin_env(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = Command::new(bin);
            cmd.args(["-p", &port.to_string(), "-U", "0", "-l", "127.0.0.1"]).args(args);
            cmd.envs(env.iter().copied());
            if is_root() && !args.contains(&"-u") {
                cmd.args(["-u", "root"]);
            }
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
            let mut child = cmd.spawn().expect("spawn server");
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // exited: port taken? try another
                }
                // Probe the kernel's socket table, not by connecting (a probe connection would
                // show up in the server's counters) nor by binding (a bound-but-not-listening
                // socket, or some client's ephemeral port, would pass for a started server).
                if listening(child.id(), port) && matches!(child.try_wait(), Ok(None)) {
                    return Server { child, port };
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("could not start {bin} {args:?}");
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    }

    /// Send SIGTERM and wait for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < deadline, "server did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Send `req` and read until exactly `expect.len()` bytes arrived (or time out); returns them.
pub fn roundtrip(s: &mut TcpStream, req: &[u8], expect_len: usize) -> Vec<u8> {
    s.write_all(req).unwrap();
    read_n(s, expect_len)
}

/// Read exactly `n` bytes (fewer on timeout or EOF).
pub fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut out = vec![0; n];
    let mut got = 0;
    while got < n {
        match s.read(&mut out[got..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => got += k,
        }
    }
    out.truncate(got);
    out
}

/// A binary request header + body.
pub fn binary_request(opcode: u8, opaque: u32, extras: &[u8], key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, opcode];
    p.extend_from_slice(&(key.len() as u16).to_be_bytes());
    p.push(extras.len() as u8);
    p.extend_from_slice(&[0, 0, 0]);
    p.extend_from_slice(&((extras.len() + key.len() + value.len()) as u32).to_be_bytes());
    p.extend_from_slice(&opaque.to_be_bytes());
    p.extend_from_slice(&[0; 8]);
    p.extend_from_slice(extras);
    p.extend_from_slice(key);
    p.extend_from_slice(value);
    p
}

/// Send `req` and assert the reply is exactly `expect`.
pub fn expect(s: &mut TcpStream, req: &[u8], expect: &[u8]) {
    let got = roundtrip(s, req, expect.len());
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expect),
        "reply to {:?}",
        String::from_utf8_lossy(req)
    );
}

/// Read until the reply ends with `END\r\n` (for stats and multi-line replies).
pub fn read_until_end(s: &mut impl Read) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while !out.ends_with(b"END\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `stats [sub]` as a map.
pub fn stats(s: &mut TcpStream, sub: &str) -> std::collections::BTreeMap<String, String> {
    let cmd = if sub.is_empty() { "stats\r\n".to_string() } else { format!("stats {sub}\r\n") };
    s.write_all(cmd.as_bytes()).unwrap();
    read_until_end(s)
        .lines()
        .filter_map(|l| l.strip_prefix("STAT "))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Wait until the server closes the connection (read returns 0) and return what it sent.
pub fn read_to_close(s: &mut TcpStream) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (out, true),
            Err(_) => return (out, false),
        }
    }
}

/// Fail (not skip) when `program args` does not succeed: the test needs `install`.
pub fn require(program: &str, args: &[&str], install: &str) {
    let ok = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "`{program} {}` failed: {install} (.ci/run installs it)", args.join(" "));
}

/// Start `bin` like `Server::start_bin` (free port, `-U 0 -l 127.0.0.1`, `-u root` as root,
/// then `args`, which may override those) and wait until it listens or exits: the server, or
/// its exit code and trimmed stderr (for the refusals memcached and rustcached must agree on).
pub fn try_start(bin: &str, args: &[&str]) -> Result<Server, (i32, String)> {
    let port = free_port();
    let err_path = std::env::temp_dir().join(format!("rc-try-start-{}-{port}.err", std::process::id()));
    let err = std::fs::File::create(&err_path).unwrap();
    let mut cmd = Command::new(bin);
    cmd.args(["-p", &port.to_string(), "-U", "0", "-l", "127.0.0.1"]);
    if is_root() && !args.contains(&"-u") {
        cmd.args(["-u", "root"]);
    }
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(err);
    let mut child = cmd.spawn().expect("spawn server");
    let deadline = Instant::now() + Duration::from_secs(5);
    let outcome = loop {
        if let Ok(Some(st)) = child.try_wait() {
            let text = std::fs::read_to_string(&err_path).unwrap_or_default();
            break Err((st.code().unwrap_or(-1), text.trim().to_string()));
        }
        if listening(child.id(), port) {
            break Ok(Server { child, port });
        }
        assert!(Instant::now() < deadline, "{bin} {args:?} neither listened nor exited");
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = std::fs::remove_file(&err_path);
    outcome
}

/// rustcached, and memcached when installed.
pub fn binaries() -> Vec<&'static str> {
    vec![rustcached_bin(), memcached_bin()]
}

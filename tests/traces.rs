//! `-vv`: the same session against rustcached and memcached 1.6.18 prints the same trace lines
//! (descriptor numbers aside): listeners, connections, each command and its reply.

mod common;

use std::collections::HashMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{expect, free_port, is_root};

/// Commands with their replies (the data of `set y` arrives in a second write).
const SESSION: &[(&[u8], &[u8])] = &[
    (b"get a\r\n", b"END\r\n"),
    (b"set a 5 100 3\r\nabc\r\n", b"STORED\r\n"),
    (b"get a b\r\n", b"VALUE a 5 3\r\nabc\r\nEND\r\n"),
    (b"add a 0 0 1\r\nx\r\n", b"NOT_STORED\r\n"),
    (b"delete a\r\n", b"DELETED\r\n"),
    (b"incr n 1\r\n", b"NOT_FOUND\r\n"),
    (b"set x 0 0 1 noreply\r\na\r\n", b""),
    (b"mg x v\r\n", b"VA 1\r\na\r\n"),
    (b"bogus\r\n", b"ERROR\r\n"),
    (b"set y 0 0 2\r\n", b""),
    (b"hi\r\n", b"STORED\r\n"),
    (b"version\r\n", b"VERSION 1.6.18\r\n"),
];

/// The trace lines of one server for the session, descriptors renamed in order of appearance.
fn traces(bin: &str) -> Vec<String> {
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.args(["-p", &port.to_string(), "-U", "0", "-l", "127.0.0.1", "-vv"]).env_remove("RUST_LOG");
    if is_root() {
        cmd.args(["-u", "root"]);
    }
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !common::listening(child.id(), port) {
        assert!(Instant::now() < deadline, "{bin} did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for (req, reply) in SESSION {
        if reply.is_empty() {
            std::io::Write::write_all(&mut s, req).unwrap();
            std::thread::sleep(Duration::from_millis(50));
        } else {
            expect(&mut s, req, reply);
        }
    }
    expect(&mut s, b"quit\r\n", b"");
    let _ = common::read_to_close(&mut s);
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: signalling our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let _ = child.wait();
    let mut names: HashMap<String, String> = HashMap::new();
    err.lines()
        .filter(|l| l.starts_with('<') || l.starts_with('>') || l.contains(": Client using"))
        .filter(|l| !l.contains("send buffer was"))
        .map(|l| {
            let (head, rest) = l.split_at(l.find([' ', ':']).unwrap());
            let (mark, fd) = head.split_at(if head.starts_with(['<', '>']) { 1 } else { 0 });
            let n = names.len();
            let name = names.entry(fd.to_string()).or_insert_with(|| format!("fd{n}")).clone();
            format!("{mark}{name}{rest}")
        })
        .collect()
}

#[test]
fn dash_vv_prints_memcacheds_lines() {
    let ours = traces(common::rustcached_bin());
    for want in [
        "<fd0 server listening (auto-negotiate)",
        "<fd1 new auto-negotiating client connection",
        "fd1: Client using the ascii protocol",
        "<fd1 get a b",
        ">fd1 sending key a",
        ">fd1 END",
        ">fd1 NOREPLY STORED",
        "<fd1 mg x v",
        "<fd1 connection closed.",
    ] {
        assert!(ours.iter().any(|l| l == want), "{want:?} missing in {ours:#?}");
    }
    assert_eq!(ours, traces(common::memcached_bin()), "rustcached's, then memcached's");
}

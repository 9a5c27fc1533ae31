//! ASCII auth (`-Y`) beyond the recorded conversations (tests/cases/asciiauth.cases): startup
//! with good and bad files and conflicting flags, the 16 KB login block and 2 KB junk limits,
//! what memcached's file reader makes of odd files, and reloading on SIGHUP. Each runs against
//! rustcached and, when installed, memcached 1.6.18, and asserts the same outcome for both.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use common::{binaries, expect, read_to_close, try_start, Server};

/// A file under the temp dir, unique to this test process and `name`.
fn authfile(name: &str, text: &[u8]) -> PathBuf {
    let p = std::env::temp_dir().join(format!("rc-asciiauth-{}-{name}", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}

fn start(bin: &str, args: &[&str]) -> Server {
    try_start(bin, args).unwrap_or_else(|e| panic!("{bin} {args:?} did not start: {e:?}"))
}

fn login(s: &mut TcpStream, user: &str, pass: &str) -> Vec<u8> {
    let token = format!("{user} {pass}");
    let req = format!("set any 0 0 {}\r\n{token}\r\n", token.len());
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap_or(0);
    buf[..n].to_vec()
}

const STORED: &[u8] = b"STORED\r\n";
const FAILURE: &[u8] = b"CLIENT_ERROR authentication failure\r\n";

/// Whether the server sent nothing and kept the connection open for a moment.
fn silent_and_open(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut buf = [0u8; 64];
    let quiet = matches!(s.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    quiet
}

#[test]
fn bad_files_and_conflicting_flags_are_refused() {
    let missing = std::env::temp_dir().join(format!("rc-asciiauth-{}-missing", std::process::id()));
    let malformed = ["nocolon\n", "\n", "a:b\n\nc:d\n", "# comment\na:b\n"]
        .iter()
        .enumerate()
        .map(|(i, t)| authfile(&format!("malformed{i}"), t.as_bytes()))
        .collect::<Vec<_>>();
    let good = authfile("good-for-flags", b"foo:bar\n");
    let good = good.to_str().unwrap();
    for bin in binaries() {
        let m = missing.to_str().unwrap();
        assert_eq!(
            try_start(bin, &["-Y", m]).err(),
            Some((
                1,
                format!("Could not open authfile [{m}] for reading, error No such file or directory: No such file or directory")
            )),
            "{bin}"
        );
        for p in &malformed {
            let p = p.to_str().unwrap();
            assert_eq!(
                try_start(bin, &["-Y", p]).err(),
                Some((1, format!("Authfile [{p}] has a malformed entry. Should be 'user:password'"))),
                "{bin} {p}"
            );
        }
        let binary = "ERROR: You cannot allow the BINARY protocol while using ascii authentication tokens.";
        for b in ["binary", "auto"] {
            assert_eq!(try_start(bin, &["-Y", good, "-B", b]).err(), Some((64, binary.to_string())), "{bin} -B {b}");
        }
        let udp = "Cannot use UDP with ascii authentication enabled (-U 0 to disable)";
        assert_eq!(try_start(bin, &["-Y", good, "-U", "0", "-U", "11399"]).err(), Some((64, udp.to_string())), "{bin}");
        let srv = start(bin, &["-Y", good, "-B", "ascii"]);
        assert_eq!(login(&mut srv.connect(), "foo", "bar"), STORED, "{bin}");
    }
    for p in malformed {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn odd_files_read_as_memcached_reads_them() {
    let empty = authfile("empty", b"");
    // the one-line file without a final newline loses its last byte (memcached's fgets sizing)
    let no_newline = authfile("no-newline", b"a:bc");
    let nine = authfile("nine", b"u1:p1\nu2:p2\nu3:p3\nu4:p4\nu5:p5\nu6:p6\nu7:p7\nu8:p8\nu9:p9\n");
    let dup = authfile("dup", b"a:one\na:two\nc:pass:with:colons\r\n");
    let dir = std::env::temp_dir();
    for bin in binaries() {
        let srv = start(bin, &["-Y", empty.to_str().unwrap()]);
        assert_eq!(login(&mut srv.connect(), "foo", "bar"), FAILURE, "{bin}: an empty file has no users");
        let srv = start(bin, &["-Y", dir.to_str().unwrap()]);
        assert_eq!(login(&mut srv.connect(), "foo", "bar"), FAILURE, "{bin}: a directory reads as empty");
        let srv = start(bin, &["-Y", no_newline.to_str().unwrap()]);
        assert_eq!(login(&mut srv.connect(), "a", "bc"), FAILURE, "{bin}");
        assert_eq!(login(&mut srv.connect(), "a", "b"), STORED, "{bin}");
        let srv = start(bin, &["-Y", nine.to_str().unwrap()]);
        assert_eq!(login(&mut srv.connect(), "u8", "p8"), STORED, "{bin}");
        assert_eq!(login(&mut srv.connect(), "u9", "p9"), FAILURE, "{bin}: only 8 entries are read");
        let srv = start(bin, &["-Y", dup.to_str().unwrap()]);
        assert_eq!(login(&mut srv.connect(), "a", "one"), STORED, "{bin}");
        assert_eq!(login(&mut srv.connect(), "a", "two"), STORED, "{bin}: every entry of a user counts");
        assert_eq!(login(&mut srv.connect(), "c", "pass:with:colons"), STORED, "{bin}");
    }
    for p in [empty, no_newline, nine, dup] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn login_block_and_junk_limits() {
    let file = authfile("limits", b"foo:bar\n");
    for bin in binaries() {
        let srv = start(bin, &["-Y", file.to_str().unwrap()]);
        // the largest block memcached's 16 KB read buffer holds
        let mut s = srv.connect();
        let mut req = b"set k 0 0 16382\r\nfoo bar".to_vec();
        req.resize(req.len() + 16382 - 7, b' ');
        req.extend_from_slice(b"\r\n");
        expect(&mut s, &req, STORED);
        // one byte more: nothing until the buffer would be full, then closed
        let mut s = srv.connect();
        s.write_all(b"set k 0 0 16383\r\nfoo bar").unwrap();
        assert!(silent_and_open(&mut s), "{bin}");
        let _ = s.write_all(&[b' '; 16384]);
        assert!(read_to_close(&mut s).1, "{bin}: closed");
        // a first line of 2048 bytes without a newline waits; one more byte closes
        let mut s = srv.connect();
        s.write_all(&[b'x'; 2048]).unwrap();
        assert!(silent_and_open(&mut s), "{bin}");
        s.write_all(b"x").unwrap();
        assert_eq!(read_to_close(&mut s), (Vec::new(), true), "{bin}");
    }
    let _ = std::fs::remove_file(file);
}

#[test]
fn sighup_reloads_the_file_and_a_bad_file_keeps_the_old_users() {
    for (i, bin) in binaries().into_iter().enumerate() {
        let file = authfile(&format!("reload{i}"), b"foo:bar\n");
        let srv = start(bin, &["-Y", file.to_str().unwrap()]);
        let hup = || {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(srv.child.id() as i32, libc::SIGHUP) };
            std::thread::sleep(Duration::from_millis(1500)); // memcached reloads on its next clock tick
        };
        // a connection that logged in stays in across reloads
        let mut kept = srv.connect();
        assert_eq!(login(&mut kept, "foo", "bar"), STORED);
        std::fs::write(&file, b"new:pw\n").unwrap();
        hup();
        assert_eq!(login(&mut srv.connect(), "new", "pw"), STORED, "{bin}");
        assert_eq!(login(&mut srv.connect(), "foo", "bar"), FAILURE, "{bin}");
        std::fs::write(&file, b"nocolon\n").unwrap();
        hup();
        assert_eq!(login(&mut srv.connect(), "new", "pw"), STORED, "{bin}: a malformed file keeps the users");
        std::fs::remove_file(&file).unwrap();
        hup();
        assert_eq!(login(&mut srv.connect(), "new", "pw"), STORED, "{bin}: a missing file keeps the users");
        expect(&mut kept, b"mn\r\n", b"MN\r\n");
    }
}

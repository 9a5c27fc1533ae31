//! `-vv`: the same session against rustcached and memcached 1.6.18 prints the same trace lines
//! (descriptor numbers aside): listeners, connections, each command and its reply, over TCP
//! and UDP; and the slab classes at startup, in memcached's format.

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
    let err = vv_stderr(bin, false, |port, _| {
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
    });
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

/// Start `bin` at `-vv` (with a UDP port if `udp`, and one worker thread then, as UDP sockets
/// are traced once per thread), let `drive` talk to it (TCP and UDP ports given), stop it and
/// return its stderr.
fn vv_stderr(bin: &str, udp: bool, drive: impl FnOnce(u16, u16)) -> String {
    let port = free_port();
    let udp_port = if udp { std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port() } else { 0 };
    let mut cmd = Command::new(bin);
    cmd.args(["-p", &port.to_string(), "-U", &udp_port.to_string(), "-l", "127.0.0.1", "-vv"]).env_remove("RUST_LOG");
    if udp {
        cmd.args(["-t", "1"]);
    }
    if is_root() {
        cmd.args(["-u", "root"]);
    }
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !common::listening(child.id(), port) {
        assert!(Instant::now() < deadline, "{bin} did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    drive(port, udp_port);
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: signalling our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let _ = child.wait();
    err
}

/// Commands over UDP are traced as over TCP (no "Client using" line: a UDP socket negotiates
/// nothing).
#[test]
fn dash_vv_traces_udp_requests() {
    let session = |_, udp: u16| {
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        u.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 2048];
        for (id, body) in [&b"get a\r\n"[..], b"set u 0 0 1\r\nx\r\n", b"get u\r\n", b"bogus\r\n"].iter().enumerate() {
            let frame = [&(id as u16).to_be_bytes()[..], &[0, 0, 0, 1, 0, 0], body].concat();
            u.send_to(&frame, ("127.0.0.1", udp)).unwrap();
            u.recv_from(&mut buf).unwrap();
        }
    };
    let lines = |bin: &str| -> Vec<String> {
        vv_stderr(bin, true, session)
            .lines()
            .filter(|l| l.starts_with(['<', '>']) || l.contains(": Client using"))
            .filter(|l| !l.contains("server listening") && !l.contains("send buffer was"))
            .map(|l| l.split_once(' ').map_or(l.to_string(), |(head, rest)| format!("{}fd {rest}", &head[..1])))
            .collect()
    };
    let ours = lines(common::rustcached_bin());
    assert!(ours.contains(&"<fd get a".to_string()) && ours.contains(&">fd sending key u".to_string()), "{ours:#?}");
    assert_eq!(ours, lines(common::memcached_bin()), "rustcached's, then memcached's");
}

/// `slab class   1: chunk size        96 perslab   10922`, one line per class before the
/// listeners: memcached's format, describing our own classes (whose sizes differ).
#[test]
fn dash_vv_prints_the_slab_classes() {
    let classes = |bin: &str| -> Vec<(usize, usize, usize)> {
        let err = vv_stderr(bin, false, |_, _| {});
        let listening = err.lines().position(|l| l.contains("server listening")).unwrap();
        err.lines()
            .enumerate()
            .filter(|(_, l)| l.starts_with("slab class "))
            .map(|(i, l)| {
                assert!(i < listening, "{bin}: {l} after the listeners");
                let rest = l.strip_prefix("slab class ").unwrap();
                let (id, rest) = rest.split_once(": chunk size ").unwrap();
                let (size, per) = rest.split_once(" perslab ").unwrap();
                assert_eq!(id.len(), 3, "{bin}: {l}");
                assert_eq!(size.len(), 9, "{bin}: {l}");
                assert_eq!(per.len(), 7, "{bin}: {l}");
                (id.trim().parse().unwrap(), size.trim().parse().unwrap(), per.trim().parse().unwrap())
            })
            .collect()
    };
    for bin in common::binaries() {
        let c = classes(bin);
        assert!(c.len() > 30, "{bin}: {c:?}");
        for (i, w) in c.windows(2).enumerate() {
            assert!(w[0].0 == i + 1 && w[1].0 == i + 2 && w[0].1 < w[1].1, "{bin}: {c:?}");
        }
        assert!(c.iter().all(|&(_, size, per)| per == (1 << 20) / size), "{bin}: {c:?}");
    }
}

/// Binary requests of a `-vv` session, each followed by a pause for its replies; the value of
/// the `split` request arrives in a second write. memcached's handlers print their own lines
/// (`<fd GET k`, `Deleting k`, `incr k 1, 0, -1`, `Value len is 1`), so every kind is here:
/// hits and misses, quiet variants, a stats dump (not dumped per packet), an error reply, a
/// value too large (its reply held until the body is swallowed), a value large enough to be
/// sent from the item, and a malformed request that closes the connection.
fn binary_session() -> Vec<(Vec<u8>, Option<usize>)> {
    use common::binary_request as req;
    let store = |flags: u32| [flags.to_be_bytes(), 0u32.to_be_bytes()].concat();
    let arith = |d: u64, i: u64, e: u32| [&d.to_be_bytes()[..], &i.to_be_bytes(), &e.to_be_bytes()].concat();
    let exp = 100u32.to_be_bytes();
    let big = vec![b'b'; 20_000];
    let huge = vec![b'h'; 2_000_000];
    let split = req(0x01, 30, &store(0), b"s", b"two writes");
    vec![
        (req(0x01, 1, &store(5), b"k", b"hello"), None),
        (req(0x00, 2, &[], b"k", &[]), None),
        (req(0x00, 3, &[], b"nope", &[]), None),
        (req(0x0c, 4, &[], b"k", &[]), None),
        (req(0x02, 5, &store(0), b"k", b"x"), None),
        (req(0x03, 6, &store(0), b"k", b"y"), None),
        (req(0x0e, 7, &[], b"k", b"z"), None),
        (req(0x0f, 8, &[], b"missing", b"z"), None),
        (req(0x05, 9, &arith(1, 10, 0), b"n", &[]), None),
        (req(0x05, 10, &arith(5, 10, 0), b"n", &[]), None),
        (req(0x06, 11, &arith(1, 0, 0xffff_ffff), b"k", &[]), None),
        (req(0x1c, 12, &exp, b"k", &[]), None),
        (req(0x1d, 13, &exp, b"k", &[]), None),
        (req(0x1e, 14, &exp, b"nope", &[]), None),
        (req(0x11, 15, &store(0), b"q", b"quiet"), None),
        (req(0x09, 16, &[], b"nope", &[]), None),
        (req(0x0d, 17, &[], b"q", &[]), None),
        (req(0x10, 18, &[], &[], &[]), None),
        (req(0x14, 19, &[], b"q", &[]), None),
        (req(0x14, 20, &[], b"q", &[]), None),
        (req(0x04, 21, &[], b"q", &[]), None),
        (req(0x0a, 22, &[], &[], &[]), None),
        (req(0x0b, 23, &[], &[], &[]), None),
        (req(0x55, 24, &[], &[], &[]), None),
        (req(0x01, 25, &store(0), b"big", &big), None),
        (req(0x0c, 26, &[], b"big", &[]), None),
        (req(0x01, 27, &store(0), b"huge", &huge), None),
        (req(0x08, 28, &[], &[], &[]), None),
        (split, Some(24 + 8 + 1 + 3)),
        (req(0x00, 31, &[], &[b'x'; 300], &[]), None),
    ]
}

/// The `-vv` lines of one server for `binary_session`, from the connection's first line to
/// its last, descriptors renamed.
fn binary_traces(bin: &str) -> Vec<String> {
    let err = vv_stderr(bin, false, |port, _| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let mut sink = vec![0u8; 1 << 16];
        let mut drain = |s: &mut std::net::TcpStream| while matches!(s.read(&mut sink), Ok(n) if n > 0) {};
        for (req, split) in binary_session() {
            let (first, rest) = req.split_at(split.unwrap_or(req.len()));
            std::io::Write::write_all(&mut s, first).unwrap();
            if !rest.is_empty() {
                std::thread::sleep(Duration::from_millis(50));
                drain(&mut s);
                std::io::Write::write_all(&mut s, rest).unwrap();
            }
            drain(&mut s);
        }
    });
    // (our own log lines, such as the startup summary, are `[LEVEL]`-prefixed and may come
    // from another thread at any point)
    let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with('[') && !l.contains("send buffer was")).collect();
    let start = lines.iter().position(|l| l.ends_with("client connection")).expect("a connection line");
    let fd = lines[start][1..].split(' ').next().unwrap().to_string();
    let closed = format!("<{fd} connection closed.");
    let end = lines[start..].iter().position(|l| *l == closed).expect("the connection closed") + 1;
    lines[start..start + end]
        .iter()
        .map(|l| {
            let l = l.replacen(&format!("<{fd} "), "<fd ", 1).replacen(&format!(">{fd} "), ">fd ", 1);
            let l = l.replacen(&format!("{fd}: "), "fd: ", 1);
            match l.strip_suffix(&format!("close connection {fd}")) {
                Some(head) => format!("{head}close connection fd"),
                None => l,
            }
        })
        .collect()
}

#[test]
fn dash_vv_traces_binary_requests_as_memcached() {
    let ours = binary_traces(common::rustcached_bin());
    for want in [
        "fd: Client using the binary protocol",
        "<fd Read binary protocol data:",
        "<fd SET k Value len is 5",
        ">fd Writing an error: Not found",
        ">fd Writing bin response:",
        "Deleting q",
        "incr k 1, 0, -1",
        "<fd STATS ",
        "Protocol error (opcode 00), close connection fd",
    ] {
        assert!(ours.iter().any(|l| l == want), "{want:?} missing in {ours:#?}");
    }
    let theirs = binary_traces(common::memcached_bin());
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(a, b, "line {i}: rustcached's, then memcached's; before it: {:#?}", &ours[i.saturating_sub(12)..i]);
    }
    assert_eq!(ours.len(), theirs.len(), "rustcached's {ours:#?}, memcached's {theirs:#?}");
}

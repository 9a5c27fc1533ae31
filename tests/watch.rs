//! `watch`: the same session against rustcached and memcached 1.6.18 must produce the same
//! log lines (timestamps, ids, descriptors and client ports aside), and a watcher's buffer is
//! bounded: lines are dropped and reported as `skipped=N`. A watching connection behaves as
//! memcached's: it answers nothing, the idle timeout leaves it alone, and `watch` over UDP
//! gets no reply.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

use common::{expect, servers, stats, Server};

/// Commands whose log lines are compared (replies checked loosely: both servers must agree).
const SESSION: &[&[u8]] = &[
    b"get a\r\n",
    b"set a 5 100 3\r\nabc\r\n",
    b"get a b\r\n",
    b"add a 0 0 1\r\nx\r\n",
    b"cas a 0 0 1 999\r\nx\r\n",
    b"gets a\r\n",
    b"touch a 10\r\n",
    b"delete a\r\n",
    b"delete zz\r\n",
    b"incr n 1\r\n",
    b"set k# 0 0 1 noreply\r\nx\r\n",
    b"mg k# v\r\n",
    b"mg nope v\r\n",
    b"ms m 2\r\nhi\r\n",
    b"md m\r\n",
    b"append k# 0 0 1\r\ny\r\n",
    b"gat 10 k#\r\n",
    b"replace zz 0 0 1\r\nx\r\n",
    b"quit\r\n",
];

/// A log line with what differs between runs masked.
fn normalize(line: &str) -> String {
    line.split(' ')
        .map(|f| match f.split_once('=') {
            Some(("ts", v)) => {
                assert!(
                    v.split_once('.').is_some_and(|(s, u)| s.parse::<u64>().is_ok() && u.parse::<u32>().is_ok()),
                    "{line}"
                );
                "ts=*".to_string()
            }
            Some((k @ ("gid" | "cfd" | "rport"), v)) => {
                assert!(v.parse::<u64>().is_ok(), "{line}");
                format!("{k}=*")
            }
            _ => f.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn session_log(srv: &Server) -> Vec<String> {
    let mut w = srv.connect();
    w.write_all(b"watch fetchers mutations connevents\r\n").unwrap();
    let mut r = BufReader::new(w.try_clone().unwrap());
    let mut ok = String::new();
    r.read_line(&mut ok).unwrap();
    assert_eq!(ok, "OK\r\n");
    let mut c = srv.connect();
    c.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    for cmd in SESSION {
        c.write_all(cmd).unwrap();
        let _ = common::read_n(&mut c, 1 << 16); // whatever the reply, until quiet
    }
    drop(c);
    // memcached's logger merges its threads' buffers now and then: let the close arrive first
    std::thread::sleep(Duration::from_millis(300));
    // an HTTP request: the server closes the connection (reason=error)
    let mut h = srv.connect();
    h.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let _ = common::read_to_close(&mut h);
    w.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut lines = Vec::new();
    let mut line = String::new();
    while r.read_line(&mut line).is_ok_and(|n| n > 0) {
        lines.push(normalize(line.trim_end()));
        line.clear();
    }
    lines
}

#[test]
fn session_logs_like_memcached() {
    let all = servers(&[]);
    let logs: Vec<(&str, Vec<String>)> = all.iter().map(|(name, srv)| (*name, session_log(srv))).collect();
    let ours = &logs[0].1;
    assert!(ours.first().is_some_and(|l| l.contains("type=conn_new rip=127.0.0.1 rport=* transport=tcp")), "{ours:#?}");
    assert!(
        ours.contains(&"ts=* gid=* type=item_store key=a status=stored cmd=set ttl=100 clsid=1 cfd=* size=3".into())
    );
    assert!(ours.contains(&"ts=* gid=* type=item_get key=k%23 status=found clsid=1 cfd=* size=1".into()));
    assert!(ours.iter().any(|l| l.contains("type=conn_close") && l.ends_with("reason=error cfd=*")), "{ours:#?}");
    if let Some((_, theirs)) = logs.get(1) {
        let diff: Vec<String> = (0..ours.len().max(theirs.len()))
            .filter(|&i| ours.get(i) != theirs.get(i))
            .map(|i| format!("{i}: ours {:?}\n   memcached {:?}", ours.get(i), theirs.get(i)))
            .collect();
        assert!(diff.is_empty(), "{}", diff.join("\n"));
    }
}

#[test]
fn watch_replies_and_stats_as_memcached() {
    for (name, srv) in servers(&[]) {
        let mut s = srv.connect();
        expect(&mut s, b"watch deletions\r\n", b"ERROR\r\n");
        expect(&mut s, b"watch nonsense\r\n", b"ERROR\r\n");
        let mut w = srv.connect();
        expect(&mut w, b"watch evictions\r\n", b"OK\r\n");
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(stats(&mut s, "")["log_watchers"], "1", "{name}");
        let conns = stats(&mut s, "conns");
        let watch_addr = format!("tcp:{}", w.local_addr().unwrap());
        let fd =
            conns.iter().find(|(k, v)| k.ends_with(":addr") && **v == watch_addr).unwrap().0.split(':').next().unwrap();
        assert_eq!(conns[&format!("{fd}:state")], "conn_watch", "{name}");
        drop(w);
        std::thread::sleep(Duration::from_millis(1200));
        assert_eq!(stats(&mut s, "")["log_watchers"], "0", "{name}: a closed watcher is forgotten");
    }
    for (_, srv) in servers(&[]) {
        // replies to commands before `watch` in the same batch come first
        expect(&mut srv.connect(), b"get x\r\nwatch\r\n", b"END\r\nOK\r\n");
    }
    for (name, srv) in servers(&["-W"]) {
        expect(&mut srv.connect(), b"watch\r\n", b"CLIENT_ERROR watch commands not allowed\r\n");
        eprintln!("{name}: ok");
    }
}

#[test]
fn a_slow_watcher_loses_lines_and_is_told_how_many() {
    let srv = Server::start(&["-o", "watcher_logbuf_size=8"]);
    let mut w = srv.connect();
    expect(&mut w, b"watch\r\n", b"OK\r\n");
    let mut c = srv.connect();
    // far more than an 8 KB buffer and the socket buffers hold, while the watcher reads nothing
    let key = "k".repeat(200);
    let batch: String = (0..500).map(|i| format!("get {key}{i}\r\n")).collect();
    for _ in 0..100 {
        c.write_all(batch.as_bytes()).unwrap();
        let _ = common::read_n(&mut c, 500 * 5);
    }
    let mut r = BufReader::new(w);
    let mut line = String::new();
    let mut seen = 0;
    loop {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "watcher closed after {seen} lines");
        seen += 1;
        if line.starts_with("skipped=") {
            let n: u64 = line.trim_end().strip_prefix("skipped=").unwrap().parse().unwrap();
            assert!(n > 0);
            break;
        }
        if seen % 100 == 0 {
            expect(&mut c, b"get x\r\n", b"END\r\n"); // new lines let the note through
        }
    }
    line.clear();
    r.read_line(&mut line).unwrap();
    assert!(line.contains(" type=item_get "), "a real line follows the note: {line}");
    let mut s = srv.connect();
    assert_ne!(stats(&mut s, "")["log_watcher_skipped"], "0");
}

/// Read watcher lines until one satisfies `done` (panics after `limit` lines or on a timeout).
fn read_lines_until(r: &mut impl BufRead, limit: usize, done: impl Fn(&str) -> bool) -> String {
    let mut line = String::new();
    for _ in 0..limit {
        line.clear();
        assert!(r.read_line(&mut line).is_ok_and(|n| n > 0), "watcher stream ended or went quiet");
        if done(&line) {
            return line;
        }
    }
    panic!("no such line within {limit} lines");
}

/// A value that arrives over several reads is stored like one that comes whole, and logged
/// alike: memcached's t/watcher.t waited forever for this line whenever its 11,000-byte `set`
/// happened to arrive in two reads.
#[test]
fn a_value_arriving_in_pieces_logs_its_store() {
    for (name, srv) in servers(&[]) {
        let mut w = srv.connect();
        expect(&mut w, b"watch mutations\r\n", b"OK\r\n");
        let mut c = srv.connect();
        let value = "B".repeat(11000);
        c.write_all(format!("set big 0 0 11000\r\n{}", &value[..100]).as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        c.write_all(format!("{}\r\n", &value[100..]).as_bytes()).unwrap();
        assert_eq!(common::read_n(&mut c, 8), b"STORED\r\n", "{name}");
        let mut r = BufReader::new(w);
        let line = read_lines_until(&mut r, 10, |l| l.contains("type=item_store"));
        assert!(
            line.contains(" key=big status=stored cmd=set ttl=0 ") && line.ends_with(" size=11000\n"),
            "{name}: {line}"
        );
    }
}

/// A watcher whose buffer filled while it read nothing sees a line logged once it has read
/// part of its backlog: the server makes room by sending what the socket now takes before it
/// gives up on the line (memcached's logger flushes a full watcher first), and the line comes
/// after a `skipped=N` note. t/watcher.t reads 100 lines, causes one, and repeats: when that
/// line was dropped as well, the reader could drain everything and wait forever for the note.
/// Over a UNIX socket, as the Perl harness connects by default.
#[test]
fn a_watcher_catching_up_sees_new_lines() {
    use std::os::unix::net::UnixStream;
    for (i, bin) in common::binaries().into_iter().enumerate() {
        let path = std::env::temp_dir().join(format!("rc-watch-{}-{i}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut cmd = std::process::Command::new(bin);
        cmd.args(["-s", path.to_str().unwrap(), "-o", "watcher_logbuf_size=8"]);
        if common::is_root() {
            cmd.args(["-u", "root"]);
        }
        let child = cmd.stderr(std::process::Stdio::null()).spawn().unwrap();
        let _server = KillOnDrop(child, path.clone());
        let connect = || {
            for _ in 0..500 {
                if let Ok(s) = UnixStream::connect(&path) {
                    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                    return s;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            panic!("{bin}: no socket at {}", path.display());
        };
        let mut w = connect();
        w.write_all(b"watch\r\n").unwrap();
        let mut r = BufReader::new(w.try_clone().unwrap());
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert_eq!(line, "OK\r\n");
        let mut c = connect();
        let mut get = |key: &str| {
            c.write_all(format!("get {key}\r\n").as_bytes()).unwrap();
            let mut end = [0u8; 5];
            c.read_exact(&mut end).unwrap();
            assert_eq!(&end, b"END\r\n");
        };
        let spacer = "X".repeat(180);
        for i in 0..20_000 {
            get(&format!("foo{i}{spacer}")); // one at a time: the watcher's socket and buffer fill
        }
        std::thread::sleep(Duration::from_millis(300));
        for _ in 0..50 {
            line.clear();
            r.read_line(&mut line).unwrap();
        }
        get("foo");
        let mut seen = 0;
        loop {
            line.clear();
            assert!(r.read_line(&mut line).is_ok_and(|n| n > 0), "{bin}: the new line never came ({seen} lines read)");
            seen += 1;
            if line.contains(" type=item_get key=foo status=not_found ") {
                break;
            }
        }
    }
}

/// A server started here, killed (and its socket file removed) even when the test fails.
struct KillOnDrop(std::process::Child, std::path::PathBuf);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_file(&self.1);
    }
}

/// Read what arrives on `s` until it has been quiet for `quiet`.
fn read_quiet(s: &mut std::net::TcpStream, quiet: Duration) -> String {
    s.set_read_timeout(Some(quiet)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            got.extend_from_slice(b"<EOF>");
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// After `watch` the connection is the log's: what the client sends on it is read and
/// ignored (memcached hands it to its logger thread, which never parses it), so commands, even
/// an HTTP request that would close another connection, get no answer; and the idle timeout
/// does not close it (memcached's idle check skips `conn_watch`), while an idle client is
/// closed with `reason=idle_timeout`.
#[test]
fn a_watcher_answers_nothing_and_outlives_the_idle_timeout() {
    for (name, srv) in servers(&["-o", "idle_timeout=2"]) {
        let mut w = srv.connect();
        expect(&mut w, b"watch connevents\r\n", b"OK\r\n");
        let mut idle = srv.connect();
        expect(&mut idle, b"version\r\n", b"VERSION 1.6.18\r\n");
        w.write_all(b"version\r\nget a\r\nGET / HTTP/1.1\r\n").unwrap();
        let mut log = read_quiet(&mut w, Duration::from_millis(500));
        assert!(!log.contains("VERSION") && !log.contains("END") && !log.contains("<EOF>"), "{name}: {log}");
        let deadline = std::time::Instant::now() + Duration::from_secs(8);
        while !log.contains("reason=idle_timeout") && std::time::Instant::now() < deadline {
            log.push_str(&read_quiet(&mut w, Duration::from_millis(500)));
        }
        assert!(!log.contains("<EOF>"), "{name}: the watcher was closed: {log}");
        let idle_port = idle.local_addr().unwrap().port();
        assert!(
            log.lines().any(|l| l.contains("type=conn_close")
                && l.contains(&format!(" rport={idle_port} "))
                && l.contains(" reason=idle_timeout ")),
            "{name}: {log}"
        );
        let (got, closed) = common::read_to_close(&mut idle);
        assert!(closed && got.is_empty(), "{name}");
        let st = stats(&mut srv.connect(), "");
        assert_eq!(st["log_watchers"], "1", "{name}");
        assert_eq!(st["idle_kicks"], "1", "{name}: only the idle client");
    }
}

/// A storage command refused when its line arrives (too large) still logs an `item_store`
/// line, with no size and no TTL. 1.6.18 passes that line's arguments shifted, so its `clsid`
/// is the connection's descriptor and its `cfd` garbage: both are masked here.
#[test]
fn a_refused_store_logs_item_store() {
    for (name, srv) in servers(&[]) {
        let mut w = srv.connect();
        expect(&mut w, b"watch mutations\r\n", b"OK\r\n");
        let mut c = srv.connect();
        c.write_all(b"set big 0 100 2000000\r\n").unwrap();
        c.write_all(&vec![b'x'; 2_000_000]).unwrap();
        c.write_all(b"\r\n").unwrap();
        assert_eq!(common::read_n(&mut c, 41), b"SERVER_ERROR object too large for cache\r\n"[..41].to_vec());
        let mut r = BufReader::new(w);
        let line = read_lines_until(&mut r, 5, |l| l.contains("type=item_store"));
        let masked: Vec<String> = normalize(line.trim_end())
            .split(' ')
            .map(|f| if f.starts_with("clsid=") { "clsid=*".into() } else { f.to_string() })
            .collect();
        assert_eq!(
            masked.join(" "),
            "ts=* gid=* type=item_store key=big status=too_large cmd=set ttl=0 clsid=* cfd=* size=0",
            "{name}"
        );
    }
}

/// `reason=` of a binary-protocol connection's `conn_close`: `error` when the server closes it
/// for a protocol error (a `quit` with a key, a bad magic byte on a later request), `normal`
/// when the client closes it, after any request.
#[test]
fn binary_connections_close_with_memcached_reasons() {
    use common::binary_request;
    let cases: &[(&str, Vec<u8>, &str)] = &[
        ("noop, then the client closes", binary_request(0x0a, 0, &[], &[], &[]), "normal"),
        ("get miss, then the client closes", binary_request(0x00, 0, &[], b"k", &[]), "normal"),
        ("quit with a key", binary_request(0x07, 0, &[], b"k", &[]), "error"),
        ("bad magic on the second request", [binary_request(0x0a, 0, &[], &[], &[]), vec![0x81; 24]].concat(), "error"),
        ("noop with extras", binary_request(0x0a, 0, b"abcd", &[], &[]), "error"),
    ];
    for (name, srv) in servers(&[]) {
        let mut w = srv.connect();
        expect(&mut w, b"watch connevents\r\n", b"OK\r\n");
        let mut r = BufReader::new(w);
        for (case, bytes, reason) in cases {
            let mut c = srv.connect();
            let port = c.local_addr().unwrap().port();
            c.write_all(bytes).unwrap();
            let _ = read_quiet(&mut c, Duration::from_millis(200));
            drop(c);
            let line = read_lines_until(&mut r, 4, |l| {
                l.contains("type=conn_close") && l.contains(&format!(" rport={port} "))
            });
            assert!(line.contains(&format!(" reason={reason} ")), "{name}, {case}: {line}");
        }
    }
}

/// `watch` sent over UDP gets no reply (memcached 1.6.18 makes the UDP socket itself a
/// watcher, which can send nothing), and lines caused by UDP requests name the UDP socket's
/// descriptor as `cfd`.
#[test]
fn watch_over_udp_gets_no_reply() {
    for name in common::binaries() {
        let udp_port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
        let srv = Server::start_bin(name, &["-U", &udp_port]);
        let mut w = srv.connect();
        expect(&mut w, b"watch mutations\r\n", b"OK\r\n");
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        u.set_read_timeout(Some(Duration::from_millis(700))).unwrap();
        let to = format!("127.0.0.1:{udp_port}");
        let frame = |id: u16, body: &[u8]| [&id.to_be_bytes()[..], &[0, 0, 0, 1, 0, 0], body].concat();
        u.send_to(&frame(1, b"watch\r\n"), &to).unwrap();
        let mut buf = [0u8; 2048];
        assert!(u.recv_from(&mut buf).is_err(), "{name}: watch over UDP was answered");
        u.send_to(&frame(2, b"set u 0 0 1\r\nx\r\n"), &to).unwrap();
        let (n, _) = u.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[8..n], b"STORED\r\n", "{name}");
        let mut r = BufReader::new(w);
        let line = read_lines_until(&mut r, 5, |l| l.contains("type=item_store key=u "));
        let cfd: i64 = line.trim_end().split(" cfd=").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
        assert!(cfd >= 0, "{name}: {line}");
    }
}

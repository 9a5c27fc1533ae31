//! `watch`: the same session against rustcached and memcached 1.6.18 must produce the same
//! log lines (timestamps, ids, descriptors and client ports aside), and a watcher's buffer is
//! bounded: lines are dropped and reported as `skipped=N`.

mod common;

use std::io::{BufRead, BufReader, Write};
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
    // The server closing a watcher's connection ends the stream too.
    let srv = Server::start(&[]);
    let mut w = srv.connect();
    w.write_all(b"watch\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    w.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let (got, closed) = common::read_to_close(&mut w);
    assert!(closed && got == b"OK\r\n", "{:?} closed={closed}", String::from_utf8_lossy(&got));
    assert_eq!(stats(&mut srv.connect(), "")["log_watchers"], "0");
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

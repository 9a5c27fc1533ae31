//! The real binary over TCP: conversations, hostile input, limits, memory and concurrency.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{expect, read_to_close, read_until_end, stats, Server};

#[test]
fn readme_session() {
    let srv = Server::start(&[]);
    let mut s = srv.connect();
    expect(&mut s, b"set a 0 0 1\r\nx\r\nget a\r\n", b"STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n");
}

#[test]
fn pipelined_commands_answer_in_order() {
    let srv = Server::start(&[]);
    let mut s = srv.connect();
    let mut req = Vec::new();
    let mut want = Vec::new();
    for i in 0..500 {
        req.extend_from_slice(format!("set k{i} {i} 0 {}\r\n{i}\r\n", i.to_string().len()).as_bytes());
        want.extend_from_slice(b"STORED\r\n");
    }
    for i in 0..500 {
        req.extend_from_slice(format!("get k{i}\r\n").as_bytes());
        want.extend_from_slice(format!("VALUE k{i} {i} {}\r\n{i}\r\nEND\r\n", i.to_string().len()).as_bytes());
    }
    expect(&mut s, &req, &want);
}

#[test]
fn values_arriving_byte_by_byte() {
    let srv = Server::start(&[]);
    let mut s = srv.connect();
    for b in b"set slow 7 0 10\r\n0123456789\r\n" {
        s.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    expect(&mut s, b"", b"STORED\r\n");
    expect(&mut s, b"get slow\r\n", b"VALUE slow 7 10\r\n0123456789\r\nEND\r\n");
}

#[test]
fn large_values_up_to_the_item_limit() {
    let srv = Server::start(&[]);
    let mut s = srv.connect();
    let v = vec![b'v'; 1048516];
    let mut req = format!("set b 0 0 {}\r\n", v.len()).into_bytes();
    req.extend_from_slice(&v);
    req.extend_from_slice(b"\r\n");
    expect(&mut s, &req, b"STORED\r\n");
    s.write_all(b"get b\r\n").unwrap();
    let head = b"VALUE b 0 1048516\r\n";
    let got = common::read_n(&mut s, head.len() + v.len() + 7);
    assert_eq!(&got[..head.len()], head);
    assert!(got[head.len()..head.len() + v.len()].iter().all(|&b| b == b'v'));
    assert_eq!(&got[head.len() + v.len()..], b"\r\nEND\r\n");
    // one byte more is too large; the data is swallowed and the old item is gone
    let mut req = format!("set b 0 0 {}\r\n", v.len() + 1).into_bytes();
    req.extend_from_slice(&v);
    req.extend_from_slice(b"x\r\n");
    expect(&mut s, &req, b"SERVER_ERROR object too large for cache\r\n");
    expect(&mut s, b"get b\r\n", b"END\r\n");
}

#[test]
fn huge_item_is_swallowed_without_buffering() {
    let srv = Server::start(&["-I", "2k"]);
    let mut s = srv.connect();
    let n = 50 * 1024 * 1024;
    s.write_all(format!("set big 0 0 {n}\r\n").as_bytes()).unwrap();
    expect(&mut s, b"", b"SERVER_ERROR object too large for cache\r\n");
    let chunk = vec![b'z'; 1 << 20];
    for _ in 0..50 {
        s.write_all(&chunk).unwrap();
    }
    expect(&mut s, b"\r\nversion\r\n", format!("VERSION {}\r\n", rustcached::config::VERSION).as_bytes());
}

#[test]
fn long_line_without_newline_closes_but_multiget_does_not() {
    let srv = Server::start(&[]);
    let mut s = srv.connect();
    s.write_all(&vec![b'x'; 1 << 20]).unwrap();
    let (_, closed) = read_to_close(&mut s);
    assert!(closed, "junk line must close the connection");

    let mut s = srv.connect();
    expect(&mut s, b"set k1 0 0 1\r\na\r\n", b"STORED\r\n");
    let mut line = b"get".to_vec();
    for i in 0..2000 {
        line.extend_from_slice(format!(" nokey{i}").as_bytes());
    }
    line.extend_from_slice(b" k1\r\n");
    expect(&mut s, &line, b"VALUE k1 0 1\r\na\r\nEND\r\n");
}

/// A multi-get line longer than memcached's 2048-byte line limit, sent in pieces, gets the same
/// bytes from both servers; rustcached serves its keys as they arrive instead of buffering it.
#[test]
fn long_multiget_lines_in_pieces_match_memcached() {
    for (who, srv) in common::servers(&[]) {
        let mut s = srv.connect();
        for i in (0..3000).step_by(7) {
            expect(
                &mut s,
                format!("set key{i} {i} 0 {}\r\n{}\r\n", i % 50, "v".repeat(i % 50)).as_bytes(),
                b"STORED\r\n",
            );
        }
        for cmd in ["get", "gets"] {
            let keys: Vec<String> = (0..3000).map(|i| format!("key{i}")).collect();
            let line = format!("{cmd} {}\r\n", keys.join(" "));
            for piece in line.as_bytes().chunks(997) {
                s.write_all(piece).unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
            let reply = read_until_end(&mut s);
            let values = reply.matches("VALUE ").count();
            assert_eq!(values, 3000usize.div_ceil(7), "{who} {cmd}");
            assert!(reply.starts_with("VALUE key0 0 0"), "{who} {cmd}: {}", &reply[..40]);
            if cmd == "get" {
                assert!(reply.contains("VALUE key2996 2996 46\r\n"), "{who}");
            }
        }
        // The connection is still in step.
        expect(&mut s, b"get key7\r\n", b"VALUE key7 7 7\r\nvvvvvvv\r\nEND\r\n");
    }
}

/// An endless `get` line does not grow the server: its keys are served as they arrive.
#[test]
fn an_endless_get_line_is_not_buffered() {
    let srv = Server::start(&["-m", "16"]);
    let mut s = srv.connect();
    expect(&mut s, b"set k 0 0 1\r\nx\r\n", b"STORED\r\n");
    let mut reader = s.try_clone().unwrap();
    reader.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let drain = std::thread::spawn(move || {
        let mut buf = vec![0; 1 << 16];
        let mut n = 0usize;
        while let Ok(k) = reader.read(&mut buf) {
            if k == 0 {
                break;
            }
            n += k;
        }
        n
    });
    s.write_all(b"get ").unwrap();
    let chunk = b"nokey ".repeat(100_000);
    for _ in 0..50 {
        s.write_all(&chunk).unwrap(); // 30 MB of keys, no newline
    }
    s.write_all(b"k\r\n").unwrap();
    let rss = rss_kb(srv.child.id());
    assert!(rss < 36 * 1024, "RSS {rss} kB after a 30 MB get line");
    s.write_all(b"get k\r\n").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let got = drain.join().unwrap();
    assert_eq!(got, "VALUE k 0 1\r\nx\r\nEND\r\n".len() * 2);
    // A key longer than any key can be in a long line that arrives in parts: the keys before it
    // were served, then the error, then the connection is in step again. (Arriving whole, the
    // line gets memcached's lone error: `tests/cases/text.cases`.)
    let mut s = srv.connect();
    let mut line = b"get k ".to_vec();
    line.extend(std::iter::repeat_n(b'a', 5000));
    s.write_all(&line).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    s.write_all(b" k\r\nget k\r\n").unwrap();
    let mut want = b"VALUE k 0 1\r\nx\r\nCLIENT_ERROR bad command line format\r\n".to_vec();
    want.extend_from_slice(b"VALUE k 0 1\r\nx\r\nEND\r\n");
    assert_eq!(String::from_utf8_lossy(&common::read_n(&mut s, want.len())), String::from_utf8_lossy(&want));
}

#[test]
fn binary_garbage_and_bad_commands_keep_the_connection() {
    let srv = Server::start(&[]);
    let mut s = srv.connect();
    expect(&mut s, b"\x01\x02\x03 garbage\r\n", b"ERROR\r\n");
    // 2 + 2 bytes are consumed as the data block; the leftover "\r\n" is an empty command.
    expect(&mut s, b"set k 0 0 2\r\nabcd\r\n", b"CLIENT_ERROR bad data chunk\r\nERROR\r\n");
    expect(&mut s, b"get k\r\n", b"END\r\n");
    expect(&mut s, b"set k 0 0 abc\r\n", b"CLIENT_ERROR bad command line format\r\n");
    expect(&mut s, b"incr k 1\r\n", b"NOT_FOUND\r\n");
}

#[test]
fn client_disconnecting_mid_value_disturbs_nobody() {
    let srv = Server::start(&[]);
    {
        let mut s = srv.connect();
        s.write_all(b"set partial 0 0 100\r\nonly part").unwrap();
    }
    let mut s = srv.connect();
    expect(&mut s, b"get partial\r\n", b"END\r\n");
    let st = stats(&mut s, "");
    assert_eq!(st["curr_items"], "0");
}

#[test]
fn quit_and_shutdown() {
    let srv = Server::start(&[]);
    let mut s = srv.connect();
    s.write_all(b"set q 0 0 1\r\n1\r\nquit\r\nget q\r\n").unwrap();
    let (got, closed) = read_to_close(&mut s);
    assert!(closed);
    assert_eq!(got, b"STORED\r\n");
    let mut s = srv.connect();
    expect(&mut s, b"shutdown\r\n", b"ERROR: shutdown not enabled\r\n");

    let srv = Server::start(&["-A"]);
    let mut s = srv.connect();
    s.write_all(b"shutdown\r\n").unwrap();
    let (_, closed) = read_to_close(&mut s);
    assert!(closed);
    let mut child = srv;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(st) = child.child.try_wait().unwrap() {
            assert!(st.success());
            break;
        }
        assert!(Instant::now() < deadline, "shutdown did not stop the server");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn connection_limit_rejects_with_memcached_message() {
    // -c counts descriptors: 24 reserved + 1 listener, so -c 28 leaves room for 3 clients.
    let srv = Server::start(&["-c", "28"]);
    // A refused connection gets memcached's line at once and is closed; an admitted one stays
    // silent (1 s is ample) and then answers `version`.
    let mut keep = Vec::new();
    let mut rejected = Vec::new();
    for _ in 0..6 {
        let mut s = srv.connect();
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut buf = [0u8; 128];
        match s.read(&mut buf) {
            Ok(n) if n > 0 => rejected.push(buf[..n].to_vec()),
            Ok(_) => rejected.push(Vec::new()),
            Err(_) => {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                expect(&mut s, b"version\r\n", format!("VERSION {}\r\n", rustcached::config::VERSION).as_bytes());
                keep.push(s);
            }
        }
    }
    assert_eq!(keep.len(), 3);
    assert_eq!(rejected.len(), 3);
    assert!(rejected.iter().all(|r| r == b"ERROR Too many open connections\r\n"), "{rejected:?}");
    let st = stats(&mut keep[0], "");
    assert!(st["rejected_connections"].parse::<u64>().unwrap() >= 1);
}

#[test]
fn ten_thousand_idle_connections() {
    let srv = Server::start(&["-c", "10100"]);
    let conns: Vec<TcpStream> = (0..10_000).map(|_| srv.connect()).collect();
    let mut s = srv.connect();
    expect(&mut s, b"set idle 0 0 2\r\nok\r\nget idle\r\n", b"STORED\r\nVALUE idle 0 2\r\nok\r\nEND\r\n");
    let st = stats(&mut s, "");
    assert!(st["curr_connections"].parse::<u64>().unwrap() >= 10_000);
    drop(conns);
}

#[test]
fn client_that_never_reads_is_bounded_and_others_are_served() {
    let srv = Server::start(&["-t", "1"]);
    let mut s = srv.connect();
    expect(&mut s, format!("set big 0 0 {}\r\n{}\r\n", 100_000, "x".repeat(100_000)).as_bytes(), b"STORED\r\n");
    let mut hog = srv.connect();
    hog.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    // ask for ~1 GB of replies and never read them
    let req = b"get big\r\n".repeat(1000);
    for _ in 0..10 {
        if hog.write_all(&req).is_err() {
            break;
        }
    }
    // another client on the same (only) worker still gets answers
    let mut other = srv.connect();
    expect(&mut other, b"get nothing\r\n", b"END\r\n");
    // and the ~1 GB of replies the hog asked for is not buffered
    let rss = rss_kb(srv.child.id());
    assert!(rss < 100 * 1024, "RSS {rss} kB while a client does not read");
}

#[test]
fn expiry_uses_the_server_clock() {
    let srv = Server::start(&["-o", "debug_time"]);
    let mut s = srv.connect();
    expect(&mut s, b"set t 0 100 1\r\nx\r\nset forever 0 0 1\r\ny\r\n", b"STORED\r\nSTORED\r\n");
    expect(&mut s, b"get t\r\n", b"VALUE t 0 1\r\nx\r\nEND\r\n");
    expect(&mut s, b"debugtime 101\r\n", b"OK\r\n");
    expect(&mut s, b"get t forever\r\n", b"VALUE forever 0 1\r\ny\r\nEND\r\n");
    let st = stats(&mut s, "");
    assert_eq!(st["get_expired"], "1");
    // touch extends, gat too
    expect(&mut s, b"set t2 0 10 1\r\nx\r\ntouch t2 1000\r\n", b"STORED\r\nTOUCHED\r\n");
    expect(&mut s, b"debugtime 20\r\n", b"OK\r\n");
    expect(&mut s, b"gat 5 t2\r\n", b"VALUE t2 0 1\r\nx\r\nEND\r\n");
    expect(&mut s, b"debugtime 6\r\n", b"OK\r\n");
    expect(&mut s, b"get t2\r\n", b"END\r\n");
    // delayed flush: items set before the deadline vanish at the deadline
    expect(&mut s, b"flush_all 10\r\nset f 0 0 1\r\nz\r\n", b"OK\r\nSTORED\r\n");
    expect(&mut s, b"get f\r\n", b"VALUE f 0 1\r\nz\r\nEND\r\n");
    expect(&mut s, b"debugtime 11\r\n", b"OK\r\n");
    expect(&mut s, b"get f forever\r\n", b"END\r\n");
}

/// Last-access time as memcached 1.6.18 keeps it: the first fetch marks the item fetched
/// (`h1` from then on) without moving its time; the second fetch moves it.
#[test]
fn first_fetch_leaves_last_access_time() {
    let srv = Server::start(&["-o", "debug_time"]);
    let mut s = srv.connect();
    expect(&mut s, b"set la 0 0 1\r\nx\r\ndebugtime 2\r\n", b"STORED\r\nOK\r\n");
    expect(&mut s, b"mg la l h\r\n", b"HD l2 h0\r\n");
    expect(&mut s, b"debugtime 2\r\n", b"OK\r\n");
    expect(&mut s, b"mg la l h\r\n", b"HD l4 h1\r\n");
    expect(&mut s, b"debugtime 1\r\n", b"OK\r\n");
    expect(&mut s, b"mg la l h\r\n", b"HD l1 h1\r\n");
}

/// A client that sends its last request and shuts down its sending side at once must get the
/// reply and then see the server close: data and end-of-stream arrive in one readiness event,
/// and a read that returns less than the buffer must not be taken as "drained" then.
#[test]
fn half_closed_clients_get_their_reply_and_are_closed() {
    let srv = Server::start(&[]);
    for i in 0..20 {
        let mut s = srv.connect();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        s.write_all(b"get a\r\n").unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let (got, closed) = read_to_close(&mut s);
        assert_eq!(String::from_utf8_lossy(&got), "END\r\n", "try {i}");
        assert!(closed, "try {i}: the server did not close the half-closed connection");
    }
}

/// `get_expired` / `get_flushed` count every lookup that finds the key dead, whatever the
/// command, as memcached's `do_item_get` does (seen with 1.6.18 for delete, incr, touch, md,
/// ma, me, mg, gat, append and cas).
#[test]
fn expired_and_flushed_finds_are_counted_for_every_command() {
    // no background crawler: it would reclaim some dead items before the commands find them
    let srv = Server::start(&["-o", "debug_time", "-o", "no_lru_crawler"]);
    let mut s = srv.connect();
    let cmds: &[&[u8]] = &[
        b"delete k0\r\n",
        b"incr k1 1\r\n",
        b"touch k2 10\r\n",
        b"md k3\r\n",
        b"ma k4\r\n",
        b"me k5\r\n",
        b"mg k6 v\r\n",
        b"gat 10 k7\r\n",
        b"append k8 0 0 1\r\nx\r\n",
        b"cas k9 0 0 1 1\r\nx\r\n",
        b"get k10\r\n",
    ];
    for ttl in ["5", "0"] {
        for i in 0..cmds.len() {
            expect(&mut s, format!("set k{i} 0 {ttl} 1\r\n1\r\n").as_bytes(), b"STORED\r\n");
        }
        if ttl == "5" {
            expect(&mut s, b"debugtime 6\r\n", b"OK\r\n");
        } else {
            expect(&mut s, b"flush_all\r\n", b"OK\r\n");
        }
        for c in cmds {
            s.write_all(c).unwrap();
            let mut buf = [0u8; 256];
            let _ = std::io::Read::read(&mut s, &mut buf).unwrap();
        }
    }
    let st = stats(&mut s, "");
    let n = cmds.len().to_string();
    assert_eq!((st["get_expired"].as_str(), st["get_flushed"].as_str()), (n.as_str(), n.as_str()));
}

/// Connections are spread evenly over the workers (memcached deals them round-robin), not
/// left with whichever worker woke first. Read off each worker's epoll set in /proc.
#[test]
fn connections_are_spread_over_workers() {
    let srv = Server::start(&["-t", "4"]);
    let mut clients = Vec::new();
    for _ in 0..40 {
        let mut c = srv.connect();
        expect(&mut c, b"mn\r\n", b"MN\r\n"); // registered and served
        clients.push(c);
    }
    let pid = srv.child.id();
    let mut per_worker = Vec::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().flatten() {
        let is_epoll = std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy().contains("eventpoll"));
        if is_epoll {
            let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy()));
            // each worker also watches the listener and its waker
            per_worker.push(info.unwrap().matches("tfd:").count() - 2);
        }
    }
    per_worker.sort_unstable();
    assert_eq!(per_worker.len(), 4, "{per_worker:?}");
    assert_eq!(per_worker.iter().sum::<usize>(), 40, "{per_worker:?}");
    assert!(per_worker[3] - per_worker[0] <= 1, "uneven: {per_worker:?}");
}

#[test]
fn debugtime_is_refused_without_the_option() {
    let srv = Server::start(&[]);
    let mut s = srv.connect();
    expect(&mut s, b"debugtime 100\r\n", b"ERROR\r\n");
}

#[test]
fn eviction_under_small_memory_and_no_evictions_mode() {
    let srv = Server::start(&["-m", "2"]);
    let mut s = srv.connect();
    let v = "v".repeat(1000);
    let mut req = String::new();
    for i in 0..5000 {
        req.push_str(&format!("set key{i} 0 0 1000 noreply\r\n{v}\r\n"));
    }
    s.write_all(req.as_bytes()).unwrap();
    expect(&mut s, b"get key4999\r\n", format!("VALUE key4999 0 1000\r\n{v}\r\nEND\r\n").as_bytes());
    let st = stats(&mut s, "");
    assert!(st["evictions"].parse::<u64>().unwrap() > 0);
    assert!(st["total_items"].parse::<u64>().unwrap() >= 5000);

    let srv = Server::start(&["-m", "2", "-M"]);
    let mut s = srv.connect();
    let mut saw_oom = false;
    for i in 0..5000 {
        s.write_all(format!("set key{i} 0 0 1000\r\n{v}\r\n").as_bytes()).unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap();
        if &buf[..n] == b"SERVER_ERROR out of memory storing object\r\n" {
            saw_oom = true;
            break;
        }
        assert_eq!(&buf[..n], b"STORED\r\n");
    }
    assert!(saw_oom);
    let st = stats(&mut s, "");
    assert_eq!(st["evictions"], "0");
    assert_eq!(st["store_no_memory"], "1");
}

#[test]
fn large_values_fit_after_memory_filled_with_small_ones() {
    let srv = Server::start(&["-m", "8"]);
    let mut s = srv.connect();
    let mut req = String::new();
    let small = "s".repeat(100);
    for i in 0..100_000 {
        req.push_str(&format!("set small{i} 0 0 100 noreply\r\n{small}\r\n"));
    }
    s.write_all(req.as_bytes()).unwrap();
    expect(&mut s, b"version\r\n", format!("VERSION {}\r\n", rustcached::config::VERSION).as_bytes());
    let big = "b".repeat(50_000);
    let start = Instant::now();
    for i in 0..50 {
        expect(&mut s, format!("set big{i} 0 0 50000\r\n{big}\r\n").as_bytes(), b"STORED\r\n");
    }
    assert!(start.elapsed() < Duration::from_secs(30));
    expect(&mut s, b"get big49\r\n", format!("VALUE big49 0 50000\r\n{big}\r\nEND\r\n").as_bytes());
    let st = stats(&mut s, "");
    assert!(st["slabs_moved"].parse::<u64>().unwrap() > 0);
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap())
        .unwrap()
}

#[test]
fn memory_limit_bounds_rss() {
    // Write 10x -m of data: RSS stays within -m plus a fixed overhead (binary, thread stacks,
    // index, buffers): 32 MB here.
    let srv = Server::start(&["-m", "16", "-t", "2"]);
    let mut s = srv.connect();
    let v = "r".repeat(4000);
    let total = 160 << 20;
    let n = total / 4000;
    let mut batch = String::new();
    for i in 0..n {
        batch.push_str(&format!("set rss{i} 0 0 4000 noreply\r\n{v}\r\n"));
        if batch.len() > 1 << 20 {
            s.write_all(batch.as_bytes()).unwrap();
            batch.clear();
        }
    }
    s.write_all(batch.as_bytes()).unwrap();
    expect(&mut s, b"version\r\n", format!("VERSION {}\r\n", rustcached::config::VERSION).as_bytes());
    let rss = rss_kb(srv.child.id());
    assert!(rss < (16 + 32) * 1024, "RSS {rss} kB exceeds -m 16 plus 32 MB overhead");
    let st = stats(&mut s, "");
    assert!(st["evictions"].parse::<u64>().unwrap() > 0);
}

#[test]
fn concurrent_clients_on_overlapping_keys() {
    let srv = Server::start(&["-t", "4"]);
    let mut s = srv.connect();
    expect(&mut s, b"set ctr 0 0 1\r\n0\r\nset cas 0 0 1\r\n0\r\n", b"STORED\r\nSTORED\r\n");
    let port = srv.port;
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                for i in 0..300 {
                    s.write_all(b"incr ctr 1\r\n").unwrap();
                    let mut buf = [0u8; 32];
                    let n = s.read(&mut buf).unwrap();
                    assert!(buf[..n].ends_with(b"\r\n"));
                    // CAS increment loop
                    loop {
                        s.write_all(b"gets cas\r\n").unwrap();
                        let r = read_until_end(&mut s);
                        let header = r.lines().next().unwrap().to_string();
                        let cas: u64 = header.rsplit(' ').next().unwrap().parse().unwrap();
                        let val: u64 = r.lines().nth(1).unwrap().trim().parse().unwrap();
                        let nv = (val + 1).to_string();
                        s.write_all(format!("cas cas 0 0 {} {cas}\r\n{nv}\r\n", nv.len()).as_bytes()).unwrap();
                        let mut buf = [0u8; 32];
                        let n = s.read(&mut buf).unwrap();
                        if &buf[..n] == b"STORED\r\n" {
                            break;
                        }
                        assert_eq!(&buf[..n], b"EXISTS\r\n");
                    }
                    let k = format!("shared{}", (i + t) % 10);
                    s.write_all(format!("set {k} 0 0 {}\r\n{k}\r\n", k.len()).as_bytes()).unwrap();
                    let mut buf = [0u8; 32];
                    let n = s.read(&mut buf).unwrap();
                    assert_eq!(&buf[..n], b"STORED\r\n");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    expect(&mut s, b"get ctr\r\n", b"VALUE ctr 0 4\r\n2400\r\nEND\r\n");
    expect(&mut s, b"get cas\r\n", b"VALUE cas 0 4\r\n2400\r\nEND\r\n");
}

#[test]
fn stats_are_what_monitoring_tools_parse() {
    let srv = Server::start(&[]);
    let mut s = srv.connect();
    expect(&mut s, b"set a 0 0 1\r\n1\r\nget a b\r\n", b"STORED\r\nVALUE a 0 1\r\n1\r\nEND\r\n");
    let st = stats(&mut s, "");
    // every field the exporter reads: memcached_exporter_can_scrape_everything
    for k in ["rusage_user", "rusage_system"] {
        let v = &st[k];
        let (a, b) = v.split_once('.').unwrap();
        assert!(a.parse::<u64>().is_ok() && b.len() == 6 && b.parse::<u64>().is_ok(), "{k} = {v}");
    }
    assert_eq!(st["cmd_get"], "2");
    assert_eq!(st["get_hits"], "1");
    assert_eq!(st["get_misses"], "1");
    assert_eq!(st["curr_items"], "1");
    for sub in ["settings", "items", "slabs", "conns"] {
        s.write_all(format!("stats {sub}\r\n").as_bytes()).unwrap();
        let text = read_until_end(&mut s);
        assert!(text.ends_with("END\r\n"));
        for line in text.lines().filter(|l| *l != "END") {
            assert_eq!(line.split(' ').count(), 3, "bad line in stats {sub}: {line}");
        }
    }
    let sl = stats(&mut s, "slabs");
    assert!(sl.contains_key("total_malloced") && sl.contains_key("active_slabs"));
}

#[test]
fn memcache_crate_ascii_client() {
    let srv = Server::start(&[]);
    let client = memcache::Client::connect(format!("memcache://{}?protocol=ascii&timeout=5", srv.addr())).unwrap();
    client.set("foo", "bar", 0).unwrap();
    assert_eq!(client.get::<String>("foo").unwrap().as_deref(), Some("bar"));
    let _ = client.add("foo", "baz", 0); // NOT_STORED: the value must not change
    assert_eq!(client.get::<String>("foo").unwrap().as_deref(), Some("bar"));
    client.set("n", 10u64, 0).unwrap();
    assert_eq!(client.increment("n", 5).unwrap(), 15);
    assert_eq!(client.decrement("n", 20).unwrap(), 0);
    client.append("foo", "!").unwrap();
    client.prepend("foo", "<").unwrap();
    assert_eq!(client.get::<String>("foo").unwrap().as_deref(), Some("<bar!"));
    let m: std::collections::HashMap<String, String> = client.gets(&["foo", "missing"]).unwrap();
    assert_eq!(m.len(), 1);
    assert!(client.delete("foo").unwrap());
    assert!(!client.delete("foo").unwrap());
    client.touch("n", 100).unwrap();
    client.flush().unwrap();
    assert_eq!(client.get::<u64>("n").unwrap(), None);
    let v = client.version().unwrap();
    assert!(v[0].1.starts_with("1.6.18"));
}

#[test]
fn memccapable_ascii_passes() {
    common::needs(
        std::process::Command::new("memccapable").arg("--help").output().is_ok(),
        "memccapable (apt-get install libmemcached-tools)",
    );
    let srv = Server::start(&[]);
    let out = std::process::Command::new("memccapable")
        .args(["-h", "127.0.0.1", "-p", &srv.port.to_string(), "-a"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("All tests passed"), "{text}");
}

/// Every key prometheus/memcached_exporter (pkg/exporter/exporter.go) reads, parsed the way it
/// parses them: a missing key, a non-numeric value, a line that is not `STAT name value`, or a
/// block not ending in END would mark the target down.
#[test]
fn memcached_exporter_can_scrape_everything() {
    let srv = Server::start(&[]);
    let mut s = srv.connect();
    expect(&mut s, b"set a 0 0 1\r\n1\r\nget a\r\n", b"STORED\r\nVALUE a 0 1\r\n1\r\nEND\r\n");
    let general = stats(&mut s, "");
    let numeric = [
        "uptime",
        "time",
        "curr_connections",
        "total_connections",
        "rejected_connections",
        "conn_yields",
        "listen_disabled_num",
        "bytes",
        "limit_maxbytes",
        "curr_items",
        "total_items",
        "bytes_read",
        "bytes_written",
        "evictions",
        "reclaimed",
        "store_too_large",
        "store_no_memory",
        "accepting_conns",
        "lru_crawler_starts",
        "direct_reclaims",
        "crawler_items_checked",
        "crawler_reclaimed",
        "moves_to_cold",
        "moves_to_warm",
        "moves_within_lru",
        "get_hits",
        "get_misses",
        "get_expired",
        "get_flushed",
        "delete_hits",
        "delete_misses",
        "incr_hits",
        "incr_misses",
        "decr_hits",
        "decr_misses",
        "cas_hits",
        "cas_misses",
        "cas_badval",
        "touch_hits",
        "touch_misses",
        "cmd_flush",
        "cmd_set",
        "cmd_get",
        "cmd_touch",
        "max_connections",
        "threads",
        "malloc_fails",
        "hash_bytes",
        "slabs_moved",
        "evicted_unfetched",
        "expired_unfetched",
    ];
    for k in numeric {
        let v = general.get(k).unwrap_or_else(|| panic!("stats lacks {k}"));
        assert!(v.parse::<f64>().is_ok(), "{k} = {v:?} is not numeric");
    }
    for k in ["rusage_user", "rusage_system"] {
        assert!(general[k].parse::<f64>().is_ok() && general[k].contains('.'), "{k}");
    }
    assert!(general.contains_key("version"));
    let settings = stats(&mut s, "settings");
    for k in [
        "maxconns",
        "lru_crawler",
        "lru_crawler_sleep",
        "lru_crawler_tocrawl",
        "lru_maintainer_thread",
        "hot_lru_pct",
        "warm_lru_pct",
        "hot_max_factor",
        "warm_max_factor",
        "item_size_max",
        "maxbytes",
    ] {
        assert!(settings.contains_key(k), "stats settings lacks {k}");
    }
    let items = stats(&mut s, "items");
    for f in [
        "number",
        "number_hot",
        "number_warm",
        "number_cold",
        "age_hot",
        "age_warm",
        "age",
        "mem_requested",
        "evicted",
        "evicted_nonzero",
        "evicted_time",
        "outofmemory",
        "tailrepairs",
        "reclaimed",
        "expired_unfetched",
        "evicted_unfetched",
        "evicted_active",
        "crawler_reclaimed",
        "crawler_items_checked",
        "lrutail_reflocked",
        "moves_to_cold",
        "moves_to_warm",
        "moves_within_lru",
        "direct_reclaims",
        "hits_to_hot",
        "hits_to_warm",
        "hits_to_cold",
        "hits_to_temp",
    ] {
        let k = items.keys().find(|k| k.ends_with(&format!(":{f}"))).unwrap_or_else(|| panic!("stats items lacks {f}"));
        assert!(items[k].parse::<u64>().is_ok(), "{k}");
    }
    let slabs = stats(&mut s, "slabs");
    for f in [
        "chunk_size",
        "chunks_per_page",
        "total_pages",
        "total_chunks",
        "used_chunks",
        "free_chunks",
        "free_chunks_end",
        "get_hits",
        "cmd_set",
        "delete_hits",
        "incr_hits",
        "decr_hits",
        "cas_hits",
        "cas_badval",
        "touch_hits",
    ] {
        let k = slabs.keys().find(|k| k.ends_with(&format!(":{f}"))).unwrap_or_else(|| panic!("stats slabs lacks {f}"));
        assert!(slabs[k].parse::<u64>().is_ok(), "{k}");
    }
    for k in ["active_slabs", "total_malloced"] {
        assert!(slabs[k].parse::<u64>().is_ok(), "{k}");
    }
}

/// Checked against memcached 1.6.18 by hand: a bad data chunk still counts as a set, and
/// delete/incr hits are booked to the item's slab class.
#[test]
fn per_class_counters_like_memcached() {
    let srv = Server::start(&[]);
    let mut s = srv.connect();
    s.write_all(b"set k 0 0 2\r\nabcd\r\nset a 0 0 1\r\nx\r\nincr a 1\r\nset n 0 0 1\r\n5\r\nincr n 1\r\ndelete n\r\n")
        .unwrap();
    let want = b"CLIENT_ERROR bad data chunk\r\nERROR\r\nSTORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\nSTORED\r\n6\r\nDELETED\r\n";
    assert_eq!(common::read_n(&mut s, want.len()), want);
    let slabs = stats(&mut s, "slabs");
    assert_eq!(slabs["1:cmd_set"], "3");
    assert_eq!(slabs["1:delete_hits"], "1");
    assert_eq!(slabs["1:incr_hits"], "1");
    let general = stats(&mut s, "");
    assert_eq!(general["cmd_set"], "3");
}

/// One binary request (magic 0x80) with this opcode, extras, key, value and CAS.
fn bin_req(opcode: u8, extras: &[u8], key: &[u8], value: &[u8], cas: u64) -> Vec<u8> {
    let mut p = vec![0x80, opcode];
    p.extend_from_slice(&(key.len() as u16).to_be_bytes());
    p.extend_from_slice(&[extras.len() as u8, 0, 0, 0]);
    p.extend_from_slice(&((extras.len() + key.len() + value.len()) as u32).to_be_bytes());
    p.extend_from_slice(&[0; 4]);
    p.extend_from_slice(&cas.to_be_bytes());
    p.extend_from_slice(extras);
    p.extend_from_slice(key);
    p.extend_from_slice(value);
    p
}

/// Read `n` binary responses.
fn bin_replies(s: &mut TcpStream, n: usize) {
    for _ in 0..n {
        let head = common::read_n(s, 24);
        let body = u32::from_be_bytes([head[8], head[9], head[10], head[11]]) as usize;
        common::read_n(s, body);
    }
}

/// After a mix of text, meta and binary commands on items of several sizes, every per-class
/// counter of `stats slabs` sums to its `stats` total, and the totals are memcached's.
#[test]
fn per_class_counters_sum_to_the_totals_for_every_protocol() {
    let mut totals = Vec::new();
    for (who, srv) in common::servers(&[]) {
        let mut s = srv.connect();
        for (i, size) in [10usize, 700, 3000, 40_000, 300_000].into_iter().enumerate() {
            let v = "7".repeat(size);
            expect(&mut s, format!("set t{i} {i} 0 {size}\r\n{v}\r\n").as_bytes(), b"STORED\r\n");
            expect(&mut s, format!("ms m{i} {size} F5\r\n{v}\r\n").as_bytes(), b"HD\r\n");
            s.write_all(format!("get t{i} m{i} nope\r\nmg m{i} v\r\nmg nope v\r\nmg t{i} T60\r\n").as_bytes()).unwrap();
            s.write_all(format!("touch t{i} 100\r\nincr t{i} 1\r\ndecr m{i} 1\r\nma t{i}\r\nma nope\r\n").as_bytes())
                .unwrap();
            s.write_all(format!("gets t{i}\r\ncas t{i} 0 0 1 1\r\nx\r\nappend m{i} 0 0 1\r\nz\r\n").as_bytes())
                .unwrap();
            s.write_all(format!("delete t{i}\r\nmd m{i}\r\nmd nope\r\ndelete nope\r\n").as_bytes()).unwrap();
            s.write_all(b"mn\r\n").unwrap();
            let _ = read_until_mn(&mut s);
            let mut b = srv.connect();
            let key = format!("b{i}");
            let mut req = bin_req(0x01, &[0, 0, 0, 1, 0, 0, 0, 0], key.as_bytes(), v.as_bytes(), 0); // set
            req.extend(bin_req(0x00, &[], key.as_bytes(), &[], 0)); // get
            req.extend(bin_req(0x00, &[], b"nope", &[], 0)); // get miss
            req.extend(bin_req(0x1c, &[0, 0, 0, 100], key.as_bytes(), &[], 0)); // touch
            req.extend(bin_req(0x01, &[0, 0, 0, 0, 0, 0, 0, 0], key.as_bytes(), b"1", 12345)); // cas mismatch
            req.extend(bin_req(
                0x05,
                &[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                key.as_bytes(),
                &[],
                0,
            )); // incr (non-numeric or numeric)
            req.extend(bin_req(0x04, &[], key.as_bytes(), &[], 0)); // delete
            b.write_all(&req).unwrap();
            bin_replies(&mut b, 7);
        }
        let general = stats(&mut s, "");
        let slabs = stats(&mut s, "slabs");
        let mut row = Vec::new();
        for f in
            ["get_hits", "cmd_set", "delete_hits", "incr_hits", "decr_hits", "cas_hits", "cas_badval", "touch_hits"]
        {
            let by_class: u64 = slabs
                .iter()
                .filter(|(k, _)| k.split_once(':').is_some_and(|(_, n)| n == f))
                .map(|(_, v)| v.parse::<u64>().unwrap())
                .sum();
            let total: u64 = general[f].parse().unwrap();
            assert_eq!(by_class, total, "{who}: {f} per class {by_class}, total {total}");
            row.push((f, total));
        }
        for f in [
            "cmd_get",
            "get_misses",
            "delete_misses",
            "incr_misses",
            "decr_misses",
            "cas_misses",
            "touch_misses",
            "cmd_touch",
        ] {
            row.push((f, general[f].parse().unwrap()));
        }
        totals.push((who, row));
    }
    assert_eq!(totals[0].1, totals[1].1, "{} and {} count differently", totals[0].0, totals[1].0);
}

/// Read to the `MN` that ends a pipelined batch (`mn` sent last).
fn read_until_mn(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    while !got.ends_with(b"MN\r\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed");
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// A client that sends a pipeline of large replies and then a large value before reading
/// anything: the server stops producing replies at its high-water mark, and once the client
/// reads them it must come back for the value still in the socket.
#[test]
fn a_value_sent_behind_unread_replies_is_still_read() {
    let srv = Server::start(&["-t", "1"]);
    let mut s = srv.connect();
    let big = "b".repeat(5000);
    expect(&mut s, format!("set big 0 0 5000\r\n{big}\r\n").as_bytes(), b"STORED\r\n");
    let mut req = "get big\r\n".repeat(600).into_bytes();
    req.extend_from_slice(format!("set k 0 0 200000\r\n{}\r\nget nothing\r\n", "v".repeat(200_000)).as_bytes());
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || w.write_all(&req).is_ok());
    let one = format!("VALUE big 0 5000\r\n{big}\r\nEND\r\n");
    let want = one.len() * 600 + "STORED\r\nEND\r\n".len();
    let got = common::read_n(&mut s, want);
    assert!(writer.join().unwrap());
    assert!(got.ends_with(b"STORED\r\nEND\r\n"), "{:?}", String::from_utf8_lossy(&got[got.len() - 40..]));
}

/// With the finer default classes of a large `-m`, items live in classes past memcached's 63:
/// `stats cachedump` reaches them.
#[test]
fn cachedump_reaches_classes_past_63() {
    let srv = Server::start(&["-m", "1024", "-t", "1"]);
    let mut s = srv.connect();
    let value = vec![b'x'; 20_000];
    s.write_all(format!("set big 0 0 {}\r\n", value.len()).as_bytes()).unwrap();
    s.write_all(&value).unwrap();
    expect(&mut s, b"\r\n", b"STORED\r\n");
    let items = stats(&mut s, "items");
    let class: u32 = items
        .keys()
        .find_map(|k| k.strip_suffix(":number")?.strip_prefix("items:")?.parse().ok())
        .expect("the item's class in stats items");
    assert!(class > 63, "a 20 KB item at -m 1024 is in class {class}");
    s.write_all(format!("stats cachedump {class} 0\r\n").as_bytes()).unwrap();
    let dump = read_until_end(&mut s);
    assert!(dump.starts_with("ITEM big [20000 b; 0 s]\r\n"), "{dump:?}");
}

//! Meta protocol over TCP: the flags rustcached adds beyond memcached 1.6.18 (byte-exact tables,
//! each also showing what 1.6.18 does with the same bytes when Debian's memcached is installed),
//! stale-while-revalidate and vivify races between concurrent clients, mixed classic/meta
//! pipelines, quiet pipelines ended by `mn`, data blocks split across writes, and the stats meta
//! commands move. Scenarios that 1.6.18 defines run against memcached too, as an oracle.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{expect, read_n, servers, Server};

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

// ------------------------------------------------------------------------------ additions --

/// Each addition: what rustcached replies, and what 1.6.18 replies to the same bytes.
struct Addition {
    name: &'static str,
    steps: &'static [(&'static str, &'static str, &'static str)], // send, rustcached, 1.6.18
}

const ADDITIONS: &[Addition] = &[
    Addition {
        // E<cas>: the CAS the modified item gets; the CAS counter is not consumed.
        name: "E on ms, ma, md I, mg N",
        steps: &[
            ("ms e1 2 E100 c\r\nab\r\n", "HD c100\r\n", "CLIENT_ERROR invalid flag\r\n"),
            ("mg e1 c v\r\n", "VA 2 c100\r\nab\r\n", "EN\r\n"),
            ("ms e2 1 c\r\n5\r\n", "HD c1\r\n", "HD c1\r\n"),
            ("ma e2 E200 c v\r\n", "VA 1 c200\r\n6\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n"),
            ("ma e3 N0 E250 c v\r\n", "VA 1 c250\r\n0\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n"),
            ("md e1 I E300\r\n", "HD\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n"),
            ("mg e1 c v\r\n", "VA 2 c300 X W\r\nab\r\n", "EN\r\n"),
            ("mg e4 N30 E400 c\r\n", "HD c400 W\r\n", "CLIENT_ERROR invalid flag\r\n"),
            ("mn\r\n", "MN\r\n", "MN\r\n"),
        ],
    },
    Addition {
        // md x: the value is emptied, the item stays (flags from F, TTL from T, CAS kept).
        name: "md x",
        steps: &[
            (
                "ms x1 2 F5 T100 c\r\nab\r\nmd x1 x\r\nmg x1 v f t c\r\n",
                "HD c1\r\nHD\r\nVA 0 f0 t-1 c1\r\n\r\n",
                "HD c1\r\nCLIENT_ERROR invalid or duplicate flag\r\nVA 2 f5 t100 c1\r\nab\r\n",
            ),
            ("md x1 x F7 q\r\nmn\r\n", "MN\r\n", "CLIENT_ERROR invalid or duplicate flag\r\nMN\r\n"),
            ("mg x1 f s\r\n", "HD f7 s0\r\n", "HD f5 s2\r\n"),
            ("md x1 x C9\r\n", "EX\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n"),
            ("md x2 x\r\n", "NF\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n"),
            ("md x1 x I E50\r\n", "HD\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n"),
            ("mg x1 v c\r\n", "VA 0 c50 X W\r\n\r\n", "VA 2 c1\r\nab\r\n"),
        ],
    },
    Addition {
        // ms s: the stored size (the new total after append/prepend).
        name: "ms s",
        steps: &[
            ("ms s1 2 s\r\nab\r\n", "HD s2\r\n", "HD\r\n"),
            ("ms s1 3 MA s c k\r\ncde\r\n", "HD s5 c2 ks1\r\n", "HD c2 ks1\r\n"),
            ("ms s1 1 MP q s\r\nz\r\nmn\r\n", "MN\r\n", "MN\r\n"),
            ("ms s1 2 ME s\r\nxx\r\n", "NS s2\r\n", "NS\r\n"),
            ("mg s1 v s\r\n", "VA 6 s6\r\nzabcde\r\n", "VA 6 s6\r\nzabcde\r\n"),
        ],
    },
    Addition {
        // ms N with MA/MP: a miss creates the item (flags from F, TTL from N, T ignored).
        name: "ms N with MA/MP",
        steps: &[
            ("ms n1 2 MA N30 F9 T5\r\nab\r\nmg n1 v f t\r\n", "HD\r\nVA 2 f9 t30\r\nab\r\n", "NS\r\nEN\r\n"),
            ("ms n1 2 MP N30\r\nzz\r\n", "HD\r\n", "NS\r\n"),
            ("mg n1 v\r\n", "VA 4\r\nzzab\r\n", "EN\r\n"),
            ("ms n2 2 MA\r\nab\r\n", "NS\r\n", "NS\r\n"),
            ("ms n3 2 N30\r\nab\r\nmg n3 t\r\n", "HD\r\nHD t-1\r\n", "HD\r\nHD t-1\r\n"),
        ],
    },
    Addition {
        // mg C<cas>: the client's copy is current, so no value (HD instead of VA).
        name: "mg C",
        steps: &[
            ("ms c1 2\r\nab\r\n", "HD\r\n", "HD\r\n"),
            ("mg c1 v c C1\r\n", "HD c1\r\n", "VA 2 c1\r\nab\r\n"),
            ("mg c1 v C2\r\n", "VA 2\r\nab\r\n", "VA 2\r\nab\r\n"),
            ("mg c9 v C1\r\n", "EN\r\n", "EN\r\n"),
        ],
    },
];

#[test]
fn added_flags_are_byte_exact() {
    for add in ADDITIONS {
        // Fresh servers: the CAS counter starts at 1.
        let ours = Server::start(&[]);
        let mut s = ours.connect();
        for (send, reply, _) in add.steps {
            let got = common::roundtrip(&mut s, send.as_bytes(), reply.len());
            assert_eq!(String::from_utf8_lossy(&got), *reply, "[{}] rustcached, sent {send:?}", add.name);
        }
        {
            let oracle = Server::start_bin(common::memcached_bin(), &[]);
            let mut s = oracle.connect();
            for (send, _, reply) in add.steps {
                let got = common::roundtrip(&mut s, send.as_bytes(), reply.len());
                assert_eq!(String::from_utf8_lossy(&got), *reply, "[{}] memcached 1.6.18, sent {send:?}", add.name);
            }
        }
    }
}

// ----------------------------------------------------------------------------------- races --

/// `clients` connections send `req` at the same moment; returns their replies.
fn race(port: u16, clients: usize, req: &'static [u8], reply_len: usize) -> Vec<String> {
    let barrier = Arc::new(Barrier::new(clients));
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let barrier = barrier.clone();
            let mut s = connect(port);
            std::thread::spawn(move || {
                barrier.wait();
                s.write_all(req).unwrap();
                String::from_utf8(read_n(&mut s, reply_len)).unwrap()
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// Stale-while-revalidate: after `md I`, of many clients fetching at once exactly one wins the
/// recache (`X W`), the others get the stale value with `Z X`; the winner's `ms` with the CAS it
/// saw makes the item fresh for everyone.
#[test]
fn stale_while_revalidate_has_one_winner() {
    for (name, server) in servers(&[]) {
        for round in 0..10 {
            let mut s = server.connect();
            let cas = 3 * round + 1;
            expect(&mut s, format!("ms swr{round} 3 T60 c\r\nold\r\n").as_bytes(), format!("HD c{cas}\r\n").as_bytes());
            expect(&mut s, format!("md swr{round} I T30\r\n").as_bytes(), b"HD\r\n");
            let req: &'static [u8] = Box::leak(format!("mg swr{round} v c\r\n").into_boxed_str()).as_bytes();
            let stale = cas + 1;
            let win = format!("VA 3 c{stale} X W\r\nold\r\n");
            let lose = format!("VA 3 c{stale} Z X\r\nold\r\n");
            let replies = race(server.port, 8, req, win.len());
            let winners = replies.iter().filter(|r| **r == win).count();
            let losers = replies.iter().filter(|r| **r == lose).count();
            assert_eq!((winners, losers), (1, 7), "{name} round {round}: {replies:?}");
            expect(&mut s, format!("ms swr{round} 3 C{stale} T60\r\nnew\r\n").as_bytes(), b"HD\r\n");
            let fresh = format!("VA 3 c{}\r\nnew\r\n", stale + 1);
            for r in race(server.port, 4, req, fresh.len()) {
                assert_eq!(r, fresh, "{name}");
            }
        }
    }
}

/// `mg N` on a miss: one client creates the item and wins; the others see it created, with the
/// token already out (`Z`).
#[test]
fn vivify_has_one_winner() {
    for (name, server) in servers(&[]) {
        for round in 0..10 {
            let req: &'static [u8] = Box::leak(format!("mg viv{round} N30 v\r\n").into_boxed_str()).as_bytes();
            let replies = race(server.port, 8, req, "VA 0 W\r\n\r\n".len());
            let winners = replies.iter().filter(|r| *r == "VA 0 W\r\n\r\n").count();
            let losers = replies.iter().filter(|r| *r == "VA 0 Z\r\n\r\n").count();
            assert_eq!((winners, losers), (1, 7), "{name} round {round}: {replies:?}");
        }
    }
}

/// `R`: when the TTL runs low, one client of many wins the early recache.
#[test]
fn recache_has_one_winner() {
    for (name, server) in servers(&[]) {
        let mut s = server.connect();
        expect(&mut s, b"ms rc1 2 T10\r\nab\r\n", b"HD\r\n");
        let replies = race(server.port, 8, b"mg rc1 R30 v\r\n", "VA 2 W\r\nab\r\n".len());
        let winners = replies.iter().filter(|r| *r == "VA 2 W\r\nab\r\n").count();
        let losers = replies.iter().filter(|r| *r == "VA 2 Z\r\nab\r\n").count();
        assert_eq!((winners, losers), (1, 7), "{name}: {replies:?}");
    }
}

// ------------------------------------------------------------------------------- pipelines --

#[test]
fn mixed_classic_and_meta_pipeline() {
    for (name, server) in servers(&[]) {
        let mut s = server.connect();
        let send = "set mp1 5 0 2\r\nab\r\nmg mp1 v f c\r\nms mp1 2 F6 c\r\ncd\r\nget mp1\r\n\
                    append mp1 0 0 1\r\ne\r\nmg mp1 s v\r\ngets mp1\r\nset mp2 0 0 1\r\n7\r\nma mp2 D3 v\r\n\
                    incr mp2 5\r\nmd mp2 q\r\nget mp2\r\ntouch mp1 100\r\nmg mp1 t\r\ndelete mp1\r\nmd mp1\r\nmn\r\n";
        let reply = "STORED\r\nVA 2 f5 c1\r\nab\r\nHD c2\r\nVALUE mp1 6 2\r\ncd\r\nEND\r\n\
                     STORED\r\nVA 3 s3\r\ncde\r\nVALUE mp1 6 3 3\r\ncde\r\nEND\r\nSTORED\r\nVA 2\r\n10\r\n\
                     15\r\nEND\r\nTOUCHED\r\nHD t100\r\nDELETED\r\nNF\r\nMN\r\n";
        let got = common::roundtrip(&mut s, send.as_bytes(), reply.len());
        assert_eq!(String::from_utf8_lossy(&got), reply, "{name}");
    }
}

/// The quiet-mode pattern: hundreds of `q` commands, then `mn`; only misses, failures and
/// errors come back, in order, then `MN`.
#[test]
fn quiet_pipeline_ended_by_mn() {
    for (name, server) in servers(&[]) {
        let mut s = server.connect();
        let mut send = String::new();
        let mut reply = String::new();
        for i in 0..200 {
            send += &format!("ms qk{i} 4 q T0\r\nx{i:03}\r\n");
        }
        send += "mn\r\n";
        reply += "MN\r\n";
        for i in 0..200 {
            send += &format!("mg qk{i} v q k\r\nmg qmiss{i} v q\r\n");
            reply += &format!("VA 4 kqk{i}\r\nx{i:03}\r\n");
        }
        for i in (0..200).step_by(2) {
            send += &format!("md qk{i} q\r\n");
        }
        send += "ms qk1 1 q ME\r\nx\r\nmd qk0 q\r\nma qk3 q\r\nmg qk0 q\r\nms qk5 1 q Zbad\r\nx\r\nmn\r\n";
        reply += "NS\r\nNF\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n\
                  CLIENT_ERROR invalid flag\r\nMN\r\n";
        let got = common::roundtrip(&mut s, send.as_bytes(), reply.len());
        assert_eq!(String::from_utf8_lossy(&got), reply, "{name}");
        // nothing else was queued
        expect(&mut s, b"mn\r\n", b"MN\r\n");
    }
}

/// An `ms` data block may arrive in pieces, and be large.
#[test]
fn data_block_split_across_writes() {
    for (name, server) in servers(&[]) {
        let mut s = server.connect();
        s.write_all(b"ms sp1 10 T0\r\nhello").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        expect(&mut s, b"world\r\nmg sp1 v\r\n", b"HD\r\nVA 10\r\nhelloworld\r\n");
        s.write_all(b"ms sp2 3\r\nabc\r").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        expect(&mut s, b"\nmn\r\n", b"HD\r\nMN\r\n");
        // bad terminator arriving late still swallows exactly datalen + 2
        s.write_all(b"ms sp3 3 q\r\nabc").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        expect(&mut s, b"XYmn\r\n", b"CLIENT_ERROR bad data chunk\r\nMN\r\n");
        let big = vec![b'z'; 500_000];
        let mut send = b"ms sp4 500000 s\r\n".to_vec();
        send.extend_from_slice(&big);
        send.extend_from_slice(b"\r\nmg sp4 s\r\n");
        let expect_reply: &[u8] =
            if name == "rustcached" { b"HD s500000\r\nHD s500000\r\n" } else { b"HD\r\nHD s500000\r\n" };
        for chunk in send.chunks(65_536) {
            s.write_all(chunk).unwrap();
        }
        let got = read_n(&mut s, expect_reply.len());
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(expect_reply), "{name}");
    }
}

/// A value that can never fit is refused before its data is read: the error comes even with
/// `q`, the old item is gone, the data is swallowed.
#[test]
fn too_large_is_refused_and_swallowed() {
    for (_, server) in servers(&["-I", "2k", "-o", "slab_chunk_max=2048"]) {
        let mut s = server.connect();
        expect(&mut s, b"ms tl1 2\r\nab\r\n", b"HD\r\n");
        let mut send = b"ms tl1 3000 q MA\r\n".to_vec();
        send.extend_from_slice(&[b'y'; 3000]);
        send.extend_from_slice(b"\r\nmg tl1 v\r\nmn\r\n");
        expect(&mut s, &send, b"SERVER_ERROR object too large for cache\r\nEN\r\nMN\r\n");
    }
}

// ----------------------------------------------------------------------------------- stats --

/// Counters as memcached 1.6.18 moves them (checked against it): mg counts as get (as touch
/// with T on a hit), ms as set (also with a bad data chunk), me as cmd_meta, mn as nothing.
#[test]
fn stats_count_like_memcached() {
    let seq = "ms sa 1\r\n5\r\nmg sa v\r\nmg sb v\r\nmg sa T30\r\nmg sb T30\r\nmg sc N30\r\nmg sc N30 v\r\n\
               ms sa 1 C1\r\n6\r\nms sa 1 C999\r\n6\r\nms sz 1 C5\r\n6\r\nms sa 1 MA\r\n7\r\nms sa 1 ME\r\n7\r\n\
               ms sa 1\r\n77\r\nmd sa C99\r\nmd sa I\r\nmd sa\r\nmd sa\r\nms n 1\r\n5\r\nma n\r\nma n MD\r\n\
               ma nn\r\nma nn MD\r\nma nn N0\r\nma n C99\r\nms x 1\r\na\r\nma x\r\nme n\r\nme zz\r\nmn\r\n\
               mg sa Ooooooooooooooooooooooooooooooooo\r\nms y 1 T-1\r\n1\r\nmg y\r\nmn\r\n";
    let want = [
        ("cmd_get", 7),
        ("cmd_set", 10),
        ("cmd_touch", 1),
        ("cmd_meta", 2),
        ("get_hits", 3),
        ("get_misses", 4),
        ("touch_hits", 1),
        ("touch_misses", 0),
        ("delete_hits", 1),
        ("delete_misses", 2),
        ("incr_hits", 1),
        ("incr_misses", 1),
        ("decr_hits", 1),
        ("decr_misses", 1),
        ("cas_hits", 1),
        ("cas_badval", 1),
        ("cas_misses", 1),
        ("curr_items", 4),
        ("total_items", 8),
    ];
    for (name, server) in servers(&[]) {
        let mut s = server.connect();
        s.write_all(seq.as_bytes()).unwrap();
        // read until both MN arrived
        let mut got = Vec::new();
        while got.windows(4).filter(|w| w == b"MN\r\n").count() < 2 {
            let chunk = read_n(&mut s, 1);
            assert!(!chunk.is_empty(), "{name}: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&chunk);
        }
        let st = common::stats(&mut s, "");
        for (k, v) in want {
            assert_eq!(st[k], v.to_string(), "{name}: {k}");
        }
    }
}

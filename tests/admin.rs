//! Run-time administration commands that memcached accepts for its LRU maintainer and slab
//! mover (`lru tune|mode|temp_ttl`, `slabs automove`): the same replies as memcached 1.6.18
//! (run against it too when installed), and `stats settings` showing what was set.

mod common;

use common::{expect, servers, stats, Server};

#[test]
fn lru_and_automove_commands_match_memcached() {
    let cases: &[(&str, &str)] = &[
        ("lru tune 10 25 0.1 2.0", "OK"),
        ("lru tune 10 25 0.1 2.0 extra", "OK"),
        ("lru tune 10 25 0.1", "ERROR"),
        ("lru tune 10 90 0.1 2.0", "ERROR hot and warm pcts must not exceed 80"),
        ("lru tune 1 2 0 2.0", "ERROR hot/warm age factors must be greater than 0"),
        ("lru tune a b c d", "ERROR"),
        ("lru mode flat", "OK"),
        ("lru mode x", "ERROR"),
        ("lru mode", "ERROR"),
        ("lru temp_ttl 45", "OK"),
        ("lru temp_ttl x", "ERROR"),
        ("lru", "ERROR"),
        ("lru bogus 1", "ERROR"),
        ("slabs automove 0", "OK"),
        ("slabs automove 3", "ERROR"),
        ("slabs automove x", "CLIENT_ERROR bad command line format"),
        ("slabs automove", "ERROR"),
    ];
    for (name, srv) in servers(&[]) {
        let mut s = srv.connect();
        for (cmd, reply) in cases {
            expect(&mut s, format!("{cmd}\r\n").as_bytes(), format!("{reply}\r\n").as_bytes());
        }
        // noreply silences both answers and errors
        expect(&mut s, b"lru mode segmented noreply\r\nlru mode x noreply\r\nmn\r\n", b"MN\r\n");
        let st = stats(&mut s, "settings");
        let got: Vec<&str> = [
            "hot_lru_pct",
            "warm_lru_pct",
            "hot_max_factor",
            "warm_max_factor",
            "lru_segmented",
            "temp_lru",
            "temporary_ttl",
            "slab_automove",
        ]
        .iter()
        .map(|k| st[*k].as_str())
        .collect();
        assert_eq!(got, ["10", "25", "0.10", "2.00", "yes", "yes", "45", "0"], "{name}");
        expect(&mut s, b"lru temp_ttl -1\r\n", b"OK\r\n");
        let st = stats(&mut s, "settings");
        assert_eq!((st["temp_lru"].as_str(), st["temporary_ttl"].as_str()), ("no", "45"), "{name}");
    }
    // without the LRU maintainer, `mode` and `temp_ttl` are refused; `tune` is not
    for (name, srv) in servers(&["-o", "no_lru_maintainer"]) {
        let mut s = srv.connect();
        expect(&mut s, b"lru mode flat\r\n", b"ERROR\r\n");
        expect(&mut s, b"lru temp_ttl 5\r\n", b"ERROR\r\n");
        expect(&mut s, b"lru tune 10 25 0.1 2.0\r\n", b"OK\r\n");
        let _ = name;
    }
}

/// `slabs reassign`: a class with pages to spare gives one up (its items are evicted) to the
/// global page pool; memcached's replies for the same requests.
#[test]
fn slabs_reassign_moves_a_page() {
    for (name, srv) in servers(&["-m", "64"]) {
        let mut s = srv.connect();
        let mut batch = Vec::new();
        for i in 0..40_000 {
            batch.extend_from_slice(format!("set k{i} 0 0 10 noreply\r\n0123456789\r\n").as_bytes());
        }
        std::io::Write::write_all(&mut s, &batch).unwrap();
        expect(&mut s, b"mn\r\n", b"MN\r\n");
        let before = stats(&mut s, "");
        expect(&mut s, b"slabs reassign 1 1\r\n", b"SAME src and dst class are identical\r\n");
        expect(&mut s, b"slabs reassign 1 99\r\n", b"BADCLASS invalid src or dst class id\r\n");
        expect(&mut s, b"slabs reassign 0 1\r\n", b"NOSPARE source class has no spare pages\r\n");
        expect(&mut s, b"slabs reassign 2 1\r\n", b"NOSPARE source class has no spare pages\r\n");
        expect(&mut s, b"slabs reassign 1 2\r\n", b"OK\r\n");
        // memcached moves the page in the background: wait for it
        let mut after = stats(&mut s, "");
        for _ in 0..100 {
            if after["slabs_moved"] != before["slabs_moved"] {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            after = stats(&mut s, "");
        }
        let n = |m: &std::collections::BTreeMap<String, String>, k: &str| m[k].parse::<u64>().unwrap();
        assert_eq!(n(&after, "slabs_moved"), n(&before, "slabs_moved") + 1, "{name}");
        assert!(n(&after, "curr_items") < n(&before, "curr_items"), "{name}: the page's items are gone");
        expect(&mut s, b"set fresh 0 0 1\r\nz\r\nget fresh\r\n", b"STORED\r\nVALUE fresh 0 1\r\nz\r\nEND\r\n");
    }
    let srv = Server::start(&["-o", "no_slab_reassign"]);
    let mut s = srv.connect();
    expect(&mut s, b"slabs reassign 1 2\r\n", b"CLIENT_ERROR slab reassignment disabled\r\n");
}

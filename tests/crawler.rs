//! `lru_crawler metadump` and the crawler switches over TCP, against rustcached and, when
//! installed, Debian's memcached as the oracle: line format (uri-encoded keys, absolute
//! times, fetch marks), class filters, the error replies in memcached's order, and a dump far
//! larger than the output high-water mark that must stream complete while other clients are
//! served.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{expect, read_until_end, servers, Server};

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// `metadump` lines as key -> fields.
fn dump(s: &mut TcpStream, arg: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    s.write_all(format!("lru_crawler metadump {arg}\r\n").as_bytes()).unwrap();
    let text = read_until_end(s);
    assert!(text.ends_with("END\r\n"), "{text:?}");
    let mut items = BTreeMap::new();
    for line in text.lines().filter(|l| *l != "END") {
        let fields: BTreeMap<String, String> = line
            .split(' ')
            .map(|kv| kv.split_once('=').unwrap_or_else(|| panic!("bad field in {line:?}")))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let names: Vec<&str> = fields.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["cas", "cls", "exp", "fetch", "key", "la", "size"], "{line:?}");
        assert!(line.starts_with("key="), "{line:?}");
        items.insert(fields["key"].clone(), fields);
    }
    items
}

#[test]
fn metadump_lines_match_memcached() {
    for (name, srv) in servers(&[]) {
        let mut s = srv.connect();
        let before = unix_now();
        expect(&mut s, b"set a%20b 0 0 1\r\nx\r\n", b"STORED\r\n");
        expect(&mut s, b"set plain 5 100 2\r\nxy\r\n", b"STORED\r\n");
        expect(&mut s, b"get plain\r\n", b"VALUE plain 5 2\r\nxy\r\nEND\r\n");
        expect(&mut s, b"set gone 0 -1 1\r\nx\r\n", b"STORED\r\n");
        let items = dump(&mut s, "all");
        let after = unix_now();
        assert_eq!(items.keys().collect::<Vec<_>>(), ["a%2520b", "plain"], "{name}");
        let (a, p) = (&items["a%2520b"], &items["plain"]);
        assert_eq!((a["exp"].as_str(), a["cas"].as_str(), a["fetch"].as_str()), ("-1", "1", "no"), "{name}");
        assert_eq!((p["cas"].as_str(), p["fetch"].as_str()), ("2", "yes"), "{name}");
        let exp: i64 = p["exp"].parse().unwrap();
        assert!((before + 99..=after + 101).contains(&exp), "{name}: exp {exp} not ~now+100");
        for it in [a, p] {
            let la: i64 = it["la"].parse().unwrap();
            assert!((before - 2..=after + 2).contains(&la), "{name}: la {la} not ~now");
            assert!(it["size"].parse::<u32>().unwrap() > 5, "{name}");
        }
        // the class filter: the items' own class, another one, a list with empty pieces
        let cls = &a["cls"];
        assert_eq!(dump(&mut s, cls).len(), 2, "{name}");
        assert_eq!(dump(&mut s, &format!(",{cls},,")).len(), 2, "{name}");
        let other = if cls == "2" { "3" } else { "2" };
        assert!(dump(&mut s, other).is_empty(), "{name}");
        assert_eq!(dump(&mut s, "hash").len(), 2, "{name}");
        assert!(dump(&mut s, "63").is_empty(), "{name}");
        for bad in ["0", "64", "99", "a", "1,x"] {
            expect(&mut s, format!("lru_crawler metadump {bad}\r\n").as_bytes(), b"BADCLASS invalid class id\r\n");
        }
        expect(&mut s, b"lru_crawler metadump\r\n", b"ERROR\r\n");
        expect(&mut s, b"lru_crawler metadump all x\r\n", b"ERROR\r\n");
        // replies still queued on the connection: refused, and the connection stays usable
        let v = version(&mut s);
        expect(
            &mut s,
            b"version\r\nlru_crawler metadump all\r\n",
            format!("VERSION {v}\r\nERROR cannot pipeline other commands before metadump\r\n").as_bytes(),
        );
        expect(&mut s, b"lru_crawler crawl 63\r\n", b"OK\r\n");
        expect(&mut s, b"lru_crawler crawl 64\r\n", b"BADCLASS invalid class id\r\n");
        expect(&mut s, b"get plain\r\n", b"VALUE plain 5 2\r\nxy\r\nEND\r\n");
    }
}

fn version(s: &mut TcpStream) -> String {
    s.write_all(b"version\r\n").unwrap();
    let mut buf = [0u8; 128];
    let n = s.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).trim_end().strip_prefix("VERSION ").unwrap().to_string()
}

#[test]
fn crawler_switches_and_dump_permission() {
    for (name, srv) in servers(&["-o", "no_lru_crawler"]) {
        let mut s = srv.connect();
        expect(&mut s, b"lru_crawler metadump all\r\n", b"CLIENT_ERROR lru crawler disabled\r\n");
        expect(&mut s, b"lru_crawler metadump 99\r\n", b"CLIENT_ERROR lru crawler disabled\r\n");
        expect(&mut s, b"lru_crawler crawl all\r\n", b"CLIENT_ERROR lru crawler disabled\r\n");
        expect(&mut s, b"lru_crawler enable\r\n", b"OK\r\n");
        std::thread::sleep(Duration::from_millis(100));
        expect(&mut s, b"lru_crawler metadump all\r\n", b"END\r\n");
        let _ = name;
    }
    for (name, srv) in servers(&["-X"]) {
        let mut s = srv.connect();
        expect(&mut s, b"lru_crawler metadump all\r\n", b"ERROR metadump not allowed\r\n");
        let _ = name;
    }
    // rustcached only: memcached 1.6.18 cannot restart its crawler thread once disabled
    // ("ERROR failed to start lru crawler thread"); we can.
    let srv = Server::start(&[]);
    let mut s = srv.connect();
    expect(&mut s, b"lru_crawler disable\r\n", b"OK\r\n");
    expect(&mut s, b"lru_crawler metadump all\r\n", b"CLIENT_ERROR lru crawler disabled\r\n");
    expect(&mut s, b"lru_crawler enable\r\n", b"OK\r\n");
    expect(&mut s, b"lru_crawler metadump all\r\n", b"END\r\n");
}

/// 300,000 items make a ~20 MB dump, five times the output high-water mark: it must arrive
/// complete and in order, and a second client must be served while the first one's dump waits
/// for it to read.
#[test]
fn large_metadump_streams_and_others_are_served() {
    let srv = Server::start(&["-m", "256", "-t", "1"]);
    let mut s = srv.connect();
    const N: usize = 300_000;
    let mut batch = Vec::new();
    for i in 0..N {
        batch.extend_from_slice(format!("set key:{i:08} 0 0 10 noreply\r\n0123456789\r\n").as_bytes());
        if batch.len() > 1 << 20 || i == N - 1 {
            s.write_all(&batch).unwrap();
            batch.clear();
        }
    }
    // A debug build on a loaded machine takes more than the usual 5 s to store them all.
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    expect(&mut s, b"version\r\n", b"VERSION 1.6.18\r\n");
    s.write_all(b"lru_crawler metadump all\r\n").unwrap();
    // Do not read yet: the dump pauses once the socket buffers and 4 MB are full.
    std::thread::sleep(Duration::from_millis(300));
    let mut other = srv.connect();
    expect(&mut other, b"get key:00000007\r\n", b"VALUE key:00000007 0 10\r\n0123456789\r\nEND\r\n");
    let mut all = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    while !all.ends_with(b"END\r\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed mid-dump after {} bytes", all.len());
        all.extend_from_slice(&buf[..n]);
    }
    assert!(all.len() > 4 * (OUTPUT_HIGH_WATER_MB << 20), "dump only {} bytes", all.len());
    let text = String::from_utf8(all).unwrap();
    let mut keys: Vec<&str> = text.lines().filter(|l| *l != "END").map(|l| l[4..].split(' ').next().unwrap()).collect();
    assert_eq!(keys.len(), N);
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), N, "duplicate lines in the dump");
    // the connection goes on with ordinary commands afterwards
    expect(&mut s, b"get key:00000001\r\n", b"VALUE key:00000001 0 10\r\n0123456789\r\nEND\r\n");
}

const OUTPUT_HIGH_WATER_MB: usize = 4;

const MEMCACHED_TOOL: &str = "/usr/share/memcached/scripts/memcached-tool";

fn memcached_tool(srv: &Server, args: &[&str]) -> String {
    let out = std::process::Command::new("perl")
        .arg(MEMCACHED_TOOL)
        .arg(srv.addr())
        .args(args)
        .output()
        .expect("run memcached-tool");
    assert!(out.status.success(), "memcached-tool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// memcached's own `memcached-tool` (Debian's memcached package) lists keys and dumps a
/// rustcached node as `add` commands that restore it into another node; with a key limit it
/// hangs up mid-dump, which must leave the server serving.
#[test]
fn memcached_tool_dump_restores_into_another_node() {
    common::needs(std::path::Path::new(MEMCACHED_TOOL).exists(), "memcached-tool (apt-get install memcached)");
    let src = Server::start(&[]);
    let mut s = src.connect();
    for i in 0..50 {
        expect(&mut s, format!("set k{i} {i} 0 4\r\nv{i:03}\r\n").as_bytes(), b"STORED\r\n");
    }
    expect(&mut s, b"set with%sign 7 0 1\r\nx\r\n", b"STORED\r\n");
    let keys = memcached_tool(&src, &["keys"]);
    assert_eq!(keys.lines().filter(|l| l.starts_with("key=")).count(), 51, "{keys}");
    assert!(keys.contains("key=with%25sign "), "{keys}");

    let dumped = memcached_tool(&src, &["dump"]);
    let dst = Server::start(&[]);
    let mut d = dst.connect();
    d.write_all(dumped.as_bytes()).unwrap();
    let stored = "STORED\r\n".repeat(51);
    assert_eq!(String::from_utf8_lossy(&common::read_n(&mut d, stored.len())), stored);
    expect(
        &mut d,
        b"get k7 k49 with%sign\r\n",
        b"VALUE k7 7 4\r\nv007\r\nVALUE k49 49 4\r\nv049\r\nVALUE with%sign 7 1\r\nx\r\nEND\r\n",
    );

    let limited = memcached_tool(&src, &["dump", "5"]);
    assert_eq!(limited.matches("add ").count(), 5, "{limited}");
    expect(&mut s, b"get k1\r\n", b"VALUE k1 1 4\r\nv001\r\nEND\r\n");
}

//! What memcached's own operator-facing test files check (t/stats-detail.t, t/stats-conns.t,
//! t/issue_61.t, t/issue_67.t, t/stats.t's field count), rewritten as scenarios run against
//! rustcached and against Debian's memcached 1.6.18 when it is installed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{expect, free_port, is_root, servers, stats};

fn bins() -> Vec<&'static str> {
    vec![common::rustcached_bin(), common::memcached_bin()]
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Kill {
    let mut cmd = Command::new(bin);
    if is_root() {
        cmd.args(["-u", "root"]);
    }
    cmd.args(args).envs(env.iter().copied());
    Kill(cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap())
}

fn tmp(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("rc-operators-{tag}-{}", std::process::id()))
}

#[test]
fn stats_reset_clears_the_detail_prefixes() {
    for (name, srv) in servers(&[]) {
        let mut s = srv.connect();
        expect(&mut s, b"stats detail on\r\n", b"OK\r\n");
        expect(&mut s, b"set foo:123 0 0 6\r\nfooval\r\n", b"STORED\r\n");
        expect(&mut s, b"delete foo:125\r\n", b"NOT_FOUND\r\n");
        expect(&mut s, b"stats detail dump\r\n", b"PREFIX foo get 0 hit 0 set 1 del 1\r\nEND\r\n");
        expect(&mut s, b"stats reset\r\n", b"RESET\r\n");
        expect(&mut s, b"stats detail dump\r\n", b"END\r\n");
        expect(&mut s, b"get foo:123\r\n", b"VALUE foo:123 0 6\r\nfooval\r\nEND\r\n");
        expect(&mut s, b"stats detail dump\r\n", b"PREFIX foo get 1 hit 1 set 0 del 0\r\nEND\r\n");
        // collection stays on across a reset; turned off, the counts stay
        expect(&mut s, b"stats detail off\r\n", b"OK\r\n");
        expect(&mut s, b"get foo:123\r\n", b"VALUE foo:123 0 6\r\nfooval\r\nEND\r\n");
        expect(&mut s, b"stats detail dump\r\n", b"PREFIX foo get 1 hit 1 set 0 del 0\r\nEND\r\n");
        eprintln!("{name}: ok");
    }
}

fn unix_stats_conns(path: &std::path::Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut busy = loop {
        match UnixStream::connect(path) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("{}: {e}", path.display()),
        }
    };
    busy.write_all(b"set foo 0 0 6\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(1100)); // secs_since_last_cmd becomes nonzero
    let mut s = UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"stats conns\r\n").unwrap();
    let out = common::read_until_end(&mut s);
    drop(busy);
    out
}

/// `stats conns` lines as fd → field → value.
fn by_fd(text: &str) -> BTreeMap<u32, BTreeMap<String, String>> {
    let mut out: BTreeMap<u32, BTreeMap<String, String>> = BTreeMap::new();
    for l in text.lines().filter_map(|l| l.strip_prefix("STAT ")) {
        let (k, v) = l.split_once(' ').unwrap();
        let (fd, f) = k.split_once(':').unwrap();
        out.entry(fd.parse().unwrap()).or_default().insert(f.into(), v.into());
    }
    out
}

#[test]
fn stats_conns_shows_states_and_the_unix_listen_address() {
    for bin in bins() {
        // short: memcached 1.6.18 cuts a client's listen_addr path at 31 bytes
        let path = std::env::temp_dir().join(format!("rco{}-{}", std::process::id(), bin.len()));
        let _ = std::fs::remove_file(&path);
        let p = path.to_str().unwrap();
        let _srv = spawn(bin, &["-s", p], &[]);
        let conns = by_fd(&unix_stats_conns(&path));
        let listener = conns.values().find(|c| c["state"] == "conn_listening").expect("a listener");
        assert_eq!(listener["addr"], format!("unix:{p}"), "{bin}");
        let clients: Vec<_> = conns.values().filter(|c| c["state"] != "conn_listening").collect();
        assert!(clients.iter().all(|c| c["listen_addr"] == format!("unix:{p}")), "{bin}: {conns:?}");
        let states: BTreeSet<&str> = clients.iter().map(|c| c["state"].as_str()).collect();
        assert_eq!(states, BTreeSet::from(["conn_nread", "conn_parse_cmd"]), "{bin}");
        assert!(clients.iter().any(|c| c["secs_since_last_cmd"] != "0"), "{bin}: {conns:?}");
        let _ = std::fs::remove_file(&path);
    }
    // TCP and UDP listeners, an idle new client and one between commands
    for (name, srv) in servers(&[]) {
        let fresh = srv.connect();
        let mut used = srv.connect();
        expect(&mut used, b"get a\r\n", b"END\r\n");
        let mut s = srv.connect();
        s.write_all(b"stats conns\r\n").unwrap();
        let conns = by_fd(&common::read_until_end(&mut s));
        let port = srv.port;
        let listen = conns.values().find(|c| c["state"] == "conn_listening").expect("listener");
        assert_eq!(listen["addr"], format!("tcp:127.0.0.1:{port}"), "{name}");
        let fresh_addr = format!("tcp:{}", fresh.local_addr().unwrap());
        let used_addr = format!("tcp:{}", used.local_addr().unwrap());
        let state_of = |addr: &str| conns.values().find(|c| c["addr"] == addr).map(|c| c["state"].clone());
        assert_eq!(state_of(&fresh_addr).as_deref(), Some("conn_new_cmd"), "{name}: {conns:?}");
        assert_eq!(state_of(&used_addr).as_deref(), Some("conn_read"), "{name}: {conns:?}");
    }
}

#[test]
fn dash_r_yields_after_that_many_requests() {
    for (name, srv) in servers(&["-R", "1"]) {
        let mut s = srv.connect();
        let six = "set foobar 0 0 5\r\nBubba\r\n".repeat(6);
        expect(&mut s, six.as_bytes(), "STORED\r\n".repeat(6).as_bytes());
        let yields: u64 = stats(&mut s, "")["conn_yields"].parse().unwrap();
        assert!(yields >= 5, "{name}: {yields} yields");
    }
    // The default (-R 20): a 16-deep pipeline does not yield.
    for (name, srv) in servers(&[]) {
        let mut s = srv.connect();
        let sixteen = "set foobar 0 0 5\r\nBubba\r\n".repeat(16);
        expect(&mut s, sixteen.as_bytes(), "STORED\r\n".repeat(16).as_bytes());
        assert_eq!(stats(&mut s, "")["conn_yields"], "0", "{name}");
    }
}

#[test]
fn stats_fields_follow_the_settings_as_memcacheds() {
    let mc = common::memcached_bin();
    for opts in [&[][..], &["-o", "no_lru_crawler,no_lru_maintainer"], &["-o", "no_slab_reassign"]] {
        let names = |bin: &str| -> Vec<String> {
            let srv = common::Server::start_bin(bin, opts);
            let mut s = srv.connect();
            s.write_all(b"stats\r\n").unwrap();
            let text = common::read_until_end(&mut s);
            text.lines().filter_map(|l| l.strip_prefix("STAT ")).map(|l| l.split(' ').next().unwrap().into()).collect()
        };
        let (ours, theirs) = (names(common::rustcached_bin()), names(mc));
        assert_eq!(ours, theirs, "{opts:?}");
    }
    // memcached's t/stats.t starts its server with `-o no_lru_crawler,no_lru_maintainer` and
    // counts 83 fields.
    let srv = common::Server::start(&["-o", "no_lru_crawler,no_lru_maintainer"]);
    assert_eq!(stats(&mut srv.connect(), "").len(), 83);
}

/// t/issue_67.t: which ports end up in `MEMCACHED_PORT_FILENAME` for each -p/-U combination.
#[test]
fn port_file_lists_what_the_port_flags_ask_for() {
    let dir = tmp("ports");
    std::fs::create_dir_all(&dir).unwrap();
    for bin in bins() {
        let (p1, p2) = (free_port(), free_port());
        let (a, b) = (p1.to_string(), p2.to_string());
        // (flags, TCP INET port, UDP INET port): Some(0) = any kernel-picked port, None = absent
        let cases: Vec<(Vec<&str>, Option<u16>, Option<u16>)> = vec![
            (vec!["-p", &a], Some(p1), None),
            (vec!["-U", &a], Some(p1), Some(p1)),
            (vec!["-p", "-1"], Some(0), None),
            (vec!["-U", "-1"], Some(0), Some(0)),
            (vec!["-p", "0"], None, None),
            (vec!["-p", &a, "-U", &b], Some(p1), Some(p2)),
            (vec!["-p", &a, "-U", "0"], Some(p1), None),
            (vec!["-p", "-1", "-U", &b], Some(0), Some(p2)),
            (vec!["-p", &a, "-U", "-1"], Some(p1), Some(0)),
        ];
        for (i, (flags, tcp, udp)) in cases.into_iter().enumerate() {
            let file = dir.join(format!("ports-{}-{i}", bin.len()));
            let mut args = vec!["-l", "127.0.0.1"];
            args.extend(&flags);
            let _srv = spawn(bin, &args, &[("MEMCACHED_PORT_FILENAME", file.to_str().unwrap())]);
            let deadline = Instant::now() + Duration::from_secs(5);
            let text = loop {
                if let Ok(t) = std::fs::read_to_string(&file) {
                    break t;
                }
                assert!(Instant::now() < deadline, "{bin} {flags:?}: no port file");
                std::thread::sleep(Duration::from_millis(10));
            };
            if flags == ["-p", "-1", "-U", &b] {
                // stats settings says -1 for a kernel-picked port
                let tcp_port = text.lines().find_map(|l| l.strip_prefix("TCP INET: ")).unwrap().trim().parse().unwrap();
                let mut s = std::net::TcpStream::connect(("127.0.0.1", tcp_port)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                assert_eq!(stats(&mut s, "settings")["tcpport"], "-1", "{bin}");
            }
            let ports: BTreeMap<&str, u16> = text
                .lines()
                .map(|l| l.split_once(": ").unwrap())
                .map(|(k, v)| (k, v.trim().parse().unwrap()))
                .collect();
            for (kind, want) in [("TCP INET", tcp), ("UDP INET", udp)] {
                match (want, ports.get(kind)) {
                    (None, got) => assert_eq!(got, None, "{bin} {flags:?} {kind}"),
                    (Some(0), Some(&got)) => assert!(got != 0 && got != 11211, "{bin} {flags:?} {kind}"),
                    (Some(p), got) => assert_eq!(got, Some(&p), "{bin} {flags:?} {kind}"),
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

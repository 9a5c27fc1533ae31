//! Scale-out: several rustcached nodes behind client-side ketama and behind twemproxy.
//!
//! * `tests/ring_vectors/*.txt` (recorded from pylibmc / libmemcached by `record.py` there):
//!   `rustcached::ring` must place every recorded key where the real client did.
//! * `rustcached-ring`: the command prints the same placements and plans moves.
//! * pylibmc (a subprocess running `tests/scaleout/pylibmc_client.py`) and our ring writing
//!   through the `memcache` crate share three live nodes; a node stops and restarts.
//! * spymemcached (Java, `KetamaConnectionFactory`) writes into three live nodes.
//! * twemproxy (`nutcracker`, ketama + md5, auto-eject) in front of three nodes.
//!
//! Everything listens on 127.0.0.1, counts are bounded, and every process started here is
//! stopped on drop. A live test fails when its external tool
//! (python3-pylibmc, libspymemcached-java + java, nutcracker) is not installed.

mod common;

use common::{free_port, is_root, rustcached_bin, stats, Server};
use rustcached::ring::{self, Algorithm, Hash, Node, Ring};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PYTHON: &str = "/usr/bin/python3"; // Debian's, where python3-pylibmc installs

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------- recorded vectors

struct Vectors {
    file: String,
    algorithm: Algorithm,
    nodes: Vec<Node>,
    /// (key, index of the server the real client picked)
    rows: Vec<(Vec<u8>, usize)>,
}

fn load_vectors() -> Vec<Vectors> {
    let dir = manifest_dir().join("tests/ring_vectors");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let data = std::fs::read(path).unwrap();
            let (mut algorithm, mut nodes, mut rows) = (None, Vec::new(), Vec::new());
            for line in data.split(|&b| b == b'\n').filter(|l| !l.is_empty() && l[0] != b'#') {
                if let Some(v) = line.strip_prefix(b"variant ") {
                    algorithm = Some(match v {
                        b"ketama_weighted" => Algorithm::KetamaWeighted,
                        b"ketama md5" => Algorithm::Ketama(Hash::Md5),
                        b"ketama one_at_a_time" => Algorithm::Ketama(Hash::OneAtATime),
                        other => panic!("{path:?}: unknown variant {}", String::from_utf8_lossy(other)),
                    });
                } else if let Some(list) = line.strip_prefix(b"servers ") {
                    let list = std::str::from_utf8(list).unwrap();
                    nodes = list.split(' ').map(|s| Node::parse(s).unwrap()).collect();
                } else {
                    let at = line.iter().rposition(|&b| b == b' ').expect("key index");
                    let index = std::str::from_utf8(&line[at + 1..]).unwrap().parse().unwrap();
                    rows.push((line[..at].to_vec(), index));
                }
            }
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            Vectors { algorithm: algorithm.unwrap_or_else(|| panic!("{file}: no variant line")), file, nodes, rows }
        })
        .collect()
}

#[test]
fn ring_reproduces_recorded_client_vectors() {
    let all = load_vectors();
    assert!(all.len() >= 5, "expected the recorded vector files, found {}", all.len());
    for v in &all {
        assert!(v.nodes.len() >= 3 && v.rows.len() >= 3000, "{}: too small", v.file);
        let ring = Ring::new(v.nodes.clone(), v.algorithm).unwrap();
        let wrong: Vec<String> = v
            .rows
            .iter()
            .filter(|(key, index)| ring.node_index(key) != *index)
            .map(|(key, index)| format!("{} -> {index}", String::from_utf8_lossy(key)))
            .collect();
        assert!(
            wrong.is_empty(),
            "{}: {} of {} keys placed differently, e.g. {:?}",
            v.file,
            wrong.len(),
            v.rows.len(),
            &wrong[..wrong.len().min(5)]
        );
        let mut spread = vec![0; v.nodes.len()];
        v.rows.iter().for_each(|(_, i)| spread[*i] += 1);
        eprintln!("{}: {} keys agree ({:?}), spread {spread:?}", v.file, v.rows.len(), v.algorithm);
    }
}

// ---------------------------------------------------------------- the command

fn ring_cmd(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rustcached-ring")).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

/// The number in the command's `moved N of K keys (P%)` line.
fn moved_line(out: &str) -> usize {
    let line = out.lines().find(|l| l.starts_with("moved ")).unwrap_or_else(|| panic!("no moved line in {out}"));
    line.split(' ').nth(1).unwrap().parse().unwrap()
}

#[test]
fn ring_command_places_keys_like_libmemcached() {
    let v = load_vectors().into_iter().find(|v| v.file == "libmemcached_weighted_hostnames.txt").unwrap();
    let servers: Vec<String> = v.nodes.iter().map(|n| format!("{n}:{}", n.weight)).collect();
    let servers = servers.join(",");
    let rows: Vec<(String, usize)> =
        v.rows.iter().take(60).map(|(k, i)| (String::from_utf8(k.clone()).unwrap(), *i)).collect();
    let mut args = vec!["--servers", &servers];
    args.extend(rows.iter().map(|(k, _)| k.as_str()));
    let (code, out, err) = ring_cmd(&args);
    assert_eq!(code, 0, "{err}");
    let expect: String = rows.iter().map(|(k, i)| format!("{k}\t{}\n", v.nodes[*i])).collect();
    assert_eq!(out, expect);
}

#[test]
fn ring_command_plans_adding_and_removing_nodes() {
    let three = "10.1.0.1:11211,10.1.0.2:11211,10.1.0.3:11211";
    let before = Ring::parse(three, Algorithm::KetamaWeighted).unwrap();
    let after_add = Ring::parse(&format!("{three},10.1.0.4:11211"), Algorithm::KetamaWeighted).unwrap();
    let after_remove = Ring::parse("10.1.0.1:11211,10.1.0.3:11211", Algorithm::KetamaWeighted).unwrap();
    let keys = 30_000;

    let (code, out, err) = ring_cmd(&["--servers", three, "--add", "10.1.0.4:11211", "--keys", "30000"]);
    assert_eq!(code, 0, "{err}");
    let moved = moved_line(&out);
    // Consistent hashing: exactly the keys the new node takes move, about 1/4 of them.
    assert_eq!(moved, ring::spread(&after_add, keys)[3], "{out}");
    assert!((0.15..0.35).contains(&(moved as f64 / keys as f64)), "{out}");
    eprintln!("add a 4th node:\n{out}");

    let (code, out, err) = ring_cmd(&["--servers", three, "--remove", "10.1.0.2:11211", "--keys", "30000"]);
    assert_eq!(code, 0, "{err}");
    let moved = moved_line(&out);
    assert_eq!(moved, ring::spread(&before, keys)[1], "{out}");
    assert_eq!(moved, ring::moved(&before, &after_remove, keys));
    assert!((0.2..0.47).contains(&(moved as f64 / keys as f64)), "{out}");
    eprintln!("remove 1 of 3 nodes:\n{out}");

    let (code, out, _) = ring_cmd(&["--servers", three, "--keys", "3000", "--algorithm", "jump"]);
    assert_eq!(code, 0);
    assert!(out.contains("10.1.0.3:11211") && out.ends_with("3000 keys\n"), "{out}");

    for bad in [
        &["--servers", ""][..],
        &["--servers", "a:1,b:x"],
        &["--servers", "a:1,b:2", "--remove", "c:3"],
        &["--servers", "a:1,b:2", "--add", "b:2"],
        &["--servers", "a:1", "--algorithm", "modula", "k"],
        &["--servers", "a:1", "--keys", "10", "k"],
    ] {
        let (code, out, err) = ring_cmd(bad);
        assert_eq!(code, 2, "{bad:?}: {out}");
        assert!(err.starts_with("rustcached-ring: "), "{bad:?}: {err}");
    }
}

// ---------------------------------------------------------------- live helpers

/// Start rustcached on a given port (to restart a node where clients expect it).
fn start_on(port: u16) -> Server {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut cmd = Command::new(rustcached_bin());
        cmd.args(["-p", &port.to_string(), "-U", "0", "-l", "127.0.0.1", "-m", "16"]);
        if is_root() {
            cmd.args(["-u", "root"]);
        }
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if common::listening(child.id(), port) && matches!(child.try_wait(), Ok(None)) {
                return Server { child, port };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(Instant::now() < deadline, "could not restart rustcached on port {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A text-protocol connection that reads replies line by line.
struct Conn(BufReader<TcpStream>);

impl Conn {
    fn open(port: u16) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Conn(BufReader::new(s))
    }

    fn send(&mut self, req: &str) {
        self.0.get_mut().write_all(req.as_bytes()).unwrap();
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.0.read_line(&mut line).unwrap();
        line
    }

    /// Send one command and return its one-line reply.
    fn cmd(&mut self, req: &str) -> String {
        self.send(req);
        self.line()
    }

    /// Send a retrieval command; return the keys and values, or the error line.
    fn get(&mut self, req: &str) -> Result<Vec<(String, String)>, String> {
        self.send(req);
        let mut out = Vec::new();
        loop {
            let line = self.line();
            if line == "END\r\n" {
                return Ok(out);
            }
            let Some(head) = line.strip_prefix("VALUE ") else { return Err(line) };
            let parts: Vec<&str> = head.split_whitespace().collect();
            let len: usize = parts[2].parse().unwrap();
            let mut value = vec![0; len + 2];
            self.0.read_exact(&mut value).unwrap();
            value.truncate(len);
            out.push((parts[0].to_string(), String::from_utf8(value).unwrap()));
        }
    }
}

/// Which of `keys` the node on `port` holds, asked directly with `get` (100 keys at a time).
fn held_keys(port: u16, keys: &[String]) -> BTreeSet<String> {
    let mut conn = Conn::open(port);
    let mut held = BTreeSet::new();
    for batch in keys.chunks(100) {
        let got = conn.get(&format!("get {}\r\n", batch.join(" "))).unwrap();
        held.extend(got.into_iter().map(|(k, _)| k));
    }
    held
}

fn curr_items(port: u16) -> usize {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stats(&mut s, "")["curr_items"].parse().unwrap()
}

/// The keys (of `keys`) that `ring` assigns to each of its nodes.
fn predicted(ring: &Ring, keys: &[String]) -> Vec<BTreeSet<String>> {
    let mut out = vec![BTreeSet::new(); ring.nodes().len()];
    for k in keys {
        out[ring.node_index(k.as_bytes())].insert(k.clone());
    }
    out
}

fn pct(part: usize, whole: usize) -> String {
    format!("{:.1}%", 100.0 * part as f64 / whole as f64)
}

// ---------------------------------------------------------------- pylibmc + Rust ring

fn pylibmc_available() -> bool {
    Command::new(PYTHON).args(["-c", "import pylibmc"]).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// What one run of tests/scaleout/pylibmc_client.py reported.
#[derive(Debug)]
struct PyReport {
    ok: usize,
    failed: usize,
    miss: usize,
    bad: Vec<usize>,
}

fn pylibmc(servers: &str, behavior: &str, action: &str, prefix: &str, count: usize) -> PyReport {
    let script = manifest_dir().join("tests/scaleout/pylibmc_client.py");
    let out = Command::new(PYTHON)
        .arg(script)
        .args([servers, behavior, action, prefix, "0", &count.to_string()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "pylibmc {action} failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    let field = |name: &str| -> String {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ').or(Some(rest))))
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
            .to_string()
    };
    PyReport {
        ok: field("ok").parse().unwrap(),
        failed: field("failed").parse().unwrap(),
        miss: field("miss").parse().unwrap(),
        bad: field("bad").split_whitespace().map(|i| i.parse().unwrap()).collect(),
    }
}

#[test]
fn pylibmc_and_rust_ring_share_three_live_nodes() {
    common::needs(pylibmc_available(), "python3-pylibmc");
    const N: usize = 3000;
    let mut nodes: Vec<Option<Server>> = (0..3).map(|_| Some(Server::start(&["-m", "16"]))).collect();
    let ports: Vec<u16> = nodes.iter().map(|n| n.as_ref().unwrap().port).collect();
    let servers = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect::<Vec<_>>().join(",");
    let ring = Ring::parse(&servers, Algorithm::KetamaWeighted).unwrap();
    let py_keys: Vec<String> = (0..N).map(|i| format!("py:{i}")).collect();
    let expect = predicted(&ring, &py_keys);

    // 1. pylibmc (libmemcached ketama_weighted) writes; every node holds exactly our ring's share.
    let r = pylibmc(&servers, "ketama_weighted", "set", "py:", N);
    assert_eq!((r.ok, r.failed), (N, 0), "{r:?}");
    for (n, &port) in ports.iter().enumerate() {
        assert_eq!(held_keys(port, &py_keys), expect[n], "node {n}: keys differ from the ring's prediction");
        assert_eq!(curr_items(port), expect[n].len());
    }
    let spread: Vec<String> = expect.iter().map(|s| format!("{} ({})", s.len(), pct(s.len(), N))).collect();
    eprintln!("pylibmc ketama_weighted, {N} keys over 3 nodes: {}", spread.join(", "));

    // 2. Our ring routes writes through the `memcache` crate; pylibmc finds every one.
    let clients: Vec<memcache::Client> = ports
        .iter()
        .map(|p| memcache::Client::connect(format!("memcache://127.0.0.1:{p}?protocol=ascii&timeout=5")).unwrap())
        .collect();
    for i in 0..N {
        let key = format!("rs:{i}");
        clients[ring.node_index(key.as_bytes())].set(&key, format!("v{i}").as_str(), 0).unwrap();
    }
    let r = pylibmc(&servers, "ketama_weighted", "get_multi", "rs:", N);
    assert_eq!((r.ok, r.miss), (N, 0), "pylibmc misses keys our ring placed: {:?}", &r.bad[..r.bad.len().min(5)]);
    let r = pylibmc(&servers, "ketama_weighted", "get", "py:", N);
    assert_eq!(r.ok, N);

    // 3. Stop one node: exactly its keys fail, the rest still hit (for pylibmc and for us).
    let victim = 1;
    drop(clients);
    nodes[victim].take().unwrap().terminate();
    let lost: Vec<usize> = (0..N).filter(|&i| expect[victim].contains(&py_keys[i])).collect();
    let r = pylibmc(&servers, "ketama_weighted", "get", "py:", N);
    assert_eq!(r.bad, lost, "keys that fail must be exactly the stopped node's");
    assert_eq!(r.ok, N - lost.len());
    assert_eq!(r.failed + r.miss, lost.len());
    let fraction = lost.len() as f64 / N as f64;
    assert!((0.2..0.47).contains(&fraction), "stopping 1 of 3 nodes lost {}", pct(lost.len(), N));
    eprintln!(
        "node {victim} stopped: {} of {N} keys unavailable ({}), {} still hit",
        lost.len(),
        pct(lost.len(), N),
        r.ok
    );
    for n in [0, 2] {
        let client =
            memcache::Client::connect(format!("memcache://127.0.0.1:{}?protocol=ascii&timeout=5", ports[n])).unwrap();
        for key in expect[n].iter().take(200) {
            assert!(client.get::<String>(key).unwrap().is_some(), "{key} lost from a live node");
        }
    }

    // 4. Restart it on the same port: rewritten keys go back to it, and everything hits again.
    nodes[victim] = Some(start_on(ports[victim]));
    let r = pylibmc(&servers, "ketama_weighted", "set", "py:", N);
    assert_eq!((r.ok, r.failed), (N, 0), "{r:?}");
    assert_eq!(held_keys(ports[victim], &py_keys), expect[victim]);
    assert_eq!(curr_items(ports[victim]), expect[victim].len());
    let r = pylibmc(&servers, "ketama_weighted", "get", "py:", N);
    assert_eq!((r.ok, r.bad.len()), (N, 0));
}

// ---------------------------------------------------------------- spymemcached

const SPYMEMCACHED_JAR: &str = "/usr/share/java/spymemcached.jar";

fn java_available() -> bool {
    Command::new("java").arg("-version").stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

#[test]
fn spymemcached_ketama_writes_where_our_ring_says() {
    common::needs(Path::new(SPYMEMCACHED_JAR).exists() && java_available(), "libspymemcached-java and java");
    const N: usize = 2000;
    let nodes: Vec<Server> = (0..3).map(|_| Server::start(&["-m", "16"])).collect();
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr()).collect();
    // spymemcached names points "ip:port-N": the same as libmemcached while the port is not 11211.
    let ring = Ring::parse(&addrs.join(","), Algorithm::KetamaWeighted).unwrap();
    let script = manifest_dir().join("tests/scaleout/SpyClient.java");
    let out = Command::new("java")
        .args(["-cp", SPYMEMCACHED_JAR])
        .arg(script)
        .args([&addrs.join(" "), "spy:", &N.to_string()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "SpyClient: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.lines().any(|l| l == format!("ok {N}")), "{stdout}");
    for line in stdout.lines().filter_map(|l| l.strip_prefix("node ")) {
        let (key, node) = line.split_once(' ').unwrap();
        assert_eq!(ring.node(key.as_bytes()).to_string(), node, "spymemcached's locator for {key}");
    }
    let keys: Vec<String> = (0..N).map(|i| format!("spy:{i}")).collect();
    let expect = predicted(&ring, &keys);
    for (n, node) in nodes.iter().enumerate() {
        assert_eq!(held_keys(node.port, &keys), expect[n], "node {n}: spymemcached and our ring disagree");
    }
    let spread: Vec<usize> = expect.iter().map(|s| s.len()).collect();
    eprintln!("spymemcached KetamaConnectionFactory, {N} keys over 3 nodes: {spread:?}");
}

// ---------------------------------------------------------------- twemproxy

fn nutcracker_bin() -> Option<&'static str> {
    ["/usr/sbin/nutcracker", "/usr/bin/nutcracker", "/usr/local/sbin/nutcracker", "/usr/local/bin/nutcracker"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

/// A nutcracker process and its config file; both go away on drop.
struct Proxy {
    child: Child,
    port: u16,
    conf: PathBuf,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.conf);
    }
}

const RETRY_MS: u64 = 1000;

fn start_proxy(bin: &str, node_ports: &[u16]) -> Proxy {
    let port = free_port();
    let servers: String = node_ports.iter().map(|p| format!("   - 127.0.0.1:{p}:1\n")).collect();
    let yaml = format!(
        "rustcached:\n  listen: 127.0.0.1:{port}\n  hash: md5\n  distribution: ketama\n  timeout: 2000\n  \
         auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: {RETRY_MS}\n  \
         servers:\n{servers}"
    );
    let conf = std::env::temp_dir().join(format!("rustcached-scaleout-{}-{port}.yml", std::process::id()));
    std::fs::write(&conf, yaml).unwrap();
    let check = Command::new(bin).arg("-t").arg("-c").arg(&conf).output().unwrap();
    assert!(check.status.success(), "nutcracker -t: {}", String::from_utf8_lossy(&check.stderr));
    let child = Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .args(["-s", &free_port().to_string(), "-a", "127.0.0.1", "-v", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut proxy = Proxy { child, port, conf };
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpListener::bind(("127.0.0.1", port)).is_ok() {
        assert!(proxy.child.try_wait().unwrap().is_none(), "nutcracker exited");
        assert!(Instant::now() < deadline, "nutcracker did not listen");
        std::thread::sleep(Duration::from_millis(10));
    }
    proxy
}

/// Send `req` through the proxy until it is not a SERVER_ERROR (an ejected or dead node), up to
/// `tries` times; returns the reply and how many attempts failed.
fn retry_cmd(conn: &mut Conn, req: &str, tries: usize) -> (String, usize) {
    for failed in 0..tries {
        let reply = conn.cmd(req);
        if !reply.starts_with("SERVER_ERROR") {
            return (reply, failed);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{req:?}: still SERVER_ERROR after {tries} tries");
}

#[test]
fn twemproxy_ketama_in_front_of_three_nodes() {
    let bin = nutcracker_bin().expect("nutcracker (twemproxy) is not installed (.ci/run installs it)");
    const N: usize = 1500;
    let mut nodes: Vec<Option<Server>> = (0..3).map(|_| Some(Server::start(&["-m", "16"]))).collect();
    let ports: Vec<u16> = nodes.iter().map(|n| n.as_ref().unwrap().port).collect();
    let proxy = start_proxy(bin, &ports);
    let mut c = Conn::open(proxy.port);

    // Commands through the proxy.
    assert_eq!(c.cmd("set tw:a 5 0 3\r\nabc\r\n"), "STORED\r\n");
    assert_eq!(c.get("get tw:a\r\n"), Ok(vec![("tw:a".into(), "abc".into())]));
    assert_eq!(c.cmd("add tw:a 0 0 1\r\nx\r\n"), "NOT_STORED\r\n");
    assert_eq!(c.cmd("append tw:a 0 0 2\r\nde\r\n"), "STORED\r\n");
    assert_eq!(c.get("get tw:a\r\n"), Ok(vec![("tw:a".into(), "abcde".into())]));
    assert_eq!(c.cmd("delete tw:a\r\n"), "DELETED\r\n");
    assert_eq!(c.cmd("delete tw:a\r\n"), "NOT_FOUND\r\n");
    assert_eq!(c.get("get tw:a\r\n"), Ok(vec![]));
    assert_eq!(c.cmd("set tw:n 0 0 2\r\n10\r\n"), "STORED\r\n");
    assert_eq!(c.cmd("incr tw:n 5\r\n"), "15\r\n");
    assert_eq!(c.cmd("decr tw:n 3\r\n"), "12\r\n");
    assert_eq!(c.cmd("incr tw:none 1\r\n"), "NOT_FOUND\r\n");
    assert_eq!(c.cmd("touch tw:n 100\r\n"), "TOUCHED\r\n");

    // N keys through the proxy land where our ring (ketama + md5, same server list) says.
    let ring = Ring::parse(
        &ports.iter().map(|p| format!("127.0.0.1:{p}")).collect::<Vec<_>>().join(","),
        Algorithm::KetamaWeighted,
    )
    .unwrap();
    let keys: Vec<String> = (0..N).map(|i| format!("tw:{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(c.cmd(&format!("set {k} 0 0 {}\r\nv{i}\r\n", format!("v{i}").len())), "STORED\r\n");
    }
    let expect = predicted(&ring, &keys);
    for (n, &port) in ports.iter().enumerate() {
        assert_eq!(held_keys(port, &keys), expect[n], "node {n}: twemproxy and our ring disagree");
    }
    let spread: Vec<String> = expect.iter().map(|s| format!("{} ({})", s.len(), pct(s.len(), N))).collect();
    eprintln!("twemproxy ketama/md5, {N} keys over 3 nodes: {}", spread.join(", "));

    // Multi-get spanning all nodes comes back complete and in order.
    let batch = &keys[..60];
    let got = c.get(&format!("get {}\r\n", batch.join(" "))).unwrap();
    let want: Vec<(String, String)> = (0..60).map(|i| (keys[i].clone(), format!("v{i}"))).collect();
    assert_eq!(got, want);

    // Stop a node: after twemproxy ejects it, sets succeed and its share goes to the others.
    let victim = 1;
    nodes[victim].take().unwrap().terminate();
    let survivors: Vec<usize> = vec![0, 2];
    let two =
        Ring::new(survivors.iter().map(|&n| ring.nodes()[n].clone()).collect(), Algorithm::KetamaWeighted).unwrap();
    let keys2: Vec<String> = (0..N).map(|i| format!("tw2:{i}")).collect();
    let mut errors = 0;
    for (i, k) in keys2.iter().enumerate() {
        let (reply, failed) = retry_cmd(&mut c, &format!("set {k} 0 0 {}\r\nv{i}\r\n", format!("v{i}").len()), 200);
        assert_eq!(reply, "STORED\r\n");
        errors += failed;
    }
    let expect2 = predicted(&two, &keys2);
    for (at, &n) in survivors.iter().enumerate() {
        assert_eq!(held_keys(ports[n], &keys2), expect2[at], "node {n} after ejection");
    }
    let moved_in = keys2.iter().filter(|k| ring.node_index(k.as_bytes()) == victim).count();
    eprintln!(
        "twemproxy: node {victim} stopped; {errors} SERVER_ERROR replies before/while ejected; all {N} sets stored, \
         {moved_in} ({}) of them on the survivors in place of the stopped node: {} / {}",
        pct(moved_in, N),
        expect2[0].len(),
        expect2[1].len()
    );
    // Keys of the live nodes still hit through the proxy.
    for k in expect[0].iter().chain(expect[2].iter()).take(300) {
        let (reply, _) = retry_cmd(&mut c, &format!("get {k}\r\n"), 200);
        assert!(reply.starts_with(&format!("VALUE {k} ")), "{k}: {reply}");
        c.line();
        assert_eq!(c.line(), "END\r\n");
    }

    // Restart it on the same port: once the retry timeout passes, its keys go back to it.
    nodes[victim] = Some(start_on(ports[victim]));
    std::thread::sleep(Duration::from_millis(RETRY_MS + 500));
    let keys3: Vec<String> = (0..N).map(|i| format!("tw3:{i}")).collect();
    for (i, k) in keys3.iter().enumerate() {
        let (reply, _) = retry_cmd(&mut c, &format!("set {k} 0 0 {}\r\nv{i}\r\n", format!("v{i}").len()), 200);
        assert_eq!(reply, "STORED\r\n");
    }
    let expect3 = predicted(&ring, &keys3);
    for (n, &port) in ports.iter().enumerate() {
        assert_eq!(held_keys(port, &keys3), expect3[n], "node {n} after the restart");
    }
    drop(c);
    drop(proxy);
}

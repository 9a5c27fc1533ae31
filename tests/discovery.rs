//! Cluster auto discovery (`--cluster-file`) against the real binary: the reply bytes of
//! `config get cluster`, the legacy `get AmazonElastiCache:cluster`, binary opcode 0x60 and
//! `config set cluster`; versions across SIGHUP; a bad file at start and on SIGHUP; the
//! answers without `--cluster-file` (compared with memcached 1.6.18 when installed).
//!
//! Then auto-discovery clients we did not write (`tests/discovery/`): django-elastipymemcache
//! and elasticache-auto-discovery + pymemcache (Python, from PyPI), memcached-elasticache and
//! ecad + memcached (Node.js, from npm). Each is given one node of three, must discover all
//! three, spread keys over them, and follow the removal of a node after the file is edited and
//! the nodes get SIGHUP. A missing client fails the test (`.ci/run` installs them).
//!
//! Nothing here depends on the `version` reply's exact form: memcached-elasticache picks the
//! legacy or the new command from it, and both are checked byte for byte on their own.

mod common;

use common::{read_n, require, Server};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The python3 on PATH, where `.ci/run` pip-installs the Python discovery clients.
const PYTHON: &str = "python3";
/// Keys each client stores before and after the node removal.
const NKEYS: usize = 300;
/// Longest wait for one line of a client's transcript.
const LINE_LIMIT: Duration = Duration::from_secs(30);

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("rustcached-discovery-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sighup(s: &Server) {
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(s.child.id() as i32, libc::SIGHUP) };
}

/// Send `req` and return what one `read` brings back (the reply must come in one piece).
fn one_read(s: &mut TcpStream, req: &[u8]) -> Vec<u8> {
    s.write_all(req).unwrap();
    let mut buf = vec![0u8; 65536];
    let n = s.read(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `CONFIG cluster 0 <len>\r\n<payload>\r\nEND\r\n` (head = `CONFIG cluster` or `VALUE AmazonElastiCache:cluster`).
fn framed(head: &str, payload: &str) -> String {
    format!("{head} 0 {}\r\n{payload}\r\nEND\r\n", payload.len())
}

/// A binary request header + body.
fn binary_request(opcode: u8, opaque: u32, extras: &[u8], key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, opcode];
    p.extend_from_slice(&(key.len() as u16).to_be_bytes());
    p.push(extras.len() as u8);
    p.extend_from_slice(&[0, 0, 0]);
    p.extend_from_slice(&((extras.len() + key.len() + value.len()) as u32).to_be_bytes());
    p.extend_from_slice(&opaque.to_be_bytes());
    p.extend_from_slice(&[0; 8]);
    p.extend_from_slice(extras);
    p.extend_from_slice(key);
    p.extend_from_slice(value);
    p
}

/// Poll `config get cluster` until the payload's version line is `version` (after a SIGHUP).
fn wait_version(s: &Server, version: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = s.connect();
        let got = text(&one_read(&mut c, b"config get cluster\r\n"));
        let v = got.lines().nth(1).unwrap_or("").to_string();
        if v == version.to_string() {
            return got;
        }
        assert!(Instant::now() < deadline, "node on {} still answers {got:?}, want version {version}", s.port);
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ------------------------------------------------------------------------- the replies

const TWO_NODES: &str = "# test cluster\nnode1.example|10.0.0.1|11211\n10.0.0.2:11212   # by address\n";
const TWO_PAYLOAD: &str = "1\nnode1.example|10.0.0.1|11211 10.0.0.2|10.0.0.2|11212\n";

#[test]
fn config_get_cluster_is_byte_exact_and_in_one_read() {
    let dir = TempDir::new("exact");
    let file = dir.file("cluster", TWO_NODES);
    let srv = Server::start(&["--cluster-file", file.to_str().unwrap()]);
    let mut c = srv.connect();
    let want = b"CONFIG cluster 0 55\r\n1\nnode1.example|10.0.0.1|11211 10.0.0.2|10.0.0.2|11212\n\r\nEND\r\n";
    assert_eq!(text(&one_read(&mut c, b"config get cluster\r\n")), text(want));
    assert_eq!(text(want), framed("CONFIG cluster", TWO_PAYLOAD));
    // the legacy form of engines before 1.4.14
    assert_eq!(
        text(&one_read(&mut c, b"get AmazonElastiCache:cluster\r\n")),
        framed("VALUE AmazonElastiCache:cluster", TWO_PAYLOAD)
    );
    // on a connection that speaks meta, and pipelined behind other commands
    assert_eq!(
        text(&one_read(&mut c, b"mn\r\nconfig get cluster\r\nmn\r\n")),
        format!("MN\r\n{}MN\r\n", framed("CONFIG cluster", TWO_PAYLOAD))
    );
    // other names, other forms: what memcached answers
    assert_eq!(text(&one_read(&mut c, b"config get other\r\n")), "ERROR\r\n");
    assert_eq!(text(&one_read(&mut c, b"gets AmazonElastiCache:cluster\r\n")), "END\r\n");
    // still a normal cache
    assert_eq!(text(&one_read(&mut c, b"set k 0 0 1\r\nx\r\nget k\r\n")), "STORED\r\nVALUE k 0 1\r\nx\r\nEND\r\n");
    // stats settings names the file and the version
    let st = common::stats(&mut c, "settings");
    assert_eq!(st.get("cluster_file").map(String::as_str), file.to_str());
    assert_eq!(st.get("cluster_version").map(String::as_str), Some("1"));
}

#[test]
fn binary_config_get_returns_the_payload() {
    let dir = TempDir::new("binary");
    let file = dir.file("cluster", TWO_NODES);
    let srv = Server::start(&["--cluster-file", file.to_str().unwrap()]);
    let mut c = srv.connect();
    let payload = TWO_PAYLOAD.as_bytes();
    let mut want = vec![0x81, 0x60, 0, 0, 4, 0, 0, 0];
    want.extend_from_slice(&((4 + payload.len()) as u32).to_be_bytes());
    want.extend_from_slice(&7u32.to_be_bytes());
    want.extend_from_slice(&[0; 8]);
    want.extend_from_slice(&[0; 4]);
    want.extend_from_slice(payload);
    c.write_all(&binary_request(0x60, 7, &[], b"cluster", &[])).unwrap();
    assert_eq!(read_n(&mut c, want.len()), want);
    // other keys are not found; the connection goes on with ordinary commands (noop)
    c.write_all(&binary_request(0x60, 8, &[], b"other", &[])).unwrap();
    let head = read_n(&mut c, 24);
    assert_eq!((head[1], u16::from_be_bytes([head[6], head[7]])), (0x60, 0x0001));
    let body = u32::from_be_bytes([head[8], head[9], head[10], head[11]]) as usize;
    read_n(&mut c, body);
    c.write_all(&binary_request(0x0a, 9, &[], b"", &[])).unwrap();
    assert_eq!(read_n(&mut c, 24)[..2], [0x81, 0x0a]);
}

#[test]
fn without_a_cluster_file_the_answers_are_memcacheds() {
    let mut replies = Vec::new();
    for (name, srv) in common::servers(&[]) {
        let mut c = srv.connect();
        let mut got = one_read(&mut c, b"config get cluster\r\n");
        got.extend(one_read(&mut c, b"get AmazonElastiCache:cluster\r\n"));
        got.extend(one_read(&mut c, b"config set cluster 0 1\r\n"));
        let mut b = srv.connect();
        b.write_all(&binary_request(0x60, 3, &[], b"cluster", &[])).unwrap();
        // memcached discards an unknown opcode's body counted from the end of its key, so it
        // answers only after 7 more bytes
        b.write_all(&[0; 7]).unwrap();
        let head = read_n(&mut b, 24);
        assert_eq!(head.len(), 24, "{name}: no reply to opcode 0x60");
        let body = u32::from_be_bytes([head[8], head[9], head[10], head[11]]) as usize;
        got.extend(&head);
        got.extend(read_n(&mut b, body));
        replies.push((name, got));
    }
    let (_, ours) = &replies[0];
    assert!(ours.starts_with(b"ERROR\r\nEND\r\nERROR\r\n\x81\x60"), "{}", text(ours));
    assert!(ours.ends_with(b"Unknown command"), "{}", text(ours));
    if let Some((_, theirs)) = replies.get(1) {
        assert_eq!(text(ours), text(theirs), "rustcached and memcached differ");
    } else {
        eprintln!("memcached is not installed: checked rustcached only");
    }
}

#[test]
fn sighup_rereads_the_file_and_a_bad_file_keeps_the_old_list() {
    let dir = TempDir::new("sighup");
    let file = dir.file("cluster", TWO_NODES);
    let srv = Server::start(&["--cluster-file", file.to_str().unwrap()]);
    // unchanged file: same version
    sighup(&srv);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(wait_version(&srv, 1), framed("CONFIG cluster", TWO_PAYLOAD));
    // one node removed: version 2
    std::fs::write(&file, "node1.example|10.0.0.1|11211\n").unwrap();
    sighup(&srv);
    assert_eq!(wait_version(&srv, 2), framed("CONFIG cluster", "2\nnode1.example|10.0.0.1|11211\n"));
    // a bad file: the old list stays
    std::fs::write(&file, "node1.example|10.0.0.1|11211\nnode2|not-an-ip|1\n").unwrap();
    sighup(&srv);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(wait_version(&srv, 2), framed("CONFIG cluster", "2\nnode1.example|10.0.0.1|11211\n"));
    // fixed again, and changed: version 3
    std::fs::write(&file, "node3.example|10.0.0.3|11213\n").unwrap();
    sighup(&srv);
    assert_eq!(wait_version(&srv, 3), framed("CONFIG cluster", "3\nnode3.example|10.0.0.3|11213\n"));
    let mut c = srv.connect();
    assert_eq!(common::stats(&mut c, "settings").get("cluster_version").map(String::as_str), Some("3"));
}

#[test]
fn a_bad_file_is_refused_at_start_with_its_line() {
    let dir = TempDir::new("bad");
    let cases = [
        ("node1|10.0.0.1|11211\nnode2|10.0.0.2\n", ":2: expected host|ip|port"),
        ("# only a comment\n", ":1: no nodes listed"),
        ("a:1\nb:0\n", ":2: bad port"),
    ];
    for (body, want) in cases {
        let file = dir.file("cluster", body);
        let out = Command::new(common::rustcached_bin())
            .args(["-p", "0", "-U", "0", "-u", "root", "--cluster-file", file.to_str().unwrap()])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{body:?}: {err}");
        assert!(err.contains(&format!("{}{want}", file.display())), "{body:?}: {err}");
    }
    let missing = dir.0.join("missing");
    let out = Command::new(common::rustcached_bin())
        .args(["-p", "0", "-U", "0", "-u", "root", "--cluster-file", missing.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn config_set_cluster_needs_dash_a() {
    let dir = TempDir::new("set");
    let file = dir.file("cluster", TWO_NODES);
    let new = "5\nnode9.example|10.0.0.9|11219\n";
    let set = format!("config set cluster 0 {}\r\n{new}\r\n", new.len());
    // without -A: refused, the data block is skipped, the list is unchanged
    let srv = Server::start(&["--cluster-file", file.to_str().unwrap()]);
    let mut c = srv.connect();
    assert_eq!(text(&one_read(&mut c, format!("{set}mn\r\n").as_bytes())), "ERROR: config set not enabled\r\nMN\r\n");
    assert_eq!(wait_version(&srv, 1), framed("CONFIG cluster", TWO_PAYLOAD));
    drop(srv);
    // with -A: served at the given version, which must go up
    let srv = Server::start(&["-A", "--cluster-file", file.to_str().unwrap()]);
    let mut c = srv.connect();
    assert_eq!(text(&one_read(&mut c, set.as_bytes())), "STORED\r\n");
    assert_eq!(text(&one_read(&mut c, b"config get cluster\r\n")), framed("CONFIG cluster", new));
    let old = "4\nnode8.example|10.0.0.8|11218\n";
    let got = text(&one_read(&mut c, format!("config set cluster 0 {}\r\n{old}\r\n", old.len()).as_bytes()));
    assert_eq!(got, "CLIENT_ERROR version must be greater than 5\r\n");
    assert_eq!(
        text(&one_read(&mut c, b"config set cluster 0 3\r\nabc\r\n")),
        "CLIENT_ERROR expected <version>\\n<nodes>\r\n"
    );
    // binary config set (0x64), on a binary connection
    let bin = "6\nnode7.example|10.0.0.7|11217\n";
    let mut b = srv.connect();
    b.write_all(&binary_request(0x64, 1, &[0; 4], b"cluster", bin.as_bytes())).unwrap();
    let head = read_n(&mut b, 24);
    assert_eq!((head[1], u16::from_be_bytes([head[6], head[7]])), (0x64, 0));
    assert_eq!(text(&one_read(&mut c, b"config get cluster\r\n")), framed("CONFIG cluster", bin));
}

// ------------------------------------------------------------------------- real clients

/// Three nodes serving one cluster file that lists all three (the file is written once their
/// ports are known, then each node re-reads it: version 2).
struct Cluster {
    nodes: Vec<Server>,
    file: PathBuf,
    _dir: TempDir,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = TempDir::new("cluster");
        let file = dir.file("cluster", "127.0.0.1:1\n");
        let nodes: Vec<Server> = (0..3).map(|_| Server::start(&["--cluster-file", file.to_str().unwrap()])).collect();
        let c = Cluster { nodes, file, _dir: dir };
        c.write(&[0, 1, 2]);
        c
    }

    /// List these nodes in the file (both spellings), SIGHUP every node, wait for the new
    /// version everywhere.
    fn write(&self, which: &[usize]) {
        let mut body = String::from("# rustcached test cluster\n");
        for (n, &i) in which.iter().enumerate() {
            let p = self.nodes[i].port;
            body += &if n % 2 == 0 { format!("127.0.0.1|127.0.0.1|{p}\n") } else { format!("127.0.0.1:{p}\n") };
        }
        std::fs::write(&self.file, body).unwrap();
        let version = {
            let mut c = self.nodes[0].connect();
            common::stats(&mut c, "settings")["cluster_version"].parse::<u64>().unwrap() + 1
        };
        for n in &self.nodes {
            sighup(n);
        }
        for n in &self.nodes {
            wait_version(n, version);
        }
    }

    fn names(&self, which: &[usize]) -> String {
        let mut v: Vec<String> = which.iter().map(|&i| format!("127.0.0.1:{}", self.nodes[i].port)).collect();
        v.sort();
        v.join(" ")
    }

    fn items(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .map(|n| {
                let mut c = n.connect();
                common::stats(&mut c, "")["curr_items"].parse().unwrap()
            })
            .collect()
    }
}

/// A client process we talk to line by line.
struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    what: String,
    seen: Vec<String>,
}

impl Client {
    fn start(what: &str, program: &str, args: &[String], cwd: &Path) -> Client {
        let mut child = Command::new(program)
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Client { stdin: child.stdin.take(), child, lines: rx, what: what.to_string(), seen: Vec::new() }
    }

    fn line(&mut self) -> String {
        match self.lines.recv_timeout(LINE_LIMIT) {
            Ok(l) => {
                self.seen.push(l.clone());
                l
            }
            Err(_) => {
                panic!("{}: no further output after {:?} (status {:?})", self.what, self.seen, self.child.try_wait())
            }
        }
    }

    fn expect(&mut self, want: &str) {
        let got = self.line();
        assert_eq!(got, want, "{}: transcript so far {:?}", self.what, self.seen);
    }

    fn say(&mut self, line: &str) {
        let s = self.stdin.as_mut().unwrap();
        writeln!(s, "{line}").unwrap();
        s.flush().unwrap();
    }

    fn finish(mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + LINE_LIMIT;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                assert!(st.success(), "{} exited with {st}", self.what);
                return;
            }
            assert!(Instant::now() < deadline, "{} did not exit", self.what);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The scenario every client goes through: given node 0 only, discover 0, 1, 2, spread
/// `NKEYS` keys over all three; node 2 is removed from the file and every node gets SIGHUP;
/// the client follows, and its next `NKEYS` keys land on nodes 0 and 1 only.
/// `first`: lines the client may print before its transcript (which discovery command it sent).
fn discovers_spreads_and_follows(what: &str, program: &str, script: &Path, extra: &[&str], first: &[&str]) {
    let cluster = Cluster::start();
    let mut args = vec![script.display().to_string(), cluster.nodes[0].addr(), NKEYS.to_string()];
    args.extend(extra.iter().map(|a| a.to_string()));
    let mut client = Client::start(what, program, &args, script.parent().unwrap());
    if !first.is_empty() {
        let got = client.line();
        assert!(first.contains(&got.as_str()), "{what}: first line {got:?}, want one of {first:?}");
    }
    client.expect(&format!("nodes {}", cluster.names(&[0, 1, 2])));
    client.expect(&format!("stored {NKEYS} before"));
    let before = cluster.items();
    eprintln!("{what}: keys per node {before:?}");
    assert_eq!(before.iter().sum::<u64>(), NKEYS as u64, "{what}: {before:?}");
    assert!(before.iter().all(|&n| n > 0), "{what}: keys not spread over all three nodes: {before:?}");

    cluster.write(&[0, 1]);
    client.say("removed");
    client.expect(&format!("nodes {}", cluster.names(&[0, 1])));
    client.expect(&format!("stored {NKEYS} after"));
    client.expect(&format!("read {NKEYS} after"));
    client.finish();
    let after = cluster.items();
    eprintln!("{what}: keys per node after the removal {after:?}");
    assert_eq!(after[2], before[2], "{what}: the removed node still got keys: {before:?} -> {after:?}");
    assert_eq!(after[0] + after[1], before[0] + before[1] + NKEYS as u64, "{what}: {before:?} -> {after:?}");
    assert!(after[0] > before[0] && after[1] > before[1], "{what}: not spread over the two left: {after:?}");
}

fn discovery_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/discovery")
}

/// Fail (not skip) when a client library is missing.
fn require_python(module: &str) {
    require(PYTHON, &["-c", &format!("import {module}")], "pip install -r tests/discovery/requirements.txt");
}

fn require_node(module: &str) {
    let path = discovery_dir().join("node/node_modules").join(module);
    require(
        "node",
        &["-e", "require(process.argv[1])", path.to_str().unwrap()],
        "npm ci --prefix tests/discovery/node",
    );
}

#[test]
fn django_elastipymemcache_discovers_and_follows() {
    require_python("django_elastipymemcache");
    let script = discovery_dir().join("django_elastipymemcache_client.py");
    discovers_spreads_and_follows("django-elastipymemcache", PYTHON, &script, &[], &[]);
}

#[test]
fn elasticache_auto_discovery_with_pymemcache_discovers_and_follows() {
    require_python("elasticache_auto_discovery");
    require_python("pymemcache");
    let script = discovery_dir().join("auto_discovery_client.py");
    discovers_spreads_and_follows("elasticache-auto-discovery", PYTHON, &script, &[], &[]);
}

const CONFIG_GET: &str = "command config get cluster";
const LEGACY_GET: &str = "command get AmazonElastiCache:cluster";

/// Whichever command our `version` reply makes it choose.
#[test]
fn memcached_elasticache_discovers_and_follows() {
    require_node("memcached-elasticache");
    let script = discovery_dir().join("node/memcached_elasticache_client.js");
    discovers_spreads_and_follows("memcached-elasticache", "node", &script, &[], &[CONFIG_GET, LEGACY_GET]);
}

/// As it behaves against engines from 1.4.14 on: `config get cluster`.
#[test]
fn memcached_elasticache_config_get_form() {
    require_node("memcached-elasticache");
    let script = discovery_dir().join("node/memcached_elasticache_client.js");
    discovers_spreads_and_follows("memcached-elasticache 1.6.18", "node", &script, &["1.6.18"], &[CONFIG_GET]);
}

/// As it behaves against older engines: `get AmazonElastiCache:cluster`.
#[test]
fn memcached_elasticache_legacy_form() {
    require_node("memcached-elasticache");
    let script = discovery_dir().join("node/memcached_elasticache_client.js");
    discovers_spreads_and_follows("memcached-elasticache 1.4.5", "node", &script, &["1.4.5"], &[LEGACY_GET]);
}

#[test]
fn ecad_discovers_and_follows() {
    require_node("ecad");
    let script = discovery_dir().join("node/ecad_client.js");
    discovers_spreads_and_follows("ecad", "node", &script, &[], &[]);
}

//! The caching-pattern examples (`examples/*.py`: lazy loading, write-through, a session store
//! shared by two web servers) run against the real binary. Each example asserts its pattern's
//! behaviour itself and exits non-zero otherwise; here we also check its transcript and what
//! the server counted (hits, misses, sets), so an example that stopped using the cache fails.
//!
//! They run on Debian's python3 with python3-pymemcache (installed by `.ci/run`); a missing
//! interpreter or library fails the test.

mod common;

use common::{require, Server};
use std::path::Path;
use std::process::{Command, Stdio};

/// Debian's interpreter, where python3-pymemcache installs (PATH's python3 may be another).
const PYTHON: &str = "/usr/bin/python3";

/// Run `examples/<name>` against `srv` with extra arguments; returns its stdout.
fn run_example(srv: &Server, name: &str, extra: &[&str]) -> String {
    require(PYTHON, &["-c", "import pymemcache, sqlite3"], "apt-get install python3-pymemcache");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name);
    let out = Command::new(PYTHON)
        .arg(&script)
        .arg(srv.addr())
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{name} failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    stdout.into_owned()
}

fn stat(srv: &Server, name: &str) -> u64 {
    let mut c = srv.connect();
    common::stats(&mut c, "")[name].parse().unwrap()
}

#[test]
fn lazy_loading_misses_once_then_hits() {
    let srv = Server::start(&[]);
    let out = run_example(&srv, "lazy_loading.py", &[]);
    assert!(out.contains("second read: {'id': 1, 'name': 'kettle', 'price_cents': 2999} hit"), "{out}");
    assert!(out.ends_with("hits never touch the database\n"), "{out}");
    // reads: miss (fill), hit, hit (stale by design), miss after invalidation (fill)
    assert_eq!((stat(&srv, "get_misses"), stat(&srv, "get_hits"), stat(&srv, "cmd_set")), (2, 2, 2));
}

#[test]
fn write_through_updates_cache_and_database() {
    let srv = Server::start(&[]);
    let out = run_example(&srv, "write_through.py", &[]);
    assert!(out.contains("upgraded:  {'id': 7, 'email': 'ada@example.com', 'plan': 'pro'}"), "{out}");
    assert!(out.ends_with("reads after writes never missed\n"), "{out}");
    // two writes through, one refill after the simulated eviction; only that read missed
    assert_eq!((stat(&srv, "cmd_set"), stat(&srv, "get_misses"), stat(&srv, "get_hits")), (3, 1, 3));
}

#[test]
fn session_store_is_shared_and_expires() {
    // -o debug_time: the example moves the server clock instead of sleeping out the TTL
    let srv = Server::start(&["-o", "debug_time"]);
    let out = run_example(&srv, "session_store.py", &["--advance-clock"]);
    let want = [
        "POST web-1/login: 200 web-1: logged in ada",
        "GET  web-2/me:    200 web-2: hello Ada Lovelace",
        "GET  web-1/me:    200 web-1: hello Ada Lovelace",
        "GET  web-2/me without the cookie: 401 web-2: no session",
        "GET  web-2/me after 3 s idle: 200 web-2: hello Ada Lovelace",
        "GET  web-2/me after 3 s idle: 200 web-2: hello Ada Lovelace",
        "GET  web-2/me after 7 s idle: 401 web-2: no session",
        "ok: a session written through one server is read through the other and expires after its TTL",
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), want);
    assert_eq!(stat(&srv, "touch_hits"), 4, "each recognised request slides the session's expiry");
}

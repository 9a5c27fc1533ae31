//! Client libraries we did not write, in four languages, against the real binary: pymemcache
//! (Python, text protocol, also its HashClient over two nodes), Dalli (Ruby, binary), PHP's
//! memcached extension (libmemcached, text and binary), memjs (Node.js, binary, also SASL) and
//! meta-memcache (Python, meta protocol, stale-while-revalidate and leases).
//!
//! Each client runs a script from `tests/clients/` that exercises its library's API and prints
//! one line per operation with the value it got back. The test compares that transcript with
//! the expected one written here, for rustcached and, when Debian's memcached is installed, for
//! memcached 1.6.18 too (the same expected text: any difference between the two servers fails).
//!
//! A missing runtime or library fails the test with the package to install: `.ci/run`
//! installs them all (apt, `npm ci --prefix tests/clients/node`, pip). Every process listens on
//! 127.0.0.1 and every client run is bounded by `RUN_LIMIT`.

mod common;

use common::{memcached_bin, require, Server};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's interpreter, where python3-pymemcache installs (PATH's python3 may be another).
const DEBIAN_PYTHON: &str = "/usr/bin/python3";
/// The python3 on PATH, where `.ci/run` pip-installs meta-memcache.
const PATH_PYTHON: &str = "python3";
/// Longest a client script may run (they take well under a second).
const RUN_LIMIT: Duration = Duration::from_secs(30);

fn script(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients").join(rel).display().to_string()
}

/// Run a client script to completion (killed after `RUN_LIMIT`) and return its stdout.
fn run(program: &str, args: &[String]) -> String {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut out = String::new();
            let _ = pipe.read_to_string(&mut out);
            out
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    match status {
        Some(s) if s.success() => stdout,
        Some(s) => panic!("{program} {args:?} exited with {s}\nstdout:\n{stdout}\nstderr:\n{stderr}"),
        None => panic!("{program} {args:?} ran over {RUN_LIMIT:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"),
    }
}

/// Assert a transcript equals the expected one, showing the lines that differ.
fn assert_transcript(server: &str, what: &str, got: &str, expected: &str) {
    if got == expected {
        return;
    }
    let (got_lines, want_lines): (Vec<&str>, Vec<&str>) = (got.lines().collect(), expected.lines().collect());
    let mut diff = String::new();
    for i in 0..got_lines.len().max(want_lines.len()) {
        let (g, w) = (got_lines.get(i).copied(), want_lines.get(i).copied());
        if g != w {
            diff += &format!(
                "line {}:\n  expected: {}\n  got:      {}\n",
                i + 1,
                w.unwrap_or("<none>"),
                g.unwrap_or("<none>")
            );
        }
    }
    panic!("{what} against {server}: transcript differs from the expected one\n{diff}\nfull transcript:\n{got}");
}

/// The servers a client runs against: memcached first when it is installed (a wrong
/// expectation shows up against the oracle), then rustcached.
fn servers() -> Vec<(&'static str, &'static str)> {
    vec![("memcached 1.6.18", memcached_bin()), ("rustcached", common::rustcached_bin())]
}

/// Run `program args {PORT}` against a fresh server of each kind; every transcript must be
/// `expected`.
fn check(what: &str, program: &str, args: &[&str], expected: &str) {
    for (server, bin) in servers() {
        let srv = Server::start_bin(bin, &[]);
        let mut argv: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        argv.push(srv.port.to_string());
        let started = Instant::now();
        let got = run(program, &argv);
        eprintln!("{what} against {server}: {} lines in {:.2?}", got.lines().count(), started.elapsed());
        assert_transcript(server, what, &got, expected);
    }
}

// ---------------------------------------------------------------- pymemcache (Python, text)

fn require_pymemcache() {
    require(DEBIAN_PYTHON, &["-c", "import pymemcache"], "apt-get install python3-pymemcache");
}

#[test]
fn pymemcache_text_protocol() {
    require_pymemcache();
    check("pymemcache", DEBIAN_PYTHON, &[&script("pymemcache_client.py"), "single"], PYMEMCACHE);
}

#[test]
fn pymemcache_hash_client_over_two_nodes() {
    require_pymemcache();
    for (server, bin) in servers() {
        let nodes = [Server::start_bin(bin, &[]), Server::start_bin(bin, &[])];
        let args =
            [script("pymemcache_client.py"), "hash".into(), nodes[0].port.to_string(), nodes[1].port.to_string()];
        assert_transcript(server, "pymemcache HashClient", &run(DEBIAN_PYTHON, &args), PYMEMCACHE_HASH);
    }
}

/// pymemcache closes its socket after an error reply (here: 10 values over 1 MB, each refused
/// with `SERVER_ERROR object too large for cache`); every such connection must be released.
/// (Regression: rustcached kept some open in CLOSE-WAIT, because a read that returned the last
/// bytes short of the buffer was taken as "drained" although the peer had already closed, and
/// edge-triggered readiness never reported the end of stream again.)
#[test]
fn pymemcache_closed_connections_are_released() {
    require_pymemcache();
    check("pymemcache (closes)", DEBIAN_PYTHON, &[&script("pymemcache_client.py"), "closes"], PYMEMCACHE_CLOSES);
}

// ---------------------------------------------------------------- Dalli (Ruby, binary)

#[test]
fn dalli_binary_protocol() {
    require("ruby", &["-e", "require 'dalli'"], "apt-get install ruby ruby-dalli");
    check("Dalli", "ruby", &[&script("dalli_client.rb")], DALLI);
}

// ---------------------------------------------------------------- PHP memcached (libmemcached)

fn require_php_memcached() {
    require("php", &["-r", "exit(class_exists('Memcached') ? 0 : 1);"], "apt-get install php-cli php-memcached");
}

#[test]
fn php_memcached_text_protocol() {
    require_php_memcached();
    check("php-memcached (text)", "php", &[&script("php_memcached_client.php"), "text"], PHP_TEXT);
}

#[test]
fn php_memcached_binary_protocol() {
    require_php_memcached();
    check("php-memcached (binary)", "php", &[&script("php_memcached_client.php"), "binary"], PHP_BINARY);
}

// ---------------------------------------------------------------- memjs (Node.js, binary)

fn require_memjs() {
    require("node", &["--version"], "apt-get install nodejs npm");
    let module = PathBuf::from(script("node/node_modules/memjs/package.json"));
    assert!(module.exists(), "memjs is not installed: run `npm ci --prefix tests/clients/node` (.ci/run does)");
}

#[test]
fn memjs_binary_protocol() {
    require_memjs();
    check("memjs", "node", &[&script("node/memjs_client.js")], MEMJS);
}

/// A SASL password database for each server: rustcached reads `MEMCACHED_SASL_PWDB`; Debian's
/// memcached goes through Cyrus SASL, so it gets a sasldb made by `saslpasswd2` and a config.
struct SaslDir(PathBuf);

impl SaslDir {
    fn new(name: &str) -> SaslDir {
        let dir = std::env::temp_dir().join(format!("rustcached-clients-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        SaslDir(dir)
    }

    fn start(&self, server: &str, bin: &str) -> Server {
        let dir = self.0.display().to_string();
        if server == "rustcached" {
            let pwdb = format!("{dir}/pwdb");
            std::fs::write(&pwdb, "alice:secret\n").unwrap();
            return Server::start_env(&["-S"], &[("MEMCACHED_SASL_PWDB", &pwdb)]);
        }
        let sasldb = format!("{dir}/sasldb2");
        let mut saslpasswd = Command::new("saslpasswd2")
            .args(["-p", "-c", "-a", "memcached", "-f", &sasldb, "alice"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("saslpasswd2 (apt-get install sasl2-bin; .ci/run installs it)");
        std::io::Write::write_all(saslpasswd.stdin.as_mut().unwrap(), b"secret").unwrap();
        drop(saslpasswd.stdin.take());
        assert!(saslpasswd.wait().unwrap().success(), "saslpasswd2 failed");
        std::fs::write(format!("{dir}/memcached.conf"), format!("mech_list: plain\nsasldb_path: {sasldb}\n")).unwrap();
        Server::start_bin_env(bin, &["-S"], &[("SASL_CONF_PATH", &dir)])
    }
}

impl Drop for SaslDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn memjs_sasl_plain() {
    require_memjs();
    let dir = SaslDir::new("memjs");
    for (server, bin) in servers() {
        let srv = dir.start(server, bin);
        let js = script("node/memjs_client.js");
        let port = srv.port.to_string();
        // The whole transcript, authenticated: the same as without SASL.
        let got = run("node", &[js.clone(), port.clone(), "alice:secret".into()]);
        assert_transcript(server, "memjs with SASL", &got, MEMJS);
        let got = run("node", &[js, port, "alice:wrong".into(), "refused".into()]);
        assert_transcript(server, "memjs with a wrong password", &got, MEMJS_REFUSED);
    }
}

// ---------------------------------------------------------------- meta-memcache (Python, meta)

#[test]
fn meta_memcache_meta_protocol() {
    require(PATH_PYTHON, &["-c", "import meta_memcache"], "pip install meta-memcache==4.3.0");
    check("meta-memcache", PATH_PYTHON, &[&script("meta_memcache_client.py")], META_MEMCACHE);
}

// ---------------------------------------------------------------- expected transcripts

/// `pymemcache_client.py single`
const PYMEMCACHE: &str = r#"library pymemcache 3.5.2
version starts 1.6.18 -> True
flush_all -> True
set foo 'bar' -> True
get foo -> 'bar'
raw get foo -> (b'bar', 16)
set bytes b'b1' -> True
raw get bytes -> (b'b1', 0)
get missing -> None
get missing default -> 'dflt'
set flagged flags=123 -> True
raw get flagged -> (b'x', 123)
set flagged flags=4294967295 -> True
raw get flagged -> (b'y', 4294967295)
get_many foo bytes missing -> {'bytes': b'b1', 'foo': 'bar'}
get_many (none) -> {}
set_many 3 -> []
get_many m1 m2 m3 m4 -> {'m1': 'one', 'm2': 2, 'm3': b'three'}
gets_many m1 foo -> {'foo': 'bar', 'm1': 'one'}
add foo -> False
add newkey -> True
get newkey -> 'new'
replace nokey -> False
get nokey -> None
replace foo -> True
get foo -> 'baz'
append foo '!' -> True
prepend foo '<' -> True
get foo -> '<baz!'
raw get foo (flags kept) -> (b'<baz!', 16)
append nokey -> False
prepend nokey -> False
gets foo has cas -> True
gets missing -> (None, None)
cas foo stale cas -> False
cas foo right cas -> True
cas foo same cas again -> False
get foo -> 'swapped'
cas missing -> None
cas changed after cas -> True
touch foo keeps cas -> (True, True)
append changes cas -> (True, True)
incr missing -> None
decr missing -> None
set counter 10 -> True
raw get counter -> (b'10', 2)
incr counter 5 -> 15
get counter -> 15
decr counter 3 -> 12
decr counter 100 (floors at 0) -> 0
set counter 2**64-1 -> True
incr counter 1 (wraps) -> 0
set counter '99' -> True
incr counter 1 (99 -> 100, grows) -> 100
raw get counter -> (b'100', 0)
decr counter 91 (100 -> 9, length kept) -> 9
raw get counter -> (b'9  ', 0)
incr counter noreply -> None
get counter -> b'10 '
incr foo (not a number) -> !MemcacheClientError(b'cannot increment or decrement non-numeric value')
set neg '-1' -> True
incr neg -> !MemcacheClientError(b'cannot increment or decrement non-numeric value')
incr counter 2**64 (too big) -> !MemcacheClientError(b'invalid numeric delta argument')
incr counter -1 -> !MemcacheClientError(b'invalid numeric delta argument')
delete newkey -> True
delete newkey again -> False
get newkey -> None
delete_many m1 m2 nokey -> True
get_many m1 m2 m3 -> {'m3': b'three'}
touch m3 -> True
touch nokey -> False
set gone ttl=-1 (expired at once) -> True
get gone -> None
set m3 ttl=3600 -> True
touch m3 ttl=-1 -> True
get m3 -> None
set int -> True
get int -> 42
raw flags int -> 2
set bigint -> True
get bigint -> 1180591620717411303424
raw flags bigint -> 2
set float -> True
get float -> 1.5
raw flags float -> 1
set list -> True
get list -> [1, 'two', 3.0]
raw flags list -> 1
set dict -> True
get dict -> {'a': 1, 'b': [2, 3]}
raw flags dict -> 1
set none -> True
get none -> None
raw flags none -> 1
set bool -> True
get bool -> True
raw flags bool -> 1
set text -> True
get text -> 'héllo ☃'
raw flags text -> 16
set tuple -> True
get tuple -> (1, 2)
raw flags tuple -> 1
set tricky (CRLF, NUL, all bytes) -> True
raw get tricky equal -> True
set empty value -> True
raw get empty -> (b'', 0)
set 250-byte key -> True
get 250-byte key -> 'long'
get_many 250-byte key + foo -> ['long', 'swapped.']
set 251-byte key -> !MemcacheIllegalInputError(<str len=271 sha1=8e0aff08fe4f>)
set key with space -> !MemcacheIllegalInputError("Key contains whitespace: b'a b'")
set key with newline -> !MemcacheIllegalInputError("Key contains whitespace: b'a\\nb'")
get key with control char -> None
set punctuation key -> True
get punctuation key -> 'p'
set big 1048514 bytes -> True
raw get big -> ('<bytes len=1048514 sha1=e205fec79653>', True)
set big 1048515 bytes (too large) -> !MemcacheServerError(b'object too large for cache')
get big after refused set (old value dropped) -> None
get foo (connection usable) -> 'swapped.'
set near1m -> True
add near1m (exists) -> False
get_many near1m big foo -> [('foo', "b'swapped.'"), ('near1m', '<bytes len=1048064 sha1=bd4797ed2fcc>')]
append 600 bytes to near1m (too large) -> False
get near1m intact -> True
set 2 MB (too large) -> !MemcacheServerError(b'object too large for cache')
get huge -> None
delete near1m -> True
set nr1 noreply -> True
add nr1 noreply (not stored, silent) -> True
replace nr1 noreply -> True
append nr1 noreply -> True
prepend nr1 noreply -> True
get nr1 -> 'ecd'
cas nr1 noreply -> True
get nr1 -> 'f'
touch nr1 noreply -> True
set_many noreply -> []
delete nr1 noreply -> True
delete_many nr2 nr3 noreply -> True
get_many nr1 nr2 nr3 foo -> {'foo': 'swapped.'}
stats cmd_get -> 80
stats get_hits -> 62
stats get_misses -> 18
stats cmd_set -> 51
stats cmd_touch -> 5
stats touch_hits -> 4
stats touch_misses -> 1
stats cmd_flush -> 1
stats delete_hits -> 7
stats delete_misses -> 2
stats incr_hits -> 4
stats incr_misses -> 1
stats decr_hits -> 3
stats decr_misses -> 1
stats cas_hits -> 2
stats cas_misses -> 1
stats cas_badval -> 2
stats threads -> 4
stats limit_maxbytes -> 67108864
stats version starts 1.6.18 -> True
stats uptime is int -> True
stats pid is int -> True
stats settings maxbytes -> 67108864
stats settings maxconns -> 1024
stats settings item_size_max -> 1048576
stats settings cas_enabled -> b'yes'
stats settings evictions -> b'on'
stats settings growth_factor -> 1.25
stats settings binding_protocol -> b'auto-negotiate'
stats settings flush_enabled -> b'yes'
stats bogus -> !MemcacheUnknownCommandError(b'stats')
stats reset -> !MemcacheUnknownError(b'RESET')
stats get_hits after reset -> 0
cache_memlimit 100 -> True
stats settings maxbytes -> 104857600
flush_all -> True
get_many foo counter after flush -> {}
set foo after flush -> True
get foo -> 'fresh'
flush_all noreply -> True
get foo -> None
quit -> None
get foo after quit (reconnects) -> None
set foo after quit -> True
get foo -> 'again'
"#;

/// `pymemcache_client.py hash (2 nodes)`
const PYMEMCACHE_HASH: &str = r#"set_many 40 keys (failed keys) -> []
get_many 40 keys equal -> True
every key on exactly the picked node -> True
both nodes used -> True
total items -> 40
get hk:7 -> 7
incr hk:7 -> 17
decr hk:7 -> 15
add hk:7 -> False
replace hk:7 -> True
append hk:7 -> True
prepend hk:7 -> True
get hk:7 -> '-r+'
gets hk:8 value -> 8
cas hk:8 -> True
cas hk:8 stale -> False
touch hk:8 -> True
delete hk:8 -> True
get hk:8 -> None
delete_many hk:0..9 -> True
get_many hk:0..11 -> {'hk:10': 10, 'hk:11': 11}
flush_all (every node) -> None
get_many after flush -> {}
"#;

/// `pymemcache_client.py closes`
const PYMEMCACHE_CLOSES: &str = r#"curr_connections (watcher + client) -> 2
set 2 MB #0 (client closes after the error) -> !MemcacheServerError(b'object too large for cache')
set 2 MB #1 (client closes after the error) -> !MemcacheServerError(b'object too large for cache')
set 2 MB #2 (client closes after the error) -> !MemcacheServerError(b'object too large for cache')
set 2 MB #3 (client closes after the error) -> !MemcacheServerError(b'object too large for cache')
set 2 MB #4 (client closes after the error) -> !MemcacheServerError(b'object too large for cache')
set 2 MB #5 (client closes after the error) -> !MemcacheServerError(b'object too large for cache')
set 2 MB #6 (client closes after the error) -> !MemcacheServerError(b'object too large for cache')
set 2 MB #7 (client closes after the error) -> !MemcacheServerError(b'object too large for cache')
set 2 MB #8 (client closes after the error) -> !MemcacheServerError(b'object too large for cache')
set 2 MB #9 (client closes after the error) -> !MemcacheServerError(b'object too large for cache')
curr_connections within 3 s (only the watcher left) -> 1
"#;

/// `dalli_client.rb`
const DALLI: &str = r#"library dalli 3.0.6
version starts 1.6.18 -> [true]
alive! -> "Dalli::Protocol::Binary"
flush -> [true]
set foo 'bar' -> true
get foo -> "bar"
wire foo (Marshal) -> [1, 13]
set raw 'bar' raw -> true
get raw -> "bar"
get raw raw -> "bar"
wire raw -> [0, 3]
get missing -> nil
set int -> true
get int -> 42
wire int flags -> 1
set bignum -> true
get bignum -> 1180591620717411303424
wire bignum flags -> 1
set float -> true
get float -> 1.5
wire float flags -> 1
set array -> true
get array -> [1, "two", 3.0, nil]
wire array flags -> 1
set hash -> true
get hash -> {"a"=>1, :b=>[2, 3]}
wire hash flags -> 1
set symbol -> true
get symbol -> :sym
wire symbol flags -> 1
set true -> true
get true -> true
wire true flags -> 1
set utf8 -> true
get utf8 -> "héllo ☃"
wire utf8 flags -> 1
set range -> true
get range -> 1..5
wire range flags -> 1
set nil -> true
get nil -> nil
fetch nil with block (nil counts as missing) -> "computed"
fetch missing with block (adds) -> "made"
get fetched -> "made"
fetch present -> "made"
get_multi foo raw missing int -> {"foo"=>"bar", "int"=>42, "raw"=>"bar"}
get_multi (none) -> {}
get_multi with block -> [["foo", "bar"], ["int", 42]]
get_multi_cas foo missing values -> {"foo"=>"bar"}
get_multi_cas cas is integer -> [true]
add foo -> false
add newkey -> true
get newkey -> "new"
replace nokey -> 0
replace foo -> true
get foo -> "baz"
append raw '!' -> true
prepend raw '<' -> true
get raw raw -> "<bar!"
wire raw (flags kept) -> [0, 5]
append nokey -> false
prepend nokey -> false
get_cas foo -> ["baz", true]
get_cas missing -> [nil, 0]
set_cas foo stale -> false
replace_cas foo stale -> false
set_cas foo right -> true
set_cas foo same again -> false
get foo -> "swapped"
replace_cas foo right -> true
replace_cas nokey -> 0
set_cas nokey -> 0
cas foo block -> true
get foo -> "replaced+"
cas missing block -> nil
cas! missing block (stores) -> true
get casbang -> "was nil"
delete_cas casbang stale -> false
delete_cas casbang right -> true
get casbang -> nil
touch keeps cas -> [true, true]
incr missing (no default) -> nil
decr missing (no default) -> nil
incr missing default 10 -> 10
wire counter -> [0, 2]
incr counter 5 -> 15
decr counter 3 -> 12
decr counter 100 (floors at 0) -> 0
decr missing default 7 -> 7
get counter raw -> "0 "
set counter 2**64-1 raw -> true
incr counter 1 (wraps) -> 0
set counter '99' raw -> true
incr counter 1 (grows) -> 100
decr counter 91 -> 9
get counter raw -> "9  "
incr foo (not a number) -> !Dalli::DalliError(Response error 6: Incr/decr on a non-numeric value)
incr -1 -> !ArgumentError(Positive values only: -1)
incr by 2**64-1 -> 8
delete newkey -> true
delete newkey again -> nil
get newkey -> nil
touch foo -> true
touch nokey -> nil
gat foo -> "replaced+"
gat nokey -> nil
multi block -> nil
get_multi q1 q2 q3 q4 -> {"q1"=>"c", "q4"=>"d"}
set 250-byte key -> true
get 250-byte key -> "long"
wire 250-byte key -> [1, 14]
set 300-byte key (Dalli hashes it to 250) -> true
get 300-byte key -> "hashed"
get blank key -> !ArgumentError(key cannot be blank)
set punctuation key -> true
get punctuation key -> "p"
get_multi 250-byte key + foo -> [3, 250]
set tricky raw -> true
get tricky equal -> true
set tricky marshal -> true
get tricky2 equal -> true
set empty raw -> true
get empty raw -> ""
set compressible 100 KB -> true
wire zipped (compressed flag, small) -> [2, true]
get zipped -> <String len=100000 sha1=3235771c66bf>
set compressible 3 MB (compresses under 1 MB) -> true
get zipped3m -> <String len=3145728 sha1=fb76edc41ec1>
set big 1048514 bytes -> true
get big equal -> [1048514, true]
set big 1048515 bytes (server refuses) -> !Dalli::DalliError(Response error 3: Value too large)
get big after refused set (old value dropped) -> nil
get foo (connection usable) -> "replaced+"
set near1m raw -> true
get_multi near1m foo -> {"foo"=>9, "near1m"=>1048064}
append 600 bytes to near1m (too large) -> false
get near1m intact -> true
set 2 MB incompressible (server refuses) -> !Dalli::DalliError(Response error 3: Value too large)
set 2 MB with default client (Dalli refuses) -> !Dalli::ValueOverMaxSize(Value for huge over max size: 1048576 <= 2097805)
get huge -> nil
delete near1m -> true
stats cmd_get -> "84"
stats get_hits -> "70"
stats get_misses -> "14"
stats cmd_set -> "49"
stats cmd_touch -> "5"
stats touch_hits -> "3"
stats touch_misses -> "2"
stats get_flushed -> "0"
stats delete_hits -> "4"
stats delete_misses -> "2"
stats incr_hits -> "4"
stats incr_misses -> "1"
stats decr_hits -> "3"
stats decr_misses -> "1"
stats cas_hits -> "3"
stats cas_misses -> "2"
stats cas_badval -> "3"
stats threads -> "4"
stats limit_maxbytes -> "67108864"
stats keys server name -> true
stats pid is numeric -> true
stats settings maxbytes -> "67108864"
stats settings maxconns -> "1024"
stats settings item_size_max -> "1048576"
stats settings cas_enabled -> "yes"
stats settings evictions -> "on"
stats settings growth_factor -> "1.25"
stats settings binding_protocol -> "auto-negotiate"
stats items has curr_items-like keys -> true
stats slabs has active_slabs -> true
stats bogus type (Dalli sends plain stats) -> true
reset_stats -> [true]
stats get_hits after reset -> "0"
flush -> [true]
get_multi foo counter after flush -> {}
set foo after flush -> true
get foo -> "fresh"
close -> nil
get foo after close (reconnects) -> "fresh"
"#;

/// `php_memcached_client.php text`
const PHP_TEXT: &str = r#"library php-memcached 3.2.0 (text)
getVersion starts 1.6.18 -> [0=>true] [SUCCESS]
getServerList -> [0=>'127.0.0.1'] [SUCCESS]
isPristine -> true [SUCCESS]
flush -> true [SUCCESS]
set foo 'bar' -> true [SUCCESS]
get foo -> 'bar' [SUCCESS]
get foo extended -> [0=>'value', 1=>'cas', 2=>'flags'] [SUCCESS]
get foo extended flags -> 0 [SUCCESS]
wire foo -> [0=>0, 1=>3] [SUCCESS]
set foo with user flags (OPT_USER_FLAGS 7) -> [0=>true, 1=>7] [SUCCESS]
wire uflags (user flags in the high 16 bits) -> [0=>458752, 1=>1] [SUCCESS]
get missing -> false [NOT FOUND]
get missing with read-through callback -> 'made for rt' [SUCCESS]
get rt (stored by the callback) -> 'made for rt' [SUCCESS]
set int -> true [SUCCESS]
get int -> 42 [SUCCESS]
wire int -> [0=>1, 1=>2] [SUCCESS]
set negint -> true [SUCCESS]
get negint -> -7 [SUCCESS]
wire negint -> [0=>1, 1=>2] [SUCCESS]
set float -> true [SUCCESS]
get float -> 1.5 [SUCCESS]
wire float -> [0=>2, 1=>3] [SUCCESS]
set true -> true [SUCCESS]
get true -> true [SUCCESS]
wire true -> [0=>3, 1=>1] [SUCCESS]
set false -> true [SUCCESS]
get false -> false [SUCCESS]
wire false -> [0=>3, 1=>0] [SUCCESS]
set null -> true [SUCCESS]
get null -> NULL [SUCCESS]
wire null -> [0=>4, 1=>2] [SUCCESS]
set array -> true [SUCCESS]
get array -> [0=>1, 1=>'two', 2=>3.0, 3=>['nested'=>true]] [SUCCESS]
wire array -> [0=>4, 1=>63] [SUCCESS]
set object -> true [SUCCESS]
get object -> stdClass['a'=>1] [SUCCESS]
wire object -> [0=>4, 1=>31] [SUCCESS]
set utf8 -> true [SUCCESS]
get utf8 -> 'héllo ☃' [SUCCESS]
wire utf8 -> [0=>0, 1=>10] [SUCCESS]
getMulti foo int missing array -> ['foo'=>'bar', 'int'=>42, 'array'=>[0=>1, 1=>'two', 2=>3.0, 3=>['nested'=>true]]] [SUCCESS]
getMulti preserve order -> ['missing'=>NULL, 'int'=>42, 'foo'=>'bar'] [SUCCESS]
getMulti (empty list) -> [] [NOT FOUND]
getMulti extended -> ['foo'=>[0=>'bar', 1=>true, 2=>0], 'int'=>[0=>42, 1=>true, 2=>0]] [SUCCESS]
setMulti 3 -> true [SUCCESS]
getMulti m1 m2 m3 m4 -> ['m1'=>'one', 'm2'=>2, 'm3'=>[0=>3]] [SUCCESS]
getDelayed m1 m2 missing -> true [SUCCESS]
fetchAll -> [0=>[0=>'m1', 1=>'one'], 1=>[0=>'m2', 1=>2]] [SUCCESS]
getDelayed with callback -> [0=>'foo=bar', 1=>'m1=one'] [SUCCESS]
add foo -> false [NOT STORED]
add newkey -> true [SUCCESS]
get newkey -> 'new' [SUCCESS]
replace nokey -> false [NOT STORED]
replace foo -> true [SUCCESS]
get foo -> 'baz' [SUCCESS]
append foo '!' with compression on -> NULL [SUCCESS]
append foo '!' -> true [SUCCESS]
prepend foo '<' -> true [SUCCESS]
get foo -> '<baz!' [SUCCESS]
append nokey -> false [NOT STORED]
prepend nokey -> false [NOT STORED]
cas foo stale -> false [CONNECTION DATA EXISTS]
cas foo right -> true [SUCCESS]
cas foo same again -> false [CONNECTION DATA EXISTS]
get foo -> 'swapped' [SUCCESS]
cas missing -> false [NOT FOUND]
cas changed after cas -> true [SUCCESS]
touch keeps cas -> [0=>true, 1=>true] [SUCCESS]
increment missing -> false [NOT FOUND]
decrement missing -> false [NOT FOUND]
increment missing initial 10 -> false [SUCCESS]
get counter2 -> false [NOT FOUND]
set counter 10 -> true [SUCCESS]
increment counter 5 -> 15 [SUCCESS]
get counter -> 15 [SUCCESS]
decrement counter 3 -> 12 [SUCCESS]
decrement counter 100 (floors at 0) -> 0 [SUCCESS]
set counter '18446744073709551615' -> true [SUCCESS]
increment counter 1 (wraps) -> 0 [SUCCESS]
set counter '99' -> true [SUCCESS]
increment counter 1 (grows) -> 100 [SUCCESS]
decrement counter 91 -> 9 [SUCCESS]
get counter raw bytes -> '9  ' [SUCCESS]
increment foo (not a number) -> false [CLIENT ERROR]
increment counter -1 -> false [SUCCESS]
delete newkey -> true [SUCCESS]
delete newkey again -> false [NOT FOUND]
get newkey -> false [NOT FOUND]
deleteMulti m1 m2 nokey -> ['m1'=>true, 'm2'=>true, 'nokey'=>16] [NOT FOUND]
getMulti m1 m2 m3 -> ['m3'=>[0=>3]] [SUCCESS]
touch m3 -> true [SUCCESS]
touch nokey -> false [NOT FOUND]
set gone with absolute time in the past -> true [SUCCESS]
get gone -> false [NOT FOUND]
touch m3 to a time in the past -> true [SUCCESS]
get m3 -> false [NOT FOUND]
set 250-byte key -> true [SUCCESS]
get 250-byte key -> 'long' [SUCCESS]
set 251-byte key -> false [A BAD KEY WAS PROVIDED/CHARACTERS OUT OF RANGE]
set key with space -> false [A BAD KEY WAS PROVIDED/CHARACTERS OUT OF RANGE]
set empty key -> false [A BAD KEY WAS PROVIDED/CHARACTERS OUT OF RANGE]
checkKey a b -> false [A BAD KEY WAS PROVIDED/CHARACTERS OUT OF RANGE]
set punctuation key -> true [SUCCESS]
get punctuation key -> 'p' [SUCCESS]
prefixed set -> true [SUCCESS]
prefixed get -> 'u' [SUCCESS]
unprefixed get app1:user -> 'u' [SUCCESS]
setByKey / getByKey -> [0=>true, 1=>'v'] [SUCCESS]
set tricky -> true [SUCCESS]
get tricky equal -> true [SUCCESS]
set empty value -> true [SUCCESS]
get empty value -> '' [SUCCESS]
set compressible 100 KB -> true [SUCCESS]
wire zipped (compressed flag, small) -> [0=>80, 1=>true] [SUCCESS]
get zipped -> <string len=100000 sha1=3235771c66bf> [SUCCESS]
set compressible 3 MB (compresses under 1 MB) -> true [SUCCESS]
get zipped3m -> <string len=3145728 sha1=fb76edc41ec1> [SUCCESS]
set big 1048514 bytes -> true [SUCCESS]
get big equal -> true [SUCCESS]
set big 1048515 bytes (too large) -> false [ITEM TOO BIG]
get big after refused set (old value dropped) -> false [NOT FOUND]
get foo (connection usable) -> 'swapped' [SUCCESS]
set near1m -> true [SUCCESS]
getMulti near1m foo -> ['near1m'=>1048064, 'foo'=>7] [SUCCESS]
append 600 bytes to near1m (too large) -> false [NOT STORED]
get near1m intact -> true [SUCCESS]
set 2 MB (too large) -> false [ITEM TOO BIG]
get huge -> false [NOT FOUND]
delete near1m -> true [SUCCESS]
noreply set nr1 -> true [SUCCESS]
noreply add nr1 (not stored) -> true [SUCCESS]
noreply replace nr1 -> true [SUCCESS]
noreply append nr1 -> true [SUCCESS]
noreply prepend nr1 -> true [SUCCESS]
noreply set nr2 -> true [SUCCESS]
noreply delete nr2 -> true [SUCCESS]
noreply increment nrc missing -> false [SUCCESS]
noreply touch nr1 -> true [SUCCESS]
get nr1 nr2 on the same connection -> ['nr1'=>'ecd'] [SUCCESS]
buffered set bw1 -> true [ACTION QUEUED]
buffered set bw2 -> true [ACTION QUEUED]
flushBuffers -> true [ACTION QUEUED]
get bw1 bw2 -> ['bw1'=>'one', 'bw2'=>'two'] [SUCCESS]
stats cmd_get -> 83 [SUCCESS]
stats get_hits -> 68 [SUCCESS]
stats get_misses -> 15 [SUCCESS]
stats cmd_set -> 50 [SUCCESS]
stats cmd_touch -> 5 [SUCCESS]
stats touch_hits -> 4 [SUCCESS]
stats touch_misses -> 1 [SUCCESS]
stats delete_hits -> 5 [SUCCESS]
stats delete_misses -> 2 [SUCCESS]
stats incr_hits -> 3 [SUCCESS]
stats incr_misses -> 2 [SUCCESS]
stats decr_hits -> 3 [SUCCESS]
stats decr_misses -> 1 [SUCCESS]
stats cas_hits -> 1 [SUCCESS]
stats cas_misses -> 1 [SUCCESS]
stats cas_badval -> 2 [SUCCESS]
stats threads -> 4 [SUCCESS]
stats limit_maxbytes -> 67108864 [SUCCESS]
stats version starts 1.6.18 -> true [SUCCESS]
stats pid is int -> true [SUCCESS]
stats settings maxbytes -> 67108864 [SUCCESS]
stats settings maxconns -> 1024 [SUCCESS]
stats settings item_size_max -> 1048576 [SUCCESS]
stats settings cas_enabled -> 'yes' [SUCCESS]
stats settings evictions -> 'on' [SUCCESS]
stats settings growth_factor -> 1.25 [SUCCESS]
stats items has number -> true [SUCCESS]
stats bogus -> false [INVALID ARGUMENTS]
getAllKeys returns stored keys only -> true [SUCCESS]
flush -> true [SUCCESS]
getMulti foo counter after flush -> [] [NOT FOUND]
set foo after flush -> true [SUCCESS]
get foo -> 'fresh' [SUCCESS]
quit -> true [SUCCESS]
get foo after quit (reconnects) -> 'fresh' [SUCCESS]
"#;

/// `php_memcached_client.php binary`
const PHP_BINARY: &str = r#"library php-memcached 3.2.0 (binary)
getVersion starts 1.6.18 -> [0=>true] [SUCCESS]
getServerList -> [0=>'127.0.0.1'] [SUCCESS]
isPristine -> true [SUCCESS]
flush -> true [SUCCESS]
set foo 'bar' -> true [SUCCESS]
get foo -> 'bar' [SUCCESS]
get foo extended -> [0=>'value', 1=>'cas', 2=>'flags'] [SUCCESS]
get foo extended flags -> 0 [SUCCESS]
wire foo -> [0=>0, 1=>3] [SUCCESS]
set foo with user flags (OPT_USER_FLAGS 7) -> [0=>true, 1=>7] [SUCCESS]
wire uflags (user flags in the high 16 bits) -> [0=>458752, 1=>1] [SUCCESS]
get missing -> false [NOT FOUND]
get missing with read-through callback -> 'made for rt' [SUCCESS]
get rt (stored by the callback) -> 'made for rt' [SUCCESS]
set int -> true [SUCCESS]
get int -> 42 [SUCCESS]
wire int -> [0=>1, 1=>2] [SUCCESS]
set negint -> true [SUCCESS]
get negint -> -7 [SUCCESS]
wire negint -> [0=>1, 1=>2] [SUCCESS]
set float -> true [SUCCESS]
get float -> 1.5 [SUCCESS]
wire float -> [0=>2, 1=>3] [SUCCESS]
set true -> true [SUCCESS]
get true -> true [SUCCESS]
wire true -> [0=>3, 1=>1] [SUCCESS]
set false -> true [SUCCESS]
get false -> false [SUCCESS]
wire false -> [0=>3, 1=>0] [SUCCESS]
set null -> true [SUCCESS]
get null -> NULL [SUCCESS]
wire null -> [0=>4, 1=>2] [SUCCESS]
set array -> true [SUCCESS]
get array -> [0=>1, 1=>'two', 2=>3.0, 3=>['nested'=>true]] [SUCCESS]
wire array -> [0=>4, 1=>63] [SUCCESS]
set object -> true [SUCCESS]
get object -> stdClass['a'=>1] [SUCCESS]
wire object -> [0=>4, 1=>31] [SUCCESS]
set utf8 -> true [SUCCESS]
get utf8 -> 'héllo ☃' [SUCCESS]
wire utf8 -> [0=>0, 1=>10] [SUCCESS]
getMulti foo int missing array -> ['foo'=>'bar', 'int'=>42, 'array'=>[0=>1, 1=>'two', 2=>3.0, 3=>['nested'=>true]]] [SUCCESS]
getMulti preserve order -> ['missing'=>NULL, 'int'=>42, 'foo'=>'bar'] [SUCCESS]
getMulti (empty list) -> [] [NOT FOUND]
getMulti extended -> ['foo'=>[0=>'bar', 1=>true, 2=>0], 'int'=>[0=>42, 1=>true, 2=>0]] [SUCCESS]
setMulti 3 -> true [SUCCESS]
getMulti m1 m2 m3 m4 -> ['m1'=>'one', 'm2'=>2, 'm3'=>[0=>3]] [SUCCESS]
getDelayed m1 m2 missing -> true [SUCCESS]
fetchAll -> [0=>[0=>'m1', 1=>'one'], 1=>[0=>'m2', 1=>2]] [SUCCESS]
getDelayed with callback -> [0=>'foo=bar', 1=>'m1=one'] [SUCCESS]
add foo -> false [CONNECTION DATA EXISTS]
add newkey -> true [SUCCESS]
get newkey -> 'new' [SUCCESS]
replace nokey -> false [NOT FOUND]
replace foo -> true [SUCCESS]
get foo -> 'baz' [SUCCESS]
append foo '!' with compression on -> NULL [SUCCESS]
append foo '!' -> true [SUCCESS]
prepend foo '<' -> true [SUCCESS]
get foo -> '<baz!' [SUCCESS]
append nokey -> false [NOT STORED]
prepend nokey -> false [NOT STORED]
cas foo stale -> false [CONNECTION DATA EXISTS]
cas foo right -> true [SUCCESS]
cas foo same again -> false [CONNECTION DATA EXISTS]
get foo -> 'swapped' [SUCCESS]
cas missing -> false [NOT FOUND]
cas changed after cas -> true [SUCCESS]
touch keeps cas -> [0=>true, 1=>true] [SUCCESS]
increment missing -> false [NOT FOUND]
decrement missing -> false [NOT FOUND]
increment missing initial 10 -> 10 [SUCCESS]
get counter2 -> '10' [SUCCESS]
set counter 10 -> true [SUCCESS]
increment counter 5 -> 15 [SUCCESS]
get counter -> 15 [SUCCESS]
decrement counter 3 -> 12 [SUCCESS]
decrement counter 100 (floors at 0) -> 0 [SUCCESS]
set counter '18446744073709551615' -> true [SUCCESS]
increment counter 1 (wraps) -> 0 [SUCCESS]
set counter '99' -> true [SUCCESS]
increment counter 1 (grows) -> 100 [SUCCESS]
decrement counter 91 -> 9 [SUCCESS]
get counter raw bytes -> '9  ' [SUCCESS]
increment foo (not a number) -> false [UNKNOWN READ FAILURE]
increment counter -1 -> false [SUCCESS]
delete newkey -> true [SUCCESS]
delete newkey again -> false [NOT FOUND]
get newkey -> false [NOT FOUND]
deleteMulti m1 m2 nokey -> ['m1'=>true, 'm2'=>true, 'nokey'=>16] [NOT FOUND]
getMulti m1 m2 m3 -> ['m3'=>[0=>3]] [SUCCESS]
touch m3 -> true [SUCCESS]
touch nokey -> false [NOT FOUND]
set gone with absolute time in the past -> true [SUCCESS]
get gone -> false [NOT FOUND]
touch m3 to a time in the past -> true [SUCCESS]
get m3 -> false [NOT FOUND]
set 250-byte key -> true [SUCCESS]
get 250-byte key -> 'long' [SUCCESS]
set 251-byte key -> false [A BAD KEY WAS PROVIDED/CHARACTERS OUT OF RANGE]
set key with space -> true [SUCCESS]
set empty key -> false [A BAD KEY WAS PROVIDED/CHARACTERS OUT OF RANGE]
checkKey a b -> true [SUCCESS]
set punctuation key -> true [SUCCESS]
get punctuation key -> 'p' [SUCCESS]
prefixed set -> true [SUCCESS]
prefixed get -> 'u' [SUCCESS]
unprefixed get app1:user -> 'u' [SUCCESS]
setByKey / getByKey -> [0=>true, 1=>'v'] [SUCCESS]
set tricky -> true [SUCCESS]
get tricky equal -> true [SUCCESS]
set empty value -> true [SUCCESS]
get empty value -> '' [SUCCESS]
set compressible 100 KB -> true [SUCCESS]
wire zipped (compressed flag, small) -> [0=>80, 1=>true] [SUCCESS]
get zipped -> <string len=100000 sha1=3235771c66bf> [SUCCESS]
set compressible 3 MB (compresses under 1 MB) -> true [SUCCESS]
get zipped3m -> <string len=3145728 sha1=fb76edc41ec1> [SUCCESS]
set big 1048514 bytes -> true [SUCCESS]
get big equal -> true [SUCCESS]
set big 1048515 bytes (too large) -> false [ITEM TOO BIG]
get big after refused set (old value dropped) -> false [NOT FOUND]
get foo (connection usable) -> 'swapped' [SUCCESS]
set near1m -> true [SUCCESS]
getMulti near1m foo -> ['near1m'=>1048064, 'foo'=>7] [SUCCESS]
append 600 bytes to near1m (too large) -> false [NOT STORED]
get near1m intact -> true [SUCCESS]
set 2 MB (too large) -> false [ITEM TOO BIG]
get huge -> false [NOT FOUND]
delete near1m -> true [SUCCESS]
noreply set nr1 -> true [SUCCESS]
noreply replace nr1 -> true [SUCCESS]
noreply append nr1 -> true [SUCCESS]
noreply prepend nr1 -> true [SUCCESS]
noreply set nr2 -> true [SUCCESS]
noreply delete nr2 -> true [SUCCESS]
noreply touch nr1 -> true [SUCCESS]
get nr1 nr2 on the same connection -> ['nr1'=>'ecd'] [SUCCESS]
buffered set bw1 -> true [ACTION QUEUED]
buffered set bw2 -> true [ACTION QUEUED]
flushBuffers -> true [ACTION QUEUED]
get bw1 bw2 -> ['bw1'=>'one', 'bw2'=>'two'] [SUCCESS]
stats cmd_get -> 83 [SUCCESS]
stats get_hits -> 69 [SUCCESS]
stats get_misses -> 14 [SUCCESS]
stats cmd_set -> 50 [SUCCESS]
stats cmd_touch -> 5 [SUCCESS]
stats touch_hits -> 4 [SUCCESS]
stats touch_misses -> 1 [SUCCESS]
stats delete_hits -> 5 [SUCCESS]
stats delete_misses -> 2 [SUCCESS]
stats incr_hits -> 3 [SUCCESS]
stats incr_misses -> 1 [SUCCESS]
stats decr_hits -> 3 [SUCCESS]
stats decr_misses -> 1 [SUCCESS]
stats cas_hits -> 1 [SUCCESS]
stats cas_misses -> 1 [SUCCESS]
stats cas_badval -> 2 [SUCCESS]
stats threads -> 4 [SUCCESS]
stats limit_maxbytes -> 67108864 [SUCCESS]
stats version starts 1.6.18 -> true [SUCCESS]
stats pid is int -> true [SUCCESS]
stats settings maxbytes -> 67108864 [SUCCESS]
stats settings maxconns -> 1024 [SUCCESS]
stats settings item_size_max -> 1048576 [SUCCESS]
stats settings cas_enabled -> 'yes' [SUCCESS]
stats settings evictions -> 'on' [SUCCESS]
stats settings growth_factor -> 1.25 [SUCCESS]
stats items has number -> true [SUCCESS]
stats bogus -> [] [SUCCESS]
getAllKeys returns stored keys only -> false [ACTION NOT SUPPORTED]
flush -> true [SUCCESS]
getMulti foo counter after flush -> [] [NOT FOUND]
set foo after flush -> true [SUCCESS]
get foo -> 'fresh' [SUCCESS]
quit -> true [SUCCESS]
get foo after quit (reconnects) -> 'fresh' [SUCCESS]
"#;

/// `node/memjs_client.js (also with SASL)`
const MEMJS: &str = r#"library memjs 1.3.2
flush -> [true]
set foo 'bar' -> true
get foo -> b"bar"
get foo flags -> 0
get missing -> {flags: null, value: null}
set with expires 3600 -> true
get ttl -> b"v"
json set int -> true
json get int -> 42
raw flags int -> 2
json set float -> true
json get float -> 1.5
raw flags float -> 2
json set array -> true
json get array -> [1, "two", null]
raw flags array -> 2
json set object -> true
json get object -> {a: 1, b: [2, 3]}
raw flags object -> 2
json set bool -> true
json get bool -> true
raw flags bool -> 2
json set utf8 -> true
json get utf8 -> b"héllo ☃"
raw flags utf8 -> 0
add foo -> false
add newkey -> true
get newkey -> b"new"
replace nokey -> false
get nokey -> {flags: null, value: null}
replace foo -> true
get foo -> b"baz"
delete newkey -> true
delete newkey again -> false
get newkey -> {flags: null, value: null}
append foo '!' -> true
prepend foo '<' (sent as append) -> true
get foo -> b"baz!<"
append nokey -> !MemJS APPEND: Item not stored
prepend nokey -> !MemJS PREPEND: Item not stored
increment missing (initial 0) -> {success: true, value: 0}
increment counter 5 -> {success: true, value: 5}
get counter -> b"5"
decrement counter 2 -> {success: true, value: 3}
decrement counter 100 (floors at 0) -> {success: true, value: 0}
increment missing initial 10 -> {success: true, value: 10}
decrement missing initial 7 -> {success: true, value: 7}
get counter2 counter3 -> [b"10", b"7"]
set counter '4294967295' -> true
increment counter 1 (past 32 bits) -> {success: true, value: 256}
get counter -> b"4294967296"
set counter '18446744073709551615' -> true
increment counter 1 (wraps) -> {success: true, value: 0}
set counter '99' -> true
increment counter 1 (grows) -> {success: true, value: 100}
decrement counter 91 -> {success: true, value: 9}
get counter -> b"9  "
increment foo (not a number) -> !MemJS INCREMENT: Incr/Decr on non-numeric value
get foo (unchanged) -> b"baz!<"
touch foo -> true
touch nokey -> false
set 250-byte key -> true
get 250-byte key -> b"long"
set key with space (binary allows it) -> true
get key with space -> b"spaced"
set tricky (CRLF, NUL, all bytes) -> true
get tricky equal -> true
set empty value -> true
get empty value -> b""
set big 1048514 bytes -> true
get big equal -> [1048514, true]
set big 1048515 bytes (too large) -> !MemJS SET: Value too large
get big after refused set (old value dropped) -> {flags: null, value: null}
get foo (connection usable) -> b"baz!<"
set near1m -> true
add near1m (exists) -> false
append 600 bytes to near1m (too large) -> !MemJS APPEND: Item not stored
get near1m intact -> true
set 2 MB (too large) -> !MemJS SET: Value too large
get huge -> {flags: null, value: null}
delete near1m -> true
stats cmd_get -> "36"
stats get_hits -> "31"
stats get_misses -> "5"
stats cmd_set -> "27"
stats cmd_touch -> "2"
stats touch_hits -> "1"
stats touch_misses -> "1"
stats delete_hits -> "2"
stats delete_misses -> "1"
stats incr_hits -> "4"
stats incr_misses -> "0"
stats decr_hits -> "3"
stats decr_misses -> "0"
stats threads -> "4"
stats limit_maxbytes -> "67108864"
stats version starts 1.6.18 -> true
stats settings item_size_max -> "1048576"
resetStats -> "ok"
stats get_hits after reset -> "0"
100 pipelined sets then gets -> [true, true]
flush -> [true]
get foo after flush -> {flags: null, value: null}
set foo after flush -> true
get foo -> b"fresh"
set 251-byte key (server refuses) -> !MemJS SET: Invalid arguments
"#;

/// `node/memjs_client.js with a wrong password`
const MEMJS_REFUSED: &str = r#"set with wrong credentials -> !Memcached server authentication failed!
get with wrong credentials -> !Memcached server authentication failed!
"#;

/// `meta_memcache_client.py`
const META_MEMCACHE: &str = r#"library meta-memcache 4.3.0
set foo 'bar' -> True
get foo -> 'bar'
meta get foo -> ('Value', 3, 0, -1, True, None, False)
get missing -> None
set int -> True
get int -> 42
meta get int (size, flags) -> ('Value', 2, 2, '<=3600', True, None, False)
set bytes -> True
get bytes -> b'\x00\x01raw'
meta get bytes (size, flags) -> ('Value', 5, 16, '<=3600', True, None, False)
set list -> True
get list -> [1, 'two', 3.0]
meta get list (size, flags) -> ('Value', 25, 1, '<=3600', True, None, False)
set dict -> True
get dict -> {'a': 1}
meta get dict (size, flags) -> ('Value', 16, 1, '<=3600', True, None, False)
set long text -> True
get long text -> <str len=500 sha1=dc31b173a0a9>
meta get long text (size, flags) -> ('Value', 14, 8, '<=3600', True, None, False)
set unicode -> True
get unicode -> 'héllo ☃'
meta get unicode (size, flags) -> ('Value', 10, 0, '<=3600', True, None, False)
multi_get foo int missing -> {Key('foo'): 'bar', Key('int'): 42, Key('missing'): None}
get_typed int as int -> 42
get_typed int as str -> None
set ADD foo -> False
set ADD newkey -> True
set REPLACE nokey -> False
set REPLACE foo -> True
set APPEND foo -> True
set PREPEND foo -> True
get foo -> '<baz!'
set APPEND nokey -> False
refill foo (exists) -> False
refill refilled (missing) -> True
get refilled -> 'value'
get_cas foo -> ('<baz!', True)
set foo stale cas -> False
set foo right cas -> True
set foo same cas again -> False
set_cas returns a new token -> True
set nokey with cas -> False
multi_get_cas foo missing -> {'foo': ('t', True), 'missing': (None, False)}
delete foo stale cas -> False
get foo -> 't'
delta missing -> False
delta_and_get missing -> None
delta_initialize missing (initial 10) -> True
get counter -> '10'
delta_and_get +5 -> 15
delta_and_get -3 -> 12
delta_and_get -100 (floors at 0) -> 0
delta_initialize_and_get missing -> 7
delta +1 on a string -> !MemcacheServerError(Memcache error)
delta noreply -> True
delta_and_get +0 -> 1
delete newkey -> True
delete newkey again -> False
invalidate newkey (missing is fine) -> True
touch foo -> True
meta get foo ttl -> ('Success', None, None, '<=3600', None, None, False)
touch nokey -> False
get with touch_ttl -> 42
meta get int ttl -> ('Success', None, None, '>3600', None, None, False)
set nr1 noreply -> True
set ADD nr1 noreply (not stored, silent) -> True
set APPEND nr1 noreply -> True
delete nr2 noreply (missing, silent) -> True
get nr1 -> 'ac'
set page v1 -> True
delete page marking it stale -> True
meta get page (first: stale, win) -> ('Value', 2, 0, '<=3600', False, True, True)
meta get page (second: stale, lose) -> ('Value', 2, 0, '<=3600', True, False, True)
get page on another client (stale value) -> 'v1'
get page (high level: lost, stale value) -> 'v1'
set page v2 with the stale item's cas -> True
meta get page (fresh) -> ('Value', 2, 0, '<=3600', False, None, False)
get page -> 'v2'
set page v3 with an old cas, stale policy -> True
meta get page (stale after cas mismatch) -> ('Value', 2, 0, '<=3600', False, True, True)
set hot ttl=10 -> True
get hot with recache (wins: looks like a miss) -> None
get hot with recache (loses: value) -> 'h1'
meta get hot -> ('Value', 2, 0, '<=3600', True, False, False)
set cold ttl=3600 -> True
get cold with recache (no token) -> 'c1'
get_or_lease item (wins the lease) -> None
meta get item (placeholder) -> ('Value', 0, 0, '<=3600', True, False, False)
  (lease wait 0.01s skipped)
get_or_lease item on another client (loses, gives up) -> None
  (lease wait 0.01s skipped)
get_or_lease_cas item -> None
  (lease wait 0.01s skipped)
fill item with the lease cas -> True
get_or_lease item (hit) -> 'filled'
set 250-byte key -> True
get 250-byte key -> 'long'
set 300-byte key -> True
get 300-byte key -> 'longer'
set unicode key -> True
get unicode key -> 'u'
set key with space -> True
get key with space -> 'spaced'
set tricky bytes -> True
get tricky equal -> True
set ~1 MB random bytes -> True
get big equal -> True
set 2 MB random bytes (too large) -> !MemcacheServerError(Memcache error)
get huge -> None
get foo (connection usable) -> 't'
set 3 MB compressible (zlib under 1 MB) -> True
get zipped -> <bytes len=3145728 sha1=fb76edc41ec1>
"#;

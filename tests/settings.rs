//! No setting is silently ignored: every flag `rustcached --help` lists and every `-o` key
//! `src/config.rs` accepts has an entry here checking that it changes something a client or
//! the system can see (a `stats settings` value, a reply, a listener, the process's limits),
//! says at startup that it changes nothing (keys memcached accepts as no-ops), or stops the
//! server with a non-zero exit. A flag or key without an entry fails the walk. Also the idle
//! timeout (`-o idle_timeout`), against rustcached and memcached 1.6.18.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{binaries, expect, free_port, is_root, rustcached_bin, stats, try_start, Server};

enum Check {
    /// `stats settings` holds these values, and at least one differs from the defaults.
    Settings(&'static [&'static str], &'static [(&'static str, &'static str)]),
    /// A default-on setting: its `no_` form changes `stat`, and the key given after it
    /// (`-o no_x,x`) restores the default.
    Restores { no: &'static str, key: &'static str, stat: &'static str },
    /// The server starts and its stderr says this (accepted as memcached does, but a no-op).
    Warns(&'static [&'static str], &'static str),
    /// Startup stops with this exit code.
    Refused(&'static [&'static str], i32),
    /// A check of its own.
    Custom(fn()),
    /// Checked by this test function in this file (the walk makes sure it exists).
    Elsewhere(&'static str, &'static str),
}

use Check::*;

/// Every `--help` flag, by short name (or long name when it has no short one).
const FLAGS: &[(&str, Check)] = &[
    ("-p", Custom(port)),
    ("-U", Custom(udp_port)),
    ("-s", Custom(unix_socket_and_mask)),
    ("-a", Custom(unix_socket_and_mask)),
    ("-l", Custom(listen_list)),
    ("-d", Elsewhere("tests/process.rs", "daemon_mode_writes_and_removes_the_pid_file")),
    ("-P", Elsewhere("tests/process.rs", "daemon_mode_writes_and_removes_the_pid_file")),
    ("-r", Custom(core_limit)),
    ("-u", Elsewhere("tests/operations.rs", "dash_u_drops_root_privileges")),
    ("-m", Settings(&["-m", "128"], &[("maxbytes", "134217728")])),
    ("-c", Settings(&["-c", "2048"], &[("maxconns", "2048")])),
    ("-k", Custom(lock_memory)),
    ("-v", Settings(&["-vv"], &[("verbosity", "2")])),
    ("-V", Elsewhere("tests/process.rs", "help_and_version")),
    ("-i", Custom(license)),
    ("-f", Settings(&["-f", "1.5"], &[("growth_factor", "1.50")])),
    ("-n", Settings(&["-n", "64"], &[("chunk_size", "64")])),
    ("-L", Custom(large_pages)),
    ("-D", Settings(&["-D", "#"], &[("stat_key_prefix", "#"), ("detail_enabled", "yes")])),
    ("-t", Settings(&["-t", "2"], &[("num_threads", "2")])),
    ("-R", Settings(&["-R", "5"], &[("reqs_per_event", "5")])),
    ("-C", Settings(&["-C"], &[("cas_enabled", "no")])),
    ("-b", Settings(&["-b", "512"], &[("tcp_backlog", "512")])),
    ("-B", Settings(&["-B", "ascii"], &[("binding_protocol", "ascii")])),
    ("-I", Settings(&["-I", "2m"], &[("item_size_max", "2097152")])),
    ("-S", Elsewhere("tests/binary.rs", "sasl_plain_accepted_and_refused")),
    ("-A", Settings(&["-A"], &[("shutdown_command", "yes")])),
    ("-F", Settings(&["-F"], &[("flush_enabled", "no")])),
    ("-X", Settings(&["-X"], &[("dump_enabled", "no")])),
    ("-W", Custom(watch_disabled)),
    ("-Y", Elsewhere("tests/golden.rs", "ascii_auth_matches_memcached")),
    ("-e", Refused(&["-e", "/tmp/rustcached-memory-file"], 64)),
    ("-M", Settings(&["-M"], &[("evictions", "off")])),
    ("-N", Refused(&["-N", "1"], 64)),
    ("-Z", Elsewhere("tests/tls.rs", "pymemcache_over_tls_with_client_certificates")),
    ("-o", Custom(extended_options_are_walked)),
    ("--conf-file", Elsewhere("tests/operations.rs", "command_line_overrides_the_conf_file")),
    ("--cluster-file", Elsewhere("tests/discovery.rs", "config_get_cluster_is_byte_exact_and_in_one_read")),
    ("-h", Elsewhere("tests/process.rs", "help_and_version")),
];

/// Every key `Config::apply_extended` matches.
const EXTENDED: &[(&str, Check)] = &[
    ("maxconns_fast", Restores { no: "no_maxconns_fast", key: "maxconns_fast", stat: "maxconns_fast" }),
    ("no_maxconns_fast", Settings(&["-o", "no_maxconns_fast"], &[("maxconns_fast", "no")])),
    ("hashpower", Settings(&["-o", "hashpower=20"], &[("hashpower_init", "20")])),
    ("no_hashexpand", Warns(&["-o", "no_hashexpand"], "-o no_hashexpand has no effect")),
    ("slab_reassign", Restores { no: "no_slab_reassign", key: "slab_reassign", stat: "slab_reassign" }),
    ("no_slab_reassign", Settings(&["-o", "no_slab_reassign"], &[("slab_reassign", "no")])),
    ("slab_automove", Settings(&["-o", "slab_automove=2"], &[("slab_automove", "2")])),
    ("no_slab_automove", Settings(&["-o", "no_slab_automove"], &[("slab_automove", "0")])),
    ("slab_automove_ratio", Settings(&["-o", "slab_automove_ratio=0.5"], &[("slab_automove_ratio", "0.50")])),
    ("slab_automove_window", Settings(&["-o", "slab_automove_window=10"], &[("slab_automove_window", "10")])),
    ("slab_chunk_max", Settings(&["-o", "slab_chunk_max=16384"], &[("slab_chunk_max", "16384")])),
    ("slab_sizes", Custom(slab_sizes)),
    ("lru_crawler", Restores { no: "no_lru_crawler", key: "lru_crawler", stat: "lru_crawler" }),
    ("no_lru_crawler", Settings(&["-o", "no_lru_crawler"], &[("lru_crawler", "no")])),
    ("lru_crawler_sleep", Settings(&["-o", "lru_crawler_sleep=50"], &[("lru_crawler_sleep", "50")])),
    ("lru_crawler_tocrawl", Settings(&["-o", "lru_crawler_tocrawl=5"], &[("lru_crawler_tocrawl", "5")])),
    ("lru_maintainer", Restores { no: "no_lru_maintainer", key: "lru_maintainer", stat: "lru_maintainer_thread" }),
    ("no_lru_maintainer", Settings(&["-o", "no_lru_maintainer"], &[("lru_maintainer_thread", "no")])),
    ("hot_lru_pct", Settings(&["-o", "hot_lru_pct=10"], &[("hot_lru_pct", "10")])),
    ("warm_lru_pct", Settings(&["-o", "warm_lru_pct=10"], &[("warm_lru_pct", "10")])),
    ("hot_max_factor", Settings(&["-o", "hot_max_factor=0.5"], &[("hot_max_factor", "0.50")])),
    ("warm_max_factor", Settings(&["-o", "warm_max_factor=3.0"], &[("warm_max_factor", "3.00")])),
    ("temporary_ttl", Settings(&["-o", "temporary_ttl=30"], &[("temp_lru", "yes"), ("temporary_ttl", "30")])),
    ("idle_timeout", Elsewhere("tests/settings.rs", "idle_connections_are_closed_and_counted")),
    ("watcher_logbuf_size", Settings(&["-o", "watcher_logbuf_size=512"], &[("watcher_logbuf_size", "524288")])),
    ("worker_logbuf_size", Settings(&["-o", "worker_logbuf_size=128"], &[("worker_logbuf_size", "131072")])),
    ("read_buf_mem_limit", Settings(&["-o", "read_buf_mem_limit=10"], &[("read_buf_mem_limit", "10485760")])),
    ("track_sizes", Settings(&["-o", "track_sizes"], &[("track_sizes", "yes")])),
    ("tail_repair_time", Settings(&["-o", "tail_repair_time=20"], &[("tail_repair_time", "20")])),
    ("hash_algorithm", Settings(&["-o", "hash_algorithm=jenkins"], &[("hash_algorithm", "jenkins")])),
    ("modern", Restores { no: "no_modern", key: "modern", stat: "slab_reassign" }),
    ("no_modern", Settings(&["-o", "no_modern"], &[("slab_reassign", "no"), ("hash_algorithm", "jenkins")])),
    ("inline_ascii_resp", Warns(&["-o", "inline_ascii_resp"], "-o inline_ascii_resp has no effect")),
    ("no_inline_ascii_resp", Warns(&["-o", "no_inline_ascii_resp"], "-o no_inline_ascii_resp has no effect")),
    ("no_chunked_items", Warns(&["-o", "no_chunked_items"], "-o no_chunked_items has no effect")),
    ("drop_privileges", Warns(&["-o", "drop_privileges"], "-o drop_privileges has no effect")),
    ("no_drop_privileges", Warns(&["-o", "no_drop_privileges"], "-o no_drop_privileges has no effect")),
    ("relaxed_privileges", Warns(&["-o", "relaxed_privileges"], "-o relaxed_privileges has no effect")),
    ("resp_obj_mem_limit", Warns(&["-o", "resp_obj_mem_limit=10"], "DEPRECATED: resp_obj_mem_limit no longer used")),
    ("debug_time", Elsewhere("tests/server.rs", "expiry_uses_the_server_clock")),
    ("metrics_port", Elsewhere("tests/metrics.rs", "page_is_what_memcached_exporter_exports")),
    ("metrics_addr", Elsewhere("tests/metrics.rs", "page_is_what_memcached_exporter_exports")),
    // TLS (`src/tlsconf.rs`): honoured with `-Z` and certificates, which tests/tls.rs makes
    ("ssl_chain_cert", Elsewhere("tests/tls.rs", "refresh_certs_picks_up_a_new_certificate")),
    ("ssl_key", Elsewhere("tests/tls.rs", "refresh_certs_picks_up_a_new_certificate")),
    ("ssl_ca_cert", Elsewhere("tests/tls.rs", "plaintext_and_clients_without_a_trusted_certificate_are_refused")),
    ("ssl_verify_mode", Elsewhere("tests/tls.rs", "plaintext_and_clients_without_a_trusted_certificate_are_refused")),
    ("ssl_keyformat", Elsewhere("tests/tls.rs", "unusable_tls_settings_are_refused")),
    ("ssl_ciphers", Elsewhere("tests/tls.rs", "min_version_and_ciphers_are_honoured")),
    ("ssl_min_version", Elsewhere("tests/tls.rs", "min_version_and_ciphers_are_honoured")),
    ("ssl_session_cache", Elsewhere("tests/tls.rs", "session_cache_resumes_sessions")),
    ("ssl_wbuf_size", Elsewhere("tests/tls.rs", "small_wbuf_size_still_delivers_large_values")),
    ("ssl_kernel_tls", Refused(&["-o", "ssl_kernel_tls"], 64)),
];

fn start(args: &[&str]) -> Server {
    try_start(rustcached_bin(), args).unwrap_or_else(|e| panic!("{args:?} did not start: {e:?}"))
}

fn settings_of(args: &[&str]) -> BTreeMap<String, String> {
    stats(&mut start(args).connect(), "settings")
}

fn run(what: &str, check: &Check, defaults: &BTreeMap<String, String>) {
    match check {
        Settings(args, want) => {
            let got = settings_of(args);
            for (k, v) in *want {
                assert_eq!(got.get(*k).map(String::as_str), Some(*v), "{what}: {args:?} -> stats settings {k}");
            }
            assert!(
                want.iter().any(|(k, v)| defaults.get(*k).map(String::as_str) != Some(*v)),
                "{what}: {args:?} shows nothing that differs from the defaults"
            );
        }
        Restores { no, key, stat } => {
            let off = settings_of(&["-o", no]);
            let on = settings_of(&["-o", &format!("{no},{key}")]);
            assert_ne!(off.get(*stat), defaults.get(*stat), "{what}: -o {no} changes {stat}");
            assert_eq!(on.get(*stat), defaults.get(*stat), "{what}: -o {no},{key} restores {stat}");
        }
        Warns(args, text) => {
            // the warning is printed once the flags are read; `-c 1` then stops the server
            let out = std::process::Command::new(rustcached_bin())
                .args(["-p", "0", "-U", "0", "-u", "root", "-c", "1"])
                .args(*args)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains(text), "{what}: {args:?} must say {text:?}; stderr: {stderr}");
            drop(start(args)); // and it is accepted
        }
        Refused(args, code) => match try_start(rustcached_bin(), args) {
            Err((got, msg)) => assert_eq!(got, *code, "{what}: {args:?}: {msg}"),
            Ok(_) => panic!("{what}: {args:?} started"),
        },
        Custom(f) => f(),
        Elsewhere(file, test) => {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            assert!(text.contains(&format!("fn {test}()")), "{what}: {file} has no fn {test}");
        }
    }
}

/// The flags `--help` lists: the first `-x` or `--long` of each option line.
fn help_flags() -> Vec<String> {
    let out = std::process::Command::new(rustcached_bin()).arg("--help").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| l.split([',', ' ', '=', '<']).next().map(str::to_string))
        .collect()
}

/// The keys `Config::apply_extended` accepts, read from its match arms in src/config.rs, and
/// the TLS keys it hands to `TlsConf::apply` in src/tlsconf.rs.
fn extended_keys() -> Vec<String> {
    let mut keys = match_arms("src/config.rs", "fn apply_extended");
    keys.extend(match_arms("src/tlsconf.rs", "pub fn apply"));
    keys
}

/// The string patterns of the match arms in function `func` of `file`.
fn match_arms(file: &str, func: &str) -> Vec<String> {
    let src = std::fs::read_to_string(file).unwrap();
    let start = src.find(func).unwrap_or_else(|| panic!("{func} in {file}"));
    let body = &src[start..];
    let body = &body[..body.find("\n    }\n").unwrap_or(body.len())];
    let mut keys = Vec::new();
    for line in body.lines().map(str::trim) {
        // arms look like `"key" => ...` or `"a" | "b" => ...` (value patterns start with `Some(`)
        if !line.starts_with('"') || !line.contains("=>") {
            continue;
        }
        let pattern = line.split("=>").next().unwrap_or("");
        keys.extend(pattern.split('|').map(|k| k.trim().trim_matches('"').to_string()).filter(|k| !k.is_empty()));
    }
    keys
}

#[test]
fn every_flag_is_honoured_or_refused() {
    let listed = help_flags();
    assert!(listed.len() > 30, "--help parsed: {listed:?}");
    for flag in &listed {
        assert!(FLAGS.iter().any(|(f, _)| f == flag), "{flag} is in --help but has no check in tests/settings.rs");
    }
    let defaults = settings_of(&[]);
    for (flag, check) in FLAGS {
        assert!(listed.contains(&flag.to_string()), "{flag} has a check but is not in --help");
        run(flag, check, &defaults);
    }
}

fn extended_options_are_walked() {
    let keys = extended_keys();
    assert!(keys.len() > 30, "keys parsed from src/config.rs: {keys:?}");
    for key in &keys {
        assert!(EXTENDED.iter().any(|(k, _)| k == key), "-o {key} is accepted but has no check in tests/settings.rs");
    }
    let defaults = settings_of(&[]);
    for (key, check) in EXTENDED {
        assert!(keys.contains(&key.to_string()), "-o {key} has a check but src/config.rs does not accept it");
        run(&format!("-o {key}"), check, &defaults);
    }
    // keys memcached 1.6.18 does not know are refused as it refuses them
    for bad in ["lru_segmented", "no_lru_segmented", "large_memory_pages", "bogus"] {
        assert_eq!(
            try_start(rustcached_bin(), &["-o", bad]).err(),
            Some((1, format!("Illegal suboption \"{bad}\""))),
            "-o {bad}"
        );
    }
    assert_eq!(
        try_start(rustcached_bin(), &["-o", "tail_repair_time=5"]).err(),
        Some((1, "Cannot set tail_repair_time to less than 10 seconds".to_string()))
    );
}

fn port() {
    let srv = start(&[]);
    assert_eq!(stats(&mut srv.connect(), "settings")["tcpport"], srv.port.to_string());
}

fn udp_port() {
    let udp = free_port();
    let srv = start(&["-U", &udp.to_string()]);
    assert_eq!(stats(&mut srv.connect(), "settings")["udpport"], udp.to_string());
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock.send_to(b"\x00\x01\x00\x00\x00\x01\x00\x00version\r\n", ("127.0.0.1", udp)).unwrap();
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).unwrap();
    assert!(buf[8..n].starts_with(b"VERSION "), "{:?}", String::from_utf8_lossy(&buf[..n]));
}

fn unix_socket_and_mask() {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::temp_dir().join(format!("rc-settings-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut cmd = std::process::Command::new(rustcached_bin());
    cmd.args(["-s", path.to_str().unwrap(), "-a", "0660"]);
    if is_root() {
        cmd.args(["-u", "root"]);
    }
    let mut child = cmd.stdin(std::process::Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut s = loop {
        if let Ok(s) = std::os::unix::net::UnixStream::connect(&path) {
            break s;
        }
        assert!(Instant::now() < deadline, "no UNIX socket at {path:?}");
        std::thread::sleep(Duration::from_millis(10));
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"stats settings\r\n").unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    while !out.ends_with(b"END\r\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        out.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains(&format!("STAT domain_socket {}\r\n", path.display())), "{text}");
    assert!(text.contains("STAT umask 660\r\n"), "{text}");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o660);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&path);
}

fn listen_list() {
    // after the `-l 127.0.0.1` try_start passes: -l is repeatable, and adds an address
    let srv = start(&["-l", "127.0.0.2"]);
    assert_eq!(stats(&mut srv.connect(), "settings")["inter"], "127.0.0.1,127.0.0.2");
    let mut s = std::net::TcpStream::connect(("127.0.0.2", srv.port)).expect("listens on 127.0.0.2 too");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    expect(&mut s, b"mn\r\n", b"MN\r\n");
}

/// A line of /proc/PID/<file> starting with `key`.
fn proc_line(pid: u32, file: &str, key: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/{file}"))
        .to_string()
}

fn core_limit() {
    let srv = start(&["-r"]);
    let line = proc_line(srv.child.id(), "limits", "Max core file size");
    let hard = line.split_whitespace().nth(5).unwrap_or_default().to_string();
    assert_eq!(
        line.split_whitespace().nth(4),
        Some(hard.as_str()),
        "-r raises the soft core limit to the hard one: {line}"
    );
    assert_ne!(hard, "0", "{line}");
}

fn lock_memory() {
    if is_root() {
        let srv = start(&["-k"]);
        // mlockall runs after the listeners are bound, and locking takes a while
        let deadline = Instant::now() + Duration::from_secs(10);
        let line = loop {
            let line = proc_line(srv.child.id(), "status", "VmLck:");
            let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
            if kb > 0 || Instant::now() > deadline {
                break line;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(!line.ends_with(" 0 kB"), "-k locks memory: {line}");
        let plain = start(&[]);
        assert_eq!(proc_line(plain.child.id(), "status", "VmLck:").split_whitespace().nth(1), Some("0"));
    } else {
        // memcached warns and carries on when mlockall is not allowed
        drop(start(&["-k"]));
    }
}

fn license() {
    let out = std::process::Command::new(rustcached_bin()).arg("-i").output().unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("BSD"));
}

fn large_pages() {
    let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    if thp.is_empty() || thp.contains("[never]") {
        let (code, msg) = try_start(rustcached_bin(), &["-L"]).err().expect("-L refused without huge pages");
        assert_eq!(code, 1);
        assert!(msg.ends_with("Cannot enable large pages on this system\n(There is no support as of this version)"));
        return;
    }
    // with huge pages available, -L starts, and item memory is advised for them (VmFlags `hg`)
    let srv = start(&["-L"]);
    expect(&mut srv.connect(), b"set k 0 0 1\r\nx\r\n", b"STORED\r\n");
    let smaps = std::fs::read_to_string(format!("/proc/{}/smaps", srv.child.id())).unwrap();
    assert!(smaps.lines().any(|l| l.starts_with("VmFlags:") && l.split_whitespace().any(|f| f == "hg")));
}

fn watch_disabled() {
    expect(&mut start(&["-W"]).connect(), b"watch\r\n", b"CLIENT_ERROR watch commands not allowed\r\n");
    expect(&mut start(&[]).connect(), b"watch\r\n", b"OK\r\n");
}

fn slab_sizes() {
    let srv = start(&["-o", "slab_sizes=128-256-512"]);
    let mut s = srv.connect();
    expect(&mut s, b"set k 0 0 5\r\nhello\r\n", b"STORED\r\n");
    assert_eq!(stats(&mut s, "slabs").get("1:chunk_size").map(String::as_str), Some("128"));
}

/// Whether the peer closed `s` (read returns 0 or a reset) within `wait`.
fn closed_within(s: &mut std::net::TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 64];
    let closed = match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    closed
}

/// memcached's t/idle-timeout.t, plus the connections it must not close: one sending a data
/// block, and one in active use; a partial command line does not protect a connection.
#[test]
fn idle_connections_are_closed_and_counted() {
    for bin in binaries() {
        let plain = try_start(bin, &[]).unwrap();
        assert!(!stats(&mut plain.connect(), "").contains_key("idle_kicks"), "{bin}: idle_kicks only with the option");
        let srv = try_start(bin, &["-o", "idle_timeout=1"]).unwrap();
        let mut active = srv.connect();
        assert_eq!(stats(&mut active, "")["idle_kicks"], "0", "{bin}");
        assert_eq!(stats(&mut active, "settings")["idle_timeout"], "1", "{bin}");
        let mut idle = srv.connect();
        let mut partial_line = srv.connect();
        partial_line.write_all(b"get k").unwrap();
        let mut mid_value = srv.connect();
        mid_value.write_all(b"set k 0 0 10\r\nab").unwrap();
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(3500) {
            expect(&mut active, b"mn\r\n", b"MN\r\n");
            std::thread::sleep(Duration::from_millis(250));
        }
        assert!(closed_within(&mut idle, Duration::from_secs(3)), "{bin}: idle connection closed");
        assert!(closed_within(&mut partial_line, Duration::from_secs(1)), "{bin}: a partial line is idle too");
        mid_value.write_all(b"cdefghij\r\n").unwrap();
        let mut buf = [0u8; 8];
        mid_value.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"STORED\r\n", "{bin}: a value being sent is not cut off");
        assert_eq!(stats(&mut active, "")["idle_kicks"], "2", "{bin}");
    }
}

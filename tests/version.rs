//! The version string clients see must be one every strict version parser accepts: clients
//! and tools compare it (feature gates, Perl's Cache::Memcached tests, Python's packaging),
//! and a parser that dies on it takes the client down with it.

mod common;

use std::io::{Read, Write};
use std::process::Command;

use common::{expect, stats, Server};

/// `version` (text), Version (binary) and `stats` `version` say the same thing.
fn versions(srv: &Server) -> String {
    let mut s = srv.connect();
    s.write_all(b"version\r\n").unwrap();
    let mut buf = [0u8; 128];
    let n = s.read(&mut buf).unwrap();
    let line = String::from_utf8_lossy(&buf[..n]).into_owned();
    let v = line.strip_prefix("VERSION ").and_then(|l| l.strip_suffix("\r\n")).expect("VERSION line").to_string();
    assert_eq!(stats(&mut s, "")["version"], v);
    let mut b = srv.connect();
    let mut req = [0u8; 24];
    req[0] = 0x80;
    req[1] = 0x0b;
    b.write_all(&req).unwrap();
    let mut head = [0u8; 24];
    b.read_exact(&mut head).unwrap();
    let len = u32::from_be_bytes(head[8..12].try_into().unwrap()) as usize;
    let mut body = vec![0; len];
    b.read_exact(&mut body).unwrap();
    assert_eq!(String::from_utf8_lossy(&body), v);
    v
}

/// Run a parser; `None` when the interpreter or module is missing (.ci/run installs them).
fn parser_accepts(program: &str, args: &[&str], version: &str) -> Option<(bool, String)> {
    let out = Command::new(program).args(args).arg(version).output().ok()?;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    if err.contains("ModuleNotFoundError") || err.contains("Can't locate") {
        return None;
    }
    Some((out.status.success(), err + &String::from_utf8_lossy(&out.stdout)))
}

const PERL: &[&str] = &["-Mversion", "-e", "version->parse($ARGV[0]) or die"];
/// packaging.version (PEP 440), and distutils' StrictVersion rule (removed from Python 3.12,
/// so its regular expression is applied directly when the module is gone).
const PYTHON: &[&str] = &[
    "-W",
    "ignore",
    "-c",
    r#"import re, sys
from packaging.version import Version
v = sys.argv[1]
Version(v)
try:
    from distutils.version import StrictVersion
    StrictVersion(v)
except ImportError:
    assert re.match(r'^(\d+) \. (\d+) (\. (\d+))? ([ab](\d+))?$', v, re.VERBOSE), v"#,
];
const RUBY: &[&str] =
    &["-e", "Gem::Version.correct?(ARGV[0]) or abort('not a Gem::Version'); Gem::Version.new(ARGV[0])"];

#[test]
fn version_is_accepted_by_strict_parsers() {
    let srv = Server::start(&[]);
    let v = versions(&srv);
    assert_eq!(v, "1.6.18", "memcached's release, nothing appended");
    semver::Version::parse(&v).expect("semver");
    for (program, args) in [("perl", PERL), ("python3", PYTHON), ("ruby", RUBY)] {
        match parser_accepts(program, args, &v) {
            Some((ok, out)) => assert!(ok, "{program} rejects {v:?}: {out}"),
            None => panic!("{program} or its module is missing (.ci/run installs it)"),
        }
    }
    // The parsers are strict: the old form is refused by Perl and Python, so the check above
    // can fail.
    let old = "1.6.18-rustcached-0.1.0";
    for (program, args) in [("perl", PERL), ("python3", PYTHON)] {
        if let Some((ok, _)) = parser_accepts(program, args, old) {
            assert!(!ok, "{program} accepts {old}");
        }
    }
}

#[test]
fn our_identity_is_in_dash_v() {
    let srv = Server::start(&[]);
    let mut s = srv.connect();
    expect(&mut s, b"version\r\n", b"VERSION 1.6.18\r\n");
    let out = Command::new(common::rustcached_bin()).arg("-V").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("rustcached {} (memcached 1.6.18)\n", env!("CARGO_PKG_VERSION"))
    );
}

//! Golden conversations recorded from memcached 1.6.18 (tests/cases/*.cases), replayed byte for
//! byte against rustcached, and, when Debian's memcached is installed, against memcached too
//! (a live differential check that the recordings still describe the oracle).
//!
//! Format: tests/cases/README.md. `{*}` in a reply matches any bytes other than CR/LF.

mod common;

#[test]
fn text_protocol_matches_memcached() {
    common::golden::check("tests/cases/text.cases");
}

#[test]
fn wildcard_matching() {
    assert!(common::golden::matches(b"STAT pid {*}\r\n", b"STAT pid 123\r\n"));
    assert!(!common::golden::matches(b"STAT pid {*}\r\n", b"STAT pid 1\r\n2\r\n"));
    assert!(common::golden::matches(b"a{*}b{*}c", b"axxbyyc"));
    assert!(!common::golden::matches(b"END\r\n", b"END\r\nEND\r\n"));
}

#[test]
fn ascii_auth_matches_memcached() {
    common::golden::check("tests/cases/asciiauth.cases");
}

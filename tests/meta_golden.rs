//! Golden meta-protocol conversations recorded from memcached 1.6.18 (tests/cases/meta.cases),
//! replayed byte for byte against rustcached, and, when Debian's memcached is installed, against
//! memcached too. The flags rustcached adds beyond 1.6.18 are tested in tests/meta.rs.
//!
//! Format: tests/cases/README.md. `{*}` in a reply matches any bytes other than CR/LF.

mod common;

#[test]
fn meta_protocol_matches_memcached() {
    common::golden::check("tests/cases/meta.cases");
}

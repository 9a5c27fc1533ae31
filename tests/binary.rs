//! The binary protocol over TCP: byte-exact packet conversations for every opcode and status
//! (run against rustcached and, when installed, against Debian's memcached 1.6.18, so every
//! expected packet here is checked against the oracle too), stats counting, SASL, the Rust
//! `memcache` crate (binary by default) and `memccapable -b`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{read_n, read_to_close, servers, Server};

const GET: u8 = 0x00;
const SET: u8 = 0x01;
const ADD: u8 = 0x02;
const REPLACE: u8 = 0x03;
const DELETE: u8 = 0x04;
const INCR: u8 = 0x05;
const DECR: u8 = 0x06;
const QUIT: u8 = 0x07;
const FLUSH: u8 = 0x08;
const GETQ: u8 = 0x09;
const NOOP: u8 = 0x0a;
const VERSION: u8 = 0x0b;
const GETK: u8 = 0x0c;
const GETKQ: u8 = 0x0d;
const APPEND: u8 = 0x0e;
const PREPEND: u8 = 0x0f;
const STAT: u8 = 0x10;
const SETQ: u8 = 0x11;
const ADDQ: u8 = 0x12;
const REPLACEQ: u8 = 0x13;
const DELETEQ: u8 = 0x14;
const INCRQ: u8 = 0x15;
const DECRQ: u8 = 0x16;
const QUITQ: u8 = 0x17;
const FLUSHQ: u8 = 0x18;
const APPENDQ: u8 = 0x19;
const PREPENDQ: u8 = 0x1a;
const VERBOSITY: u8 = 0x1b;
const TOUCH: u8 = 0x1c;
const GAT: u8 = 0x1d;
const GATQ: u8 = 0x1e;
const SASL_LIST: u8 = 0x20;
const SASL_AUTH: u8 = 0x21;
const SASL_STEP: u8 = 0x22;
const GATK: u8 = 0x23;
const GATKQ: u8 = 0x24;

const NOT_FOUND: u16 = 0x01;
const EXISTS: u16 = 0x02;
const TOO_LARGE: u16 = 0x03;
const EINVAL: u16 = 0x04;
const NOT_STORED: u16 = 0x05;
const BAD_DELTA: u16 = 0x06;
const AUTH_ERROR: u16 = 0x20;
const AUTH_CONTINUE: u16 = 0x21;
const UNKNOWN: u16 = 0x81;
const NO_MEMORY: u16 = 0x82;

/// Error bodies, written out independently of the codec.
fn message(status: u16) -> &'static [u8] {
    match status {
        NOT_FOUND => b"Not found",
        EXISTS => b"Data exists for key.",
        TOO_LARGE => b"Too large.",
        EINVAL => b"Invalid arguments",
        NOT_STORED => b"Not stored.",
        BAD_DELTA => b"Non-numeric server-side value for incr or decr",
        AUTH_ERROR => b"Auth failure.",
        UNKNOWN => b"Unknown command",
        NO_MEMORY => b"Out of memory allocating item",
        _ => b"",
    }
}

#[allow(clippy::too_many_arguments)]
fn packet(magic: u8, op: u8, status: u16, opaque: u32, cas: u64, extras: &[u8], key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut p = vec![magic, op];
    p.extend_from_slice(&(key.len() as u16).to_be_bytes());
    p.push(extras.len() as u8);
    p.push(0);
    p.extend_from_slice(&status.to_be_bytes());
    p.extend_from_slice(&((extras.len() + key.len() + value.len()) as u32).to_be_bytes());
    p.extend_from_slice(&opaque.to_be_bytes());
    p.extend_from_slice(&cas.to_be_bytes());
    p.extend_from_slice(extras);
    p.extend_from_slice(key);
    p.extend_from_slice(value);
    p
}

/// A request.
fn rq(op: u8, opaque: u32, cas: u64, extras: &[u8], key: &[u8], value: &[u8]) -> Vec<u8> {
    packet(0x80, op, 0, opaque, cas, extras, key, value)
}

/// A request with only a key.
fn rk(op: u8, opaque: u32, key: &[u8]) -> Vec<u8> {
    rq(op, opaque, 0, &[], key, &[])
}

/// A successful response.
fn ok(op: u8, opaque: u32, cas: u64, extras: &[u8], key: &[u8], value: &[u8]) -> Vec<u8> {
    packet(0x81, op, 0, opaque, cas, extras, key, value)
}

/// An error response: CAS 0, body = the status message.
fn err(op: u8, status: u16, opaque: u32) -> Vec<u8> {
    packet(0x81, op, status, opaque, 0, &[], &[], message(status))
}

fn set_extras(flags: u32, exptime: u32) -> Vec<u8> {
    [flags.to_be_bytes(), exptime.to_be_bytes()].concat()
}

fn set(op: u8, opaque: u32, cas: u64, key: &[u8], value: &[u8], flags: u32) -> Vec<u8> {
    rq(op, opaque, cas, &set_extras(flags, 0), key, value)
}

fn arith(op: u8, opaque: u32, cas: u64, key: &[u8], delta: u64, initial: u64, exptime: u32) -> Vec<u8> {
    let extras = [&delta.to_be_bytes()[..], &initial.to_be_bytes(), &exptime.to_be_bytes()].concat();
    rq(op, opaque, cas, &extras, key, &[])
}

fn exp(t: u32) -> [u8; 4] {
    t.to_be_bytes()
}

fn counter(op: u8, opaque: u32, cas: u64, value: u64) -> Vec<u8> {
    ok(op, opaque, cas, &[], &[], &value.to_be_bytes())
}

fn conn(srv: &Server) -> TcpStream {
    let s = srv.connect();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Send `send` followed by a Noop and expect exactly `expect` then the Noop's reply: proves
/// that nothing else (a reply a quiet command should not send) came in between.
fn talk(who: &str, s: &mut TcpStream, send: &[u8], expect: &[u8]) {
    talk_fenced(who, s, send, expect, NOOP, b"");
}

const FENCE: u32 = 0xfe9c_e000;

/// `talk` with another fence opcode (no key, no body) and its reply value.
fn talk_fenced(who: &str, s: &mut TcpStream, send: &[u8], expect: &[u8], fence: u8, fence_reply: &[u8]) {
    let mut req = send.to_vec();
    req.extend_from_slice(&rq(fence, FENCE, 0, &[], &[], &[]));
    let mut want = expect.to_vec();
    want.extend_from_slice(&ok(fence, FENCE, 0, &[], &[], fence_reply));
    s.write_all(&req).unwrap();
    let got = read_n(s, want.len());
    assert_eq!(got, want, "{who}: reply to {:x?}\n got {:?}\nwant {:?}", send, lossy(&got), lossy(&want));
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Send `send`, expect exactly `expect`, then the connection closes.
fn talk_then_close(who: &str, s: &mut TcpStream, send: &[u8], expect: &[u8]) {
    s.write_all(send).unwrap();
    let (got, closed) = read_to_close(s);
    assert_eq!(lossy(&got), lossy(expect), "{who}: reply to {send:x?}");
    assert!(closed, "{who}: connection should close after {send:x?}");
}

#[test]
fn get_gat_touch_family() {
    for (who, srv) in servers(&[]) {
        let s = &mut conn(&srv);
        let flags = 0xdead_beef_u32.to_be_bytes();
        talk(who, s, &set(SET, 1, 0, b"a", b"hello", 0xdead_beef), &ok(SET, 1, 1, &[], &[], &[]));
        talk(who, s, &rk(GET, 2, b"a"), &ok(GET, 2, 1, &flags, &[], b"hello"));
        talk(who, s, &rk(GETK, 3, b"a"), &ok(GETK, 3, 1, &flags, b"a", b"hello"));
        talk(who, s, &rk(GET, 4, b"zz"), &err(GET, NOT_FOUND, 4));
        // GetK miss: the key echoed, no text.
        talk(who, s, &rk(GETK, 5, b"zz"), &packet(0x81, GETK, NOT_FOUND, 5, 0, &[], b"zz", &[]));
        // Quiet gets: misses silent, hits sent.
        let send = [rk(GETQ, 6, b"zz"), rk(GETQ, 7, b"a"), rk(GETKQ, 8, b"zz"), rk(GETKQ, 9, b"a")].concat();
        talk(who, s, &send, &[ok(GETQ, 7, 1, &flags, &[], b"hello"), ok(GETKQ, 9, 1, &flags, b"a", b"hello")].concat());
        // Gat family: like get, and sets the expiration (CAS unchanged).
        talk(who, s, &rq(GAT, 10, 0, &exp(100), b"a", &[]), &ok(GAT, 10, 1, &flags, &[], b"hello"));
        talk(who, s, &rq(GATK, 11, 0, &exp(100), b"a", &[]), &ok(GATK, 11, 1, &flags, b"a", b"hello"));
        talk(who, s, &rq(GAT, 12, 0, &exp(100), b"zz", &[]), &err(GAT, NOT_FOUND, 12));
        talk(who, s, &rq(GATK, 13, 0, &exp(100), b"zz", &[]), &packet(0x81, GATK, NOT_FOUND, 13, 0, &[], b"zz", &[]));
        let send = [rq(GATQ, 14, 0, &exp(0), b"zz", &[]), rq(GATKQ, 15, 0, &exp(0), b"a", &[])].concat();
        talk(who, s, &send, &ok(GATKQ, 15, 1, &flags, b"a", b"hello"));
        // Touch: flags only, no value.
        talk(who, s, &rq(TOUCH, 16, 0, &exp(100), b"a", &[]), &ok(TOUCH, 16, 1, &flags, &[], &[]));
        talk(who, s, &rq(TOUCH, 17, 0, &exp(100), b"zz", &[]), &err(TOUCH, NOT_FOUND, 17));
        // Binary-safe keys, empty values.
        talk(who, s, &set(SET, 18, 0, b"k y\x01", b"", 0), &ok(SET, 18, 2, &[], &[], &[]));
        talk(who, s, &rk(GETK, 19, b"k y\x01"), &ok(GETK, 19, 2, &[0; 4], b"k y\x01", &[]));
        // An absolute exptime in the past: gat returns the value, then the item is gone.
        talk(who, s, &rq(GAT, 20, 0, &exp(2_592_001), b"a", &[]), &ok(GAT, 20, 1, &flags, &[], b"hello"));
        talk(who, s, &rk(GET, 21, b"a"), &err(GET, NOT_FOUND, 21));
    }
}

#[test]
fn storage_commands_and_cas() {
    for (who, srv) in servers(&[]) {
        let s = &mut conn(&srv);
        let none = [0u8; 4];
        talk(who, s, &set(SET, 1, 0, b"a", b"v1", 0), &ok(SET, 1, 1, &[], &[], &[]));
        talk(who, s, &set(ADD, 2, 0, b"a", b"x", 0), &err(ADD, EXISTS, 2));
        talk(who, s, &set(ADD, 3, 0, b"b", b"vb", 7), &ok(ADD, 3, 2, &[], &[], &[]));
        talk(who, s, &set(REPLACE, 4, 0, b"zz", b"x", 0), &err(REPLACE, NOT_FOUND, 4));
        talk(who, s, &set(REPLACE, 5, 0, b"a", b"v2", 0), &ok(REPLACE, 5, 3, &[], &[], &[]));
        talk(who, s, &rq(APPEND, 6, 0, &[], b"zz", b"x"), &err(APPEND, NOT_STORED, 6));
        talk(who, s, &rq(PREPEND, 7, 0, &[], b"zz", b"x"), &err(PREPEND, NOT_STORED, 7));
        talk(who, s, &rq(APPEND, 8, 0, &[], b"b", b"!"), &ok(APPEND, 8, 4, &[], &[], &[]));
        talk(who, s, &rq(PREPEND, 9, 0, &[], b"b", b"<"), &ok(PREPEND, 9, 5, &[], &[], &[]));
        // append/prepend keep the flags
        talk(who, s, &rk(GET, 10, b"b"), &ok(GET, 10, 5, &7u32.to_be_bytes(), &[], b"<vb!"));
        // A request CAS makes set/add/replace compare-and-swap; append checks it too.
        talk(who, s, &set(SET, 11, 999, b"a", b"v3", 0), &err(SET, EXISTS, 11));
        talk(who, s, &set(SET, 12, 3, b"a", b"v3", 0), &ok(SET, 12, 6, &[], &[], &[]));
        talk(who, s, &set(SET, 13, 1, b"zz", b"x", 0), &err(SET, NOT_FOUND, 13));
        talk(who, s, &set(ADD, 14, 6, b"a", b"v4", 0), &ok(ADD, 14, 7, &[], &[], &[]));
        talk(who, s, &set(REPLACE, 15, 1, b"a", b"v5", 0), &err(REPLACE, EXISTS, 15));
        talk(who, s, &rq(APPEND, 16, 1, &[], b"a", b"!"), &err(APPEND, EXISTS, 16));
        talk(who, s, &rq(APPEND, 17, 7, &[], b"a", b"!"), &ok(APPEND, 17, 8, &[], &[], &[]));
        talk(who, s, &rk(GET, 18, b"a"), &ok(GET, 18, 8, &none, &[], b"v4!"));
        // Quiet stores: silent on success, errors sent.
        let send = [
            set(SETQ, 19, 0, b"c", b"c", 0),
            set(ADDQ, 20, 0, b"c", b"x", 0),
            set(REPLACEQ, 21, 0, b"zz", b"x", 0),
            rq(APPENDQ, 22, 0, &[], b"zz", b"x"),
            rq(PREPENDQ, 23, 0, &[], b"c", b">"),
            set(SETQ, 24, 1, b"c", b"x", 0),
        ]
        .concat();
        let want =
            [err(ADDQ, EXISTS, 20), err(REPLACEQ, NOT_FOUND, 21), err(APPENDQ, NOT_STORED, 22), err(SETQ, EXISTS, 24)]
                .concat();
        talk(who, s, &send, &want);
        talk(who, s, &rk(GET, 25, b"c"), &ok(GET, 25, 10, &none, &[], b">c"));
        // exptime is unsigned: 0xffffffff is an absolute time far ahead, the item lives.
        talk(who, s, &rq(SET, 26, 0, &set_extras(0, u32::MAX), b"far", b"v"), &ok(SET, 26, 11, &[], &[], &[]));
        talk(who, s, &rk(GET, 27, b"far"), &ok(GET, 27, 11, &none, &[], b"v"));
    }
}

#[test]
fn cas_disabled_makes_every_cas_zero() {
    for (who, srv) in servers(&["-C"]) {
        let s = &mut conn(&srv);
        talk(who, s, &set(SET, 1, 0, b"a", b"v", 0), &ok(SET, 1, 0, &[], &[], &[]));
        // The request CAS cannot be recorded: a plain set.
        talk(who, s, &set(SET, 2, 5, b"a", b"w", 0), &ok(SET, 2, 0, &[], &[], &[]));
        talk(who, s, &rk(GET, 3, b"a"), &ok(GET, 3, 0, &[0; 4], &[], b"w"));
        talk(who, s, &rq(DELETE, 4, 5, &[], b"a", &[]), &err(DELETE, EXISTS, 4));
    }
}

#[test]
fn delete_and_deleteq() {
    for (who, srv) in servers(&[]) {
        let s = &mut conn(&srv);
        talk(who, s, &set(SET, 1, 0, b"a", b"v", 0), &ok(SET, 1, 1, &[], &[], &[]));
        talk(who, s, &rq(DELETE, 2, 9, &[], b"a", &[]), &err(DELETE, EXISTS, 2));
        talk(who, s, &rq(DELETE, 3, 1, &[], b"a", &[]), &ok(DELETE, 3, 0, &[], &[], &[]));
        talk(who, s, &rk(DELETE, 4, b"a"), &err(DELETE, NOT_FOUND, 4));
        talk(who, s, &set(SET, 5, 0, b"b", b"v", 0), &ok(SET, 5, 2, &[], &[], &[]));
        talk(who, s, &[rk(DELETEQ, 6, b"b"), rk(DELETEQ, 7, b"b")].concat(), &err(DELETEQ, NOT_FOUND, 7));
    }
}

#[test]
fn incr_decr() {
    for (who, srv) in servers(&[]) {
        let s = &mut conn(&srv);
        // A missing counter is created with `initial`; the delta is not applied.
        talk(who, s, &arith(INCR, 1, 0, b"n", 5, 10, 0), &counter(INCR, 1, 1, 10));
        talk(who, s, &arith(INCR, 2, 0, b"n", 5, 10, 0), &counter(INCR, 2, 2, 15));
        talk(who, s, &arith(DECR, 3, 0, b"n", 100, 0, 0), &counter(DECR, 3, 3, 0));
        talk(who, s, &arith(DECR, 4, 0, b"d", 1, 7, 0), &counter(DECR, 4, 4, 7));
        // exptime 0xffffffff: no auto-creation.
        talk(who, s, &arith(INCR, 5, 0, b"m", 1, 0, u32::MAX), &err(INCR, NOT_FOUND, 5));
        talk(who, s, &arith(DECR, 6, 0, b"m", 1, 0, u32::MAX), &err(DECR, NOT_FOUND, 6));
        talk(who, s, &set(SET, 7, 0, b"s", b"abc", 0), &ok(SET, 7, 5, &[], &[], &[]));
        talk(who, s, &arith(INCR, 8, 0, b"s", 1, 0, 0), &err(INCR, BAD_DELTA, 8));
        talk(who, s, &arith(INCR, 9, 1, b"n", 1, 0, 0), &err(INCR, EXISTS, 9));
        talk(who, s, &arith(INCR, 10, 3, b"n", 1, 0, 0), &counter(INCR, 10, 6, 1));
        // Wraps at 2^64.
        talk(who, s, &set(SET, 11, 0, b"w", b"18446744073709551615", 0), &ok(SET, 11, 7, &[], &[], &[]));
        talk(who, s, &arith(INCR, 12, 0, b"w", 2, 0, 0), &counter(INCR, 12, 8, 1));
        // Decrement keeps the length: space padded.
        talk(who, s, &set(SET, 13, 0, b"h", b"100", 0), &ok(SET, 13, 9, &[], &[], &[]));
        talk(who, s, &arith(DECR, 14, 0, b"h", 1, 0, 0), &counter(DECR, 14, 10, 99));
        talk(who, s, &rk(GET, 15, b"h"), &ok(GET, 15, 10, &[0; 4], &[], b"99 "));
        // Quiet: success silent, errors sent.
        let send = [
            arith(INCRQ, 16, 0, b"n", 1, 0, 0),
            arith(DECRQ, 17, 0, b"n", 1, 0, 0),
            arith(INCRQ, 18, 0, b"s", 1, 0, 0),
            arith(DECRQ, 19, 0, b"q", 1, 0, u32::MAX),
        ]
        .concat();
        talk(who, s, &send, &[err(INCRQ, BAD_DELTA, 18), err(DECRQ, NOT_FOUND, 19)].concat());
        // "15" -> "0 " -> "1 " -> "2 " -> "1 ": the item keeps its length.
        talk(who, s, &rk(GET, 20, b"n"), &ok(GET, 20, 12, &[0; 4], &[], b"1 "));
    }
}

#[test]
fn flush_noop_version_quit() {
    for (who, srv) in servers(&[]) {
        let s = &mut conn(&srv);
        talk(who, s, &set(SET, 1, 0, b"a", b"v", 0), &ok(SET, 1, 1, &[], &[], &[]));
        // A delayed flush leaves items visible until then.
        talk(who, s, &rq(FLUSH, 2, 0, &exp(100), &[], &[]), &ok(FLUSH, 2, 0, &[], &[], &[]));
        talk(who, s, &rk(GET, 3, b"a"), &ok(GET, 3, 1, &[0; 4], &[], b"v"));
        talk(who, s, &rk(FLUSH, 4, b""), &ok(FLUSH, 4, 0, &[], &[], &[]));
        talk(who, s, &rk(GET, 5, b"a"), &err(GET, NOT_FOUND, 5));
        talk(who, s, &rk(FLUSHQ, 6, b""), &[]);
        talk(who, s, &rk(NOOP, 0x0102_0304, b""), &ok(NOOP, 0x0102_0304, 0, &[], &[], &[]));
        // Version: the version string (ours is "1.6.18-rustcached-<crate version>").
        s.write_all(&rk(VERSION, 7, b"")).unwrap();
        let head = read_n(s, 24);
        assert_eq!(head[..8], ok(VERSION, 7, 0, &[], &[], &[])[..8], "{who}");
        let len = u32::from_be_bytes([head[8], head[9], head[10], head[11]]) as usize;
        assert!(lossy(&read_n(s, len)).starts_with("1.6.18"), "{who}");
        talk_then_close(who, s, &rk(QUIT, 8, b""), &ok(QUIT, 8, 0, &[], &[], &[]));
        let s = &mut conn(&srv);
        talk_then_close(who, s, &[rk(NOOP, 9, b""), rk(QUITQ, 10, b"")].concat(), &ok(NOOP, 9, 0, &[], &[], &[]));
    }
}

#[test]
fn flush_disabled_is_an_auth_error() {
    for (who, srv) in servers(&["-F"]) {
        let s = &mut conn(&srv);
        talk(who, s, &rk(FLUSH, 1, b""), &err(FLUSH, AUTH_ERROR, 1));
        talk(who, s, &rk(FLUSHQ, 2, b""), &err(FLUSHQ, AUTH_ERROR, 2));
    }
}

/// Read stat packets up to the empty terminator.
fn read_stats(s: &mut TcpStream, opaque: u32) -> Vec<(String, String)> {
    let mut out = Vec::new();
    loop {
        let h = read_n(s, 24);
        assert_eq!(h.len(), 24);
        assert_eq!((h[0], h[1], h[6], h[7]), (0x81, STAT, 0, 0), "stat packet {h:x?}");
        assert_eq!(h[12..16], opaque.to_be_bytes());
        let klen = u16::from_be_bytes([h[2], h[3]]) as usize;
        let blen = u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize;
        let body = read_n(s, blen);
        if blen == 0 {
            return out;
        }
        out.push((lossy(&body[..klen]), lossy(&body[klen..])));
    }
}

fn stat(s: &mut TcpStream, sub: &str) -> Vec<(String, String)> {
    s.write_all(&rk(STAT, 0x5747, sub.as_bytes())).unwrap();
    read_stats(s, 0x5747)
}

fn stat_value(stats: &[(String, String)], name: &str) -> String {
    stats.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_else(|| panic!("no stat {name}"))
}

#[test]
fn stat_groups() {
    for (who, srv) in servers(&[]) {
        let s = &mut conn(&srv);
        let general = stat(s, "");
        assert_eq!(general[0].0, "pid", "{who}");
        assert!(stat_value(&general, "version").starts_with("1.6.18"), "{who}");
        let settings = stat(s, "settings");
        assert_eq!(settings[0], ("maxbytes".into(), "67108864".into()), "{who}");
        assert_eq!(stat_value(&settings, "binding_protocol"), "auto-negotiate", "{who}");
        assert!(stat(s, "items").is_empty(), "{who}: no items yet");
        talk(who, s, &set(SET, 1, 0, b"a:b", b"v", 0), &ok(SET, 1, 1, &[], &[], &[]));
        let items = stat(s, "items");
        assert!(items[0].0.starts_with("items:") && items[0].0.ends_with(":number"), "{who}: {items:?}");
        assert_eq!(items[0].1, "1");
        assert!(stat(s, "slabs").iter().any(|(k, _)| k == "active_slabs"), "{who}");
        assert_eq!(stat(s, "sizes"), vec![("sizes_status".to_string(), "disabled".to_string())], "{who}");
        // Prefix matches, as memcached does; `reset` answers with the terminator only.
        assert!(stat(s, "resetting").is_empty(), "{who}");
        assert!(!stat(s, "settingsX").is_empty(), "{who}");
        assert!(stat(s, "detail on").is_empty(), "{who}");
        talk(who, s, &rk(GET, 2, b"a:b"), &ok(GET, 2, 1, &[0; 4], &[], b"v"));
        let dump = stat(s, "detail dump");
        assert_eq!(dump, vec![("detailed".into(), "PREFIX a get 1 hit 1 set 0 del 0\r\nEND\r\n".into())], "{who}");
        assert!(stat(s, "detail off").is_empty(), "{who}");
        // Unknown groups, and `conns` (text only), are Not found.
        for sub in ["nope", "conns", "items ", "detail x"] {
            talk(who, s, &rk(STAT, 3, sub.as_bytes()), &err(STAT, NOT_FOUND, 3));
        }
    }
}

#[test]
fn stats_count_binary_commands_like_memcached() {
    for (who, srv) in servers(&[]) {
        let s = &mut conn(&srv);
        let send = [
            set(SET, 0, 0, b"a", b"1", 0),
            rk(GET, 0, b"a"),
            rk(GETQ, 0, b"zz"),
            rk(GETK, 0, b"zz"),
            rq(GAT, 0, 0, &exp(0), b"a", &[]),
            rq(GATQ, 0, 0, &exp(0), b"zz", &[]),
            rq(TOUCH, 0, 0, &exp(0), b"a", &[]),
            rq(TOUCH, 0, 0, &exp(0), b"zz", &[]),
            set(SET, 0, 99, b"a", b"x", 0),
            set(SET, 0, 1, b"a", b"2", 0),
            set(SET, 0, 1, b"zz", b"x", 0),
            rq(APPEND, 0, 99, &[], b"a", b"x"),
            arith(INCR, 0, 0, b"a", 1, 0, 0),
            arith(INCR, 0, 0, b"new", 1, 0, 0),
            arith(INCR, 0, 0, b"no", 1, 0, u32::MAX),
            arith(DECR, 0, 0, b"a", 1, 0, 0),
            arith(DECR, 0, 0, b"no", 1, 0, u32::MAX),
            rk(DELETE, 0, b"a"),
            rk(DELETE, 0, b"a"),
            rk(FLUSH, 0, b""),
            rk(NOOP, 1, b""),
        ]
        .concat();
        s.write_all(&send).unwrap();
        // Drain the replies up to the Noop's.
        loop {
            let h = read_n(s, 24);
            read_n(s, u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize);
            if h[1] == NOOP {
                break;
            }
        }
        let st = stat(s, "");
        let want = [
            ("cmd_get", "3"),
            ("get_hits", "1"),
            ("get_misses", "2"),
            ("cmd_touch", "4"),
            ("touch_hits", "2"),
            ("touch_misses", "2"),
            ("cmd_set", "5"),
            ("cas_hits", "1"),
            ("cas_badval", "1"),
            ("cas_misses", "1"),
            ("incr_hits", "1"),
            ("incr_misses", "1"),
            ("decr_hits", "1"),
            ("decr_misses", "1"),
            ("delete_hits", "1"),
            ("delete_misses", "1"),
            ("cmd_flush", "1"),
            ("store_too_large", "0"),
            ("auth_cmds", "0"),
        ];
        for (k, v) in want {
            assert_eq!(stat_value(&st, k), v, "{who}: {k}");
        }
    }
}

#[test]
fn malformed_requests() {
    for (who, srv) in servers(&[]) {
        // Unknown opcodes: Unknown command, body skipped, connection kept.
        let s = &mut conn(&srv);
        talk(who, s, &rq(0x50, 1, 0, &[], &[], b"abcd"), &err(0x50, UNKNOWN, 1));
        talk(who, s, &rq(VERBOSITY, 2, 0, &[], &[], &[]), &err(VERBOSITY, UNKNOWN, 2));
        // memcached skips the body counted from the end of the key: extras+key bytes too many.
        s.write_all(&rq(0x50, 3, 0, &[], b"key", b"v")).unwrap();
        talk(who, s, b"JNK", &err(0x50, UNKNOWN, 3));
        // Without -S the SASL opcodes are unknown too.
        talk(who, s, &rk(SASL_LIST, 4, b""), &err(SASL_LIST, UNKNOWN, 4));
        talk(who, s, &rq(SASL_AUTH, 5, 0, &[], b"PLAIN", b"\0u\0p"), &err(SASL_AUTH, UNKNOWN, 5));
        talk(who, s, &rq(SASL_STEP, 6, 0, &[], b"PLAIN", b"\0u\0p"), &err(SASL_STEP, UNKNOWN, 6));
        // Gat/Touch/Stat ignore body bytes beyond extras+key: they are the next request.
        let mut gat = rq(GAT, 7, 0, &exp(0), b"g", &[]);
        gat[11] += 24;
        talk(
            who,
            s,
            &[gat, rk(NOOP, 8, b"")].concat(),
            &[err(GAT, NOT_FOUND, 7), ok(NOOP, 8, 0, &[], &[], &[])].concat(),
        );

        // Wrong magic: closed without a reply.
        let s = &mut conn(&srv);
        talk(who, s, &rk(NOOP, 1, b""), &ok(NOOP, 1, 0, &[], &[], &[]));
        let mut bad = rk(NOOP, 2, b"");
        bad[0] = 0x81;
        talk_then_close(who, s, &bad, b"");
        // keylen > bodylen, extras + key > bodylen: Unknown command, then close.
        let mut bad = rk(GET, 3, b"abc");
        bad[11] = 2;
        talk_then_close(who, &mut conn(&srv), &bad, &err(GET, UNKNOWN, 3));
        let mut bad = rq(SET, 4, 0, &set_extras(0, 0), b"k", &[]);
        bad[11] = 5;
        talk_then_close(who, &mut conn(&srv), &bad, &err(SET, UNKNOWN, 4));
        // Lengths an opcode does not accept: Invalid arguments, then close.
        let cases: Vec<(Vec<u8>, u8)> = vec![
            (rk(GET, 5, &[b'k'; 251]), GET),
            (rq(GET, 5, 0, &exp(0), b"k", &[]), GET),
            (rk(GET, 5, b""), GET),
            (rq(SET, 5, 0, &[], b"k", b"v"), SET),
            (rq(NOOP, 5, 0, &[], &[], b"x"), NOOP),
            (rq(DELETE, 5, 0, &exp(0), b"k", &[]), DELETE),
            (rq(INCR, 5, 0, &[0; 16], b"k", &[]), INCR),
            (rk(TOUCH, 5, b"k"), TOUCH),
            (rq(FLUSH, 5, 0, &[0; 8], &[], &[]), FLUSH),
        ];
        for (req, op) in cases {
            talk_then_close(who, &mut conn(&srv), &req, &err(op, EINVAL, 5));
        }
    }
}

#[test]
fn too_large_values_are_swallowed() {
    for (who, srv) in servers(&["-I", "2k", "-o", "slab_chunk_max=2048"]) {
        let s = &mut conn(&srv);
        // key "b", flags 0: 48 + 8 + 2 + v + 2 <= 2048, so 1988 bytes fit and 1989 do not.
        talk(who, s, &set(SET, 1, 0, b"b", &[b'x'; 1988], 0), &ok(SET, 1, 1, &[], &[], &[]));
        talk(who, s, &set(SET, 2, 0, b"b", &[b'x'; 1989], 0), &err(SET, TOO_LARGE, 2));
        // The refused set deleted the old item.
        talk(who, s, &rk(GET, 3, b"b"), &err(GET, NOT_FOUND, 3));
        // Non-zero flags cost 4 bytes; quiet variants still get the error; add keeps the item.
        talk(who, s, &set(SET, 4, 0, b"b", b"small", 0), &ok(SET, 4, 2, &[], &[], &[]));
        talk(who, s, &set(ADDQ, 5, 0, b"b", &[b'x'; 1985], 1), &err(ADDQ, TOO_LARGE, 5));
        talk(who, s, &rk(GET, 6, b"b"), &ok(GET, 6, 2, &[0; 4], &[], b"small"));
        // An append that would grow past the limit: Not stored.
        talk(who, s, &rq(APPEND, 7, 0, &[], b"b", &[b'x'; 1985]), &err(APPEND, NOT_STORED, 7));
        // The reply waits until the whole body has been read (and discarded).
        let big = set(SETQ, 8, 0, b"c", &[b'y'; 3000], 0);
        s.write_all(&big[..1000]).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let mut buf = [0u8; 64];
        assert!(s.read(&mut buf).is_err(), "{who}: no reply before the body is complete");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        talk(who, s, &big[1000..], &err(SETQ, TOO_LARGE, 8));
    }
}

#[test]
fn out_of_memory_without_evictions() {
    for (who, srv) in servers(&["-M", "-m", "2"]) {
        let s = &mut conn(&srv);
        let value = vec![b'x'; 100_000];
        let mut refused = None;
        for i in 0..100u32 {
            s.write_all(&set(SET, i, 0, format!("k{i}").as_bytes(), &value, 0)).unwrap();
            let h = read_n(s, 24);
            let body = read_n(s, u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize);
            if h[7] != 0 {
                refused = Some([h, body].concat());
                break;
            }
        }
        let got = refused.unwrap_or_else(|| panic!("{who}: memory never ran out"));
        let i = u32::from_be_bytes([got[12], got[13], got[14], got[15]]);
        assert_eq!(lossy(&got), lossy(&err(SET, NO_MEMORY, i)), "{who}");
    }
}

const PWDB: &str = "alice:secret\nbob:pw:ignored\n";

fn sasl_server(dir: &str) -> Server {
    std::fs::create_dir_all(dir).unwrap();
    let path = format!("{dir}/pwdb");
    std::fs::write(&path, PWDB).unwrap();
    Server::start_env(&["-S"], &[("MEMCACHED_SASL_PWDB", &path)])
}

fn tmp_dir(name: &str) -> String {
    format!("{}/rustcached-test-{}-{name}", std::env::temp_dir().display(), std::process::id())
}

fn auth(opaque: u32, response: &[u8]) -> Vec<u8> {
    rq(SASL_AUTH, opaque, 0, &[], b"PLAIN", response)
}

fn authenticated(opaque: u32) -> Vec<u8> {
    ok(SASL_AUTH, opaque, 0, &[], &[], b"Authenticated")
}

#[test]
fn sasl_plain_accepted_and_refused() {
    let dir = tmp_dir("sasl");
    let srv = sasl_server(&dir);
    let who = "rustcached -S";
    // Before authentication only SASL and Version are allowed: fence with SASL list mechs.
    let talk = |who: &str, s: &mut TcpStream, send: &[u8], expect: &[u8]| {
        talk_fenced(who, s, send, expect, SASL_LIST, b"PLAIN");
    };
    let s = &mut conn(&srv);
    talk(who, s, &rk(SASL_LIST, 1, b""), &ok(SASL_LIST, 1, 0, &[], &[], b"PLAIN"));
    // Version needs no authentication.
    s.write_all(&rk(VERSION, 2, b"")).unwrap();
    let h = read_n(s, 24);
    read_n(s, u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize);
    // Refused: Auth failure, connection kept, still not authenticated.
    for response in
        [&b"\0alice\0wrong"[..], b"\0nobody\0secret", b"alice\0secret", b"bob\0alice\0secret", b"\0bob\0pw:ignored"]
    {
        talk(who, s, &auth(3, response), &err(SASL_AUTH, AUTH_ERROR, 3));
    }
    talk(who, s, &rq(SASL_AUTH, 4, 0, &[], b"CRAM-MD5", b"x"), &err(SASL_AUTH, AUTH_ERROR, 4));
    talk(who, s, &rq(SASL_AUTH, 5, 0, &[], &[b'M'; 33], b"x"), &err(SASL_AUTH, EINVAL, 5));
    talk(who, s, &rq(SASL_STEP, 6, 0, &[], b"PLAIN", b"\0alice\0secret"), &err(SASL_STEP, AUTH_ERROR, 6));
    // Accepted (authzid empty or equal to the user; mechanism name case-insensitive).
    talk(who, s, &auth(7, b"\0alice\0secret"), &authenticated(7));
    talk(who, s, &set(SET, 8, 0, b"k", b"v", 0), &ok(SET, 8, 1, &[], &[], &[]));
    talk(who, s, &rq(SASL_AUTH, 9, 0, &[], b"plain", b"bob\0bob\0pw"), &authenticated(9));
    talk(who, s, &rk(GET, 10, b"k"), &ok(GET, 10, 1, &[0; 4], &[], b"v"));
    let st = stat(s, "");
    assert_eq!(stat_value(&st, "auth_cmds"), "9");
    assert_eq!(stat_value(&st, "auth_errors"), "7");
    assert_eq!(stat_value(&stat(s, "settings"), "auth_enabled_sasl"), "yes");
    // A failed exchange drops the authentication: the next command is refused and closes.
    talk(who, s, &auth(11, b"\0alice\0nope"), &err(SASL_AUTH, AUTH_ERROR, 11));
    talk_then_close(who, s, &rk(GET, 12, b"k"), &err(GET, AUTH_ERROR, 12));

    // PLAIN without an initial response: "continue", then the response comes as a step.
    let s = &mut conn(&srv);
    talk(who, s, &auth(1, b""), &packet(0x81, SASL_AUTH, AUTH_CONTINUE, 1, 0, &[], &[], &[]));
    talk(who, s, &rq(SASL_STEP, 2, 0, &[], b"PLAIN", b"\0alice\0x"), &err(SASL_STEP, AUTH_ERROR, 2));
    talk(
        who,
        s,
        &rq(SASL_STEP, 3, 0, &[], b"PLAIN", b"\0alice\0secret"),
        &ok(SASL_STEP, 3, 0, &[], &[], b"Authenticated"),
    );
    talk(who, s, &rk(GET, 4, b"k"), &ok(GET, 4, 1, &[0; 4], &[], b"v"));

    // Before authentication every other command answers Auth failure and closes, even
    // malformed or unknown ones (once their header, extras and key are in).
    for req in
        [rk(GET, 1, b"k"), rk(NOOP, 1, b""), rk(QUITQ, 1, b""), rk(0x50, 1, b""), rk(GET, 1, b""), rk(STAT, 1, b"")]
    {
        talk_then_close(who, &mut conn(&srv), &req, &err(req[1], AUTH_ERROR, 1));
    }
    // A text client: -S forces binary, so its first bytes are a bad magic: closed silently.
    talk_then_close(who, &mut conn(&srv), b"get aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", b"");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sasl_with_the_memcache_crate() {
    let dir = tmp_dir("sasl-crate");
    let srv = sasl_server(&dir);
    let url = format!("memcache://alice:secret@{}?timeout=5", srv.addr());
    let client = memcache::Client::connect(url.as_str()).unwrap();
    client.set("k", "v", 0).unwrap();
    assert_eq!(client.get::<String>("k").unwrap().as_deref(), Some("v"));
    let bad = memcache::Client::builder()
        .add_server(format!("memcache://alice:wrong@{}?timeout=5", srv.addr()).as_str())
        .unwrap()
        .with_connection_timeout(Duration::from_secs(2))
        .build();
    assert!(bad.is_err(), "a wrong password must not connect");
    // Without credentials the first command fails (Auth failure, connection closed).
    let anon = memcache::Client::connect(format!("memcache://{}?timeout=5", srv.addr()).as_str()).unwrap();
    assert!(anon.get::<String>("k").is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn memcache_crate_binary_client() {
    let srv = Server::start(&[]);
    let client = memcache::Client::connect(format!("memcache://{}?timeout=5", srv.addr()).as_str()).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    client.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let version = client.version().unwrap();
    assert!(version[0].1.starts_with("1.6.18"), "{version:?}");

    client.set("s", "bar", 0).unwrap();
    assert_eq!(client.get::<String>("s").unwrap().as_deref(), Some("bar"));
    client.set("n", 42u64, 0).unwrap();
    assert_eq!(client.get::<u64>("n").unwrap(), Some(42));
    client.set("b", &b"\x00\x01bin"[..], 0).unwrap();
    assert_eq!(client.get::<Vec<u8>>("b").unwrap().as_deref(), Some(&b"\x00\x01bin"[..]));
    assert_eq!(client.get::<String>("missing").unwrap(), None);

    // Multi-get: GetKQ per key + Noop.
    let m: std::collections::HashMap<String, String> = client.gets(&["s", "missing", "n"]).unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(m["s"], "bar");
    assert_eq!(m["n"], "42");

    assert!(client.add("s", "other", 0).is_err(), "add on an existing key");
    client.add("a", "new", 0).unwrap();
    assert!(client.replace("missing", "x", 0).is_err(), "replace on a missing key");
    client.replace("a", "newer", 0).unwrap();
    client.append("a", "!").unwrap();
    client.prepend("a", "<").unwrap();
    assert_eq!(client.get::<String>("a").unwrap().as_deref(), Some("<newer!"));
    assert!(client.append("missing", "x").is_err());

    // CAS from a get with the (value, flags, cas) shape.
    let (_, _, cas): (String, u32, Option<u64>) = client.get("a").unwrap().unwrap();
    let cas = cas.unwrap();
    assert!(!client.cas("a", "lost", 0, cas + 100).unwrap());
    assert!(client.cas("a", "won", 0, cas).unwrap());
    assert_eq!(client.get::<String>("a").unwrap().as_deref(), Some("won"));

    // increment on a missing key creates it with the initial value 0 (as memcached does).
    assert_eq!(client.increment("ctr", 5).unwrap(), 0);
    assert_eq!(client.increment("ctr", 5).unwrap(), 5);
    assert_eq!(client.decrement("ctr", 2).unwrap(), 3);
    assert_eq!(client.decrement("ctr", 10).unwrap(), 0);
    assert!(client.increment("s", 1).is_err(), "non-numeric value");

    assert!(client.touch("s", 100).unwrap());
    assert!(!client.touch("missing", 100).unwrap());
    assert!(client.delete("s").unwrap());
    assert!(!client.delete("s").unwrap());

    let stats = client.stats().unwrap();
    let (_, st) = &stats[0];
    assert_eq!(st.get("cmd_touch").map(String::as_str), Some("2"));
    assert!(st.contains_key("get_hits") && st.contains_key("curr_items"));

    client.flush_with_delay(100).unwrap();
    assert_eq!(client.get::<String>("a").unwrap().as_deref(), Some("won"));
    client.flush().unwrap();
    assert_eq!(client.get::<String>("a").unwrap(), None);
}

#[test]
fn memccapable_binary_passes() {
    common::needs(
        std::process::Command::new("memccapable").arg("--help").output().is_ok(),
        "memccapable (apt-get install libmemcached-tools)",
    );
    let srv = Server::start(&[]);
    let out = std::process::Command::new("memccapable")
        .args(["-h", "127.0.0.1", "-p", &srv.port.to_string(), "-b"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("All tests passed"), "{text}");
}

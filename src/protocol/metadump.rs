//! `lru_crawler metadump` (and `crawl`) arguments, and the metadump line format of memcached
//! 1.6.18: `key=<uri-encoded> exp=<unix time|-1> la=<unix time> cas=<n> fetch=<yes|no>
//! cls=<id> size=<bytes>\n` per item, then `END\r\n`.

use super::num::strtoul32;

/// Slab class ids are `1..=MAX_CLASS_ID` (memcached: below MAX_NUMBER_OF_SLAB_CLASSES, 64).
pub const MAX_CLASS_ID: u32 = 63;

/// Every class: the mask for `all` (and metadump's `hash`, which only changes walk order).
pub const ALL_CLASSES: u64 = !1;

/// Parse a class list: `all`, or comma-separated ids (empty pieces skipped, as `strtok` does).
/// Bit `i` of the result stands for class `i`. `None` means `BADCLASS invalid class id`.
pub fn parse_classes(arg: &[u8], allow_hash: bool) -> Option<u64> {
    if arg == b"all" || (allow_hash && arg == b"hash") {
        return Some(ALL_CLASSES);
    }
    let mut mask = 0u64;
    for piece in arg.split(|&b| b == b',').filter(|p| !p.is_empty()) {
        match strtoul32(piece) {
            Some(id) if (1..=MAX_CLASS_ID).contains(&id) => mask |= 1 << id,
            _ => return None,
        }
    }
    Some(mask)
}

/// One item's metadata, times already absolute (unix seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DumpLine {
    /// Expiry as a unix time, or -1 for never.
    pub exp: i64,
    /// Last access as a unix time.
    pub la: i64,
    pub cas: u64,
    pub fetched: bool,
    pub cls: u8,
    /// Bytes the item takes in the server's accounting.
    pub size: u64,
}

/// Append one metadump line for `key`.
pub fn encode_line(out: &mut Vec<u8>, key: &[u8], line: &DumpLine) {
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(b"key=");
    uri_encode(key, out);
    out.extend_from_slice(b" exp=");
    out.extend_from_slice(num.format(line.exp).as_bytes());
    out.extend_from_slice(b" la=");
    out.extend_from_slice(num.format(line.la).as_bytes());
    out.extend_from_slice(b" cas=");
    out.extend_from_slice(num.format(line.cas).as_bytes());
    out.extend_from_slice(if line.fetched { b" fetch=yes" } else { b" fetch=no" });
    out.extend_from_slice(b" cls=");
    out.extend_from_slice(num.format(line.cls).as_bytes());
    out.extend_from_slice(b" size=");
    out.extend_from_slice(num.format(line.size).as_bytes());
    out.push(b'\n');
}

/// memcached's `uriencode`: letters, digits and `-._~` as they are, every other byte `%XX`.
pub fn uri_encode(src: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in src {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

/// Inverse of [`uri_encode`] (what memcached-tool does to metadump keys); `%` not followed
/// by two hex digits is kept as it is.
pub fn uri_decode(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len());
    let mut i = 0;
    while i < src.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (src[i], src.get(i + 1).and_then(|&b| hex(b)), src.get(i + 2).and_then(|&b| hex(b))) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_lists_follow_memcached() {
        assert_eq!(parse_classes(b"all", false), Some(ALL_CLASSES));
        assert_eq!(parse_classes(b"hash", true), Some(ALL_CLASSES));
        assert_eq!(parse_classes(b"hash", false), None);
        assert_eq!(parse_classes(b"1", false), Some(1 << 1));
        assert_eq!(parse_classes(b"1,,2", false), Some(0b110));
        assert_eq!(parse_classes(b"63", false), Some(1 << 63));
        for bad in [&b"0"[..], b"64", b"99", b"a", b"1,x", b"-1"] {
            assert_eq!(parse_classes(bad, true), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn lines_match_memcached() {
        let mut out = Vec::new();
        let line = DumpLine { exp: -1, la: 1795686644, cas: 1, fetched: false, cls: 1, size: 65 };
        encode_line(&mut out, b"a%20b", &line);
        encode_line(&mut out, b"plain", &DumpLine { exp: 1795686744, fetched: true, cas: 2, size: 70, ..line });
        assert_eq!(
            out,
            b"key=a%2520b exp=-1 la=1795686644 cas=1 fetch=no cls=1 size=65\n\
              key=plain exp=1795686744 la=1795686644 cas=2 fetch=yes cls=1 size=70\n"
        );
        out.clear();
        uri_encode(b"a b/\xff~-._Z9", &mut out);
        assert_eq!(out, b"a%20b%2F%FF~-._Z9");
        assert_eq!(uri_decode(&out), b"a b/\xff~-._Z9");
        assert_eq!(uri_decode(b"%4a%zz%2"), b"J%zz%2");
    }
}

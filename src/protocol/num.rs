//! memcached's number parsing (`safe_strtoul`, `safe_strtol`, `safe_strtoull`) over token bytes.
//!
//! Owns: exactly which spellings of a number memcached accepts. The C functions run `strtoul`
//! and friends on a NUL-terminated token: leading whitespace is skipped, a sign is allowed,
//! digits follow, and the number must end at the end of the token or at a whitespace byte.
//! Values that only fit unsigned because a minus sign wrapped them are rejected.

#[inline]
fn c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Parse like `strtoull`/`strtoll`: returns (negative, magnitude, overflowed) or None when no
/// digits were found or the number is followed by something other than whitespace.
fn scan(tok: &[u8]) -> Option<(bool, u64, bool)> {
    let mut i = 0;
    while i < tok.len() && c_space(tok[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < tok.len() && (tok[i] == b'+' || tok[i] == b'-') {
        neg = tok[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut n: u64 = 0;
    let mut overflow = false;
    while i < tok.len() && tok[i].is_ascii_digit() {
        match n.checked_mul(10).and_then(|m| m.checked_add((tok[i] - b'0') as u64)) {
            Some(m) => n = m,
            None => overflow = true,
        }
        i += 1;
    }
    if i == start {
        return None;
    }
    if i < tok.len() && !c_space(tok[i]) {
        return None;
    }
    Some((neg, n, overflow))
}

/// `safe_strtoull`: an unsigned 64-bit number; "-N" is refused when it wraps to >= 2^63.
pub fn strtoull(tok: &[u8]) -> Option<u64> {
    let (neg, n, overflow) = scan(tok)?;
    if overflow {
        return None;
    }
    let v = if neg { n.wrapping_neg() } else { n };
    if (v as i64) < 0 && neg {
        return None;
    }
    Some(v)
}

/// `safe_strtoul` into a `uint32_t`: parsed as unsigned long, then truncated to 32 bits.
pub fn strtoul32(tok: &[u8]) -> Option<u32> {
    strtoull(tok).map(|v| v as u32)
}

/// `safe_strtol` into an `int32_t` as memcached 1.6.18 does it: parsed as a 64-bit long
/// (overflow refused), then truncated to 32 bits (so 4294967297 means 1).
pub fn strtol32(tok: &[u8]) -> Option<i32> {
    strtoll(tok).map(|v| v as i32)
}

/// `safe_strtoll`: a signed 64-bit number.
pub fn strtoll(tok: &[u8]) -> Option<i64> {
    let (neg, n, overflow) = scan(tok)?;
    if overflow || (!neg && n > i64::MAX as u64) || (neg && n > 1u64 << 63) {
        return None;
    }
    Some(if neg { (n as i64).wrapping_neg() } else { n as i64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned() {
        assert_eq!(strtoull(b"0"), Some(0));
        assert_eq!(strtoull(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(strtoull(b"18446744073709551616"), None);
        assert_eq!(strtoull(b"-1"), None);
        assert_eq!(strtoull(b"+7"), Some(7));
        assert_eq!(strtoull(b"7\r"), Some(7));
        assert_eq!(strtoull(b"7x"), None);
        assert_eq!(strtoull(b""), None);
        assert_eq!(strtoull(b"abc"), None);
        assert_eq!(strtoul32(b"4294967296"), Some(0));
        assert_eq!(strtoul32(b"4294967295"), Some(u32::MAX));
    }

    #[test]
    fn signed() {
        assert_eq!(strtol32(b"-1"), Some(-1));
        assert_eq!(strtol32(b"2147483647"), Some(i32::MAX));
        assert_eq!(strtol32(b"4294967297"), Some(1));
        assert_eq!(strtol32(b"99999999999999999999"), None);
        assert_eq!(strtol32(b"\t12"), Some(12));
        assert_eq!(strtoll(b"-9223372036854775808"), Some(i64::MIN));
    }
}

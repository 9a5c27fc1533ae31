//! Finding a byte in a span that is usually short: a key, a command line.
//!
//! Owns: `find`. `memchr` spends about 40 instructions on dispatch and setup per call, more
//! than scanning a 10-30 byte key costs, and the text path searches three times per `get`
//! line (the newline, a NUL, the space after each key). The first `SHORT` bytes are looked at
//! a word at a time here; only a longer span goes to `memchr`.

/// Bytes searched a word at a time before handing the rest to `memchr`.
const SHORT: usize = 32;

const ONES: u64 = 0x0101_0101_0101_0101;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// Position of the first `needle` in `hay`.
#[inline]
pub fn find(needle: u8, hay: &[u8]) -> Option<usize> {
    let want = ONES.wrapping_mul(needle as u64);
    if hay.len() < 8 {
        return hay.iter().position(|&b| b == needle);
    }
    let mut i = 0;
    while let Some(w) = hay[i..].first_chunk::<8>() {
        if let Some(at) = in_word(w, want) {
            return Some(i + at);
        }
        i += 8;
        if i >= SHORT {
            return memchr::memchr(needle, &hay[i..]).map(|p| i + p);
        }
    }
    // under 8 bytes left: the last 8 bytes, whose first ones were searched already
    let last = hay.len() - 8;
    in_word(hay[last..].first_chunk::<8>()?, want).map(|at| last + at)
}

/// The first byte of `w` equal to the byte `want` repeats.
#[inline(always)]
fn in_word(w: &[u8; 8], want: u64) -> Option<usize> {
    let x = u64::from_le_bytes(*w) ^ want;
    // bit 7 of each byte of `x` that is zero (exact: no borrow crosses bytes)
    let zero = !(((x & LOW7) + LOW7) | x | LOW7);
    (zero != 0).then(|| zero.trailing_zeros() as usize / 8)
}

#[cfg(test)]
mod tests {
    use super::find;

    #[test]
    fn agrees_with_memchr_at_every_length_and_position() {
        for len in 0..100 {
            for at in 0..=len {
                let mut hay: Vec<u8> = (0..len).map(|i| (b'a' + (i % 26) as u8) ^ 0x80).collect();
                if at < len {
                    hay[at] = b' ';
                    if at + 3 < len {
                        hay[at + 3] = b' ';
                    }
                }
                assert_eq!(find(b' ', &hay), memchr::memchr(b' ', &hay), "len {len} at {at}");
                assert_eq!(find(0xa0, &hay), memchr::memchr(0xa0, &hay), "len {len} at {at}");
            }
        }
    }
}

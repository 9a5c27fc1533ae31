//! Two CPU instructions safe Rust does not reach: a software prefetch, and comparing 16 bytes
//! at once.
//!
//! Owns: the `unsafe` blocks these need, nothing else. Both serve the index (`index`): a batch
//! of lookups that first prefetches the bucket and the item each will read has those loads in
//! flight together instead of one after another, and a bucket's 12 tags are matched in one
//! compare.

/// Start loading the cache line holding `p` into all cache levels. Any address is allowed:
/// a prefetch is a hint that never faults and is invisible to the program (an unmapped or
/// freed address is simply not loaded).
#[inline(always)]
pub fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` needs only SSE, which every x86_64 CPU has; it does not access
    // memory in the sense of the language (no fault, no data race, nothing read back).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Bit i set where `bytes[i] == b`.
#[inline(always)]
pub fn eq_mask(bytes: &[u8; 16], b: u8) -> u32 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of every x86_64 CPU; the unaligned load reads exactly the 16 bytes
    // `bytes` borrows.
    unsafe {
        use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8};
        let v = _mm_loadu_si128(bytes.as_ptr() as *const __m128i);
        _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8))) as u32
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        bytes.iter().enumerate().fold(0, |m, (i, &x)| m | ((x == b) as u32) << i)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn eq_mask_marks_equal_bytes() {
        let bytes: [u8; 16] = [7, 0, 7, 0x87, 255, 7, 1, 2, 3, 7, 0, 0, 0, 0, 0, 7];
        assert_eq!(super::eq_mask(&bytes, 7), 1 | 1 << 2 | 1 << 5 | 1 << 9 | 1 << 15);
        assert_eq!(super::eq_mask(&bytes, 0x87), 1 << 3);
        assert_eq!(super::eq_mask(&bytes, 9), 0);
    }
}

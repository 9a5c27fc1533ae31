//! Where slab pages come from: large anonymous mappings, 2 MB-aligned and marked
//! `MADV_HUGEPAGE`, carved into pages in order. Memory is reserved, not committed: the kernel
//! backs it (zero-filled) only when touched, so RSS still grows with the pages in use and
//! `-m` stays the bound on pages handed out. With transparent huge pages in `madvise` or
//! `always` mode the cache then sits on 2 MB pages, so a random lookup over a large cache
//! does not also miss the TLB on 4 KB pages (memcached's 1 MB mallocs never get huge pages).
//! If huge pages are unavailable the advice is ignored and everything works on 4 KB pages.
//!
//! This is the only place the storage layer calls `mmap`; pages are never returned to the
//! OS while the store lives (like memcached's, they live as long as the process); a dropped
//! store's arena unmaps them (the fuzz and simulation harnesses build a store per run).

use std::ptr::NonNull;

use parking_lot::Mutex;

/// Huge page size (x86-64, aarch64 with 4 KB base pages).
const HUGE: usize = 2 << 20;
/// Bytes reserved per mapping (less under Miri, which tracks every byte it is given).
const RESERVE: usize = if cfg!(miri) { 4 << 20 } else { 64 << 20 };

struct Cursor {
    /// The next page of the current reservation (pointers, not addresses: pages keep the
    /// reservation's provenance, so Miri checks every access).
    next: *mut u8,
    left: usize,
    /// Every reservation made, to give back on drop.
    maps: Vec<Mapping>,
}

// SAFETY: the cursor only hands out disjoint pages of memory it owns; it is used under the
// arena's mutex.
unsafe impl Send for Cursor {}

/// One reservation: what `reserve` got from the OS (or the allocator under Miri).
struct Mapping {
    raw: *mut u8,
    len: usize,
}

/// A source of zeroed, page-aligned slab pages of one size.
pub struct Arena {
    page_size: usize,
    cursor: Mutex<Cursor>,
}

impl Arena {
    pub fn new(page_size: usize) -> Arena {
        Arena { page_size, cursor: Mutex::new(Cursor { next: std::ptr::null_mut(), left: 0, maps: Vec::new() }) }
    }

    /// A fresh zeroed page of `page_size` bytes, 4 KB-aligned; `None` if the OS refuses memory.
    pub fn page(&self) -> Option<NonNull<u8>> {
        let mut c = self.cursor.lock();
        if c.left < self.page_size {
            let bytes = RESERVE.max(self.page_size).next_multiple_of(HUGE);
            let (base, map) = reserve(bytes)?;
            c.maps.push(map);
            c.next = base;
            c.left = bytes;
        }
        let p = c.next;
        // `left` bytes remain after `next` inside the reservation, at least one page of them.
        c.next = p.wrapping_add(self.page_size);
        c.left -= self.page_size;
        NonNull::new(p)
    }
}

/// Under Miri (which runs the pin and reservation tests) there is no `MAP_NORESERVE` or
/// `madvise`: the memory comes from the allocator, zeroed and 2 MB-aligned, and is never freed
/// (as the mappings are not).
#[cfg(miri)]
fn reserve(bytes: usize) -> Option<(*mut u8, Mapping)> {
    let layout = std::alloc::Layout::from_size_align(bytes, HUGE).ok()?;
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { std::alloc::alloc_zeroed(layout) };
    (!p.is_null()).then_some((p, Mapping { raw: p, len: bytes }))
}

#[cfg(miri)]
fn release(m: &Mapping) {
    // SAFETY: allocated by `reserve` with this layout, freed once (on the arena's drop).
    unsafe { std::alloc::dealloc(m.raw, std::alloc::Layout::from_size_align_unchecked(m.len, HUGE)) }
}

/// Map `bytes` (a multiple of `HUGE`) of private anonymous memory at a 2 MB-aligned address
/// and ask for huge pages. Returns the aligned start and the mapping.
#[cfg(not(miri))]
fn reserve(bytes: usize) -> Option<(*mut u8, Mapping)> {
    let len = bytes + HUGE;
    // SAFETY: an anonymous private mapping at an address the kernel picks touches no existing
    // memory; the arguments are valid for mmap.
    let raw = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        return None;
    }
    let raw = raw as *mut u8;
    let start = raw.wrapping_add((raw as usize).next_multiple_of(HUGE) - raw as usize);
    // SAFETY: [start, start + bytes) lies inside the mapping just made (len = bytes + HUGE and
    // start - raw < HUGE). The advice only changes how the kernel backs it; failure is harmless.
    unsafe {
        libc::madvise(start as *mut libc::c_void, bytes, libc::MADV_HUGEPAGE);
    }
    Some((start, Mapping { raw, len }))
}

#[cfg(not(miri))]
fn release(m: &Mapping) {
    // SAFETY: exactly a mapping `reserve` made, unmapped once (on the arena's drop, when no
    // item pointer into it is left: pins and reservations hold the store alive).
    unsafe {
        libc::munmap(m.raw.cast(), m.len);
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        for m in &self.cursor.get_mut().maps {
            release(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_distinct_aligned_zeroed_and_writable() {
        let a = Arena::new(1 << 20);
        let mut seen = Vec::new();
        // 70 pages span two 64 MB reservations
        for i in 0..70u8 {
            let p = a.page().expect("memory");
            assert_eq!(p.as_ptr() as usize % 4096, 0);
            // SAFETY: the page is 1 MB long and ours alone.
            let page = unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), 1 << 20) };
            assert!(page.iter().step_by(4096).all(|&b| b == 0));
            page[0] = i;
            page[(1 << 20) - 1] = i;
            seen.push(p.as_ptr() as usize);
        }
        seen.sort_unstable();
        assert!(seen.windows(2).all(|w| w[1] - w[0] >= 1 << 20), "pages overlap");
    }

    #[test]
    fn pages_larger_than_a_reservation() {
        let a = Arena::new(100 << 20);
        let p = a.page().unwrap();
        let q = a.page().unwrap();
        assert!((q.as_ptr() as usize).abs_diff(p.as_ptr() as usize) >= 100 << 20);
    }
}

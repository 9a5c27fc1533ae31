//! A connection's unsent replies: copied bytes, with large values sent straight from the items.
//!
//! Owns: the reply stream of one connection as a byte buffer (headers, small values, every other
//! reply) interleaved with pinned item values (`storage::Pinned`) at recorded offsets, the
//! decision to copy or to pin a value, vectored writes of that stream, and the high-water
//! marks that stop a connection from producing more while its client does not read.
//! Knows nothing of protocols: encoders append bytes through `Deref<Target = Vec<u8>>` and
//! values through `value`.
//!
//! Memory: a value of `PIN_MIN` bytes or more is never copied; it stays in slab memory (counted
//! in `-m`) until written. Smaller values are copied until the buffer holds `COPY_SOFT` bytes,
//! then values of `PIN_SMALL_MIN` bytes or more are pinned too. A connection whose unsent
//! copied bytes exceed `COPY_HIGH_WATER`, or that holds `PIN_HIGH_WATER` pinned values, is not
//! served until its socket drains. So the copied bytes a connection holds are bounded by
//! `COPY_HIGH_WATER` plus one request's headers and small values, whatever the value sizes.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use crate::storage::{Entry, Pinned, Store};

/// Values at least this long are sent from the item instead of being copied. A copy of 4 KB
/// costs about as much as a pin and an unpin (two uncontended lock round trips).
pub const PIN_MIN: usize = 4096;
/// Once this many copied bytes are pending, values of `PIN_SMALL_MIN` bytes or more are pinned.
pub const COPY_SOFT: usize = 16 * 1024;
pub const PIN_SMALL_MIN: usize = 512;
/// A connection with more unsent copied bytes than this is not served until it drains.
pub const COPY_HIGH_WATER: usize = 64 * 1024;
/// ... nor one holding this many unsent pinned values.
pub const PIN_HIGH_WATER: usize = 256;
/// Slices offered to one `writev` (Linux's IOV_MAX is 1024).
const IOV_BATCH: usize = 64;

/// Unsent replies.
#[derive(Debug, Default)]
pub struct Out {
    buf: Vec<u8>,
    /// Pinned values in stream order, each sent right after `buf[..offset]`.
    pins: VecDeque<(usize, Pinned)>,
    /// Bytes of `buf` already written.
    sent: usize,
    /// Bytes of the front pinned value already written.
    pin_sent: usize,
    /// Copy every value (UDP, which needs the reply as one buffer).
    copy_only: bool,
}

impl Deref for Out {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.buf
    }
}

impl DerefMut for Out {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }
}

impl Out {
    pub fn with_capacity(n: usize) -> Out {
        Out { buf: Vec::with_capacity(n), ..Out::default() }
    }

    /// An `Out` that copies every value into its buffer.
    pub fn copying() -> Out {
        Out { copy_only: true, ..Out::default() }
    }

    /// Append an item's value: pinned when large (see the module docs), else copied.
    pub fn value(&mut self, e: &Entry<'_>, store: &Arc<Store>) {
        let v = e.value();
        let pin = !self.copy_only
            && (v.len() >= PIN_MIN || (v.len() >= PIN_SMALL_MIN && self.buf.len() - self.sent >= COPY_SOFT));
        if pin {
            self.pins.push_back((self.buf.len(), e.pin(store)));
        } else {
            self.buf.extend_from_slice(v);
        }
    }

    /// Cut the stream back to `n` bytes of buffer (dropping values pinned after it).
    pub fn truncate(&mut self, n: usize) {
        while self.pins.back().is_some_and(|p| p.0 > n) {
            self.pins.pop_back();
        }
        self.buf.truncate(n);
    }

    /// Bytes of the values pinned right after `buf[..offset]` (0 if none): what a reader of
    /// the buffer alone (the `-vv` trace) must account for.
    pub fn pinned_at(&self, offset: usize) -> usize {
        self.pins.iter().rev().take_while(|p| p.0 >= offset).filter(|p| p.0 == offset).map(|p| p.1.value().len()).sum()
    }

    /// Nothing left to write.
    pub fn is_done(&self) -> bool {
        self.sent == self.buf.len() && self.pins.is_empty()
    }

    /// Unsent copied bytes.
    pub fn copied(&self) -> usize {
        self.buf.len() - self.sent
    }

    /// Unsent bytes in all (copied and pinned).
    pub fn unsent(&self) -> usize {
        self.copied() + self.pins.iter().map(|p| p.1.value().len()).sum::<usize>() - self.pin_sent
    }

    /// Too much is pending: produce nothing more until the socket takes some.
    pub fn over_high_water(&self) -> bool {
        self.copied() > COPY_HIGH_WATER || self.pins.len() >= PIN_HIGH_WATER
    }

    /// Forget everything (the connection is going away, or a datagram was sent).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.pins.clear();
        self.sent = 0;
        self.pin_sent = 0;
    }

    /// Capacity of the byte buffer (scratch buffers are dropped when they grew large).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Move what is unsent into a new `Out` sized to it, leaving this one empty (a lent scratch
    /// buffer keeps its capacity for the next connection).
    pub fn take_unsent(&mut self) -> Out {
        let base = self.sent;
        let mut rest = Out { buf: self.buf[base..].to_vec(), pin_sent: self.pin_sent, ..Out::default() };
        rest.pins = self.pins.drain(..).map(|(off, p)| (off - base, p)).collect();
        self.clear();
        rest
    }

    /// Write as much as `w` takes without blocking. Returns the bytes written; `Err` for a
    /// failed socket (not for `WouldBlock`).
    pub fn write_to(&mut self, w: &mut impl Write) -> io::Result<usize> {
        let mut total = 0;
        while !self.is_done() {
            // Nothing pinned (the common case): one plain write, no slice list to build.
            let n = if self.pins.is_empty() {
                match w.write(&self.buf[self.sent..]) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            } else {
                let mut iov: [IoSlice<'_>; IOV_BATCH] = std::array::from_fn(|_| IoSlice::new(&[]));
                let mut k = 0;
                let mut pos = self.sent;
                let mut pin_skip = self.pin_sent;
                let mut all_pins = true;
                for (off, p) in &self.pins {
                    if k + 2 > IOV_BATCH {
                        all_pins = false;
                        break;
                    }
                    if *off > pos {
                        iov[k] = IoSlice::new(&self.buf[pos..*off]);
                        k += 1;
                    }
                    iov[k] = IoSlice::new(&p.value()[pin_skip..]);
                    k += 1;
                    pin_skip = 0;
                    pos = *off;
                }
                if all_pins && k < IOV_BATCH && pos < self.buf.len() {
                    iov[k] = IoSlice::new(&self.buf[pos..]);
                    k += 1;
                }
                match w.write_vectored(&iov[..k]) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            if n == 0 {
                break;
            }
            self.advance(n);
            total += n;
        }
        if self.is_done() {
            self.buf.clear();
            self.sent = 0;
        }
        Ok(total)
    }

    /// Account for `n` bytes written, releasing the pinned values sent in full.
    fn advance(&mut self, mut n: usize) {
        loop {
            let next = self.pins.front().map_or(self.buf.len(), |p| p.0);
            let avail = next - self.sent;
            if n < avail || self.pins.is_empty() {
                self.sent += n;
                return;
            }
            n -= avail;
            self.sent = next;
            let Some((_, p)) = self.pins.front() else { return };
            let rem = p.value().len() - self.pin_sent;
            if n < rem {
                self.pin_sent += n;
                return;
            }
            n -= rem;
            self.pin_sent = 0;
            self.pins.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Clock, GetOpts, StoreConfig, StoreReq};

    /// A writer that takes at most `chunk` bytes per call.
    struct Trickle {
        got: Vec<u8>,
        chunk: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            let n = b.len().min(self.chunk);
            if n == 0 && !b.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.got.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let mut left = self.chunk;
            let mut n = 0;
            for b in bufs {
                let k = b.len().min(left);
                self.got.extend_from_slice(&b[..k]);
                n += k;
                left -= k;
                if left == 0 {
                    break;
                }
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn store() -> Arc<Store> {
        // Under Miri, 4 MB (as the pin tests run there: `MIRIFLAGS=-Zmiri-disable-isolation
        // cargo +nightly miri test --lib out::`; the store's clock reads the real time).
        let limit_bytes = if cfg!(miri) { 4 << 20 } else { 64 << 20 };
        let s = Arc::new(Store::new(&StoreConfig { limit_bytes, ..StoreConfig::default() }, Arc::new(Clock::new())));
        for (k, n) in [(&b"big"[..], 10_000usize), (b"huge", 100_000), (b"small", 10)] {
            let v: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            s.store(&StoreReq::new(crate::storage::Mode::Set, k, &v, 0, 0));
        }
        s
    }

    #[test]
    fn interleaved_pins_come_out_in_order_through_any_write_size() {
        let s = store();
        let chunks: &[usize] = if cfg!(miri) { &[7, 4096, 1 << 20] } else { &[1, 7, 100, 4096, 1 << 20] };
        for &chunk in chunks {
            let mut out = Out::default();
            let mut want = Vec::new();
            for key in [&b"big"[..], b"small", b"huge", b"big"] {
                out.extend_from_slice(b"VALUE ");
                want.extend_from_slice(b"VALUE ");
                s.get(key, GetOpts::GET, |e| {
                    out.value(e, &s);
                    want.extend_from_slice(e.value());
                })
                .unwrap();
                out.extend_from_slice(b"\r\n");
                want.extend_from_slice(b"\r\n");
            }
            assert_eq!(out.pins.len(), 3);
            let mut w = Trickle { got: Vec::new(), chunk };
            while !out.is_done() {
                // A partial write leaves the rest to a later call, as a full socket does.
                if chunk < 4096 {
                    let mut rest = out.take_unsent();
                    rest.write_to(&mut w).unwrap();
                    out = rest;
                } else {
                    out.write_to(&mut w).unwrap();
                }
            }
            assert_eq!(w.got, want, "chunk {chunk}");
        }
    }

    #[test]
    fn pinned_value_survives_overwrite_and_delete_until_sent() {
        let s = store();
        let mut out = Out::default();
        let before = s.get(b"huge", GetOpts::GET, |e| {
            out.value(e, &s);
            e.value().to_vec()
        });
        let before = before.unwrap();
        s.store(&StoreReq::new(crate::storage::Mode::Set, b"huge", &vec![b'x'; 100_000], 0, 0));
        s.delete(b"huge", 0);
        // Fill memory so the old chunk would be reused if it had been freed.
        for i in 0..if cfg!(miri) { 40u32 } else { 2000 } {
            s.store(&StoreReq::new(crate::storage::Mode::Set, format!("k{i}").as_bytes(), &vec![b'y'; 100_000], 0, 0));
        }
        let mut w = Trickle { got: Vec::new(), chunk: 1 << 20 };
        out.write_to(&mut w).unwrap();
        assert_eq!(w.got, before);
        // Written in full: the pin is gone and this test holds the only reference to the store.
        assert!(out.is_done());
        assert_eq!((s.pinned(), Arc::strong_count(&s)), (0, 1));
    }

    #[test]
    fn truncate_drops_pins_after_the_cut() {
        let s = store();
        let mut out = Out::default();
        out.extend_from_slice(b"a");
        let cut = out.len();
        out.extend_from_slice(b"VALUE");
        s.get(b"huge", GetOpts::GET, |e| out.value(e, &s)).unwrap();
        out.truncate(cut);
        assert!(out.pins.is_empty());
        assert_eq!(&out[..], b"a");
    }
}

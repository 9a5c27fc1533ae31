//! Lookahead for retrievals: while one key is looked up, the index buckets and items of the
//! next ones are already being loaded from memory.
//!
//! Owns: a small ring of the keys that follow the one being served, in the input of one
//! `Session::process` call (the rest of a `get` line's keys, then the keys of the `get`/`gets`
//! lines after it), each hashed once; the prefetch schedule (`BUCKET_AHEAD` keys ahead the
//! index bucket, `ITEM_AHEAD` keys ahead the item); and handing each key its hash when its
//! turn comes. Knows nothing of how a line is executed: the parser still splits every line,
//! and a key is matched against the ring by its position in the input, so a key the scan saw
//! differently (or not at all) is simply hashed again, never served wrongly.
//!
//! Why: with 1M keys nearly every lookup waits for memory, for its bucket and then its item:
//! `Index::find` alone was 40 % (16-deep gets) and 62 % (100-key multi-gets) of the server's
//! CPU samples under mc-crusher. Issued a few keys ahead, the loads overlap: server CPU per
//! key fell from 1.26-1.28 to 0.89-0.92 us (gets) and from 0.66-0.67 to 0.34 us (multi-gets)
//! on a loaded machine (benches/profile.sh), for ~290 more instructions per key (hashing the
//! scan, the ring, and a stripe `try_lock` per key to read the bucket). 16/8 and 4/2 keys
//! ahead were not measurably different from 8/4.

use crate::protocol::find::find;
use crate::storage::{Hashed, Store};

/// Keys scanned, hashed and bucket-prefetched ahead of the one being served.
const BUCKET_AHEAD: usize = 8;
/// Keys ahead whose item is prefetched (their bucket has had `BUCKET_AHEAD - ITEM_AHEAD` keys'
/// time to arrive).
const ITEM_AHEAD: usize = 4;
/// Ring size: room for the front key and `BUCKET_AHEAD` more, a power of two.
const RING: usize = (BUCKET_AHEAD + 1).next_power_of_two();

/// The lookahead over one input buffer (see the module docs).
pub struct Ahead<'i> {
    input: &'i [u8],
    /// The queued keys with their hashes, and their offsets in the input, at ring positions
    /// `head..tail` (counting up; slot `position % RING`).
    keys: [Hashed<'i>; RING],
    at: [usize; RING],
    /// `head`: the next key expected; `item`: the next key whose item is to be prefetched.
    head: usize,
    tail: usize,
    item: usize,
    /// Where the scan goes on: inside a key list ending at `line_end` (`in_list`), or at the
    /// start of a line.
    scan: usize,
    line_end: usize,
    in_list: bool,
    /// Nothing more to scan in this input.
    done: bool,
}

impl<'i> Ahead<'i> {
    /// A lookahead over `input`; it scans nothing until the first key is asked for.
    pub fn new(input: &'i [u8]) -> Ahead<'i> {
        Ahead {
            input,
            keys: [Hashed::default(); RING],
            at: [0; RING],
            head: 0,
            tail: 0,
            item: 0,
            scan: 0,
            line_end: 0,
            in_list: false,
            done: true,
        }
    }

    /// The next key of the key list `list` from `*pos` on (split on spaces as
    /// `protocol::text::keys` splits a `get` line), with its hash, and the following keys'
    /// buckets and items on their way; `*pos` moves past it. `list` is a slice of the input
    /// (else its keys are just split and hashed).
    pub fn next(&mut self, store: &Store, list: &'i [u8], pos: &mut usize) -> Option<Hashed<'i>> {
        let start = *pos + list.get(*pos..)?.iter().position(|&b| b != b' ')?;
        let at = (list.as_ptr() as usize).wrapping_sub(self.input.as_ptr() as usize).wrapping_add(start);
        if at < self.input.len() {
            self.sync(store, at);
            // The scanned key, if it is the one the list has here: the list may end sooner
            // than the scan's line (a NUL cuts a command line).
            let k = self.keys[self.head % RING];
            let end = start + k.key.len();
            if self.head < self.tail
                && self.at[self.head % RING] == at
                && (end == list.len() || list.get(end) == Some(&b' '))
            {
                self.head += 1;
                *pos = end;
                return Some(k);
            }
        }
        let len = find(b' ', &list[start..]).unwrap_or(list.len() - start);
        *pos = start + len;
        Some(store.hashed(&list[start..start + len]))
    }

    /// Make the key at offset `at` the front of the ring (dropping keys scanned before it, or
    /// scanning anew from it), then queue keys up to `BUCKET_AHEAD` past the front, prefetching
    /// their buckets, and prefetch the items of those up to `ITEM_AHEAD` past it. The front key
    /// is looked up at once: a prefetch would not be ahead of anything.
    fn sync(&mut self, store: &Store, at: usize) {
        while self.head < self.tail && self.at[self.head % RING] < at {
            self.head += 1;
        }
        if self.head == self.tail || self.at[self.head % RING] != at {
            // Not scanned: (re)start the scan at this key, inside its key list.
            self.head = self.tail;
            self.scan = at;
            self.line_end = self.line_end_from(at);
            self.in_list = true;
            self.done = false;
        }
        while self.tail - self.head <= BUCKET_AHEAD && !self.done {
            let Some((at, len)) = self.next_key() else {
                self.done = true;
                break;
            };
            let k = store.hashed(&self.input[at..at + len]);
            if self.tail > self.head {
                store.prefetch_bucket(&k);
            }
            (self.keys[self.tail % RING], self.at[self.tail % RING]) = (k, at);
            self.tail += 1;
        }
        self.item = self.item.max(self.head + 1);
        while self.item < self.tail.min(self.head + ITEM_AHEAD + 1) {
            store.prefetch_item(&self.keys[self.item % RING]);
            self.item += 1;
        }
    }

    /// Where the line holding offset `at` ends: at its `\r\n` or `\n`, or the input's end.
    fn line_end_from(&self, at: usize) -> usize {
        let rest = &self.input[at..];
        match find(b'\n', rest) {
            Some(nl) if nl > 0 && rest[nl - 1] == b'\r' => at + nl - 1,
            Some(nl) => at + nl,
            None => self.input.len(),
        }
    }

    /// The next key of the scan, as (offset, length): the rest of the key list it is in, then
    /// the keys of the `get`/`gets` lines that follow; it stops at any other line.
    fn next_key(&mut self) -> Option<(usize, usize)> {
        loop {
            if self.in_list {
                let end = self.line_end;
                while self.scan < end && self.input[self.scan] == b' ' {
                    self.scan += 1;
                }
                if self.scan < end {
                    let at = self.scan;
                    let len = find(b' ', &self.input[at..end]).unwrap_or(end - at);
                    self.scan = at + len;
                    return Some((at, len));
                }
                // the line ends with `\r\n` or `\n` at `end` (`line_end_from`)
                self.scan = end + if self.input.get(end) == Some(&b'\r') { 2 } else { 1 };
                if self.scan > self.input.len() {
                    return None;
                }
                self.in_list = false;
            }
            let rest = &self.input[self.scan..];
            let keys_at = if rest.starts_with(b"get ") {
                3
            } else if rest.starts_with(b"gets ") {
                4
            } else {
                return None;
            };
            self.scan += keys_at;
            self.line_end = self.line_end_from(self.scan);
            self.in_list = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::protocol::text as ptext;
    use crate::storage::{Clock, StoreConfig};

    /// The keys of the `get` lines of `input`, as the session and parser hand them out.
    fn parsed_keys(input: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        let mut pos = 0;
        while let ptext::Frame::Line { len, consumed } = ptext::frame(&input[pos..]) {
            if let ptext::Command::Get { keys, .. } = ptext::parse(&input[pos..pos + len]) {
                out.extend(ptext::keys(keys));
            }
            pos += consumed;
        }
        out
    }

    #[test]
    fn keys_come_back_hashed_as_the_store_hashes_them() {
        let store = Store::new(&StoreConfig::default(), Arc::new(Clock::new()));
        let input = b"get a bb  c\r\nget d\r\ngets e f\nset x 0 0 1\r\n1\r\nget g\r\nget h\r\n";
        let keys = parsed_keys(input);
        assert_eq!(keys, [&b"a"[..], b"bb", b"c", b"d", b"e", b"f", b"g", b"h"]);
        same_keys(&store, input, &keys);
        // a NUL ends a command line for the parser, not for the scan
        let input = b"get a bc\0c d\r\nget e\r\n";
        let keys = parsed_keys(input);
        assert_eq!(keys, [&b"a"[..], b"bc", b"e"]);
        same_keys(&store, input, &keys);
    }

    /// The keys `next` gives for the get lines of `input` are `keys`, hashed.
    fn same_keys(store: &Store, input: &[u8], keys: &[&[u8]]) {
        let mut ahead = Ahead::new(input);
        let mut got = Vec::new();
        let mut pos = 0;
        while let ptext::Frame::Line { len, consumed } = ptext::frame(&input[pos..]) {
            if let ptext::Command::Get { keys, .. } = ptext::parse(&input[pos..pos + len]) {
                let mut at = 0;
                while let Some(k) = ahead.next(store, keys, &mut at) {
                    got.push(k);
                }
            }
            pos += consumed;
        }
        assert_eq!(got.len(), keys.len());
        for (k, key) in got.into_iter().zip(keys) {
            assert_eq!(k.key.as_ptr(), key.as_ptr());
            assert_eq!(format!("{k:?}"), format!("{:?}", store.hashed(key)));
        }
    }

    #[test]
    fn keys_outside_the_input_and_what_the_scan_saw() {
        let store = Store::new(&StoreConfig::default(), Arc::new(Clock::new()));
        let input = b"get a bb  c\r\nget d\r\ngets e f\nset x 0 0 1\r\n1\r\nget g\r\nget h\r\n";
        let other = b" zz y".to_vec();
        let (mut ahead, mut at) = (Ahead::new(input), 0);
        assert_eq!(format!("{:?}", ahead.next(&store, &other, &mut at)), format!("{:?}", Some(store.hashed(b"zz"))));
        assert_eq!(format!("{:?}", ahead.next(&store, &other, &mut at)), format!("{:?}", Some(store.hashed(b"y"))));
        assert!(ahead.next(&store, &other, &mut at).is_none());
        // the scan saw the first line's other keys and the get/gets lines after it, up to the set
        let mut fresh = Ahead::new(input);
        fresh.next(&store, &input[3..11], &mut 0);
        let seen: Vec<&[u8]> = (fresh.head..fresh.tail).map(|i| fresh.keys[i % RING].key).collect();
        assert_eq!(seen, [&b"bb"[..], b"c", b"d", b"e", b"f"]);
    }
}

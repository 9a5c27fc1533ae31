//! `stats detail`: per-key-prefix counters (memcached's `-D` / `stats detail on`).
//!
//! Owns: whether collection is on and the counters per prefix (the key up to the delimiter;
//! keys without the delimiter are not counted). Collection is off by default; when on, every
//! counted command takes one mutex, as in memcached.

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

/// Prefix counters in first-seen order.
#[derive(Default)]
pub struct Detail {
    pub enabled: AtomicBool,
    delimiter: u8,
    prefixes: Mutex<Vec<(Vec<u8>, [u64; 4])>>,
}

const GET: usize = 0;
const HIT: usize = 1;
const SET: usize = 2;
const DEL: usize = 3;

impl Detail {
    pub fn new(delimiter: char, enabled: bool) -> Detail {
        Detail { enabled: AtomicBool::new(enabled), delimiter: delimiter as u8, prefixes: Mutex::new(Vec::new()) }
    }

    #[inline]
    pub fn on(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    fn bump(&self, key: &[u8], what: &[usize]) {
        let Some(end) = key.iter().position(|&b| b == self.delimiter) else {
            return;
        };
        let prefix = &key[..end];
        let mut p = self.prefixes.lock();
        let idx = match p.iter().position(|(k, _)| k == prefix) {
            Some(i) => i,
            None => {
                p.push((prefix.to_vec(), [0; 4]));
                p.len() - 1
            }
        };
        for &w in what {
            p[idx].1[w] += 1;
        }
    }

    pub fn get(&self, key: &[u8], hit: bool) {
        if self.on() {
            self.bump(key, if hit { &[GET, HIT] } else { &[GET] });
        }
    }

    pub fn set(&self, key: &[u8]) {
        if self.on() {
            self.bump(key, &[SET]);
        }
    }

    pub fn delete(&self, key: &[u8]) {
        if self.on() {
            self.bump(key, &[DEL]);
        }
    }

    /// Forget every prefix (`stats reset`); collection stays on or off.
    pub fn reset(&self) {
        self.prefixes.lock().clear();
    }

    /// `stats detail dump`.
    pub fn dump(&self, out: &mut Vec<u8>) {
        for (k, c) in self.prefixes.lock().iter() {
            out.extend_from_slice(b"PREFIX ");
            out.extend_from_slice(k);
            out.extend_from_slice(
                format!(" get {} hit {} set {} del {}\r\n", c[GET], c[HIT], c[SET], c[DEL]).as_bytes(),
            );
        }
        out.extend_from_slice(b"END\r\n");
    }
}

//! `lru_crawler metadump`, streamed: one line per live item, a lock stripe at a time, pausing
//! whenever the connection has more than `DUMP_STEP` bytes of replies pending, so a
//! dump of millions of items never buffers more than a few MB nor holds a lock for long.
//! The connection keeps its `Dump` cursor and resumes when the socket drains; other clients
//! are served meanwhile. Items written while the dump runs may or may not appear, as with
//! memcached's crawler.

use super::exec::Ctx;
use super::session::DUMP_STEP;
use crate::protocol::metadump::{encode_line, DumpLine};
use crate::protocol::text::reply;

/// A metadump in progress on one connection.
#[derive(Debug)]
pub struct Dump {
    /// Bit `i` set: dump slab class `i`.
    classes: u64,
    /// Next lock stripe to walk.
    next: usize,
}

impl Dump {
    pub fn new(classes: u64) -> Dump {
        Dump { classes, next: 0 }
    }

    /// Append lines stripe by stripe; true once finished (with `END`), false when paused
    /// for output room.
    pub fn more(&mut self, ctx: &Ctx<'_>, out: &mut Vec<u8>) -> bool {
        let store = &ctx.shared.store;
        let started = store.clock().process_started();
        while self.next < store.shard_count() {
            store.for_each_in(self.next, |e| {
                let cls = e.class();
                if self.classes & (1u64 << (cls & 63)) != 0 {
                    let line = DumpLine {
                        exp: if e.exptime() == 0 { -1 } else { started + i64::from(e.exptime()) },
                        la: started + i64::from(e.prev_atime),
                        cas: e.cas(),
                        fetched: e.fetched_before,
                        cls,
                        size: e.total() as u64,
                    };
                    encode_line(out, e.key(), &line);
                }
                true
            });
            self.next += 1;
            if out.len() > DUMP_STEP {
                return false;
            }
        }
        out.extend_from_slice(reply::END);
        true
    }
}

//! `-vv`: memcached's per-connection traces on stderr (`<26 new auto-negotiating client
//! connection`, `<26 get a`, `>26 END`, `<26 connection closed.`).
//!
//! Owns: the trace lines and when they are printed: listeners at startup, connections opened
//! and closed, every text or meta command line as it is executed, and the reply of a classic
//! command (`>fd LINE` for a one-line reply, `>fd sending key K` per value then `>fd END` for
//! retrievals; multi-line replies such as `stats` print nothing, as in memcached). Binary
//! requests as memcached 1.6.18 shows them: the request header in hex, the line its handler
//! prints (`<26 GET k`, `Deleting k`, `incr k 1, 0, -1`, ...), then each response header in
//! hex after `Writing an error: TEXT` for an error (a get's CAS shows as 0: memcached dumps
//! the header before filling it in; stats packets are not dumped). Lines go to the log at
//! debug level under the target `memcached` (the `-v` ones at info level), which the binary
//! prints bare. Knows nothing of parsing or execution: the connection code hands it the
//! command line, the binary header bytes and the output buffer, and the worker says where a
//! round of processing ended.

use std::cell::{Cell, RefCell};
use std::sync::atomic::Ordering;

use super::exec::Ctx;
use super::out::Out;
use super::Shared;
use crate::config::Binding;
use crate::protocol::binary::{self as pb, Opcode};

/// A traced command whose reply has not been produced yet: it starts the next output.
const AWAITED: usize = usize::MAX;

/// The log target whose records are printed without decoration.
pub const TARGET: &str = "memcached";

thread_local! {
    /// The connection and output offset where the last traced command's reply starts.
    static MARK: Cell<Option<(i32, usize)>> = const { Cell::new(None) };
    /// Connections of this worker already announced as ascii.
    static ANNOUNCED: RefCell<Vec<i32>> = const { RefCell::new(Vec::new()) };
}

#[inline]
fn on(sh: &Shared) -> bool {
    sh.verbosity.load(Ordering::Relaxed) >= 2 && log::log_enabled!(target: TARGET, log::Level::Debug)
}

fn print(line: std::fmt::Arguments<'_>) {
    log::debug!(target: TARGET, "{line}");
}

fn binding(sh: &Shared) -> &'static str {
    match sh.config.binding {
        Binding::Auto => "auto-negotiate",
        Binding::Ascii => "ascii",
        Binding::Binary => "binary",
    }
}

/// The slab classes, at startup: memcached's lines, describing our own classes (their
/// sizes differ from 1.6.18's: another item header and rounding, see `storage::slab`).
pub fn slab_classes(sh: &Shared) {
    if on(sh) {
        let slabs = sh.store.slabs();
        for id in 1..=slabs.class_count() {
            let c = slabs.class_info(id);
            print(format_args!("slab class {id:3}: chunk size {:9} perslab {:7}", c.size, c.per_page));
        }
    }
}

/// A listener is ready (`udp`: a UDP socket).
pub fn listening(sh: &Shared, fd: i32, udp: bool) {
    if on(sh) {
        let what = if udp { "udp" } else { binding(sh) };
        print(format_args!("<{fd} server listening ({what})"));
    }
}

/// A client connection was accepted.
pub fn conn_new(sh: &Shared, fd: i32) {
    if on(sh) {
        let what = match sh.config.binding {
            Binding::Auto => "auto-negotiating",
            Binding::Ascii => "ascii",
            Binding::Binary => "binary",
        };
        print(format_args!("<{fd} new {what} client connection"));
    }
}

/// A watcher's peer went away: the watch thread closes it (memcached's logger thread hands
/// it back to a worker, which says so first).
pub fn side_close(sh: &Shared, fd: i32) {
    if on(sh) {
        print(format_args!("<{fd} connection closing from side thread."));
    }
}

/// A client connection is closed.
pub fn conn_closed(sh: &Shared, fd: i32) {
    ANNOUNCED.with(|a| a.borrow_mut().retain(|&x| x != fd));
    if on(sh) {
        print(format_args!("<{fd} connection closed."));
    }
}

/// A text or meta command line is about to run on connection `fd` (`first`: not a storage
/// command parsed again once its data arrived; `meta`: no reply trace, as memcached). The
/// previous command's reply is printed first.
pub fn command(ctx: &Ctx<'_>, line: &[u8], first: bool, meta: bool, out: &Out) {
    if !on(ctx.shared) {
        return;
    }
    replies(ctx.shared, out);
    let fd = super::watch::current_fd();
    if fd < 0 {
        return;
    }
    if !first {
        // a storage command whose data has now arrived: its line was printed already
        MARK.with(|m| m.set(Some((fd, out.len()))));
        return;
    }
    announce(ctx, fd, "ascii");
    print(format_args!("<{fd} {}", String::from_utf8_lossy(line)));
    if !meta {
        MARK.with(|m| m.set(Some((fd, out.len()))));
    }
}

/// The first request of connection `fd` says which protocol it speaks (a UDP socket has no
/// negotiation to report).
fn announce(ctx: &Ctx<'_>, fd: i32, proto: &str) {
    let fresh = ANNOUNCED.with(|a| {
        let mut a = a.borrow_mut();
        let fresh = !a.contains(&fd);
        if fresh {
            a.push(fd);
        }
        fresh
    });
    if fresh && !ctx.shared.conns.lock().get(&fd).is_some_and(|info| info.udp) {
        print(format_args!("{fd}: Client using the {proto} protocol"));
    }
}

/// `bytes` in memcached's hex dump: each group of four after `prefix`, each byte ` 0x%02x`.
fn hex_rows(prefix: &str, bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 5 + bytes.len() / 4 * (prefix.len() + 1));
    for (i, b) in bytes.iter().enumerate() {
        if i % 4 == 0 {
            s.push_str(prefix);
        }
        let _ = write!(s, " 0x{b:02x}");
    }
    s
}

/// A binary request's header (its first `pb::HEADER_LEN` bytes) has arrived.
pub fn binary_header(ctx: &Ctx<'_>, header: &[u8]) {
    let fd = super::watch::current_fd();
    if !on(ctx.shared) || fd < 0 || header.len() < pb::HEADER_LEN {
        return;
    }
    announce(ctx, fd, "binary");
    let rows = hex_rows(&format!("\n<{fd}   "), &header[..pb::HEADER_LEN]);
    print(format_args!("<{fd} Read binary protocol data:{rows}"));
}

/// A binary request is about to run (`head`: its header, extras and key): the line
/// memcached's handler for it prints, if any.
pub fn binary_request(ctx: &Ctx<'_>, head: &[u8]) {
    let fd = super::watch::current_fd();
    if !on(ctx.shared) || fd < 0 || head.len() < pb::HEADER_LEN {
        return;
    }
    let h = pb::parse_header(head);
    let (ext, klen) = (h.extras_len as usize, h.key_len as usize);
    let Some(key) = head.get(pb::HEADER_LEN + ext..pb::HEADER_LEN + ext + klen) else {
        return;
    };
    let extras = &head[pb::HEADER_LEN..pb::HEADER_LEN + ext];
    let key = String::from_utf8_lossy(key);
    let vlen = (h.body_len as usize).saturating_sub(ext + klen);
    use Opcode::*;
    match Opcode::from_u8(h.opcode).map(Opcode::base) {
        Some(Get | GetK) => print(format_args!("<{fd} GET {key}")),
        Some(Touch | Gat | GatK) => print(format_args!("<{fd} TOUCH {key}")),
        Some(Set) => print(format_args!("<{fd} SET {key} Value len is {vlen}")),
        Some(Add) => print(format_args!("<{fd} ADD {key} Value len is {vlen}")),
        Some(Replace) => print(format_args!("<{fd} REPLACE {key} Value len is {vlen}")),
        Some(Append | Prepend) => print(format_args!("Value len is {vlen}")),
        Some(Delete) => print(format_args!("Deleting {key}")),
        // memcached says "incr" for both and prints the expiration as a signed int
        Some(Increment | Decrement) if extras.len() == 20 => {
            let (delta, initial, exptime) = (pb::be64(extras), pb::be64(&extras[8..]), pb::be32(&extras[16..]) as i32);
            print(format_args!("incr {key} {delta}, {initial}, {exptime}"));
        }
        Some(Stat) => print(format_args!("<{fd} STATS {key}")),
        _ => {}
    }
}

/// The binary responses in `out` from `mark` on: `Writing an error: TEXT` for an error, then
/// the header in hex (see the module docs for what memcached leaves out).
pub fn binary_replies(ctx: &Ctx<'_>, out: &Out, mark: usize) {
    binary_replies_in(ctx, out, mark, |at| out.pinned_at(at));
}

/// The same for a reply held back until a refused body has been discarded.
pub fn binary_held_reply(ctx: &Ctx<'_>, reply: &[u8]) {
    binary_replies_in(ctx, reply, 0, |_| 0);
}

fn binary_replies_in(ctx: &Ctx<'_>, buf: &[u8], mark: usize, pinned: impl Fn(usize) -> usize) {
    let fd = super::watch::current_fd();
    if !on(ctx.shared) || fd < 0 {
        return;
    }
    let mut at = mark;
    while at + pb::HEADER_LEN <= buf.len() {
        let h = pb::parse_header(&buf[at..]);
        let body_at = at + pb::HEADER_LEN + h.extras_len as usize + h.key_len as usize;
        let body_end = at + pb::HEADER_LEN + h.body_len as usize;
        let status = h.vbucket_or_status;
        if status != 0 && status != pb::Status::AuthContinue as u16 {
            let text = buf.get(body_at..body_end.min(buf.len())).unwrap_or_default();
            print(format_args!(">{fd} Writing an error: {}", String::from_utf8_lossy(text)));
        }
        let op = Opcode::from_u8(h.opcode);
        if status != 0 || op != Some(Opcode::Stat) {
            let mut header = [0u8; pb::HEADER_LEN];
            header.copy_from_slice(&buf[at..at + pb::HEADER_LEN]);
            use Opcode::*;
            if matches!(op.map(Opcode::base), Some(Get | GetK | Touch | Gat | GatK)) {
                header[16..].fill(0);
            }
            let rows = hex_rows(&format!("\n>{fd}  "), &header);
            print(format_args!(">{fd} Writing bin response:{rows}"));
        }
        at = body_end.saturating_sub(pinned(body_at)).max(body_at);
    }
}

/// `-v`: a binary connection closed for a malformed request (`magic`: the request's first
/// byte; `opcode`: its opcode).
pub fn binary_bad_request(ctx: &Ctx<'_>, magic: u8, opcode: u8) {
    let fd = super::watch::current_fd();
    if ctx.shared.verbosity.load(Ordering::Relaxed) < 1 || fd < 0 {
        return;
    }
    if magic != pb::REQ_MAGIC {
        log::info!(target: TARGET, "Invalid magic:  {magic:x}");
    } else {
        log::info!(target: TARGET, "Protocol error (opcode {opcode:02x}), close connection {fd}");
    }
}

/// A reply suppressed by `noreply` (`>fd NOREPLY STORED`), for the connection being served.
pub fn noreply(reply: &[u8]) {
    let fd = super::watch::current_fd();
    if fd >= 0 && log::log_enabled!(target: TARGET, log::Level::Debug) && MARK.with(|m| m.get()).is_some() {
        let line = String::from_utf8_lossy(reply);
        print(format_args!(">{fd} NOREPLY {}", line.trim_end()));
    }
}

/// Print the reply of the last traced command from `out` (the buffer it was written to).
pub fn replies(sh: &Shared, out: &Out) {
    let Some((fd, mark)) = MARK.with(|m| m.take()) else {
        return;
    };
    if !on(sh) {
        return;
    }
    let mark = if mark == AWAITED { 0 } else { mark };
    if mark >= out.len() {
        // Nothing yet (a value still arriving): the reply comes with a later round's output.
        MARK.with(|m| m.set(Some((fd, AWAITED))));
        return;
    }
    for line in reply_lines(&out[mark..], |at| out.pinned_at(mark + at)) {
        print(format_args!(">{fd} {line}"));
    }
}

/// What memcached's `-vv` shows of a reply (`pinned(at)`: bytes of values sent from their
/// items right after `reply[..at]`, which the buffer does not hold).
fn reply_lines(reply: &[u8], pinned: impl Fn(usize) -> usize) -> Vec<String> {
    let text = String::from_utf8_lossy(reply);
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    match lines.as_slice() {
        [] => Vec::new(),
        [one] => vec![one.to_string()],
        [first, ..] if first.starts_with("VALUE ") => {
            // VALUE <key> <flags> <bytes> [<cas>] / data / ... / END
            let mut shown = Vec::new();
            let mut rest = reply;
            while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
                let head = String::from_utf8_lossy(&rest[..end]).into_owned();
                let mut words = head.split(' ');
                match (words.next(), words.next(), words.nth(1).and_then(|b| b.parse::<usize>().ok())) {
                    (Some("VALUE"), Some(key), Some(bytes)) => {
                        shown.push(format!("sending key {key}"));
                        let copied = bytes - pinned(reply.len() - rest.len() + end + 2).min(bytes);
                        rest = rest.get(end + 2 + copied + 2..).unwrap_or_default();
                    }
                    _ => {
                        shown.push(head);
                        rest = &rest[end + 2..];
                    }
                }
            }
            shown
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::reply_lines;

    #[test]
    fn replies_are_shown_as_memcached_shows_them() {
        let none = |_| 0;
        assert_eq!(reply_lines(b"END\r\n", none), ["END"]);
        assert_eq!(reply_lines(b"STORED\r\n", none), ["STORED"]);
        assert_eq!(
            reply_lines(b"VALUE a 0 3\r\nx\r\n\r\nVALUE bb 5 1 9\r\ny\r\nEND\r\n", none),
            ["sending key a", "sending key bb", "END"]
        );
        assert!(reply_lines(b"STAT pid 1\r\nSTAT uptime 2\r\nEND\r\n", none).is_empty());
        assert!(reply_lines(b"", none).is_empty());
        // a value sent from its item is not in the buffer
        let pinned = |at| if at == 18 { 5000 } else { 0 };
        assert_eq!(
            reply_lines(b"VALUE big 0 5000\r\n\r\nVALUE a 0 1\r\nx\r\nEND\r\n", pinned),
            ["sending key big", "sending key a", "END"]
        );
    }
}

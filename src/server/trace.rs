//! `-vv`: memcached's per-connection traces on stderr (`<26 new auto-negotiating client
//! connection`, `<26 get a`, `>26 END`, `<26 connection closed.`).
//!
//! Owns: the trace lines and when they are printed: listeners at startup, connections opened
//! and closed, every text or meta command line as it is executed, and the reply of a classic
//! command (`>fd LINE` for a one-line reply, `>fd sending key K` per value then `>fd END` for
//! retrievals; multi-line replies such as `stats` print nothing, as in memcached). Lines go to
//! the log at debug level under the target `memcached`, which the binary prints bare. Knows
//! nothing of parsing or execution: the connection code hands it the command line and the
//! output buffer, and the worker says where a round of processing ended.

use std::cell::{Cell, RefCell};
use std::sync::atomic::Ordering;

use super::exec::Ctx;
use super::Shared;
use crate::config::Binding;

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
pub fn command(ctx: &Ctx<'_>, line: &[u8], first: bool, meta: bool, out: &[u8]) {
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
    let fresh = ANNOUNCED.with(|a| {
        let mut a = a.borrow_mut();
        let fresh = !a.contains(&fd);
        if fresh {
            a.push(fd);
        }
        fresh
    });
    // (a UDP socket has no protocol negotiation to report)
    if fresh && !ctx.shared.conns.lock().get(&fd).is_some_and(|info| info.udp) {
        print(format_args!("{fd}: Client using the ascii protocol"));
    }
    print(format_args!("<{fd} {}", String::from_utf8_lossy(line)));
    if !meta {
        MARK.with(|m| m.set(Some((fd, out.len()))));
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
pub fn replies(sh: &Shared, out: &[u8]) {
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
    for line in reply_lines(&out[mark..]) {
        print(format_args!(">{fd} {line}"));
    }
}

/// What memcached's `-vv` shows of a reply.
fn reply_lines(reply: &[u8]) -> Vec<String> {
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
                        rest = rest.get(end + 2 + bytes + 2..).unwrap_or_default();
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
        assert_eq!(reply_lines(b"END\r\n"), ["END"]);
        assert_eq!(reply_lines(b"STORED\r\n"), ["STORED"]);
        assert_eq!(
            reply_lines(b"VALUE a 0 3\r\nx\r\n\r\nVALUE bb 5 1 9\r\ny\r\nEND\r\n"),
            ["sending key a", "sending key bb", "END"]
        );
        assert!(reply_lines(b"STAT pid 1\r\nSTAT uptime 2\r\nEND\r\n").is_empty());
        assert!(reply_lines(b"").is_empty());
    }
}

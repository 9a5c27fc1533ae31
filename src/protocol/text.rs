//! The classic text protocol: framing a command line, parsing it into a `Command`, and
//! encoding replies.
//!
//! Owns: line framing (`frame`), memcached's tokenizer (split on spaces, at most 24 tokens
//! where the last holds the unprocessed rest), the command table with its token-count rules
//! (a wrong count is a bare `ERROR`, as in memcached 1.6.18), argument validation with
//! memcached's exact error strings, `noreply` detection, and the reply encoders (`reply`,
//! `encode`). Knows nothing of storage: a storage command is returned with its data length,
//! and the caller decides whether to wait for the data block or swallow it.

use super::find::find;
use super::num::{strtol32, strtoul32, strtoull};
use super::KEY_MAX;

/// memcached's MAX_TOKENS (including the terminal token).
pub const MAX_TOKENS: usize = 24;

/// A command line longer than this with no newline closes the connection (unless it is a
/// multi-get), as in memcached.
pub const LINE_MAX: usize = 2048;

/// Error replies, byte-exact.
pub mod reply {
    pub const ERROR: &[u8] = b"ERROR\r\n";
    pub const BAD_FORMAT: &[u8] = b"CLIENT_ERROR bad command line format\r\n";
    pub const BAD_CHUNK: &[u8] = b"CLIENT_ERROR bad data chunk\r\n";
    pub const BAD_EXPTIME: &[u8] = b"CLIENT_ERROR invalid exptime argument\r\n";
    pub const BAD_DELTA: &[u8] = b"CLIENT_ERROR invalid numeric delta argument\r\n";
    pub const NON_NUMERIC: &[u8] = b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
    pub const DELETE_USAGE: &[u8] = b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n";
    pub const TOO_LARGE: &[u8] = b"SERVER_ERROR object too large for cache\r\n";
    pub const NO_MEMORY: &[u8] = b"SERVER_ERROR out of memory storing object\r\n";
    pub const NO_MEMORY_DELTA: &[u8] = b"SERVER_ERROR out of memory\r\n";
    pub const FLUSH_DISABLED: &[u8] = b"CLIENT_ERROR flush_all not allowed\r\n";
    pub const SHUTDOWN_DISABLED: &[u8] = b"ERROR: shutdown not enabled\r\n";
    pub const WATCH_DISABLED: &[u8] = b"CLIENT_ERROR watch commands not allowed\r\n";
    pub const SHUTDOWN_MODE: &[u8] = b"CLIENT_ERROR invalid shutdown mode\r\n";
    pub const MEMLIMIT_SMALL: &[u8] = b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n";
    pub const MEMLIMIT_UNITS: &[u8] = b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n";
    pub const BAD_COMMAND_LINE: &[u8] = b"CLIENT_ERROR bad command line\r\n";
    pub const STORED: &[u8] = b"STORED\r\n";
    pub const NOT_STORED: &[u8] = b"NOT_STORED\r\n";
    pub const EXISTS: &[u8] = b"EXISTS\r\n";
    pub const NOT_FOUND: &[u8] = b"NOT_FOUND\r\n";
    pub const DELETED: &[u8] = b"DELETED\r\n";
    pub const TOUCHED: &[u8] = b"TOUCHED\r\n";
    pub const OK: &[u8] = b"OK\r\n";
    pub const END: &[u8] = b"END\r\n";
    pub const RESET: &[u8] = b"RESET\r\n";
    pub const TOO_MANY_CONNS: &[u8] = b"ERROR Too many open connections\r\n";
    pub const REASSIGN_DISABLED: &[u8] = b"CLIENT_ERROR slab reassignment disabled\r\n";
    pub const REASSIGN_SAME: &[u8] = b"SAME src and dst class are identical\r\n";
    pub const REASSIGN_NOSPARE: &[u8] = b"NOSPARE source class has no spare pages\r\n";
    pub const REASSIGN_BADCLASS: &[u8] = b"BADCLASS invalid src or dst class id\r\n";
    pub const CRAWLER_DISABLED: &[u8] = b"CLIENT_ERROR lru crawler disabled\r\n";
    pub const CRAWLER_BADCLASS: &[u8] = b"BADCLASS invalid class id\r\n";
    pub const CRAWLER_SLEEP: &[u8] = b"CLIENT_ERROR sleep must be one second or less\r\n";
    pub const METADUMP_DISABLED: &[u8] = b"ERROR metadump not allowed\r\n";
    pub const METADUMP_PIPELINED: &[u8] = b"ERROR cannot pipeline other commands before metadump\r\n";
    pub const DETAIL_USAGE: &[u8] = b"CLIENT_ERROR usage: stats detail on|off|dump\r\n";
    pub const CACHEDUMP_DISABLED: &[u8] = b"CLIENT_ERROR stats cachedump not allowed\r\n";
    pub const CACHEDUMP_BADCLASS: &[u8] = b"CLIENT_ERROR Illegal slab id\r\n";
}

/// Encoders for the replies that carry data (the fixed ones are in `reply`).
pub mod encode {
    fn num(out: &mut Vec<u8>, n: impl itoa::Integer) {
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    }

    /// `VALUE <key> <flags> <bytes>[ <cas>]\r\n`: the line before a retrieved value.
    #[inline]
    pub fn value_head(out: &mut Vec<u8>, key: &[u8], flags: u32, len: usize, cas: Option<u64>) {
        // The numbers are written backwards into one small buffer, appended with the key in
        // three pieces (callgrind: 126 instructions a line as eight appends and two itoa calls).
        let mut tail = [0u8; 64];
        let mut at = tail.len() - 2;
        tail[at..].copy_from_slice(b"\r\n");
        if let Some(cas) = cas {
            at = digits_before(&mut tail, at, cas) - 1;
            tail[at] = b' ';
        }
        at = digits_before(&mut tail, at, len as u64) - 1;
        tail[at] = b' ';
        at = digits_before(&mut tail, at, flags.into()) - 1;
        tail[at] = b' ';
        out.extend_from_slice(b"VALUE ");
        out.extend_from_slice(key);
        out.extend_from_slice(&tail[at..]);
    }

    /// Write `n` in decimal just before `end` in `buf`; returns where its digits start.
    #[inline]
    fn digits_before(buf: &mut [u8], mut end: usize, mut n: u64) -> usize {
        loop {
            end -= 1;
            buf[end] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                return end;
            }
        }
    }

    /// The reply to `incr`/`decr`: the new number.
    pub fn number(out: &mut Vec<u8>, n: u64) {
        num(out, n);
        out.extend_from_slice(b"\r\n");
    }

    /// One `STAT <name> <value>` line.
    pub fn stat(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
        out.extend_from_slice(b"STAT ");
        out.extend_from_slice(name);
        out.push(b' ');
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }

    /// `VERSION <version>`.
    pub fn version(out: &mut Vec<u8>, version: &str) {
        out.extend_from_slice(b"VERSION ");
        out.extend_from_slice(version.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// Result of looking for a command line at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line: `len` bytes of command (without `\r\n`), `consumed` bytes with it.
    Line { len: usize, consumed: usize },
    /// No newline yet; read more.
    Incomplete,
    /// No newline within `LINE_MAX` bytes and not a multi-get: close the connection.
    TooLong,
}

/// The start of a `get`/`gets` line longer than `LINE_MAX` (the only commands `frame` lets grow
/// past it, as memcached does): whether it is `gets`, and where its keys start.
pub fn long_get_head(buf: &[u8]) -> Option<(bool, usize)> {
    let spaces = buf.iter().take_while(|&&b| b == b' ').count();
    let rest = &buf[spaces..];
    if rest.starts_with(b"get ") {
        Some((false, spaces + 4))
    } else if rest.starts_with(b"gets ") {
        Some((true, spaces + 5))
    } else {
        None
    }
}

/// How many bytes at the start of an unfinished key list hold only whole keys: up to and
/// including the last space (0 if there is none).
pub fn whole_keys(buf: &[u8]) -> usize {
    memchr::memrchr(b' ', buf).map_or(0, |i| i + 1)
}

/// Find the first command line in `buf`.
pub fn frame(buf: &[u8]) -> Frame {
    match find(b'\n', buf) {
        Some(nl) => {
            let len = if nl > 1 && buf[nl - 1] == b'\r' { nl - 1 } else { nl };
            Frame::Line { len, consumed: nl + 1 }
        }
        None if buf.len() > LINE_MAX => {
            let spaces = buf.iter().take_while(|&&b| b == b' ').count();
            let rest = &buf[spaces..];
            if spaces <= 100 && (rest.starts_with(b"get ") || rest.starts_with(b"gets ")) {
                Frame::Incomplete
            } else {
                Frame::TooLong
            }
        }
        None => Frame::Incomplete,
    }
}

/// memcached's tokenizer output: up to 23 tokens; `rest` is set when more remain.
#[derive(Debug)]
pub struct Tokens<'a> {
    toks: [&'a [u8]; MAX_TOKENS],
    n: usize,
    rest: bool,
}

impl<'a> Tokens<'a> {
    /// Split `line` on spaces the way `tokenize_command` does.
    pub fn new(line: &'a [u8]) -> Tokens<'a> {
        let mut t = Tokens { toks: [&[][..]; MAX_TOKENS], n: 0, rest: false };
        let mut i = 0;
        let len = line.len();
        while i < len {
            while i < len && line[i] == b' ' {
                i += 1;
            }
            if i >= len {
                break;
            }
            if t.n == MAX_TOKENS - 1 {
                t.rest = true;
                break;
            }
            let start = i;
            while i < len && line[i] != b' ' {
                i += 1;
            }
            t.toks[t.n] = &line[start..i];
            t.n += 1;
        }
        t
    }

    /// memcached's `ntokens`: real tokens plus the terminal one.
    pub fn ntokens(&self) -> usize {
        self.n + 1
    }

    /// Token `i` (empty past the end).
    pub fn get(&self, i: usize) -> &'a [u8] {
        if i < self.n {
            self.toks[i]
        } else {
            &[]
        }
    }

    /// Whether the last real token is `noreply` (memcached's `set_noreply_maybe`).
    pub fn noreply(&self) -> bool {
        self.n > 0 && !self.rest && self.toks[self.n - 1] == b"noreply"
    }
}

/// The storage commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
    Cas,
}

/// A storage command line; its data block (`bytes` + CRLF) follows the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreCmd<'a> {
    pub kind: StoreKind,
    pub key: &'a [u8],
    pub flags: u32,
    pub exptime: i64,
    pub bytes: usize,
    pub cas: u64,
    pub noreply: bool,
}

/// A parsed command line.
#[derive(Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// get / gets / bget / gat / gats. `keys` is the rest of the line (split on spaces).
    Get {
        cas: bool,
        touch: Option<i64>,
        keys: &'a [u8],
    },
    Store(StoreCmd<'a>),
    Delete {
        key: &'a [u8],
        noreply: bool,
    },
    Arith {
        incr: bool,
        key: &'a [u8],
        delta: u64,
        noreply: bool,
    },
    Touch {
        key: &'a [u8],
        exptime: i64,
        noreply: bool,
    },
    FlushAll {
        delay: i64,
        noreply: bool,
    },
    Version,
    /// `refresh_certs`: reload the TLS certificates (`noreply` silences only `OK`).
    RefreshCerts {
        noreply: bool,
    },
    Quit,
    Shutdown {
        graceful: bool,
    },
    Verbosity {
        level: u32,
        noreply: bool,
    },
    CacheMemlimit {
        mb: u32,
        noreply: bool,
    },
    /// `stats [args...]`: the tokens after `stats`.
    Stats {
        args: [&'a [u8]; 4],
        nargs: usize,
    },
    /// `watch [kinds...]`: the tokens after `watch`.
    Watch {
        args: [&'a [u8]; 4],
        nargs: usize,
    },
    /// A meta command (`mg`, `ms`, `md`, `ma`, `me`): the whole line, for the meta parser.
    Meta {
        cmd: u8,
        line: &'a [u8],
    },
    /// `mn`
    MetaNoop,
    /// `config ...` (ElastiCache auto-discovery): the whole line, for `server::discovery`.
    Config {
        line: &'a [u8],
    },
    /// `debugtime <secs>`: advance the clock (only honoured with `-o debug_time`).
    DebugTime {
        secs: u32,
    },
    /// `slabs automove <n>`, `slabs reassign <src> <dst>`.
    SlabsAutomove {
        mode: u32,
    },
    SlabsReassign {
        src: i32,
        dst: i32,
    },
    /// `lru tune|mode|temp_ttl ...`, validated as memcached validates it.
    Lru {
        cmd: LruCmd,
        noreply: bool,
    },
    /// `lru_crawler <sub> [arg]`.
    LruCrawler {
        sub: &'a [u8],
        arg: &'a [u8],
        nargs: usize,
    },
    /// Close the connection without a reply (an HTTP request on the memcached port).
    Close,
    /// An error reply; `noreply` suppresses it as memcached's `out_string` does.
    Error {
        reply: &'static [u8],
        noreply: bool,
    },
}

fn err(reply: &'static [u8]) -> Command<'static> {
    Command::Error { reply, noreply: false }
}

/// Parse one command line (without its line terminator).
pub fn parse(line: &[u8]) -> Command<'_> {
    // memcached works on a C string: an embedded NUL ends the command.
    let line = match find(0, line) {
        Some(z) => &line[..z],
        None => line,
    };
    // `get`/`gets` with one or more keys, the bulk of the traffic, skip the tokenizer: its
    // only use for them is to find that a key follows (callgrind, 16-deep gets: 193 of 1,384
    // instructions per get were `Tokens::new`). Anything else, leading spaces included, takes
    // the general path, which gives the same `Get` for these lines.
    if let Some(cmd) = get_fast(line) {
        return cmd;
    }
    parse_tokens(line)
}

/// The general path of `parse`: tokenize as memcached does, then the command table.
fn parse_tokens(line: &[u8]) -> Command<'_> {
    let t = Tokens::new(line);
    let nt = t.ntokens();
    let cmd = t.get(0);
    if nt < 2 || cmd.len() < 2 {
        return err(reply::ERROR);
    }
    if cmd[0] == b'm' && cmd.len() == 2 {
        return match cmd[1] {
            b'g' | b's' | b'd' | b'a' | b'e' => Command::Meta { cmd: cmd[1], line },
            b'n' => Command::MetaNoop,
            _ => err(reply::ERROR),
        };
    }
    match cmd {
        b"get" | b"bget" => want_min(nt, 3, || get_cmd(line, false, None)),
        b"gets" => want_min(nt, 3, || get_cmd(line, true, None)),
        b"gat" | b"gats" => want_min(nt, 3, || {
            let Some(exp) = strtol32(t.get(1)) else {
                return err(reply::BAD_EXPTIME);
            };
            let after_cmd = skip_tokens(line, 2);
            get_cmd_keys(after_cmd, cmd == b"gats", Some(exp as i64))
        }),
        b"set" => want_or(nt, 6, 7, || update(&t, StoreKind::Set)),
        b"add" => want_or(nt, 6, 7, || update(&t, StoreKind::Add)),
        b"replace" => want_or(nt, 6, 7, || update(&t, StoreKind::Replace)),
        b"append" => want_or(nt, 6, 7, || update(&t, StoreKind::Append)),
        b"prepend" => want_or(nt, 6, 7, || update(&t, StoreKind::Prepend)),
        b"cas" => want_or(nt, 7, 8, || update(&t, StoreKind::Cas)),
        b"incr" => want_or(nt, 4, 5, || arith(&t, true)),
        b"decr" => want_or(nt, 4, 5, || arith(&t, false)),
        b"delete" => want_range(nt, 3, 5, || delete(&t)),
        b"touch" => want_or(nt, 4, 5, || {
            let noreply = t.noreply();
            if t.get(1).len() > KEY_MAX {
                return Command::Error { reply: reply::BAD_FORMAT, noreply };
            }
            match strtol32(t.get(2)) {
                Some(e) => Command::Touch { key: t.get(1), exptime: e as i64, noreply },
                None => Command::Error { reply: reply::BAD_EXPTIME, noreply },
            }
        }),
        b"flush_all" => want_range(nt, 2, 4, || {
            let noreply = t.noreply();
            if nt != if noreply { 3 } else { 2 } {
                match strtol32(t.get(1)) {
                    Some(d) => Command::FlushAll { delay: d as i64, noreply },
                    None => Command::Error { reply: reply::BAD_EXPTIME, noreply },
                }
            } else {
                Command::FlushAll { delay: 0, noreply }
            }
        }),
        b"version" => Command::Version,
        b"refresh_certs" => Command::RefreshCerts { noreply: t.noreply() },
        b"config" => Command::Config { line },
        b"quit" => Command::Quit,
        b"shutdown" => match nt {
            2 => Command::Shutdown { graceful: false },
            3 if t.get(1) == b"graceful" => Command::Shutdown { graceful: true },
            _ => Command::Error { reply: reply::SHUTDOWN_MODE, noreply: false },
        },
        b"verbosity" => want_or(nt, 3, 4, || {
            let noreply = t.noreply();
            match strtoul32(t.get(1)) {
                Some(level) => Command::Verbosity { level, noreply },
                None => Command::Error { reply: reply::BAD_FORMAT, noreply },
            }
        }),
        b"cache_memlimit" => want_or(nt, 3, 4, || {
            let noreply = t.noreply();
            match strtoul32(t.get(1)) {
                Some(mb) => Command::CacheMemlimit { mb, noreply },
                None => Command::Error { reply: reply::ERROR, noreply },
            }
        }),
        b"stats" => {
            let mut args: [&[u8]; 4] = [&[]; 4];
            let nargs = (t.n - 1).min(4);
            for (i, a) in args.iter_mut().enumerate().take(nargs) {
                *a = t.get(i + 1);
            }
            Command::Stats { args, nargs }
        }
        b"watch" => {
            let mut args: [&[u8]; 4] = [&[]; 4];
            let nargs = t.n - 1;
            for (i, a) in args.iter_mut().enumerate().take(nargs.min(4)) {
                *a = t.get(i + 1);
            }
            Command::Watch { args, nargs }
        }
        b"debugtime" => match strtoul32(t.get(1)) {
            Some(secs) if nt == 3 => Command::DebugTime { secs },
            _ => err(reply::ERROR),
        },
        b"slabs" => {
            if nt == 5 && t.get(1) == b"reassign" {
                match (strtol32(t.get(2)), strtol32(t.get(3))) {
                    (Some(src), Some(dst)) => Command::SlabsReassign { src, dst },
                    _ => err(b"CLIENT_ERROR bogus number\r\n"),
                }
            } else if nt >= 4 && t.get(1) == b"automove" {
                match strtoul32(t.get(2)) {
                    Some(mode) if mode <= 2 => Command::SlabsAutomove { mode },
                    Some(_) => err(reply::ERROR),
                    None => err(reply::BAD_FORMAT),
                }
            } else {
                err(reply::ERROR)
            }
        }
        b"lru" => parse_lru(&t, nt),
        b"lru_crawler" => Command::LruCrawler { sub: t.get(1), arg: t.get(2), nargs: t.n - 1 },
        // memcached closes connections that look like HTTP requests.
        _ if t.n > 0 && t.get(t.n - 1).starts_with(b"HTTP/") => Command::Close,
        _ => err(reply::ERROR),
    }
}

/// What an `lru` command asks for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LruCmd {
    Tune {
        hot_pct: u32,
        warm_pct: u32,
        hot_factor: f64,
        warm_factor: f64,
    },
    Mode {
        segmented: bool,
    },
    /// A negative TTL turns the temporary LRU off.
    TempTtl {
        ttl: i32,
    },
}

// The factors are finite (the parser refuses NaN and infinities), so equality is total.
impl Eq for LruCmd {}

/// memcached's `process_lru_command` (the `mode` and `temp_ttl` forms also need the LRU
/// maintainer; the dispatcher checks that).
fn parse_lru<'a>(t: &Tokens<'a>, nt: usize) -> Command<'a> {
    let noreply = t.noreply();
    let fail = |reply| Command::Error { reply, noreply };
    let float = |tok: &[u8]| std::str::from_utf8(tok).ok()?.parse::<f64>().ok().filter(|f| f.is_finite());
    let cmd = match t.get(1) {
        b"tune" if nt >= 7 => match (strtoul32(t.get(2)), strtoul32(t.get(3)), float(t.get(4)), float(t.get(5))) {
            (Some(hot_pct), Some(warm_pct), Some(hot_factor), Some(warm_factor)) => {
                if u64::from(hot_pct) + u64::from(warm_pct) > 80 {
                    return fail(b"ERROR hot and warm pcts must not exceed 80\r\n");
                }
                if hot_factor <= 0.0 || warm_factor <= 0.0 {
                    return fail(b"ERROR hot/warm age factors must be greater than 0\r\n");
                }
                LruCmd::Tune { hot_pct, warm_pct, hot_factor, warm_factor }
            }
            _ => return fail(reply::ERROR),
        },
        b"mode" if nt >= 4 => match t.get(2) {
            b"flat" => LruCmd::Mode { segmented: false },
            b"segmented" => LruCmd::Mode { segmented: true },
            _ => return fail(reply::ERROR),
        },
        b"temp_ttl" if nt >= 4 => match strtol32(t.get(2)) {
            Some(ttl) => LruCmd::TempTtl { ttl },
            None => return fail(reply::ERROR),
        },
        _ => return fail(reply::ERROR),
    };
    Command::Lru { cmd, noreply }
}

#[inline]
fn want_min<'a>(nt: usize, min: usize, f: impl FnOnce() -> Command<'a>) -> Command<'a> {
    if nt >= min {
        f()
    } else {
        err(reply::ERROR)
    }
}

#[inline]
fn want_or<'a>(nt: usize, a: usize, b: usize, f: impl FnOnce() -> Command<'a>) -> Command<'a> {
    if nt == a || nt == b {
        f()
    } else {
        err(reply::ERROR)
    }
}

#[inline]
fn want_range<'a>(nt: usize, lo: usize, hi: usize, f: impl FnOnce() -> Command<'a>) -> Command<'a> {
    if nt >= lo && nt <= hi {
        f()
    } else {
        err(reply::ERROR)
    }
}

/// The line after its first `n` tokens.
fn skip_tokens(line: &[u8], n: usize) -> &[u8] {
    let mut i = 0;
    for _ in 0..n {
        while i < line.len() && line[i] == b' ' {
            i += 1;
        }
        while i < line.len() && line[i] != b' ' {
            i += 1;
        }
    }
    &line[i..]
}

/// `get <keys>` or `gets <keys>` at the very start of `line`, with at least one key.
#[inline]
fn get_fast(line: &[u8]) -> Option<Command<'_>> {
    let (cas, keys) = match line {
        [b'g', b'e', b't', b' ', ..] => (false, &line[3..]),
        [b'g', b'e', b't', b's', b' ', ..] => (true, &line[4..]),
        _ => return None,
    };
    // memcached wants a token after the command (else `ERROR`, from the general path)
    if keys.iter().all(|&b| b == b' ') {
        return None;
    }
    Some(Command::Get { cas, touch: None, keys })
}

fn get_cmd(line: &[u8], cas: bool, touch: Option<i64>) -> Command<'_> {
    get_cmd_keys(skip_tokens(line, 1), cas, touch)
}

fn get_cmd_keys(keys: &[u8], cas: bool, touch: Option<i64>) -> Command<'_> {
    Command::Get { cas, touch, keys }
}

/// Iterate the keys of a get line (split on spaces, as memcached's tokenizer does).
pub fn keys(rest: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = rest;
    std::iter::from_fn(move || {
        let start = rest.iter().position(|&b| b != b' ')?;
        let tail = &rest[start..];
        let len = find(b' ', tail).unwrap_or(tail.len());
        rest = &tail[len..];
        Some(&tail[..len])
    })
}

fn update<'a>(t: &Tokens<'a>, kind: StoreKind) -> Command<'a> {
    let noreply = t.noreply();
    let bad = Command::Error { reply: reply::BAD_FORMAT, noreply };
    let key = t.get(1);
    if key.len() > KEY_MAX {
        return bad;
    }
    let (Some(flags), Some(exptime), Some(bytes)) = (strtoul32(t.get(2)), strtol32(t.get(3)), strtol32(t.get(4)))
    else {
        return bad;
    };
    let mut cas = 0;
    if kind == StoreKind::Cas {
        match strtoull(t.get(5)) {
            Some(c) => cas = c,
            None => return bad,
        }
    }
    if !(0..=i32::MAX - 2).contains(&bytes) {
        return bad;
    }
    Command::Store(StoreCmd { kind, key, flags, exptime: exptime as i64, bytes: bytes as usize, cas, noreply })
}

fn arith<'a>(t: &Tokens<'a>, incr: bool) -> Command<'a> {
    let noreply = t.noreply();
    let key = t.get(1);
    if key.len() > KEY_MAX {
        return Command::Error { reply: reply::BAD_FORMAT, noreply };
    }
    match strtoull(t.get(2)) {
        Some(delta) => Command::Arith { incr, key, delta, noreply },
        None => Command::Error { reply: reply::BAD_DELTA, noreply },
    }
}

fn delete<'a>(t: &Tokens<'a>) -> Command<'a> {
    let nt = t.ntokens();
    let mut noreply = false;
    if nt > 3 {
        let hold_is_zero = t.get(2) == b"0";
        noreply = t.noreply();
        let valid = (nt == 4 && (hold_is_zero || noreply)) || (nt == 5 && hold_is_zero && noreply);
        if !valid {
            return Command::Error { reply: reply::DELETE_USAGE, noreply };
        }
    }
    let key = t.get(1);
    if key.len() > KEY_MAX {
        return Command::Error { reply: reply::BAD_FORMAT, noreply };
    }
    Command::Delete { key, noreply }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Command<'_> {
        parse(s.as_bytes())
    }

    #[test]
    fn framing() {
        assert_eq!(frame(b"get a\r\nget b"), Frame::Line { len: 5, consumed: 7 });
        assert_eq!(frame(b"get a\n"), Frame::Line { len: 5, consumed: 6 });
        assert_eq!(frame(b"\r\n"), Frame::Line { len: 1, consumed: 2 });
        assert_eq!(frame(b"get a"), Frame::Incomplete);
        let long = vec![b'x'; 3000];
        assert_eq!(frame(&long), Frame::TooLong);
        let mut get = b"get ".to_vec();
        get.extend(std::iter::repeat_n(b'k', 3000));
        assert_eq!(frame(&get), Frame::Incomplete);
    }

    #[test]
    fn storage_commands() {
        assert_eq!(
            p("set k 5 10 3"),
            Command::Store(StoreCmd {
                kind: StoreKind::Set,
                key: b"k",
                flags: 5,
                exptime: 10,
                bytes: 3,
                cas: 0,
                noreply: false
            })
        );
        assert!(matches!(p("cas k 0 0 1 99 noreply"), Command::Store(StoreCmd { cas: 99, noreply: true, .. })));
        assert!(matches!(p("set k 0 0 1 garbage"), Command::Store(StoreCmd { noreply: false, .. })));
        assert_eq!(p("set k 0 0"), err(reply::ERROR));
        assert_eq!(p("set k 0 0 -1"), err(reply::BAD_FORMAT));
        assert_eq!(p("set k x 0 1"), err(reply::BAD_FORMAT));
        assert_eq!(p("set k 0 0 1 noreply extra"), err(reply::ERROR));
        let long = format!("set {} 0 0 1", "k".repeat(251));
        assert_eq!(parse(long.as_bytes()), err(reply::BAD_FORMAT));
    }

    #[test]
    fn retrieval_and_others() {
        assert_eq!(p("get a b"), Command::Get { cas: false, touch: None, keys: b" a b" });
        assert_eq!(keys(b"  a  b ").collect::<Vec<_>>(), vec![&b"a"[..], b"b"]);
        assert_eq!(p("get"), err(reply::ERROR));
        assert_eq!(p("gat 10 a"), Command::Get { cas: false, touch: Some(10), keys: b" a" });
        assert_eq!(p("gat x a"), err(reply::BAD_EXPTIME));
        assert_eq!(p("GET a"), err(reply::ERROR));
        assert_eq!(p(""), err(reply::ERROR));
        assert_eq!(p("delete k 0"), Command::Delete { key: b"k", noreply: false });
        assert_eq!(p("delete k 1"), err(reply::DELETE_USAGE));
        assert_eq!(p("delete k 0 noreply"), Command::Delete { key: b"k", noreply: true });
        assert_eq!(p("incr k abc noreply"), Command::Error { reply: reply::BAD_DELTA, noreply: true });
        assert_eq!(p("flush_all noreply"), Command::FlushAll { delay: 0, noreply: true });
        assert_eq!(p("flush_all x"), err(reply::BAD_EXPTIME));
        assert_eq!(p("verbosity"), err(reply::ERROR));
        assert_eq!(p("mn"), Command::MetaNoop);
        assert!(matches!(p("mg key v"), Command::Meta { cmd: b'g', .. }));
        assert_eq!(p("get a\0b"), Command::Get { cas: false, touch: None, keys: b" a" });
    }

    #[test]
    fn value_lines() {
        let mut out = Vec::new();
        encode::value_head(&mut out, b"k", 0, 0, None);
        encode::value_head(&mut out, b"key", u32::MAX, 1234567, Some(u64::MAX));
        encode::value_head(&mut out, b"x", 10, 9, Some(0));
        assert_eq!(out, b"VALUE k 0 0\r\nVALUE key 4294967295 1234567 18446744073709551615\r\nVALUE x 10 9 0\r\n");
    }

    #[test]
    fn get_fast_path_agrees_with_the_tokenizer() {
        let lines = [
            "get a",
            "gets a",
            "get a b c",
            "get  a",
            "get a ",
            "get ",
            "get  ",
            "gets ",
            "get",
            "gets",
            "get a  b",
            "gets  x y  ",
            "getx a",
            "get\ta",
            "get a\tb",
            "bget a",
            " get a",
        ];
        for l in lines {
            let line = l.as_bytes();
            if let Some(fast) = get_fast(line) {
                assert_eq!(fast, parse_tokens(line), "{l:?}");
            }
            assert_eq!(parse(line), parse_tokens(line), "{l:?}");
        }
        let long = format!("get {}", vec!["k"; 40].join(" "));
        assert_eq!(get_fast(long.as_bytes()), Some(parse_tokens(long.as_bytes())));
    }

    #[test]
    fn many_tokens() {
        let line = format!("get {}", (0..40).map(|i| format!("k{i}")).collect::<Vec<_>>().join(" "));
        let Command::Get { keys: k, .. } = parse(line.as_bytes()) else { panic!() };
        assert_eq!(keys(k).count(), 40);
        let line = format!("set k 0 0 1 {}", vec!["x"; 30].join(" "));
        assert_eq!(parse(line.as_bytes()), err(reply::ERROR));
    }
}

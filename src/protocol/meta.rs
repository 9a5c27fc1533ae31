//! Meta text protocol (`mg`, `ms`, `md`, `ma`, `mn`, `me`): request parser and
//! reply encoder, byte-compatible with memcached 1.6.18.
//!
//! Owns: splitting one meta command line into a typed [`MetaRequest`] that
//! borrows from the line, the exact 1.6.18 error for every malformed line
//! ([`MetaError::error_line`]), base64 (`b`) key decoding, and writing reply
//! lines with their return flags in the order 1.6.18 writes them.
//! Must not know: sockets, buffers beyond the one line, storage, clocks,
//! logging. Nothing here allocates except the caller-owned `Vec<u8>` that the
//! `encode_*` functions append to.
//!
//! Input is one command line without its trailing `\r\n` / `\n`. The line is
//! cut at its first NUL byte and split on spaces only (tabs belong to tokens),
//! as memcached's C tokenizer does. A `b` key is decoded by the parser into a
//! buffer inside the request ([`MetaRequest::key`]); the decoder is
//! memcached's lenient one (bytes outside the alphabet skipped), hand-written
//! because the `base64` crate rejects what memcached accepts.
//!
//! Rules taken from 1.6.18 (each checked against the real server):
//! - Flags are one byte plus an optional token glued on (`T30`, `Oabc`).
//!   Every command shares one flag table, so `mg foo F5` or `md foo v` are
//!   accepted and ignored; a repeated first byte, or one >= 0x7f, is
//!   `CLIENT_ERROR duplicate flag`.
//! - Flag errors are found left to right: unknown and duplicate flags stop at
//!   once; bad tokens are remembered and the last one wins. `md` and `ma`
//!   report every flag error as `CLIENT_ERROR invalid or duplicate flag`.
//! - At most 20 tokens counting memcached's terminal one: `mg`/`md`/`ma`
//!   take 17 flags at most, `ms` 16.
//! - An `ms` error found after `<datalen>` parsed makes the server discard
//!   `datalen + 2` payload bytes ([`ParseError::swallow`]); errors before
//!   that leave the payload to be read as the next command.
//! - An `O` token over 32 bytes is found by `mg` and `ma` only after they
//!   ran ([`MetaRequest::late_error`]).
//! - Return flags follow request order; `Z`, `X`, `W` come last in that
//!   order. `T`, `N` and `R` take effect where they stand, so `mg k t T30`
//!   shows the old TTL and `mg k T30 t` the new one; the `encode_*`
//!   functions walk the flags that way and report what changed
//!   ([`MgOutcome`], [`MaOutcome`]).
//!
//! Flags added after 1.6.18 are accepted by [`Dialect::Extended`] (the
//! default) and listed by [`MetaRequest::post_1_6_18_flag`]: `E<cas>`
//! (mg/ms/md/ma), `x` (md); and with new meaning only: `s` on ms, `N` on ms
//! with mode `A`/`P`, `C` on mg. The request remembers its dialect, and the
//! encoders write the later replies only for extended requests: `s<size>` on
//! ms, and mg `C<cas>` turning a `VA` hit into `HD` when the CAS matches.
//! What `E`, `x` and ms `N` do to items is the dispatcher's business.

use super::num::{strtol32, strtoul32, strtoull};

/// Longest key accepted, measured before base64 decoding.
pub const KEY_MAX_LENGTH: usize = super::KEY_MAX;
/// Longest `O` token, the `O` included (so 31 bytes of opaque).
pub const MAX_OPAQUE_LENGTH: usize = 32;
/// Most flags one request can carry (17 for mg/md/ma, 16 for ms).
pub const MAX_FLAGS: usize = 17;
/// Longest key after base64 decoding: 248 significant chars -> 186 bytes.
pub const DECODED_KEY_MAX: usize = 186;
/// memcached refuses lines of 20 or more tokens (its `ntokens > 20` counts
/// the terminal empty token too).
const MAX_TOKENS: usize = 20;

/// Reply to `mn`.
pub const MN_REPLY: &[u8] = b"MN\r\n";
/// Reply to a miss of `me`.
pub const ME_MISS_REPLY: &[u8] = b"EN\r\n";
/// `ms` payload not ended by `\r\n`; sent even with `q`.
pub const BAD_DATA_CHUNK: &[u8] = b"CLIENT_ERROR bad data chunk\r\n";
/// `ms` item bigger than the item size limit (payload swallowed, old item
/// with that key deleted).
pub const OBJECT_TOO_LARGE: &[u8] = b"SERVER_ERROR object too large for cache\r\n";
/// `ms` could not get memory (payload swallowed, old item deleted).
pub const OUT_OF_MEMORY_STORING: &[u8] = b"SERVER_ERROR out of memory storing object\r\n";
/// `ma` on a value that is not a decimal u64.
pub const NON_NUMERIC_VALUE: &[u8] = b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
/// `ma` needing a bigger item and failing to get it.
pub const OUT_OF_MEMORY: &[u8] = b"SERVER_ERROR out of memory\r\n";

/// Which flag set to accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// Exactly 1.6.18: `E` and `x` are `CLIENT_ERROR invalid flag`.
    Memcached1_6_18,
    /// 1.6.18 plus the later flags `E<cas>` and `x`.
    Extended,
}

/// The six meta commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaCommand {
    /// `mg <key> <flag>*`
    Get,
    /// `ms <key> <datalen> <flag>*` followed by the payload.
    Set,
    /// `md <key> <flag>*`
    Delete,
    /// `ma <key> <flag>*`
    Arithmetic,
    /// `mn` (any further tokens are ignored)
    Noop,
    /// `me <key> [b]`
    Debug,
}

/// `ms` mode (`M` flag).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetMode {
    /// `MS` or no `M`: set (becomes cas when `C` is given).
    Set,
    /// `ME`: add.
    Add,
    /// `MR`: replace (becomes cas when `C` is given).
    Replace,
    /// `MA`: append (honours `C`).
    Append,
    /// `MP`: prepend (honours `C`).
    Prepend,
}

/// `ma` mode (`M` flag).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithMode {
    /// `MI`, `M+` or no `M`.
    Incr,
    /// `MD`, `M-`: floors at 0.
    Decr,
}

/// Every error the parser can report. Each maps to one exact 1.6.18 line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaError {
    /// `ERROR`: not a meta command, or no key (`mg`, `ms` alone).
    UnknownCommand,
    /// `CLIENT_ERROR bad command line format`: key over 250 bytes, `ms`
    /// without or with a bad `<datalen>`, `F` token not a u32, `me` without
    /// key or with an undecodable `b` key.
    BadFormat,
    /// `CLIENT_ERROR options flags are too long` (mg, 18+ flags).
    OptionsFlagsAreTooLong,
    /// `CLIENT_ERROR options flags too long` (ms 17+, md/ma 18+ flags).
    OptionsFlagsTooLong,
    /// `CLIENT_ERROR invalid flag` (mg, ms).
    InvalidFlag,
    /// `CLIENT_ERROR duplicate flag` (mg, ms).
    DuplicateFlag,
    /// `CLIENT_ERROR bad token in command line format`: `N`/`T`/`R` not an
    /// integer, `C` not a u64 (mg, ms).
    BadToken,
    /// `CLIENT_ERROR error decoding key` (mg, ms with `b`).
    ErrorDecodingKey,
    /// `CLIENT_ERROR incorrect length for M token` (mg, ms).
    IncorrectMLength,
    /// `CLIENT_ERROR invalid numeric initial value` (`J`; mg, ms).
    InvalidInitial,
    /// `CLIENT_ERROR invalid numeric delta value` (`D`; mg, ms).
    InvalidDelta,
    /// `CLIENT_ERROR invalid or duplicate flag`: any flag error of md, ma.
    InvalidOrDuplicateFlag,
    /// `CLIENT_ERROR invalid mode for ms M token`
    InvalidSetMode,
    /// `CLIENT_ERROR invalid mode for ma M token`
    InvalidArithMode,
    /// `CLIENT_ERROR opaque token too long` (`O` token over 32 bytes).
    OpaqueTooLong,
}

impl MetaError {
    /// The full reply line, `\r\n` included. Always sent, even with `q`.
    pub fn error_line(&self) -> &'static [u8] {
        match self {
            MetaError::UnknownCommand => b"ERROR\r\n",
            MetaError::BadFormat => b"CLIENT_ERROR bad command line format\r\n",
            MetaError::OptionsFlagsAreTooLong => b"CLIENT_ERROR options flags are too long\r\n",
            MetaError::OptionsFlagsTooLong => b"CLIENT_ERROR options flags too long\r\n",
            MetaError::InvalidFlag => b"CLIENT_ERROR invalid flag\r\n",
            MetaError::DuplicateFlag => b"CLIENT_ERROR duplicate flag\r\n",
            MetaError::BadToken => b"CLIENT_ERROR bad token in command line format\r\n",
            MetaError::ErrorDecodingKey => b"CLIENT_ERROR error decoding key\r\n",
            MetaError::IncorrectMLength => b"CLIENT_ERROR incorrect length for M token\r\n",
            MetaError::InvalidInitial => b"CLIENT_ERROR invalid numeric initial value\r\n",
            MetaError::InvalidDelta => b"CLIENT_ERROR invalid numeric delta value\r\n",
            MetaError::InvalidOrDuplicateFlag => b"CLIENT_ERROR invalid or duplicate flag\r\n",
            MetaError::InvalidSetMode => b"CLIENT_ERROR invalid mode for ms M token\r\n",
            MetaError::InvalidArithMode => b"CLIENT_ERROR invalid mode for ma M token\r\n",
            MetaError::OpaqueTooLong => b"CLIENT_ERROR opaque token too long\r\n",
        }
    }
}

/// A rejected line: the error to send and how many payload bytes follow it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// What to reply.
    pub error: MetaError,
    /// Bytes the caller must discard after the line (`datalen + 2`, without
    /// checking them), or 0. Only `ms` errors found after `<datalen>` parsed
    /// swallow; `ms` errors before that (bad key, too many flags, bad
    /// datalen) leave the payload to be parsed as a command.
    pub swallow: usize,
}

impl ParseError {
    /// Same as `self.error.error_line()`.
    pub fn error_line(&self) -> &'static [u8] {
        self.error.error_line()
    }

    fn plain(error: MetaError) -> Self {
        ParseError { error, swallow: 0 }
    }
}

/// One flag as sent: its byte and the token glued after it (may be empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flag<'a> {
    /// The flag byte, e.g. `b'T'`.
    pub code: u8,
    /// Bytes after the flag byte, e.g. `b"30"` for `T30`.
    pub token: &'a [u8],
}

/// The flags of one request: the raw list in request order plus the parsed
/// numbers. Numbers are parsed exactly as 1.6.18 does (C `strtol` family,
/// leading whitespace and sign accepted, trailing whitespace ends the
/// number): `T`/`N`/`R` go through a 64-bit `strtol` and are then truncated
/// to i32 (`T4294967346` = 50); `F` through `strtoul` truncated to u32
/// (`F4294967296` = 0, `F-1` rejected); `C`/`E`/`J`/`D` through `strtoull`.
#[derive(Clone, Copy, Debug)]
pub struct MetaFlags<'a> {
    list: [Flag<'a>; MAX_FLAGS],
    len: u8,
    seen: u128,
    /// `O` token without the `O`.
    pub opaque: Option<&'a [u8]>,
    /// `F`: client flags to store (0 when absent).
    pub client_flags: u32,
    /// `C`: compare CAS.
    pub compare_cas: Option<u64>,
    /// `E` (post-1.6.18): CAS to give the item if it is modified.
    pub new_cas: Option<u64>,
    /// `T`: TTL to set, already truncated to i32 like 1.6.18.
    pub ttl: Option<i32>,
    /// `N`: vivify-on-miss TTL.
    pub vivify_ttl: Option<i32>,
    /// `R`: recache threshold TTL.
    pub recache_ttl: Option<i32>,
    /// `J`: ma initial value (0 when absent).
    pub initial: u64,
    /// `D`: ma delta (1 when absent).
    pub delta: u64,
    /// `M`: the raw mode byte; see [`MetaRequest::set_mode`] /
    /// [`MetaRequest::arith_mode`].
    pub mode: Option<u8>,
}

impl<'a> MetaFlags<'a> {
    fn new() -> Self {
        MetaFlags {
            list: [Flag { code: 0, token: &[] }; MAX_FLAGS],
            len: 0,
            seen: 0,
            opaque: None,
            client_flags: 0,
            compare_cas: None,
            new_cas: None,
            ttl: None,
            vivify_ttl: None,
            recache_ttl: None,
            initial: 0,
            delta: 1,
            mode: None,
        }
    }

    /// The flags in request order.
    pub fn as_slice(&self) -> &[Flag<'a>] {
        &self.list[..self.len as usize]
    }

    /// Whether flag `code` was sent.
    pub fn has(&self, code: u8) -> bool {
        code < 128 && self.seen & (1u128 << code) != 0
    }

    /// Position of flag `code` in request order, to decide which of two
    /// order-sensitive flags acts first (e.g. `T` before `R` in mg).
    pub fn position(&self, code: u8) -> Option<usize> {
        self.as_slice().iter().position(|f| f.code == code)
    }

    /// `q`: hide the nominal reply (EN for mg, HD for ms/md/ma).
    pub fn quiet(&self) -> bool {
        self.has(b'q')
    }

    /// `v`: return the value.
    pub fn value(&self) -> bool {
        self.has(b'v')
    }

    /// `u`: do not bump in the LRU, do not mark fetched / accessed.
    pub fn no_bump(&self) -> bool {
        self.has(b'u')
    }

    /// `I`: invalidate (ms with `C`, md).
    pub fn invalidate(&self) -> bool {
        self.has(b'I')
    }

    fn push(&mut self, code: u8, token: &'a [u8]) {
        self.list[self.len as usize] = Flag { code, token };
        self.len += 1;
        self.seen |= 1u128 << code;
    }
}

/// A parsed meta request borrowing from the line.
#[derive(Clone, Copy, Debug)]
pub struct MetaRequest<'a> {
    /// Which command.
    pub command: MetaCommand,
    raw_key: &'a [u8],
    decoded: [u8; DECODED_KEY_MAX],
    decoded_len: u8,
    binary: bool,
    late_error: Option<MetaError>,
    dialect: Dialect,
    /// `ms` payload length without its `\r\n` (0 for other commands).
    pub datalen: u32,
    /// The flags (empty for mn; for me only `b`).
    pub flags: MetaFlags<'a>,
}

impl<'a> MetaRequest<'a> {
    /// The key to look up: base64-decoded when `b` was given.
    pub fn key(&self) -> &[u8] {
        if self.binary {
            &self.decoded[..self.decoded_len as usize]
        } else {
            self.raw_key
        }
    }

    /// The key token as sent.
    pub fn raw_key(&self) -> &'a [u8] {
        self.raw_key
    }

    /// The flag set this request was parsed with.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// `b` was given: the key was base64. An `ms` with `b` stores a
    /// "binary key" item (its `k` is echoed base64 with a ` b` after it).
    pub fn key_is_binary(&self) -> bool {
        self.binary
    }

    /// Bytes to read after the line for `ms`: `datalen + 2`.
    pub fn payload_len(&self) -> usize {
        self.datalen as usize + 2
    }

    /// `ms` mode (validated by the parser).
    pub fn set_mode(&self) -> SetMode {
        match self.flags.mode {
            Some(b'E') => SetMode::Add,
            Some(b'R') => SetMode::Replace,
            Some(b'A') => SetMode::Append,
            Some(b'P') => SetMode::Prepend,
            _ => SetMode::Set,
        }
    }

    /// `ma` mode (validated by the parser).
    pub fn arith_mode(&self) -> ArithMode {
        match self.flags.mode {
            Some(b'D') | Some(b'-') => ArithMode::Decr,
            _ => ArithMode::Incr,
        }
    }

    /// An error 1.6.18 reports only after executing the command: an `O`
    /// token over [`MAX_OPAQUE_LENGTH`] on `mg` or `ma`. The request is
    /// valid otherwise; run it as usual (mg: fetch, vivify with `N`,
    /// LRU bump when no `h`/`l`/`N`/`R`/`T` is present; ma: the arithmetic or
    /// the `N` creation) and the `encode_mg_*` / `encode_ma_*` functions
    /// write this error instead of the reply (even with `q`), apply only the
    /// flags before the long `O` ([`MetaRequest::applied_flags`]) and hand
    /// out no win token. `md` and `ms` report the same error from [`parse`].
    pub fn late_error(&self) -> Option<MetaError> {
        self.late_error
    }

    /// The flags 1.6.18 acts on while writing the reply: all of them, or
    /// those before the too-long `O` when [`MetaRequest::late_error`] is set.
    pub fn applied_flags(&self) -> &[Flag<'a>] {
        let all = self.flags.as_slice();
        if self.late_error.is_none() {
            return all;
        }
        let cut = all.iter().position(|f| f.code == b'O' && f.token.len() + 1 > MAX_OPAQUE_LENGTH).unwrap_or(all.len());
        &all[..cut]
    }

    /// The first flag whose meaning is newer than 1.6.18, if any: `E`, `x`
    /// (1.6.18 rejects them), `s` on ms (1.6.18 ignores it; later versions
    /// return `s<size>`), `N` on ms with mode A/P (1.6.18 ignores it; later
    /// versions autovivify), `C` on mg (1.6.18 ignores it).
    pub fn post_1_6_18_flag(&self) -> Option<u8> {
        let cmd = self.command;
        let append_mode = matches!(self.set_mode(), SetMode::Append | SetMode::Prepend);
        self.flags.as_slice().iter().map(|f| f.code).find(|&c| match c {
            b'E' | b'x' => true,
            b's' => cmd == MetaCommand::Set,
            b'N' => cmd == MetaCommand::Set && append_mode,
            b'C' => cmd == MetaCommand::Get,
            _ => false,
        })
    }
}

/// Parse one meta command line with the [`Dialect::Extended`] flag set.
pub fn parse(line: &[u8]) -> Result<MetaRequest<'_>, ParseError> {
    parse_with(line, Dialect::Extended)
}

/// Parse one meta command line (no trailing `\r\n`).
pub fn parse_with(line: &[u8], dialect: Dialect) -> Result<MetaRequest<'_>, ParseError> {
    // memcached handles the line as a C string.
    let line = match line.iter().position(|&b| b == 0) {
        Some(nul) => &line[..nul],
        None => line,
    };
    let mut toks: [&[u8]; MAX_TOKENS] = [&[]; MAX_TOKENS];
    let mut n = 0;
    for tok in line.split(|&b| b == b' ').filter(|t| !t.is_empty()) {
        if n == MAX_TOKENS {
            break; // n == MAX_TOKENS already means "too many"
        }
        toks[n] = tok;
        n += 1;
    }
    let command = match toks[0] {
        b"mg" => MetaCommand::Get,
        b"ms" => MetaCommand::Set,
        b"md" => MetaCommand::Delete,
        b"ma" => MetaCommand::Arithmetic,
        b"mn" => MetaCommand::Noop,
        b"me" => MetaCommand::Debug,
        _ => return Err(ParseError::plain(MetaError::UnknownCommand)),
    };
    let mut req = MetaRequest {
        command,
        raw_key: &[],
        decoded: [0; DECODED_KEY_MAX],
        decoded_len: 0,
        binary: false,
        late_error: None,
        dialect,
        datalen: 0,
        flags: MetaFlags::new(),
    };
    match command {
        MetaCommand::Noop => return Ok(req),
        MetaCommand::Debug => {
            if n < 2 || toks[1].len() > KEY_MAX_LENGTH {
                return Err(ParseError::plain(MetaError::BadFormat));
            }
            req.raw_key = toks[1];
            if n >= 3 && toks[2] == b"b" {
                if !req.decode_key() {
                    return Err(ParseError::plain(MetaError::BadFormat));
                }
                req.flags.push(b'b', &[]);
            }
            return Ok(req);
        }
        _ => {}
    }
    if n < 2 {
        return Err(ParseError::plain(MetaError::UnknownCommand));
    }
    req.raw_key = toks[1];
    if toks[1].len() > KEY_MAX_LENGTH || (command == MetaCommand::Set && n == 2) {
        return Err(ParseError::plain(MetaError::BadFormat));
    }
    if n >= MAX_TOKENS {
        let e = if command == MetaCommand::Get {
            MetaError::OptionsFlagsAreTooLong
        } else {
            MetaError::OptionsFlagsTooLong
        };
        return Err(ParseError::plain(e));
    }
    let mut first_flag = 2;
    let mut swallow = 0;
    if command == MetaCommand::Set {
        // 1.6.18 truncates to i32: "4294967298" reads 2 bytes.
        match strtol32(toks[2]) {
            Some(v) if (0..=i32::MAX - 2).contains(&v) => req.datalen = v as u32,
            _ => return Err(ParseError::plain(MetaError::BadFormat)),
        }
        first_flag = 3;
        swallow = req.payload_len();
    }
    let fail = |error| ParseError { error, swallow };
    if let Err(e) = req.preparse(&toks[first_flag..n], dialect) {
        return Err(match command {
            MetaCommand::Delete | MetaCommand::Arithmetic => fail(MetaError::InvalidOrDuplicateFlag),
            _ => fail(e),
        });
    }
    let opaque_too_long = req.flags.opaque.is_some_and(|o| o.len() + 1 > MAX_OPAQUE_LENGTH);
    let bad_mode = match command {
        MetaCommand::Set => !matches!(req.flags.mode, None | Some(b'E' | b'A' | b'P' | b'R' | b'S')),
        MetaCommand::Arithmetic => !matches!(req.flags.mode, None | Some(b'I' | b'+' | b'D' | b'-')),
        _ => false,
    };
    if bad_mode {
        let e = if command == MetaCommand::Set { MetaError::InvalidSetMode } else { MetaError::InvalidArithMode };
        return Err(fail(e));
    }
    if opaque_too_long {
        // mg and ma find a long opaque only while writing the reply, after
        // the command ran; md and ms reject it before touching anything.
        if matches!(command, MetaCommand::Get | MetaCommand::Arithmetic) {
            req.late_error = Some(MetaError::OpaqueTooLong);
        } else {
            return Err(fail(MetaError::OpaqueTooLong));
        }
    }
    Ok(req)
}

impl<'a> MetaRequest<'a> {
    /// Decode `raw_key` into `decoded`; false if memcached would fail.
    fn decode_key(&mut self) -> bool {
        match base64_decode(self.raw_key, &mut self.decoded) {
            Some(len) => {
                self.decoded_len = len as u8;
                self.binary = true;
                true
            }
            None => false,
        }
    }

    /// memcached's `_meta_flag_preparse`: fatal errors return at once,
    /// token errors are remembered (last wins) and reported at the end.
    fn preparse(&mut self, toks: &[&'a [u8]], dialect: Dialect) -> Result<(), MetaError> {
        let mut has_error = false;
        let mut err = MetaError::BadFormat;
        let newer = dialect == Dialect::Extended;
        for &tok in toks {
            let code = tok[0];
            if code >= 127 || self.flags.has(code) {
                return Err(MetaError::DuplicateFlag);
            }
            let arg = &tok[1..];
            let mut bad = |e: Option<MetaError>| {
                has_error = true;
                if let Some(e) = e {
                    err = e;
                }
            };
            match code {
                b'b' => {
                    if !self.decode_key() {
                        bad(Some(MetaError::ErrorDecodingKey));
                    }
                }
                b'N' | b'T' | b'R' => match strtol32(arg) {
                    Some(v) => match code {
                        b'N' => self.flags.vivify_ttl = Some(v),
                        b'T' => self.flags.ttl = Some(v),
                        _ => self.flags.recache_ttl = Some(v),
                    },
                    None => bad(Some(MetaError::BadToken)),
                },
                b'O' => self.flags.opaque = Some(arg),
                b'P' | b'L' | b'k' | b's' | b't' | b'c' | b'f' | b'v' | b'h' | b'l' | b'u' | b'q' | b'I' => {}
                b'F' => match strtoul32(arg) {
                    Some(v) => self.flags.client_flags = v,
                    None => bad(None),
                },
                b'C' => match strtoull(arg) {
                    Some(v) => self.flags.compare_cas = Some(v),
                    None => bad(Some(MetaError::BadToken)),
                },
                b'E' if newer => match strtoull(arg) {
                    Some(v) => self.flags.new_cas = Some(v),
                    None => bad(Some(MetaError::BadToken)),
                },
                b'x' if newer => {}
                b'M' => {
                    if tok.len() != 2 {
                        bad(Some(MetaError::IncorrectMLength));
                    } else {
                        self.flags.mode = Some(tok[1]);
                    }
                }
                b'J' => match strtoull(arg) {
                    Some(v) => self.flags.initial = v,
                    None => bad(Some(MetaError::InvalidInitial)),
                },
                b'D' => match strtoull(arg) {
                    Some(v) => self.flags.delta = v,
                    None => bad(Some(MetaError::InvalidDelta)),
                },
                _ => return Err(MetaError::InvalidFlag),
            }
            self.flags.push(code, arg);
        }
        if has_error {
            Err(err)
        } else {
            Ok(())
        }
    }
}

// -------------------------------------------------------------- base64 --

const B64_TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        b'=' => Some(0),
        _ => None,
    }
}

/// memcached's lenient decoder (base64.c): bytes outside the alphabet are
/// skipped, `=` counts as a zero digit, the number of alphabet bytes must be
/// a non-zero multiple of 4, decoding stops after the first block holding
/// padding (1 or 2 `=` drop 1 or 2 bytes, more is an error). Returns the
/// decoded length, or None where memcached returns 0.
fn base64_decode(src: &[u8], out: &mut [u8; DECODED_KEY_MAX]) -> Option<usize> {
    let count = src.iter().filter(|&&c| b64_value(c).is_some()).count();
    if count == 0 || count % 4 != 0 || count / 4 * 3 > out.len() {
        return None;
    }
    let mut pos = 0;
    let mut block = [0u8; 4];
    let mut n = 0;
    let mut pad = 0;
    for &c in src {
        let Some(v) = b64_value(c) else { continue };
        if c == b'=' {
            pad += 1;
        }
        block[n] = v;
        n += 1;
        if n == 4 {
            out[pos] = (block[0] << 2) | (block[1] >> 4);
            out[pos + 1] = (block[1] << 4) | (block[2] >> 2);
            out[pos + 2] = (block[2] << 6) | block[3];
            pos += 3;
            n = 0;
            if pad > 0 {
                match pad {
                    1 => pos -= 1,
                    2 => pos -= 2,
                    _ => return None,
                }
                break;
            }
        }
    }
    if pos == 0 {
        None
    } else {
        Some(pos)
    }
}

/// Standard padded base64 (memcached's encoder), appended to `out`.
pub fn base64_encode(src: &[u8], out: &mut Vec<u8>) {
    let t = B64_TABLE;
    let mut chunks = src.chunks_exact(3);
    for c in &mut chunks {
        out.extend_from_slice(&[
            t[(c[0] >> 2) as usize],
            t[(((c[0] & 0x03) << 4) | (c[1] >> 4)) as usize],
            t[(((c[1] & 0x0f) << 2) | (c[2] >> 6)) as usize],
            t[(c[2] & 0x3f) as usize],
        ]);
    }
    match *chunks.remainder() {
        [a] => out.extend_from_slice(&[t[(a >> 2) as usize], t[((a & 0x03) << 4) as usize], b'=', b'=']),
        [a, b] => out.extend_from_slice(&[
            t[(a >> 2) as usize],
            t[(((a & 0x03) << 4) | (b >> 4)) as usize],
            t[((b & 0x0f) << 2) as usize],
            b'=',
        ]),
        _ => {}
    }
}

// ------------------------------------------------------------ encoding --

/// The times one request works with, on the server clock (memcached's
/// `rel_time_t`: seconds since the server's epoch; as an exptime, 0 means
/// "never"). The dispatcher converts the `T`/`N`/`R` tokens
/// ([`MetaFlags::ttl`], [`MetaFlags::vivify_ttl`], [`MetaFlags::recache_ttl`])
/// with the same rule as classic exptimes (memcached `realtime()`, negative =
/// already expired); the encoders then compare and print exactly as 1.6.18.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReqTimes {
    /// Current server time.
    pub now: u32,
    /// `T` as an exptime (unused without `T`).
    pub ttl: u32,
    /// `N` as an exptime (unused without `N`).
    pub vivify: u32,
    /// `R` as an exptime (unused without `R`).
    pub recache: u32,
}

/// An `mg` hit as the item was before the reply loop (after a vivify).
#[derive(Clone, Copy, Debug)]
pub struct MgItem<'k> {
    /// Stored key bytes.
    pub key: &'k [u8],
    /// Stored by `ms ... b`, so `k` prints it base64 with a ` b` after it.
    /// Items created by `mg N` are never marked (1.6.18 then echoes the
    /// decoded bytes raw), nor by `ma N`.
    pub key_binary: bool,
    /// `c`
    pub cas: u64,
    /// `f`
    pub client_flags: u32,
    /// `s`, and the size in `VA <size>`.
    pub value_len: u32,
    /// Exptime before this request (0 = never; 0 too for an item `N` just
    /// created).
    pub exptime: u32,
    /// Last access time before this request's bump (`l` = now - time).
    pub time: u32,
    /// `h`: fetched before this request.
    pub fetched: bool,
    /// A win token was handed out before (prints `Z`).
    pub token_sent: bool,
    /// Marked stale by `md I` / `ms I` (prints `X`).
    pub stale: bool,
    /// This request created the item with `N`.
    pub created: bool,
}

/// What an `mg` hit does to its item; apply it after the reply is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MgOutcome {
    /// New exptime (unchanged unless `T`, or `N` on a created item).
    pub exptime: u32,
    /// Reply carries `W`: set the item's token-sent bit.
    pub won: bool,
    /// `T` was applied: 1.6.18 counts the request as a touch
    /// (`touch_cmds`, `touch_hits`) instead of a get.
    pub touched: bool,
    /// Bump the item: LRU bump, fetched bit, last-access update (memcached
    /// skips a bump within 60 s of the last one). False with `u`.
    pub bump: bool,
    /// The caller must now append the value and `\r\n` (`v`, no error).
    pub value: bool,
}

/// Decimal digits of `v` in a stack buffer: `(buf, start)`.
fn fmt_u64(mut v: u64) -> ([u8; 20], usize) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return (buf, i);
        }
    }
}

fn push_u64(out: &mut Vec<u8>, v: u64) {
    let (buf, start) = fmt_u64(v);
    out.extend_from_slice(&buf[start..]);
}

fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

/// ` t<remaining>`: `-1` for never, else `exptime - now` as a wrapping u32
/// (an exptime in the past prints as a number near 2^32, as in 1.6.18).
fn push_ttl(out: &mut Vec<u8>, exptime: u32, now: u32) {
    out.extend_from_slice(b" t");
    if exptime == 0 {
        out.extend_from_slice(b"-1");
    } else {
        push_u64(out, u64::from(exptime.wrapping_sub(now)));
    }
}

/// ` k<key>`, or ` k<base64> b` for a binary key (memcached's META_KEY).
fn push_key(out: &mut Vec<u8>, key: &[u8], binary: bool) {
    out.extend_from_slice(b" k");
    if binary {
        base64_encode(key, out);
        out.extend_from_slice(b" b");
    } else {
        out.extend_from_slice(key);
    }
}

fn push_opaque(out: &mut Vec<u8>, token: &[u8]) {
    out.extend_from_slice(b" O");
    out.extend_from_slice(token);
}

/// ` O…` and ` k…` (request key) in request order: all that misses and md
/// replies carry.
fn push_opaque_and_key(out: &mut Vec<u8>, req: &MetaRequest<'_>) {
    for f in req.flags.as_slice() {
        match f.code {
            b'O' => push_opaque(out, f.token),
            b'k' => push_key(out, req.key(), req.key_is_binary()),
            _ => {}
        }
    }
}

/// Replace whatever this reply wrote with the late error line.
fn late_error_reply(out: &mut Vec<u8>, reply_start: usize, err: MetaError) {
    out.truncate(reply_start);
    out.extend_from_slice(err.error_line());
}

/// `mg` hit: `VA <size> <flags>\r\n` (with `v`) or `HD <flags>\r\n`; never
/// hidden by `q`. Walks the flags in request order as 1.6.18 does: `T` sets
/// the exptime, `N` (created item only) sets it and wins, `R` wins if no
/// token is out, the item was not created, it has an exptime and that
/// exptime is before the `R` time, all evaluated where they stand (so
/// `t T30` prints the old TTL and `T30 t` the new one); `s t c f l h O k`
/// print; other flags print nothing. Then ` Z` (token already out), ` X`
/// (stale; a stale item with no token out also wins), ` W` (won).
///
/// Extended requests only: `C<cas>` equal to the item's CAS drops the value
/// (the client's copy is current), so the reply is `HD` even with `v`.
pub fn encode_mg_hit(out: &mut Vec<u8>, req: &MetaRequest<'_>, item: &MgItem<'_>, times: &ReqTimes) -> MgOutcome {
    let start = out.len();
    let no_bump = req.flags.no_bump();
    let unchanged = req.dialect == Dialect::Extended && req.flags.compare_cas == Some(item.cas);
    let value = req.flags.value() && !unchanged;
    let mut res = MgOutcome { exptime: item.exptime, won: false, touched: false, bump: !no_bump, value };
    if res.value {
        out.extend_from_slice(b"VA ");
        push_u64(out, u64::from(item.value_len));
    } else {
        out.extend_from_slice(b"HD");
    }
    for f in req.applied_flags() {
        match f.code {
            b'T' => {
                res.exptime = times.ttl;
                res.touched = true;
            }
            b'N' if item.created => {
                res.exptime = times.vivify;
                res.won = true;
            }
            b'R' if !item.token_sent && !item.created && res.exptime != 0 && res.exptime < times.recache => {
                res.won = true;
            }
            b's' => {
                out.extend_from_slice(b" s");
                push_u64(out, u64::from(item.value_len));
            }
            b't' => push_ttl(out, res.exptime, times.now),
            b'c' => {
                out.extend_from_slice(b" c");
                push_u64(out, item.cas);
            }
            b'f' => {
                out.extend_from_slice(b" f");
                push_u64(out, u64::from(item.client_flags));
            }
            b'l' => {
                out.extend_from_slice(b" l");
                push_u64(out, u64::from(times.now.wrapping_sub(item.time)));
            }
            b'h' => out.extend_from_slice(if item.fetched { b" h1" } else { b" h0" }),
            b'O' => push_opaque(out, f.token),
            b'k' => push_key(out, item.key, item.key_binary),
            _ => {}
        }
    }
    if let Some(err) = req.late_error() {
        // 1.6.18 bumps up front unless a flag made it lock the item; the
        // delayed bump of the locked path is skipped by the error.
        let locked = [b'h', b'l', b'N', b'R', b'T'].iter().any(|&c| req.flags.has(c));
        res.bump = !no_bump && !locked;
        res.won = false;
        res.value = false;
        late_error_reply(out, start, err);
        return res;
    }
    if item.token_sent {
        out.extend_from_slice(b" Z");
    }
    if item.stale {
        out.extend_from_slice(b" X");
        if !item.token_sent {
            res.won = true;
        }
    }
    if res.won {
        out.extend_from_slice(b" W");
    }
    out.extend_from_slice(b"\r\n");
    res
}

/// `mg` miss: `EN` + `O`/`k` in request order (`k` re-encodes a `b` key in
/// canonical base64). Writes nothing with `q`; returns whether it wrote.
pub fn encode_mg_miss(out: &mut Vec<u8>, req: &MetaRequest<'_>) -> bool {
    if let Some(err) = req.late_error() {
        out.extend_from_slice(err.error_line());
        return true;
    }
    if req.flags.quiet() {
        return false;
    }
    out.extend_from_slice(b"EN");
    push_opaque_and_key(out, req);
    out.extend_from_slice(b"\r\n");
    true
}

/// Outcome of an `ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetStatus {
    /// `HD` (hidden by `q`)
    Stored,
    /// `NS`: add on existing, replace/append/prepend on missing.
    NotStored,
    /// `EX`: CAS mismatch.
    Exists,
    /// `NF`: CAS given (set/replace mode), item missing.
    NotFound,
}

/// `ms` reply: code + `O`, `k`, `c<cas>` in request order, on every outcome
/// (`cas` = the stored item's CAS, 0 when not stored: 1.6.18 prints `c0`).
/// Other flags (`s` `t` `f` `v` …) print nothing in 1.6.18; an extended
/// request also prints `s<size>` (`size` = the stored value's length, the
/// new total after append/prepend, else the payload length). Writes nothing
/// for `Stored` with `q`; returns whether it wrote.
pub fn encode_ms(out: &mut Vec<u8>, req: &MetaRequest<'_>, status: SetStatus, cas: u64, size: usize) -> bool {
    if status == SetStatus::Stored && req.flags.quiet() {
        return false;
    }
    out.extend_from_slice(match status {
        SetStatus::Stored => b"HD",
        SetStatus::NotStored => b"NS",
        SetStatus::Exists => b"EX",
        SetStatus::NotFound => b"NF",
    });
    for f in req.flags.as_slice() {
        match f.code {
            b'O' => push_opaque(out, f.token),
            b'k' => push_key(out, req.key(), req.key_is_binary()),
            b'c' => {
                out.extend_from_slice(b" c");
                push_u64(out, cas);
            }
            b's' if req.dialect == Dialect::Extended => {
                out.extend_from_slice(b" s");
                push_u64(out, size as u64);
            }
            _ => {}
        }
    }
    out.extend_from_slice(b"\r\n");
    true
}

/// Outcome of an `md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteStatus {
    /// `HD`: deleted, or marked stale with `I` (hidden by `q`).
    Deleted,
    /// `NF`
    NotFound,
    /// `EX`: `C` mismatch (`C0` included: md compares even a zero CAS).
    Exists,
}

/// `md` reply: code + `O`/`k` in request order. Writes nothing for
/// `Deleted` with `q`; returns whether it wrote.
pub fn encode_md(out: &mut Vec<u8>, req: &MetaRequest<'_>, status: DeleteStatus) -> bool {
    if status == DeleteStatus::Deleted && req.flags.quiet() {
        return false;
    }
    out.extend_from_slice(match status {
        DeleteStatus::Deleted => b"HD",
        DeleteStatus::NotFound => b"NF",
        DeleteStatus::Exists => b"EX",
    });
    push_opaque_and_key(out, req);
    out.extend_from_slice(b"\r\n");
    true
}

/// A successful `ma`: the item after the arithmetic or the `N` creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaItem {
    /// New value.
    pub value: u64,
    /// `c`: CAS after the operation.
    pub cas: u64,
    /// Exptime before the reply loop (0 for an item `N` just created).
    pub exptime: u32,
    /// Created by `N` on a miss (such replies are not hidden by `q`).
    pub created: bool,
}

/// What an `ma` reply did to the item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaOutcome {
    /// New exptime: `T` and (created item only) `N` act where they stand.
    pub exptime: u32,
    /// Whether anything was written.
    pub wrote: bool,
}

/// `ma` success: `VA <len> <flags>\r\n<value>\r\n` with `v`, else
/// `HD <flags>\r\n`; return flags `c` `t` `O` `k` (request key) in request
/// order. With `q` an update of an existing item writes nothing (even with
/// `v`); a creation by `N` is still sent.
pub fn encode_ma_hit(out: &mut Vec<u8>, req: &MetaRequest<'_>, item: &MaItem, times: &ReqTimes) -> MaOutcome {
    let start = out.len();
    let mut res = MaOutcome { exptime: item.exptime, wrote: true };
    let (num, num_start) = fmt_u64(item.value);
    let digits = &num[num_start..];
    if req.flags.value() {
        out.extend_from_slice(b"VA ");
        push_u64(out, digits.len() as u64);
    } else {
        out.extend_from_slice(b"HD");
    }
    for f in req.applied_flags() {
        match f.code {
            b'c' => {
                out.extend_from_slice(b" c");
                push_u64(out, item.cas);
            }
            b't' => push_ttl(out, res.exptime, times.now),
            b'T' => res.exptime = times.ttl,
            b'N' if item.created => res.exptime = times.vivify,
            b'O' => push_opaque(out, f.token),
            b'k' => push_key(out, req.key(), req.key_is_binary()),
            _ => {}
        }
    }
    if let Some(err) = req.late_error() {
        late_error_reply(out, start, err);
        return res;
    }
    out.extend_from_slice(b"\r\n");
    if req.flags.value() {
        out.extend_from_slice(digits);
        out.extend_from_slice(b"\r\n");
    }
    if req.flags.quiet() && !item.created {
        out.truncate(start);
        res.wrote = false;
    }
    res
}

/// Failure of an `ma` without an error string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithMiss {
    /// `NF`: missing and no `N`.
    NotFound,
    /// `NS`: `N` given but the item could not be stored. 1.6.18 never
    /// actually sends it (it overwrites the code with `HD`).
    NotStored,
    /// `EX`: `C` mismatch (`C0` means "no compare" for ma).
    Exists,
}

/// `ma` failure: code + `O`/`k` in request order; never hidden by `q`.
pub fn encode_ma_miss(out: &mut Vec<u8>, req: &MetaRequest<'_>, miss: ArithMiss) {
    if let Some(err) = req.late_error() {
        out.extend_from_slice(err.error_line());
        return;
    }
    out.extend_from_slice(match miss {
        ArithMiss::NotFound => b"NF",
        ArithMiss::NotStored => b"NS",
        ArithMiss::Exists => b"EX",
    });
    push_opaque_and_key(out, req);
    out.extend_from_slice(b"\r\n");
}

/// Item facts for an `me` hit (server-clock times as in [`ReqTimes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeInfo {
    /// Current server time.
    pub now: u32,
    /// Exptime (0 = never).
    pub exptime: u32,
    /// Last access time.
    pub time: u32,
    /// CAS.
    pub cas: u64,
    /// Fetched before.
    pub fetched: bool,
    /// Slab class id.
    pub cls: u32,
    /// Total item size in the server's accounting (memcached: header + key
    /// + suffix + value + CRLF).
    pub size: u64,
}

/// `me` hit: `ME <key> exp=… la=… cas=… fetch=yes|no cls=… size=…\r\n`.
/// 1.6.18 prints `exp=` as `now - exptime` (minus the remaining TTL), or -1
/// for "never". The key is printed base64 when the item is a binary-key
/// item, whatever the request said. `me` does not bump the item. For a
/// miss send [`ME_MISS_REPLY`].
pub fn encode_me(out: &mut Vec<u8>, key: &[u8], key_binary: bool, info: &MeInfo) {
    out.extend_from_slice(b"ME ");
    if key_binary {
        base64_encode(key, out);
    } else {
        out.extend_from_slice(key);
    }
    out.extend_from_slice(b" exp=");
    if info.exptime == 0 {
        out.extend_from_slice(b"-1");
    } else {
        push_i64(out, i64::from(info.now.wrapping_sub(info.exptime) as i32));
    }
    out.extend_from_slice(b" la=");
    push_u64(out, u64::from(info.now.wrapping_sub(info.time)));
    out.extend_from_slice(b" cas=");
    push_u64(out, info.cas);
    out.extend_from_slice(if info.fetched { b" fetch=yes" } else { b" fetch=no" });
    out.extend_from_slice(b" cls=");
    push_u64(out, u64::from(info.cls));
    out.extend_from_slice(b" size=");
    push_u64(out, info.size);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> MetaRequest<'_> {
        ok_bytes(line.as_bytes())
    }

    fn ok_bytes(line: &[u8]) -> MetaRequest<'_> {
        match parse(line) {
            Ok(r) => r,
            Err(e) => panic!("{:?}: {:?}", String::from_utf8_lossy(line), e),
        }
    }

    fn err(line: &str) -> ParseError {
        err_bytes(line.as_bytes())
    }

    fn err_bytes(line: &[u8]) -> ParseError {
        match parse(line) {
            Ok(r) => panic!("{:?} parsed as {:?}", String::from_utf8_lossy(line), r.command),
            Err(e) => e,
        }
    }

    /// The error line as text, without CRLF.
    fn reply(line: &str) -> String {
        let e = err(line);
        let s = String::from_utf8(e.error_line().to_vec()).unwrap();
        s.strip_suffix("\r\n").unwrap().to_string()
    }

    fn codes(r: &MetaRequest<'_>) -> String {
        r.flags.as_slice().iter().map(|f| f.code as char).collect()
    }

    fn s(v: &[u8]) -> String {
        String::from_utf8_lossy(v).into_owned()
    }

    fn rep(n: usize, c: char) -> String {
        std::iter::repeat_n(c, n).collect()
    }

    // ------------------------------------------------------------ parsing --

    #[test]
    fn every_command() {
        let r = ok("mg foo");
        assert_eq!((r.command, r.key(), r.raw_key()), (MetaCommand::Get, &b"foo"[..], &b"foo"[..]));
        let r = ok("ms foo 2");
        assert_eq!((r.command, r.datalen, r.payload_len()), (MetaCommand::Set, 2, 4));
        assert_eq!(ok("ms foo 0").payload_len(), 2);
        assert_eq!(ok("md foo").command, MetaCommand::Delete);
        assert_eq!(ok("ma foo").command, MetaCommand::Arithmetic);
        assert_eq!(ok("mn").command, MetaCommand::Noop);
        // mn ignores everything after it, even too many tokens
        assert_eq!(ok(&format!("mn {}", rep(30, 'x').replace('x', "x "))).command, MetaCommand::Noop);
        let r = ok("me foo");
        assert_eq!((r.command, r.key()), (MetaCommand::Debug, &b"foo"[..]));
        // me ignores tokens other than an exact third token "b"
        assert!(!ok("me foo x y").key_is_binary());
        assert!(!ok("me foo bx").key_is_binary());
    }

    #[test]
    fn not_meta_or_no_key_is_error() {
        for line in ["", "mg", "mg ", "ms", "md", "ma", "mz foo", "mgx foo", "MG foo", "m foo", "\0mg foo"] {
            assert_eq!(err(line).error, MetaError::UnknownCommand, "{line:?}");
            assert_eq!(reply(line), "ERROR");
        }
        // me without a key is a CLIENT_ERROR, not ERROR
        assert_eq!(reply("me"), "CLIENT_ERROR bad command line format");
        assert_eq!(reply("me "), "CLIENT_ERROR bad command line format");
    }

    #[test]
    fn whitespace_tab_and_nul() {
        let r = ok("  mg   foo   v   t  ");
        assert_eq!((r.key(), codes(&r).as_str()), (&b"foo"[..], "vt"));
        assert_eq!(ok("mg a\tb v").key(), b"a\tb"); // tab is part of the key
        assert_eq!(err("mg foo \tv").error, MetaError::InvalidFlag); // flag byte is '\t'
                                                                     // the line is a C string: parsing stops at NUL
        assert_eq!(codes(&ok_bytes(b"mg foo t\0 f")), "t");
        assert_eq!(codes(&ok_bytes(b"mg foo \0 junk junk")), "");
        // a trailing '\r' left by the framer belongs to the last token
        assert_eq!(ok_bytes(b"mg foo T5\r").flags.ttl, Some(5));
        assert_eq!(ok_bytes(b"mg foo\r").key(), b"foo\r");
    }

    #[test]
    fn flags_are_parsed_and_kept_in_order() {
        let r = ok("mg Zm9v b c f h k l Oabc q s t u v N30 R5 T-1 P/x");
        assert_eq!(codes(&r), "bcfhklOqstuvNRTP");
        assert_eq!(r.key(), b"foo");
        assert_eq!(r.raw_key(), b"Zm9v");
        assert!(r.key_is_binary());
        assert_eq!(r.flags.opaque, Some(&b"abc"[..]));
        assert_eq!((r.flags.vivify_ttl, r.flags.recache_ttl, r.flags.ttl), (Some(30), Some(5), Some(-1)));
        assert!(r.flags.quiet() && r.flags.value() && r.flags.no_bump());
        assert_eq!(r.flags.position(b'N'), Some(12));
        assert!(r.flags.position(b'N') < r.flags.position(b'T'));
        assert_eq!(r.flags.as_slice()[15], Flag { code: b'P', token: b"/x" });
        let r = ok("ms foo 2 C7 F9 MR I Lp T0 c k O1");
        assert_eq!(codes(&r), "CFMILTckO");
        assert_eq!((r.flags.compare_cas, r.flags.client_flags, r.flags.ttl), (Some(7), 9, Some(0)));
        assert!(r.flags.invalidate());
        assert_eq!(r.set_mode(), SetMode::Replace);
        let r = ok("ma foo N0 J10 D5 MD T9 c t v k O2 q");
        assert_eq!((r.flags.initial, r.flags.delta, r.arith_mode()), (10, 5, ArithMode::Decr));
        let r = ok("ma foo");
        assert_eq!((r.flags.initial, r.flags.delta, r.arith_mode()), (0, 1, ArithMode::Incr));
        // every command accepts every 1.6.18 flag (one shared table)
        assert_eq!(codes(&ok("mg foo F5 C1 MX J1 D1 I")), "FCMJDI");
        assert_eq!(codes(&ok("md foo v s t f h l u N1 R1 J1 D1 F1 MZ")), "vstfhluNRJDFM");
        // flag tokens after no-token flags are ignored
        assert_eq!(ok("mg foo vv kxyz").flags.as_slice()[1], Flag { code: b'k', token: b"xyz" });
    }

    #[test]
    fn modes() {
        for (m, mode) in [
            ("", SetMode::Set),
            (" MS", SetMode::Set),
            (" ME", SetMode::Add),
            (" MR", SetMode::Replace),
            (" MA", SetMode::Append),
            (" MP", SetMode::Prepend),
        ] {
            assert_eq!(ok(&format!("ms foo 2{m}")).set_mode(), mode);
        }
        for (m, mode) in [
            ("", ArithMode::Incr),
            (" MI", ArithMode::Incr),
            (" M+", ArithMode::Incr),
            (" MD", ArithMode::Decr),
            (" M-", ArithMode::Decr),
        ] {
            assert_eq!(ok(&format!("ma foo{m}")).arith_mode(), mode);
        }
        // lowercase modes are invalid in 1.6.18
        for m in ["Ms", "Me", "Ma", "Mr", "Mp", "MX", "MI"] {
            assert_eq!(reply(&format!("ms foo 2 {m}")), "CLIENT_ERROR invalid mode for ms M token");
        }
        for m in ["Mi", "Md", "MX", "MS"] {
            assert_eq!(reply(&format!("ma foo {m}")), "CLIENT_ERROR invalid mode for ma M token");
        }
        // mg and md never look at the mode
        ok("mg foo MX");
        ok("md foo MX");
        // wrong length: preparse error
        assert_eq!(reply("ms foo 2 MSS"), "CLIENT_ERROR incorrect length for M token");
        assert_eq!(reply("ms foo 2 M"), "CLIENT_ERROR incorrect length for M token");
        assert_eq!(reply("mg foo Mxx"), "CLIENT_ERROR incorrect length for M token");
        assert_eq!(reply("ma foo MII"), "CLIENT_ERROR invalid or duplicate flag");
    }

    #[test]
    fn numbers_like_memcached() {
        // T/N/R: 64-bit strtol then truncated to i32
        assert_eq!(ok("mg foo T4294967346").flags.ttl, Some(50));
        assert_eq!(ok("mg foo T-4294967296").flags.ttl, Some(0));
        assert_eq!(ok("mg foo T2147483648").flags.ttl, Some(i32::MIN));
        assert_eq!(ok("mg foo T+50").flags.ttl, Some(50));
        assert_eq!(ok("mg foo T50\txyz").flags.ttl, Some(50)); // whitespace ends the number
        assert_eq!(ok("mg foo T\t7").flags.ttl, Some(7)); // leading whitespace skipped
        assert_eq!(ok("mg foo T-9223372036854775808").flags.ttl, Some(0));
        for bad in ["T", "T9223372036854775808", "T-9223372036854775809", "Tabc", "T5x", "T+", "T-", "N", "Rx"] {
            assert_eq!(reply(&format!("mg foo {bad}")), "CLIENT_ERROR bad token in command line format", "{bad}");
        }
        // F: strtoul truncated to u32; a '-' is refused only when the
        // result is "negative"
        assert_eq!(ok("ms foo 2 F4294967296").flags.client_flags, 0);
        assert_eq!(ok("ms foo 2 F4294967295").flags.client_flags, u32::MAX);
        assert_eq!(ok("ms foo 2 F-0").flags.client_flags, 0);
        assert_eq!(ok("ms foo 2 F-18446744073709551615").flags.client_flags, 1);
        for bad in ["F-1", "Fx", "F", "F18446744073709551616", "F1.5"] {
            assert_eq!(reply(&format!("ms foo 2 {bad}")), "CLIENT_ERROR bad command line format", "{bad}");
        }
        // C/J/D: strtoull
        assert_eq!(ok("ms foo 2 C18446744073709551615").flags.compare_cas, Some(u64::MAX));
        assert_eq!(reply("ms foo 2 C-1"), "CLIENT_ERROR bad token in command line format");
        assert_eq!(reply("ms foo 2 C18446744073709551616"), "CLIENT_ERROR bad token in command line format");
        assert_eq!(reply("ms foo 2 Cx"), "CLIENT_ERROR bad token in command line format");
        assert_eq!(ok("ma foo J18446744073709551615 N0").flags.initial, u64::MAX);
        assert_eq!(reply("mg foo Jx"), "CLIENT_ERROR invalid numeric initial value");
        assert_eq!(reply("mg foo Dx"), "CLIENT_ERROR invalid numeric delta value");
        assert_eq!(reply("ma foo Dabc"), "CLIENT_ERROR invalid or duplicate flag");
        assert_eq!(reply("ma foo D-1"), "CLIENT_ERROR invalid or duplicate flag");
        assert_eq!(reply("ma foo Jx N0"), "CLIENT_ERROR invalid or duplicate flag");
        // datalen: same strtol + i32 truncation, then 0..=INT_MAX-2
        assert_eq!(ok("ms foo 4294967298").datalen, 2);
        assert_eq!(ok("ms foo 2147483645").datalen, 2147483645);
        assert_eq!(ok("ms foo +3").datalen, 3);
        for bad in ["ms foo", "ms foo bar", "ms foo -1", "ms foo 3x", "ms foo 2147483646", "ms foo 2147483648"] {
            let e = err(bad);
            assert_eq!((e.error, e.swallow), (MetaError::BadFormat, 0), "{bad}");
        }
    }

    #[test]
    fn keys_250_and_251() {
        let k250 = rep(250, 'a');
        let k251 = rep(251, 'a');
        for cmd in ["mg", "md", "ma", "me"] {
            assert_eq!(ok(&format!("{cmd} {k250}")).key().len(), 250);
            let e = err(&format!("{cmd} {k251} k"));
            assert_eq!((e.error, e.swallow), (MetaError::BadFormat, 0), "{cmd}");
        }
        assert_eq!(ok(&format!("ms {k250} 3")).key().len(), 250);
        // ms: payload NOT swallowed (it will be parsed as a command)
        let e = err(&format!("ms {k251} 3"));
        assert_eq!((e.error, e.swallow), (MetaError::BadFormat, 0));
        // the limit applies to the base64 text, not the decoded key
        let b251 = format!("{}=", rep(250, 'Q'));
        assert_eq!(reply(&format!("mg {b251} b")), "CLIENT_ERROR bad command line format");
        let b248 = rep(248, 'Q');
        assert_eq!(ok(&format!("mg {b248} b")).key().len(), 186);
    }

    #[test]
    fn too_many_tokens() {
        let flags = |n: usize| -> String {
            // distinct valid flags, none taking a token
            let pool =
                ["b=", "c", "f", "h", "k", "l", "q", "s", "t", "u", "v", "I", "P", "L", "O1", "N1", "R1", "T1", "C1"];
            pool[1..=n].join(" ")
        };
        assert_eq!(ok(&format!("mg foo {}", flags(17))).flags.as_slice().len(), 17);
        assert_eq!(reply(&format!("mg foo {}", flags(18))), "CLIENT_ERROR options flags are too long");
        assert_eq!(ok(&format!("md foo {}", flags(17))).flags.as_slice().len(), 17);
        assert_eq!(reply(&format!("md foo {}", flags(18))), "CLIENT_ERROR options flags too long");
        assert_eq!(ok(&format!("ma foo {}", flags(17))).flags.as_slice().len(), 17);
        assert_eq!(reply(&format!("ma foo {}", flags(18))), "CLIENT_ERROR options flags too long");
        assert_eq!(ok(&format!("ms foo 3 {}", flags(16))).flags.as_slice().len(), 16);
        let e = err(&format!("ms foo 3 {}", flags(17)));
        assert_eq!((e.error, e.swallow), (MetaError::OptionsFlagsTooLong, 0));
        // the count is of tokens, checked before any flag is looked at
        let junk: Vec<String> = (1..=18).map(|i| i.to_string()).collect();
        assert_eq!(reply(&format!("mg foo {}", junk.join(" "))), "CLIENT_ERROR options flags are too long");
        assert_eq!(reply(&format!("mg foo {}", junk[..17].join(" "))), "CLIENT_ERROR invalid flag");
        let many: Vec<String> = (1..=40).map(|i| i.to_string()).collect();
        assert_eq!(reply(&format!("ms foo 3 {}", many.join(" "))), "CLIENT_ERROR options flags too long");
        // key length is checked first
        assert_eq!(reply(&format!("mg {} {}", rep(251, 'k'), junk.join(" "))), "CLIENT_ERROR bad command line format");
        // me has no limit
        ok(&format!("me foo {}", many.join(" ")));
    }

    #[test]
    fn flag_errors_per_command() {
        // mg / ms report the precise error
        assert_eq!(reply("mg foo a"), "CLIENT_ERROR invalid flag");
        assert_eq!(reply("mg foo Z"), "CLIENT_ERROR invalid flag");
        assert_eq!(reply("mg foo v v"), "CLIENT_ERROR duplicate flag");
        assert_eq!(reply("mg foo O1 O2"), "CLIENT_ERROR duplicate flag");
        assert_eq!(reply("mg foo \x7fa"), "CLIENT_ERROR duplicate flag");
        assert_eq!(reply("mg foo \u{e9}"), "CLIENT_ERROR duplicate flag"); // first byte >= 0x7f
        assert_eq!(reply("mg foo Fx"), "CLIENT_ERROR bad command line format");
        assert_eq!(reply("mg foo Tabc"), "CLIENT_ERROR bad token in command line format");
        assert_eq!(reply("mg foo Nabc"), "CLIENT_ERROR bad token in command line format");
        assert_eq!(reply("mg foo Rabc"), "CLIENT_ERROR bad token in command line format");
        assert_eq!(reply("mg foo Cx"), "CLIENT_ERROR bad token in command line format");
        // md / ma fold every flag error into one string
        for line in [
            "md foo a",
            "md foo q q",
            "md foo Cx",
            "md foo Tx",
            "md !!!! b",
            "ma foo Z",
            "ma foo v v",
            "ma foo Tx",
            "ma !!!! b",
            "ma foo Mxx",
            "ma foo Fx",
        ] {
            assert_eq!(reply(line), "CLIENT_ERROR invalid or duplicate flag", "{line}");
        }
    }

    #[test]
    fn error_precedence_follows_memcached() {
        // token errors are remembered, the last message wins; F sets no message
        assert_eq!(reply("ms foo 3 Tx Fx"), "CLIENT_ERROR bad token in command line format");
        assert_eq!(reply("ms foo 3 Fx Tx"), "CLIENT_ERROR bad token in command line format");
        assert_eq!(reply("mg foo Tx Jx"), "CLIENT_ERROR invalid numeric initial value");
        assert_eq!(reply("mg foo Jx Tx"), "CLIENT_ERROR bad token in command line format");
        // unknown and duplicate flags stop at once and win over earlier token errors
        assert_eq!(reply("ms foo 3 Tx Z"), "CLIENT_ERROR invalid flag");
        assert_eq!(reply("mg foo Tx T1"), "CLIENT_ERROR duplicate flag");
        // ... but not over what comes after them
        assert_eq!(reply("mg foo Z Tx"), "CLIENT_ERROR invalid flag");
        // flag errors before mode errors before opaque errors (ms)
        let long = format!("O{}", rep(40, 'a'));
        assert_eq!(reply("ms foo 3 Tx MX"), "CLIENT_ERROR bad token in command line format");
        assert_eq!(reply(&format!("ms foo 3 MX {long}")), "CLIENT_ERROR invalid mode for ms M token");
        assert_eq!(reply(&format!("ms foo 3 {long}")), "CLIENT_ERROR opaque token too long");
        assert_eq!(reply(&format!("ma foo MX {long}")), "CLIENT_ERROR invalid mode for ma M token");
        assert_eq!(reply(&format!("md foo {long}")), "CLIENT_ERROR opaque token too long");
        // mg / ma: reported late, after the command ran
        for line in [format!("ma foo {long}"), format!("mg foo {long} q")] {
            assert_eq!(ok(&line).late_error(), Some(MetaError::OpaqueTooLong));
        }
        // any other error wins over the late one
        assert_eq!(reply(&format!("mg foo {long} Tx")), "CLIENT_ERROR bad token in command line format");
        // bad base64 is a token error, so a later unknown flag wins
        assert_eq!(reply("mg !!!! b"), "CLIENT_ERROR error decoding key");
        assert_eq!(reply("mg !!!! b Z"), "CLIENT_ERROR invalid flag");
    }

    #[test]
    fn opaque_length() {
        let o31 = format!("O{}", rep(31, 'x'));
        let o32 = format!("O{}", rep(32, 'x'));
        assert_eq!(ok(&format!("mg foo {o31}")).flags.opaque.unwrap().len(), 31);
        assert_eq!(ok(&format!("mg foo {o31}")).late_error(), None);
        assert_eq!(ok(&format!("mg foo {o32}")).late_error(), Some(MetaError::OpaqueTooLong));
        assert_eq!(reply(&format!("md foo {o32}")), "CLIENT_ERROR opaque token too long");
        assert_eq!(ok("mg foo O").flags.opaque, Some(&b""[..]));
    }

    #[test]
    fn ms_swallows_after_datalen() {
        for (line, e) in [
            ("ms foo 3 Z", MetaError::InvalidFlag),
            ("ms foo 3 k k", MetaError::DuplicateFlag),
            ("ms foo 3 Tx", MetaError::BadToken),
            ("ms foo 3 Fx", MetaError::BadFormat),
            ("ms foo 3 MX", MetaError::InvalidSetMode),
            ("ms foo 3 MSS", MetaError::IncorrectMLength),
            ("ms foo 3 Jx", MetaError::InvalidInitial),
            ("ms foo 3 Dx", MetaError::InvalidDelta),
            ("ms !!!! 3 b", MetaError::ErrorDecodingKey),
        ] {
            assert_eq!(err(line), ParseError { error: e, swallow: 5 }, "{line}");
        }
        assert_eq!(err("ms foo 0 Z").swallow, 2);
        // and nothing else swallows
        for line in ["mg foo Z", "md foo Z", "ma foo Z", "ms foo x Z", "ms foo"] {
            assert_eq!(err(line).swallow, 0, "{line}");
        }
    }

    #[test]
    fn base64_keys() {
        let key = |line: &str| ok(line).key().to_vec();
        assert_eq!(key("mg Zm9v b"), b"foo");
        assert_eq!(key("mg Zm9vYg== b"), b"foob");
        assert_eq!(key("mg Zm9vYn== b"), b"foob"); // non-canonical trailing bits
        assert_eq!(key("mg Zm8= b"), b"fo");
        assert_eq!(key("mg AA== b"), b"\0");
        assert_eq!(key("mg Zm9v!!!! b"), b"foo"); // bytes outside the alphabet are skipped
        assert_eq!(key("mg Zg==Zm9v b"), b"f"); // decoding stops after the padded block
        assert_eq!(key("mg Z=9v b"), b"d\x0f"); // '=' inside a block counts as padding
        assert_eq!(key("mg +/+/ b"), [0xfb, 0xff, 0xbf]);
        for bad in ["Zm9", "Zm9v!!Yn", "====", "A===", "!!!!", "Zm9vY"] {
            assert_eq!(reply(&format!("mg {bad} b")), "CLIENT_ERROR error decoding key", "{bad}");
            assert_eq!(reply(&format!("md {bad} b")), "CLIENT_ERROR invalid or duplicate flag", "{bad}");
            assert_eq!(reply(&format!("me {bad} b")), "CLIENT_ERROR bad command line format", "{bad}");
        }
        let r = ok("me Zm9v b");
        assert!(r.key_is_binary());
        assert_eq!(r.key(), b"foo");
        // decoded keys may hold spaces and CR/LF
        assert_eq!(key("ms YSBiDQo= 2 b"), b"a b\r\n");
        let mut out = Vec::new();
        for (raw, enc) in [(&b""[..], ""), (b"f", "Zg=="), (b"fo", "Zm8="), (b"foo", "Zm9v"), (b"foob", "Zm9vYg==")] {
            out.clear();
            base64_encode(raw, &mut out);
            assert_eq!(s(&out), enc);
        }
    }

    #[test]
    fn dialects_and_newer_flags() {
        fn strict(line: &str) -> Result<MetaRequest<'_>, ParseError> {
            parse_with(line.as_bytes(), Dialect::Memcached1_6_18)
        }
        assert_eq!(strict("mg foo E5").unwrap_err().error, MetaError::InvalidFlag);
        assert_eq!(strict("ms foo 3 E5").unwrap_err(), ParseError { error: MetaError::InvalidFlag, swallow: 5 });
        assert_eq!(strict("md foo x").unwrap_err().error, MetaError::InvalidOrDuplicateFlag);
        assert_eq!(strict("ma foo E1").unwrap_err().error, MetaError::InvalidOrDuplicateFlag);
        assert_eq!(strict("mg foo v").unwrap().command, MetaCommand::Get);
        let r = ok("ms foo 3 E99 c");
        assert_eq!((r.flags.new_cas, r.post_1_6_18_flag()), (Some(99), Some(b'E')));
        assert_eq!(ok("md foo q x").post_1_6_18_flag(), Some(b'x'));
        assert_eq!(reply("ms foo 3 Ex"), "CLIENT_ERROR bad token in command line format");
        assert_eq!(reply("md foo Ex"), "CLIENT_ERROR invalid or duplicate flag");
        // accepted by 1.6.18 but with a newer meaning
        assert_eq!(ok("ms foo 3 s").post_1_6_18_flag(), Some(b's'));
        assert_eq!(ok("ms foo 3 MA N30").post_1_6_18_flag(), Some(b'N'));
        assert_eq!(ok("ms foo 3 N30").post_1_6_18_flag(), None);
        assert_eq!(ok("mg foo C5").post_1_6_18_flag(), Some(b'C'));
        assert_eq!(ok("mg foo s v t N30 R3 T4").post_1_6_18_flag(), None);
        assert_eq!(ok("ma foo C5 N0").post_1_6_18_flag(), None);
    }

    #[test]
    fn every_error_line() {
        let all = [
            (MetaError::UnknownCommand, "ERROR"),
            (MetaError::BadFormat, "CLIENT_ERROR bad command line format"),
            (MetaError::OptionsFlagsAreTooLong, "CLIENT_ERROR options flags are too long"),
            (MetaError::OptionsFlagsTooLong, "CLIENT_ERROR options flags too long"),
            (MetaError::InvalidFlag, "CLIENT_ERROR invalid flag"),
            (MetaError::DuplicateFlag, "CLIENT_ERROR duplicate flag"),
            (MetaError::BadToken, "CLIENT_ERROR bad token in command line format"),
            (MetaError::ErrorDecodingKey, "CLIENT_ERROR error decoding key"),
            (MetaError::IncorrectMLength, "CLIENT_ERROR incorrect length for M token"),
            (MetaError::InvalidInitial, "CLIENT_ERROR invalid numeric initial value"),
            (MetaError::InvalidDelta, "CLIENT_ERROR invalid numeric delta value"),
            (MetaError::InvalidOrDuplicateFlag, "CLIENT_ERROR invalid or duplicate flag"),
            (MetaError::InvalidSetMode, "CLIENT_ERROR invalid mode for ms M token"),
            (MetaError::InvalidArithMode, "CLIENT_ERROR invalid mode for ma M token"),
            (MetaError::OpaqueTooLong, "CLIENT_ERROR opaque token too long"),
        ];
        for (e, text) in all {
            assert_eq!(s(e.error_line()), format!("{text}\r\n"));
            assert_eq!(ParseError { error: e, swallow: 0 }.error_line(), e.error_line());
        }
    }

    // ----------------------------------------------------------- encoding --

    const NOW: u32 = 1000;

    fn times() -> ReqTimes {
        ReqTimes { now: NOW, ttl: NOW + 10, vivify: NOW + 30, recache: NOW + 60 }
    }

    fn item(key: &[u8]) -> MgItem<'_> {
        MgItem {
            key,
            key_binary: false,
            cas: 2,
            client_flags: 5,
            value_len: 3,
            exptime: NOW + 100,
            time: NOW - 1,
            fetched: true,
            token_sent: false,
            stale: false,
            created: false,
        }
    }

    fn mg_hit(line: &str, it: &MgItem<'_>) -> String {
        mg_hit_full(line, it).0
    }

    fn mg_hit_full(line: &str, it: &MgItem<'_>) -> (String, MgOutcome) {
        let mut out = b"prev".to_vec();
        let o = encode_mg_hit(&mut out, &ok(line), it, &times());
        assert_eq!(&out[..4], b"prev");
        (s(&out[4..]), o)
    }

    #[test]
    fn mg_hit_flag_order_matches_memcached() {
        // 1.6.18: "mg foo v t c f k s O123 q" -> "VA 3 t100 c1 f5 kfoo s3 O123"
        assert_eq!(mg_hit("mg foo v t c f k s O123 q", &item(b"foo")), "VA 3 t100 c2 f5 kfoo s3 O123\r\n");
        assert_eq!(mg_hit("mg foo k v s t c f h l O1 q u P L", &item(b"foo")), "VA 3 kfoo s3 t100 c2 f5 h1 l1 O1\r\n");
        assert_eq!(mg_hit("mg foo", &item(b"foo")), "HD\r\n");
        assert_eq!(mg_hit("mg foo q", &item(b"foo")), "HD\r\n"); // q never hides a hit
        let mut it = item(b"foo");
        it.fetched = false;
        it.exptime = 0;
        assert_eq!(mg_hit("mg foo h t", &it), "HD h0 t-1\r\n");
        it.exptime = 1; // after "T-1": in the past, printed as a wrapped u32
        assert_eq!(mg_hit("mg foo t", &it), "HD t4294966297\r\n");
    }

    #[test]
    fn mg_outcome() {
        let (r, o) = mg_hit_full("mg foo v", &item(b"foo"));
        assert_eq!(r, "VA 3\r\n");
        assert_eq!(o, MgOutcome { exptime: NOW + 100, won: false, touched: false, bump: true, value: true });
        let (_, o) = mg_hit_full("mg foo u T10", &item(b"foo"));
        assert_eq!((o.exptime, o.touched, o.bump, o.value), (NOW + 10, true, false, false));
    }

    #[test]
    fn mg_ttl_changes_where_t_and_n_stand() {
        let it = item(b"foo");
        assert_eq!(mg_hit("mg foo t T10", &it), "HD t100\r\n");
        assert_eq!(mg_hit("mg foo T10 t", &it), "HD t10\r\n");
        // N only acts on an item this request created
        assert_eq!(mg_hit("mg foo N30 t", &it), "HD t100\r\n");
        let mut it = item(b"v2");
        it.created = true;
        it.exptime = 0;
        it.value_len = 0;
        // 1.6.18: "mg v2 t N30 q" -> "HD t-1 W"
        let (r, o) = mg_hit_full("mg v2 t N30 q", &it);
        assert_eq!((r.as_str(), o.exptime, o.won), ("HD t-1 W\r\n", NOW + 30, true));
        assert_eq!(mg_hit("mg v2 N30 t q", &it), "HD t30 W\r\n");
        assert_eq!(mg_hit("mg v2 N30 T10 t", &it), "HD t10 W\r\n");
        assert_eq!(mg_hit("mg v2 T10 N30 t", &it), "HD t30 W\r\n");
    }

    #[test]
    fn mg_recache() {
        // R60 against TTL 100: no win; against TTL 30: win
        let mut it = item(b"r");
        assert!(!mg_hit_full("mg r R60", &it).1.won);
        it.exptime = NOW + 30;
        let (r, o) = mg_hit_full("mg r R60 t", &it);
        assert_eq!((r.as_str(), o.won), ("HD t30 W\r\n", true));
        // T before R moves the exptime R looks at (times().ttl = now + 10)
        it.exptime = NOW + 100;
        assert!(mg_hit_full("mg r T10 R60", &it).1.won);
        assert!(!mg_hit_full("mg r R60 T10", &it).1.won);
        // token already out: Z, no W
        it.exptime = NOW + 30;
        it.token_sent = true;
        let (r, o) = mg_hit_full("mg r R60", &it);
        assert_eq!((r.as_str(), o.won), ("HD Z\r\n", false));
        // never-expiring items never win by R
        it.token_sent = false;
        it.exptime = 0;
        assert!(!mg_hit_full("mg r R60", &it).1.won);
        // a created item wins through N, never through R
        it.created = true;
        assert!(!mg_hit_full("mg r R60", &it).1.won);
    }

    #[test]
    fn mg_z_x_w_come_last() {
        let mut it = item(b"k1");
        it.value_len = 2;
        it.cas = 17;
        it.exptime = NOW + 30;
        it.stale = true;
        let (r, o) = mg_hit_full("mg k1 t c v", &it);
        assert_eq!((r.as_str(), o.won), ("VA 2 t30 c17 X W\r\n", true));
        it.token_sent = true;
        let (r, o) = mg_hit_full("mg k1 t c v", &it);
        assert_eq!((r.as_str(), o.won), ("VA 2 t30 c17 Z X\r\n", false));
        it.stale = false;
        assert_eq!(mg_hit("mg k1 O1 k", &it), "HD O1 kk1 Z\r\n");
    }

    #[test]
    fn binary_keys_are_echoed_base64() {
        let mut it = item(b"foob");
        it.key_binary = true;
        it.value_len = 2;
        assert_eq!(mg_hit("mg Zm9vYg== b k v O2", &it), "VA 2 kZm9vYg== b O2\r\n");
        // the item decides, not the request
        assert_eq!(mg_hit("mg foob k v", &it), "VA 2 kZm9vYg== b\r\n");
        it.key_binary = false; // e.g. created by "mg Zm9vYg== b N30 k"
        assert_eq!(mg_hit("mg Zm9vYg== b k v", &it), "VA 2 kfoob\r\n");
        // miss: re-encoded request key
        let mut out = Vec::new();
        assert!(encode_mg_miss(&mut out, &ok("mg Zg==Zm9v b k")));
        assert_eq!(s(&out), "EN kZg== b\r\n");
    }

    #[test]
    fn mg_miss_and_quiet() {
        let mut out = Vec::new();
        assert!(encode_mg_miss(&mut out, &ok("mg miss k O9 v t c")));
        assert_eq!(s(&out), "EN kmiss O9\r\n");
        out.clear();
        assert!(encode_mg_miss(&mut out, &ok("mg miss O9 k")));
        assert_eq!(s(&out), "EN O9 kmiss\r\n");
        out.clear();
        assert!(!encode_mg_miss(&mut out, &ok("mg miss q k")));
        assert!(out.is_empty());
    }

    #[test]
    fn long_opaque_is_a_late_error_for_mg_and_ma() {
        let long = format!("O{}", rep(32, 'a'));
        let line = format!("mg foo T10 v {long} N30 t q");
        let r = ok(&line);
        assert_eq!(r.late_error(), Some(MetaError::OpaqueTooLong));
        assert_eq!(codes(&r), "TvONtq");
        assert_eq!(r.applied_flags().len(), 2);
        let it = item(b"foo");
        let (reply, o) = mg_hit_full(&line, &it);
        assert_eq!(reply, "CLIENT_ERROR opaque token too long\r\n");
        // T before the O applied; locked path (T) skips the bump; no value
        assert_eq!(o, MgOutcome { exptime: NOW + 10, won: false, touched: true, bump: false, value: false });
        let (_, o) = mg_hit_full(&format!("mg foo {long}"), &it);
        assert!(o.bump);
        let mut c = it;
        c.created = true;
        c.exptime = 0;
        let (_, o) = mg_hit_full(&format!("mg foo N30 {long}"), &c);
        assert_eq!((o.exptime, o.won), (NOW + 30, false));
        let mut out = Vec::new();
        assert!(encode_mg_miss(&mut out, &ok(&format!("mg foo q {long}"))));
        assert_eq!(s(&out), "CLIENT_ERROR opaque token too long\r\n");
        // ma: runs, then errors (even with q)
        let line = format!("ma foo q v T10 {long} t");
        let r = ok(&line);
        out.clear();
        let m = MaItem { value: 13, cas: 3, exptime: 0, created: false };
        let o = encode_ma_hit(&mut out, &r, &m, &times());
        assert_eq!(s(&out), "CLIENT_ERROR opaque token too long\r\n");
        assert_eq!(o, MaOutcome { exptime: NOW + 10, wrote: true });
        out.clear();
        encode_ma_miss(&mut out, &r, ArithMiss::NotFound);
        assert_eq!(s(&out), "CLIENT_ERROR opaque token too long\r\n");
        // md and ms: plain parse errors (ms swallows the payload)
        assert_eq!(err(&format!("md foo {long}")).error, MetaError::OpaqueTooLong);
        assert_eq!(err(&format!("ms foo 2 {long}")), ParseError { error: MetaError::OpaqueTooLong, swallow: 4 });
        assert_eq!(ok("mg foo O1 v").applied_flags().len(), 2);
    }

    #[test]
    fn ms_replies() {
        let enc = |line: &str, st, cas| {
            let mut out = Vec::new();
            let req = parse_with(line.as_bytes(), Dialect::Memcached1_6_18).unwrap();
            let wrote = encode_ms(&mut out, &req, st, cas, 2);
            (wrote, s(&out))
        };
        // all recorded from 1.6.18
        assert_eq!(enc("ms k1 2 s t f h l v O5 k c u", SetStatus::Stored, 13), (true, "HD O5 kk1 c13\r\n".into()));
        assert_eq!(enc("ms k1 2 ME O6 c k", SetStatus::NotStored, 0), (true, "NS O6 c0 kk1\r\n".into()));
        assert_eq!(enc("ms k1 2 C1 c k O8", SetStatus::Exists, 0), (true, "EX c0 kk1 O8\r\n".into()));
        assert_eq!(enc("ms k9 2 C1 c k O8", SetStatus::NotFound, 0), (true, "NF c0 kk9 O8\r\n".into()));
        assert_eq!(enc("ms Zm9vYg== 2 b k O1 c", SetStatus::Stored, 30), (true, "HD kZm9vYg== b O1 c30\r\n".into()));
        assert_eq!(enc("ms k1 2 q", SetStatus::Stored, 1), (false, String::new()));
        assert_eq!(enc("ms k1 2 q ME", SetStatus::NotStored, 0), (true, "NS\r\n".into()));
        assert_eq!(enc("ms k1 2 q C1", SetStatus::Exists, 0), (true, "EX\r\n".into()));
    }

    #[test]
    fn extended_replies() {
        // ms s: the stored size, where it stands; 1.6.18 prints nothing for it
        let mut out = Vec::new();
        assert!(encode_ms(&mut out, &ok("ms k1 2 s k c MA"), SetStatus::Stored, 7, 12));
        assert!(encode_ms(&mut out, &ok("ms k1 2 c s"), SetStatus::NotStored, 0, 2));
        assert_eq!(s(&out), "HD s12 kk1 c7\r\nNS c0 s2\r\n");
        // mg C: a matching CAS drops the value; 1.6.18 ignores C on mg
        let it = item(b"foo");
        assert_eq!(
            mg_hit_full("mg foo v c C2", &it),
            ("HD c2\r\n".into(), MgOutcome { value: false, ..mg_hit_full("mg foo", &it).1 })
        );
        assert_eq!(mg_hit("mg foo v C3", &it), "VA 3\r\n");
        let strict = parse_with(b"mg foo v C2", Dialect::Memcached1_6_18).unwrap();
        out.clear();
        assert!(encode_mg_hit(&mut out, &strict, &it, &times()).value);
        assert_eq!(s(&out), "VA 3\r\n");
        assert_eq!(ok("mg foo").dialect(), Dialect::Extended);
    }

    #[test]
    fn md_replies() {
        let enc = |line: &str, st| {
            let mut out = Vec::new();
            let wrote = encode_md(&mut out, &ok(line), st);
            (wrote, s(&out))
        };
        assert_eq!(enc("md y1 O5 k", DeleteStatus::Deleted), (true, "HD O5 ky1\r\n".into()));
        assert_eq!(enc("md k1 O5 k c t f s v h l", DeleteStatus::NotFound), (true, "NF O5 kk1\r\n".into()));
        assert_eq!(enc("md k1 q C1 O1", DeleteStatus::NotFound), (true, "NF O1\r\n".into()));
        assert_eq!(enc("md k1 q C1 O1", DeleteStatus::Exists), (true, "EX O1\r\n".into()));
        assert_eq!(enc("md k1 I T30 q", DeleteStatus::Deleted), (false, String::new()));
        assert_eq!(enc("md Zm9vYw== b k", DeleteStatus::NotFound), (true, "NF kZm9vYw== b\r\n".into()));
    }

    #[test]
    fn ma_replies() {
        let enc = |line: &str, m: MaItem| {
            let mut out = Vec::new();
            let o = encode_ma_hit(&mut out, &ok(line), &m, &times());
            assert_eq!(o.wrote, !out.is_empty());
            (o, s(&out))
        };
        let m = MaItem { value: 9, cas: 48, exptime: 0, created: false };
        assert_eq!(enc("ma a1 v c t k O9", m).1, "VA 1 c48 t-1 ka1 O9\r\n9\r\n");
        assert_eq!(enc("ma a1", m).1, "HD\r\n");
        // q hides even VA, but T still applies
        assert_eq!(enc("ma n1 q v T10", m), (MaOutcome { exptime: NOW + 10, wrote: false }, String::new()));
        let c = MaItem { value: 0, cas: 3, exptime: 0, created: true };
        // creation is not hidden by q (1.6.18: "ma qv1 N0 q v" -> "VA 1 / 0")
        assert_eq!(enc("ma nx2 q N0 v", c).1, "VA 1\r\n0\r\n");
        assert_eq!(enc("ma Zm9vYw== b k N0 c", MaItem { cas: 31, ..c }).1, "HD kZm9vYw== b c31\r\n");
        // t before N shows the creation TTL (never), after N the N TTL
        assert_eq!(enc("ma nx t N30", c), (MaOutcome { exptime: NOW + 30, wrote: true }, "HD t-1\r\n".into()));
        assert_eq!(enc("ma nx N30 t", c).1, "HD t30\r\n");
        let m = MaItem { value: 12345678901234567890, cas: 1, exptime: NOW + 100, created: false };
        assert_eq!(enc("ma a1 t T200", m).1, "HD t100\r\n");
        assert_eq!(enc("ma a1 N5 t", m).1, "HD t100\r\n"); // N ignored on a hit
        assert_eq!(enc("ma a1 T10 t v", m).1, "VA 20 t10\r\n12345678901234567890\r\n");
        let mut out = Vec::new();
        encode_ma_miss(&mut out, &ok("ma nx q O1 k"), ArithMiss::NotFound);
        encode_ma_miss(&mut out, &ok("ma nx C1"), ArithMiss::Exists);
        encode_ma_miss(&mut out, &ok("ma nx N0"), ArithMiss::NotStored);
        assert_eq!(s(&out), "NF O1 knx\r\nEX\r\nNS\r\n");
    }

    #[test]
    fn me_replies() {
        let info = MeInfo { now: NOW, exptime: 0, time: NOW, cas: 31, fetched: false, cls: 1, size: 64 };
        let mut out = Vec::new();
        encode_me(&mut out, b"fooc", false, &info);
        encode_me(
            &mut out,
            b"foob",
            true,
            &MeInfo { exptime: NOW + 30, time: NOW - 87, fetched: true, size: 65, ..info },
        );
        out.extend_from_slice(ME_MISS_REPLY);
        out.extend_from_slice(MN_REPLY);
        assert_eq!(
            s(&out),
            "ME fooc exp=-1 la=0 cas=31 fetch=no cls=1 size=64\r\n\
             ME Zm9vYg== exp=-30 la=87 cas=31 fetch=yes cls=1 size=65\r\nEN\r\nMN\r\n"
        );
    }

    #[test]
    fn request_is_plain_data() {
        // no heap inside: the request is Copy and borrows the line
        fn assert_copy<T: Copy>() {}
        assert_copy::<MetaRequest<'static>>();
        assert!(std::mem::size_of::<MetaRequest<'static>>() < 1024);
    }
}

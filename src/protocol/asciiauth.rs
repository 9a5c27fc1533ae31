//! ASCII authentication (`-Y`): memcached's password-file format and its text login, as pure
//! functions over bytes.
//!
//! Owns: reading an authfile's bytes into at most [`MAX_ENTRIES`] borrowed `user:password`
//! entries exactly as memcached 1.6.18 reads them (line by line through a 256-byte `fgets`,
//! quirks included), and framing the input of a text connection that has not logged in yet:
//! the login is `set <any> <any> <any> <bytes>\r\n<user> <password>\r\n`, every other line is
//! refused. Knows no sockets, files, storage or counters; allocates nothing.

/// memcached reads at most this many entries; later lines are ignored.
pub const MAX_ENTRIES: usize = 8;
/// memcached reads the file with `fgets` into 256 bytes: a line is cut after 255 bytes.
const LINE_MAX: usize = 255;
/// A first line without a newline after this many bytes is junk: the connection is closed.
pub const JUNK_MAX: usize = 2048;
/// The login's data block plus its CRLF must fit memcached's 16 KB read buffer; a bigger one
/// closes the connection once that buffer would be full.
pub const TOKEN_MAX: usize = 16384;

/// The replies of the login exchange (success is the ordinary `STORED`).
pub mod reply {
    pub const STORED: &[u8] = b"STORED\r\n";
    pub const UNAUTHENTICATED: &[u8] = b"CLIENT_ERROR unauthenticated\r\n";
    pub const FAILURE: &[u8] = b"CLIENT_ERROR authentication failure\r\n";
    pub const BAD_TOKEN: &[u8] = b"CLIENT_ERROR bad authentication token format\r\n";
    pub const BAD_TERMINATION: &[u8] = b"CLIENT_ERROR bad command line termination\r\n";
}

/// The file has a line without a `:` (an empty line or a comment counts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed;

/// The entries read from an authfile, borrowing from its bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Entries<'a> {
    entries: [(&'a [u8], &'a [u8]); MAX_ENTRIES],
    len: usize,
}

impl<'a> Entries<'a> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `(user, password)` pairs in file order (a user may appear more than once; any of its
    /// passwords is accepted).
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + '_ {
        self.entries[..self.len].iter().copied()
    }
}

/// Read an authfile as memcached 1.6.18's `authfile_load` does. A line is `user:password`;
/// the password ends at CR, LF or NUL (so `:` may appear in it, and a NUL ends the file).
/// memcached reads each line with `fgets` into a buffer sized from the file, which makes the
/// first line lose its last byte when it is the whole file without a final newline (the
/// password `b` of a file `a:b` reads as empty); a line longer than 255 bytes is cut there
/// and ends the file; an empty file has no entries; an empty line is malformed.
pub fn parse_file(text: &[u8]) -> Result<Entries<'_>, Malformed> {
    let mut out = Entries::default();
    let size = text.len();
    // memcached's buffer is the file's size; each line is read where the previous line's
    // terminator was, so `room` shrinks by the length of each line minus its newline.
    let mut buffer_used = 0;
    let mut read = 0;
    loop {
        let room = (size - buffer_used).min(LINE_MAX + 1);
        if room == 0 {
            break;
        }
        // fgets(room): at most room - 1 bytes, through the first newline; at end of file it
        // reads nothing and stops (except with room 1, where it returns an empty string).
        let line = if room == 1 {
            &text[..0]
        } else {
            if read >= size {
                break;
            }
            let avail = &text[read..size.min(read + room - 1)];
            let n = memchr::memchr(b'\n', avail).map_or(avail.len(), |i| i + 1);
            read += n;
            &avail[..n]
        };
        // fgets ends the line with a NUL, which the scan below stops at.
        let at = |x: usize| line.get(x).copied().unwrap_or(0);
        let Some(colon) = (0..=line.len()).take_while(|&x| at(x) != 0).find(|&x| at(x) == b':') else {
            return Err(Malformed);
        };
        let end = (colon + 1..=line.len()).find(|&x| matches!(at(x), b'\n' | b'\r' | 0)).unwrap_or(line.len());
        out.entries[out.len] = (&line[..colon], &line[colon + 1..end]);
        out.len += 1;
        if out.len == MAX_ENTRIES || at(end) == 0 {
            break;
        }
        buffer_used += end;
    }
    Ok(out)
}

/// What a not-yet-authenticated connection's input holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Login<'a> {
    /// Not enough input; `need` is the total length required once known (else 0).
    Incomplete { need: usize },
    /// Junk without a newline, or more of a too-large data block than memcached buffers: close
    /// the connection.
    Close,
    /// Answer `reply`, drop `consumed` bytes, stay unauthenticated.
    Refused { consumed: usize, reply: &'static [u8] },
    /// A well-formed login: check these credentials, then drop `consumed` bytes.
    Credentials { consumed: usize, user: &'a [u8], pass: &'a [u8] },
}

/// C's `isspace` in the "C" locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// memcached's `safe_strtoul` (glibc `strtoul`, base 10, then the value cast to 32 bits):
/// leading white space and a sign are allowed, a digit must follow, and the number must end
/// the token or be followed by white space; a negative number is refused.
fn strtoul32(tok: &[u8]) -> Option<u32> {
    let mut i = tok.iter().take_while(|&&b| is_c_space(b)).count();
    let negative = tok.get(i) == Some(&b'-');
    if matches!(tok.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let digits = tok[i.min(tok.len())..].iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let mut v: u64 = 0;
    for &d in &tok[i..i + digits] {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?; // ERANGE
    }
    if tok.get(i + digits).is_some_and(|&b| !is_c_space(b)) || (negative && v != 0) {
        return None;
    }
    Some(v as u32)
}

/// Space-separated tokens (memcached's tokenizer splits on spaces only), of the bytes before
/// the first NUL (it works on C strings).
fn tokens(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    let s = &s[..memchr::memchr(0, s).unwrap_or(s.len())];
    s.split(|&b| b == b' ').filter(|t| !t.is_empty())
}

/// Frame the input of a connection that has not logged in, as memcached 1.6.18 does. The
/// first line must be `set` with at least four more tokens, the fourth of them the length of
/// the data block (the key, flags and exptime are ignored, and so is `noreply`); the block must
/// end with CRLF and hold at least two tokens, user and password (more are ignored).
pub fn login(input: &[u8]) -> Login<'_> {
    if input.len() < 2 {
        return Login::Incomplete { need: 0 };
    }
    let Some(nl) = memchr::memchr(b'\n', input) else {
        return if input.len() > JUNK_MAX { Login::Close } else { Login::Incomplete { need: 0 } };
    };
    let line = nl + 1;
    let mut t = tokens(&input[..nl]);
    let (cmd, size) = (t.next(), t.nth(3).and_then(strtoul32));
    let (Some(b"set"), Some(size)) = (cmd, size) else {
        return Login::Refused { consumed: line, reply: reply::UNAUTHENTICATED };
    };
    let block = size as usize + 2;
    let total = line + block.min(TOKEN_MAX);
    if input.len() < total {
        return Login::Incomplete { need: total };
    }
    if block > TOKEN_MAX {
        return Login::Close;
    }
    let data = &input[line..total];
    if &data[block - 2..] != b"\r\n" {
        return Login::Refused { consumed: total, reply: reply::BAD_TERMINATION };
    }
    let mut t = tokens(&data[..block - 2]);
    match (t.next(), t.next()) {
        (Some(user), Some(pass)) => Login::Credentials { consumed: total, user, pass },
        _ => Login::Refused { consumed: total, reply: reply::BAD_TOKEN },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &[u8]) -> Vec<(String, String)> {
        parse_file(text)
            .unwrap()
            .iter()
            .map(|(u, p)| (String::from_utf8_lossy(u).into_owned(), String::from_utf8_lossy(p).into_owned()))
            .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(u, p)| (u.to_string(), p.to_string())).collect()
    }

    #[test]
    fn file_format_as_memcached_reads_it() {
        assert_eq!(entries(b"foo:bar\nbaaaz:quux\n"), pairs(&[("foo", "bar"), ("baaaz", "quux")]));
        assert_eq!(entries(b"a:b\r\nc:d:e\n:empty\n"), pairs(&[("a", "b"), ("c", "d:e"), ("", "empty")]));
        assert_eq!(entries(b"a:b\nc:d"), pairs(&[("a", "b"), ("c", "d")]));
        // the one-line file without a newline loses its last byte (memcached's fgets sizing)
        assert_eq!(entries(b"a:bc"), pairs(&[("a", "b")]));
        assert_eq!(entries(b"a:bc\n"), pairs(&[("a", "bc")]));
        assert_eq!(entries(b""), pairs(&[]));
        // a NUL ends the password and the file
        assert_eq!(entries(b"a:b\0c\nd:e\n"), pairs(&[("a", "b")]));
        // only the first 8 entries count; a user may repeat
        let nine = b"a:1\na:2\nc:3\nd:4\ne:5\nf:6\ng:7\nh:8\ni:9\n";
        assert_eq!(entries(nine).len(), 8);
        assert_eq!(entries(nine)[1], ("a".to_string(), "2".to_string()));
        // a line is cut after 255 bytes and ends the file
        let mut long = b"u:".to_vec();
        long.extend(std::iter::repeat_n(b'p', 300));
        long.extend_from_slice(b"\nx:y\n");
        let e = entries(&long);
        assert_eq!((e.len(), e[0].1.len()), (1, 253));
    }

    #[test]
    fn malformed_files() {
        for bad in [&b"\n"[..], b"a:b\n\nc:d\n", b"#comment\na:b\n", b"nocolon\n", b"a\0:b\n", b"a:b\nxx\n"] {
            assert_eq!(parse_file(bad).unwrap_err(), Malformed, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    fn refused(input: &[u8]) -> (usize, &'static [u8]) {
        match login(input) {
            Login::Refused { consumed, reply } => (consumed, reply),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input)),
        }
    }

    #[test]
    fn login_exchange() {
        let ok = |input: &[u8], u: &[u8], p: &[u8]| {
            assert_eq!(login(input), Login::Credentials { consumed: input.len(), user: u, pass: p })
        };
        ok(b"set foo 0 0 7\r\nfoo bar\r\n", b"foo", b"bar");
        ok(b"set a b c 7 noreply\r\nfoo bar\r\n", b"foo", b"bar");
        ok(b"set foo 0 0 +9\r\n foo  bar\r\n", b"foo", b"bar");
        ok(b"set foo 0 0 11\nfoo bar baz\r\n", b"foo", b"bar");
        ok(b"set foo 0 0 8\r\nfoo bar\0\r\n", b"foo", b"bar");
        ok(b"set foo 0 0 7\r\r\nfoo bar\r\n", b"foo", b"bar");
        assert_eq!(refused(b"get foo\r\n"), (9, reply::UNAUTHENTICATED));
        assert_eq!(refused(b"SET foo 0 0 7\r\n"), (15, reply::UNAUTHENTICATED));
        assert_eq!(refused(b"set foo 0 0\r\nfoo bar\r\n"), (13, reply::UNAUTHENTICATED));
        assert_eq!(refused(b"set foo 0 0 -1\r\n"), (16, reply::UNAUTHENTICATED));
        assert_eq!(refused(b"set foo 0 0 7x\r\n"), (16, reply::UNAUTHENTICATED));
        assert_eq!(refused(b"\r\n"), (2, reply::UNAUTHENTICATED));
        assert_eq!(refused(b"set foo 0 0 7\r\nfooXbar\r\n"), (24, reply::BAD_TOKEN));
        assert_eq!(refused(b"set foo 0 0 0\r\n\r\n"), (17, reply::BAD_TOKEN));
        assert_eq!(refused(b"set foo 0 0 -0\r\n\r\n"), (18, reply::BAD_TOKEN));
        assert_eq!(refused(b"set foo 0 0 7\r\nfoo\tbar\r\n"), (24, reply::BAD_TOKEN));
        assert_eq!(refused(b"set foo 0 0 7\r\nfoo barXX"), (24, reply::BAD_TERMINATION));
        assert_eq!(login(b"\n"), Login::Incomplete { need: 0 });
        assert_eq!(login(b"set foo 0 0 7\r\nfoo"), Login::Incomplete { need: 24 });
        assert_eq!(login(&[b'x'; JUNK_MAX]), Login::Incomplete { need: 0 });
        assert_eq!(login(&[b'x'; JUNK_MAX + 1]), Login::Close);
        assert!(matches!(login(b"set foo 0 0 16382\r\n"), Login::Incomplete { need: 16403 }));
        assert_eq!(login(b"set foo 0 0 16383\r\n"), Login::Incomplete { need: 19 + TOKEN_MAX });
        let mut big = b"set foo 0 0 16383\r\n".to_vec();
        big.resize(19 + TOKEN_MAX, b' ');
        assert_eq!(login(&big), Login::Close);
    }
}

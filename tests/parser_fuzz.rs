//! A deterministic fuzz pass over the text parser, run by `cargo test` (the coverage-guided
//! targets in fuzz/ run the same invariants under cargo-fuzz).

use rustcached::protocol::metadump::{parse_classes, uri_decode, uri_encode};
use rustcached::protocol::text::{frame, keys, parse, Command, Frame};
use rustcached::protocol::KEY_MAX;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const SEEDS: &[&[u8]] = &[
    b"set k 0 0 1\r\nx\r\n",
    b"get a b c\r\n",
    b"gets a\r\n",
    b"gat 10 a b\r\n",
    b"cas k 1 2 3 4 noreply\r\n",
    b"incr k 18446744073709551615\r\n",
    b"delete k 0 noreply\r\n",
    b"touch k -1\r\n",
    b"flush_all 10 noreply\r\n",
    b"verbosity 1\r\n",
    b"stats detail dump\r\n",
    b"mg key v t c\r\n",
    b"lru_crawler sleep 100\r\n",
    b"lru_crawler metadump 1,,2\r\n",
    b"lru_crawler crawl all\r\n",
    b"lru tune 10 25 0.1 2.0 noreply\r\n",
    b"slabs automove 1\r\n",
    b"cache_memlimit 100\r\n",
];

const TOKENS: &[&[u8]] =
    &[b" ", b"\r", b"\n", b"\0", b"noreply", b"-1", b"4294967296", b"99999999999999999999", b"HTTP/1.1", b"\xff"];

#[test]
fn text_parser_invariants_hold_on_mutated_commands() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let long_key = vec![b'k'; KEY_MAX + 1];
    for _ in 0..50_000 {
        let mut input = SEEDS[rng.below(SEEDS.len())].to_vec();
        for _ in 0..rng.below(6) {
            let pos = rng.below(input.len() + 1);
            match rng.below(5) {
                0 => input.insert(pos, rng.next() as u8),
                1 if !input.is_empty() => {
                    input.remove(pos.min(input.len() - 1));
                }
                2 => {
                    let t = TOKENS[rng.below(TOKENS.len())];
                    input.splice(pos..pos, t.iter().copied());
                }
                3 => input.splice(pos..pos, long_key.iter().copied()).for_each(drop),
                _ => input.truncate(pos),
            }
        }
        check(&input);
    }
}

fn check(data: &[u8]) {
    match frame(data) {
        Frame::Line { len, consumed } => {
            assert!(len < consumed && consumed <= data.len());
            match parse(&data[..len]) {
                Command::Store(sc) => assert!(!sc.key.is_empty() && sc.key.len() <= KEY_MAX),
                Command::Get { keys: k, .. } => {
                    for key in keys(k) {
                        assert!(!key.is_empty() && !key.contains(&b' '));
                    }
                }
                Command::Delete { key, .. } | Command::Touch { key, .. } | Command::Arith { key, .. } => {
                    assert!(key.len() <= KEY_MAX)
                }
                Command::LruCrawler { arg, .. } => {
                    // class lists never select class 0; uri-encoding round-trips
                    if let Some(mask) = parse_classes(arg, true) {
                        assert_eq!(mask & 1, 0);
                    }
                    let mut enc = Vec::new();
                    uri_encode(arg, &mut enc);
                    assert!(enc.iter().all(|b| b.is_ascii_graphic()));
                    assert_eq!(uri_decode(&enc), arg);
                }
                Command::Error { reply, .. } => assert!(reply.ends_with(b"\r\n")),
                _ => {}
            }
        }
        Frame::Incomplete | Frame::TooLong => assert!(!data.contains(&b'\n')),
    }
}

/// UDP framing: random datagrams and random retrieval replies never panic, and the split
/// offsets always cover the reply in order.
#[test]
fn udp_framing_invariants_hold_on_random_bytes() {
    use rustcached::protocol::udp::{datagrams, parse_request, retrieval_last_key, split_retrieval};
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut ends = Vec::new();
    let pieces: &[&[u8]] = &[b"VALUE ", b"a ", b"0 ", b"2", b"5", b"\r\n", b"ab", b"END\r\n", b" ", b"x"];
    for _ in 0..20_000 {
        let mut d = Vec::new();
        for _ in 0..rng.below(12) {
            d.extend_from_slice(pieces[rng.below(pieces.len())]);
        }
        if let Some((_, body)) = parse_request(&d) {
            assert_eq!(body.len(), d.len() - 8);
        }
        let _ = retrieval_last_key(&d);
        split_retrieval(&d, b"a", &mut ends);
        assert!(!ends.is_empty() && *ends.last().unwrap() == d.len());
        assert!(ends.windows(2).all(|w| w[0] < w[1]), "{ends:?}");
        let mut total = 0;
        datagrams(1, &d, |g| {
            assert!(g.len() > 8 && g.len() <= 1400);
            total += g.len() - 8;
        });
        assert_eq!(total, d.len());
    }
}

/// The `--cluster-file` and `config set cluster` parsers (same invariants as fuzz/cluster.rs):
/// an accepted file has nodes with a host and a port, a refusal names a line of the file, and
/// an accepted payload is served back as the same bytes' meaning.
#[test]
fn cluster_parser_invariants_hold_on_mutated_files() {
    use rustcached::cluster::{encode_payload, parse, parse_payload};
    let mut rng = Rng(0x5851_f42d_4c95_7f2d);
    let seeds: &[&[u8]] = &[
        b"# nodes\nnode1|10.0.0.1|11211\n10.0.0.2:11212 # comment\n\n[::1]:11213\n",
        b"3\nnode1|10.0.0.1|11211 node2|10.0.0.2|11212\n",
        b"a:1\n",
    ];
    let pieces: &[&[u8]] =
        &[b"|", b":", b"#", b" ", b"\n", b"\r", b"[", b"]", b"0", b"65536", b"::", b"\xc3\xa9", b"\t"];
    for _ in 0..20_000 {
        let mut d = seeds[rng.below(seeds.len())].to_vec();
        for _ in 0..rng.below(5) {
            let pos = rng.below(d.len() + 1);
            match rng.below(3) {
                0 => d.splice(pos..pos, pieces[rng.below(pieces.len())].iter().copied()).for_each(drop),
                1 if !d.is_empty() => {
                    d.remove(pos.min(d.len() - 1));
                }
                _ => d.insert(pos, rng.next() as u8),
            }
        }
        if let Ok(text) = std::str::from_utf8(&d) {
            match parse(text) {
                Ok(nodes) => {
                    assert!(!nodes.is_empty());
                    for n in &nodes {
                        assert!(n.port != 0 && !n.host.is_empty(), "{text:?}");
                        assert!(!n.host.contains(|c: char| c.is_whitespace() || c == '|' || c == '#'), "{text:?}");
                    }
                }
                Err(e) => assert!(e.line >= 1 && e.line <= text.lines().count().max(1), "{text:?}: {e}"),
            }
        }
        if let Ok((version, members)) = parse_payload(&d) {
            let mut again = Vec::new();
            encode_payload(version, &members, &mut again);
            assert_eq!(parse_payload(&again), Ok((version, members)));
        }
    }
}

/// ASCII auth (`-Y`): mutated logins and password files through `protocol::asciiauth`.
/// Invariants: consumed bytes are within the input and every strict prefix of a complete
/// request is incomplete (or junk to close); credentials are non-empty tokens without spaces or
/// NULs; a file never yields more than 8 entries, users never hold `:` or NUL, passwords never
/// hold CR, LF or NUL.
#[test]
fn ascii_auth_parsers_invariants_hold_on_mutated_input() {
    use rustcached::protocol::asciiauth::{login, parse_file, Login, MAX_ENTRIES};
    const LOGINS: &[&[u8]] = &[
        b"set foo 0 0 7\r\nfoo bar\r\n",
        b"set a b c 11 noreply\r\nfoo bar baz\r\n",
        b"get foo\r\n",
        b"set foo 0 0 0\r\n\r\n",
        b"a:b\nc:d:e\r\n",
        b"u:p",
    ];
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for _ in 0..50_000 {
        let mut input = LOGINS[rng.below(LOGINS.len())].to_vec();
        for _ in 0..rng.below(6) {
            let pos = rng.below(input.len() + 1);
            match rng.below(4) {
                0 => input.insert(pos, rng.next() as u8),
                1 if !input.is_empty() => {
                    input.remove(pos.min(input.len() - 1));
                }
                _ => {
                    let t = [&b" "[..], b"\r\n", b"\n", b"\0", b":", b"-1", b"4294967296", b"16383"][rng.below(8)];
                    input.splice(pos..pos, t.iter().copied());
                }
            }
        }
        let consumed = match login(&input) {
            Login::Incomplete { need } => {
                assert!(need == 0 || need > input.len());
                None
            }
            Login::Close => None,
            Login::Refused { consumed, reply } => {
                assert!(reply.starts_with(b"CLIENT_ERROR ") && reply.ends_with(b"\r\n"));
                Some(consumed)
            }
            Login::Credentials { consumed, user, pass } => {
                for t in [user, pass] {
                    assert!(!t.is_empty() && !t.contains(&b' ') && !t.contains(&0));
                }
                Some(consumed)
            }
        };
        if let Some(n) = consumed {
            assert!(n <= input.len() && n > 0);
            assert!(matches!(login(&input[..n - 1]), Login::Incomplete { .. } | Login::Close));
        }
        if let Ok(entries) = parse_file(&input) {
            assert!(entries.len() <= MAX_ENTRIES);
            for (user, pass) in entries.iter() {
                assert!(!user.contains(&b':') && !user.contains(&0));
                assert!(!pass.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)));
            }
        }
    }
}

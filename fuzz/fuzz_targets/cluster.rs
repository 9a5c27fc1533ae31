//! Fuzz the `--cluster-file` parser and the `config set cluster` payload parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rustcached::cluster::{encode_payload, parse, parse_payload, Member};

fuzz_target!(|data: &[u8]| {
    // invariants shared with tests/parser_fuzz.rs
    if let Ok(text) = std::str::from_utf8(data) {
        match parse(text) {
            Ok(nodes) => {
                assert!(!nodes.is_empty());
                for n in &nodes {
                    assert!(n.port != 0 && !n.host.is_empty());
                    assert!(!n.host.contains(|c: char| c.is_whitespace() || c == '|' || c == '#'));
                }
            }
            Err(e) => assert!(e.line >= 1 && e.line <= text.lines().count().max(1)),
        }
    }
    if let Ok((version, members)) = parse_payload(data) {
        // what we accept, we serve back the same way
        let members: Vec<Member> = members;
        let mut again = Vec::new();
        encode_payload(version, &members, &mut again);
        assert_eq!(parse_payload(&again), Ok((version, members)));
    }
});

//! Fuzz the text protocol framing and parser with invariants, not just "no panic".
#![no_main]

use libfuzzer_sys::fuzz_target;
use rustcached::protocol::text::{frame, keys, parse, Command, Frame, LINE_MAX};
use rustcached::protocol::metadump::{parse_classes, uri_decode, uri_encode};
use rustcached::protocol::KEY_MAX;

fuzz_target!(|data: &[u8]| {
    match frame(data) {
        Frame::Line { len, consumed } => {
            assert!(len < consumed && consumed <= data.len());
            assert_eq!(data[consumed - 1], b'\n');
            // every strict prefix that cuts the line is incomplete (or too long)
            assert!(matches!(frame(&data[..consumed - 1]), Frame::Incomplete | Frame::TooLong));
            match parse(&data[..len]) {
                Command::Store(sc) => {
                    assert!(!sc.key.is_empty() && sc.key.len() <= KEY_MAX);
                    assert!(!sc.key.contains(&b' '));
                    assert!(sc.bytes <= i32::MAX as usize);
                }
                Command::Get { keys: k, .. } => {
                    for key in keys(k) {
                        assert!(!key.is_empty() && !key.contains(&b' '));
                    }
                }
                Command::Delete { key, .. } | Command::Touch { key, .. } | Command::Arith { key, .. } => {
                    assert!(key.len() <= KEY_MAX && !key.contains(&b' '));
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
        Frame::Incomplete => assert!(!data.contains(&b'\n')),
        Frame::TooLong => assert!(!data.contains(&b'\n') && data.len() > LINE_MAX),
    }
});

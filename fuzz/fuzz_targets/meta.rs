//! Fuzz the meta protocol parser and reply encoders with invariants, not just "no panic".
#![no_main]

use libfuzzer_sys::fuzz_target;
use rustcached::protocol::meta::{
    base64_encode, encode_ma_hit, encode_ma_miss, encode_md, encode_mg_hit, encode_mg_miss, encode_ms, parse_with,
    ArithMiss, DeleteStatus, Dialect, MaItem, MetaCommand, MetaError, MgItem, ReqTimes, SetStatus, DECODED_KEY_MAX,
    MAX_FLAGS,
};
use rustcached::protocol::KEY_MAX;

/// Every line an error may be, exactly.
const KNOWN: &[&[u8]] = &[
    b"ERROR\r\n",
    b"CLIENT_ERROR bad command line format\r\n",
    b"CLIENT_ERROR options flags are too long\r\n",
    b"CLIENT_ERROR options flags too long\r\n",
    b"CLIENT_ERROR invalid flag\r\n",
    b"CLIENT_ERROR duplicate flag\r\n",
    b"CLIENT_ERROR bad token in command line format\r\n",
    b"CLIENT_ERROR error decoding key\r\n",
    b"CLIENT_ERROR incorrect length for M token\r\n",
    b"CLIENT_ERROR invalid numeric initial value\r\n",
    b"CLIENT_ERROR invalid numeric delta value\r\n",
    b"CLIENT_ERROR invalid or duplicate flag\r\n",
    b"CLIENT_ERROR invalid mode for ms M token\r\n",
    b"CLIENT_ERROR invalid mode for ma M token\r\n",
    b"CLIENT_ERROR opaque token too long\r\n",
];

fn one_line(out: &[u8]) -> bool {
    out.ends_with(b"\r\n")
}

fuzz_target!(|data: &[u8]| {
    // The server hands the parser one line without its terminator.
    let line = match data.iter().position(|&b| b == b'\n') {
        Some(nl) => &data[..nl],
        None => data,
    };
    let strict = parse_with(line, Dialect::Memcached1_6_18);
    let extended = parse_with(line, Dialect::Extended);
    // The extended dialect only adds: whatever 1.6.18 accepts, it accepts the same way.
    if let Ok(s) = &strict {
        let e = extended.as_ref().expect("extended rejects a 1.6.18 line");
        assert_eq!(s.command, e.command);
        assert_eq!(s.key(), e.key());
        assert_eq!(s.flags.as_slice(), e.flags.as_slice());
        assert_eq!(s.late_error(), e.late_error());
    }
    for r in [strict, extended] {
        match r {
            Err(e) => {
                assert!(KNOWN.contains(&e.error_line()), "{:?}", String::from_utf8_lossy(e.error_line()));
                if e.swallow > 0 {
                    // only ms swallows, and only after a valid datalen
                    assert!(line.split(|&b| b == b' ').find(|t| !t.is_empty()) == Some(&b"ms"[..]));
                    assert!(e.swallow >= 2 && e.swallow <= i32::MAX as usize);
                }
            }
            Ok(req) => check_request(&req),
        }
    }
});

fn check_request(req: &rustcached::protocol::meta::MetaRequest<'_>) {
    let flags = req.flags.as_slice();
    assert!(flags.len() <= MAX_FLAGS);
    if req.command == MetaCommand::Noop {
        return;
    }
    let raw = req.raw_key();
    assert!(!raw.is_empty() && raw.len() <= KEY_MAX && !raw.contains(&b' ') && !raw.contains(&0));
    assert!(req.key().len() <= KEY_MAX);
    if req.key_is_binary() {
        assert!(!req.key().is_empty() && req.key().len() <= DECODED_KEY_MAX);
        // the canonical encoding decodes back to the same key
        let mut enc = Vec::new();
        base64_encode(req.key(), &mut enc);
        let mut line = b"mg ".to_vec();
        line.extend_from_slice(&enc);
        line.extend_from_slice(b" b");
        assert_eq!(parse_with(&line, Dialect::Extended).expect("canonical base64").key(), req.key());
    } else {
        assert_eq!(req.key(), raw);
    }
    if let Some(e) = req.late_error() {
        assert_eq!(e, MetaError::OpaqueTooLong);
        assert!(matches!(req.command, MetaCommand::Get | MetaCommand::Arithmetic));
    }
    if req.command == MetaCommand::Set {
        assert!(req.datalen <= i32::MAX as u32 - 2);
        assert_eq!(req.payload_len(), req.datalen as usize + 2);
    }
    // Every encoder writes whole lines, for every outcome.
    let times = ReqTimes { now: 1000, ttl: 1010, vivify: 1030, recache: 1060 };
    let mut out = Vec::new();
    match req.command {
        MetaCommand::Get => {
            let item = MgItem {
                key: req.key(),
                key_binary: req.key_is_binary(),
                cas: 7,
                client_flags: 5,
                value_len: 3,
                exptime: 1100,
                time: 999,
                fetched: true,
                token_sent: false,
                stale: true,
                created: false,
            };
            let o = encode_mg_hit(&mut out, req, &item, &times);
            assert!(one_line(&out));
            assert!(!(o.value && req.late_error().is_some()));
            out.clear();
            if encode_mg_miss(&mut out, req) {
                assert!(one_line(&out));
            }
        }
        MetaCommand::Set => {
            for st in [SetStatus::Stored, SetStatus::NotStored, SetStatus::Exists, SetStatus::NotFound] {
                out.clear();
                if encode_ms(&mut out, req, st, 9, req.datalen as usize) {
                    assert!(one_line(&out));
                } else {
                    assert!(out.is_empty() && st == SetStatus::Stored);
                }
            }
        }
        MetaCommand::Delete => {
            for st in [DeleteStatus::Deleted, DeleteStatus::NotFound, DeleteStatus::Exists] {
                out.clear();
                if encode_md(&mut out, req, st) {
                    assert!(one_line(&out));
                }
            }
        }
        MetaCommand::Arithmetic => {
            for created in [false, true] {
                out.clear();
                let item = MaItem { value: u64::MAX, cas: 3, exptime: 0, created };
                if encode_ma_hit(&mut out, req, &item, &times).wrote {
                    assert!(one_line(&out));
                }
            }
            for miss in [ArithMiss::NotFound, ArithMiss::NotStored, ArithMiss::Exists] {
                out.clear();
                encode_ma_miss(&mut out, req, miss);
                assert!(one_line(&out));
            }
        }
        MetaCommand::Debug | MetaCommand::Noop => {}
    }
}

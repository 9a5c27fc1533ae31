//! Fuzz the binary protocol codec with invariants, not just "no panic".
#![no_main]

use libfuzzer_sys::fuzz_target;
use rustcached::protocol::binary::{
    assemble, parse, parse_header, parse_limited, store_head, write_response, Frame, Limits, Status, HEADER_LEN,
    KEY_MAX_LENGTH,
};

/// Prefixes checked per input (every one for small frames, a spread for large ones).
const PREFIX_CHECKS: usize = 512;

fuzz_target!(|data: &[u8]| {
    // A small item limit (first byte) so that too-large frames are reachable.
    let limits = Limits {
        max_key: KEY_MAX_LENGTH,
        item_size_max: 64 + data.first().copied().unwrap_or(0) as usize * 16,
        use_cas: data.get(1).is_some_and(|b| b & 1 == 0),
    };
    check(data, parse(data, KEY_MAX_LENGTH), |b| parse(b, KEY_MAX_LENGTH));
    check(data, parse_limited(data, &limits), |b| parse_limited(b, &limits));
    check_store_head(data, &limits);
});

/// A storage head is reported only for an incomplete frame whose head is all there; the request
/// rebuilt from it is the one the complete frame would parse to, without its value.
fn check_store_head(data: &[u8], limits: &Limits) {
    let Some(h) = store_head(data, limits) else { return };
    assert!(h.head_len <= data.len() && data.len() < h.total);
    assert_eq!(h.head_len + h.value_len, h.total);
    let req = assemble(&data[..h.head_len]);
    assert_eq!(req.key, h.key);
    assert!(req.value.is_empty());
    // Completing the value gives a request with the same head.
    let mut full = data[..h.head_len].to_vec();
    full.resize(h.total, b'v');
    match parse_limited(&full, limits) {
        Frame::Request(r, n) => {
            assert_eq!(n, h.total);
            assert_eq!((r.opcode, r.opaque, r.cas, r.extras, r.key, r.command), (req.opcode, req.opaque, req.cas, req.extras, req.key, req.command));
        }
        other => panic!("completed storage head parses as {other:?}"),
    }
}

fn check<'a>(data: &'a [u8], frame: Frame<'a>, reparse: impl Fn(&'a [u8]) -> Frame<'a>) {
    match frame {
        Frame::Incomplete { need } => {
            assert!(need > data.len(), "incomplete but {} of {need} bytes are there", data.len());
            assert!(need >= HEADER_LEN);
        }
        Frame::Request(req, consumed) => {
            assert!(consumed <= data.len() && consumed >= HEADER_LEN);
            assert!(req.key.len() <= KEY_MAX_LENGTH);
            assert_eq!(HEADER_LEN + req.extras.len() + req.key.len() + req.value.len(), consumed);
            let h = parse_header(data);
            assert_eq!(h.opaque, req.opaque);
            assert_eq!(h.cas, req.cas);
            assert!(consumed - HEADER_LEN <= h.body_len as usize);
            // The frame is self-delimiting: alone it parses the same...
            assert_eq!(reparse(&data[..consumed]), Frame::Request(req, consumed));
            // ...and every strict prefix of it is incomplete.
            let step = consumed.div_ceil(PREFIX_CHECKS).max(1);
            for k in (0..consumed).step_by(step).chain([consumed - 1]) {
                assert!(
                    matches!(reparse(&data[..k]), Frame::Incomplete { need } if need > k),
                    "prefix {k} of a {consumed}-byte request is not incomplete"
                );
            }
            // A response echoing the request is framed by its own header.
            let mut out = Vec::new();
            write_response(
                &mut out,
                req.opcode_byte(),
                Status::NoError,
                req.opaque,
                req.cas,
                req.extras,
                req.key,
                req.value,
            );
            let rh = parse_header(&out);
            assert_eq!(rh.body_len as usize + HEADER_LEN, out.len());
            assert_eq!(rh.opaque, req.opaque);
        }
        Frame::TooLarge { key, skip, .. } => {
            assert!(key.len() <= KEY_MAX_LENGTH);
            assert!(skip >= HEADER_LEN + key.len());
        }
        Frame::Invalid(inv) => {
            if inv.close {
                assert_eq!(inv.skip, 0);
            } else {
                assert!(inv.skip >= HEADER_LEN, "a kept connection must skip at least the header");
                assert_eq!(inv.status, Some(Status::UnknownCommand));
            }
        }
    }
}

//! Fuzz the UDP framing: request headers, reply splitting for retrievals, and datagram cutting.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rustcached::protocol::udp::{datagrams, parse_request, retrieval_last_key, split_retrieval, MAX_DATAGRAM};

fuzz_target!(|data: &[u8]| {
    if let Some((id, body)) = parse_request(data) {
        assert_eq!(u16::from_be_bytes([data[0], data[1]]), id);
        assert_eq!(body.len(), data.len() - 8);
    }
    let line = data.split(|&b| b == b'\n').next().unwrap_or_default();
    let last = retrieval_last_key(line).unwrap_or(b"k");
    let mut ends = Vec::new();
    split_retrieval(data, last, &mut ends);
    assert_eq!(ends.last().copied(), Some(data.len()));
    assert!(ends.windows(2).all(|w| w[0] < w[1]));
    let (mut total, mut seq) = (0usize, 0u16);
    datagrams(9, data, |d| {
        assert!(d.len() > 8 && d.len() <= MAX_DATAGRAM);
        assert_eq!(u16::from_be_bytes([d[2], d[3]]), seq);
        seq += 1;
        total += d.len() - 8;
    });
    assert_eq!(total, data.len());
});

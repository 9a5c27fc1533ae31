//! memcached's UDP framing: every datagram starts with an 8-byte header (big-endian request
//! id, sequence number, datagram count, reserved 0) followed by ordinary text or binary
//! protocol bytes. Requests must fit in one datagram; a reply longer than one datagram is cut
//! into 1,400-byte datagrams numbered 0..n-1, each carrying the request id and n.

/// Header bytes in front of every datagram.
pub const HEADER: usize = 8;
/// Largest datagram memcached sends, header included (UDP_MAX_PAYLOAD_SIZE).
pub const MAX_DATAGRAM: usize = 1400;

/// The request id and body of a request datagram, or `None` for what memcached drops:
/// datagrams of 8 bytes or fewer and multi-datagram requests (count other than 1). The
/// sequence number and reserved field are not looked at, as in memcached.
pub fn parse_request(dgram: &[u8]) -> Option<(u16, &[u8])> {
    if dgram.len() <= HEADER || dgram[4..6] != [0, 1] {
        return None;
    }
    Some((u16::from_be_bytes([dgram[0], dgram[1]]), &dgram[HEADER..]))
}

/// Cut one reply message into datagrams and hand each to `send`. An empty message sends
/// nothing.
pub fn datagrams(request_id: u16, msg: &[u8], mut send: impl FnMut(&[u8])) {
    let per = MAX_DATAGRAM - HEADER;
    let total = msg.len().div_ceil(per);
    let mut d = [0u8; MAX_DATAGRAM];
    for (seq, chunk) in msg.chunks(per).enumerate() {
        d[0..2].copy_from_slice(&request_id.to_be_bytes());
        d[2..4].copy_from_slice(&(seq as u16).to_be_bytes());
        d[4..6].copy_from_slice(&(total.min(u16::MAX as usize) as u16).to_be_bytes());
        d[6..8].copy_from_slice(&[0, 0]);
        d[HEADER..HEADER + chunk.len()].copy_from_slice(chunk);
        send(&d[..HEADER + chunk.len()]);
    }
}

/// If a text request line is a retrieval (`get`, `gets`, `gat`, `gats`), its last key:
/// memcached answers these over UDP with one message per key, `END` riding on the last key's.
pub fn retrieval_last_key(line: &[u8]) -> Option<&[u8]> {
    let mut tokens = line.split(|&b| b == b' ').filter(|t| !t.is_empty());
    let cmd = tokens.next()?;
    let skip = match cmd {
        b"get" | b"gets" => 0,
        b"gat" | b"gats" => 1,
        _ => return None,
    };
    tokens.skip(skip).last()
}

/// Split a text retrieval reply (`VALUE ...` blocks then `END\r\n`) into the messages
/// memcached sends over UDP: one per `VALUE` block; `END` is appended to the last block when
/// that block answers the last key asked for, and is a message of its own otherwise (the last
/// key missed). Returns the end offset of each message; anything that does not parse as
/// `VALUE` blocks stays one message.
pub fn split_retrieval(reply: &[u8], last_key: &[u8], ends: &mut Vec<usize>) {
    let mut last_block_key: &[u8] = b"";
    ends.clear();
    let mut pos = 0;
    while reply[pos..].starts_with(b"VALUE ") {
        let Some(eol) = reply[pos..].windows(2).position(|w| w == b"\r\n") else { break };
        let line = &reply[pos..pos + eol];
        let Some(bytes) =
            line.split(|&b| b == b' ').nth(3).and_then(|t| std::str::from_utf8(t).ok()?.parse::<usize>().ok())
        else {
            break;
        };
        let Some(next) = (pos + eol + 4).checked_add(bytes).filter(|&n| n <= reply.len()) else {
            break;
        };
        last_block_key = line.split(|&b| b == b' ').nth(1).unwrap_or_default();
        ends.push(next);
        pos = next;
    }
    match ends.last_mut() {
        Some(last) if &reply[pos..] == b"END\r\n" && last_block_key == last_key => *last = reply.len(),
        _ => ends.push(reply.len()),
    }
    if ends.len() > 1 && ends[ends.len() - 2] == reply.len() {
        ends.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_memcached_drops() {
        assert_eq!(parse_request(b"\x00\x07\x00\x00\x00\x01\x00\x00get a\r\n"), Some((7, &b"get a\r\n"[..])));
        // sequence number and reserved bytes are ignored
        assert_eq!(parse_request(b"\x01\x00\x00\x09\x00\x01\xff\xffx"), Some((256, &b"x"[..])));
        assert_eq!(parse_request(b"\x00\x07\x00\x00\x00\x01\x00\x00"), None);
        assert_eq!(parse_request(b"\x00\x07\x00\x00\x00\x02\x00\x00get a\r\n"), None);
        assert_eq!(parse_request(b"\x00\x07\x00\x00\x01\x01\x00\x00get a\r\n"), None);
        assert_eq!(parse_request(b""), None);
    }

    #[test]
    fn replies_are_cut_at_1400_bytes() {
        let msg = vec![b'v'; 5000];
        let mut got = Vec::new();
        datagrams(7, &msg, |d| got.push(d.to_vec()));
        assert_eq!(got.iter().map(|d| d.len()).collect::<Vec<_>>(), [1400, 1400, 1400, 832]);
        for (i, d) in got.iter().enumerate() {
            assert_eq!(&d[..8], &[0, 7, 0, i as u8, 0, 4, 0, 0]);
        }
        let joined: Vec<u8> = got.iter().flat_map(|d| d[8..].to_vec()).collect();
        assert_eq!(joined, msg);
        got.clear();
        datagrams(1, b"", |d| got.push(d.to_vec()));
        assert!(got.is_empty());
    }

    #[test]
    fn retrievals_split_per_item() {
        let split = |r: &[u8], last: &[u8]| {
            let mut ends = Vec::new();
            split_retrieval(r, last, &mut ends);
            ends
        };
        let v = b"VALUE a 1 2\r\nab\r\n";
        assert_eq!(split(b"END\r\n", b"x"), [5]);
        assert_eq!(split(&[&v[..], b"END\r\n"].concat(), b"a"), [22]);
        assert_eq!(split(&[&v[..], v, b"END\r\n"].concat(), b"a"), [17, 39]);
        // get a x: the last key missed, END goes alone (as memcached 1.6.18 sends it)
        assert_eq!(split(&[&v[..], b"END\r\n"].concat(), b"x"), [17, 22]);
        // a value holding "END\r\n" or "VALUE " is skipped by length
        let tricky = b"VALUE k 0 7\r\nEND\r\nVA\r\nVALUE a 1 2 9\r\nab\r\nEND\r\n";
        assert_eq!(split(tricky, b"a"), [22, tricky.len()]);
        assert_eq!(split(b"SERVER_ERROR out of memory\r\n", b"a"), [28]);
        assert_eq!(split(b"VALUE a 1 99\r\nab\r\n", b"a"), [18]);
        // found by the fuzz target: a byte count near usize::MAX must not overflow
        assert_eq!(split(b"VALUE a 0 18446744073709551614\r\n", b"a"), [32]);
    }

    #[test]
    fn retrieval_lines() {
        assert_eq!(retrieval_last_key(b"get a b"), Some(&b"b"[..]));
        assert_eq!(retrieval_last_key(b"gets  a "), Some(&b"a"[..]));
        assert_eq!(retrieval_last_key(b"gats 10 a"), Some(&b"a"[..]));
        assert_eq!(retrieval_last_key(b"gat 10"), None);
        assert_eq!(retrieval_last_key(b"getx a"), None);
        assert_eq!(retrieval_last_key(b"mg a v"), None);
    }
}

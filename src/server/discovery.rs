//! Auto-discovery requests: where `config get|set cluster`, the legacy
//! `get AmazonElastiCache:cluster` and binary opcodes 0x60/0x64 meet `cluster::Discovery`.
//!
//! Owns: recognising those requests on a connection (text and meta connections share the text
//! line parser; binary has its own hook), their replies and error strings, and SIGHUP
//! reloading with its log lines. Must not know: the cluster-file format or the payload bytes
//! (`crate::cluster`), the store. Without `--cluster-file` every request here is answered as
//! memcached 1.6.18 answers it (`ERROR` for `config`, a plain miss or value for the legacy
//! key, Unknown command for the opcodes).

use super::exec::Ctx;
use super::session::{Session, Step};
use super::Shared;
use crate::cluster::{Reloaded, BINARY_CONFIG_GET, BINARY_CONFIG_SET, CONFIG_NAME, LEGACY_KEY};
use crate::protocol::binary::{self as pb, Status, HEADER_LEN};
use crate::protocol::num::strtoul32;
use crate::protocol::text::{self as ptext, reply, Tokens};

/// Largest `config set cluster` payload accepted (a few thousand nodes).
pub const SET_MAX: usize = 256 * 1024;
/// `config set` without `-A`.
pub const SET_DISABLED: &[u8] = b"ERROR: config set not enabled\r\n";

/// SIGHUP: re-read the cluster file; a bad file keeps the list served now.
pub fn reload(sh: &Shared) {
    let Some(d) = &sh.cluster else { return };
    match d.reload() {
        Ok(Reloaded::Changed(v)) => log::info!("cluster file {} re-read: version {v}", d.path().display()),
        Ok(Reloaded::Unchanged(v)) => log::info!("cluster file {} re-read: unchanged, version {v}", d.path().display()),
        Err(e) => log::error!("{e}; still serving cluster version {}", d.snapshot().version),
    }
}

/// A `config ...` text line (`len` bytes at the start of `input`, `consumed` with its
/// terminator): `config get cluster`, or `config set cluster <flags> <bytes> [noreply]`
/// followed by a data block.
pub fn step(
    session: &mut Session,
    input: &[u8],
    len: usize,
    consumed: usize,
    out: &mut Vec<u8>,
    ctx: &Ctx<'_>,
) -> Step {
    session.need = 0;
    let sh = ctx.shared;
    let Some(d) = &sh.cluster else {
        out.extend_from_slice(reply::ERROR);
        return Step::Done(consumed);
    };
    let t = Tokens::new(&input[..len]);
    match (t.get(1), t.get(2), t.ntokens()) {
        (b"get", name, 4) if name == CONFIG_NAME => {
            out.extend_from_slice(&d.snapshot().config_reply);
            Step::Done(consumed)
        }
        (b"set", name, 6 | 7) if name == CONFIG_NAME => {
            let noreply = t.noreply();
            let put = |out: &mut Vec<u8>, r: &[u8]| {
                if !noreply {
                    out.extend_from_slice(r)
                }
            };
            let (Some(_flags), Some(bytes)) = (strtoul32(t.get(3)), strtoul32(t.get(4))) else {
                put(out, reply::BAD_FORMAT);
                return Step::Done(consumed);
            };
            let bytes = bytes as usize;
            let refused = if !sh.config.shutdown_command {
                Some(SET_DISABLED)
            } else if bytes > SET_MAX {
                Some(reply::TOO_LARGE)
            } else {
                None
            };
            if let Some(r) = refused {
                put(out, r);
                session.swallow = bytes + 2;
                return Step::Done(consumed);
            }
            let total = consumed + bytes + 2;
            if input.len() < total {
                session.need = total;
                return Step::Incomplete;
            }
            if &input[consumed + bytes..total] != b"\r\n" {
                put(out, reply::BAD_CHUNK);
                return Step::Done(total);
            }
            match d.set_payload(&input[consumed..consumed + bytes]) {
                Ok(v) => {
                    log::info!("config set cluster: now serving version {v}");
                    put(out, reply::STORED);
                }
                Err(e) => {
                    let mut line = b"CLIENT_ERROR ".to_vec();
                    line.extend(e.bytes().filter(|b| !b.is_ascii_control()));
                    line.extend_from_slice(b"\r\n");
                    put(out, &line);
                }
            }
            Step::Done(total)
        }
        _ => {
            out.extend_from_slice(reply::ERROR);
            Step::Done(consumed)
        }
    }
}

/// `get AmazonElastiCache:cluster` (one key, plain `get`): the legacy reply. Returns false
/// when this is not that request or no cluster file is served (the get runs as usual).
pub fn legacy_get(ctx: &Ctx<'_>, cas: bool, touch: bool, keys: &[u8], out: &mut Vec<u8>) -> bool {
    let Some(d) = &ctx.shared.cluster else { return false };
    let mut k = ptext::keys(keys);
    if cas || touch || k.next() != Some(LEGACY_KEY) || k.next().is_some() {
        return false;
    }
    out.extend_from_slice(&d.snapshot().legacy_reply);
    true
}

/// Binary config get (0x60, key `cluster`; the value is the payload, with 4 bytes of flags)
/// and config set (0x64). `None`: not one of these (or no cluster file), parse as usual.
pub fn binary_step(session: &mut Session, input: &[u8], out: &mut Vec<u8>, ctx: &Ctx<'_>) -> Option<Step> {
    let d = ctx.shared.cluster.as_ref()?;
    if input.len() < HEADER_LEN {
        return None;
    }
    let h = pb::parse_header(input);
    if h.magic != crate::memcached::BINARY_REQ_MAGIC
        || !(h.opcode == BINARY_CONFIG_GET || h.opcode == BINARY_CONFIG_SET)
    {
        return None;
    }
    let (ext, klen, body) = (h.extras_len as usize, h.key_len as usize, h.body_len as usize);
    if body > SET_MAX || ext + klen > body {
        return None; // the usual path refuses it
    }
    let total = HEADER_LEN + body;
    if input.len() < total {
        session.need = total;
        return Some(Step::Incomplete);
    }
    session.need = 0;
    let key = &input[HEADER_LEN + ext..HEADER_LEN + ext + klen];
    let value = &input[HEADER_LEN + ext + klen..total];
    if key != CONFIG_NAME {
        pb::write_error(out, h.opcode, Status::KeyNotFound, h.opaque);
    } else if h.opcode == BINARY_CONFIG_GET {
        let s = d.snapshot();
        pb::write_response(out, h.opcode, Status::NoError, h.opaque, 0, &[0; 4], &[], &s.payload);
    } else if !ctx.shared.config.shutdown_command {
        pb::write_error(out, h.opcode, Status::AuthError, h.opaque);
    } else {
        match d.set_payload(value) {
            Ok(v) => {
                log::info!("config set cluster (binary): now serving version {v}");
                pb::write_response(out, h.opcode, Status::NoError, h.opaque, 0, &[], &[], &[]);
            }
            Err(_) => pb::write_error(out, h.opcode, Status::InvalidArguments, h.opaque),
        }
    }
    Some(Step::Done(total))
}

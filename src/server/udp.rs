//! UDP (`-U`): each worker reads datagrams from the shared socket and serves each one with a
//! fresh session: the request bytes after the 8-byte header go through the same framing and
//! dispatch as TCP, and every command's reply is sent back as its own message, cut into
//! 1,400-byte datagrams (`protocol::udp`). Text retrievals send one message per item found,
//! `END` riding on the last, as memcached does. Nothing is kept between datagrams: a trailing
//! partial command is dropped, and metadump is not offered over UDP.

use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use super::exec::Ctx;
use super::out::Out;
use super::session::{Outcome, Proto, Session};
use super::ConnInfo;
use crate::protocol::udp;

/// Largest datagram accepted (memcached reads UDP into a 64 KB buffer).
const RECV_MAX: usize = 65536;

/// One worker's handle on a UDP socket.
pub struct UdpPort {
    pub sock: mio::net::UdpSocket,
    session: Session,
    fd: i32,
    info: Arc<ConnInfo>,
    buf: Vec<u8>,
    out: Out,
    ends: Vec<usize>,
}

impl UdpPort {
    pub fn new(sock: &std::net::UdpSocket) -> io::Result<(UdpPort, i32, Arc<ConnInfo>)> {
        let sock = mio::net::UdpSocket::from_std(sock.try_clone()?);
        let fd = sock.as_raw_fd();
        let addr = match sock.local_addr()? {
            SocketAddr::V4(a) => format!("udp:{}:{}", a.ip(), a.port()),
            SocketAddr::V6(a) => format!("udp6:[{}]:{}", a.ip(), a.port()),
        };
        let info = Arc::new(ConnInfo {
            listen_addr: addr.clone(),
            addr,
            listening: false,
            udp: true,
            last_cmd: 0.into(),
            state: Default::default(),
        });
        Ok((
            UdpPort {
                sock,
                session: Session::new(),
                fd,
                info: info.clone(),
                buf: vec![0; RECV_MAX],
                out: Out::copying(),
                ends: Vec::new(),
            },
            fd,
            info,
        ))
    }

    /// Serve up to `budget` datagrams. Returns true when the budget ran out (more may wait:
    /// readiness is edge-triggered, so the caller must come back), false once drained.
    pub fn serve(&mut self, ctx: &Ctx<'_>, budget: usize) -> bool {
        for _ in 0..budget {
            let (n, peer) = match self.sock.recv_from(&mut self.buf) {
                Ok(x) => x,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::debug!("udp receive failed: {e}");
                    return false;
                }
            };
            ctx.stats.bytes_read.add(n as u64);
            let Some((id, body)) = udp::parse_request(&self.buf[..n]) else { continue };
            self.session = Session::new();
            let mut pos = 0;
            while pos < body.len() {
                let rest = &body[pos..];
                let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
                let last_key =
                    match rest[0] != crate::memcached::BINARY_REQ_MAGIC && self.session.proto != Proto::Binary {
                        true => udp::retrieval_last_key(line.strip_suffix(b"\r").unwrap_or(line)),
                        false => None,
                    };
                self.out.clear();
                super::watch::serving(self.fd); // `cfd=` the UDP socket, as memcached
                let (used, outcome) = self.session.process(rest, &mut self.out, ctx, 1);
                super::trace::replies(ctx.shared, &self.out);
                pos += used;
                self.session.dump = None;
                if let Some(last_key) = last_key {
                    udp::split_retrieval(&self.out, last_key, &mut self.ends);
                } else {
                    self.ends.clear();
                    self.ends.push(self.out.len());
                }
                let mut start = 0;
                for &end in &self.ends {
                    udp::datagrams(id, &self.out[start..end], |d| match self.sock.send_to(d, peer) {
                        Ok(sent) => ctx.stats.bytes_written.add(sent as u64),
                        Err(e) => log::debug!("udp send to {peer} failed: {e}"),
                    });
                    start = end;
                }
                if used == 0 || !matches!(outcome, Outcome::Yield | Outcome::Blocked) {
                    break;
                }
            }
            self.info.last_cmd.store(ctx.shared.clock().now(), std::sync::atomic::Ordering::Relaxed);
        }
        true
    }
}

//! TLS for TCP connections (`-Z`), with rustls and its `ring` provider.
//!
//! Owns: loading the certificate chain, key and CA into a rustls `ServerConfig` (with
//! memcached's error messages), swapping in a fresh one atomically for `refresh_certs`, the
//! server-side session cache and its `ssl_new_sessions` count, `ssl_handshake_errors`, and
//! `TlsStream`: a non-blocking socket with a rustls session that reads plaintext and writes
//! plaintext, as `conn::Stream` needs. Knows nothing of protocols, buffers or the event loop:
//! the worker only asks the stream whether a short read means "drained" and whether TLS
//! records are still waiting for the socket.
//!
//! Memory per connection: rustls buffers up to `ssl_wbuf_size` of unsent TLS records (the
//! worker's `Out` keeps the rest of the replies, under its high-water marks), and at most
//! rustls' 16 KB of received plaintext, which reads drain before asking the socket for more.

use std::io::{self, IoSlice, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{NoServerSessionStorage, ServerSessionMemoryCache, StoresServerSessions, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig, ServerConnection};

use crate::tlsconf::{MinVersion, TlsConf, Verify};

/// Sessions kept for resumption with `ssl_session_cache` (OpenSSL's default cache size,
/// which memcached keeps).
const SESSION_CACHE_SIZE: usize = 20 * 1024;

/// The server's TLS state, shared by every worker.
pub struct Tls {
    conf: TlsConf,
    /// The configuration new connections get; replaced whole by `refresh_certs`.
    current: RwLock<Arc<ServerConfig>>,
    /// Server clock (relative seconds) of the last successful load; 0 for the one at startup,
    /// as memcached (its clock is not running yet when it first loads certificates).
    last_refresh: AtomicU32,
    handshake_errors: AtomicU64,
    sessions: Option<Arc<CountingSessions>>,
}

/// rustls' session cache, counting the sessions it is given (`ssl_new_sessions`). Kept across
/// certificate reloads, as OpenSSL's cache lives in the one context memcached keeps.
#[derive(Debug)]
struct CountingSessions {
    cache: Arc<ServerSessionMemoryCache>,
    new: AtomicU64,
}

impl StoresServerSessions for CountingSessions {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.new.fetch_add(1, Ordering::Relaxed);
        self.cache.put(key, value)
    }
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.cache.get(key)
    }
    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.cache.take(key)
    }
    fn can_cache(&self) -> bool {
        true
    }
}

fn path_or_null(p: Option<&Path>) -> String {
    p.map_or("(null)".into(), |p| p.display().to_string())
}

/// Build a rustls configuration from the files `conf` names. The error is memcached's message
/// for the step that failed (without its `\r\n`).
fn build(conf: &TlsConf, sessions: Option<&Arc<CountingSessions>>) -> Result<ServerConfig, String> {
    let chain_path = conf.chain_cert.as_deref();
    let chain: Vec<CertificateDer<'static>> = chain_path
        .ok_or_else(|| "no file given (-o ssl_chain_cert)".to_string())
        .and_then(|p| CertificateDer::pem_file_iter(p).map_err(|e| e.to_string()))
        .and_then(|it| it.collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string()))
        .and_then(|v| if v.is_empty() { Err("no certificate in the file".into()) } else { Ok(v) })
        .map_err(|e| format!("Error loading the certificate chain: {} : {e}", path_or_null(chain_path)))?;
    // "private key, if not part of the ssl_chain_cert" (memcached's help)
    let key_path = conf.key.as_deref().or(chain_path);
    let key = key_path
        .ok_or_else(|| "no file given (-o ssl_key)".to_string())
        .and_then(|p| PrivateKeyDer::from_pem_file(p).map_err(|e| e.to_string()))
        .map_err(|e| format!("Error loading the key: {} : {e}", path_or_null(key_path)))?;
    let roots = match conf.ca_cert.as_deref() {
        Some(p) => {
            let failed = |e: String| format!("Error loading the CA certificate: {} : {e}", p.display());
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(p)
                .map_err(|e| e.to_string())
                .and_then(|it| it.collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string()))
                .map_err(failed)?;
            for c in certs {
                roots.add(c).map_err(|e| failed(e.to_string()))?;
            }
            Some(roots)
        }
        None => None,
    };

    let mut provider = rustls::crypto::ring::default_provider();
    if let Some((_, names)) = &conf.ciphers {
        // The list restricts TLS 1.2 suites; TLS 1.3 ones stay, as with OpenSSL's cipher list.
        provider
            .cipher_suites
            .retain(|s| s.version() == &rustls::version::TLS13 || names.iter().any(|n| s.suite().as_str() == Some(*n)));
    }
    let provider = Arc::new(provider);
    let versions: &[&rustls::SupportedProtocolVersion] = match conf.min_version {
        MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        MinVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| format!("Error setting the provided cipher(s): {e}"))?;
    let builder = match (conf.verify, roots) {
        (Verify::None, _) => builder.with_no_client_auth(),
        (mode, Some(roots)) => {
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let v = if mode == Verify::Request { v.allow_unauthenticated() } else { v };
            builder.with_client_cert_verifier(v.build().map_err(|e| format!("Error loading the CA certificate: {e}"))?)
        }
        (mode, None) => {
            return Err(format!(
                "ssl_verify_mode={} needs ssl_ca_cert: client certificates are checked against it",
                mode as u8
            ))
        }
    };
    let mut config =
        builder.with_single_cert(chain, key).map_err(|e| format!("Error validating the certificate: {e}"))?;
    match sessions {
        Some(s) => config.session_storage = s.clone(),
        None => {
            config.session_storage = Arc::new(NoServerSessionStorage {});
            config.send_tls13_tickets = 0;
        }
    }
    Ok(config)
}

impl Tls {
    /// Load the certificates `conf` names (`None` without `-Z`).
    pub fn load(conf: &TlsConf) -> Result<Option<Tls>, String> {
        if !conf.enabled {
            return Ok(None);
        }
        let sessions = conf.session_cache.then(|| {
            Arc::new(CountingSessions {
                cache: ServerSessionMemoryCache::new(SESSION_CACHE_SIZE),
                new: AtomicU64::new(0),
            })
        });
        let config = build(conf, sessions.as_ref())?;
        Ok(Some(Tls {
            conf: conf.clone(),
            current: RwLock::new(Arc::new(config)),
            last_refresh: AtomicU32::new(0),
            handshake_errors: AtomicU64::new(0),
            sessions,
        }))
    }

    /// `refresh_certs`: read the chain, key and CA again and use them for new connections, all
    /// or nothing. `now` is the server clock.
    pub fn refresh(&self, now: u32) -> Result<(), String> {
        let config = build(&self.conf, self.sessions.as_ref())?;
        *self.current.write() = Arc::new(config);
        self.last_refresh.store(now, Ordering::Relaxed);
        Ok(())
    }

    /// A TLS session over a freshly accepted socket.
    pub fn accept(tls: &Arc<Tls>, sock: mio::net::TcpStream) -> io::Result<TlsStream> {
        let config = tls.current.read().clone();
        let mut conn = ServerConnection::new(config).map_err(io::Error::other)?;
        conn.set_buffer_limit(Some(tls.conf.wbuf_size));
        Ok(TlsStream { conn, sock, failed: false, tls: tls.clone() })
    }

    fn handshake_failed(&self) {
        self.handshake_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The `stats` lines memcached shows with TLS on, in its order.
    pub fn stats(&self, now: u32) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(s) = &self.sessions {
            out.push(("ssl_new_sessions", s.new.load(Ordering::Relaxed).to_string()));
        }
        out.push(("ssl_handshake_errors", self.handshake_errors.load(Ordering::Relaxed).to_string()));
        let since = now.saturating_sub(self.last_refresh.load(Ordering::Relaxed));
        out.push(("time_since_server_cert_refresh", since.to_string()));
        out
    }
}

/// A TCP connection with a rustls server session: `Read` gives plaintext, `Write` takes it.
pub struct TlsStream {
    conn: ServerConnection,
    pub sock: mio::net::TcpStream,
    /// The session failed (bad handshake, bad record): nothing more is read or written.
    failed: bool,
    /// Where handshake failures are counted.
    tls: Arc<Tls>,
}

fn would_block() -> io::Error {
    io::ErrorKind::WouldBlock.into()
}

impl TlsStream {
    /// Hand the socket the TLS records rustls holds, until it takes no more.
    pub fn flush_tls(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// TLS records (replies, handshake messages, alerts) the socket has not taken yet.
    pub fn pending_output(&self) -> bool {
        !self.failed && self.conn.wants_write()
    }

    /// Read, decrypt and process what the socket holds; counts a failed handshake in `tls`.
    /// `Ok(false)` at end of stream.
    fn receive(&mut self) -> io::Result<bool> {
        let n = loop {
            match self.conn.read_tls(&mut self.sock) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => break r?,
            }
        };
        let handshaking = self.conn.is_handshaking();
        if let Err(e) = self.conn.process_new_packets() {
            self.failed = true;
            if handshaking {
                self.tls.handshake_failed();
            }
            // rustls queued an alert for the peer: one try, the connection is closing anyway.
            let _ = self.conn.write_tls(&mut self.sock);
            log::debug!("TLS {}: {e}", if handshaking { "handshake failed" } else { "session failed" });
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        // handshake messages, session tickets: send them now if the socket takes them
        self.flush_tls()?;
        Ok(n > 0)
    }

    fn read_plain(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "TLS session failed"));
        }
        let mut filled = 0;
        loop {
            match self.conn.reader().read(&mut buf[filled..]) {
                Ok(0) => return Ok(filled), // close_notify received: end of stream
                Ok(n) => {
                    filled += n;
                    if filled == buf.len() {
                        return Ok(filled);
                    }
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // the peer closed TCP without close_notify: end of stream all the same
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(filled),
                Err(e) => return Err(e),
            }
            match self.receive() {
                Ok(true) => {}
                Ok(false) => {
                    if self.conn.is_handshaking() {
                        self.tls.handshake_failed(); // closed in the middle of the handshake
                        self.failed = true;
                    }
                    return Ok(filled);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && filled > 0 => return Ok(filled),
                Err(e) => return Err(e),
            }
        }
    }
}

impl Read for TlsStream {
    /// Plaintext into `buf`: as much as the socket yields now. `WouldBlock` only when there is
    /// none; a short read does not mean the socket is drained (see `Stream::short_read_drains`).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_plain(buf)
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    /// Plaintext accepted into rustls counts as written; rustls holds at most `ssl_wbuf_size`
    /// of records the socket has not taken, and accepts nothing more (`WouldBlock`) until
    /// it has.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "TLS session failed"));
        }
        self.flush_tls()?;
        let n = self.conn.writer().write_vectored(bufs)?;
        self.flush_tls()?;
        if n == 0 && bufs.iter().any(|b| !b.is_empty()) {
            return Err(would_block());
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.failed {
            return Ok(());
        }
        self.flush_tls()
    }
}

impl Drop for TlsStream {
    /// Say goodbye (`close_notify`) if the socket takes it at once, as memcached's
    /// `SSL_shutdown` does.
    fn drop(&mut self) {
        if !self.failed && !self.conn.is_handshaking() {
            self.conn.send_close_notify();
            let _ = self.conn.write_tls(&mut self.sock);
        }
    }
}

/// Whether connections accepted on `l` speak TLS (with `-Z`): every TCP listener but those
/// given as `-l notls:<addr>:<port>`. UNIX sockets never do, as in memcached.
pub fn serves_tls(c: &crate::config::Config, l: &super::listener::Listener) -> bool {
    let Some(bound) = l.local_addr() else { return false };
    !c.listen
        .iter()
        .zip(&c.listen_notls)
        .any(|(a, &notls)| notls && a.ip() == bound.ip() && (a.port() == bound.port() || a.port() == 0))
}

/// The `refresh_certs` command: `Err` is memcached's message (it has no `ERROR` prefix).
pub fn refresh_certs(shared: &super::Shared) -> Result<(), String> {
    match &shared.tls {
        Some(tls) => tls.refresh(shared.clock().now()),
        None => Err("Error TLS not enabled".into()),
    }
}

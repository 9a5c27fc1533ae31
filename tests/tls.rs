//! TLS (`-Z`): the real binary on a loopback port, certificates made with `openssl` at test
//! time (a CA, two server certificates, a client certificate, and a client certificate from
//! another CA). Clients: pymemcache with an `ssl.SSLContext` (a library we did not write), and
//! rustls for the binary and meta protocols, SASL, resumption, versions and cipher suites.
//! Debian's memcached 1.6.18 is built with OpenSSL: where the behaviour is memcached's, the
//! same checks run against it too.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{binaries, binary_request, expect, read_to_close, require, rustcached_bin, stats, try_start, Server};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// Debian's interpreter, where python3-pymemcache installs.
const DEBIAN_PYTHON: &str = "/usr/bin/python3";

/// Certificates for one test, in their own directory.
struct Pki {
    dir: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl (apt-get install openssl)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("rc-tls-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for ca in ["ca", "other-ca"] {
            openssl(
                &dir,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    &format!("/CN={ca}"),
                    "-keyout",
                    &format!("{ca}.key"),
                    "-out",
                    &format!("{ca}.crt"),
                ],
            );
        }
        std::fs::write(dir.join("server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
        std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
        let pki = Pki { dir };
        pki.issue("server-a", "ca", "server.ext");
        pki.issue("server-b", "ca", "server.ext");
        pki.issue("client", "ca", "client.ext");
        pki.issue("stranger", "other-ca", "client.ext");
        std::fs::copy(pki.path("server-a.crt"), pki.path("server.crt")).unwrap();
        std::fs::copy(pki.path("server-a.key"), pki.path("server.key")).unwrap();
        pki
    }

    /// `name.crt` and `name.key`, signed by `ca`.
    fn issue(&self, name: &str, ca: &str, ext: &str) {
        openssl(
            &self.dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={name}"),
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
            ],
        );
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-days",
                "2",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.crt"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-extfile",
                ext,
                "-out",
                &format!("{name}.crt"),
            ],
        );
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    /// `-Z` and the options naming the server certificate, CA and `extra` options.
    fn args(&self, extra: &str) -> Vec<String> {
        let mut o = format!("ssl_chain_cert={},ssl_key={}", self.path("server.crt"), self.path("server.key"));
        o.push_str(&format!(",ssl_ca_cert={}", self.path("ca.crt")));
        if !extra.is_empty() {
            o.push(',');
            o.push_str(extra);
        }
        vec!["-Z".into(), "-o".into(), o]
    }

    fn der(&self, file: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_file(self.path(file)).unwrap()
    }

    /// A rustls client trusting our CA; `cert` is the client certificate's name, if any.
    fn client(&self, cert: Option<&str>, versions: &[&'static rustls::SupportedProtocolVersion]) -> Arc<ClientConfig> {
        self.client_with(cert, versions, rustls::crypto::ring::default_provider())
    }

    fn client_with(
        &self,
        cert: Option<&str>,
        versions: &[&'static rustls::SupportedProtocolVersion],
        provider: rustls::crypto::CryptoProvider,
    ) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.der("ca.crt")).unwrap();
        let b = ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots);
        Arc::new(match cert {
            Some(name) => b
                .with_client_auth_cert(
                    vec![self.der(&format!("{name}.crt"))],
                    PrivateKeyDer::from_pem_file(self.path(&format!("{name}.key"))).unwrap(),
                )
                .unwrap(),
            None => b.with_no_client_auth(),
        })
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const BOTH: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

type Tls = StreamOwned<ClientConnection, TcpStream>;

fn start(bin: &str, args: &[String]) -> Server {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    try_start(bin, &args).unwrap_or_else(|e| panic!("{bin} {args:?} did not start: {e:?}"))
}

/// A TLS connection with the handshake done (`Err` when it fails).
fn connect(port: u16, cfg: &Arc<ClientConfig>) -> std::io::Result<Tls> {
    tls_over(TcpStream::connect(("127.0.0.1", port))?, cfg)
}

/// The same over a socket with a small receive buffer: the server's socket fills up soon.
fn connect_narrow(port: u16, cfg: &Arc<ClientConfig>) -> std::io::Result<Tls> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    sock.set_recv_buffer_size(4096)?;
    sock.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())?;
    tls_over(sock.into(), cfg)
}

fn tls_over(sock: TcpStream, cfg: &Arc<ClientConfig>) -> std::io::Result<Tls> {
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    let conn = ClientConnection::new(cfg.clone(), "localhost".try_into().unwrap()).unwrap();
    let mut s = StreamOwned::new(conn, sock);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

/// Send `req`, read exactly `want.len()` bytes and compare.
fn talk(who: &str, s: &mut impl ReadWrite, req: &[u8], want: &[u8]) {
    s.write_all(req).unwrap();
    let mut got = vec![0; want.len()];
    s.read_exact(&mut got).unwrap_or_else(|e| panic!("{who}: reply to {:?}: {e}", String::from_utf8_lossy(req)));
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(want),
        "{who}: {:?}",
        String::from_utf8_lossy(req)
    );
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// The server answers nothing to `version` and the connection ends (a failed handshake).
fn refused(who: &str, s: std::io::Result<Tls>) {
    let Ok(mut s) = s else { return }; // refused during the handshake
    let _ = s.write_all(b"version\r\n");
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("{who}: answered {:?}", String::from_utf8_lossy(&buf[..n])),
    }
}

/// A real client library over TLS: pymemcache with an `ssl.SSLContext` and a client
/// certificate, against a server that requires one.
#[test]
fn pymemcache_over_tls_with_client_certificates() {
    require(DEBIAN_PYTHON, &["-c", "import pymemcache"], "apt-get install python3-pymemcache");
    let pki = Pki::new("pymemcache");
    let script = r#"
import ssl, sys
from pymemcache.client.base import Client
port, ca, crt, key = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(crt, key)
c = Client(("127.0.0.1", int(port)), tls_context=ctx, default_noreply=False, timeout=10)
assert c.set("a", b"1") and c.set("b", b"two") and c.set("c", b"x" * 100)
assert c.get("a") == b"1", c.get("a")
got = c.get_many(["a", "b", "c", "missing"])
assert got == {"a": b"1", "b": b"two", "c": b"x" * 100}, got
big = bytes(range(256)) * 3906  # 999,936 bytes
assert c.set("big", big)
for _ in range(3):
    assert c.get("big") == big
many = c.get_many(["big", "a", "big"])
assert many["big"] == big and many["a"] == b"1"
assert c.incr("n", 1) is None and c.set("n", b"5") and c.incr("n", 2) == 7
assert c.delete("a") and c.get("a") is None
print("ok")
"#;
    for bin in binaries() {
        let srv = start(bin, &pki.args("ssl_verify_mode=2"));
        let out = Command::new(DEBIAN_PYTHON)
            .args(["-c", script, &srv.port.to_string()])
            .args([pki.path("ca.crt"), pki.path("client.crt"), pki.path("client.key")])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "ok",
            "{bin}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Plaintext on a TLS port, a client without a certificate, and one whose certificate comes
/// from another CA, all under `ssl_verify_mode=2`: no reply, the connection closes, and
/// rustcached counts each failed handshake.
#[test]
fn plaintext_and_clients_without_a_trusted_certificate_are_refused() {
    let pki = Pki::new("refused");
    for bin in binaries() {
        let srv = start(bin, &pki.args("ssl_verify_mode=2"));
        let mut plain = srv.connect();
        plain.write_all(b"version\r\n").unwrap();
        let (got, closed) = read_to_close(&mut plain);
        assert!(closed && !String::from_utf8_lossy(&got).contains("VERSION"), "{bin}: plaintext got {got:?}");
        refused(bin, connect(srv.port, &pki.client(None, BOTH)));
        refused(bin, connect(srv.port, &pki.client(Some("stranger"), BOTH)));
        // and a client with a certificate from the CA is served
        let mut ok = connect(srv.port, &pki.client(Some("client"), BOTH)).unwrap();
        talk(bin, &mut ok, b"mn\r\n", b"MN\r\n");
        if bin == rustcached_bin() {
            ok.write_all(b"stats\r\n").unwrap();
            let text = read_stats(&mut ok);
            assert_eq!(text.get("ssl_handshake_errors").map(String::as_str), Some("3"), "{text:?}");
        }
    }
}

/// `stats` over any stream, as a map.
fn read_stats(s: &mut impl Read) -> std::collections::BTreeMap<String, String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 16384];
    while !out.ends_with(b"END\r\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed in the middle of stats");
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| l.strip_prefix("STAT "))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `-l notls:<addr>:<port>` serves plaintext beside the TLS listener; without `-Z` it is
/// refused as memcached refuses it.
#[test]
fn notls_listener_serves_plaintext_beside_tls() {
    let pki = Pki::new("notls");
    for bin in binaries() {
        let plain_port = common::free_port();
        let mut args = pki.args("");
        args.extend(["-l".into(), format!("notls:127.0.0.1:{plain_port}")]);
        let srv = start(bin, &args);
        let mut tls = connect(srv.port, &pki.client(None, BOTH)).unwrap();
        talk(bin, &mut tls, b"set k 0 0 2\r\nhi\r\n", b"STORED\r\n");
        let mut plain = TcpStream::connect(("127.0.0.1", plain_port)).unwrap();
        plain.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        expect(&mut plain, b"get k\r\n", b"VALUE k 0 2\r\nhi\r\nEND\r\n");
        // the plaintext port does not speak TLS
        refused(bin, connect(plain_port, &pki.client(None, BOTH)));
        let (code, msg) = try_start(bin, &["-l", &format!("notls:127.0.0.1:{plain_port}")]).err().unwrap();
        assert_eq!(code, 71, "{bin}: {msg}");
        assert!(msg.starts_with("'notls' option is valid only when SSL is enabled"), "{bin}: {msg}");
    }
}

/// `refresh_certs` loads the certificate files again: new connections get the new
/// certificate, connections already open carry on; a file that cannot be read keeps the old
/// one and answers memcached's error (whatever `noreply` says).
#[test]
fn refresh_certs_picks_up_a_new_certificate() {
    let pki = Pki::new("refresh");
    for bin in binaries() {
        std::fs::copy(pki.path("server-a.crt"), pki.path("server.crt")).unwrap();
        std::fs::copy(pki.path("server-a.key"), pki.path("server.key")).unwrap();
        let srv = start(bin, &pki.args(""));
        // a fresh client each time: a resumed session would show the certificate it began with
        let cfg = || pki.client(None, BOTH);
        let mut old = connect(srv.port, &cfg()).unwrap();
        assert_eq!(old.conn.peer_certificates().unwrap()[0], pki.der("server-a.crt"), "{bin}");
        std::fs::copy(pki.path("server-b.crt"), pki.path("server.crt")).unwrap();
        std::fs::copy(pki.path("server-b.key"), pki.path("server.key")).unwrap();
        talk(bin, &mut old, b"refresh_certs\r\nrefresh_certs noreply\r\nmn\r\n", b"OK\r\nMN\r\n");
        let new = connect(srv.port, &cfg()).unwrap();
        assert_eq!(new.conn.peer_certificates().unwrap()[0], pki.der("server-b.crt"), "{bin}");
        talk(bin, &mut old, b"set k 0 0 1\r\nx\r\n", b"STORED\r\n");
        std::fs::remove_file(pki.path("server.crt")).unwrap();
        for req in [&b"refresh_certs\r\n"[..], b"refresh_certs noreply\r\n"] {
            old.write_all(req).unwrap();
            let line = read_line(&mut old);
            let want = format!("Error loading the certificate chain: {} : ", pki.path("server.crt"));
            assert!(line.starts_with(&want), "{bin}: {line:?}");
        }
        let still = connect(srv.port, &cfg()).unwrap();
        assert_eq!(still.conn.peer_certificates().unwrap()[0], pki.der("server-b.crt"), "{bin}");
        // without -Z there is nothing to refresh
        let plain = try_start(bin, &[]).unwrap();
        expect(
            &mut plain.connect(),
            b"refresh_certs\r\nrefresh_certs noreply\r\n",
            b"Error TLS not enabled\r\n".repeat(2).as_slice(),
        );
    }
}

fn read_line(s: &mut impl Read) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        s.read_exact(&mut b).unwrap();
        line.push(b[0]);
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// A binary response: (opcode, status, opaque, extras, value).
fn bin_resp(s: &mut impl Read) -> (u8, u16, u32, Vec<u8>, Vec<u8>) {
    let mut h = [0u8; 24];
    s.read_exact(&mut h).unwrap();
    assert_eq!(h[0], 0x81);
    let body = u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize;
    let mut b = vec![0; body];
    s.read_exact(&mut b).unwrap();
    let (klen, elen) = (u16::from_be_bytes([h[2], h[3]]) as usize, h[4] as usize);
    let status = u16::from_be_bytes([h[6], h[7]]);
    let opaque = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
    (h[1], status, opaque, b[..elen].to_vec(), b[elen + klen..].to_vec())
}

const GET: u8 = 0x00;
const SET: u8 = 0x01;
const SASL_AUTH: u8 = 0x21;

/// The binary protocol (a pipelined set and get of a 300 KB value, quiet gets, noop) and the
/// meta protocol over TLS, against both servers.
#[test]
fn binary_and_meta_over_tls() {
    let pki = Pki::new("protocols");
    let value: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    for bin in binaries() {
        let srv = start(bin, &pki.args(""));
        let mut s = connect(srv.port, &pki.client(None, BOTH)).unwrap();
        let mut req = binary_request(SET, 1, &[0, 0, 0, 7, 0, 0, 0, 0], b"bk", &value);
        if bin != rustcached_bin() {
            // memcached 1.6.18 does not look at what OpenSSL already decrypted past a large
            // value (later releases check SSL_pending) and would wait for more input forever
            s.write_all(&req).unwrap();
            assert_eq!(bin_resp(&mut s).1, 0, "{bin}: set");
            req.clear();
        }
        req.extend(binary_request(GET, 2, &[], b"bk", &[]));
        req.extend(binary_request(0x09, 3, &[], b"missing", &[])); // GETQ: a miss says nothing
        req.extend(binary_request(0x0a, 4, &[], b"", &[])); // NOOP
        s.write_all(&req).unwrap();
        if bin == rustcached_bin() {
            assert_eq!(bin_resp(&mut s).1, 0, "{bin}: set");
        }
        let (op, status, opaque, extras, got) = bin_resp(&mut s);
        assert_eq!((op, status, opaque, extras), (GET, 0, 2, vec![0, 0, 0, 7]), "{bin}");
        assert!(got == value, "{bin}: value differs");
        assert_eq!(bin_resp(&mut s).0, 0x0a, "{bin}: GETQ miss is quiet, then NOOP");
        let mut m = connect(srv.port, &pki.client(None, BOTH)).unwrap();
        talk(
            bin,
            &mut m,
            b"ms mk 2 T0 F5\r\nhi\r\nmg mk v f\r\nmg nope v\r\nmn\r\n",
            b"HD\r\nVA 2 f5\r\nhi\r\nEN\r\nMN\r\n",
        );
    }
}

/// SASL (binary PLAIN) over TLS: refused before authentication, served after.
#[test]
fn sasl_over_tls() {
    let pki = Pki::new("sasl");
    let pwdb = pki.path("pwdb");
    std::fs::write(&pwdb, "alice:secret\n").unwrap();
    let mut args = pki.args("");
    args.push("-S".into());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let srv = Server::start_env(&argv, &[("MEMCACHED_SASL_PWDB", &pwdb)]);
    let mut s = connect(srv.port, &pki.client(None, BOTH)).unwrap();
    s.write_all(&binary_request(SASL_AUTH, 1, &[], b"PLAIN", b"\0alice\0wrong")).unwrap();
    assert_eq!(bin_resp(&mut s).1, 0x20, "wrong password: auth error");
    s.write_all(&binary_request(SASL_AUTH, 2, &[], b"PLAIN", b"\0alice\0secret")).unwrap();
    let (_, status, _, _, value) = bin_resp(&mut s);
    assert_eq!((status, value.as_slice()), (0, &b"Authenticated"[..]));
    s.write_all(&binary_request(SET, 3, &[0; 8], b"k", b"v")).unwrap();
    assert_eq!(bin_resp(&mut s).1, 0);
    s.write_all(&binary_request(GET, 4, &[], b"k", b"")).unwrap();
    assert_eq!(bin_resp(&mut s).4, b"v");
    // a connection that does not authenticate is refused and closed
    let mut other = connect(srv.port, &pki.client(None, BOTH)).unwrap();
    other.write_all(&binary_request(GET, 5, &[], b"k", b"")).unwrap();
    assert_eq!(bin_resp(&mut other).1, 0x20);
}

/// The `stats` and `stats settings` TLS fields, as memcached shows them (names, order of
/// appearance, values that do not depend on time or the TLS library).
#[test]
fn stats_and_settings_show_tls_like_memcached() {
    let pki = Pki::new("stats");
    let mut seen = Vec::new();
    for bin in binaries() {
        for extra in ["", "ssl_session_cache,ssl_verify_mode=1,ssl_wbuf_size=8"] {
            let srv = start(bin, &pki.args(extra));
            let mut s = connect(srv.port, &pki.client(Some("client"), BOTH)).unwrap();
            s.write_all(b"stats\r\n").unwrap();
            let general = read_stats(&mut s);
            s.write_all(b"stats settings\r\n").unwrap();
            let settings = read_stats(&mut s);
            let ssl = |m: &std::collections::BTreeMap<String, String>| -> Vec<(String, String)> {
                m.iter()
                    .filter(|(k, _)| k.starts_with("ssl_") || k.contains("cert"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            };
            let mut g = ssl(&general);
            for (k, v) in &mut g {
                if k == "time_since_server_cert_refresh" || k == "ssl_new_sessions" {
                    assert!(v.parse::<u64>().is_ok(), "{bin}: {k} {v}");
                    *v = "N".into();
                }
            }
            seen.push((bin, extra, g, ssl(&settings)));
            // without -Z: the settings say no, and `stats` has no TLS lines
            let plain = try_start(bin, &[]).unwrap();
            let mut p = plain.connect();
            assert!(ssl(&stats(&mut p, "")).is_empty(), "{bin}");
            assert_eq!(stats(&mut p, "settings")["ssl_enabled"], "no", "{bin}");
        }
    }
    let ours: Vec<_> = seen.iter().filter(|s| s.0 == rustcached_bin()).collect();
    assert_eq!(ours[1].3.iter().find(|(k, _)| k == "ssl_verify_mode").unwrap().1, "1");
    assert_eq!(ours[1].3.iter().find(|(k, _)| k == "ssl_wbuf_size").unwrap().1, "8192");
    assert!(ours[1].2.iter().any(|(k, _)| k == "ssl_new_sessions"));
    assert!(!ours[0].2.iter().any(|(k, _)| k == "ssl_new_sessions"));
    for theirs in seen.iter().filter(|s| s.0 != rustcached_bin()) {
        let mine = ours.iter().find(|s| s.1 == theirs.1).unwrap();
        assert_eq!(mine.2, theirs.2, "stats, -o {}", theirs.1);
        assert_eq!(mine.3, theirs.3, "stats settings, -o {}", theirs.1);
    }
}

/// `ssl_session_cache`: a client resumes its session (and `ssl_new_sessions` counts the
/// sessions stored); without it every handshake is a full one.
#[test]
fn session_cache_resumes_sessions() {
    let pki = Pki::new("sessions");
    for versions in [&[&rustls::version::TLS13][..], &[&rustls::version::TLS12][..]] {
        for cache in [true, false] {
            let srv = start(rustcached_bin(), &pki.args(if cache { "ssl_session_cache" } else { "" }));
            let cfg = pki.client(None, versions);
            let mut first = connect(srv.port, &cfg).unwrap();
            talk("first", &mut first, b"mn\r\n", b"MN\r\n"); // TLS 1.3 tickets come after the handshake
            let mut second = connect(srv.port, &cfg).unwrap();
            talk("second", &mut second, b"mn\r\n", b"MN\r\n");
            let kind = second.conn.handshake_kind();
            let want = if cache { rustls::HandshakeKind::Resumed } else { rustls::HandshakeKind::Full };
            assert_eq!(kind, Some(want), "{versions:?} cache {cache}");
            second.write_all(b"stats\r\n").unwrap();
            let st = read_stats(&mut second);
            if cache {
                assert!(st["ssl_new_sessions"].parse::<u64>().unwrap() >= 1, "{st:?}");
            }
        }
    }
}

/// `ssl_min_version=3` refuses a TLS 1.2 client; `ssl_ciphers` limits the TLS 1.2 suites to
/// those listed (a client offering only others is refused).
#[test]
fn min_version_and_ciphers_are_honoured() {
    let pki = Pki::new("versions");
    let tls12 = &[&rustls::version::TLS12][..];
    let tls13 = &[&rustls::version::TLS13][..];
    let srv = start(rustcached_bin(), &pki.args("ssl_min_version=3"));
    refused("TLS 1.2 client, min 1.3", connect(srv.port, &pki.client(None, tls12)));
    let mut ok = connect(srv.port, &pki.client(None, tls13)).unwrap();
    talk("TLS 1.3", &mut ok, b"mn\r\n", b"MN\r\n");

    let only = |name: &str| {
        let mut p = rustls::crypto::ring::default_provider();
        p.cipher_suites.retain(|s| s.suite().as_str() == Some(name));
        p
    };
    let srv = start(rustcached_bin(), &pki.args("ssl_ciphers=ECDHE-RSA-AES256-GCM-SHA384"));
    let aes128 = pki.client_with(None, tls12, only("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"));
    refused("AES128 client, AES256 server", connect(srv.port, &aes128));
    let aes256 = pki.client_with(None, tls12, only("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"));
    let mut ok = connect(srv.port, &aes256).unwrap();
    talk("AES256", &mut ok, b"mn\r\n", b"MN\r\n");
    let mut ok13 = connect(srv.port, &pki.client(None, tls13)).unwrap();
    talk("TLS 1.3 suites are not limited", &mut ok13, b"mn\r\n", b"MN\r\n");
}

/// `ssl_wbuf_size` bounds the TLS records a connection holds for the socket: with 1 KB, a
/// client reading slowly still gets every byte of large values, in order, before `quit`
/// closes the connection.
#[test]
fn small_wbuf_size_still_delivers_large_values() {
    let pki = Pki::new("wbuf");
    let srv = start(rustcached_bin(), &pki.args("ssl_wbuf_size=1"));
    let mut s = connect_narrow(srv.port, &pki.client(None, BOTH)).unwrap();
    let value: Vec<u8> = (0..900_000u32).map(|i| (i % 253) as u8).collect();
    let mut req = format!("set v 0 0 {}\r\n", value.len()).into_bytes();
    req.extend_from_slice(&value);
    req.extend_from_slice(b"\r\n");
    talk("set", &mut s, &req, b"STORED\r\n");
    let mut req = b"get v\r\n".repeat(12);
    req.extend_from_slice(b"quit\r\n"); // closing waits until the socket took every record
    s.write_all(&req).unwrap();
    std::thread::sleep(Duration::from_millis(300)); // let the server fill what it may
    let mut want = Vec::new();
    for _ in 0..12 {
        want.extend_from_slice(format!("VALUE v 0 {}\r\n", value.len()).as_bytes());
        want.extend_from_slice(&value);
        want.extend_from_slice(b"\r\nEND\r\n");
    }
    let mut got = vec![0; want.len()];
    let mut at = 0;
    while at < got.len() {
        let end = (at + 7000).min(got.len());
        s.read_exact(&mut got[at..end]).unwrap();
        at = end;
    }
    assert!(got == want, "values arrive intact");
    let mut rest = [0u8; 16];
    assert_eq!(s.read(&mut rest).unwrap(), 0, "then close_notify");
}

/// Settings that cannot be honoured stop startup, with memcached's message where it has one.
#[test]
fn unusable_tls_settings_are_refused() {
    let pki = Pki::new("options");
    let code = |bin: &str, extra: &str| -> (i32, String) {
        let args = pki.args(extra);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        try_start(bin, &argv).err().unwrap_or_else(|| panic!("{bin} started with -o {extra}"))
    };
    for bin in binaries() {
        let (c, msg) = code(bin, "ssl_ciphers=BOGUS");
        assert_eq!(c, 64, "{bin}: {msg}");
        assert!(msg.contains("Error setting the provided cipher(s): BOGUS"), "{bin}: {msg}");
        assert_eq!(code(bin, "ssl_verify_mode=4").0, 1, "{bin}");
        assert_eq!(code(bin, "ssl_min_version=9").0, 1, "{bin}");
        let missing = pki.path("missing.crt");
        let (c, msg) = code(bin, &format!("ssl_chain_cert={missing}"));
        assert_eq!(c, 64, "{bin}: {msg}");
        assert!(msg.contains(&format!("Error loading the certificate chain: {missing} : ")), "{bin}: {msg}");
        let (c, msg) = code(bin, &format!("ssl_key={}", pki.path("client.key")));
        assert_eq!(c, 64, "{bin}: a key that is not the certificate's: {msg}");
        let (c, msg) = try_start(bin, &["-Z", "-p", "0"]).err().unwrap();
        assert_eq!((c, msg.as_str()), (64, "ERROR: You cannot enable SSL without a TCP port."), "{bin}");
    }
    // what rustls cannot do is refused (memcached with OpenSSL accepts these)
    for (extra, want) in [
        ("ssl_kernel_tls", 64),
        ("ssl_keyformat=2", 1),
        ("ssl_min_version=1", 1),
        ("ssl_ciphers=TLS_AES_128_GCM_SHA256", 64),
    ] {
        let (c, msg) = code(rustcached_bin(), extra);
        assert_eq!(c, want, "-o {extra}: {msg}");
    }
    let args = ["-Z", "-o"];
    let o = format!("ssl_chain_cert={},ssl_key={},ssl_verify_mode=2", pki.path("server.crt"), pki.path("server.key"));
    let (c, msg) = try_start(rustcached_bin(), &[args[0], args[1], &o]).err().unwrap();
    assert_eq!(c, 64, "verify mode 2 without a CA: {msg}");
    assert!(msg.contains("needs ssl_ca_cert"), "{msg}");
}

/// A TLS client that never reads is bounded like a plaintext one: its replies wait under the
/// connection's backpressure, at most `ssl_wbuf_size` of them encrypted (without that bound
/// rustls would hold a whole backpressure round), and another client on the same worker is
/// still served.
#[test]
fn tls_client_that_never_reads_is_bounded() {
    let pki = Pki::new("hog");
    let mut args = pki.args("");
    args.extend(["-t".into(), "1".into()]);
    let srv = start(rustcached_bin(), &args);
    let mut s = connect(srv.port, &pki.client(None, BOTH)).unwrap();
    let value = "x".repeat(100_000);
    talk("set", &mut s, format!("set big 0 0 {}\r\n{value}\r\n", value.len()).as_bytes(), b"STORED\r\n");
    let mut hog = connect(srv.port, &pki.client(None, BOTH)).unwrap();
    talk("hog", &mut hog, b"mn\r\n", b"MN\r\n");
    let before = rss_kb(srv.child.id());
    hog.sock.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    // ask for ~1 GB of replies and never read them
    let req = b"get big\r\n".repeat(1000);
    for _ in 0..10 {
        if hog.write_all(&req).is_err() {
            break;
        }
    }
    let mut other = connect(srv.port, &pki.client(None, BOTH)).unwrap();
    talk("other", &mut other, b"get nothing\r\n", b"END\r\n");
    std::thread::sleep(Duration::from_secs(2)); // time to encrypt far more than the bound
    let grown = rss_kb(srv.child.id()) - before;
    // one backpressure round (256 pinned 100 KB values) held encrypted would be 25 MB
    assert!(grown < 8 * 1024, "RSS grew {grown} kB while a TLS client does not read");
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// `-o idle_timeout` closes idle TLS connections as it closes plaintext ones (with a
/// `close_notify`), and leaves an active one alone.
#[test]
fn idle_tls_connections_are_closed() {
    let pki = Pki::new("idle");
    let mut args = pki.args("");
    args.extend(["-o".into(), "idle_timeout=1".into()]);
    let srv = start(rustcached_bin(), &args);
    let mut idle = connect(srv.port, &pki.client(None, BOTH)).unwrap();
    let mut active = connect(srv.port, &pki.client(None, BOTH)).unwrap();
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_millis(3500) {
        talk("active", &mut active, b"mn\r\n", b"MN\r\n");
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut buf = [0u8; 16];
    assert_eq!(idle.read(&mut buf).unwrap(), 0, "the idle connection was closed");
    active.write_all(b"stats\r\n").unwrap();
    assert_eq!(read_stats(&mut active)["idle_kicks"], "1");
}

//! TLS settings: `-Z` and memcached's `-o ssl_*` keys, validated into `TlsConf`.
//!
//! Owns: the names, defaults and startup messages of the TLS options, what each means for
//! rustls (verify modes, protocol versions, OpenSSL cipher names mapped to rustls suites), and
//! the values `stats settings` shows for them. Knows nothing of files or sockets: certificates
//! are read by `server::tls`, which builds the rustls configuration from these settings.

use std::path::PathBuf;

/// memcached's `SSL_FILETYPE_PEM`, the only key format accepted (`ssl_keyformat`).
pub const KEYFORMAT_PEM: i32 = 1;
/// memcached's default per-connection TLS output buffer (`ssl_wbuf_size`, in bytes).
pub const DEFAULT_WBUF_SIZE: usize = 16 * 1024;

/// Client certificate checking, `ssl_verify_mode` 0..=3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verify {
    /// 0: no client certificate is asked for.
    None,
    /// 1: one is asked for, and checked when sent.
    Request,
    /// 2: one is required.
    Require,
    /// 3: required on the first handshake only; rustls never renegotiates, so as 2.
    Once,
}

impl Verify {
    /// The OpenSSL flag word memcached prints in `stats settings` (`SSL_VERIFY_PEER` = 1,
    /// `| FAIL_IF_NO_PEER_CERT` = 3, `| CLIENT_ONCE` = 7).
    pub fn openssl_flags(self) -> u32 {
        match self {
            Verify::None => 0,
            Verify::Request => 1,
            Verify::Require => 3,
            Verify::Once => 7,
        }
    }

    pub fn wants_client_cert(self) -> bool {
        self != Verify::None
    }
}

/// The lowest protocol version accepted (`ssl_min_version`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MinVersion {
    Tls12,
    Tls13,
}

impl MinVersion {
    pub fn stat_name(self) -> &'static str {
        match self {
            MinVersion::Tls12 => "tlsv1.2",
            MinVersion::Tls13 => "tlsv1.3",
        }
    }
}

/// TLS 1.2 cipher suites by their OpenSSL names (what `ssl_ciphers` lists), as rustls knows
/// them by IANA name. rustls implements no other TLS 1.2 suites; TLS 1.3 suites are not
/// affected by `ssl_ciphers`, as with OpenSSL's cipher list.
pub const CIPHERS: &[(&str, &str)] = &[
    ("ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    ("ECDHE-ECDSA-AES256-GCM-SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
    ("ECDHE-ECDSA-CHACHA20-POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
    ("ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    ("ECDHE-RSA-AES256-GCM-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
    ("ECDHE-RSA-CHACHA20-POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
];

/// Validated TLS settings (all off unless `-Z`).
#[derive(Clone, Debug)]
pub struct TlsConf {
    pub enabled: bool,
    pub chain_cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub verify: Verify,
    pub ca_cert: Option<PathBuf>,
    /// `ssl_ciphers` as given, and the IANA names of the TLS 1.2 suites it selects.
    pub ciphers: Option<(String, Vec<&'static str>)>,
    pub wbuf_size: usize,
    pub session_cache: bool,
    pub min_version: MinVersion,
}

impl Default for TlsConf {
    fn default() -> TlsConf {
        TlsConf {
            enabled: false,
            chain_cert: None,
            key: None,
            verify: Verify::None,
            ca_cert: None,
            ciphers: None,
            wbuf_size: DEFAULT_WBUF_SIZE,
            session_cache: false,
            min_version: MinVersion::Tls12,
        }
    }
}

/// A refused TLS setting: the message and memcached's exit code for it.
pub type Refusal = (String, i32);

impl TlsConf {
    /// Apply one `-o ssl_*` key. `Ok(false)` when `key` is not a TLS key.
    pub fn apply(&mut self, key: &str, val: Option<&str>) -> Result<bool, Refusal> {
        let need = |what: &str| val.filter(|v| !v.is_empty()).ok_or_else(|| (format!("Missing {what} argument"), 1));
        let int = |what: &str| -> Result<i64, Refusal> {
            need(what)?.parse::<i64>().map_err(|_| (format!("could not parse argument to {what}"), 1))
        };
        match key {
            "ssl_chain_cert" => self.chain_cert = Some(need(key)?.into()),
            "ssl_key" => self.key = Some(need(key)?.into()),
            "ssl_ca_cert" => self.ca_cert = Some(need(key)?.into()),
            "ssl_verify_mode" => {
                self.verify = match int(key)? {
                    0 => Verify::None,
                    1 => Verify::Request,
                    2 => Verify::Require,
                    3 => Verify::Once,
                    _ => return Err(("Invalid ssl_verify_mode. Use help to see valid options.".into(), 1)),
                }
            }
            "ssl_keyformat" => {
                let f = int(key)?;
                if f != i64::from(KEYFORMAT_PEM) {
                    return Err((
                        format!("ssl_keyformat={f} is not supported: only PEM keys (ssl_keyformat=1) can be loaded"),
                        1,
                    ));
                }
            }
            "ssl_ciphers" => {
                let given = need(key)?;
                let mut suites = Vec::new();
                for name in given.split([':', ' ']).filter(|n| !n.is_empty()) {
                    match CIPHERS.iter().find(|(openssl, _)| *openssl == name) {
                        Some((_, iana)) => suites.push(*iana),
                        None => {
                            let known: Vec<&str> = CIPHERS.iter().map(|c| c.0).collect();
                            return Err((
                                format!(
                                    "Error setting the provided cipher(s): {given}\n{name} is not a TLS 1.2 cipher \
                                     suite rustcached (rustls) has; use some of: {}",
                                    known.join(":")
                                ),
                                64,
                            ));
                        }
                    }
                }
                self.ciphers = Some((given.to_string(), suites));
            }
            "ssl_wbuf_size" => {
                let kb = need(key)?.parse::<u32>().map_err(|_| (format!("could not parse argument to {key}"), 1))?;
                if kb == 0 {
                    return Err(("ssl_wbuf_size must be at least 1 (kilobyte)".into(), 1));
                }
                self.wbuf_size = kb as usize * 1024;
            }
            "ssl_session_cache" => self.session_cache = true,
            "ssl_kernel_tls" => {
                return Err((
                    "Kernel TLS offload is not available (rustcached encrypts in user space with rustls)".into(),
                    64,
                ))
            }
            "ssl_min_version" => {
                self.min_version =
                    match int(key)? {
                        0 | 1 => return Err((
                            "ssl_min_version below 2 (tlsv1.2) is not supported: rustls implements TLS 1.2 and 1.3 \
                             only"
                                .into(),
                            1,
                        )),
                        2 => MinVersion::Tls12,
                        3 => MinVersion::Tls13,
                        _ => return Err(("Invalid ssl_min_version. Use help to see valid options.".into(), 1)),
                    }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// `stats settings` values, in memcached's order.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        let path = |p: &Option<PathBuf>, none: &str| p.as_ref().map_or(none.to_string(), |p| p.display().to_string());
        vec![
            ("ssl_enabled", if self.enabled { "yes" } else { "no" }.into()),
            ("ssl_chain_cert", path(&self.chain_cert, "(null)")),
            ("ssl_key", path(&self.key, "(null)")),
            ("ssl_verify_mode", self.verify.openssl_flags().to_string()),
            ("ssl_keyformat", KEYFORMAT_PEM.to_string()),
            ("ssl_ciphers", self.ciphers.as_ref().map_or("NULL".into(), |c| c.0.clone())),
            ("ssl_ca_cert", path(&self.ca_cert, "NULL")),
            ("ssl_wbuf_size", self.wbuf_size.to_string()),
            ("ssl_session_cache", if self.session_cache { "yes" } else { "no" }.into()),
            ("ssl_kernel_tls", "no".into()),
            ("ssl_min_version", self.min_version.stat_name().into()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_honoured_or_refused() {
        let mut t = TlsConf::default();
        assert_eq!(t.apply("ssl_verify_mode", Some("2")), Ok(true));
        assert_eq!(t.verify.openssl_flags(), 3);
        assert_eq!(t.apply("ssl_verify_mode", Some("4")).unwrap_err().1, 1);
        assert_eq!(t.apply("ssl_wbuf_size", Some("4")), Ok(true));
        assert_eq!(t.wbuf_size, 4096);
        assert_eq!(t.apply("ssl_ciphers", Some("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305")), Ok(true));
        assert_eq!(t.ciphers.as_ref().unwrap().1.len(), 2);
        assert!(t.apply("ssl_ciphers", Some("RC4-MD5")).unwrap_err().0.starts_with("Error setting the provided"));
        assert!(t.apply("ssl_min_version", Some("1")).is_err());
        assert_eq!(t.apply("ssl_min_version", Some("3")), Ok(true));
        assert!(t.apply("ssl_kernel_tls", None).is_err());
        assert!(t.apply("ssl_keyformat", Some("2")).is_err());
        assert_eq!(t.apply("ssl_keyformat", Some("1")), Ok(true));
        assert_eq!(t.apply("not_ssl", None), Ok(false));
    }
}

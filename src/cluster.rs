//! Cluster auto-discovery as ElastiCache clients expect it (`--cluster-file`).
//!
//! Owns: the cluster-file format (`parse`, pure, borrowing the text), the discovery payload and
//! its three wire forms (`config get cluster`, the pre-1.4.14 `get AmazonElastiCache:cluster`,
//! and the value of binary opcode 0x60), the list's version counter, and re-reading the file
//! (`Discovery::reload`, on SIGHUP) or replacing the list (`config set cluster`).
//! Must not know: sockets, connections, protocol framing or the store; `server::discovery`
//! decides when a request is a discovery request and calls in here.
//!
//! The payload is two lines, each ended by `\n`: the version (1 at start, one more for every
//! change of the list) and the nodes as `host|ip|port` separated by single spaces. Both text
//! replies frame it like a value, so clients that read until `\n\r\nEND\r\n` and clients that
//! count `<len>` bytes both work; each reply is built once per version and sent with one write.

use std::fmt;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

/// The key of the legacy form, `get AmazonElastiCache:cluster` (engines before 1.4.14).
pub const LEGACY_KEY: &[u8] = b"AmazonElastiCache:cluster";
/// The configuration name in `config get cluster` / `config set cluster`.
pub const CONFIG_NAME: &[u8] = b"cluster";
/// Binary protocol opcodes of ElastiCache's cluster clients: config get and config set.
pub const BINARY_CONFIG_GET: u8 = 0x60;
pub const BINARY_CONFIG_SET: u8 = 0x64;
/// Longest host name accepted (DNS limit).
pub const HOST_MAX: usize = 253;

/// One node as written in the file: `host|ip|port`, or `host:port` (`ip` is then `None`
/// unless `host` is itself an IP address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node<'a> {
    pub host: &'a str,
    pub ip: Option<IpAddr>,
    pub port: u16,
}

/// A node with its address resolved, as served.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Member {
    pub host: String,
    pub ip: IpAddr,
    pub port: u16,
}

/// Why a cluster file (or a `config set` payload) was refused: 1-based line and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.line, self.message)
    }
}

fn bad(line: usize, message: impl Into<String>) -> ParseError {
    ParseError { line, message: message.into() }
}

/// Parse the cluster file: one node per line, `host|ip|port` or `host:port` (IPv6 as
/// `[addr]:port`), `#` starts a comment, blank lines are skipped. At least one node; no node
/// twice (same host and port).
pub fn parse(text: &str) -> Result<Vec<Node<'_>>, ParseError> {
    let mut nodes: Vec<Node<'_>> = Vec::new();
    let mut last_line = 0;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        last_line = n;
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if line.contains(char::is_whitespace) {
            return Err(bad(n, format!("one node per line, got {line:?}")));
        }
        let node = parse_node(line).map_err(|m| bad(n, m))?;
        if nodes.iter().any(|o| o.host == node.host && o.port == node.port) {
            return Err(bad(n, format!("{line} is listed twice")));
        }
        nodes.push(node);
    }
    if nodes.is_empty() {
        return Err(bad(last_line.max(1), "no nodes listed"));
    }
    Ok(nodes)
}

/// One `host|ip|port` or `host:port` token.
pub fn parse_node(tok: &str) -> Result<Node<'_>, String> {
    let (host, ip, port) = if tok.contains('|') {
        let mut parts = tok.split('|');
        let (Some(h), Some(ip), Some(p), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(format!("expected host|ip|port, got {tok:?}"));
        };
        let ip: IpAddr = ip.parse().map_err(|_| format!("{ip:?} is not an IP address"))?;
        (h, Some(ip), p)
    } else {
        let (h, p) = tok.rsplit_once(':').ok_or_else(|| format!("expected host|ip|port or host:port, got {tok:?}"))?;
        let h = match h.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => v6,
            None if h.contains(':') => return Err(format!("write IPv6 addresses as [addr]:port, got {tok:?}")),
            None => h,
        };
        (h, h.parse::<IpAddr>().ok(), p)
    };
    if host.is_empty() || host.len() > HOST_MAX {
        return Err(format!("bad host name in {tok:?}"));
    }
    if !host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':')) {
        return Err(format!("bad host name {host:?}"));
    }
    let port = match port.parse::<u16>() {
        Ok(p) if p != 0 && port.bytes().all(|b| b.is_ascii_digit()) => p,
        _ => return Err(format!("bad port {port:?} (1-65535)")),
    };
    Ok(Node { host, ip, port })
}

/// Resolve the nodes written as `name:port` (their first address, IPv4 preferred, as the
/// clients connect to the `ip` field). Not pure: this asks the system resolver.
pub fn resolve(nodes: &[Node<'_>], lines: &str) -> Result<Vec<Member>, ParseError> {
    nodes
        .iter()
        .map(|n| {
            let ip = match n.ip {
                Some(ip) => ip,
                None => {
                    let addrs: Vec<IpAddr> = (n.host, n.port)
                        .to_socket_addrs()
                        .map_err(|e| bad(line_of(lines, n.host), format!("cannot resolve {}: {e}", n.host)))?
                        .map(|a| a.ip())
                        .collect();
                    addrs
                        .iter()
                        .find(|a| a.is_ipv4())
                        .or(addrs.first())
                        .copied()
                        .ok_or_else(|| bad(line_of(lines, n.host), format!("{} has no address", n.host)))?
                }
            };
            Ok(Member { host: n.host.to_string(), ip, port: n.port })
        })
        .collect()
}

/// The line of the first mention of `host` (for resolver errors).
fn line_of(text: &str, host: &str) -> usize {
    text.lines().position(|l| l.split('#').next().unwrap_or("").contains(host)).map_or(1, |i| i + 1)
}

/// Read, parse and resolve a cluster file. Errors read `path:line: message`.
pub fn load_file(path: &Path) -> Result<Vec<Member>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let nodes = parse(&text).map_err(|e| format!("{}:{e}", path.display()))?;
    resolve(&nodes, &text).map_err(|e| format!("{}:{e}", path.display()))
}

/// Append the payload: `<version>\n<host>|<ip>|<port> ...\n`.
pub fn encode_payload(version: u64, members: &[Member], out: &mut Vec<u8>) {
    out.extend_from_slice(itoa::Buffer::new().format(version).as_bytes());
    out.push(b'\n');
    for (i, m) in members.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(m.host.as_bytes());
        out.push(b'|');
        out.extend_from_slice(m.ip.to_string().as_bytes());
        out.push(b'|');
        out.extend_from_slice(itoa::Buffer::new().format(m.port).as_bytes());
    }
    out.push(b'\n');
}

/// Append `<head> 0 <len>\r\n<payload>\r\nEND\r\n` (head: `CONFIG cluster` or
/// `VALUE AmazonElastiCache:cluster`).
pub fn encode_reply(head: &[u8], payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(head);
    out.extend_from_slice(b" 0 ");
    out.extend_from_slice(itoa::Buffer::new().format(payload.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\nEND\r\n");
}

/// Parse a `config set cluster` payload, the same bytes `config get` returns:
/// `<version>\n<host>|<ip>|<port> ...[\n]`. Nodes must be `host|ip|port`.
pub fn parse_payload(data: &[u8]) -> Result<(u64, Vec<Member>), String> {
    let text = std::str::from_utf8(data).map_err(|_| "payload is not UTF-8".to_string())?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    let (version, list) = text.split_once('\n').ok_or("expected <version>\\n<nodes>")?;
    let version: u64 = match version.parse() {
        Ok(v) if version.bytes().all(|b| b.is_ascii_digit()) => v,
        _ => return Err(format!("bad version {version:?}")),
    };
    let mut members: Vec<Member> = Vec::new();
    for tok in list.split(' ') {
        let n = parse_node(tok)?;
        let ip = n.ip.filter(|_| tok.contains('|')).ok_or_else(|| format!("expected host|ip|port, got {tok:?}"))?;
        if members.iter().any(|m| m.host == n.host && m.port == n.port) {
            return Err(format!("{tok} is listed twice"));
        }
        members.push(Member { host: n.host.to_string(), ip, port: n.port });
    }
    Ok((version, members))
}

/// One version of the list, with its replies ready to send.
#[derive(Debug)]
pub struct Snapshot {
    pub version: u64,
    pub members: Vec<Member>,
    /// `<version>\n<nodes>\n` (the binary reply's value).
    pub payload: Vec<u8>,
    /// `CONFIG cluster 0 <len>\r\n<payload>\r\nEND\r\n`
    pub config_reply: Vec<u8>,
    /// `VALUE AmazonElastiCache:cluster 0 <len>\r\n<payload>\r\nEND\r\n`
    pub legacy_reply: Vec<u8>,
}

impl Snapshot {
    pub fn new(version: u64, members: Vec<Member>) -> Snapshot {
        let mut payload = Vec::new();
        encode_payload(version, &members, &mut payload);
        let mut config_reply = Vec::new();
        encode_reply(b"CONFIG cluster", &payload, &mut config_reply);
        let mut legacy_reply = Vec::new();
        let mut head = b"VALUE ".to_vec();
        head.extend_from_slice(LEGACY_KEY);
        encode_reply(&head, &payload, &mut legacy_reply);
        Snapshot { version, members, payload, config_reply, legacy_reply }
    }
}

/// The list this node serves, shared by all workers; replaced whole on a change.
#[derive(Debug)]
pub struct Discovery {
    path: PathBuf,
    current: RwLock<Arc<Snapshot>>,
}

/// What a reload did.
#[derive(Debug, PartialEq, Eq)]
pub enum Reloaded {
    /// The list changed; now at this version.
    Changed(u64),
    /// Same list as before; version kept.
    Unchanged(u64),
}

impl Discovery {
    /// Start serving `members` (already loaded from `path`) as version 1.
    pub fn new(path: PathBuf, members: Vec<Member>) -> Discovery {
        Discovery { path, current: RwLock::new(Arc::new(Snapshot::new(1, members))) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The list now served.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.read().clone()
    }

    /// Re-read the file. A bad file changes nothing (the error says `path:line: why`).
    pub fn reload(&self) -> Result<Reloaded, String> {
        let members = load_file(&self.path)?;
        let mut cur = self.current.write();
        if cur.members == members {
            return Ok(Reloaded::Unchanged(cur.version));
        }
        let version = cur.version + 1;
        *cur = Arc::new(Snapshot::new(version, members));
        Ok(Reloaded::Changed(version))
    }

    /// `config set cluster`: serve this payload's list at its version, which must be above the
    /// current one (clients ignore a list whose version did not go up).
    pub fn set_payload(&self, data: &[u8]) -> Result<u64, String> {
        let (version, members) = parse_payload(data)?;
        let mut cur = self.current.write();
        if version <= cur.version {
            return Err(format!("version must be greater than {}", cur.version));
        }
        *cur = Arc::new(Snapshot::new(version, members));
        Ok(version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(host: &str, ip: &str, port: u16) -> Member {
        Member { host: host.into(), ip: ip.parse().unwrap(), port }
    }

    #[test]
    fn config_reply_is_byte_exact() {
        let s = Snapshot::new(1, vec![m("node1.example", "10.0.0.1", 11211), m("node2.example", "10.0.0.2", 11212)]);
        let payload = b"1\nnode1.example|10.0.0.1|11211 node2.example|10.0.0.2|11212\n";
        assert_eq!(s.payload, payload);
        let mut want = format!("CONFIG cluster 0 {}\r\n", payload.len()).into_bytes();
        want.extend_from_slice(payload);
        want.extend_from_slice(b"\r\nEND\r\n");
        assert_eq!(s.config_reply, want);
        assert_eq!(
            s.config_reply,
            b"CONFIG cluster 0 60\r\n1\nnode1.example|10.0.0.1|11211 node2.example|10.0.0.2|11212\n\r\nEND\r\n"
        );
        assert_eq!(
            s.legacy_reply,
            b"VALUE AmazonElastiCache:cluster 0 60\r\n1\nnode1.example|10.0.0.1|11211 node2.example|10.0.0.2|11212\n\r\nEND\r\n"
        );
        assert!(s.config_reply.ends_with(b"\n\r\nEND\r\n"));
    }

    #[test]
    fn file_format() {
        let text = "# three nodes\n\nnode1|10.0.0.1|11211\n  10.0.0.2:11212  # by address\n[::1]:11213\nlocalhost:1\n";
        let nodes = parse(text).unwrap();
        assert_eq!(nodes.len(), 4);
        assert_eq!(nodes[0], Node { host: "node1", ip: Some("10.0.0.1".parse().unwrap()), port: 11211 });
        assert_eq!(nodes[1], Node { host: "10.0.0.2", ip: Some("10.0.0.2".parse().unwrap()), port: 11212 });
        assert_eq!(nodes[2], Node { host: "::1", ip: Some("::1".parse().unwrap()), port: 11213 });
        assert_eq!(nodes[3], Node { host: "localhost", ip: None, port: 1 });
    }

    #[test]
    fn bad_files_name_the_line() {
        let line = |t: &str| parse(t).unwrap_err().line;
        assert_eq!(line("a|10.0.0.1|1\nb|10.0.0.1\n"), 2);
        assert_eq!(line("a|notanip|1\n"), 1);
        assert_eq!(line("# c\na:0\n"), 2);
        assert_eq!(line("a:65536\n"), 1);
        assert_eq!(line("a:+1\n"), 1);
        assert_eq!(line("a:1 b:2\n"), 1);
        assert_eq!(line("a:1\n\na:1\n"), 3);
        assert_eq!(line("::1:5\n"), 1);
        assert_eq!(line("a|b|1.2.3.4|5\n"), 1);
        assert_eq!(line("# nothing\n"), 1);
        assert_eq!(line(""), 1);
        assert_eq!(line("h\u{e9}:1\n"), 1);
        assert!(parse("# nothing\n").unwrap_err().message.contains("no nodes"));
    }

    #[test]
    fn payload_round_trips() {
        let s = Snapshot::new(7, vec![m("a", "10.0.0.1", 1), m("b", "10.0.0.2", 2)]);
        let (v, members) = parse_payload(&s.payload).unwrap();
        assert_eq!((v, members), (7, s.members.clone()));
        assert!(parse_payload(b"x\na|1.2.3.4|5\n").is_err());
        assert!(parse_payload(b"2\na:5\n").is_err());
        assert!(parse_payload(b"2\n").is_err());
    }

    #[test]
    fn versions_go_up_by_one_per_change() {
        let dir = std::env::temp_dir().join(format!("rustcached-cluster-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cluster");
        std::fs::write(&path, "a|10.0.0.1|1\nb|10.0.0.2|2\n").unwrap();
        let d = Discovery::new(path.clone(), load_file(&path).unwrap());
        assert_eq!(d.snapshot().version, 1);
        assert_eq!(d.reload(), Ok(Reloaded::Unchanged(1)));
        std::fs::write(&path, "a|10.0.0.1|1\n").unwrap();
        assert_eq!(d.reload(), Ok(Reloaded::Changed(2)));
        std::fs::write(&path, "a|10.0.0.1|1\nb|oops|2\n").unwrap();
        let e = d.reload().unwrap_err();
        assert!(e.ends_with(":2: \"oops\" is not an IP address"), "{e}");
        assert_eq!(d.snapshot().version, 2);
        assert_eq!(d.snapshot().members.len(), 1);
        assert!(d.set_payload(b"2\nc|10.0.0.3|3\n").is_err());
        assert_eq!(d.set_payload(b"5\nc|10.0.0.3|3\n"), Ok(5));
        assert_eq!(d.snapshot().payload, b"5\nc|10.0.0.3|3\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! Client-side placement for running many rustcached nodes: libmemcached-compatible ketama
//! and jump consistent hash.
//!
//! rustcached nodes never talk to each other: a client (or a proxy such as twemproxy) picks the
//! node for each key. This module owns only that arithmetic, so that our tools, tests and Rust
//! users place keys exactly where the common clients do. It knows no sockets and no protocol.
//!
//! Algorithms, as libmemcached 1.1.4 implements them (`src/libmemcached/hosts.cc`), proven by
//! the vectors in `tests/ring_vectors/` that were recorded from pylibmc and libmemcached:
//!
//! * [`Algorithm::KetamaWeighted`]: `MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED` (pylibmc
//!   `ketama_weighted`, php-memcached `OPT_LIBKETAMA_COMPATIBLE`), and twemproxy's `ketama` with
//!   `hash: md5`. Each server gets `floor(weight / total * 40 * n) * 4` points (160 when the
//!   weights are equal): 40 MD5 digests of `"host:port-i"`, four little-endian `u32` points
//!   each. Keys are hashed with MD5 too (first four bytes, little-endian).
//! * [`Algorithm::Ketama`]: `MEMCACHED_BEHAVIOR_KETAMA` (pylibmc `ketama`): 100 points per
//!   server, one per name `"host:port-i"`, and names and keys are both hashed with the client's
//!   key hash ([`Hash::OneAtATime`] is libmemcached's default, [`Hash::Md5`] with
//!   `hash="md5"`). Weights are ignored.
//! * [`Algorithm::Jump`]: Lamping and Veach's jump consistent hash over the first eight bytes
//!   of the key's MD5 (little-endian). No client uses this key hash; it is here for Rust users
//!   who want perfectly even spread and only ever add or remove the last node.
//!
//! Point names leave the port out when it is 11211 (`"10.0.0.1-0"`), as libmemcached and
//! twemproxy both do. Host names are hashed as written, never resolved: every client must be
//! given the same spelling.

use md5::{Digest, Md5};
use std::fmt;
use std::str::FromStr;

/// memcached's port, which libmemcached leaves out of point names.
pub const DEFAULT_PORT: u16 = 11211;

/// One server of a ring: where it listens and its share (`weight`, 1 unless given).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Node {
    /// As written by the user: a name, an IPv4 address, or an IPv6 address without brackets.
    pub host: String,
    pub port: u16,
    /// Relative share under [`Algorithm::KetamaWeighted`]; at least 1.
    pub weight: u32,
}

/// A server list or ring that cannot be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RingError {
    /// No server was given.
    Empty,
    /// A `host:port[:weight]` entry that does not parse; the text says why.
    BadNode(String),
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RingError::Empty => write!(f, "no servers given"),
            RingError::BadNode(why) => write!(f, "bad server: {why}"),
        }
    }
}

impl std::error::Error for RingError {}

impl Node {
    /// Parse `host`, `host:port`, `host:port:weight`, `[v6]:port[:weight]` (pylibmc's syntax;
    /// the port defaults to 11211 and the weight to 1).
    pub fn parse(spec: &str) -> Result<Node, RingError> {
        let bad = |why: &str| RingError::BadNode(format!("{spec:?}: {why}"));
        let spec = spec.trim();
        let (host, rest) = if let Some(v6) = spec.strip_prefix('[') {
            let (host, rest) = v6.split_once(']').ok_or_else(|| bad("missing ']'"))?;
            match rest {
                "" => (host, None),
                _ => (host, Some(rest.strip_prefix(':').ok_or_else(|| bad("expected ':' after ']'"))?)),
            }
        } else {
            match spec.split_once(':') {
                Some((host, rest)) => (host, Some(rest)),
                None => (spec, None),
            }
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(bad("empty or blank host"));
        }
        let (port, weight) = match rest {
            None => (DEFAULT_PORT, 1),
            Some(rest) => {
                let mut parts = rest.split(':');
                let port = parts.next().unwrap_or_default();
                let port: u16 = port.parse().map_err(|_| bad("port is not a number in 1..=65535"))?;
                let weight = match parts.next() {
                    None => 1,
                    Some(w) => w.parse().map_err(|_| bad("weight is not a number"))?,
                };
                if parts.next().is_some() {
                    return Err(bad("too many ':' (write IPv6 addresses as [addr]:port)"));
                }
                (port, weight)
            }
        };
        if port == 0 {
            return Err(bad("port 0"));
        }
        if weight == 0 {
            return Err(bad("weight must be at least 1"));
        }
        Ok(Node { host: host.to_string(), port, weight })
    }

    /// The start of this node's point names: `host`, or `host:port` unless the port is 11211.
    pub fn point_name(&self) -> String {
        if self.port == DEFAULT_PORT {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Whether `self` and `other` are the same server (weights aside).
    pub fn same_server(&self, other: &Node) -> bool {
        self.host == other.host && self.port == other.port
    }
}

impl FromStr for Node {
    type Err = RingError;
    fn from_str(s: &str) -> Result<Node, RingError> {
        Node::parse(s)
    }
}

/// `host:port` (`[v6]:port`), without the weight: what a client connects to.
impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Parse a comma-separated server list (`a:11211,b:11211:2`); blank entries are skipped.
pub fn parse_nodes(list: &str) -> Result<Vec<Node>, RingError> {
    let nodes: Vec<Node> =
        list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(Node::parse).collect::<Result<_, _>>()?;
    if nodes.is_empty() {
        return Err(RingError::Empty);
    }
    Ok(nodes)
}

/// A 32-bit key hash, computed as libhashkit does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    /// First four bytes of the MD5 digest, little-endian (`MEMCACHED_HASH_MD5`).
    Md5,
    /// Bob Jenkins' one-at-a-time, libmemcached's default (`MEMCACHED_HASH_DEFAULT`). Bytes are
    /// sign-extended as C's `char` is on x86, which matters for keys with bytes >= 0x80.
    OneAtATime,
}

impl Hash {
    pub fn digest(self, key: &[u8]) -> u32 {
        match self {
            Hash::Md5 => md5_point(&Md5::digest(key).into(), 0),
            Hash::OneAtATime => {
                let mut h: u32 = 0;
                for &b in key {
                    h = h.wrapping_add(b as i8 as u32);
                    h = h.wrapping_add(h << 10);
                    h ^= h >> 6;
                }
                h = h.wrapping_add(h << 3);
                h ^= h >> 11;
                h.wrapping_add(h << 15)
            }
        }
    }
}

/// Point `i` (0..4) of an MD5 digest: bytes `4i..4i+4` read little-endian.
fn md5_point(digest: &[u8; 16], i: usize) -> u32 {
    u32::from_le_bytes(digest[4 * i..4 * i + 4].try_into().expect("4 bytes"))
}

/// How keys are placed on nodes; see the module documentation for which client does which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    KetamaWeighted,
    Ketama(Hash),
    Jump,
}

impl Algorithm {
    /// Names for command lines: `ketama-weighted` (alias `ketama`), `ketama-md5`,
    /// `ketama-default`, `jump`.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "ketama" | "ketama-weighted" | "ketama_weighted" => Some(Algorithm::KetamaWeighted),
            "ketama-md5" => Some(Algorithm::Ketama(Hash::Md5)),
            "ketama-default" | "ketama-one-at-a-time" => Some(Algorithm::Ketama(Hash::OneAtATime)),
            "jump" => Some(Algorithm::Jump),
            _ => None,
        }
    }
}

/// libmemcached's `MEMCACHED_POINTS_PER_SERVER` (unweighted ketama).
const POINTS_PER_SERVER: u32 = 100;
/// libmemcached's `MEMCACHED_POINTS_PER_SERVER_KETAMA` and twemproxy's `KETAMA_POINTS_PER_SERVER`.
const POINTS_PER_SERVER_WEIGHTED: u32 = 160;

/// A built ring: ask it which node a key belongs to.
#[derive(Clone, Debug)]
pub struct Ring {
    nodes: Vec<Node>,
    algorithm: Algorithm,
    /// Ketama points as (position, node index), sorted like libmemcached's `continuum_item_cmp`
    /// (position, then index). Empty for jump.
    continuum: Vec<(u32, u32)>,
}

impl Ring {
    pub fn new(nodes: Vec<Node>, algorithm: Algorithm) -> Result<Ring, RingError> {
        if nodes.is_empty() {
            return Err(RingError::Empty);
        }
        let continuum = match algorithm {
            Algorithm::KetamaWeighted => weighted_continuum(&nodes),
            Algorithm::Ketama(hash) => unweighted_continuum(&nodes, hash),
            Algorithm::Jump => Vec::new(),
        };
        Ok(Ring { nodes, algorithm, continuum })
    }

    /// Parse a comma-separated server list and build a ring over it.
    pub fn parse(list: &str, algorithm: Algorithm) -> Result<Ring, RingError> {
        Ring::new(parse_nodes(list)?, algorithm)
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Number of ketama points (0 for jump).
    pub fn points(&self) -> usize {
        self.continuum.len()
    }

    /// Index into [`Ring::nodes`] of the node that owns `key`.
    pub fn node_index(&self, key: &[u8]) -> usize {
        if self.nodes.len() == 1 {
            return 0; // libmemcached does not even hash with one server
        }
        match self.algorithm {
            Algorithm::Jump => {
                let digest: [u8; 16] = Md5::digest(key).into();
                let h = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
                jump(h, self.nodes.len() as u32) as usize
            }
            Algorithm::KetamaWeighted => self.lookup(Hash::Md5.digest(key)),
            Algorithm::Ketama(hash) => self.lookup(hash.digest(key)),
        }
    }

    /// The node that owns `key`.
    pub fn node(&self, key: &[u8]) -> &Node {
        &self.nodes[self.node_index(key)]
    }

    /// The first point at or after `h`, wrapping around (libmemcached's `dispatch_host`).
    fn lookup(&self, h: u32) -> usize {
        let at = self.continuum.partition_point(|&(value, _)| value < h);
        let (_, index) = self.continuum.get(at).unwrap_or(&self.continuum[0]);
        *index as usize
    }
}

fn weighted_continuum(nodes: &[Node]) -> Vec<(u32, u32)> {
    let total: u64 = nodes.iter().map(|n| u64::from(n.weight)).sum();
    let live = nodes.len() as f32;
    let mut points = Vec::with_capacity(nodes.len() * POINTS_PER_SERVER_WEIGHTED as usize);
    for (index, node) in nodes.iter().enumerate() {
        // Single-precision, in libmemcached's order of operations, so rounding agrees.
        let pct = node.weight as f32 / total as f32;
        let per_server =
            ((pct * POINTS_PER_SERVER_WEIGHTED as f32 / 4.0 * live + 0.000_000_000_1_f32).floor() as u32) * 4;
        let base = node.point_name();
        for i in 0..per_server / 4 {
            let digest: [u8; 16] = Md5::digest(format!("{base}-{i}").as_bytes()).into();
            points.extend((0..4).map(|x| (md5_point(&digest, x), index as u32)));
        }
    }
    points.sort_unstable();
    points
}

fn unweighted_continuum(nodes: &[Node], hash: Hash) -> Vec<(u32, u32)> {
    let mut points = Vec::with_capacity(nodes.len() * POINTS_PER_SERVER as usize);
    for (index, node) in nodes.iter().enumerate() {
        let base = node.point_name();
        points.extend((0..POINTS_PER_SERVER).map(|i| (hash.digest(format!("{base}-{i}").as_bytes()), index as u32)));
    }
    points.sort_unstable();
    points
}

/// Jump consistent hash (Lamping, Veach 2014): a bucket in `0..buckets` for `key`; moving from
/// n to n+1 buckets moves only the keys that land in the new bucket. `buckets` 0 gives 0.
pub fn jump(mut key: u64, buckets: u32) -> u32 {
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < i64::from(buckets) {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b.max(0) as u32
}

/// The `i`-th synthetic key used for capacity planning (`key:0`, `key:1`, ...).
pub fn synthetic_key(i: usize) -> String {
    format!("key:{i}")
}

/// How many of `keys` synthetic keys land on each node of `ring`.
pub fn spread(ring: &Ring, keys: usize) -> Vec<usize> {
    let mut counts = vec![0; ring.nodes().len()];
    for i in 0..keys {
        counts[ring.node_index(synthetic_key(i).as_bytes())] += 1;
    }
    counts
}

/// How many of `keys` synthetic keys are owned by a different server in `after` than in
/// `before` (servers compared by host and port, so indices may differ between the rings).
pub fn moved(before: &Ring, after: &Ring, keys: usize) -> usize {
    (0..keys)
        .filter(|&i| {
            let key = synthetic_key(i);
            !before.node(key.as_bytes()).same_server(after.node(key.as_bytes()))
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(list: &str, algorithm: Algorithm) -> Ring {
        Ring::parse(list, algorithm).unwrap()
    }

    #[test]
    fn parses_pylibmc_server_syntax() {
        let n = |s: &str| Node::parse(s).unwrap();
        assert_eq!(n("a"), Node { host: "a".into(), port: 11211, weight: 1 });
        assert_eq!(n("10.0.0.1:22122"), Node { host: "10.0.0.1".into(), port: 22122, weight: 1 });
        assert_eq!(n("h:1:3"), Node { host: "h".into(), port: 1, weight: 3 });
        assert_eq!(n("[::1]:7:2"), Node { host: "::1".into(), port: 7, weight: 2 });
        assert_eq!(n("[::1]"), Node { host: "::1".into(), port: 11211, weight: 1 });
        assert_eq!(n("[::1]:7").to_string(), "[::1]:7");
        for bad in ["", ":1", "h:", "h:x", "h:0", "h:70000", "h:1:0", "h:1:x", "::1:7", "[::1", "[::1]7", "a b:1"] {
            assert!(Node::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse_nodes(" , "), Err(RingError::Empty));
        assert_eq!(parse_nodes("a:1, b:2,").unwrap().len(), 2);
    }

    #[test]
    fn point_names_leave_out_the_default_port() {
        assert_eq!(Node::parse("h").unwrap().point_name(), "h");
        assert_eq!(Node::parse("h:11212").unwrap().point_name(), "h:11212");
    }

    #[test]
    fn key_hashes_match_known_values() {
        // MD5("") = d41d8cd98f00b204e9800998ecf8427e; first four bytes little-endian.
        assert_eq!(Hash::Md5.digest(b""), 0xd98c_1dd4);
        // MD5("abc") = 900150983cd24fb0...
        assert_eq!(Hash::Md5.digest(b"abc"), 0x9850_0190);
        // Jenkins one-at-a-time of "a" (Wikipedia's reference value 0xca2e9442).
        assert_eq!(Hash::OneAtATime.digest(b"a"), 0xca2e_9442);
        // The quick-brown-fox reference value 0x519e91f5.
        assert_eq!(Hash::OneAtATime.digest(b"The quick brown fox jumps over the lazy dog"), 0x519e_91f5);
    }

    #[test]
    fn jump_matches_guava_consistent_hash() {
        // Recorded from Guava 31.1 Hashing.consistentHash(key, buckets) (Debian libguava-java).
        let buckets = [1, 2, 3, 5, 10, 57, 666, 1024, 1_000_000];
        let table: [(u64, [u32; 9]); 9] = [
            (0, [0, 0, 0, 0, 0, 0, 0, 0, 0]),
            (1, [0, 0, 0, 0, 6, 55, 549, 549, 985_611]),
            (42, [0, 1, 2, 2, 2, 43, 571, 571, 153_897]),
            (0xDEAD_10CC, [0, 1, 1, 1, 5, 13, 361, 361, 924_137]),
            (256, [0, 1, 2, 3, 3, 16, 520, 520, 86_422]),
            (u64::MAX, [0, 1, 2, 2, 9, 10, 313, 313, 589_430]),
            (0x1234_5678_9ABC_DEF0, [0, 0, 2, 4, 4, 33, 399, 399, 67_832]),
            (1 << 63, [0, 1, 1, 4, 5, 27, 453, 453, 802_256]),
            (987_654_321_987_654_321, [0, 1, 1, 3, 9, 18, 18, 18, 538_959]),
        ];
        for (key, expect) in table {
            for (b, e) in buckets.iter().zip(expect) {
                assert_eq!(jump(key, *b), e, "jump({key}, {b})");
            }
        }
        assert_eq!(jump(7, 0), 0);
    }

    #[test]
    fn weighted_points_follow_weights() {
        assert_eq!(ring("a,b,c", Algorithm::KetamaWeighted).points(), 480);
        assert_eq!(ring("a,b,c", Algorithm::Ketama(Hash::Md5)).points(), 300);
        // 1:2:1:3 of 4 servers: floor(w/7 * 160) rounded down to a multiple of 4.
        let r = ring("a:1:1,b:1:2,c:1:1,d:1:3", Algorithm::KetamaWeighted);
        let per_node: Vec<usize> =
            (0..4).map(|i| r.continuum.iter().filter(|&&(_, n)| n == i as u32).count()).collect();
        assert_eq!(per_node, vec![88, 180, 88, 272]);
    }

    #[test]
    fn lookup_wraps_around() {
        let r = ring("a,b", Algorithm::KetamaWeighted);
        let (last, _) = *r.continuum.last().unwrap();
        assert_eq!(r.lookup(last), r.continuum.last().unwrap().1 as usize);
        if last < u32::MAX {
            assert_eq!(r.lookup(last + 1), r.continuum[0].1 as usize);
        }
        assert_eq!(r.lookup(0), r.continuum[0].1 as usize);
    }

    #[test]
    fn spread_is_even_and_removal_moves_about_one_nth() {
        for algorithm in [Algorithm::KetamaWeighted, Algorithm::Ketama(Hash::Md5), Algorithm::Jump] {
            let four = ring("n1:1,n2:2,n3:3,n4:4", algorithm);
            let counts = spread(&four, 20_000);
            assert!(counts.iter().all(|&c| (3_500..=6_500).contains(&c)), "{algorithm:?} {counts:?}");
            // Jump can only drop the last bucket; ketama any node.
            let three = ring("n1:1,n2:2,n3:3", algorithm);
            let m = moved(&four, &three, 20_000);
            assert_eq!(m, counts[3], "{algorithm:?}: only the removed node's keys move");
        }
        let four = ring("n1:1,n2:2,n3:3,n4:4", Algorithm::KetamaWeighted);
        let without_n2 = ring("n1:1,n3:3,n4:4", Algorithm::KetamaWeighted);
        let owned_by_n2 = spread(&four, 20_000)[1];
        assert_eq!(moved(&four, &without_n2, 20_000), owned_by_n2);
    }

    #[test]
    fn single_node_and_empty() {
        assert_eq!(ring("a", Algorithm::Jump).node_index(b"x"), 0);
        assert_eq!(ring("a", Algorithm::KetamaWeighted).node(b"x").host, "a");
        assert!(matches!(Ring::new(Vec::new(), Algorithm::Jump), Err(RingError::Empty)));
        assert_eq!(Algorithm::from_name("ketama"), Some(Algorithm::KetamaWeighted));
        assert_eq!(Algorithm::from_name("nope"), None);
    }
}

//! Command line: memcached 1.6's flags, defaults and long names, parsed with clap.
//!
//! Owns: the `Args` clap definition, the `-o` extended options, validation with memcached's
//! messages, and the resulting `Config` that the rest of the program reads. Does no I/O except
//! what clap does for `--help`/`--version`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{ArgAction, Parser};

/// The version clients see (`version`, binary Version, `stats` `version`): the memcached release
/// whose behaviour we match, and nothing else. Clients gate features on it, and strict parsers
/// (Perl's `version->parse`, Python's `packaging.version`, Ruby's `Gem::Version`, semver)
/// must accept it: a suffix such as `1.6.18-rustcached-0.1.0` makes Perl's and Python's die.
pub const VERSION: &str = "1.6.18";

/// Our own release: `-V`, the startup log line and the metrics page. Not in any `stats`
/// reply: those stay byte for byte memcached's (tests/cases replay them).
pub const RUSTCACHED_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Exit codes, the ones memcached uses: 1 for command-line (getopt) errors and some bad values,
/// then sysexits.h: EX_USAGE for bad settings (and root without `-u`), EX_NOUSER for an
/// unknown `-u` user, EX_OSERR when a socket cannot be bound or the process set up.
pub const EXIT_FAILURE: i32 = 1;
pub const EX_USAGE: i32 = 64;
pub const EX_NOUSER: i32 = 67;
pub const EX_OSERR: i32 = 71;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "rustcached",
    version = RUSTCACHED_VERSION,
    about = "A memcached-compatible, multithreaded cache daemon",
    disable_version_flag = true,
    // getopt semantics: a repeated flag takes the last value (conf file, then command line)
    args_override_self = true
)]
pub struct Args {
    /// TCP port to listen on (0 = off, -1 = ephemeral) [default: 11211, or the UDP port when only -U is given]
    #[arg(short = 'p', long = "port", allow_negative_numbers = true)]
    pub port: Option<i32>,
    /// UDP port to listen on (0 = off, -1 = ephemeral)
    #[arg(short = 'U', long = "udp-port", default_value_t = 0, allow_negative_numbers = true)]
    pub udp_port: i32,
    /// UNIX socket to listen on (disables network support)
    #[arg(short = 's', long = "unix-socket")]
    pub unix_socket: Option<PathBuf>,
    /// Permissions (octal) for the UNIX socket
    #[arg(short = 'a', long = "unix-mask", default_value = "0700")]
    pub unix_mask: String,
    /// Interfaces to listen on, comma separated (default: all); with -Z, `notls:` before an
    /// address (-l notls:<ip>:<port>) makes that listener plaintext
    #[arg(short = 'l', long = "listen", action = ArgAction::Append)]
    pub listen: Vec<String>,
    /// Run as a daemon
    #[arg(short = 'd', long = "daemon")]
    pub daemon: bool,
    /// Maximize core file limit
    #[arg(short = 'r', long = "enable-coredumps")]
    pub coredumps: bool,
    /// Assume the identity of this user (only when run as root)
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Item memory in megabytes
    #[arg(short = 'm', long = "memory-limit", default_value = "64")]
    pub memory_limit: String,
    /// Max simultaneous connections
    #[arg(short = 'c', long = "conn-limit", default_value_t = 1024)]
    pub conn_limit: usize,
    /// Lock down all paged memory
    #[arg(short = 'k', long = "lock-memory")]
    pub lock_memory: bool,
    /// Verbose (repeat for more)
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count)]
    pub verbose: u8,
    /// Print version and exit
    #[arg(short = 'V', long = "version")]
    pub version: bool,
    /// Print license and exit
    #[arg(short = 'i', long = "license")]
    pub license: bool,
    /// Save PID in this file (only with -d)
    #[arg(short = 'P', long = "pidfile")]
    pub pidfile: Option<PathBuf>,
    /// Chunk size growth factor (default: 1.25, finer with a larger -m; see README)
    #[arg(short = 'f', long = "slab-growth-factor")]
    pub factor: Option<f64>,
    /// Minimum space allocated for key + value + flags
    #[arg(short = 'n', long = "slab-min-size", default_value_t = 48)]
    pub min_size: usize,
    /// Use large memory pages (transparent huge pages; refused when the kernel has them off)
    #[arg(short = 'L', long = "enable-largepages")]
    pub largepages: bool,
    /// Delimiter between key prefixes and IDs for `stats detail` (turns detail on)
    #[arg(short = 'D')]
    pub prefix_delimiter: Option<String>,
    /// Number of worker threads
    #[arg(short = 't', long = "threads", default_value_t = 4)]
    pub threads: i64,
    /// Maximum requests per event before yielding to other connections
    #[arg(short = 'R', long = "max-reqs-per-event", default_value_t = 20)]
    pub reqs_per_event: i64,
    /// Disable use of CAS
    #[arg(short = 'C', long = "disable-cas")]
    pub disable_cas: bool,
    /// TCP listen backlog
    #[arg(short = 'b', long = "listen-backlog", default_value_t = 1024)]
    pub backlog: i32,
    /// Protocol: auto, ascii or binary [default: auto]
    #[arg(short = 'B', long = "protocol")]
    pub protocol: Option<String>,
    /// Maximum item size (k/m suffixes allowed)
    #[arg(short = 'I', long = "max-item-size", default_value = "1m")]
    pub max_item_size: String,
    /// Turn on SASL authentication (binary protocol)
    #[arg(short = 'S', long = "enable-sasl")]
    pub sasl: bool,
    /// Allow the `shutdown` command (and `config set cluster` with `--cluster-file`)
    #[arg(short = 'A', long = "enable-shutdown")]
    pub enable_shutdown: bool,
    /// Disable `flush_all`
    #[arg(short = 'F', long = "disable-flush-all")]
    pub disable_flush: bool,
    /// Disable `stats cachedump` and `lru_crawler metadump`
    #[arg(short = 'X', long = "disable-dumping")]
    pub disable_dumping: bool,
    /// Disable `watch`
    #[arg(short = 'W', long = "disable-watch")]
    pub disable_watch: bool,
    /// ASCII authentication: text connections log in with a `user:password` of this file
    #[arg(short = 'Y', long = "auth-file")]
    pub auth_file: Option<PathBuf>,
    /// Memory file for restartable cache (refused: nothing is kept across restarts)
    #[arg(short = 'e', long = "memory-file")]
    pub memory_file: Option<PathBuf>,
    /// Return errors instead of evicting items when memory is full
    #[arg(short = 'M', long = "disable-evictions")]
    pub disable_evictions: bool,
    /// NAPI ids (refused: connections are spread over workers by load)
    #[arg(short = 'N', long = "napi-ids")]
    pub napi_ids: Option<u32>,
    /// Enable TLS/SSL (certificates and settings: -o ssl_chain_cert, ssl_key, ssl_ca_cert, ...)
    #[arg(short = 'Z', long = "enable-ssl")]
    pub ssl: bool,
    /// Extended options, comma separated (key or key=value)
    #[arg(short = 'o', long = "extended", action = ArgAction::Append, value_delimiter = ',')]
    pub extended: Vec<String>,
    /// Read flags from a memcached.conf-style file (one flag per line, `#` comments)
    #[arg(long = "conf-file")]
    pub conf_file: Option<PathBuf>,
    /// Serve this node list to ElastiCache auto-discovery clients (`config get cluster`)
    #[arg(long = "cluster-file")]
    pub cluster_file: Option<PathBuf>,
}

impl Args {
    fn prefix_delimiter_given(&self) -> bool {
        self.prefix_delimiter.is_some()
    }
}

/// getopt_long's treatment of long options, which clap lacks: an unambiguous prefix names the
/// option (`--thr=2` is `--threads=2`); an unknown or ambiguous one is refused in glibc's
/// words. Returns `argv` with every long option spelled out in full.
pub fn expand_long_options(argv: &[String]) -> Result<Vec<String>, ConfigError> {
    use clap::CommandFactory;
    let cmd = Args::command();
    let prog = argv.first().map(String::as_str).unwrap_or("rustcached");
    let takes_value = |a: &clap::Arg| a.get_action().takes_values();
    let mut out: Vec<String> = Vec::with_capacity(argv.len());
    let mut rest = argv.iter();
    out.extend(rest.next().cloned());
    while let Some(arg) = rest.next() {
        out.push(arg.clone());
        if arg == "--" {
            out.extend(rest.by_ref().cloned());
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let exact = cmd.get_arguments().find(|a| a.get_long() == Some(name));
            let candidates: Vec<&clap::Arg> = match exact {
                Some(a) => vec![a],
                None => cmd.get_arguments().filter(|a| a.get_long().is_some_and(|l| l.starts_with(name))).collect(),
            };
            let (arg_def, full) = match candidates.as_slice() {
                [one] => (*one, one.get_long().unwrap_or(name)),
                // clap's own --help/--version are not in get_arguments
                [] if "help".starts_with(name) && !name.is_empty() => continue,
                [] => return Err(getopt_failure(prog, &format!("unrecognized option '{arg}'"))),
                many => {
                    let names: Vec<String> =
                        many.iter().filter_map(|a| a.get_long()).map(|l| format!("'--{l}'")).collect();
                    let msg = format!("option '{arg}' is ambiguous; possibilities: {}", names.join(" "));
                    return Err(getopt_failure(prog, &msg));
                }
            };
            *out.last_mut().expect("just pushed") = match value {
                Some(v) => format!("--{full}={v}"),
                None => format!("--{full}"),
            };
            if value.is_none() && takes_value(arg_def) {
                out.extend(rest.next().cloned());
            }
        } else if let Some(shorts) = arg.strip_prefix('-') {
            // A cluster like `-vvm 64`: the first short option that takes a value ends it, and
            // takes the next word when nothing follows it in this one.
            for (i, ch) in shorts.char_indices() {
                if cmd.get_arguments().any(|a| a.get_short() == Some(ch) && takes_value(a)) {
                    if i + ch.len_utf8() == shorts.len() {
                        out.extend(rest.next().cloned());
                    }
                    break;
                }
            }
        }
    }
    Ok(out)
}

/// A command-line error as memcached reports it: getopt's line, then memcached's own.
fn getopt_failure(prog: &str, msg: &str) -> ConfigError {
    ConfigError { message: format!("{prog}: {msg}\nIllegal argument \"?\""), code: EXIT_FAILURE }
}

/// Turn clap's refusal of the command line into memcached's message and exit code (1), so
/// scripts that check for memcached's failures see the same. `None` for `--help` (exit 0).
pub fn command_line_error(argv: &[String], e: &clap::Error) -> Option<ConfigError> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !e.use_stderr() {
        return None;
    }
    let prog = argv.first().map(String::as_str).unwrap_or("rustcached");
    let invalid = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.split_whitespace().next().unwrap_or("").to_string(),
        _ => String::new(),
    };
    let short = |flag: &str| flag.strip_prefix('-').filter(|f| !f.starts_with('-')).map(str::to_string);
    let msg = match (e.kind(), short(&invalid)) {
        (ErrorKind::UnknownArgument, Some(c)) => format!("invalid option -- '{c}'"),
        (ErrorKind::UnknownArgument, None) => format!("unrecognized option '{invalid}'"),
        // A missing value: the flag is the last word, as typed.
        (ErrorKind::InvalidValue, _) if matches!(e.get(ContextKind::InvalidValue), Some(ContextValue::String(v)) if v.is_empty()) => {
            match argv.last().map(String::as_str).unwrap_or("") {
                long if long.starts_with("--") => format!("option '{long}' requires an argument"),
                short => format!("option requires an argument -- '{}'", short.chars().last().unwrap_or('?')),
            }
        }
        _ => e.to_string().lines().next().unwrap_or("invalid arguments").trim_start_matches("error: ").to_string(),
    };
    Some(getopt_failure(prog, &msg))
}

/// How connections pick a protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    Auto,
    Ascii,
    Binary,
}

impl Binding {
    pub fn stat_name(self) -> &'static str {
        match self {
            Binding::Auto => "auto-negotiate",
            Binding::Ascii => "ascii",
            Binding::Binary => "binary",
        }
    }
}

/// Validated settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// TCP port; 0 is off unless `tcp_ephemeral` (`-p -1`: bind port 0, let the kernel pick).
    pub port: u16,
    /// UDP port; 0 is off unless `udp_ephemeral` (`-U -1`).
    pub udp_port: u16,
    pub tcp_ephemeral: bool,
    pub udp_ephemeral: bool,
    pub unix_socket: Option<PathBuf>,
    pub unix_mask: u32,
    /// Addresses to bind; empty with a port means "all interfaces".
    pub listen: Vec<SocketAddr>,
    /// The `-l` string as given (for `stats settings` `inter`).
    pub listen_str: Option<String>,
    pub daemon: bool,
    pub coredumps: bool,
    pub user: Option<String>,
    pub maxbytes: usize,
    pub maxconns: usize,
    pub lock_memory: bool,
    pub verbose: u8,
    pub pidfile: Option<PathBuf>,
    /// `-f`; `None`: the store picks a factor from `-m` (`storage::slab::auto_factor`).
    pub factor: Option<f64>,
    pub chunk_size: usize,
    pub threads: usize,
    pub reqs_per_event: usize,
    pub use_cas: bool,
    pub backlog: i32,
    pub binding: Binding,
    pub item_size_max: usize,
    pub sasl: bool,
    /// ASCII auth (`-Y`): the `user:password` file text connections log in with.
    pub auth_file: Option<PathBuf>,
    /// `-L`: checked against the kernel's transparent huge pages at startup (item memory is
    /// always advised `MADV_HUGEPAGE`).
    pub largepages: bool,
    pub shutdown_command: bool,
    pub flush_enabled: bool,
    pub dump_enabled: bool,
    pub watch_enabled: bool,
    pub evictions: bool,
    pub prefix_delimiter: char,
    /// `stats detail` collection on at start (`-D` turns it on, as in memcached).
    pub detail_enabled: bool,
    // extended options
    pub maxconns_fast: bool,
    pub hashpower_init: u32,
    pub slab_reassign: bool,
    pub slab_automove: u32,
    pub slab_automove_ratio: f64,
    pub slab_automove_window: u32,
    pub slab_chunk_max: usize,
    pub slab_sizes: Option<Vec<usize>>,
    pub lru_crawler: bool,
    pub lru_crawler_sleep: u32,
    pub lru_crawler_tocrawl: u32,
    pub lru_maintainer: bool,
    pub lru_segmented: bool,
    pub hot_lru_pct: u32,
    pub warm_lru_pct: u32,
    pub hot_max_factor: f64,
    pub warm_max_factor: f64,
    pub temp_lru: bool,
    pub temporary_ttl: u32,
    pub idle_timeout: u32,
    pub watcher_logbuf_size: u32,
    pub worker_logbuf_size: u32,
    pub read_buf_mem_limit: u32,
    pub track_sizes: bool,
    pub tail_repair_time: u32,
    pub hash_algorithm: String,
    /// Our addition: allow the `debugtime` command to move the clock (tests only).
    pub debug_time: bool,
    /// Our addition: serve Prometheus metrics on this port (0 = off).
    pub metrics_port: u16,
    /// Address for the metrics endpoint (default loopback).
    pub metrics_addr: IpAddr,
    /// Log to this file instead of stderr (`logfile` in a conf file).
    pub logfile: Option<PathBuf>,
    /// Our addition: `--cluster-file` and the node list read from it by `from_args` (so a bad
    /// file stops startup as a usage error, exit 64, with `file:line:`).
    pub cluster: Option<(PathBuf, Vec<crate::cluster::Member>)>,
    /// Startup warnings for accepted settings that change nothing (printed by `main`).
    pub warnings: Vec<String>,
    /// TLS (`-Z`, `-o ssl_*`); see `tlsconf`.
    pub tls: crate::tlsconf::TlsConf,
    /// For each `listen` address: given as `notls:` (plain TCP beside TLS listeners).
    pub listen_notls: Vec<bool>,
}

/// A configuration error: the message memcached would print, and the exit code.
#[derive(Debug)]
pub struct ConfigError {
    pub message: String,
    pub code: i32,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

fn usage(msg: impl Into<String>) -> ConfigError {
    ConfigError { message: msg.into(), code: EX_USAGE }
}

/// Parse a size with an optional k/m/g suffix (memcached's `-I` rules, extended to `-m`).
pub fn parse_size(s: &str, default_unit: usize) -> Option<usize> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1024),
        'm' | 'M' => (&s[..s.len() - 1], 1024 * 1024),
        'g' | 'G' => (&s[..s.len() - 1], 1024 * 1024 * 1024),
        _ => (s, default_unit),
    };
    num.parse::<usize>().ok()?.checked_mul(mult)
}

/// Parse `-l` entries: `host`, `host:port`, `[v6]`, `[v6]:port`, `v6`, comma/semicolon lists.
pub fn parse_listen(entries: &[String], port: u16) -> Result<Vec<SocketAddr>, ConfigError> {
    let mut out = Vec::new();
    for entry in entries {
        for item in entry.split([',', ';']).map(str::trim).filter(|s| !s.is_empty()) {
            // memcached 1.6 allows prefixes like `notls:` and `proto[ascii]:`; strip `notls:`.
            let item = item.strip_prefix("notls:").unwrap_or(item);
            let addr = if let Ok(sa) = item.parse::<SocketAddr>() {
                sa
            } else if let Ok(ip) = item.parse::<IpAddr>() {
                SocketAddr::new(ip, port)
            } else if let Some(inner) = item.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                let ip: IpAddr = inner.parse().map_err(|_| usage(format!("bad listen address: {item}")))?;
                SocketAddr::new(ip, port)
            } else {
                // host[:port] by name
                let (host, p) = match item.rsplit_once(':') {
                    Some((h, p)) if !h.contains(':') => {
                        (h, p.parse::<u16>().map_err(|_| usage(format!("bad listen port: {item}")))?)
                    }
                    _ => (item, port),
                };
                use std::net::ToSocketAddrs;
                let mut found =
                    (host, p).to_socket_addrs().map_err(|e| usage(format!("failed to resolve {host}: {e}")))?;
                let first = found.next().ok_or_else(|| usage(format!("no address for {host}")))?;
                out.extend(found);
                first
            };
            out.push(addr);
        }
    }
    Ok(out)
}

/// `parse_listen`, each address tagged with whether it was given as `notls:`.
fn parse_listen_tagged(entries: &[String], port: u16) -> Result<Vec<(SocketAddr, bool)>, ConfigError> {
    let mut out = Vec::new();
    for entry in entries {
        for item in entry.split([',', ';']).map(str::trim).filter(|s| !s.is_empty()) {
            let notls = item.starts_with("notls:");
            out.extend(parse_listen(&[item.to_string()], port)?.into_iter().map(|a| (a, notls)));
        }
    }
    Ok(out)
}

impl Config {
    /// Validate parsed arguments into settings.
    pub fn from_args(a: &Args) -> Result<Config, ConfigError> {
        let maxbytes = parse_size(&a.memory_limit, 1024 * 1024).ok_or_else(|| usage("bad memory limit (-m)"))?;
        let item_size_max = parse_size(&a.max_item_size, 1).ok_or_else(|| usage("bad item size (-I)"))?;
        if item_size_max < 1024 {
            return Err(usage("Item max size cannot be less than 1024 bytes."));
        }
        if item_size_max > maxbytes / 2 {
            return Err(usage("Cannot set item size limit higher than 1/2 of memory max."));
        }
        if item_size_max > 1024 * 1024 * 1024 {
            return Err(usage("Cannot set item size limit higher than a gigabyte."));
        }
        if a.threads <= 0 {
            return Err(ConfigError { message: "Number of threads must be greater than 0".into(), code: 1 });
        }
        if a.reqs_per_event <= 0 {
            return Err(ConfigError { message: "Number of requests per event must be greater than 0".into(), code: 1 });
        }
        if a.factor.is_some_and(|f| f <= 1.0) {
            return Err(ConfigError { message: "Factor must be greater than 1".into(), code: 1 });
        }
        if a.min_size == 0 {
            return Err(ConfigError { message: "Chunk size must be greater than 0".into(), code: 1 });
        }
        let binding = match a.protocol.as_deref().unwrap_or("auto") {
            "auto" => Binding::Auto,
            "binary" => Binding::Binary,
            "ascii" => Binding::Ascii,
            other => {
                return Err(ConfigError {
                    message: format!(
                        "Invalid value for binding protocol: {other}\n -- should be one of auto, binary, or ascii"
                    ),
                    code: EX_USAGE,
                })
            }
        };
        let unix_mask =
            u32::from_str_radix(a.unix_mask.trim_start_matches("0o"), 8).map_err(|_| usage("bad unix mask (-a)"))?;
        if a.memory_file.is_some() {
            return Err(usage(
                "Restartable cache files (-e) are not supported: rustcached keeps no items across restarts",
            ));
        }
        if a.napi_ids.is_some() {
            return Err(usage(
                "NAPI ID worker affinity (-N) is not supported: connections are spread over the workers by load",
            ));
        }
        if a.sasl && binding == Binding::Ascii {
            return Err(usage("ERROR: You cannot allow the ASCII protocol while using SASL."));
        }
        if a.sasl && a.udp_port != 0 {
            return Err(usage("ERROR: Cannot enable UDP while using binary SASL authentication."));
        }
        if a.auth_file.is_some() {
            // -Y makes the binding ASCII; asking for another is an error (memcached's checks)
            if a.protocol.is_some() && binding != Binding::Ascii {
                return Err(usage(
                    "ERROR: You cannot allow the BINARY protocol while using ascii authentication tokens.",
                ));
            }
            if a.udp_port != 0 {
                return Err(usage("Cannot use UDP with ascii authentication enabled (-U 0 to disable)"));
            }
        }
        let port_number = |p: i32, which: &str| -> Result<(u16, bool), ConfigError> {
            match p {
                -1 => Ok((0, true)),
                0..=65535 => Ok((p as u16, false)),
                _ => Err(ConfigError { message: format!("ERROR: Invalid {which}port number {p}."), code: EX_USAGE }),
            }
        };
        let (udp_port, udp_ephemeral) = port_number(a.udp_port, "UDP ")?;
        // memcached: `-U N` without `-p` moves TCP to N as well (also `-U -1`).
        let (port, tcp_ephemeral) =
            port_number(a.port.unwrap_or(if a.udp_port != 0 { a.udp_port } else { 11211 }), "")?;
        let tagged = if a.unix_socket.is_some() { Vec::new() } else { parse_listen_tagged(&a.listen, port)? };
        // (with -s, memcached starts and its UNIX socket speaks plaintext: so does ours)
        if a.ssl && port == 0 && !tcp_ephemeral {
            return Err(usage("ERROR: You cannot enable SSL without a TCP port."));
        }
        if !a.ssl && tagged.iter().any(|t| t.1) {
            return Err(ConfigError { message: "'notls' option is valid only when SSL is enabled".into(), code: 71 });
        }
        let (listen, listen_notls) = tagged.into_iter().unzip();
        let delim = a.prefix_delimiter.as_deref().and_then(|d| d.chars().next()).unwrap_or(':');
        let mut c = Config {
            port,
            udp_port,
            tcp_ephemeral,
            udp_ephemeral,
            unix_socket: a.unix_socket.clone(),
            unix_mask,
            listen,
            listen_str: if a.listen.is_empty() { None } else { Some(a.listen.join(",")) },
            daemon: a.daemon,
            coredumps: a.coredumps,
            user: a.user.clone(),
            maxbytes,
            maxconns: a.conn_limit,
            lock_memory: a.lock_memory,
            verbose: a.verbose,
            pidfile: a.pidfile.clone(),
            factor: a.factor,
            chunk_size: a.min_size,
            threads: a.threads as usize,
            reqs_per_event: a.reqs_per_event as usize,
            use_cas: !a.disable_cas,
            backlog: a.backlog,
            binding: if a.auth_file.is_some() {
                Binding::Ascii
            } else if a.sasl {
                Binding::Binary
            } else {
                binding
            },
            auth_file: a.auth_file.clone(),
            largepages: a.largepages,
            item_size_max,
            sasl: a.sasl,
            shutdown_command: a.enable_shutdown,
            flush_enabled: !a.disable_flush,
            dump_enabled: !a.disable_dumping,
            watch_enabled: !a.disable_watch,
            evictions: !a.disable_evictions,
            prefix_delimiter: delim,
            detail_enabled: a.prefix_delimiter_given(),
            maxconns_fast: true,
            hashpower_init: 0,
            slab_reassign: true,
            slab_automove: 1,
            slab_automove_ratio: 0.8,
            slab_automove_window: 30,
            slab_chunk_max: 512 * 1024,
            slab_sizes: None,
            lru_crawler: true,
            lru_crawler_sleep: 100,
            lru_crawler_tocrawl: 0,
            lru_maintainer: true,
            lru_segmented: true,
            hot_lru_pct: 20,
            warm_lru_pct: 40,
            hot_max_factor: 0.2,
            warm_max_factor: 2.0,
            temp_lru: false,
            temporary_ttl: 61,
            idle_timeout: 0,
            watcher_logbuf_size: 256 * 1024,
            worker_logbuf_size: 64 * 1024,
            read_buf_mem_limit: 0,
            track_sizes: false,
            tail_repair_time: 0,
            hash_algorithm: "murmur3".into(),
            debug_time: false,
            metrics_port: 0,
            metrics_addr: IpAddr::from([127, 0, 0, 1]),
            logfile: None,
            cluster: match &a.cluster_file {
                Some(p) => Some((p.clone(), crate::cluster::load_file(p).map_err(usage)?)),
                None => None,
            },
            warnings: Vec::new(),
            tls: crate::tlsconf::TlsConf { enabled: a.ssl, ..Default::default() },
            listen_notls,
        };
        for opt in &a.extended {
            c.apply_extended(opt)?;
        }
        if c.slab_chunk_max > item_size_max.max(1 << 20) / 2 && c.slab_chunk_max != 512 * 1024 {
            return Err(usage("slab_chunk_max cannot be larger than half the page size"));
        }
        if !c.lru_maintainer {
            c.lru_segmented = false;
        }
        if c.hot_lru_pct + c.warm_lru_pct > 80 {
            return Err(ConfigError {
                message: "hot_lru_pct + warm_lru_pct cannot be more than 80% combined".into(),
                code: 1,
            });
        }
        Ok(c)
    }

    /// Record that `-o key` is accepted (memcached accepts it) but changes nothing, and why.
    fn no_effect(&mut self, key: &str, why: &str) {
        self.warnings.push(format!("warning: -o {key} has no effect: {why}"));
    }

    fn apply_extended(&mut self, opt: &str) -> Result<(), ConfigError> {
        let opt = opt.trim();
        if opt.is_empty() {
            return Ok(());
        }
        let (key, val) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        };
        let bad = || ConfigError { message: format!("Illegal suboption \"{opt}\""), code: 1 };
        let num =
            |v: Option<&str>| -> Result<u32, ConfigError> { v.and_then(|v| v.parse::<u32>().ok()).ok_or_else(bad) };
        let float =
            |v: Option<&str>| -> Result<f64, ConfigError> { v.and_then(|v| v.parse::<f64>().ok()).ok_or_else(bad) };
        match key {
            "maxconns_fast" => self.maxconns_fast = true,
            "no_maxconns_fast" => self.maxconns_fast = false,
            "hashpower" => {
                let hp = num(val)?;
                if !(12..=32).contains(&hp) {
                    return Err(ConfigError {
                        message: "Initial hashtable multiplier of 12 is too low".into(),
                        code: 1,
                    });
                }
                self.hashpower_init = hp;
            }
            "no_hashexpand" => self
                .no_effect(key, "the index grows one lock stripe at a time, with no table-wide expansion to turn off"),
            "slab_reassign" => self.slab_reassign = true,
            "no_slab_reassign" => self.slab_reassign = false,
            "slab_automove" => self.slab_automove = num(val.or(Some("1")))?,
            "no_slab_automove" => self.slab_automove = 0,
            "slab_automove_ratio" => self.slab_automove_ratio = float(val)?,
            "slab_automove_window" => self.slab_automove_window = num(val)?,
            "slab_chunk_max" => self.slab_chunk_max = parse_size(val.ok_or_else(bad)?, 1).ok_or_else(bad)?,
            "slab_sizes" => {
                let sizes: Result<Vec<usize>, _> =
                    val.ok_or_else(bad)?.split('-').map(|s| s.parse::<usize>()).collect();
                self.slab_sizes = Some(sizes.map_err(|_| bad())?);
            }
            "lru_crawler" => self.lru_crawler = true,
            "no_lru_crawler" => self.lru_crawler = false,
            "lru_crawler_sleep" => self.lru_crawler_sleep = num(val)?,
            "lru_crawler_tocrawl" => self.lru_crawler_tocrawl = num(val)?,
            "lru_maintainer" => self.lru_maintainer = true,
            "no_lru_maintainer" => self.lru_maintainer = false,
            "hot_lru_pct" => self.hot_lru_pct = num(val)?,
            "warm_lru_pct" => self.warm_lru_pct = num(val)?,
            "hot_max_factor" => self.hot_max_factor = float(val)?,
            "warm_max_factor" => self.warm_max_factor = float(val)?,
            "temporary_ttl" => {
                self.temp_lru = true;
                self.temporary_ttl = num(val)?;
            }
            "idle_timeout" => self.idle_timeout = num(val)?,
            "watcher_logbuf_size" => self.watcher_logbuf_size = num(val)?.saturating_mul(1024),
            "worker_logbuf_size" => self.worker_logbuf_size = num(val)?.saturating_mul(1024),
            "read_buf_mem_limit" => self.read_buf_mem_limit = num(val)?.saturating_mul(1024 * 1024),
            "track_sizes" => self.track_sizes = true,
            "tail_repair_time" => {
                self.tail_repair_time = num(val)?;
                if self.tail_repair_time < 10 {
                    return Err(ConfigError {
                        message: "Cannot set tail_repair_time to less than 10 seconds".into(),
                        code: 1,
                    });
                }
            }
            "hash_algorithm" => match val {
                Some(h @ ("jenkins" | "murmur3" | "xxh3")) => self.hash_algorithm = h.to_string(),
                _ => return Err(bad()),
            },
            "modern" => {
                self.slab_reassign = true;
                self.slab_automove = 1;
                self.lru_maintainer = true;
                self.lru_segmented = true;
                self.lru_crawler = true;
            }
            "no_modern" => {
                self.slab_chunk_max = 512 * 1024;
                self.slab_reassign = false;
                self.slab_automove = 0;
                self.maxconns_fast = false;
                self.lru_segmented = false;
                self.lru_maintainer = false;
                self.lru_crawler = false;
                self.hash_algorithm = "jenkins".into();
            }
            // Accepted because memcached 1.6.18 accepts them, but said to do nothing at startup.
            "inline_ascii_resp" | "no_inline_ascii_resp" => {
                self.no_effect(key, "memcached 1.6 ignores it too (replies are never inlined in items)")
            }
            "no_chunked_items" => {
                self.no_effect(key, "items are never chunked here (items above slab_chunk_max use a page-sized class)")
            }
            "drop_privileges" | "no_drop_privileges" => self.no_effect(
                key,
                "there is no seccomp filter of our own (the systemd unit's SystemCallFilter= restricts system calls)",
            ),
            // memcached's test harness (t/lib/MemcachedTest.pm) passes it
            "relaxed_privileges" => self.no_effect(key, "there is no seccomp filter of our own to relax"),
            "resp_obj_mem_limit" => {
                self.warnings.push("DEPRECATED: resp_obj_mem_limit no longer used. See read_buf_mem_limit,".into())
            }
            "debug_time" => self.debug_time = true,
            "metrics_port" => self.metrics_port = val.and_then(|v| v.parse().ok()).ok_or_else(bad)?,
            "metrics_addr" => self.metrics_addr = val.and_then(|v| v.parse().ok()).ok_or_else(bad)?,
            _ => match self.tls.apply(key, val) {
                Ok(true) => {}
                Ok(false) => return Err(bad()),
                Err((message, code)) => return Err(ConfigError { message, code }),
            },
        }
        Ok(())
    }
}

/// Flags read from a memcached.conf-style file (Debian's `/etc/memcached.conf`): one flag and
/// its value per line, `#` comments and blank lines skipped. Like Debian's systemd wrapper, `-d`
/// is dropped under systemd, and `logfile PATH` sends the log to PATH unless under systemd
/// (where the journal takes stderr). Each line is checked on its own so that a bad line is
/// reported with its file and line number.
pub fn read_conf_file(
    path: &std::path::Path,
    under_systemd: bool,
) -> Result<(Vec<String>, Option<PathBuf>), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| usage(format!("{}: {e}", path.display())))?;
    let mut args = Vec::new();
    let mut logfile = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let at = |msg: String| usage(format!("{}:{}: {msg}", path.display(), n + 1));
        let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        if words[0] == "logfile" {
            if words.len() != 2 {
                return Err(at("logfile takes one path".into()));
            }
            if !under_systemd {
                logfile = Some(PathBuf::from(&words[1]));
            }
            continue;
        }
        if !words[0].starts_with('-') {
            return Err(at(format!("not a flag: {line}")));
        }
        if under_systemd && (words[0] == "-d" || words[0] == "--daemon") {
            continue;
        }
        if words[0] == "-h" || words[0] == "--help" || words[0] == "--conf-file" {
            return Err(at(format!("{} is not allowed in a configuration file", words[0])));
        }
        let mut one = vec!["rustcached".to_string()];
        one.extend(words.iter().cloned());
        let one = expand_long_options(&one).map_err(|e| at(e.message.lines().next().unwrap_or("").into()))?;
        match Args::try_parse_from(&one) {
            Ok(a) => {
                // value checks that clap cannot do (sizes, -o keys, protocol names)
                if let Err(e) = Config::from_args(&Args { memory_limit: "1024".into(), ..a }) {
                    // (`notls:` needs `-Z`, which may be on another line)
                    if !e.message.contains("item size limit") && !e.message.contains("'notls'") {
                        return Err(at(e.message));
                    }
                }
            }
            Err(e) => {
                let first = e.to_string().lines().next().unwrap_or("invalid flag").to_string();
                return Err(at(first));
            }
        }
        args.extend(one.into_iter().skip(1));
    }
    Ok((args, logfile))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        let mut v = vec!["rustcached"];
        v.extend_from_slice(args);
        Config::from_args(&Args::try_parse_from(v).map_err(|e| usage(e.to_string()))?)
    }

    #[test]
    fn udp_port_alone_moves_tcp_too() {
        assert_eq!((parse(&["-U", "2000"]).unwrap().port, parse(&["-U", "2000"]).unwrap().udp_port), (2000, 2000));
        assert_eq!(parse(&["-U", "2000", "-p", "3000"]).unwrap().port, 3000);
        assert_eq!(parse(&["-U", "0"]).unwrap().port, 11211);
        let e = parse(&["-S", "-U", "2000"]).unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.code),
            ("ERROR: Cannot enable UDP while using binary SASL authentication.", 64)
        );
    }

    #[test]
    fn defaults_match_memcached() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.port, 11211);
        assert_eq!(c.udp_port, 0);
        assert_eq!(c.maxbytes, 64 << 20);
        assert_eq!(c.maxconns, 1024);
        assert_eq!(c.threads, 4);
        assert_eq!(c.reqs_per_event, 20);
        assert_eq!(c.item_size_max, 1 << 20);
        assert_eq!(c.chunk_size, 48);
        assert_eq!(c.binding, Binding::Auto);
        assert!(c.use_cas && c.evictions && c.flush_enabled && !c.shutdown_command);
    }

    #[test]
    fn memcached_style_flags() {
        let c = parse(&[
            "-p",
            "1234",
            "-m",
            "128",
            "-vv",
            "-I",
            "2m",
            "-o",
            "hashpower=20,no_lru_crawler",
            "-l",
            "127.0.0.1,[::1]:99",
            "-C",
            "-M",
        ])
        .unwrap();
        assert_eq!(c.port, 1234);
        assert_eq!(c.maxbytes, 128 << 20);
        assert_eq!(c.verbose, 2);
        assert_eq!(c.item_size_max, 2 << 20);
        assert_eq!(c.hashpower_init, 20);
        assert!(!c.lru_crawler && !c.use_cas && !c.evictions);
        assert_eq!(c.listen, vec!["127.0.0.1:1234".parse().unwrap(), "[::1]:99".parse().unwrap()]);
    }

    #[test]
    fn debian_conf_file_is_read() {
        let dir = std::env::temp_dir().join(format!("rc-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("memcached.conf");
        std::fs::write(&p, "# comment\n-d\nlogfile /var/log/memcached.log\n-m 64\n-p 11211\n-u memcache\n-l 127.0.0.1\n-P /var/run/memcached/memcached.pid\n# -v\n-c 1024 # trailing\n").unwrap();
        let (args, log) = read_conf_file(&p, true).unwrap();
        assert_eq!(
            args,
            [
                "-m",
                "64",
                "-p",
                "11211",
                "-u",
                "memcache",
                "-l",
                "127.0.0.1",
                "-P",
                "/var/run/memcached/memcached.pid",
                "-c",
                "1024"
            ]
        );
        assert_eq!(log, None);
        let (args, log) = read_conf_file(&p, false).unwrap();
        assert_eq!(args[0], "-d");
        assert_eq!(log.unwrap().to_str(), Some("/var/log/memcached.log"));
        std::fs::write(&p, "-m 64\n-q\n").unwrap();
        let e = read_conf_file(&p, true).unwrap_err();
        assert!(e.message.contains("memcached.conf:2:"), "{}", e.message);
        std::fs::write(&p, "-o bogus\n").unwrap();
        assert!(read_conf_file(&p, true).unwrap_err().message.contains(":1: Illegal suboption"));
        std::fs::write(&p, "m 64\n").unwrap();
        assert!(read_conf_file(&p, true).unwrap_err().message.contains(":1: not a flag"));
        std::fs::write(&p, "--thr=2\n--memory-l 64\n").unwrap();
        assert_eq!(read_conf_file(&p, true).unwrap().0, ["--threads=2", "--memory-limit", "64"]);
        std::fs::write(&p, "--memory 64\n").unwrap();
        assert!(read_conf_file(&p, true)
            .unwrap_err()
            .message
            .contains(":1: rustcached: option '--memory' is ambiguous"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn long_options_expand_like_getopt_long() {
        let argv = |v: &[&str]| -> Vec<String> { v.iter().map(|s| s.to_string()).collect() };
        let ok = |v: &[&str]| expand_long_options(&argv(v)).unwrap();
        assert_eq!(ok(&["rc", "--thr=2", "--listen-b", "5"]), ["rc", "--threads=2", "--listen-backlog", "5"]);
        // an exact name wins over longer ones it is a prefix of; values are not options
        assert_eq!(ok(&["rc", "--listen", "--x", "-m", "--y"]), ["rc", "--listen", "--x", "-m", "--y"]);
        assert_eq!(ok(&["rc", "-vvp", "--z", "--", "--w"]), ["rc", "-vvp", "--z", "--", "--w"]);
        let e = expand_long_options(&argv(&["rc", "--memory", "64"])).unwrap_err();
        assert_eq!(e.code, EXIT_FAILURE);
        assert!(e
            .message
            .starts_with("rc: option '--memory' is ambiguous; possibilities: '--memory-limit' '--memory-file'"));
        let e = expand_long_options(&argv(&["rc", "--nope"])).unwrap_err();
        assert_eq!(e.message, "rc: unrecognized option '--nope'\nIllegal argument \"?\"");
        let a = Args::try_parse_from(ok(&["rc", "-p", "-1", "--udp=-1"])).unwrap();
        let c = Config::from_args(&a).unwrap();
        assert_eq!((c.port, c.tcp_ephemeral, c.udp_port, c.udp_ephemeral), (0, true, 0, true));
        let e = parse(&["-p", "65536"]).unwrap_err();
        assert_eq!((e.message.as_str(), e.code), ("ERROR: Invalid port number 65536.", EX_USAGE));
    }

    #[test]
    fn bad_values_are_refused() {
        assert_eq!(parse(&["-I", "512"]).unwrap_err().code, EX_USAGE);
        assert_eq!(parse(&["-m", "1", "-I", "1m"]).unwrap_err().code, EX_USAGE);
        assert_eq!(parse(&["-t", "0"]).unwrap_err().code, 1);
        assert_eq!(parse(&["-o", "bogus"]).unwrap_err().message, "Illegal suboption \"bogus\"");
        assert!(parse(&["-B", "nope"]).is_err());
        assert!(parse(&["-p", "notaport"]).is_err());
    }
}

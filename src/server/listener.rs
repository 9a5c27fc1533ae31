//! Listening sockets: TCP (every `-l` address, or all interfaces) and the UNIX socket (`-s`).
//!
//! Owns: socket options (SO_REUSEADDR, IPV6_V6ONLY, backlog `-b`, non-blocking), UNIX socket
//! permissions (`-a`), adoption of systemd-activated sockets (`LISTEN_FDS`), and cloning one
//! listener per worker (every worker accepts on the same socket), bind errors worded as
//! memcached's, ephemeral ports (`-p -1`, `-U -1`) and the `MEMCACHED_PORT_FILENAME` report of
//! the ports bound.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};

use socket2::{Domain, Protocol, Socket, Type};

use crate::config::Config;

/// A bound listener (std form; workers clone it into mio).
pub enum Listener {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

impl Listener {
    pub fn fd(&self) -> RawFd {
        match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l) => l.as_raw_fd(),
        }
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok(),
            Listener::Unix(_) => None,
        }
    }

    /// `tcp:0.0.0.0:11211` / `unix:/path`, as `stats conns` prints addresses.
    pub fn describe(&self) -> String {
        match self {
            Listener::Tcp(l) => match l.local_addr() {
                Ok(SocketAddr::V4(a)) => format!("tcp:{}:{}", a.ip(), a.port()),
                Ok(SocketAddr::V6(a)) => format!("tcp6:[{}]:{}", a.ip(), a.port()),
                Err(_) => "tcp:?".into(),
            },
            Listener::Unix(l) => {
                match l.local_addr().ok().and_then(|a| a.as_pathname().map(|p| p.display().to_string())) {
                    Some(p) => format!("unix:{p}"),
                    None => "unix:?".into(),
                }
            }
        }
    }

    /// A clone for one worker, registered later with its `Poll`.
    pub fn try_clone_mio(&self) -> io::Result<MioListener> {
        Ok(match self {
            Listener::Tcp(l) => MioListener::Tcp(mio::net::TcpListener::from_std(l.try_clone()?)),
            Listener::Unix(l) => MioListener::Unix(mio::net::UnixListener::from_std(l.try_clone()?)),
        })
    }
}

/// `unix:/path` of a UNIX listener, as `stats conns` prints a client's `listen_addr`.
pub fn unix_addr(l: &mio::net::UnixListener) -> String {
    match l.local_addr().ok().and_then(|a| a.as_pathname().map(|p| p.display().to_string())) {
        Some(p) => format!("unix:{p}"),
        None => "unix:".into(),
    }
}

/// A worker's listener.
pub enum MioListener {
    Tcp(mio::net::TcpListener),
    Unix(mio::net::UnixListener),
}

fn bind_tcp(addr: SocketAddr, backlog: i32) -> io::Result<std::net::TcpListener> {
    let domain = if addr.is_ipv6() { Domain::IPV6 } else { Domain::IPV4 };
    let s = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&addr.into())?;
    s.listen(backlog)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// UDP sockets for `-U`: one per `-l` address (or the IPv4 and IPv6 wildcards), shared by
/// every worker as memcached shares one socket between its threads. None with `-s`.
pub fn bind_udp(c: &Config) -> io::Result<Vec<std::net::UdpSocket>> {
    if (c.udp_port == 0 && !c.udp_ephemeral) || c.unix_socket.is_some() {
        return Ok(Vec::new());
    }
    let addrs: Vec<SocketAddr> = if c.listen.is_empty() {
        vec![
            SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), c.udp_port),
            SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), c.udp_port),
        ]
    } else {
        // One socket per interface: `-l notls:127.0.0.1:A,127.0.0.1:B -U U` names 127.0.0.1
        // twice (memcached binds it twice with SO_REUSEADDR; one socket serves the same).
        let mut v: Vec<SocketAddr> = Vec::new();
        for a in &c.listen {
            let u = SocketAddr::new(a.ip(), c.udp_port);
            if !v.contains(&u) {
                v.push(u);
            }
        }
        v
    };
    let mut out = Vec::new();
    for a in addrs {
        let domain = if a.is_ipv6() { Domain::IPV6 } else { Domain::IPV4 };
        let bound = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).and_then(|s| {
            if a.is_ipv6() {
                s.set_only_v6(true)?;
            }
            s.bind(&a.into())?;
            s.set_nonblocking(true)?;
            Ok(s)
        });
        match bound {
            Ok(s) => {
                log::info!("listening on udp:{a}");
                out.push(s.into());
            }
            Err(e) if a.is_ipv6() && c.listen.is_empty() => log::info!("not listening on IPv6 UDP: {e}"),
            Err(e) => return Err(bind_error(e, "UDP", a, c)),
        }
    }
    Ok(out)
}

/// memcached's words for a failed bind (`failed to listen on TCP port 11211: Address already in
/// use`), naming the address too when `-l` chose it.
fn bind_error(e: io::Error, transport: &str, a: SocketAddr, c: &Config) -> io::Error {
    // perror's text: no " (os error 98)" suffix
    let kind = e.kind();
    let text = e.to_string();
    let e = text.split(" (os error").next().unwrap_or(&text);
    let msg = if c.listen.is_empty() {
        format!("failed to listen on {transport} port {}: {e}", a.port())
    } else {
        format!("failed to listen on {transport} port {} of interface {}: {e}", a.port(), a.ip())
    };
    io::Error::new(kind, msg)
}

/// `MEMCACHED_PORT_FILENAME`: write one line per bound socket, `TCP INET: 43445`,
/// `UDP INET6: 58429`, ..., into `<file>.lck`, then rename it to the file, so a reader that
/// sees the file sees all of it (memcached's test harness starts servers with `-p -1 -U -1`
/// and reads the ports from there). Written even when empty (`-p 0`), but not for `-s`.
pub fn write_port_file(c: &Config, tcp: &[Listener], udp: &[std::net::UdpSocket]) -> io::Result<()> {
    let Some(path) = std::env::var_os("MEMCACHED_PORT_FILENAME") else {
        return Ok(());
    };
    if c.unix_socket.is_some() {
        return Ok(());
    }
    let tcp = tcp.iter().filter_map(Listener::local_addr).map(|a| ("TCP", a));
    let udp = udp.iter().filter_map(|u| u.local_addr().ok()).map(|a| ("UDP", a));
    let text: String = tcp
        .chain(udp)
        .map(|(t, a)| format!("{t} INET{}: {}\n", if a.is_ipv6() { "6" } else { "" }, a.port()))
        .collect();
    let mut lck = path.clone();
    lck.push(".lck");
    std::fs::write(&lck, text)?;
    std::fs::rename(&lck, &path)
}

/// Sockets handed over by systemd socket activation (`LISTEN_PID`/`LISTEN_FDS`).
fn activated() -> Vec<Listener> {
    let pid_ok = std::env::var("LISTEN_PID").ok().and_then(|p| p.parse::<u32>().ok()) == Some(std::process::id());
    let n = std::env::var("LISTEN_FDS").ok().and_then(|n| n.parse::<i32>().ok()).unwrap_or(0);
    if !pid_ok || n <= 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for fd in 3..3 + n {
        // SAFETY: systemd passed these descriptors to us (LISTEN_PID is our pid) and nothing
        // else in the process owns them.
        let sock = unsafe { Socket::from_raw_fd(fd) };
        let _ = sock.set_nonblocking(true);
        match sock.local_addr() {
            Ok(a) if a.as_socket().is_some() => out.push(Listener::Tcp(sock.into())),
            Ok(_) => out.push(Listener::Unix(sock.into())),
            Err(e) => log::error!("LISTEN_FDS descriptor {fd} unusable: {e}"),
        }
    }
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    out
}

/// Bind everything the configuration asks for.
pub fn bind_all(c: &Config) -> io::Result<Vec<Listener>> {
    let act = activated();
    if !act.is_empty() {
        log::info!("using {} socket(s) from systemd socket activation", act.len());
        return Ok(act);
    }
    let mut out = Vec::new();
    if let Some(path) = &c.unix_socket {
        let _ = std::fs::remove_file(path);
        let l = std::os::unix::net::UnixListener::bind(path)?;
        l.set_nonblocking(true)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(c.unix_mask))?;
        out.push(Listener::Unix(l));
        return Ok(out);
    }
    // `-p 0` turns TCP off (an `-l host:port` with its own port still binds); `-p -1` binds
    // port 0, which the kernel replaces with a free one.
    if c.port == 0 && !c.tcp_ephemeral && c.listen.iter().all(|a| a.port() == 0) {
        return Ok(out);
    }
    if c.listen.is_empty() {
        // As memcached: both wildcards; one of them may be taken already (EADDRINUSE), but
        // not both, and any other error is fatal.
        let mut first_err = None;
        for ip in [IpAddr::from(Ipv4Addr::UNSPECIFIED), Ipv6Addr::UNSPECIFIED.into()] {
            let a = SocketAddr::new(ip, c.port);
            match bind_tcp(a, c.backlog) {
                Ok(l) => out.push(Listener::Tcp(l)),
                Err(e) if ip.is_ipv6() && e.kind() != io::ErrorKind::AddrInUse => {
                    log::info!("not listening on IPv6: {e}")
                }
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => first_err = first_err.or(Some(e)),
                Err(e) => return Err(bind_error(e, "TCP", a, c)),
            }
        }
        if out.is_empty() {
            let e = first_err.unwrap_or_else(|| io::ErrorKind::AddrNotAvailable.into());
            return Err(bind_error(e, "TCP", SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), c.port), c));
        }
    } else {
        for a in &c.listen {
            out.push(Listener::Tcp(bind_tcp(*a, c.backlog).map_err(|e| bind_error(e, "TCP", *a, c))?));
        }
    }
    for l in &out {
        log::info!("listening on {}", l.describe());
    }
    Ok(out)
}

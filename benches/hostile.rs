//! Hostile and slow clients, side by side: the scenarios of `tests/hostile.rs` against
//! rustcached and Debian's memcached (`/usr/bin/memcached`), printing each server's peak RSS and
//! how long a well-behaved client waited. `cargo bench --bench hostile` (about a minute);
//! `HOSTILE=1mb` or `HOSTILE=10k` runs one half.

#[path = "../tests/common/mod.rs"]
mod common;

use common::hostile::{fill, stalled_sets, unread_multigets, Outcome};
use common::Server;

type Scenario = (&'static str, &'static [&'static str], fn(&Server) -> Outcome);

fn main() {
    let only = std::env::var("HOSTILE").unwrap_or_default();
    let scenarios: [(&str, Scenario); 4] = [
        (
            "1mb",
            ("500 conns stall 1 MB sets (900 KB sent)", &["-m", "64", "-t", "2"], |s| {
                stalled_sets(s.port, s.child.id(), 500, 1_000_000, 900_000)
            }),
        ),
        (
            "1mb",
            ("400 conns pipeline 8 x get of ten 1 MB items, never read", &["-m", "64", "-t", "2"], |s| {
                fill(s.port, 10, 1_000_000);
                unread_multigets(s.port, s.child.id(), 400, 8, 10, 1_000_000)
            }),
        ),
        (
            "10k",
            ("10,000 conns stall 100 KB sets (90 KB sent)", &["-m", "64", "-t", "2", "-c", "10100"], |s| {
                stalled_sets(s.port, s.child.id(), 10_000, 100_000, 90_000)
            }),
        ),
        (
            "10k",
            (
                "10,000 conns pipeline 8 x get of ten 100 KB items, never read",
                &["-m", "64", "-t", "2", "-c", "10100"],
                |s| {
                    fill(s.port, 10, 100_000);
                    unread_multigets(s.port, s.child.id(), 10_000, 8, 10, 100_000)
                },
            ),
        ),
    ];
    let memcached = common::memcached_bin();
    let commit = std::process::Command::new("git").args(["rev-parse", "--short", "HEAD"]).output();
    let commit = commit.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
    println!("cargo bench --bench hostile at commit {commit}\n");
    println!("| scenario (-m 64 -t 2) | server | peak RSS | other client's reply (median of 21) | replies right |");
    println!("|---|---|---|---|---|");
    for (tag, (name, args, run)) in scenarios {
        if !only.is_empty() && only != tag {
            continue;
        }
        let servers = [("rustcached", Server::start(args)), ("memcached 1.6.18", Server::start_bin(memcached, args))];
        for (who, srv) in servers {
            let o = run(&srv);
            println!(
                "| {name} | {who} | {} MB | {} µs | {} |",
                o.peak_rss_kb / 1024,
                o.probe.as_micros(),
                if o.probe_ok { "yes" } else { "no" }
            );
            drop(srv);
        }
    }
}

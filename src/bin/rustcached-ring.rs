//! `rustcached-ring`: which node owns a key, and how many keys move when nodes come or go.
//!
//! Uses `rustcached::ring`, which places keys exactly as libmemcached/pylibmc ketama and
//! twemproxy (ketama + md5) do, so the answers hold for those clients too.

use clap::Parser;
use rustcached::ring::{self, Algorithm, Node, Ring};
use std::process::ExitCode;

// pub(crate): xtask/ compiles this file as a module to render rustcached-ring(1) from `Args`.
#[derive(Parser, Debug)]
#[command(
    name = "rustcached-ring",
    version,
    about = "Show which node owns each key under client-side consistent hashing, or how many keys move \
             when nodes are added or removed",
    after_help = "Examples:\n  \
        rustcached-ring --servers a:11211,b:11211,c:11211 user:42 session:7\n  \
        rustcached-ring --servers a:11211,b:11211,c:11211 --add d:11211 --keys 100000\n  \
        rustcached-ring --servers a:11211,b:11211,c:11211 --remove b:11211\n\n\
        Algorithms: ketama (= ketama-weighted: libmemcached KETAMA_WEIGHTED, pylibmc ketama_weighted, \
        php-memcached LIBKETAMA_COMPATIBLE, twemproxy ketama + md5), ketama-md5 (pylibmc ketama + hash md5), \
        ketama-default (pylibmc ketama with its default one-at-a-time hash), jump."
)]
pub(crate) struct Args {
    /// Comma-separated host:port[:weight] list (order matters only for jump).
    #[arg(long, value_name = "LIST")]
    servers: String,

    /// Placement algorithm (see below).
    #[arg(long, default_value = "ketama", value_name = "NAME")]
    algorithm: String,

    /// Capacity planning: add this host:port[:weight] (repeatable).
    #[arg(long, value_name = "NODE")]
    add: Vec<String>,

    /// Capacity planning: remove this host:port (repeatable).
    #[arg(long, value_name = "NODE")]
    remove: Vec<String>,

    /// Number of synthetic keys (key:0, key:1, ...) for the spread and move counts.
    #[arg(long, value_name = "N")]
    keys: Option<usize>,

    /// Keys to place; prints "KEY<TAB>host:port" for each.
    #[arg(value_name = "KEY")]
    key: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rustcached-ring: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<String, String> {
    let algorithm =
        Algorithm::from_name(&args.algorithm).ok_or_else(|| format!("unknown algorithm {:?}", args.algorithm))?;
    let before = Ring::parse(&args.servers, algorithm).map_err(|e| e.to_string())?;
    let planning = !args.add.is_empty() || !args.remove.is_empty();
    if !args.key.is_empty() {
        if planning || args.keys.is_some() {
            return Err("give either KEYs or --add/--remove/--keys, not both".into());
        }
        return Ok(args.key.iter().map(|k| format!("{k}\t{}\n", before.node(k.as_bytes()))).collect());
    }
    let keys = args.keys.unwrap_or(100_000);
    if !planning {
        return Ok(spread_table(&before, None, keys));
    }
    let mut nodes = before.nodes().to_vec();
    for spec in &args.remove {
        let gone = Node::parse(spec).map_err(|e| e.to_string())?;
        let at =
            nodes.iter().position(|n| n.same_server(&gone)).ok_or_else(|| format!("{gone} is not in --servers"))?;
        nodes.remove(at);
    }
    for spec in &args.add {
        let new = Node::parse(spec).map_err(|e| e.to_string())?;
        if nodes.iter().any(|n| n.same_server(&new)) {
            return Err(format!("{new} is already in the list"));
        }
        nodes.push(new);
    }
    let after = Ring::new(nodes, algorithm).map_err(|e| e.to_string())?;
    Ok(spread_table(&before, Some(&after), keys))
}

/// Per-node key counts (before, and after when planning), then the move count.
fn spread_table(before: &Ring, after: Option<&Ring>, keys: usize) -> String {
    let mut all: Vec<&Node> = before.nodes().iter().collect();
    if let Some(after) = after {
        all.extend(after.nodes().iter().filter(|n| !before.nodes().iter().any(|b| b.same_server(n))));
    }
    let before_counts = ring::spread(before, keys);
    let after_counts = after.map(|a| ring::spread(a, keys)).unwrap_or_default();
    let count = |ring: &Ring, counts: &[usize], node: &Node| -> Option<usize> {
        ring.nodes().iter().position(|n| n.same_server(node)).map(|at| counts[at])
    };
    let cell = |c: Option<usize>| match c {
        Some(c) => format!("{c:>9} {:>6.2}%", 100.0 * c as f64 / keys.max(1) as f64),
        None => format!("{:>9} {:>7}", "-", ""),
    };
    let width = all.iter().map(|n| n.to_string().len()).max().unwrap_or(4).max(4);
    let mut out = format!("{:<width$} {:>17}", "node", "before");
    if after.is_some() {
        out.push_str(&format!(" {:>17}", "after"));
    }
    out.push('\n');
    for node in &all {
        out.push_str(&format!("{:<width$} {}", node.to_string(), cell(count(before, &before_counts, node))));
        if let Some(after) = after {
            out.push_str(&format!(" {}", cell(count(after, &after_counts, node))));
        }
        out.truncate(out.trim_end().len()); // no padding after a "-" cell
        out.push('\n');
    }
    match after {
        Some(after) => {
            let moved = ring::moved(before, after, keys);
            out.push_str(&format!(
                "moved {moved} of {keys} keys ({:.2}%)\n",
                100.0 * moved as f64 / keys.max(1) as f64
            ));
        }
        None => out.push_str(&format!("{keys} keys\n")),
    }
    out
}

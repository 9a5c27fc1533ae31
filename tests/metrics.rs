//! The metrics endpoint (`-o metrics_port`) against memcached_exporter's mapping
//! (`tests/metrics/exporter_mapping.tsv`): the page must hold exactly the series the exporter
//! would produce from the same `stats` replies, with the same values, each once.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{expect, free_port, stats, Server};

/// A series: name and its labels (sorted).
type Series = (String, BTreeMap<String, String>);

struct Row {
    source: String,
    field: String,
    metric: String,
    labels: Vec<(String, String)>,
    kind: String,
    check: String,
}

fn mapping() -> Vec<Row> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/metrics/exporter_mapping.tsv")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            assert_eq!(c.len(), 6, "{l:?}");
            let labels = if c[3] == "-" {
                Vec::new()
            } else {
                c[3].split(',').map(|kv| kv.split_once('=').unwrap()).map(|(k, v)| (k.into(), v.into())).collect()
            };
            Row {
                source: c[0].into(),
                field: c[1].into(),
                metric: c[2].into(),
                labels,
                kind: c[4].into(),
                check: c[5].into(),
            }
        })
        .collect()
}

/// What one server's `stats` replies say, grouped as the exporter's client groups them.
struct Stats {
    general: BTreeMap<String, String>,
    settings: BTreeMap<String, String>,
    items: BTreeMap<String, BTreeMap<String, String>>,
    slabs: BTreeMap<String, BTreeMap<String, String>>,
}

fn read_stats(s: &mut TcpStream) -> Stats {
    let mut general = stats(s, "");
    let mut slabs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (k, v) in stats(s, "slabs") {
        match k.split_once(':') {
            Some((id, f)) => {
                slabs.entry(id.into()).or_default().insert(f.into(), v);
            }
            None => {
                general.insert(k, v);
            }
        }
    }
    let mut items: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (k, v) in stats(s, "items") {
        let (id, f) = k.strip_prefix("items:").unwrap().split_once(':').unwrap();
        items.entry(id.into()).or_default().insert(f.into(), v);
    }
    Stats { general, settings: stats(s, "settings"), items, slabs }
}

/// `a-b-c` over one group of stats; None when a name is missing (the exporter skips it).
fn eval(expr: &str, m: &BTreeMap<String, String>) -> Option<f64> {
    let mut parts = expr.split('-').map(|k| m.get(k).map(|v| v.parse::<f64>().unwrap()));
    let first = parts.next()??;
    parts.try_fold(first, |acc, v| Some(acc - v?))
}

/// The series the exporter would export for these stats: series → (value, check, type).
fn expected(rows: &[Row], st: &Stats) -> BTreeMap<Series, (f64, String, String)> {
    let mut out = BTreeMap::new();
    let mut emit = |row: &Row, group: &BTreeMap<String, String>, slab: Option<&str>| {
        let mut value = match row.source.as_str() {
            "const" | "ours" => row.field.parse().unwrap(),
            _ if row.check.contains("bool") => match group.get(&row.field).map(String::as_str) {
                Some("yes") => 1.0,
                Some("no") => 0.0,
                _ => return,
            },
            _ if row.labels.iter().any(|(_, v)| v == "@") => 1.0,
            _ => match eval(&row.field, group) {
                Some(v) => v,
                None => return,
            },
        };
        let mut labels = BTreeMap::new();
        for (k, v) in &row.labels {
            let v = match v.as_str() {
                "$" => slab.unwrap().to_string(),
                "@" => match group.get(&row.field) {
                    Some(own) => own.clone(),
                    None => return,
                },
                other => other.to_string(),
            };
            labels.insert(k.clone(), v);
        }
        if row.source == "const" {
            value = row.field.parse().unwrap();
        }
        let key = (row.metric.clone(), labels);
        assert!(
            out.insert(key.clone(), (value, row.check.clone(), row.kind.clone())).is_none(),
            "table row twice: {key:?}"
        );
    };
    for row in rows {
        match row.source.as_str() {
            "const" | "ours" => emit(row, &BTreeMap::new(), None),
            "stats" => emit(row, &st.general, None),
            "settings" => {
                if !row.check.contains("crawler") || st.settings.get("lru_crawler").map(String::as_str) == Some("yes") {
                    emit(row, &st.settings, None)
                }
            }
            "items" => st.items.iter().for_each(|(id, g)| emit(row, g, Some(id))),
            "slabs" => st.slabs.iter().for_each(|(id, g)| emit(row, g, Some(id))),
            other => panic!("unknown source {other}"),
        }
    }
    out
}

/// A parsed page: every series with its value, and each family's TYPE; panics on a series or
/// HELP/TYPE given twice.
fn parse_page(body: &str) -> (BTreeMap<Series, f64>, BTreeMap<String, String>) {
    let mut series = BTreeMap::new();
    let mut types = BTreeMap::new();
    let mut helps = BTreeSet::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(types.insert(name.to_string(), kind.to_string()).is_none(), "TYPE twice: {line}");
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            assert!(helps.insert(rest.split(' ').next().unwrap().to_string()), "HELP twice: {line}");
        } else if !line.is_empty() {
            let (head, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match head.split_once('{') {
                Some((n, l)) => {
                    let l = l.strip_suffix('}').unwrap();
                    let labels: BTreeMap<String, String> = l
                        .split("\",")
                        .map(|kv| kv.split_once("=\"").unwrap())
                        .map(|(k, v)| (k.to_string(), v.trim_end_matches('"').to_string()))
                        .collect();
                    (n.to_string(), labels)
                }
                None => (head.to_string(), BTreeMap::new()),
            };
            assert!(types.contains_key(&name), "series before its TYPE: {line}");
            let v: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
            assert!(series.insert((name, labels), v).is_none(), "series twice: {line}");
        }
    }
    (series, types)
}

fn http(port: u16, request: &[u8]) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut c = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("metrics port: {e}"),
        }
    };
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(request).unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    out
}

/// Traffic that moves every command counter, including CAS (counted in `cmd_set` too).
const TRAFFIC: &[(&[u8], &[u8])] = &[
    (b"set a 0 0 1\r\n1\r\n", b"STORED\r\n"),
    (b"get a nope\r\n", b"VALUE a 0 1\r\n1\r\nEND\r\n"),
    (b"cas a 0 0 1 999\r\n2\r\n", b"EXISTS\r\n"),
    (b"cas nope 0 0 1 1\r\n2\r\n", b"NOT_FOUND\r\n"),
    (b"incr a 5\r\n", b"6\r\n"),
    (b"decr nope 1\r\n", b"NOT_FOUND\r\n"),
    (b"touch a 100\r\n", b"TOUCHED\r\n"),
    (b"touch nope 100\r\n", b"NOT_FOUND\r\n"),
    (b"delete nope\r\n", b"NOT_FOUND\r\n"),
    (b"gets a\r\n", b""),
];

fn drive(s: &mut TcpStream) {
    // an item in a second slab class
    expect(s, format!("set big 0 0 2000\r\n{}\r\n", "x".repeat(2000)).as_bytes(), b"STORED\r\n");
    for (req, reply) in TRAFFIC {
        if reply.is_empty() {
            s.write_all(req).unwrap();
        } else {
            expect(s, req, reply);
        }
    }
    // `gets a` above: read its reply, then a CAS that succeeds
    let r = common::read_until_end(s);
    let cas = r.lines().next().unwrap().split(' ').nth(4).unwrap().to_string();
    expect(s, format!("cas a 0 0 1 {cas}\r\n7\r\n").as_bytes(), b"STORED\r\n");
}

#[test]
fn page_is_what_memcached_exporter_exports() {
    let rows = mapping();
    let mport = free_port();
    let srv = Server::start(&["-o", &format!("metrics_port={mport}")]);
    let mut s = srv.connect();
    drive(&mut s);
    let st = read_stats(&mut s);
    let want = expected(&rows, &st);
    let reply = http(mport, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
    let (got, types) = parse_page(body);
    for ((name, labels), (value, check, kind)) in &want {
        assert_eq!(types.get(name), Some(kind), "TYPE of {name}");
        if labels.values().any(|v| v == "*") {
            assert!(got.keys().any(|(n, _)| n == name), "missing {name}");
            continue;
        }
        let v = got.get(&(name.clone(), labels.clone())).unwrap_or_else(|| panic!("missing {name}{labels:?}\n{body}"));
        if check != "live" {
            assert_eq!(v, value, "{name}{labels:?}");
        }
    }
    for (name, labels) in got.keys() {
        let known = want.contains_key(&(name.clone(), labels.clone()))
            || want.keys().any(|(n, l)| n == name && l.values().any(|v| v == "*"));
        assert!(known, "series the exporter would not export: {name}{labels:?}");
    }
    // The traffic moved what the old page got wrong: CAS taken out of set, no extra statuses.
    let set = &got[&(
        "memcached_commands_total".into(),
        [("command", "set"), ("status", "hit")].map(|(k, v)| (k.into(), v.into())).into(),
    )];
    assert_eq!(*set, 2.0, "two sets; the 3 CAS commands are not sets");
    assert!(!body.contains("status=\"expired\"") && !body.contains("status=\"flushed\""));
    let classes: BTreeSet<&String> =
        got.keys().filter(|(n, _)| n == "memcached_slab_current_items").map(|(_, l)| &l["slab"]).collect();
    assert_eq!(classes.len(), 2, "per-slab items for both classes used");
}

/// The table names memcached's own fields: for memcached 1.6.18's replies to the same traffic
/// it yields the same series names and label sets (slab ids aside) as for ours.
#[test]
fn the_mapping_gives_the_same_series_for_memcached() {
    let bin = common::memcached_bin();
    let rows = mapping();
    let shape = |bin: &str| -> BTreeSet<(String, Vec<String>)> {
        let srv = Server::start_bin(bin, &[]);
        let mut s = srv.connect();
        drive(&mut s);
        let want = expected(&rows, &read_stats(&mut s));
        want.keys()
            .filter(|(n, _)| !n.starts_with("rustcached_"))
            .map(|(n, l)| {
                (n.clone(), l.iter().filter(|(k, _)| *k != "slab").map(|(k, v)| format!("{k}={v}")).collect())
            })
            .collect()
    };
    let ours = shape(common::rustcached_bin());
    let theirs = shape(bin);
    assert_eq!(ours.difference(&theirs).collect::<Vec<_>>(), Vec::<&(String, Vec<String>)>::new(), "only ours");
    assert_eq!(theirs.difference(&ours).collect::<Vec<_>>(), Vec::<&(String, Vec<String>)>::new(), "only memcached's");
}

#[test]
fn other_paths_are_404_and_a_silent_client_times_out() {
    let mport = free_port();
    let _srv = Server::start(&["-o", &format!("metrics_port={mport}")]);
    assert!(http(mport, b"GET / HTTP/1.0\r\n\r\n").starts_with("HTTP/1.0 404 "));
    assert!(http(mport, b"GET /metricsX HTTP/1.0\r\n\r\n").starts_with("HTTP/1.0 404 "));
    assert!(http(mport, b"POST /metrics HTTP/1.0\r\n\r\n").starts_with("HTTP/1.0 405 "));
    // A client that sends half a request and stalls is cut off at the deadline, and the next
    // scrape is served.
    let start = Instant::now();
    let stalled = http(mport, b"GET /metrics HTTP/1.1\r\n");
    assert!(stalled.starts_with("HTTP/1.0 408 "), "{stalled}");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(http(mport, b"GET /metrics?x=1 HTTP/1.0\r\n\r\n").starts_with("HTTP/1.0 200 OK"));
}

//! `-m` bounds the process whatever clients do: stalled values and unread replies, from a few
//! hundred and from 10,000 connections, keep the server's peak RSS within the bound README
//! states, and a well-behaved client is still served. (The latencies are reported side by side
//! with memcached by `cargo bench --bench hostile`; here they only have to be live.)

mod common;

use common::hostile::{fill, stalled_sets, unread_multigets, Outcome};
use common::Server;

/// README's bound for `-m 64`: 160 MB of peak RSS.
const BOUND_KB: u64 = 160 * 1024;

/// One scenario at a time: each opens thousands of sockets and pushes hundreds of MB.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    raise_fd_limit();
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// 10,000 client sockets need more descriptors than a default soft limit.
fn raise_fd_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < 30_000 {
            lim.rlim_cur = lim.rlim_max.min(30_000).max(lim.rlim_cur);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn check(what: &str, o: &Outcome, conns: usize) {
    eprintln!("{what}: {o:?}");
    assert_eq!(o.opened, conns, "{what}: could not open every connection");
    assert!(o.peak_rss_kb <= BOUND_KB, "{what}: peak RSS {} kB over {BOUND_KB} kB", o.peak_rss_kb);
    assert!(o.probe_ok, "{what}: the well-behaved client got a wrong reply");
    assert!(o.probe.as_secs() < 5, "{what}: the well-behaved client waited {:?}", o.probe);
}

#[test]
fn five_hundred_stalled_one_megabyte_values() {
    let _one = serial();
    let srv = Server::start(&["-m", "64", "-t", "2"]);
    let o = stalled_sets(srv.port, srv.child.id(), 500, 1_000_000, 900_000);
    check("500 stalled 1 MB sets", &o, 500);
}

#[test]
fn four_hundred_clients_never_reading_one_megabyte_multigets() {
    let _one = serial();
    let srv = Server::start(&["-m", "64", "-t", "2"]);
    fill(srv.port, 10, 1_000_000);
    let o = unread_multigets(srv.port, srv.child.id(), 400, 8, 10, 1_000_000);
    check("400 unread multigets of ten 1 MB items", &o, 400);
}

#[test]
fn ten_thousand_stalled_100k_values() {
    let _one = serial();
    let srv = Server::start(&["-m", "64", "-t", "2", "-c", "10100"]);
    let o = stalled_sets(srv.port, srv.child.id(), 10_000, 100_000, 90_000);
    check("10,000 stalled 100 KB sets", &o, 10_000);
}

#[test]
fn ten_thousand_clients_never_reading_100k_multigets() {
    let _one = serial();
    let srv = Server::start(&["-m", "64", "-t", "2", "-c", "10100"]);
    fill(srv.port, 10, 100_000);
    let o = unread_multigets(srv.port, srv.child.id(), 10_000, 8, 10, 100_000);
    check("10,000 unread multigets of ten 100 KB items", &o, 10_000);
}

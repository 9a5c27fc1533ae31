//! The `rustcached` binary: parse memcached's flags, set up the process, serve until a signal.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use rustcached::config::{Args, Config, EX_NOUSER, EX_OSERR, EX_USAGE, RUSTCACHED_VERSION, VERSION};
use rustcached::server::Server;

mod process;

/// Parse like memcached's getopt_long: long-option prefixes, its messages, exit code 1.
fn parse_args(argv: &[String]) -> Result<Args, ExitCode> {
    let fail = |e: rustcached::config::ConfigError| {
        eprintln!("{e}");
        ExitCode::from(e.code as u8)
    };
    let argv = rustcached::config::expand_long_options(argv).map_err(fail)?;
    Args::try_parse_from(&argv).map_err(|e| match rustcached::config::command_line_error(&argv, &e) {
        Some(err) => fail(err),
        None => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
    })
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let mut args = match parse_args(&argv) {
        Ok(a) => a,
        Err(code) => return code,
    };
    // --conf-file: the file's flags come first, so the command line overrides them.
    let mut logfile = None;
    if let Some(path) = args.conf_file.clone() {
        let under_systemd = std::env::var_os("INVOCATION_ID").is_some() || std::env::var_os("NOTIFY_SOCKET").is_some();
        match rustcached::config::read_conf_file(&path, under_systemd) {
            Ok((file_args, log)) => {
                let mut all = vec![argv[0].clone()];
                all.extend(file_args);
                all.extend(argv[1..].iter().cloned());
                args = match parse_args(&all) {
                    Ok(a) => a,
                    Err(code) => return code,
                };
                logfile = log;
            }
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(e.code as u8);
            }
        }
    }
    if args.version {
        println!("rustcached {RUSTCACHED_VERSION} (memcached {VERSION})");
        return ExitCode::SUCCESS;
    }
    if args.license {
        // The whole notice, as memcached -i prints its own: the license asks binary
        // redistributions to reproduce it, and the binary is sometimes all that is shipped.
        print!("{}", include_str!("../LICENSE"));
        return ExitCode::SUCCESS;
    }
    let mut config = match Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(e.code as u8);
        }
    };
    config.logfile = logfile;
    for warning in &config.warnings {
        eprintln!("{warning}"); // accepted settings that change nothing say so
    }
    if let Err(e) = init_logging(config.verbose, config.logfile.as_deref()) {
        eprintln!("{e}");
        return ExitCode::from(EX_OSERR as u8);
    }
    // A panic anywhere takes the whole process down with a clear message: a half-alive server
    // is worse than a restart.
    std::panic::set_hook(Box::new(|info| {
        let _ = writeln!(std::io::stderr(), "rustcached: fatal: {info}");
        std::process::abort();
    }));
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err((msg, code)) => {
            eprintln!("{msg}");
            ExitCode::from(code)
        }
    }
}

fn init_logging(verbose: u8, logfile: Option<&std::path::Path>) -> Result<(), String> {
    let mut b = env_logger::Builder::new();
    b.filter_level(log::LevelFilter::Trace);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        b.parse_filters(&spec);
    }
    if let Some(path) = logfile {
        // A file gets timestamps; stderr under systemd does not need them (journald adds its own).
        let f = process::LogFile::open(path).map_err(|e| format!("cannot open logfile {}: {e}", path.display()))?;
        b.target(env_logger::Target::Pipe(Box::new(f)));
        b.format_timestamp_secs();
    } else if process::stderr_is_journal() {
        // journald: each line's priority as a `<N>` prefix, and no timestamp (it adds its own)
        b.format(|buf, record| writeln!(buf, "<{}>{}", process::journal_priority(record.level()), record.args()));
    } else {
        // memcached's -vv traces bare, as memcached prints them; our own lines tagged by level
        b.format(|buf, record| match record.target() {
            rustcached::server::trace::TARGET => writeln!(buf, "{}", record.args()),
            _ => writeln!(buf, "[{:<5}] {}", record.level(), record.args()),
        });
    }
    b.format_target(false);
    b.init();
    rustcached::set_log_level(verbose);
    Ok(())
}

fn run(config: Config) -> Result<(), (String, u8)> {
    let os_err = EX_OSERR as u8;
    let signals = process::install_signals().map_err(|e| (format!("signals: {e}"), os_err))?;
    process::check_root(&config).map_err(|m| (m, EX_USAGE as u8))?;
    let user = process::find_user(&config).map_err(|m| (m, EX_NOUSER as u8))?;
    // -L, -r, -Y: memcached's checks and exit codes
    if config.largepages {
        rustcached::limits::check_large_pages().map_err(|m| (m, 1))?;
    }
    if config.coredumps {
        rustcached::limits::raise_core_limit().map_err(|m| (m, rustcached::limits::EX_OSERR))?;
    }
    rustcached::server::asciiauth::AuthFile::check_file(config.auth_file.as_deref()).map_err(|m| (m, 1))?;
    // -Z: certificates that cannot be loaded stop startup as in memcached (exit 64)
    rustcached::server::tls::Tls::load(&config.tls).map_err(|m| (m, EX_USAGE as u8))?;
    if config.maxconns <= rustcached::server::report::RESERVED_FDS + 2 {
        return Err(("Maxconns setting is too low, use -c to increase.".into(), 1));
    }
    process::raise_fd_limit(config.maxconns);
    let server = Server::bind(config.clone()).map_err(|e| (e.to_string(), os_err))?;
    process::drop_privileges(user).map_err(|m| (m, os_err))?;
    if config.daemon {
        process::daemonize(&config).map_err(|m| (m, os_err))?;
    }
    if config.lock_memory {
        if let Err(warning) = rustcached::limits::lock_memory() {
            eprintln!("{warning}"); // memcached warns and carries on
        }
    }
    let pidfile = process::PidFile::create(config.pidfile.as_deref());
    let handle = server.handle();
    process::spawn_signal_thread(signals, handle).map_err(|e| (format!("signals: {e}"), os_err))?;
    if config.metrics_port != 0 {
        let addr = std::net::SocketAddr::new(config.metrics_addr, config.metrics_port);
        let bound = rustcached::metrics::spawn(server.shared().clone(), addr)
            .map_err(|e| (format!("failed to listen for metrics on {addr}: {e}"), os_err))?;
        log::info!("metrics on http://{bound}/metrics");
    }
    let addrs = server.local_addrs();
    let status = format!(
        "serving {} MB on {} with {} threads",
        config.maxbytes >> 20,
        if addrs.is_empty() {
            "a UNIX socket".to_string()
        } else {
            addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")
        },
        config.threads
    );
    let result = server.run(|| {
        log::info!("rustcached {RUSTCACHED_VERSION} (memcached {VERSION}): {status}");
        process::notify_ready(&status);
    });
    process::notify_stopping();
    drop(pidfile);
    result.map_err(|e| (format!("server error: {e}"), 1))
}

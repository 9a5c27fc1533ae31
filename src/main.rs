//! The `rustcached` binary: parse memcached's flags, set up the process, serve until a signal.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use rustcached::config::{Args, Config, EX_USAGE, VERSION};
use rustcached::server::Server;

mod process;

fn parse_args(argv: &[String]) -> Result<Args, ExitCode> {
    Args::try_parse_from(argv).map_err(|e| {
        let code = if e.use_stderr() { EX_USAGE } else { 0 };
        let _ = e.print();
        ExitCode::from(code as u8)
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
        println!("rustcached {VERSION}");
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
        return ExitCode::from(71);
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
    } else {
        b.format_timestamp(None);
    }
    b.format_target(false);
    b.init();
    rustcached::set_log_level(verbose);
    Ok(())
}

fn run(config: Config) -> Result<(), (String, u8)> {
    let signals = process::install_signals().map_err(|e| (format!("signals: {e}"), 71))?;
    process::check_root(&config).map_err(|m| (m, EX_USAGE as u8))?;
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
    let server = Server::bind(config.clone()).map_err(|e| (format!("failed to listen: {e}"), 71))?;
    process::drop_privileges(&config).map_err(|m| (m, 71))?;
    if config.daemon {
        process::daemonize(&config).map_err(|m| (m, 71))?;
    }
    if config.lock_memory {
        if let Err(warning) = rustcached::limits::lock_memory() {
            eprintln!("{warning}"); // memcached warns and carries on
        }
    }
    let pidfile = process::PidFile::create(config.pidfile.as_deref());
    let handle = server.handle();
    process::spawn_signal_thread(signals, handle).map_err(|e| (format!("signals: {e}"), 71))?;
    if config.metrics_port != 0 {
        let addr = std::net::SocketAddr::new(config.metrics_addr, config.metrics_port);
        let bound = rustcached::metrics::spawn(server.shared().clone(), addr)
            .map_err(|e| (format!("failed to listen for metrics on {addr}: {e}"), 71))?;
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
        log::info!("rustcached {VERSION}: {status}");
        process::notify_ready(&status);
    });
    process::notify_stopping();
    drop(pidfile);
    result.map_err(|e| (format!("server error: {e}"), 1))
}

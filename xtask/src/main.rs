//! Build helpers that are not part of the installed programs.
//!
//! `cargo xtask man [DIR]` writes `rustcached.1` and `rustcached-ring.1` (default DIR:
//! `packaging/man`) from the binaries' clap definitions, plus the hand-written sections below
//! for what clap cannot say (`-o` options, `--conf-file`, files, differences from memcached).
//! `cargo xtask man --check` fails when the committed pages differ from what would be written,
//! so a flag added to `config.rs` without regenerating the pages fails CI.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_mangen::Man;

// The `rustcached-ring` binary keeps its clap definition in its own file; compile that file
// here too (its `main` is unused) so the page follows the real flags.
#[allow(dead_code)]
#[path = "../../src/bin/rustcached-ring.rs"]
mod ring_bin;

/// Sections of rustcached(1) written by hand, in roff, placed after OPTIONS.
const RUSTCACHED_EXTRA: &str = include_str!("rustcached.1.in");

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (check, rest): (Vec<&String>, Vec<&String>) = args.iter().partition(|a| *a == "--check");
    match rest.as_slice() {
        [cmd, dir @ ..] if cmd.as_str() == "man" && dir.len() <= 1 => {
            let dir = dir
                .first()
                .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/man"), PathBuf::from);
            match man(&dir, !check.is_empty()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("xtask man: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!("usage: cargo xtask man [--check] [DIR]");
            ExitCode::from(2)
        }
    }
}

/// Render both pages; write them to `dir`, or with `check` compare them with what is there.
fn man(dir: &Path, check: bool) -> Result<(), String> {
    let pages = [
        ("rustcached.1", render(rustcached::config::Args::command(), RUSTCACHED_EXTRA)?),
        ("rustcached-ring.1", render(ring_bin::Args::command(), RING_EXTRA)?),
    ];
    for (name, text) in pages {
        let path = dir.join(name);
        if check {
            let old = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if old != text {
                return Err(format!("{} is out of date: run `cargo xtask man`", path.display()));
            }
        } else {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            std::fs::write(&path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// clap_mangen's sections with `extra` (roff) between OPTIONS (and the after-help text) and the
/// version line.
fn render(cmd: clap::Command, extra: &str) -> Result<Vec<u8>, String> {
    let has_after_help = cmd.get_after_help().is_some() || cmd.get_after_long_help().is_some();
    let man = Man::new(cmd).manual("rustcached manual");
    let mut out = Vec::new();
    let io = |e: std::io::Error| e.to_string();
    man.render_title(&mut out).map_err(io)?;
    man.render_name_section(&mut out).map_err(io)?;
    man.render_synopsis_section(&mut out).map_err(io)?;
    man.render_description_section(&mut out).map_err(io)?;
    man.render_options_section(&mut out).map_err(io)?;
    if has_after_help {
        // clap_mangen titles the after-help text "EXTRA"; it is only worth a section if present
        man.render_extra_section(&mut out).map_err(io)?;
    }
    out.extend_from_slice(extra.as_bytes());
    man.render_version_section(&mut out).map_err(io)?;
    Ok(out)
}

/// rustcached-ring(1) needs little beyond its --help text.
const RING_EXTRA: &str = r#".SH "SEE ALSO"
\fBrustcached\fR(1); README.md ("Running many nodes") in /usr/share/doc/rustcached.
"#;

//! Process-wide memory and core-dump settings asked for by flags: `-k` (lock memory), `-r`
//! (core files) and `-L` (large pages), with memcached 1.6.18's messages and outcomes.
//!
//! Owns: the `mlockall` and `setrlimit(RLIMIT_CORE)` calls and the transparent-huge-page check.
//! Knows nothing of the server; `main` calls these once at startup.

use std::io;

/// EX_OSERR, memcached's exit code when core files cannot be enabled.
pub const EX_OSERR: u8 = crate::config::EX_OSERR as u8;

/// Where Linux says whether transparent huge pages are on (Red Hat kernels used the second).
const THP_PATHS: [&str; 2] =
    ["/sys/kernel/mm/transparent_hugepage/enabled", "/sys/kernel/mm/redhat_transparent_hugepage/enabled"];

/// `-r`: raise the core-file limit to unlimited, or else the soft limit to the hard one, as
/// memcached does; fails (memcached exits with EX_OSERR) only if no core file could be written.
pub fn raise_core_limit() -> Result<(), String> {
    let mut old = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit into the valid struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut old) } == 0 {
        let unlimited = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
        // SAFETY: setrlimit only reads the valid struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &unlimited) } != 0 {
            let to_hard = libc::rlimit { rlim_cur: old.rlim_max, rlim_max: old.rlim_max };
            // SAFETY: as above.
            unsafe { libc::setrlimit(libc::RLIMIT_CORE, &to_hard) };
        }
    }
    let mut now = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: as the first getrlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut now) } != 0 || now.rlim_cur == 0 {
        return Err("failed to ensure corefile creation".into());
    }
    Ok(())
}

/// `-k`: lock all current and future pages in memory. memcached only warns when it cannot
/// (and carries on); the warning is returned for the caller to print.
pub fn lock_memory() -> Result<(), String> {
    // SAFETY: mlockall takes flags only and touches no memory of ours.
    if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } != 0 {
        let e = io::Error::last_os_error().to_string();
        let why = e.split(" (os error").next().unwrap_or(&e);
        return Err(format!("warning: -k invalid, mlockall() failed: {why}"));
    }
    Ok(())
}

/// `-L`: item memory is always advised `MADV_HUGEPAGE`; like memcached on Linux, refuse to
/// start when the kernel has no transparent huge pages or has them `[never]`.
pub fn check_large_pages() -> Result<(), String> {
    let refuse = |why: &str| {
        Err(format!(
            "{why}\nWill use default page size.\nCannot enable large pages on this system\n(There is no support as of this version)"
        ))
    };
    let Some(text) = THP_PATHS.iter().find_map(|p| std::fs::read_to_string(p).ok()) else {
        return refuse("Transparent huge pages support not detected.");
    };
    thp_setting_allows(&text).map_or_else(refuse, Ok)
}

/// Whether the content of the THP `enabled` file allows huge pages.
fn thp_setting_allows(text: &str) -> Result<(), &'static str> {
    if text.trim().is_empty() {
        Err("Transparent huge pages could not read the configuration.")
    } else if text.contains("[never]") {
        Err("Transparent huge pages support disabled.")
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thp_settings() {
        assert!(thp_setting_allows("always [madvise] never\n").is_ok());
        assert!(thp_setting_allows("[always] madvise never\n").is_ok());
        assert_eq!(thp_setting_allows("always madvise [never]\n"), Err("Transparent huge pages support disabled."));
        assert!(thp_setting_allows("").is_err());
    }
}

//! Reading a process's resource use from /proc (proc(5)): CPU time from `/proc/<pid>/stat`
//! (utime + stime, summed over all its threads), resident memory from `/proc/<pid>/status`
//! (VmRSS), and this process's open-files limit. Used by `pgbench` (CPU per transaction) and
//! `idle` (RSS per client). Linux only, like the rest of the harness; no unsafe code.

use std::process::Command;

/// Clock ticks per second of the utime/stime fields (`getconf CLK_TCK`; 100 on Linux).
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// (user, system) CPU seconds the process has used so far, all threads included: the system
/// share tells kernel work (system calls, wakeups) from the pooler's own code.
pub fn cpu_split(pid: u32, ticks: f64) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the whole line are the 12th and 13th after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime / ticks, stime / ticks))
}

/// Resident set size in KiB (VmRSS).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// This process's soft and hard limits on open files (RLIMIT_NOFILE).
pub fn nofile_limits() -> (u64, u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let parse = |s: &str| {
        if s == "unlimited" {
            u64::MAX
        } else {
            s.parse().unwrap_or(1024)
        }
    };
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            (parse(words[3]), parse(words[4]))
        })
        .unwrap_or((1024, 1024))
}

/// Raises this process's soft open-files limit to the hard one (prlimit(1) on our own pid,
/// because the crate forbids the unsafe code a direct setrlimit call would need). Returns the
/// soft limit now in force.
pub fn raise_nofile() -> u64 {
    let (soft, hard) = nofile_limits();
    if soft < hard {
        let hard_text = if hard == u64::MAX {
            "unlimited".to_owned()
        } else {
            hard.to_string()
        };
        let _ = Command::new("prlimit")
            .arg("--pid")
            .arg(std::process::id().to_string())
            .arg(format!("--nofile={hard_text}:{hard_text}"))
            .status();
    }
    nofile_limits().0
}

/// The 1, 5 and 15 minute load averages (/proc/loadavg), e.g. "1.02 0.87 0.60".
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

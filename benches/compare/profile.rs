//! `BENCH_PERF=1`: where pgsluice spends its time under -S extended with 20 clients, after the
//! matrix (so perf's own cost never touches a reported figure). Counts system calls and
//! context switches per transaction for pgsluice and PgBouncer (`perf stat` on the
//! raw_syscalls:sys_enter tracepoint), then samples pgsluice's stacks (`perf record`, cpu-clock:
//! VMs rarely expose hardware counters) and writes perf's reports under target/bench/.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::options::Options;
use crate::output::bench_dir;
use crate::pgbench::{self, Workload};
use crate::setup::{Bench, Target};

#[derive(Debug, serde::Serialize)]
pub struct SyscallCount {
    pub target: Target,
    pub tps: f64,
    pub syscalls_per_tx: f64,
    pub context_switches_per_tx: f64,
    /// Per system call (syscalls:sys_enter_* tracepoints), those at ≥ 0.05 per transaction.
    pub by_syscall: Vec<(String, f64)>,
}

const WORKLOAD: Workload = Workload {
    clients: 20,
    protocol: "extended",
    select_only: true,
    reconnect: false,
};

/// Runs the profile; returns the per-transaction counts (empty when perf is missing).
pub fn record(bench: &Bench, opts: &Options) -> Vec<SyscallCount> {
    let dir = bench_dir();
    let mut counts = Vec::new();
    for target in [Target::Pgsluice, Target::PgsluiceMetrics, Target::PgBouncer] {
        let Some(endpoint) = bench.endpoint(target) else {
            continue;
        };
        let pid = endpoint.pid.expect("poolers have a pid");
        let stat_file = dir.join(format!("perf-stat-{}.csv", target.label()));
        let perf = perf_command()
            .arg("stat")
            .args([
                "-x",
                ",",
                "-e",
                "raw_syscalls:sys_enter,context-switches,syscalls:sys_enter_*",
            ])
            .arg("-o")
            .arg(&stat_file)
            .args([
                "-p",
                &pid.to_string(),
                "--",
                "sleep",
                &opts.seconds.to_string(),
            ])
            .spawn();
        let Ok(mut perf) = perf else {
            eprintln!("compare: perf not found; no profile");
            return counts;
        };
        let run = pgbench::run(&endpoint, &WORKLOAD, opts.seconds, bench.ticks);
        let _ = perf.wait();
        let tx = run.tps * f64::from(opts.seconds);
        let read = |event: &str| stat_value(&stat_file, event).unwrap_or(0.0) / tx.max(1.0);
        let count = SyscallCount {
            target,
            tps: run.tps,
            syscalls_per_tx: read("raw_syscalls:sys_enter"),
            context_switches_per_tx: read("context-switches"),
            by_syscall: per_syscall(&stat_file, tx.max(1.0)),
        };
        eprintln!("  profile        {count:?}");
        counts.push(count);
    }
    for target in [Target::Pgsluice, Target::PgsluiceMetrics] {
        sample_stacks(bench, opts, &dir, target);
    }
    counts
}

/// perf record of pgsluice's stacks (DWARF unwinding: release builds keep no frame pointers,
/// and `debug = 1` in the release profile provides the line tables), then two text reports.
fn sample_stacks(bench: &Bench, opts: &Options, dir: &Path, target: Target) {
    let endpoint = bench.endpoint(target).expect("pgsluice");
    let pid = endpoint.pid.expect("pid");
    let data = dir.join(format!("perf-{}.data", target.label()));
    let perf = perf_command()
        .args([
            "record",
            "-e",
            "cpu-clock",
            "-F",
            "499",
            "--call-graph",
            "dwarf,16384",
        ])
        .arg("-o")
        .arg(&data)
        .args([
            "-p",
            &pid.to_string(),
            "--",
            "sleep",
            &opts.seconds.to_string(),
        ])
        .spawn();
    let Ok(mut perf) = perf else { return };
    let run = pgbench::run(&endpoint, &WORKLOAD, opts.seconds, bench.ticks);
    let _ = perf.wait();
    eprintln!(
        "  profile        perf record {} under {:.0} tps",
        target.label(),
        run.tps
    );
    // Kernel vs pgsluice vs libc, then the hottest symbols, then inclusive (callers') costs.
    for (kind, args) in [
        ("dso", &["--no-children", "--sort", "dso"][..]),
        (
            "self",
            &[
                "--no-children",
                "--sort",
                "dso,symbol",
                "--percent-limit",
                "0.5",
            ][..],
        ),
        (
            "children",
            &["--children", "--sort", "symbol", "--percent-limit", "3"][..],
        ),
    ] {
        let name = format!("profile-{}-{kind}.txt", target.label());
        let out = Command::new("perf")
            .args(["report", "--stdio", "-g", "none", "-i"])
            .arg(&data)
            .args(args)
            .stderr(Stdio::null())
            .output();
        if let Ok(out) = out {
            let path = dir.join(name);
            let _ = std::fs::write(&path, &out.stdout);
            eprintln!("compare: {}", path.display());
        }
    }
}

/// `perf` quiet on stdout/stderr (its summaries go to files).
fn perf_command() -> Command {
    let mut cmd = Command::new("perf");
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    cmd
}

/// The value of `event` in a `perf stat -x ,` file ("value,unit,event,...").
fn stat_value(file: &Path, event: &str) -> Option<f64> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(',').collect();
        (fields.get(2) == Some(&event))
            .then(|| fields[0].parse().ok())
            .flatten()
    })
}

/// The `syscalls:sys_enter_<name>` counts of a `perf stat -x ,` file, per transaction, most
/// frequent first.
fn per_syscall(file: &Path, tx: f64) -> Vec<(String, f64)> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut out: Vec<(String, f64)> = text
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let name = fields.get(2)?.strip_prefix("syscalls:sys_enter_")?;
            let per_tx = fields[0].parse::<f64>().ok()? / tx;
            (per_tx >= 0.05).then(|| (name.to_owned(), per_tx))
        })
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

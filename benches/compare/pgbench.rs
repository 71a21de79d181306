//! One pgbench run against one endpoint, and what it yields: transactions/s from pgbench's
//! summary, mean and p99 latency from its per-transaction log (`--log`, one line per
//! transaction: "client_id transaction_no time_us script_no epoch epoch_us", pgbench docs
//! "Per-Transaction Logging"), failures, and the pooler's CPU over the run. Called by `matrix`
//! and `profile`. A run that pgbench aborts is reported (with its first error), never retried.

use std::path::Path;
use std::time::Instant;

use crate::procstat;
use crate::setup::{pgbench_command, Endpoint};

#[derive(Clone, Debug, serde::Serialize)]
pub struct Workload {
    pub clients: u32,
    /// pgbench -M: simple, extended or prepared.
    pub protocol: &'static str,
    /// -S (select only) instead of the TPC-B-like default script.
    pub select_only: bool,
    /// -C: a new connection per transaction.
    pub reconnect: bool,
}

impl Workload {
    pub fn args(&self, seconds: u32) -> Vec<String> {
        let jobs = self.clients.min(2);
        let mut args = vec![
            "-n".to_owned(), // the harness vacuums itself, straight to Postgres
            format!("-c{}", self.clients),
            format!("-j{jobs}"),
            format!("-T{seconds}"),
            format!("-M{}", self.protocol),
        ];
        if self.select_only {
            args.push("-S".to_owned());
        }
        if self.reconnect {
            args.push("-C".to_owned());
        }
        args
    }
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Run {
    /// pgbench exited 0 (no client aborted).
    pub ok: bool,
    /// First error pgbench printed, when it did not exit 0.
    pub error: Option<String>,
    pub tps: f64,
    pub transactions: u64,
    /// "number of failed transactions" (pgbench 15+), plus the `failed` lines of the log.
    pub failed: u64,
    pub latency_mean_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    /// utime + stime of the pooler process over the whole run (logins included).
    pub pooler_cpu_s: Option<f64>,
    /// The system (kernel) part of `pooler_cpu_s`.
    pub pooler_sys_s: Option<f64>,
    pub wall_s: f64,
}

impl Run {
    /// Pooler CPU seconds per 1000 transactions.
    pub fn cpu_per_1k(&self) -> Option<f64> {
        let cpu = self.pooler_cpu_s?;
        (self.transactions > 0).then(|| cpu * 1000.0 / self.transactions as f64)
    }
}

pub fn run(endpoint: &Endpoint, workload: &Workload, seconds: u32, ticks: f64) -> Run {
    let logdir = tempfile::Builder::new()
        .prefix("pgsluice-pgbench-")
        .tempdir_in("/tmp")
        .expect("pgbench log dir");
    let prefix = logdir.path().join("tx");
    let cpu_before = endpoint.pid.and_then(|p| procstat::cpu_split(p, ticks));
    let started = Instant::now();
    let out = pgbench_command(endpoint.port)
        .args(workload.args(seconds))
        .arg("--log")
        .arg(format!("--log-prefix={}", prefix.display()))
        .output()
        .expect("spawn pgbench");
    let wall_s = started.elapsed().as_secs_f64();
    let cpu_after = endpoint.pid.and_then(|p| procstat::cpu_split(p, ticks));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary = Summary::parse(&stdout);
    let mut log = read_logs(logdir.path());
    let ok = out.status.success();
    Run {
        ok,
        error: (!ok).then(|| first_error(&stderr, out.status.code())),
        tps: summary.tps,
        transactions: summary.transactions,
        failed: summary.failed.max(log.failed),
        latency_mean_ms: log.mean_ms().or(summary.latency_ms),
        latency_p99_ms: log.percentile_ms(0.99),
        pooler_cpu_s: cpu_before
            .zip(cpu_after)
            .map(|(b, a)| (a.0 + a.1) - (b.0 + b.1)),
        pooler_sys_s: cpu_before.zip(cpu_after).map(|(b, a)| a.1 - b.1),
        wall_s,
    }
}

/// The figures of pgbench's closing summary.
#[derive(Default)]
struct Summary {
    tps: f64,
    transactions: u64,
    failed: u64,
    latency_ms: Option<f64>,
}

impl Summary {
    fn parse(stdout: &str) -> Summary {
        let mut s = Summary::default();
        for line in stdout.lines() {
            let first_number = |rest: &str| -> Option<f64> {
                rest.split(|c: char| c.is_whitespace() || c == '/')
                    .find(|w| !w.is_empty())?
                    .parse()
                    .ok()
            };
            if let Some(rest) = line.strip_prefix("number of transactions actually processed:") {
                s.transactions = first_number(rest).unwrap_or(0.0) as u64;
            } else if let Some(rest) = line.strip_prefix("number of failed transactions:") {
                s.failed = first_number(rest).unwrap_or(0.0) as u64;
            } else if let Some(rest) = line.strip_prefix("latency average =") {
                s.latency_ms = first_number(rest);
            } else if let Some(rest) = line.strip_prefix("tps =") {
                s.tps = first_number(rest).unwrap_or(0.0);
            }
        }
        s
    }
}

/// Latencies (µs) of every logged transaction, and how many were logged as failed.
#[derive(Default)]
struct TxLog {
    latencies_us: Vec<u64>,
    failed: u64,
}

impl TxLog {
    fn mean_ms(&self) -> Option<f64> {
        let n = self.latencies_us.len();
        (n > 0).then(|| self.latencies_us.iter().sum::<u64>() as f64 / n as f64 / 1000.0)
    }

    fn percentile_ms(&mut self, q: f64) -> Option<f64> {
        let n = self.latencies_us.len();
        if n == 0 {
            return None;
        }
        let rank = ((n as f64 * q).ceil() as usize).clamp(1, n) - 1;
        let (_, v, _) = self.latencies_us.select_nth_unstable(rank);
        Some(*v as f64 / 1000.0)
    }
}

/// Reads every per-thread log file pgbench wrote (`tx.<pid>`, `tx.<pid>.<thread>`).
fn read_logs(dir: &Path) -> TxLog {
    let mut log = TxLog::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return log;
    };
    for entry in entries.filter_map(Result::ok) {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for line in text.lines() {
            match line.split_whitespace().nth(2) {
                Some("failed") => log.failed += 1,
                Some(t) => {
                    if let Ok(us) = t.parse() {
                        log.latencies_us.push(us);
                    }
                }
                None => {}
            }
        }
    }
    log
}

/// The first line of pgbench's stderr that says what went wrong, shortened for a table cell.
fn first_error(stderr: &str, code: Option<i32>) -> String {
    let line = stderr
        .lines()
        .find(|l| l.contains("FATAL") || l.contains("ERROR"))
        .or_else(|| stderr.lines().find(|l| l.contains("error")))
        .unwrap_or("")
        .trim();
    let mut text: String = line.chars().take(160).collect();
    if text.is_empty() {
        text = format!("pgbench exited with {code:?}");
    }
    text
}

//! The benchmark matrix: which pgbench workloads run against which targets, and the runner
//! that interleaves them (round 1: A, B, C; round 2: A, B, C; ...) so that drift on a shared
//! machine hits every target alike. Called by `main`; `report` and `verdict` read the cells.

use std::io::{Read, Write};
use std::time::Duration;

use crate::options::Options;
use crate::pgbench::{self, Run, Workload};
use crate::setup::{Bench, Target};

#[derive(Debug, serde::Serialize)]
pub struct Cell {
    pub id: &'static str,
    pub title: &'static str,
    pub workload: Workload,
    /// One entry per target, runs in round order.
    pub results: Vec<(Target, Vec<Run>)>,
}

impl Cell {
    pub fn runs(&self, target: Target) -> Option<&[Run]> {
        self.results
            .iter()
            .find(|(t, _)| *t == target)
            .map(|(_, r)| r.as_slice())
    }
}

const COMPARE: &[Target] = &[Target::Direct, Target::Pgsluice, Target::PgBouncer];
const METRICS: &[Target] = &[Target::Pgsluice, Target::PgsluiceMetrics];

/// (id, title, clients, -M, -S, -C, targets), in the order they run: the TPC-B cell writes,
/// so it comes after every read-only one.
type Spec = (
    &'static str,
    &'static str,
    u32,
    &'static str,
    bool,
    bool,
    &'static [Target],
);

const SPECS: &[Spec] = &[
    (
        "s_simple_20",
        "-S -M simple, 20 clients",
        20,
        "simple",
        true,
        false,
        COMPARE,
    ),
    (
        "s_extended_20",
        "-S -M extended, 20 clients",
        20,
        "extended",
        true,
        false,
        COMPARE,
    ),
    (
        "s_prepared_20",
        "-S -M prepared, 20 clients",
        20,
        "prepared",
        true,
        false,
        COMPARE,
    ),
    (
        "s_latency_1",
        "-S -M simple, 1 client",
        1,
        "simple",
        true,
        false,
        COMPARE,
    ),
    (
        "s_connect_20",
        "-S -C (connect per transaction), 20 clients",
        20,
        "simple",
        true,
        true,
        COMPARE,
    ),
    (
        "s_surge_1000",
        "-S -M simple, 1000 clients",
        1000,
        "simple",
        true,
        false,
        COMPARE,
    ),
    (
        "metrics_20",
        "-S -M extended, 20 clients: metrics off / on",
        20,
        "extended",
        true,
        false,
        METRICS,
    ),
    (
        "tpcb_20",
        "TPC-B-like (default script), 20 clients",
        20,
        "simple",
        false,
        false,
        COMPARE,
    ),
];

/// Runs every selected cell; targets that are not available (no PgBouncer) are left out.
pub fn run_all(bench: &Bench, opts: &Options) -> Vec<Cell> {
    let selected: Vec<&Spec> = SPECS.iter().filter(|s| opts.wants(s.0)).collect();
    let total: usize = selected
        .iter()
        .map(|s| s.6.len() * opts.rounds as usize)
        .sum();
    eprintln!(
        "compare: {} cells, {total} runs of {} s (about {} min)",
        selected.len(),
        opts.seconds,
        total as u64 * (u64::from(opts.seconds) + 3) / 60 + 1
    );
    selected
        .into_iter()
        .map(|s| run_cell(bench, opts, s))
        .collect()
}

fn run_cell(bench: &Bench, opts: &Options, spec: &Spec) -> Cell {
    let &(id, title, clients, protocol, select_only, reconnect, targets) = spec;
    let workload = Workload {
        clients,
        protocol,
        select_only,
        reconnect,
    };
    let targets: Vec<Target> = targets
        .iter()
        .copied()
        .filter(|t| bench.endpoint(*t).is_some())
        .collect();
    let mut results: Vec<(Target, Vec<Run>)> = targets.iter().map(|t| (*t, Vec::new())).collect();
    bench.vacuum();
    for round in 1..=opts.rounds {
        for (target, runs) in results.iter_mut() {
            let endpoint = bench.endpoint(*target).expect("filtered above");
            let run = pgbench::run(&endpoint, &workload, opts.seconds, bench.ticks);
            eprintln!(
                "  {id:<14} round {round} {:<16} tps {:>9.1}  p99 {:>8} ms  failed {}  cpu/1k {} (sys {}%){}",
                target.label(),
                run.tps,
                fmt_opt(run.latency_p99_ms, 2),
                run.failed,
                fmt_opt(run.cpu_per_1k(), 3),
                fmt_opt(
                    run.pooler_sys_s
                        .zip(run.pooler_cpu_s)
                        .map(|(s, c)| 100.0 * s / c.max(1e-9)),
                    0
                ),
                run.error
                    .as_deref()
                    .map(|e| format!("  ERROR {e}"))
                    .unwrap_or_default()
            );
            if *target == Target::PgsluiceMetrics {
                check_metrics(bench.metrics_port);
            }
            runs.push(run);
            std::thread::sleep(Duration::from_secs_f64(opts.pause_s));
        }
    }
    Cell {
        id,
        title,
        workload,
        results,
    }
}

fn fmt_opt(v: Option<f64>, decimals: usize) -> String {
    v.map(|v| format!("{v:.decimals$}"))
        .unwrap_or_else(|| "-".into())
}

/// Scrapes /metrics once after a metrics run, as Prometheus would, so that "metrics on" is
/// known to have recorded something (a listener that serves nothing would cost nothing).
fn check_metrics(port: u16) {
    let body = (|| -> std::io::Result<String> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    })();
    match body {
        Ok(text) if text.contains("pgsluice_transactions") => {}
        Ok(text) => eprintln!(
            "compare: WARNING /metrics has no transaction counter ({} bytes)",
            text.len()
        ),
        Err(e) => eprintln!("compare: WARNING cannot scrape /metrics: {e}"),
    }
}

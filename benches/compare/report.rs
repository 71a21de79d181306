//! The bench's output: one Markdown report (the machine, a row per cell and target, memory,
//! the speed and memory targets as met / not met, syscalls per transaction) for stdout and
//! BENCHMARKS.md, and the same data plus every single run as JSON under target/bench/.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

use crate::idle::Memory;
use crate::matrix::Cell;
use crate::options::Options;
use crate::procstat;
use crate::profile::SyscallCount;
use crate::setup::{Bench, MAX_CONNECTIONS, POOL_SIZE, SCALE};
use crate::stats::{self, Row};
use crate::verdict::{self, Verdict};

#[derive(Debug, serde::Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub postgres: String,
    pub pgbouncer: Option<String>,
    pub pgsluice: String,
    /// "release" under `cargo bench`; "debug" when someone ran a dev build by hand.
    pub build: &'static str,
    /// Load averages at the start and at the end of the bench.
    pub load_at_start: String,
    pub load_at_end: String,
    /// Extra environment given to pgsluice (BENCH_PGSLUICE_ENV).
    pub pgsluice_env: Vec<(String, String)>,
    /// Extra `[pooler]` lines given to pgsluice (BENCH_PGSLUICE_CONFIG).
    pub pgsluice_config: Vec<String>,
}

#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub machine: Machine,
    pub seconds_per_run: u32,
    pub rounds: u32,
    pub rows: Vec<Row>,
    pub memory: Vec<Memory>,
    pub verdicts: Vec<Verdict>,
    pub syscalls: Vec<SyscallCount>,
    pub cells: Vec<Cell>,
}

impl Report {
    pub fn new(
        bench: &Bench,
        opts: &Options,
        cells: Vec<Cell>,
        memory: Vec<Memory>,
        syscalls: Vec<SyscallCount>,
    ) -> Report {
        Report {
            machine: machine(bench, opts),
            seconds_per_run: opts.seconds,
            rounds: opts.rounds,
            rows: cells.iter().flat_map(stats::rows).collect(),
            verdicts: verdict::all(&cells, &memory),
            memory,
            syscalls,
            cells,
        }
    }

    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Machine: {} CPU(s), {}, Linux {}; {}; {}; pgsluice {} ({} build{}). Load average \
             {} at the start, {} at the end.\n\
             PostgreSQL max_connections {MAX_CONNECTIONS}, pgbench scale {SCALE}, -j 2, \
             {} s per run, {} rounds interleaved; poolers in transaction mode, pool size \
             {POOL_SIZE}, md5 auth. Figures are medians over the rounds; ratios are medians of \
             per-round ratios of adjacent runs.\n",
            m.cpus,
            m.cpu_model,
            m.kernel,
            m.postgres,
            m.pgbouncer.as_deref().unwrap_or("PgBouncer not installed"),
            m.pgsluice,
            m.build,
            m.pgsluice_env
                .iter()
                .map(|(k, v)| format!(", {k}={v}"))
                .chain(m.pgsluice_config.iter().map(|l| format!(", {l}")))
                .collect::<String>(),
            m.load_at_start,
            m.load_at_end,
            self.seconds_per_run,
            self.rounds
        );
        s.push_str(
            "| cell | target | tx/s | mean ms | p99 ms | failed | pooler CPU s / 1000 tx | \
             × direct | × PgBouncer | note |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n",
        );
        for r in &self.rows {
            let note = match (r.vs_metrics_off, &r.error) {
                (Some(x), _) => format!("{x:.3} × metrics off"),
                (None, Some(e)) => e.replace('|', "/"),
                (None, None) => String::new(),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.cell,
                r.target.label(),
                num(r.tps, 0),
                num(r.latency_mean_ms, 3),
                num(r.latency_p99_ms, 3),
                r.failed,
                num(r.cpu_s_per_1k_tx, 4),
                num(r.vs_direct, 3),
                num(r.vs_pgbouncer, 3),
                note
            );
        }
        self.memory_table(&mut s);
        self.syscall_table(&mut s);
        s.push_str("\n| target | met | measured |\n|---|---|---|\n");
        for v in &self.verdicts {
            let met = match v.met {
                Some(true) => "met",
                Some(false) => "NOT met",
                None => "n/a",
            };
            let _ = writeln!(s, "| {} | {met} | {} |", v.target, v.measured);
        }
        s
    }

    fn memory_table(&self, s: &mut String) {
        if self.memory.is_empty() {
            return;
        }
        s.push_str(
            "\n| pooler | idle clients | RSS before | RSS with clients | KiB / client | \
             marginal KiB / client | note |\n|---|---:|---:|---:|---:|---:|---|\n",
        );
        for m in &self.memory {
            let _ = writeln!(
                s,
                "| {} | {} | {} KiB | {} KiB | {:.2} | {:.2} | {} |",
                m.pooler,
                m.connected,
                m.base_rss_kib,
                m.rss_kib,
                m.per_client_kib(),
                m.delta_per_client_kib(),
                m.first_error.as_deref().unwrap_or("")
            );
        }
    }

    fn syscall_table(&self, s: &mut String) {
        if self.syscalls.is_empty() {
            return;
        }
        s.push_str(
            "\n| -S extended, 20 clients (perf stat) | tx/s | syscalls / tx | context switches / tx \
             | per system call / tx |\n|---|---:|---:|---:|---|\n",
        );
        for c in &self.syscalls {
            let calls: Vec<String> = c
                .by_syscall
                .iter()
                .map(|(name, n)| format!("{name} {n:.2}"))
                .collect();
            let _ = writeln!(
                s,
                "| {} | {:.0} | {:.2} | {:.2} | {} |",
                c.target.label(),
                c.tps,
                c.syscalls_per_tx,
                c.context_switches_per_tx,
                calls.join(", ")
            );
        }
    }

    /// Writes `compare-<unix time>.json`, `compare-latest.json` and `.md`; returns the first.
    pub fn write_json(&self) -> PathBuf {
        crate::output::write_reports("compare", self, &self.markdown())
    }
}

fn num(v: Option<f64>, decimals: usize) -> String {
    v.map(|v| format!("{v:.decimals$}"))
        .unwrap_or_else(|| "–".into())
}

fn machine(bench: &Bench, opts: &Options) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let first_line = |cmd: &mut Command| {
        cmd.output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_owned()
            })
            .unwrap_or_default()
    };
    Machine {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu_model: cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
            .unwrap_or_default(),
        kernel: first_line(Command::new("uname").arg("-r")),
        postgres: first_line(Command::new(bench.pg.bindir().join("postgres")).arg("--version")),
        pgbouncer: bench.bouncer.as_ref().map(|b| b.version.clone()),
        pgsluice: env!("CARGO_PKG_VERSION").to_owned(),
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        load_at_start: bench.load_at_start.clone(),
        load_at_end: procstat::load_average(),
        pgsluice_env: opts.pgsluice_env.clone(),
        pgsluice_config: opts.pgsluice_config.clone(),
    }
}

//! The knobs of the comparison, from environment variables (cargo bench passes no options of
//! its own through) and from filter words after `--`. Read once by `main`; every other module
//! gets them by reference. Defaults keep the whole run near 12 minutes on 2 cores.

use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Options {
    /// `BENCH_SECONDS`: pgbench -T of each run.
    pub seconds: u32,
    /// `BENCH_ROUNDS`: how many times each target runs per cell (A, B, C, A, B, C, ...).
    pub rounds: u32,
    /// Cell ids to run (`cargo bench --bench compare -- s_extended_20 surge`; a word matches
    /// any cell id containing it), or `BENCH_CELLS=a,b`; empty = all.
    pub cells: Vec<String>,
    /// `BENCH_IDLE_CLIENTS`: idle logged-in clients for the memory figure; 0 skips it.
    pub idle_clients: usize,
    /// `BENCH_PERF=1`: after the matrix, profile pgsluice under -S extended with perf.
    pub perf: bool,
    /// `PGBOUNCER`: the PgBouncer binary; default: `pgbouncer` on PATH or /usr/sbin.
    pub pgbouncer: Option<PathBuf>,
    /// `BENCH_PGSLUICE_ENV`: extra environment for every pgsluice started, `;` between
    /// `KEY=VALUE` pairs, for experiments without a rebuild: `TOKIO_WORKER_THREADS=1` (the
    /// runtime builder reads it), `MALLOC_ARENA_MAX=1`; shown in the report.
    pub pgsluice_env: Vec<(String, String)>,
    /// `BENCH_PGSLUICE_CONFIG`: extra `[pooler]` lines for every pgsluice started, `;` between
    /// lines (e.g. `pkt_buf = 512`), for configuration experiments; shown in the report.
    pub pgsluice_config: Vec<String>,
    /// Seconds of rest between runs, so TIME_WAIT sockets and dirty pages settle a little.
    pub pause_s: f64,
}

impl Options {
    pub fn from_env(args: &[String]) -> Options {
        let mut cells: Vec<String> = args
            .iter()
            .filter(|a| !a.starts_with('-'))
            .cloned()
            .collect();
        if let Ok(list) = std::env::var("BENCH_CELLS") {
            cells.extend(
                list.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            );
        }
        Options {
            seconds: env_num("BENCH_SECONDS", 10),
            rounds: env_num("BENCH_ROUNDS", 3).max(1),
            cells,
            idle_clients: env_num("BENCH_IDLE_CLIENTS", 10_000),
            perf: std::env::var("BENCH_PERF").is_ok_and(|v| v == "1"),
            pgbouncer: std::env::var_os("PGBOUNCER")
                .map(PathBuf::from)
                .or_else(find_pgbouncer),
            pgsluice_env: list("BENCH_PGSLUICE_ENV")
                .iter()
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => (k.trim().to_owned(), v.trim().to_owned()),
                    None => panic!("BENCH_PGSLUICE_ENV: {kv:?} is not KEY=VALUE"),
                })
                .collect(),
            pgsluice_config: list("BENCH_PGSLUICE_CONFIG"),
            pause_s: 1.0,
        }
    }

    /// Whether a cell with this id is selected.
    pub fn wants(&self, cell_id: &str) -> bool {
        self.cells.is_empty() || self.cells.iter().any(|c| cell_id.contains(c.as_str()))
    }
}

/// A `;`-separated environment variable, trimmed, empty items dropped.
fn list(name: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_default()
        .split(';')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// Debian installs PgBouncer in /usr/sbin, which is not on every user's PATH.
fn find_pgbouncer() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("pgbouncer"))
        .find(|p| p.is_file())
}

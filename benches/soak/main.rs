//! `cargo bench --bench soak`: SOAK_CLIENTS clients (5,000) through pgsluice in transaction
//! mode for SOAK_SECONDS (600) with a mix of short transactions, prepared statements, COPY and
//! cancels, while PostgreSQL restarts SOAK_RESTARTS times. Prints one line per window
//! and a Markdown summary; JSON goes to target/bench/. See docs/soak.md. Invariant: it only
//! runs under `cargo bench` (argument `--bench`); under `cargo test` it exits at once.

#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "../compare/output.rs"]
mod output;
// Only the RSS, open-files and limit readers are used here.
#[allow(dead_code)]
#[path = "../compare/procstat.rs"]
mod procstat;

mod options;
mod report;
mod window;
mod workload;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{md5_login, PgCluster, PgOptions, Pooler, PoolerConfig, TEST_DB};
use options::Options;
use report::{Report, Sample};
use workload::Shared;

const POOL_SIZE: u32 = 20;
const MAX_CONNECTIONS: u32 = 100;
/// Sockets the bench needs beyond one per client: cancels in flight, psql, the harness.
const FD_HEADROOM: u64 = 200;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        eprintln!("soak: not run by `cargo bench`; skipping (run `cargo bench --bench soak`)");
        return;
    }
    let opts = Options::from_env();
    eprintln!("soak: {opts:?}");
    // Raised before pgsluice is spawned, so it inherits the limit too (clients + pool).
    let nofile = procstat::raise_nofile();
    if nofile < opts.clients as u64 + FD_HEADROOM {
        eprintln!(
            "soak: warning: open-files limit {nofile} is below {} clients + {FD_HEADROOM}",
            opts.clients
        );
    }
    let pg = Arc::new(PgCluster::start_with(PgOptions {
        max_connections: MAX_CONNECTIONS,
        ..PgOptions::default()
    }));
    pg.sql(TEST_DB, workload::SCHEMA);
    let pooler = Pooler::start(PoolerConfig::new(&pg).pooler(&format!(
        "pool_mode = \"transaction\"\ndefault_pool_size = {POOL_SIZE}\n\
         max_client_conn = {}",
        opts.clients + 100
    )));
    eprintln!(
        "soak: PostgreSQL on port {}, pgsluice pid {} on port {}",
        pg.port(),
        pooler.pid(),
        pooler.port()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let report = runtime.block_on(run(&opts, pg.clone(), &pooler));
    println!("{}", report.markdown());
    let json = report.write();
    eprintln!("soak: JSON written to {}", json.display());
    // The pooler's log explains the errors counted above (why each client was disconnected).
    let log = json.with_file_name("soak-latest-pgsluice.log");
    if std::fs::copy(pooler.log_path(), &log).is_ok() {
        eprintln!("soak: pgsluice log copied to {}", log.display());
    }
}

async fn run(opts: &Options, pg: Arc<PgCluster>, pooler: &Pooler) -> Report {
    let start = Instant::now();
    let shared = Arc::new(Shared {
        recorder: Default::default(),
        connected: Default::default(),
        end: start + opts.run_for(),
    });
    let clients = tokio::spawn(open_clients(
        opts.clone(),
        pooler.connect_config(),
        shared.clone(),
        start,
    ));
    let restarts = Arc::new(Mutex::new(Vec::new()));
    let restarter = {
        let (times, restarts) = (opts.restart_times(), restarts.clone());
        std::thread::spawn(move || restart_postgres(&pg, start, times, &restarts))
    };
    let samples = sample_until_end(opts, &shared, pooler.pid(), start).await;
    let handles = clients.await.expect("client opener");
    for h in handles {
        // A client still inside its last operation gets a minute to finish it.
        if tokio::time::timeout(Duration::from_secs(60), h)
            .await
            .is_err()
        {
            eprintln!("soak: a client did not stop within 60 s of the end");
        }
    }
    restarter.join().expect("restarter thread");
    let restarts_at_s = restarts.lock().expect("restart list").clone();
    summarize(opts, samples, restarts_at_s)
}

/// Opens the clients evenly over the ramp-up; returns their tasks.
async fn open_clients(
    opts: Options,
    base: tokio_postgres::Config,
    shared: Arc<Shared>,
    start: Instant,
) -> Vec<tokio::task::JoinHandle<()>> {
    let think = Duration::from_millis(opts.think_ms);
    let mut handles = Vec::with_capacity(opts.clients);
    for id in 0..opts.clients {
        let at = start + opts.ramp_up().mul_f64(id as f64 / opts.clients as f64);
        tokio::time::sleep_until(at.into()).await;
        let mut cfg = md5_login(base.clone());
        cfg.application_name(format!("soak_{id}"))
            .connect_timeout(Duration::from_secs(30));
        let task = workload::run_client(id as i32, cfg, think, shared.clone());
        handles.push(tokio::spawn(task));
    }
    handles
}

/// Restarts PostgreSQL at `times` (from `start`): fast, immediate, fast, ...
fn restart_postgres(
    pg: &PgCluster,
    start: Instant,
    times: Vec<Duration>,
    done: &Mutex<Vec<(u64, String)>>,
) {
    for (i, at) in times.into_iter().enumerate() {
        std::thread::sleep((start + at).saturating_duration_since(Instant::now()));
        let mode = if i % 2 == 0 { "fast" } else { "immediate" };
        eprintln!(
            "soak: t={}s restarting PostgreSQL ({mode})",
            start.elapsed().as_secs()
        );
        pg.restart(mode);
        eprintln!("soak: t={}s PostgreSQL is back", start.elapsed().as_secs());
        done.lock()
            .expect("restart list")
            .push((at.as_secs(), mode.to_owned()));
    }
}

/// One sample per window until the run ends, each printed as it is taken.
async fn sample_until_end(
    opts: &Options,
    shared: &Shared,
    pid: u32,
    start: Instant,
) -> Vec<Sample> {
    let every = Duration::from_secs(opts.sample_seconds);
    let mut samples = Vec::new();
    let mut next = start + every;
    while next <= shared.end + Duration::from_millis(500) {
        tokio::time::sleep_until(next.into()).await;
        let mut w = shared.recorder.take();
        let sample = Sample {
            elapsed_s: start.elapsed().as_secs_f64().round() as u64,
            connected: shared.connected.load(Ordering::Relaxed),
            ok: w.ok,
            p50_ms: w.quantile_ms(0.50),
            p99_ms: w.quantile_ms(0.99),
            errors: w.errors,
            cancelled: w.cancelled,
            cancel_missed: w.cancel_missed,
            rss_kib: procstat::rss_kib(pid),
            open_fds: open_fds(pid),
        };
        println!("{}", sample.line());
        samples.push(sample);
        next += every;
    }
    samples
}

/// Entries of /proc/<pid>/fd: sockets, the log, epoll and the rest.
fn open_fds(pid: u32) -> Option<u64> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|d| d.count() as u64)
}

fn summarize(opts: &Options, samples: Vec<Sample>, restarts_at_s: Vec<(u64, String)>) -> Report {
    let mut total_errors = std::collections::BTreeMap::new();
    for s in &samples {
        for (kind, n) in &s.errors {
            *total_errors.entry(kind.clone()).or_default() += n;
        }
    }
    let full = opts.clients == 5000 && opts.seconds == 600 && opts.restarts == 2;
    Report {
        trial_label: if full {
            String::new()
        } else {
            " (trial, not the full run)".into()
        },
        options: opts.clone(),
        restarts_at_s,
        total_ok: samples.iter().map(|s| s.ok).sum(),
        total_cancelled: samples.iter().map(|s| s.cancelled).sum(),
        total_cancel_missed: samples.iter().map(|s| s.cancel_missed).sum(),
        total_errors,
        verdict: report::verdict(&samples, opts.ramp_up().as_secs(), opts.clients),
        samples,
        load_average_end: procstat::load_average(),
    }
}

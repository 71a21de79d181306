//! `cargo bench --bench surge`: the outage pgsluice exists to prevent, replayed. PostgreSQL
//! with max_connections 100; clients ramp from SURGE_BASE (50) to SURGE_PEAK (2,000) over
//! SURGE_RAMP_SECONDS (60) and back, each running pgbench -S's SELECT with SURGE_THINK_MS
//! (10) between transactions; once straight to PostgreSQL, once through pgsluice and once
//! through PgBouncer (PGBOUNCER, as for `compare`). Per second: transactions, failed
//! transactions and connection errors, p50/p99 latency, clients waiting, servers in use.
//! Writes the timeline as JSON and as an SVG chart under target/bench/ (and to SURGE_CHART
//! when set), and a Markdown summary on stdout. Under `cargo test` it exits at once.

#[path = "../../tests/common/mod.rs"]
mod common;

// The systems under test are started exactly as `compare` starts them.
#[allow(dead_code)]
#[path = "../compare/options.rs"]
mod options;
#[allow(dead_code)]
#[path = "../compare/output.rs"]
mod output;
#[allow(dead_code)]
#[path = "../compare/pgbouncer.rs"]
mod pgbouncer;
#[allow(dead_code)]
#[path = "../compare/procstat.rs"]
mod procstat;
#[allow(dead_code)]
#[path = "../compare/setup.rs"]
mod setup;

mod chart;
mod load;
mod sample;

use std::time::Duration;

use load::Crowd;
use sample::{Observer, Sample};
use setup::{Bench, Target, DATABASE, PASSWORD, USER};

/// The surge's shape and pace, from the environment.
#[derive(Debug, Clone, Copy, serde::Serialize)]
struct Surge {
    base: usize,
    peak: usize,
    ramp_seconds: u32,
    think_ms: u64,
}

impl Surge {
    fn from_env() -> Surge {
        let num = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        Surge {
            base: num("SURGE_BASE", 50) as usize,
            peak: num("SURGE_PEAK", 2000) as usize,
            ramp_seconds: num("SURGE_RAMP_SECONDS", 60).max(1) as u32,
            think_ms: num("SURGE_THINK_MS", 10),
        }
    }

    /// Clients wanted `second`s in: up from base to peak, then back down.
    fn clients_at(&self, second: u32) -> usize {
        let ramp = f64::from(self.ramp_seconds);
        let t = f64::from(second);
        let up = if t <= ramp {
            t / ramp
        } else {
            (2.0 * ramp - t).max(0.0) / ramp
        };
        self.base + ((self.peak - self.base) as f64 * up).round() as usize
    }
}

#[derive(serde::Serialize)]
struct Report {
    surge: Surge,
    load_at_start: String,
    pgbouncer: Option<String>,
    runs: Vec<(String, Vec<Sample>)>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        eprintln!("surge: not run by `cargo bench`; skipping (run `cargo bench --bench surge`)");
        return;
    }
    let opts = options::Options::from_env(&args);
    let surge = Surge::from_env();
    eprintln!("surge: {surge:?}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let bench = Bench::start(&opts);
    let mut runs = Vec::new();
    for target in [Target::Direct, Target::Pgsluice, Target::PgBouncer] {
        let Some(endpoint) = bench.endpoint(target) else {
            continue;
        };
        eprintln!("surge: {} on port {}", target.label(), endpoint.port);
        let samples = runtime.block_on(run(&bench, target, endpoint.port, surge));
        runs.push((target.label().to_string(), samples));
    }
    let title = format!(
        "Surge: {} to {} clients and back over {} s, PostgreSQL max_connections {}",
        surge.base,
        surge.peak,
        2 * surge.ramp_seconds,
        setup::MAX_CONNECTIONS
    );
    let svg = chart::svg(&title, &runs);
    let dir = output::bench_dir();
    std::fs::write(dir.join("surge.svg"), &svg).expect("write surge.svg");
    if let Ok(path) = std::env::var("SURGE_CHART") {
        std::fs::write(&path, &svg).expect("write SURGE_CHART");
    }
    let markdown = summary(&runs);
    let report = Report {
        surge,
        load_at_start: bench.load_at_start.clone(),
        pgbouncer: bench.bouncer.as_ref().map(|b| b.version.clone()),
        runs,
    };
    let json = output::write_reports("surge", &report, &markdown);
    println!("{markdown}");
    eprintln!(
        "surge: chart {}, timeline {}",
        dir.join("surge.svg").display(),
        json.display()
    );
}

/// Plays the surge against one target; returns one sample per second.
async fn run(bench: &Bench, target: Target, port: u16, surge: Surge) -> Vec<Sample> {
    let observer = match target {
        Target::Direct => Observer::Postgres(bench.pg.superuser_client(DATABASE).await),
        Target::Pgsluice | Target::PgsluiceMetrics => {
            Observer::Console(common::console::console(&bench.sluice).await)
        }
        Target::PgBouncer => {
            let mut cfg = tokio_postgres::Config::new();
            cfg.host("127.0.0.1")
                .port(port)
                .user(USER)
                .password(PASSWORD)
                .dbname("pgbouncer");
            Observer::Console(
                common::connect_with(&cfg)
                    .await
                    .expect("PgBouncer console")
                    .0,
            )
        }
    };
    let mut crowd = Crowd::new(port, DATABASE, Duration::from_millis(surge.think_ms));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut samples = Vec::new();
    for second in 0..=2 * surge.ramp_seconds {
        tick.tick().await;
        if second > 0 {
            let taken = crowd.counts.take();
            let gauges = observer.gauges(DATABASE, USER).await;
            let s = Sample::new(second, crowd.len(), crowd.disconnected(), taken, gauges);
            eprintln!(
                "  {:>3} s  clients {:>5}  tx {:>6}  failed {:>4}  conn errors {:>5}  p99 {:>8} ms  waiting {:>5}  servers {:>4}",
                s.second,
                s.clients,
                s.transactions,
                s.failed,
                s.connection_errors,
                s.p99_ms.map_or("-".into(), |v| format!("{v:.1}")),
                s.waiting.map_or("-".into(), |v| v.to_string()),
                s.servers.map_or("-".into(), |v| v.to_string()),
            );
            samples.push(s);
        }
        crowd.resize(surge.clients_at(second));
    }
    crowd.stop_all().await;
    // Let the target settle before the next one starts.
    tokio::time::sleep(Duration::from_secs(3)).await;
    samples
}

/// The Markdown summary: totals and the worst second of each target.
fn summary(runs: &[(String, Vec<Sample>)]) -> String {
    let mut md = String::from(
        "| target | transactions | failed | connection errors | seconds with errors | worst p99 ms | peak tx/s |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for (label, samples) in runs {
        let sum = |f: fn(&Sample) -> u64| samples.iter().map(f).sum::<u64>();
        let bad = samples
            .iter()
            .filter(|s| s.failed + s.connection_errors > 0)
            .count();
        let worst = samples
            .iter()
            .filter_map(|s| s.p99_ms)
            .fold(0.0_f64, f64::max);
        let peak = samples.iter().map(|s| s.transactions).max().unwrap_or(0);
        md.push_str(&format!(
            "| {label} | {} | {} | {} | {bad} | {worst:.1} | {peak} |\n",
            sum(|s| s.transactions),
            sum(|s| s.failed),
            sum(|s| s.connection_errors),
        ));
    }
    md
}

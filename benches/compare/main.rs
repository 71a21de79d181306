//! `cargo bench --bench compare`: pgbench against direct PostgreSQL, pgsluice and PgBouncer,
//! interleaved run by run on the same throwaway cluster, plus idle-client memory.
//! Prints a Markdown report on stdout and writes JSON under `target/bench/`. Invariant: it only
//! measures when `cargo bench` runs it (argument `--bench`); under `cargo test` it exits at once.

#[path = "../../tests/common/mod.rs"]
mod common;

mod idle;
mod matrix;
mod options;
mod output;
mod pgbench;
mod pgbouncer;
mod procstat;
mod profile;
mod report;
mod setup;
mod stats;
mod verdict;

use options::Options;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test --benches` / `--all-targets` runs harness = false benches without
        // `--bench`: a 15-minute measurement has no place in a test run.
        eprintln!(
            "compare: not run by `cargo bench`; skipping (run `cargo bench --bench compare`)"
        );
        return;
    }
    let opts = Options::from_env(&args);
    eprintln!("compare: {opts:?}");
    let bench = setup::Bench::start(&opts);
    let cells = matrix::run_all(&bench, &opts);
    let memory = if opts.idle_clients > 0 {
        idle::measure_all(&bench, &opts)
    } else {
        Vec::new()
    };
    let syscalls = if opts.perf {
        profile::record(&bench, &opts)
    } else {
        Vec::new()
    };
    let report = report::Report::new(&bench, &opts, cells, memory, syscalls);
    print!("{}", report.markdown());
    let path = report.write_json();
    eprintln!("compare: JSON written to {}", path.display());
}

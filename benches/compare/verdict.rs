//! The speed and memory targets, each checked against this run's figures: met, not met (and by how much),
//! or not measured (a cell was filtered out, PgBouncer missing, a run aborted). Benchmarks
//! never fail the build on timing, so a miss is reported, never turned into an exit status.

use crate::idle::Memory;
use crate::matrix::Cell;
use crate::pgbench::Run;
use crate::setup::Target;
use crate::stats::{ratio, ratio_of};

#[derive(Debug, serde::Serialize)]
pub struct Verdict {
    pub target: String,
    /// None: not measured in this run.
    pub met: Option<bool>,
    pub measured: String,
}

/// A measured value against a bound: `at_least` true means value ≥ bound is good.
fn check(target: &str, value: Option<f64>, bound: f64, at_least: bool, unit: &str) -> Verdict {
    let Some(v) = value else {
        return Verdict {
            target: target.to_owned(),
            met: None,
            measured: "not measured".into(),
        };
    };
    let met = if at_least { v >= bound } else { v <= bound };
    // A floor is missed "short by", a ceiling "over by", both relative to the bound.
    let gap = match (met, at_least) {
        (true, _) => String::new(),
        (false, true) => format!(" (short by {:.1}%)", (bound - v) / bound * 100.0),
        (false, false) => format!(" (over by {:.1}%)", (v - bound) / bound * 100.0),
    };
    Verdict {
        target: target.to_owned(),
        met: Some(met),
        measured: format!("{v:.3}{unit}{gap}"),
    }
}

fn cell<'a>(cells: &'a [Cell], id: &str) -> Option<&'a Cell> {
    cells.iter().find(|c| c.id == id)
}

fn tps_ratio(cells: &[Cell], id: &str, a: Target, b: Target) -> Option<f64> {
    cell(cells, id).and_then(|c| ratio(c, a, b))
}

pub fn all(cells: &[Cell], memory: &[Memory]) -> Vec<Verdict> {
    use Target::{Direct, PgBouncer, Pgsluice, PgsluiceMetrics};
    let mut v = Vec::new();
    for (id, name) in [
        ("s_simple_20", "-S simple"),
        ("s_extended_20", "-S extended"),
    ] {
        v.push(check(
            &format!("{name}, 20 clients: ≥ 1.15 × PgBouncer"),
            tps_ratio(cells, id, Pgsluice, PgBouncer),
            1.15,
            true,
            "×",
        ));
        v.push(check(
            &format!("{name}, 20 clients: ≥ 0.78 × direct"),
            tps_ratio(cells, id, Pgsluice, Direct),
            0.78,
            true,
            "×",
        ));
    }
    v.push(check(
        "-S prepared, 20 clients: ≥ 0.65 × direct prepared",
        tps_ratio(cells, "s_prepared_20", Pgsluice, Direct),
        0.65,
        true,
        "×",
    ));
    v.push(check(
        "-S -C, 20 clients: ≥ 1.15 × PgBouncer",
        tps_ratio(cells, "s_connect_20", Pgsluice, PgBouncer),
        1.15,
        true,
        "×",
    ));
    v.extend(surge(cells));
    v.extend(cpu(cells));
    v.push(check(
        "1-client mean latency within 10% of PgBouncer's (ratio ≤ 1.10)",
        cell(cells, "s_latency_1")
            .and_then(|c| ratio_of(c, Pgsluice, PgBouncer, |r| r.latency_mean_ms)),
        1.10,
        false,
        "×",
    ));
    let sluice_mem = memory.iter().find(|m| m.pooler == "pgsluice");
    v.push(check(
        &format!(
            "≤ 2 KiB RSS per idle client at {} clients",
            sluice_mem.map(|m| m.connected).unwrap_or(10_000)
        ),
        sluice_mem
            .filter(|m| m.connected > 0)
            .map(Memory::per_client_kib),
        2.0,
        false,
        " KiB",
    ));
    v.push(check(
        "metrics enabled costs ≤ 3% throughput (ratio ≥ 0.97)",
        tps_ratio(cells, "metrics_20", PgsluiceMetrics, Pgsluice),
        0.97,
        true,
        "×",
    ));
    v
}

/// The 1000-client surge: no failed transaction, ≥ 1.15 × PgBouncer, p99 ≤ PgBouncer's.
fn surge(cells: &[Cell]) -> Vec<Verdict> {
    let c = cell(cells, "s_surge_1000");
    let runs = c.and_then(|c| c.runs(Target::Pgsluice));
    let clean = runs.map(|r| r.iter().all(|r| r.ok && r.failed == 0));
    let failed: u64 = runs.map(|r| r.iter().map(|r| r.failed).sum()).unwrap_or(0);
    vec![
        Verdict {
            target: "1000 clients: 0 failed transactions".into(),
            met: clean,
            measured: match (clean, runs) {
                (Some(true), Some(r)) => format!("0 failed, {} runs all finished", r.len()),
                (Some(false), _) => format!("{failed} failed or a run aborted"),
                _ => "not measured".into(),
            },
        },
        check(
            "1000 clients: ≥ 1.15 × PgBouncer",
            c.and_then(|c| ratio(c, Target::Pgsluice, Target::PgBouncer)),
            1.15,
            true,
            "×",
        ),
        check(
            "1000 clients: p99 latency ≤ PgBouncer's (ratio ≤ 1)",
            c.and_then(|c| ratio_of(c, Target::Pgsluice, Target::PgBouncer, |r| r.latency_p99_ms)),
            1.0,
            false,
            "×",
        ),
    ]
}

/// Pooler CPU per transaction ≤ 0.9 × PgBouncer's, cell by cell (ratio of CPU s per 1000 tx).
fn cpu(cells: &[Cell]) -> Vec<Verdict> {
    cells
        .iter()
        .filter(|c| c.runs(Target::PgBouncer).is_some() && c.runs(Target::Pgsluice).is_some())
        .map(|c| {
            check(
                &format!("pooler CPU per transaction ≤ 0.9 × PgBouncer's: {}", c.id),
                ratio_of(c, Target::Pgsluice, Target::PgBouncer, Run::cpu_per_1k),
                0.9,
                false,
                "×",
            )
        })
        .collect()
}

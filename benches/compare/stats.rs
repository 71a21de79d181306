//! Reducing a cell's rounds to one row per target: medians over the rounds (robust to one
//! disturbed run on a shared machine) and ratios between targets taken round by round, i.e.
//! from adjacent runs, then the median of those. Used by `report` and `verdict`.

use crate::matrix::Cell;
use crate::pgbench::Run;
use crate::setup::Target;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub cell: &'static str,
    pub target: Target,
    pub runs: usize,
    /// Runs pgbench finished without an aborted client.
    pub ok_runs: usize,
    pub tps: Option<f64>,
    pub latency_mean_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    /// Failed transactions summed over the rounds.
    pub failed: u64,
    pub cpu_s_per_1k_tx: Option<f64>,
    pub vs_direct: Option<f64>,
    pub vs_pgbouncer: Option<f64>,
    /// pgsluice+metrics over pgsluice (metrics off), in the metrics cell.
    pub vs_metrics_off: Option<f64>,
    pub error: Option<String>,
}

pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// Median over the rounds of `f`, counting only runs that finished.
fn median_of(runs: &[Run], f: impl Fn(&Run) -> Option<f64>) -> Option<f64> {
    median(runs.iter().filter(|r| r.ok).filter_map(f).collect())
}

/// Median over rounds of tps(a) / tps(b), only rounds where both runs finished.
pub fn ratio(cell: &Cell, a: Target, b: Target) -> Option<f64> {
    let (ra, rb) = (cell.runs(a)?, cell.runs(b)?);
    median(
        ra.iter()
            .zip(rb)
            .filter(|(x, y)| x.ok && y.ok && y.tps > 0.0)
            .map(|(x, y)| x.tps / y.tps)
            .collect(),
    )
}

/// Median over rounds of metric(a) / metric(b) for any per-run figure (latency, CPU).
pub fn ratio_of(cell: &Cell, a: Target, b: Target, f: impl Fn(&Run) -> Option<f64>) -> Option<f64> {
    let (ra, rb) = (cell.runs(a)?, cell.runs(b)?);
    median(
        ra.iter()
            .zip(rb)
            .filter(|(x, y)| x.ok && y.ok)
            .filter_map(|(x, y)| Some(f(x)? / f(y)?))
            .collect(),
    )
}

pub fn rows(cell: &Cell) -> Vec<Row> {
    cell.results
        .iter()
        .map(|(target, runs)| {
            let is_pgsluice = *target == Target::Pgsluice && cell.id != "metrics_20";
            let ok_runs = runs.iter().filter(|r| r.ok).count();
            Row {
                cell: cell.id,
                target: *target,
                runs: runs.len(),
                ok_runs,
                tps: median_of(runs, |r| Some(r.tps)),
                latency_mean_ms: median_of(runs, |r| r.latency_mean_ms),
                latency_p99_ms: median_of(runs, |r| r.latency_p99_ms),
                failed: runs.iter().map(|r| r.failed).sum(),
                cpu_s_per_1k_tx: median_of(runs, Run::cpu_per_1k),
                vs_direct: (is_pgsluice || *target == Target::PgBouncer)
                    .then(|| ratio(cell, *target, Target::Direct))
                    .flatten(),
                vs_pgbouncer: is_pgsluice
                    .then(|| ratio(cell, *target, Target::PgBouncer))
                    .flatten(),
                vs_metrics_off: (*target == Target::PgsluiceMetrics)
                    .then(|| ratio(cell, *target, Target::Pgsluice))
                    .flatten(),
                error: runs
                    .iter()
                    .find_map(|r| r.error.clone())
                    .map(|e| format!("{}/{} runs failed: {e}", runs.len() - ok_runs, runs.len())),
            }
        })
        .collect()
}

//! The soak's output: one line per window while it runs, then a Markdown summary on stdout and
//! the same figures as JSON under target/bench/ (soak-<time>.json, soak-latest.json and
//! soak-latest.md). The verdict compares the pooler's RSS and open files in the last third of
//! the run with the first third after ramp-up: "flat" when both stay within tolerance.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::options::Options;

/// Last third's median RSS may exceed the first third's by this fraction, plus RSS_SLACK_KIB.
pub const RSS_TOLERANCE: f64 = 0.10;
pub const RSS_SLACK_KIB: u64 = 8 * 1024;
/// Last third's median open-file count may differ from the first third's by this fraction of
/// the client count, plus FD_SLACK (servers being replaced, cancel connections in flight).
pub const FD_TOLERANCE: f64 = 0.02;
pub const FD_SLACK: u64 = 20;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Sample {
    pub elapsed_s: u64,
    pub connected: i64,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub cancelled: u64,
    pub cancel_missed: u64,
    pub rss_kib: Option<u64>,
    pub open_fds: Option<u64>,
}

impl Sample {
    pub fn line(&self) -> String {
        let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
        let num = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
        format!(
            "soak: t={:>4}s clients={:>5} ok={:>6} errors={:?} p50={}ms p99={}ms \
             cancels={}/{} rss={}KiB fds={}",
            self.elapsed_s,
            self.connected,
            self.ok,
            self.errors,
            ms(self.p50_ms),
            ms(self.p99_ms),
            self.cancelled,
            self.cancelled + self.cancel_missed,
            num(self.rss_kib),
            num(self.open_fds),
        )
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Verdict {
    pub flat: bool,
    pub rss_first_kib: u64,
    pub rss_last_kib: u64,
    pub fds_first: u64,
    pub fds_last: u64,
    pub explanation: String,
}

fn median(mut v: Vec<u64>) -> Option<u64> {
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

/// Compares the medians of the first and last thirds of the samples taken after ramp-up.
pub fn verdict(samples: &[Sample], ramp_up_s: u64, clients: usize) -> Option<Verdict> {
    let steady: Vec<&Sample> = samples.iter().filter(|s| s.elapsed_s > ramp_up_s).collect();
    let third = steady.len() / 3;
    if third == 0 {
        return None;
    }
    let pick = |part: &[&Sample], f: fn(&Sample) -> Option<u64>| {
        median(part.iter().filter_map(|s| f(s)).collect())
    };
    let (first, last) = (&steady[..third], &steady[steady.len() - third..]);
    let rss_first = pick(first, |s| s.rss_kib)?;
    let rss_last = pick(last, |s| s.rss_kib)?;
    let fds_first = pick(first, |s| s.open_fds)?;
    let fds_last = pick(last, |s| s.open_fds)?;
    let rss_limit = (rss_first as f64 * (1.0 + RSS_TOLERANCE)) as u64 + RSS_SLACK_KIB;
    let fd_slack = (clients as f64 * FD_TOLERANCE) as u64 + FD_SLACK;
    let rss_ok = rss_last <= rss_limit;
    let fds_ok = fds_last.abs_diff(fds_first) <= fd_slack;
    Some(Verdict {
        flat: rss_ok && fds_ok,
        rss_first_kib: rss_first,
        rss_last_kib: rss_last,
        fds_first,
        fds_last,
        explanation: format!(
            "RSS last third {rss_last} KiB vs first {rss_first} KiB (limit {rss_limit}: {}); \
             open fds {fds_last} vs {fds_first} (allowed difference {fd_slack}: {})",
            if rss_ok { "ok" } else { "GROWING" },
            if fds_ok { "ok" } else { "DRIFTING" },
        ),
    })
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub trial_label: String,
    pub options: Options,
    pub restarts_at_s: Vec<(u64, String)>,
    pub samples: Vec<Sample>,
    pub total_ok: u64,
    pub total_errors: BTreeMap<String, u64>,
    pub total_cancelled: u64,
    pub total_cancel_missed: u64,
    pub verdict: Option<Verdict>,
    pub load_average_end: String,
}

impl Report {
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "## Soak: {} clients, {} s, {} restarts{}\n\n",
            self.options.clients, self.options.seconds, self.options.restarts, self.trial_label
        );
        let restarts: Vec<String> = self
            .restarts_at_s
            .iter()
            .map(|(t, mode)| format!("{mode} at {t} s"))
            .collect();
        out += &format!("- restarts: {}\n", restarts.join(", "));
        out += &format!(
            "- operations ok: {} ({:.0}/s); cancels answered 57014: {} of {}\n",
            self.total_ok,
            self.total_ok as f64 / self.options.seconds.max(1) as f64,
            self.total_cancelled,
            self.total_cancelled + self.total_cancel_missed
        );
        out += &format!("- errors by SQLSTATE: {:?}\n", self.total_errors);
        out += &format!("- load average at the end: {}\n", self.load_average_end);
        match &self.verdict {
            Some(v) => {
                let word = if v.flat { "flat" } else { "NOT flat" };
                out += &format!("- verdict: **{word}** — {}\n", v.explanation);
            }
            None => out += "- verdict: too few samples after ramp-up to judge\n",
        }
        out += "\n| t (s) | clients | ok | errors | p50 ms | p99 ms | RSS KiB | fds |\n";
        out += "| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |\n";
        for s in &self.samples {
            let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
            out += &format!(
                "| {} | {} | {} | {:?} | {} | {} | {} | {} |\n",
                s.elapsed_s,
                s.connected,
                s.ok,
                s.errors,
                ms(s.p50_ms),
                ms(s.p99_ms),
                s.rss_kib.map_or("-".into(), |v| v.to_string()),
                s.open_fds.map_or("-".into(), |v| v.to_string()),
            );
        }
        out
    }

    pub fn write(&self) -> PathBuf {
        crate::output::write_reports("soak", self, &self.markdown())
    }
}

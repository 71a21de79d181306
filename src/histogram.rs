//! Duration histograms for the Prometheus metrics: fixed buckets of atomic counters, recorded
//! on the hot path (checkout wait, query, transaction) and rendered in the text exposition
//! format at scrape time. Recording is two relaxed atomic adds and never allocates, so memory
//! stays bounded however long nobody scrapes; a disabled histogram (metrics off) records
//! nothing. Owned per pool by `live::TrafficStats`; rendered by `metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds: sub-millisecond to a minute (+Inf is implicit).
pub(crate) const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0,
];

/// The same bounds in whole microseconds, compared against on every record.
const BUCKETS_US: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 10_000_000, 60_000_000,
];

#[derive(Debug, Default)]
pub(crate) struct DurationHistogram {
    enabled: bool,
    /// Observations per bucket (not cumulative); the last one is above every bound.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_us: AtomicU64,
}

impl DurationHistogram {
    /// A histogram that records; `Default` gives one that ignores every observation.
    pub(crate) fn enabled() -> Self {
        DurationHistogram {
            enabled: true,
            ..DurationHistogram::default()
        }
    }

    pub(crate) fn record(&self, d: Duration) {
        if !self.enabled {
            return;
        }
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let bucket = BUCKETS_US.partition_point(|&bound| bound < us);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Appends `name_bucket`, `name_sum` and `name_count` samples with `labels` (already in
    /// `k="v",` form, possibly empty), as the exposition format wants: cumulative buckets.
    pub(crate) fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let labels = labels.trim_end_matches(',');
        let braced = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braced} {sum}");
        let _ = writeln!(out, "{name}_count{braced} {cumulative}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let h = DurationHistogram::enabled();
        h.record(Duration::from_micros(500)); // on the bound: le="0.0005"
        h.record(Duration::from_micros(501));
        h.record(Duration::from_millis(3));
        h.record(Duration::from_secs(3600));
        let mut out = String::new();
        h.render(&mut out, "x_seconds", "db=\"a\",");
        assert!(
            out.contains("x_seconds_bucket{db=\"a\",le=\"0.0005\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_bucket{db=\"a\",le=\"0.001\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_bucket{db=\"a\",le=\"0.005\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_bucket{db=\"a\",le=\"60\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_bucket{db=\"a\",le=\"+Inf\"} 4\n"),
            "{out}"
        );
        assert!(out.contains("x_seconds_count{db=\"a\"} 4\n"), "{out}");
        assert!(
            out.contains("x_seconds_sum{db=\"a\"} 3600.004001\n"),
            "{out}"
        );
    }

    #[test]
    fn a_disabled_histogram_records_nothing() {
        let h = DurationHistogram::default();
        h.record(Duration::from_millis(1));
        let mut out = String::new();
        h.render(&mut out, "x", "");
        assert!(out.contains("x_count 0\n"), "{out}");
        assert!(!h.is_enabled());
    }
}

//! One pool's traffic counters (SHOW STATS, SHOW TOTALS and the metrics), bumped with
//! relaxed atomic adds, its duration histograms, and the per-period averages computed from
//! two copies of the counters.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::histogram::DurationHistogram;

/// Traffic counters of one pool (SHOW STATS and metrics), bumped with relaxed atomic adds.
#[derive(Debug, Default)]
pub(crate) struct TrafficStats {
    pub(crate) xact_count: AtomicU64,
    pub(crate) query_count: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) xact_time_us: AtomicU64,
    pub(crate) query_time_us: AtomicU64,
    pub(crate) wait_time_us: AtomicU64,
    pub(crate) servers_opened: AtomicU64,
    pub(crate) server_login_failures: AtomicU64,
    pub(crate) wait_timeouts: AtomicU64,
    /// Server connections closed, by reason (rare: a lock is fine).
    pub(crate) servers_closed: Mutex<HashMap<&'static str, u64>>,
    /// ErrorResponses from Postgres relayed to clients, by SQLSTATE class.
    pub(crate) errors: Mutex<HashMap<String, u64>>,
    /// Duration histograms for metrics; no-ops when metrics are off.
    pub(crate) histograms: PoolHistograms,
}

/// Duration histograms of one pool; `Default` (metrics off) records nothing.
#[derive(Debug, Default)]
pub(crate) struct PoolHistograms {
    pub(crate) wait: DurationHistogram,
    pub(crate) transaction: DurationHistogram,
    pub(crate) query: DurationHistogram,
}

impl PoolHistograms {
    pub(crate) fn enabled() -> Self {
        PoolHistograms {
            wait: DurationHistogram::enabled(),
            transaction: DurationHistogram::enabled(),
            query: DurationHistogram::enabled(),
        }
    }
}

impl TrafficStats {
    pub(crate) fn with_histograms(histograms: PoolHistograms) -> Self {
        TrafficStats {
            histograms,
            ..TrafficStats::default()
        }
    }

    pub(crate) fn count_closed(&self, reason: &'static str) {
        if let Ok(mut m) = self.servers_closed.lock() {
            *m.entry(reason).or_default() += 1;
        }
    }

    /// Counts an ErrorResponse body by the class (first two characters) of its SQLSTATE.
    pub(crate) fn count_error(&self, class: &str) {
        if let Ok(mut m) = self.errors.lock() {
            *m.entry(class.to_string()).or_default() += 1;
        }
    }
}

/// A copy of the counters at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TrafficTotals {
    pub(crate) xact_count: u64,
    pub(crate) query_count: u64,
    pub(crate) bytes_received: u64,
    pub(crate) bytes_sent: u64,
    pub(crate) xact_time_us: u64,
    pub(crate) query_time_us: u64,
    pub(crate) wait_time_us: u64,
}

impl TrafficStats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn totals(&self) -> TrafficTotals {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TrafficTotals {
            xact_count: l(&self.xact_count),
            query_count: l(&self.query_count),
            bytes_received: l(&self.bytes_received),
            bytes_sent: l(&self.bytes_sent),
            xact_time_us: l(&self.xact_time_us),
            query_time_us: l(&self.query_time_us),
            wait_time_us: l(&self.wait_time_us),
        }
    }
}

impl std::ops::AddAssign for TrafficTotals {
    fn add_assign(&mut self, o: TrafficTotals) {
        self.xact_count += o.xact_count;
        self.query_count += o.query_count;
        self.bytes_received += o.bytes_received;
        self.bytes_sent += o.bytes_sent;
        self.xact_time_us += o.xact_time_us;
        self.query_time_us += o.query_time_us;
        self.wait_time_us += o.wait_time_us;
    }
}

/// Per-second rates and per-event means over the last stats_period, per database (SHOW
/// STATS_AVERAGES and the avg_* columns): counts and bytes per second, transaction time per
/// transaction, query time per query, wait time per transaction.
#[derive(Debug, Default)]
pub(crate) struct PeriodAverages {
    last: HashMap<String, TrafficTotals>,
    last_at: Option<std::time::Instant>,
    averages: HashMap<String, TrafficTotals>,
}

impl PeriodAverages {
    /// Closes a period with the current totals.
    pub(crate) fn tick(
        &mut self,
        now: std::time::Instant,
        totals: &HashMap<String, TrafficTotals>,
    ) {
        if let Some(at) = self.last_at {
            let secs = (now - at).as_secs_f64().max(0.001);
            self.averages = totals
                .iter()
                .map(|(db, t)| {
                    let before = self.last.get(db).copied().unwrap_or_default();
                    (db.clone(), averages(before, *t, secs))
                })
                .collect();
        }
        self.last = totals.clone();
        self.last_at = Some(now);
    }

    pub(crate) fn get(&self, db: &str) -> TrafficTotals {
        self.averages.get(db).copied().unwrap_or_default()
    }
}

fn averages(before: TrafficTotals, now: TrafficTotals, secs: f64) -> TrafficTotals {
    let d = |a: u64, b: u64| a.saturating_sub(b);
    let per_sec = |n: u64| (n as f64 / secs).round() as u64;
    let per = |n: u64, k: u64| n.checked_div(k).unwrap_or(0);
    let xacts = d(now.xact_count, before.xact_count);
    let queries = d(now.query_count, before.query_count);
    TrafficTotals {
        xact_count: per_sec(xacts),
        query_count: per_sec(queries),
        bytes_received: per_sec(d(now.bytes_received, before.bytes_received)),
        bytes_sent: per_sec(d(now.bytes_sent, before.bytes_sent)),
        xact_time_us: per(d(now.xact_time_us, before.xact_time_us), xacts),
        query_time_us: per(d(now.query_time_us, before.query_time_us), queries),
        wait_time_us: per(d(now.wait_time_us, before.wait_time_us), xacts),
    }
}

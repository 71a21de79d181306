//! Prometheus metrics, exported natively with metrics-exporter-prometheus: names in `names`,
//! the values gathered from live state at scrape time in `scrape`, and a minimal HTTP
//! endpoint serving GET /metrics in `http`. Counters are the pools' own atomics (so the hot
//! path pays nothing extra for metrics); histograms are recorded where events happen through
//! handles of a recorder owned here, not a global one.

mod http;
pub(crate) mod names;
mod scrape;

pub(crate) use http::serve;

use metrics::{Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

use crate::live::PoolHistograms;

/// Bucket bounds for the duration histograms, in seconds: sub-millisecond to a minute.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0,
];

/// The recorder behind /metrics.
pub(crate) struct Exporter {
    recorder: PrometheusRecorder,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Exporter")
    }
}

fn metadata() -> Metadata<'static> {
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()))
}

pub(crate) type Labels = Vec<(&'static str, String)>;

fn key(name: &'static str, labels: &Labels) -> Key {
    Key::from_parts(
        name,
        labels
            .iter()
            .map(|(k, v)| Label::new(*k, v.clone()))
            .collect::<Vec<_>>(),
    )
}

impl Exporter {
    pub(crate) fn new() -> Exporter {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&BUCKETS)
            .expect("static, non-empty buckets")
            .build_recorder();
        Exporter { recorder }
    }

    /// Histogram handles for one pool.
    pub(crate) fn histograms(&self, database: &str, user: &str) -> PoolHistograms {
        let labels: Labels = vec![
            ("database", database.to_string()),
            ("user", user.to_string()),
        ];
        let h = |name| {
            self.recorder
                .register_histogram(&key(name, &labels), &metadata())
        };
        PoolHistograms {
            wait: h(names::WAIT_SECONDS),
            transaction: h(names::TRANSACTION_SECONDS),
            query: h(names::QUERY_SECONDS),
        }
    }

    pub(crate) fn gauge(&self, name: &'static str, labels: &Labels, value: f64) {
        self.recorder
            .register_gauge(&key(name, labels), &metadata())
            .set(value);
    }

    pub(crate) fn counter(&self, name: &'static str, labels: &Labels, value: u64) {
        self.recorder
            .register_counter(&key(name, labels), &metadata())
            .absolute(value);
    }

    pub(crate) fn render(&self) -> String {
        self.recorder.handle().render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_and_counters_render_in_prometheus_text() {
        let e = Exporter::new();
        let h = e.histograms("db", "app");
        h.wait.record(0.003);
        h.query.record(std::time::Duration::from_millis(2));
        e.counter(
            names::TRANSACTIONS,
            &vec![("database", "db".to_string())],
            7,
        );
        let text = e.render();
        assert!(
            text.contains(
                "pgsluice_client_wait_seconds_bucket{database=\"db\",user=\"app\",le=\"0.005\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("pgsluice_query_duration_seconds_count{database=\"db\",user=\"app\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("pgsluice_transactions_total{database=\"db\"} 7"),
            "{text}"
        );
    }
}

//! Prometheus metrics, exported natively with metrics-exporter-prometheus: names in `names`,
//! the values gathered from live state at scrape time in `scrape`, and a minimal HTTP
//! endpoint serving GET /metrics in `http`. Counters are the pools' own atomics (so the hot
//! path pays nothing extra for metrics); so are the duration histograms (`crate::histogram`,
//! recorded where events happen), which `scrape` renders after the recorder's output. The
//! recorder is owned here, not a global one.

mod health;
mod hosts;
mod http;
mod listen;
pub(crate) mod names;
mod scrape;

pub(crate) use http::serve;

use metrics::{Key, KeyName, Label, Metadata, Recorder, SharedString};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

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
        let recorder = PrometheusBuilder::new().build_recorder();
        for (name, kind, help) in names::HELP {
            let (name, help) = (KeyName::from_const_str(name), SharedString::const_str(help));
            match kind {
                names::Kind::Gauge => recorder.describe_gauge(name, None, help),
                names::Kind::Counter => recorder.describe_counter(name, None, help),
                // Rendered by `scrape::render_histograms`, which writes its own HELP.
                names::Kind::Histogram => {}
            }
        }
        Exporter { recorder }
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
    use crate::live::PoolHistograms;

    #[test]
    fn histograms_and_counters_render_in_prometheus_text() {
        let e = Exporter::new();
        let h = PoolHistograms::enabled();
        h.wait.record(std::time::Duration::from_millis(3));
        h.query.record(std::time::Duration::from_millis(2));
        e.counter(
            names::TRANSACTIONS,
            &vec![("database", "db".to_string())],
            7,
        );
        let mut text = e.render();
        scrape::render_histograms(&mut text, [("db", "app", &h)]);
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
        for help in [
            "# HELP pgsluice_transactions_total Transactions completed through the pool.",
            "# HELP pgsluice_query_duration_seconds Query duration as seen by the pooler.",
        ] {
            assert!(text.contains(help), "{help} in {text}");
        }
    }

    #[test]
    fn every_metric_has_one_line_of_help() {
        for (i, (name, _, help)) in names::HELP.iter().enumerate() {
            assert!(name.starts_with("pgsluice_"), "{name}");
            assert!(!help.is_empty() && !help.contains('\n'), "{name}");
            let again = names::HELP
                .iter()
                .skip(i + 1)
                .any(|(other, _, _)| other == name);
            assert!(!again, "{name} listed twice");
        }
    }
}

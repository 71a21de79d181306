//! The surge as a picture: an SVG with one panel per measure (clients, transactions per
//! second, failed transactions and connection errors per second, p99 latency, clients
//! waiting, servers in use) and one line per target, on a shared time axis. Hand-written
//! SVG, so the chart needs nothing but a browser.

use std::fmt::Write;

use crate::sample::Sample;

const WIDTH: f64 = 900.0;
const PANEL_HEIGHT: f64 = 150.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 75.0;
const GAP: f64 = 40.0;
const COLOURS: [&str; 4] = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd"];

/// One measure: its title and how to read it from a sample.
struct Panel {
    title: &'static str,
    value: fn(&Sample) -> Option<f64>,
}

const PANELS: [Panel; 6] = [
    Panel {
        title: "clients (the surge)",
        value: |s| Some(s.clients as f64),
    },
    Panel {
        title: "transactions per second",
        value: |s| Some(s.transactions as f64),
    },
    Panel {
        title: "failed transactions + connection errors per second",
        value: |s| Some((s.failed + s.connection_errors) as f64),
    },
    Panel {
        title: "p99 latency, ms",
        value: |s| s.p99_ms,
    },
    Panel {
        title: "clients waiting (for a server, or for a connection)",
        value: |s| s.waiting.map(|v| v as f64),
    },
    Panel {
        title: "server connections open (PostgreSQL backends)",
        value: |s| s.servers.map(|v| v as f64),
    },
];

/// Renders the chart of `runs` (target label, its samples) under `title`.
pub fn svg(title: &str, runs: &[(String, Vec<Sample>)]) -> String {
    let height = TOP + PANELS.len() as f64 * (PANEL_HEIGHT + GAP) + 20.0;
    let seconds = runs
        .iter()
        .flat_map(|(_, s)| s.iter().map(|s| s.second))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{LEFT}\" y=\"20\" font-size=\"15\" font-weight=\"bold\">{}</text>\n",
        escape(title)
    );
    for (i, (label, _)) in runs.iter().enumerate() {
        let x = LEFT + i as f64 * 160.0;
        let colour = COLOURS[i % COLOURS.len()];
        let _ = writeln!(
            out,
            "<rect x=\"{x}\" y=\"30\" width=\"14\" height=\"4\" fill=\"{colour}\"/>\
             <text x=\"{}\" y=\"36\">{}</text>",
            x + 20.0,
            escape(label)
        );
    }
    for (p, panel) in PANELS.iter().enumerate() {
        let top = TOP + p as f64 * (PANEL_HEIGHT + GAP);
        draw_panel(&mut out, panel, top, seconds, runs);
    }
    out.push_str("</svg>\n");
    out
}

fn draw_panel(
    out: &mut String,
    panel: &Panel,
    top: f64,
    seconds: f64,
    runs: &[(String, Vec<Sample>)],
) {
    let max = runs
        .iter()
        .flat_map(|(_, s)| s.iter().filter_map(panel.value))
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let plot_w = WIDTH - LEFT - RIGHT;
    let bottom = top + PANEL_HEIGHT;
    let _ = write!(
        out,
        "<text x=\"{LEFT}\" y=\"{}\" font-weight=\"bold\">{}</text>\n\
         <rect x=\"{LEFT}\" y=\"{top}\" width=\"{plot_w}\" height=\"{PANEL_HEIGHT}\" \
         fill=\"none\" stroke=\"#bbb\"/>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n\
         <text x=\"{}\" y=\"{bottom}\" text-anchor=\"end\">0</text>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{} s</text>\n",
        top - 6.0,
        escape(panel.title),
        LEFT - 6.0,
        top + 10.0,
        round(max),
        LEFT - 6.0,
        WIDTH - RIGHT,
        bottom + 14.0,
        seconds
    );
    for (i, (_, samples)) in runs.iter().enumerate() {
        let points: Vec<String> = samples
            .iter()
            .filter_map(|s| {
                let v = (panel.value)(s)?;
                let x = LEFT + f64::from(s.second) / seconds * plot_w;
                let y = bottom - v / max * PANEL_HEIGHT;
                Some(format!("{x:.1},{y:.1}"))
            })
            .collect();
        if points.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>",
            COLOURS[i % COLOURS.len()],
            points.join(" ")
        );
    }
}

fn round(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

//! What the clients report, one window at a time: successful operations, errors by SQLSTATE
//! (or "closed"/"io" when the connection itself failed), latencies of completed operations,
//! cancel outcomes. Clients add to the current window under a short lock; the sampler in
//! `main` swaps in an empty one every SOAK_SAMPLE_SECONDS.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Default, Debug, Clone)]
pub struct Window {
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    /// Microseconds from sending an operation to its last reply (cancels excluded: their
    /// length is chosen by the bench).
    pub latencies_us: Vec<u32>,
    /// Cancels that ended the query with 57014, and those whose query ended some other way.
    pub cancelled: u64,
    pub cancel_missed: u64,
}

impl Window {
    /// The `q` quantile (0..=1) of the window's latencies, in milliseconds.
    pub fn quantile_ms(&mut self, q: f64) -> Option<f64> {
        if self.latencies_us.is_empty() {
            return None;
        }
        self.latencies_us.sort_unstable();
        let at = ((self.latencies_us.len() - 1) as f64 * q).round() as usize;
        Some(f64::from(self.latencies_us[at]) / 1000.0)
    }
}

/// The window shared by all clients.
#[derive(Default)]
pub struct Recorder {
    current: Mutex<Window>,
}

impl Recorder {
    pub fn ok(&self, latency: Duration) {
        let us = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        let mut w = self.current.lock().expect("window lock");
        w.ok += 1;
        w.latencies_us.push(us);
    }

    pub fn error(&self, kind: String) {
        *self
            .current
            .lock()
            .expect("window lock")
            .errors
            .entry(kind)
            .or_default() += 1;
    }

    pub fn cancel(&self, cancelled: bool) {
        let mut w = self.current.lock().expect("window lock");
        if cancelled {
            w.cancelled += 1;
        } else {
            w.cancel_missed += 1;
        }
    }

    /// The window so far, leaving an empty one in its place.
    pub fn take(&self) -> Window {
        std::mem::take(&mut *self.current.lock().expect("window lock"))
    }
}

/// How an error is counted: its SQLSTATE, or what happened to the connection.
pub fn error_kind(e: &tokio_postgres::Error) -> String {
    if let Some(code) = e.code() {
        return code.code().to_owned();
    }
    if e.is_closed() {
        return "closed".to_owned();
    }
    let text = e.to_string();
    if text.starts_with("error communicating with the server")
        || text.starts_with("error connecting to server")
    {
        "io".to_owned()
    } else if text.starts_with("timeout") {
        "timeout".to_owned()
    } else {
        format!("other: {}", text.chars().take(60).collect::<String>())
    }
}

//! Counters of the whole process for the metrics: client logins, failed logins by SQLSTATE,
//! errors sent to clients by SQLSTATE class, clients ended by an error by kind, and cancel
//! requests by where they went.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

/// Process-wide counters for metrics: client logins and failed ones by SQLSTATE, errors
/// pgsluice itself sent to clients by SQLSTATE class, and client connections that ended in
/// an error by kind.
#[derive(Debug, Default)]
pub(crate) struct ProcessCounters {
    pub(crate) logins: AtomicU64,
    pub(crate) login_failures: Mutex<HashMap<String, u64>>,
    pub(crate) errors: Mutex<HashMap<String, u64>>,
    pub(crate) client_errors: Mutex<HashMap<&'static str, u64>>,
    pub(crate) cancels: Mutex<HashMap<&'static str, u64>>,
}

impl ProcessCounters {
    pub(crate) fn client_error(&self, kind: &'static str) {
        if let Ok(mut m) = self.client_errors.lock() {
            *m.entry(kind).or_default() += 1;
        }
    }

    pub(crate) fn cancel(&self, route: &'static str) {
        if let Ok(mut m) = self.cancels.lock() {
            *m.entry(route).or_default() += 1;
        }
    }

    pub(crate) fn login_failed(&self, sqlstate: &str) {
        if let Ok(mut m) = self.login_failures.lock() {
            *m.entry(sqlstate.to_string()).or_default() += 1;
        }
    }

    pub(crate) fn error_sent(&self, sqlstate: &str) {
        if let Ok(mut m) = self.errors.lock() {
            *m.entry(sqlstate.chars().take(2).collect()).or_default() += 1;
        }
    }
}

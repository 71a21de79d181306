//! What a client of a transaction or statement pool is told at login — the ParameterStatus
//! values of its session — learnt from the pool's servers, so that a login does not wait for
//! a server (under a surge, every server is busy exactly when clients log in). The defaults are
//! what the last server to log in reported; a startup parameter's value is known once a login
//! with it has been applied on a server (Postgres accepted it, and said how it reports it).
//! A login with a value not known yet goes to a server, as before, and teaches it. Bounded:
//! past `MAX_VALUES` the known values are forgotten and learnt again.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

/// Distinct (parameter, value) pairs remembered per pool.
const MAX_VALUES: usize = 1024;

/// Longest application_name Postgres keeps (NAMEDATALEN - 1).
const MAX_APPLICATION_NAME: usize = 63;

#[derive(Debug, Default)]
pub(crate) struct LoginReports {
    inner: Mutex<Reports>,
}

#[derive(Debug, Default)]
struct Reports {
    /// ParameterStatus values of a server straight after its login.
    defaults: Option<Arc<BTreeMap<String, String>>>,
    /// (lower-case name, value as the client gave it) → how Postgres reports it (name as
    /// reported, value), or None for a parameter Postgres accepted and does not report.
    known: HashMap<(String, String), Option<(String, String)>>,
}

impl LoginReports {
    /// A server of the pool logged in and reported `params`.
    pub(crate) fn server_logged_in(&self, params: &BTreeMap<String, String>) {
        let mut r = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if r.defaults.as_deref() != Some(params) {
            r.defaults = Some(Arc::new(params.clone()));
        }
    }

    /// What to report to a client whose startup settings are `startup` (lower-case name →
    /// value), if every one of them is known; None when a server must be asked.
    pub(crate) fn report(
        &self,
        startup: &BTreeMap<String, String>,
    ) -> Option<BTreeMap<String, String>> {
        let r = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut report = BTreeMap::clone(r.defaults.as_ref()?);
        for (name, value) in startup {
            let reported = match r.known.get(&(name.clone(), value.clone())) {
                Some(reported) => reported.clone(),
                None if name == "application_name" => Some((
                    reported_name(&report, name)?,
                    application_name(value)?.to_string(),
                )),
                None => return None,
            };
            if let Some((name, value)) = reported {
                report.insert(name, value);
            }
        }
        Some(report)
    }

    /// A login with `startup` was applied on a server, which then reported `params`.
    pub(crate) fn learn(
        &self,
        startup: &BTreeMap<String, String>,
        params: &BTreeMap<String, String>,
    ) {
        let mut r = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if r.known.len() + startup.len() > MAX_VALUES {
            r.known.clear();
        }
        for (name, value) in startup {
            let reported = params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(k, v)| (k.clone(), v.clone()));
            r.known.insert((name.clone(), value.clone()), reported);
        }
    }
}

/// The spelling Postgres reports `name` with, if it reports it at all.
fn reported_name(defaults: &BTreeMap<String, String>, name: &str) -> Option<String> {
    defaults
        .keys()
        .find(|k| k.eq_ignore_ascii_case(name))
        .cloned()
}

/// application_name as Postgres keeps it, when that needs no server to know: printable ASCII
/// short enough is kept as is (others are cut or have bytes replaced by '?').
fn application_name(value: &str) -> Option<&str> {
    let plain =
        value.len() <= MAX_APPLICATION_NAME && value.bytes().all(|b| (b' '..=b'~').contains(&b));
    plain.then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn logins_are_answered_once_their_values_are_known() {
        let r = LoginReports::default();
        assert_eq!(r.report(&map(&[])), None, "no server has logged in yet");
        r.server_logged_in(&map(&[("TimeZone", "Etc/UTC"), ("application_name", "")]));
        assert_eq!(
            r.report(&map(&[("application_name", "psql")])),
            Some(map(&[
                ("TimeZone", "Etc/UTC"),
                ("application_name", "psql")
            ]))
        );
        let kolkata = map(&[("timezone", "asia/kolkata"), ("statement_timeout", "5s")]);
        assert_eq!(r.report(&kolkata), None, "never applied yet");
        r.learn(
            &kolkata,
            &map(&[("TimeZone", "Asia/Kolkata"), ("application_name", "")]),
        );
        assert_eq!(
            r.report(&kolkata),
            Some(map(&[
                ("TimeZone", "Asia/Kolkata"),
                ("application_name", "")
            ]))
        );
        let long = "x".repeat(64);
        assert_eq!(r.report(&map(&[("application_name", &long)])), None);
        assert_eq!(r.report(&map(&[("application_name", "é")])), None);
    }
}

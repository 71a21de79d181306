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

/// Distinct sets of startup values whose report is kept ready to share.
const MAX_SHARED: usize = 256;

/// The greeting for one set of startup values, shared by every client that logs in with
/// them: an idle client then holds no copy of its own (copy-on-write when it changes).
#[derive(Debug)]
pub(crate) struct Report {
    /// The startup values (lower-case name → value) it is for.
    pub(crate) startup: Arc<BTreeMap<String, String>>,
    /// Every ParameterStatus to send, by name as reported.
    pub(crate) all: BTreeMap<String, String>,
    /// Those that are session state: what the client has been told.
    pub(crate) session: Arc<BTreeMap<String, String>>,
}

impl Report {
    /// The greeting for `startup` from the values `all` a server reported.
    pub(crate) fn new(
        startup: Arc<BTreeMap<String, String>>,
        all: BTreeMap<String, String>,
    ) -> Report {
        let session = all
            .iter()
            .filter(|(name, _)| crate::protocol::params::is_session_parameter(name))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        Report {
            startup,
            all,
            session: Arc::new(session),
        }
    }
}

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
    /// Reports built from the above, by startup values; cleared whenever they change.
    shared: HashMap<Arc<BTreeMap<String, String>>, Arc<Report>>,
}

impl LoginReports {
    /// A server of the pool logged in and reported `params`.
    pub(crate) fn server_logged_in(&self, params: &BTreeMap<String, String>) {
        let mut r = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if r.defaults.as_deref() != Some(params) {
            r.defaults = Some(Arc::new(params.clone()));
            r.shared.clear();
        }
    }

    /// What to report to a client whose startup settings are `startup` (lower-case name →
    /// value), if every one of them is known; None when a server must be asked.
    pub(crate) fn report(&self, startup: &Arc<BTreeMap<String, String>>) -> Option<Arc<Report>> {
        let mut r = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(shared) = r.shared.get(startup) {
            return Some(shared.clone());
        }
        let all = r.build(startup)?;
        let report = Arc::new(Report::new(startup.clone(), all));
        if r.shared.len() >= MAX_SHARED {
            r.shared.clear();
        }
        r.shared.insert(startup.clone(), report.clone());
        Some(report)
    }

    /// A login with `startup` was applied on a server, which then reported `params`.
    pub(crate) fn learn(
        &self,
        startup: &BTreeMap<String, String>,
        params: &BTreeMap<String, String>,
    ) {
        let mut r = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        r.shared.clear();
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

impl Reports {
    /// The ParameterStatus values for `startup`, if every one of them is known.
    fn build(&self, startup: &BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
        let r = self;
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

    /// What `r` reports for `startup`: every ParameterStatus, or None.
    fn report(
        r: &LoginReports,
        startup: &BTreeMap<String, String>,
    ) -> Option<BTreeMap<String, String>> {
        r.report(&Arc::new(startup.clone()))
            .map(|report| report.all.clone())
    }

    #[test]
    fn logins_are_answered_once_their_values_are_known() {
        let r = LoginReports::default();
        assert_eq!(report(&r, &map(&[])), None, "no server has logged in yet");
        r.server_logged_in(&map(&[("TimeZone", "Etc/UTC"), ("application_name", "")]));
        assert_eq!(
            report(&r, &map(&[("application_name", "psql")])),
            Some(map(&[
                ("TimeZone", "Etc/UTC"),
                ("application_name", "psql")
            ]))
        );
        let kolkata = map(&[("timezone", "asia/kolkata"), ("statement_timeout", "5s")]);
        assert_eq!(report(&r, &kolkata), None, "never applied yet");
        r.learn(
            &kolkata,
            &map(&[("TimeZone", "Asia/Kolkata"), ("application_name", "")]),
        );
        assert_eq!(
            report(&r, &kolkata),
            Some(map(&[
                ("TimeZone", "Asia/Kolkata"),
                ("application_name", "")
            ]))
        );
        let long = "x".repeat(64);
        assert_eq!(report(&r, &map(&[("application_name", &long)])), None);
        assert_eq!(report(&r, &map(&[("application_name", "é")])), None);
    }

    #[test]
    fn clients_with_the_same_startup_values_share_one_report() {
        let r = LoginReports::default();
        r.server_logged_in(&map(&[("TimeZone", "Etc/UTC"), ("application_name", "")]));
        let startup = map(&[("application_name", "pos")]);
        let a = r.report(&Arc::new(startup.clone())).unwrap();
        let b = r.report(&Arc::new(startup)).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(Arc::ptr_eq(&a.session, &b.session));
        assert!(Arc::ptr_eq(&a.startup, &b.startup));
        assert_eq!(
            a.session.get("application_name").map(String::as_str),
            Some("pos")
        );
        // A new server default is not hidden by a stale shared report.
        r.server_logged_in(&map(&[
            ("TimeZone", "Asia/Tokyo"),
            ("application_name", ""),
        ]));
        let c = r
            .report(&Arc::new(map(&[("application_name", "pos")])))
            .unwrap();
        assert_eq!(
            c.all.get("TimeZone").map(String::as_str),
            Some("Asia/Tokyo")
        );
    }
}

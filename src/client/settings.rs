//! A client's session settings, which follow it from server to server in transaction pooling
//! (docs/architecture.md, invariant 3): its startup parameters and whatever it changed since, as
//! Postgres read them back (`server::capture`), applied to each server before the client uses
//! it (`server::apply`). Also what the client has been told with ParameterStatus, so it hears
//! of every change to a reported value it did not see happen.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::BytesMut;

use crate::protocol::backend;
use crate::protocol::params::is_session_parameter;
use crate::relay::SessionEffects;
use crate::server::Snapshot;

/// The maps below are shared, copy-on-write: `values` starts as the very map `startup` is,
/// and `reported` as the one every client of the pool with the same startup values is
/// greeted with, so an idle client that changed nothing holds none of its own (most of an
/// idle client's memory otherwise).
#[derive(Debug, Default)]
pub(crate) struct Settings {
    /// Every run-time parameter at source "session" for this client (lower-case name →
    /// value): what any server it uses must hold, and nothing else.
    pub(crate) values: Arc<BTreeMap<String, String>>,
    /// Its startup parameters (lower-case name → value): what RESET, RESET ALL and
    /// DISCARD ALL return to, as on a connection of its own.
    pub(crate) startup: Arc<BTreeMap<String, String>>,
    /// The ParameterStatus values it has been sent (name as Postgres reports it → value).
    pub(crate) reported: Arc<BTreeMap<String, String>>,
    /// What since the last capture may have changed the session: read it back before the
    /// server goes to anyone else.
    pub(crate) effects: SessionEffects,
    /// Why the client cannot leave its server (state the last capture found); empty when
    /// it can.
    pub(crate) pins: Vec<String>,
}

impl Settings {
    /// From the startup parameters (`options` already split into its `-c` settings).
    pub(crate) fn from_startup(params: Vec<(String, String)>) -> Settings {
        let startup: Arc<BTreeMap<String, String>> = Arc::new(
            params
                .into_iter()
                .map(|(name, value)| (name.to_ascii_lowercase(), value))
                .collect(),
        );
        Settings {
            values: startup.clone(),
            startup,
            ..Settings::default()
        }
    }

    /// The client's search_path, "" for the server default: part of a prepared statement's
    /// identity.
    pub(crate) fn search_path(&self) -> &str {
        self.values
            .get("search_path")
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// Takes what a capture read back as the client's settings. A startup parameter that is no
    /// longer set for the session was RESET (or DISCARDed): on a connection of its own that
    /// returns it to the startup value, not to the server's, so that is what it gets.
    pub(crate) fn absorb(&mut self, snapshot: &Snapshot) {
        let mut values = snapshot.settings.clone();
        for (name, value) in self.startup.iter() {
            if !values.contains_key(name) {
                values.insert(name.clone(), value.clone());
            }
        }
        if values != *self.values {
            self.values = Arc::new(values);
        }
        self.effects.changed = false;
    }

    /// Whether `values` differs from what the server was just read to hold: a startup value
    /// to restore after a RESET.
    pub(crate) fn differs_from(&self, snapshot: &Snapshot) -> bool {
        *self.values != snapshot.settings
    }

    /// ParameterStatus messages for every reported session value of `server_params` the
    /// client has not been told; remembers them as told.
    pub(crate) fn report_changes(
        &mut self,
        server_params: &BTreeMap<String, String>,
        out: &mut BytesMut,
    ) {
        for (name, value) in server_params {
            if is_session_parameter(name) && self.reported.get(name) != Some(value) {
                backend::parameter_status(out, name, value);
                Arc::make_mut(&mut self.reported).insert(name.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(settings: &[(&str, &str)]) -> Snapshot {
        Snapshot {
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            pins: Vec::new(),
            channels: Vec::new(),
        }
    }

    #[test]
    fn a_reset_startup_parameter_returns_to_its_startup_value() {
        let mut s = Settings::from_startup(vec![
            ("application_name".into(), "wire_start".into()),
            ("TimeZone".into(), "UTC".into()),
        ]);
        assert_eq!(s.values.get("timezone").map(String::as_str), Some("UTC"));
        s.effects.changed = true;
        let after_reset = snapshot(&[("timezone", "UTC"), ("work_mem", "4096")]);
        s.absorb(&after_reset);
        assert!(!s.effects.changed);
        assert_eq!(
            s.values.get("application_name").map(String::as_str),
            Some("wire_start")
        );
        assert_eq!(s.values.get("work_mem").map(String::as_str), Some("4096"));
        assert!(s.differs_from(&after_reset));
        let all = snapshot(&[("application_name", "x"), ("timezone", "UTC")]);
        s.absorb(&all);
        assert!(!s.differs_from(&all));
        assert!(!s.values.contains_key("work_mem"));
    }

    #[test]
    fn only_unseen_reported_values_are_sent() {
        let mut s = Settings::default();
        let mut server = BTreeMap::new();
        server.insert("TimeZone".to_string(), "UTC".to_string());
        server.insert("server_version".to_string(), "15".to_string());
        let mut out = BytesMut::new();
        s.report_changes(&server, &mut out);
        assert!(!out.is_empty());
        let first = out.len();
        s.report_changes(&server, &mut out);
        assert_eq!(out.len(), first, "nothing new the second time");
        assert!(!s.reported.contains_key("server_version"));
    }
}

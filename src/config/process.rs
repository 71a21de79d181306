//! PgBouncer's `logfile`, `pidfile` and `syslog`, for those who start pgsluice as they started
//! PgBouncer (with `-d`, from an init script). Paths are resolved against the config file's
//! directory, like auth_file; "" (the default) means none: logs go to stderr, no pidfile is
//! written. With `syslog`, log lines also go to the system log as `syslog_ident` under
//! `syslog_facility`.
//! Read by `PoolerSettings::read`; used by `main`.

use std::path::{Path, PathBuf};

use super::reader::{self, Section};

#[derive(Debug, Clone, PartialEq)]
pub struct ProcessSettings {
    /// Log to this file (appended, reopened after rotation) instead of stderr.
    pub logfile: Option<PathBuf>,
    /// Write the process id here at start; required by `-d`.
    pub pidfile: Option<PathBuf>,
    /// Also send log lines to the system log.
    pub syslog: bool,
    /// The program name syslog lines carry.
    pub syslog_ident: String,
    /// The syslog facility: "daemon", "user" or "local0" … "local7".
    pub syslog_facility: String,
}

impl Default for ProcessSettings {
    fn default() -> Self {
        ProcessSettings {
            logfile: None,
            pidfile: None,
            syslog: false,
            syslog_ident: "pgsluice".to_string(),
            syslog_facility: "daemon".to_string(),
        }
    }
}

/// The syslog facility code of a name (RFC 5424, section 6.2.1).
pub fn syslog_facility_code(name: &str) -> Option<u8> {
    match name {
        "user" => Some(1),
        "daemon" => Some(3),
        local => local
            .strip_prefix("local")
            .and_then(|n| n.parse::<u8>().ok())
            .filter(|n| *n <= 7)
            .map(|n| 16 + n),
    }
}

impl ProcessSettings {
    pub(super) fn read(&mut self, sec: &mut Section, base_dir: &Path) {
        let path = |v: Option<String>| v.filter(|s| !s.trim().is_empty()).map(|s| base_dir.join(s));
        self.logfile = path(sec.read("logfile", reader::string));
        self.pidfile = path(sec.read("pidfile", reader::string));
        sec.set("syslog", &mut self.syslog, reader::boolean);
        sec.set(
            "syslog_ident",
            &mut self.syslog_ident,
            reader::non_empty_string,
        );
        sec.set("syslog_facility", &mut self.syslog_facility, |v| {
            let name = reader::string(v)?;
            syslog_facility_code(&name)
                .map(|_| name.clone())
                .ok_or_else(|| {
                    format!("{name:?} is not \"daemon\", \"user\" or \"local0\" … \"local7\"")
                })
        });
    }

    pub(super) fn show_values(&self) -> Vec<(&'static str, String)> {
        let shown = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        vec![
            ("logfile", shown(&self.logfile)),
            ("pidfile", shown(&self.pidfile)),
            ("syslog", self.syslog.to_string()),
            ("syslog_ident", self.syslog_ident.clone()),
            ("syslog_facility", self.syslog_facility.clone()),
        ]
    }
}

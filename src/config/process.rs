//! PgBouncer's `logfile` and `pidfile`, for those who start pgsluice as they started PgBouncer
//! (with `-d`, from an init script). Paths are resolved against the config file's directory,
//! like auth_file; "" (the default) means none: logs go to stderr, no pidfile is written.
//! Read by `PoolerSettings::read`; used by `main`.

use std::path::{Path, PathBuf};

use super::reader::{self, Section};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessSettings {
    /// Log to this file (appended, reopened after rotation) instead of stderr.
    pub logfile: Option<PathBuf>,
    /// Write the process id here at start; required by `-d`.
    pub pidfile: Option<PathBuf>,
}

impl ProcessSettings {
    pub(super) fn read(&mut self, sec: &mut Section, base_dir: &Path) {
        let path = |v: Option<String>| v.filter(|s| !s.trim().is_empty()).map(|s| base_dir.join(s));
        self.logfile = path(sec.read("logfile", reader::string));
        self.pidfile = path(sec.read("pidfile", reader::string));
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
        ]
    }
}

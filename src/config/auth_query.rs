//! auth_query: clients not listed in auth_file are looked up in PostgreSQL itself, with
//! PgBouncer's keys and default (docs, "auth_query"): `auth_user` logs in to `auth_dbname`
//! (default: the database the client asked for) and runs `auth_query` with the user name as
//! its one bound parameter. Read by `PoolerSettings::read`; shown by SHOW CONFIG.

use super::reader::{self, Section};

/// PgBouncer's default: a user's name and stored secret (md5 or SCRAM), NULL when it has none.
pub const DEFAULT_AUTH_QUERY: &str = "SELECT usename, passwd FROM pg_shadow WHERE usename=$1";

#[derive(Debug, Clone, PartialEq)]
pub struct AuthQuerySettings {
    /// The user that runs auth_query (its own secret from auth_file); "" = no lookups.
    pub auth_user: String,
    /// Returns (name, secret) for the user name given as $1.
    pub auth_query: String,
    /// The database auth_query runs in; "" = the database the client asked for.
    pub auth_dbname: String,
    /// pg_hba.conf-style rules for auth_type = hba, resolved against the config's directory.
    pub auth_hba_file: Option<std::path::PathBuf>,
}

impl Default for AuthQuerySettings {
    fn default() -> Self {
        AuthQuerySettings {
            auth_user: String::new(),
            auth_query: DEFAULT_AUTH_QUERY.to_string(),
            auth_dbname: String::new(),
            auth_hba_file: None,
        }
    }
}

impl AuthQuerySettings {
    pub(super) fn read(&mut self, sec: &mut Section, base_dir: &std::path::Path) {
        self.auth_hba_file = sec
            .read("auth_hba_file", reader::string)
            .filter(|f| !f.trim().is_empty())
            .map(|f| base_dir.join(f));
        sec.set("auth_user", &mut self.auth_user, reader::string);
        sec.set("auth_query", &mut self.auth_query, reader::string);
        sec.set("auth_dbname", &mut self.auth_dbname, reader::string);
        if sec.has("auth_query") && !self.auth_query.contains("$1") {
            sec.problem(
                "auth_query",
                "must take the user name as its parameter $1 (it is never spliced into the SQL)",
            );
        }
    }
}

//! The per-database ([databases.<name>]) and per-user ([users.<name>]) sections: where a
//! database lives and the pool settings that override [pooler] for it. Read by
//! `Config::parse`; looked up by the router through `Config::database` and friends.
//! Invariant: `password` never appears in Debug output or in any problem message.

use std::fmt;
use std::time::Duration;

use toml::Table;

use super::error::ConfigProblem;
use super::failover::{self, TargetSessionAttrs};
use super::kinds::PoolMode;
use super::reader::{self, Section};

/// Every key a [databases.<name>] section accepts.
pub const DATABASE_KEYS: &[&str] = &[
    "host",
    "port",
    "dbname",
    "user",
    "password",
    "pool_size",
    "min_pool_size",
    "reserve_pool",
    "pool_mode",
    "pin_session_state",
    "session_read_back_always",
    "max_db_connections",
    "max_db_client_connections",
    "connect_query",
    "application_name",
    "target_session_attrs",
    "max_replica_lag",
    "auth_user",
    "client_encoding",
    "datestyle",
    "timezone",
];

/// Every key a [users.<name>] section accepts.
pub const USER_KEYS: &[&str] = &[
    "pool_mode",
    "pin_session_state",
    "session_read_back_always",
    "pool_size",
    "max_user_connections",
    "max_user_client_connections",
    "query_timeout",
    "idle_transaction_timeout",
    "transaction_timeout",
    "client_idle_timeout",
    "target_session_attrs",
];

/// One [databases.<name>] section. `None` overrides fall back to [pooler].
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseSettings {
    /// The hosts as written, comma-separated (SHOW DATABASES shows this).
    pub host: String,
    /// The first port (SHOW DATABASES shows this).
    pub port: u16,
    /// Each host: a name, an IP address, or a Unix socket directory (starts with '/').
    pub hosts: Vec<String>,
    /// One port for every host, or one per host.
    pub ports: Vec<u16>,
    /// Overrides [pooler]'s target_session_attrs.
    pub target_session_attrs: Option<TargetSessionAttrs>,
    /// Overrides [pooler]'s max_replica_lag.
    pub max_replica_lag: Option<Duration>,
    /// Overrides [pooler]'s auth_user for clients of this database.
    pub auth_user: Option<String>,
    /// Session defaults every server of this database starts with (PgBouncer's
    /// client_encoding, datestyle, timezone), as (PostgreSQL parameter, value).
    pub server_params: Vec<(String, String)>,
    /// Database name on the server; None = the name the client asked for.
    pub dbname: Option<String>,
    /// Forced server login user; None = the client's user name.
    pub user: Option<String>,
    /// Password for the forced user; None = taken from the auth file.
    pub password: Option<String>,
    /// Overrides default_pool_size.
    pub pool_size: Option<usize>,
    /// Overrides min_pool_size.
    pub min_pool_size: Option<usize>,
    /// Overrides reserve_pool_size.
    pub reserve_pool: Option<usize>,
    /// Overrides pool_mode.
    pub pool_mode: Option<PoolMode>,
    /// Overrides pin_session_state.
    pub pin_session_state: Option<bool>,
    /// Overrides session_read_back_always.
    pub session_read_back_always: Option<bool>,
    /// Overrides max_db_connections (0 = unlimited).
    pub max_db_connections: Option<usize>,
    /// Overrides max_db_client_connections (0 = unlimited).
    pub max_db_client_connections: Option<usize>,
    /// Query run once on each new server connection; None = none.
    pub connect_query: Option<String>,
    /// application_name sent to the server unless the client sets one.
    pub application_name: Option<String>,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            // PgBouncer defaults to its Unix socket directory; pgsluice to loopback TCP, which
            // works whatever unix_socket_directories the server was built with.
            host: "127.0.0.1".to_string(),
            port: 5432,
            hosts: vec!["127.0.0.1".to_string()],
            ports: vec![5432],
            target_session_attrs: None,
            max_replica_lag: None,
            auth_user: None,
            server_params: Vec::new(),
            dbname: None,
            user: None,
            password: None,
            pool_size: None,
            min_pool_size: None,
            reserve_pool: None,
            pool_mode: None,
            pin_session_state: None,
            session_read_back_always: None,
            max_db_connections: None,
            max_db_client_connections: None,
            connect_query: None,
            application_name: None,
        }
    }
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("dbname", &self.dbname)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("pool_size", &self.pool_size)
            .field("min_pool_size", &self.min_pool_size)
            .field("reserve_pool", &self.reserve_pool)
            .field("pool_mode", &self.pool_mode)
            .field("pin_session_state", &self.pin_session_state)
            .field("session_read_back_always", &self.session_read_back_always)
            .field("max_db_connections", &self.max_db_connections)
            .field("max_db_client_connections", &self.max_db_client_connections)
            .field("connect_query", &self.connect_query)
            .field("application_name", &self.application_name)
            .field("hosts", &self.hosts)
            .field("ports", &self.ports)
            .field("target_session_attrs", &self.target_session_attrs)
            .field("max_replica_lag", &self.max_replica_lag)
            .field("auth_user", &self.auth_user)
            .field("server_params", &self.server_params)
            .finish()
    }
}

impl DatabaseSettings {
    /// The database name to ask the server for. `section` is the key this entry was found
    /// under; for the "*" fallback pass the name the client asked for instead.
    pub fn server_dbname<'a>(&'a self, section: &'a str) -> &'a str {
        self.dbname.as_deref().unwrap_or(section)
    }

    /// Whether `host` names a Unix socket directory rather than a TCP host.
    pub fn is_unix_socket(&self) -> bool {
        self.host.starts_with('/')
    }

    /// Every (host, port), in the order written: one port for all hosts, or one each.
    pub fn addresses(&self) -> Vec<(String, u16)> {
        self.hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.clone(), *self.ports.get(i).unwrap_or(&self.port)))
            .collect()
    }

    /// Reads one [databases.<name>] section found at dotted `path`.
    pub fn read(path: String, table: &Table, problems: &mut Vec<ConfigProblem>) -> Self {
        let mut s = DatabaseSettings::default();
        let mut sec = Section::new(path, table, DATABASE_KEYS, problems);
        if let Some(hosts) = sec.read("host", failover::host_list) {
            s.host = hosts.join(",");
            s.hosts = hosts;
        }
        if let Some(ports) = sec.read("port", failover::port_list) {
            s.port = ports[0];
            if ports.len() > 1 && ports.len() != s.hosts.len() {
                sec.problem(
                    "port",
                    format!(
                        "{} ports for {} hosts: give one port for all, or one per host",
                        ports.len(),
                        s.hosts.len()
                    ),
                );
            }
            s.ports = ports;
        }
        s.target_session_attrs = sec.read("target_session_attrs", reader::keyword);
        s.max_replica_lag = sec.read("max_replica_lag", reader::duration);
        s.auth_user = sec.read("auth_user", reader::non_empty_string);
        s.dbname = sec.read("dbname", reader::non_empty_string);
        s.user = sec.read("user", reader::non_empty_string);
        s.password = sec.read("password", reader::string);
        s.pool_size = sec.read("pool_size", reader::positive);
        s.min_pool_size = sec.read("min_pool_size", reader::count);
        s.reserve_pool = sec.read("reserve_pool", reader::count);
        s.pool_mode = sec.read("pool_mode", reader::keyword);
        s.pin_session_state = sec.read("pin_session_state", reader::boolean);
        s.session_read_back_always = sec.read("session_read_back_always", reader::boolean);
        s.max_db_connections = sec.read("max_db_connections", reader::count);
        s.max_db_client_connections = sec.read("max_db_client_connections", reader::count);
        s.connect_query = sec
            .read("connect_query", reader::string)
            .filter(|q| !q.trim().is_empty());
        s.application_name = sec.read("application_name", reader::string);
        if let Some(name) = s.application_name.clone().filter(|n| !n.is_empty()) {
            s.server_params.push(("application_name".to_string(), name));
        }
        for (key, param) in [
            ("client_encoding", "client_encoding"),
            ("datestyle", "DateStyle"),
            ("timezone", "TimeZone"),
        ] {
            if let Some(value) = sec.read(key, reader::non_empty_string) {
                s.server_params.push((param.to_string(), value));
            }
        }
        s
    }
}

/// One [users.<name>] section: overrides for every pool of that user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserSettings {
    /// Overrides the database's and [pooler]'s pool_mode.
    pub pool_mode: Option<PoolMode>,
    /// Overrides the database's and [pooler]'s pin_session_state.
    pub pin_session_state: Option<bool>,
    /// Overrides the database's and [pooler]'s session_read_back_always.
    pub session_read_back_always: Option<bool>,
    /// Overrides the database's pool_size and default_pool_size.
    pub pool_size: Option<usize>,
    /// Overrides max_user_connections (0 = unlimited).
    pub max_user_connections: Option<usize>,
    /// Overrides max_user_client_connections (0 = unlimited).
    pub max_user_client_connections: Option<usize>,
    /// Override [pooler]'s timeouts of the same names for this user's clients.
    pub query_timeout: Option<std::time::Duration>,
    pub idle_transaction_timeout: Option<std::time::Duration>,
    pub transaction_timeout: Option<std::time::Duration>,
    pub client_idle_timeout: Option<std::time::Duration>,
    /// Overrides the database's and [pooler]'s target_session_attrs.
    pub target_session_attrs: Option<TargetSessionAttrs>,
}

impl UserSettings {
    /// Reads one [users.<name>] section found at dotted `path`.
    pub fn read(path: String, table: &Table, problems: &mut Vec<ConfigProblem>) -> Self {
        let mut sec = Section::new(path, table, USER_KEYS, problems);
        UserSettings {
            pool_mode: sec.read("pool_mode", reader::keyword),
            pin_session_state: sec.read("pin_session_state", reader::boolean),
            session_read_back_always: sec.read("session_read_back_always", reader::boolean),
            pool_size: sec.read("pool_size", reader::positive),
            max_user_connections: sec.read("max_user_connections", reader::count),
            max_user_client_connections: sec.read("max_user_client_connections", reader::count),
            query_timeout: sec.read("query_timeout", reader::duration),
            idle_transaction_timeout: sec.read("idle_transaction_timeout", reader::duration),
            transaction_timeout: sec.read("transaction_timeout", reader::duration),
            client_idle_timeout: sec.read("client_idle_timeout", reader::duration),
            target_session_attrs: sec.read("target_session_attrs", reader::keyword),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_db(text: &str) -> (DatabaseSettings, Vec<String>) {
        let table: Table = toml::from_str(text).unwrap();
        let mut problems = Vec::new();
        let db = DatabaseSettings::read("databases.roster".into(), &table, &mut problems);
        (db, problems.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn defaults_and_dbname_fallback() {
        let (db, problems) = read_db("");
        assert!(problems.is_empty());
        assert_eq!(db, DatabaseSettings::default());
        assert_eq!(db.host, "127.0.0.1");
        assert_eq!(db.port, 5432);
        assert_eq!(db.server_dbname("roster"), "roster");
        let (db, _) = read_db("dbname = 'roster_prod'\nhost = '/var/run/postgresql'");
        assert_eq!(db.server_dbname("roster"), "roster_prod");
        assert!(db.is_unix_socket());
    }

    #[test]
    fn overrides_are_read() {
        let (db, problems) = read_db(
            "pool_size = 5\nmin_pool_size = 2\nreserve_pool = 1\npool_mode = 'transaction'\n\
             max_db_connections = 50\nmax_db_client_connections = 80\nconnect_query = 'SET search_path = app'\n\
             application_name = 'roster'\nuser = 'app'\npassword = 's3cret'",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(db.pool_size, Some(5));
        assert_eq!(db.min_pool_size, Some(2));
        assert_eq!(db.reserve_pool, Some(1));
        assert_eq!(db.pool_mode, Some(PoolMode::Transaction));
        assert_eq!(db.max_db_connections, Some(50));
        assert_eq!(db.max_db_client_connections, Some(80));
        assert_eq!(db.connect_query.as_deref(), Some("SET search_path = app"));
        assert_eq!(db.user.as_deref(), Some("app"));
        assert_eq!(db.password.as_deref(), Some("s3cret"));
    }

    #[test]
    fn bad_values_name_their_key_and_never_the_password() {
        let (_, problems) = read_db("host = ''\nport = 0\npool_size = 0\npassword = 42\nprot = 1");
        assert_eq!(
            problems,
            vec![
                "databases.roster.prot: unknown key in [databases.roster]; did you mean \"port\"?",
                "databases.roster.host: must not be empty",
                "databases.roster.port: must be between 1 and 65535 (found 0)",
                "databases.roster.password: expected a string, found an integer",
                "databases.roster.pool_size: must be at least 1 (found 0)",
            ]
        );
    }

    #[test]
    fn debug_redacts_the_password() {
        let (db, _) = read_db("password = 'hunter2'");
        let shown = format!("{db:?}");
        assert!(!shown.contains("hunter2"));
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn user_sections() {
        let table: Table = toml::from_str("pool_mode = 'statement'\npool_size = 3").unwrap();
        let mut problems = Vec::new();
        let user = UserSettings::read("users.pos".into(), &table, &mut problems);
        assert!(problems.is_empty());
        assert_eq!(user.pool_mode, Some(PoolMode::Statement));
        assert_eq!(user.pool_size, Some(3));
        assert_eq!(user.max_user_connections, None);
    }
}

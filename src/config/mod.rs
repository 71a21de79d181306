//! pooler.toml: the schema, loading, validation and the lookups the router and pools use.
//! `Config::load` is called at startup and on RELOAD/SIGHUP by the app; a returned `Config`
//! is fully valid (every problem of the file is reported at once otherwise), so callers never
//! re-check values. Keys, meanings and defaults follow PgBouncer's pgbouncer.ini reference.

mod auth_query;
mod database;
mod duration;
mod error;
mod failover;
mod fleet;
mod from_ini;
mod ini;
mod kinds;
mod parse;
mod pooler;
mod process;
mod reader;
mod show;
mod source;
mod suggest;
mod tls;
mod validate;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

pub use auth_query::{AuthQuerySettings, DEFAULT_AUTH_QUERY};
pub use database::{DatabaseSettings, UserSettings, DATABASE_KEYS, USER_KEYS};
pub use duration::{format as format_duration, parse as parse_duration};
pub use error::{ConfigErrors, ConfigProblem};
pub use failover::{FailoverSettings, TargetSessionAttrs};
pub use fleet::{FleetSettings, PeerSettings, PEER_KEYS};
pub use kinds::{AuthType, LogFormat, PoolMode, SslMode};
pub use pooler::{PoolerSettings, POOLER_KEYS};
pub use process::{syslog_facility_code, ProcessSettings};
pub use show::SettingRow;
pub use source::Source;
pub use tls::{TlsProtocols, TlsSettings, TLS_KEYS};

/// The name of the fallback [databases."*"] entry, used for any database not listed.
pub const FALLBACK_DATABASE: &str = "*";

/// A whole, valid pooler.toml.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    pub pooler: PoolerSettings,
    /// Keyed by the database name clients ask for; "*" is the fallback.
    pub databases: BTreeMap<String, DatabaseSettings>,
    /// Keyed by user name.
    pub users: BTreeMap<String, UserSettings>,
    /// The other instances of a fleet, keyed by their peer_id (PgBouncer's [peers]).
    pub peers: BTreeMap<u16, PeerSettings>,
}

impl Config {
    /// Reads, parses and validates the file at `path`; auth_file is resolved relative to the
    /// file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let source = Source::read(path)?;
        let base_dir = path.parent().unwrap_or(Path::new(""));
        source.parse(&source.toml, base_dir)
    }

    /// Parses and validates configuration text; relative paths are resolved against `base_dir`.
    pub fn parse(text: &str, base_dir: &Path) -> Result<Config, ConfigErrors> {
        parse::parse_config(text, base_dir)
    }

    /// The settings for database `name`: its own section, else the "*" fallback, else None
    /// (the client gets SQLSTATE 3D000). For the fallback, `server_dbname` must be given the
    /// requested name.
    pub fn database(&self, name: &str) -> Option<&DatabaseSettings> {
        self.databases
            .get(name)
            .or_else(|| self.databases.get(FALLBACK_DATABASE))
    }

    /// A per-pool setting where the most specific wins: the [users.<user>] section's, then
    /// the database's, then None (the caller's [pooler] value).
    fn most_specific<T>(
        &self,
        database: &str,
        user: &str,
        of_user: impl Fn(&UserSettings) -> Option<T>,
        of_database: impl Fn(&DatabaseSettings) -> Option<T>,
    ) -> Option<T> {
        self.users
            .get(user)
            .and_then(of_user)
            .or_else(|| self.database(database).and_then(of_database))
    }

    /// The pool mode of the (database, user) pool: [users.<user>], then the database, then
    /// [pooler] — the most specific setting wins.
    pub fn pool_mode_for(&self, database: &str, user: &str) -> PoolMode {
        self.most_specific(database, user, |u| u.pool_mode, |d| d.pool_mode)
            .unwrap_or(self.pooler.pool_mode)
    }

    /// Whether clients of (database, user) are pinned by session state that cannot move:
    /// [users.<user>], then the database's, then [pooler]'s pin_session_state.
    pub fn pin_session_state_for(&self, database: &str, user: &str) -> bool {
        let of_user = |u: &UserSettings| u.pin_session_state;
        self.most_specific(database, user, of_user, |d| d.pin_session_state)
            .unwrap_or(self.pooler.pin_session_state)
    }

    /// Whether clients of (database, user) have their session read back after every
    /// transaction: [users.<user>], then the database's, then [pooler]'s
    /// session_read_back_always.
    pub fn session_read_back_always_for(&self, database: &str, user: &str) -> bool {
        let of_user = |u: &UserSettings| u.session_read_back_always;
        self.most_specific(database, user, of_user, |d| d.session_read_back_always)
            .unwrap_or(self.pooler.session_read_back_always)
    }

    /// The size of the (database, user) pool: [users.<user>] pool_size, then the database's
    /// pool_size, then default_pool_size.
    pub fn pool_size_for(&self, database: &str, user: &str) -> usize {
        self.most_specific(database, user, |u| u.pool_size, |d| d.pool_size)
            .unwrap_or(self.pooler.default_pool_size)
    }

    /// The client-side timeouts for `user`: its [users] section's, else [pooler]'s.
    pub fn timeouts_for(&self, user: &str) -> ClientTimeouts {
        let u = self.users.get(user);
        let p = &self.pooler;
        let pick = |o: Option<Duration>, d: Duration| o.unwrap_or(d);
        ClientTimeouts {
            query: pick(u.and_then(|u| u.query_timeout), p.query_timeout),
            idle_transaction: pick(
                u.and_then(|u| u.idle_transaction_timeout),
                p.idle_transaction_timeout,
            ),
            transaction: pick(u.and_then(|u| u.transaction_timeout), p.transaction_timeout),
            client_idle: pick(u.and_then(|u| u.client_idle_timeout), p.client_idle_timeout),
        }
    }

    /// Which servers the (database, user) pool may use: [users.<user>], then the database's,
    /// then [pooler]'s target_session_attrs.
    pub fn target_session_attrs_for(&self, database: &str, user: &str) -> TargetSessionAttrs {
        let of_user = |u: &UserSettings| u.target_session_attrs;
        self.most_specific(database, user, of_user, |d| d.target_session_attrs)
            .unwrap_or(self.pooler.failover.target_session_attrs)
    }

    /// The user that looks up secrets of clients of `database` with auth_query ("" = none):
    /// the database's auth_user, else [pooler]'s.
    pub fn auth_user_for(&self, database: &str) -> &str {
        self.database(database)
            .and_then(|d| d.auth_user.as_deref())
            .unwrap_or(&self.pooler.auth_query.auth_user)
    }

    /// The replay lag above which a standby of `database` is skipped; 0 = no limit.
    pub fn max_replica_lag_for(&self, database: &str) -> Duration {
        self.database(database)
            .and_then(|d| d.max_replica_lag)
            .unwrap_or(self.pooler.failover.max_replica_lag)
    }

    /// Server connections kept open per pool of `database` (its min_pool_size, else [pooler]).
    pub fn min_pool_size_for(&self, database: &str) -> usize {
        self.database(database)
            .and_then(|d| d.min_pool_size)
            .unwrap_or(self.pooler.min_pool_size)
    }

    /// Extra connections per pool of `database` after reserve_pool_timeout.
    pub fn reserve_pool_for(&self, database: &str) -> usize {
        self.database(database)
            .and_then(|d| d.reserve_pool)
            .unwrap_or(self.pooler.reserve_pool_size)
    }

    /// Server connection limit over all pools of `database`; 0 = unlimited.
    pub fn max_db_connections_for(&self, database: &str) -> usize {
        self.database(database)
            .and_then(|d| d.max_db_connections)
            .unwrap_or(self.pooler.max_db_connections)
    }

    /// Server connection limit over all pools of `user`; 0 = unlimited.
    pub fn max_user_connections_for(&self, user: &str) -> usize {
        self.users
            .get(user)
            .and_then(|u| u.max_user_connections)
            .unwrap_or(self.pooler.max_user_connections)
    }

    /// Client connection limit for `database` over all users; 0 = unlimited.
    pub fn max_db_client_connections_for(&self, database: &str) -> usize {
        self.database(database)
            .and_then(|d| d.max_db_client_connections)
            .unwrap_or(self.pooler.max_db_client_connections)
    }

    /// Client connection limit for `user` over all databases; 0 = unlimited.
    pub fn max_user_client_connections_for(&self, user: &str) -> usize {
        self.users
            .get(user)
            .and_then(|u| u.max_user_client_connections)
            .unwrap_or(self.pooler.max_user_client_connections)
    }
}

/// Timeouts enforced on one client's session; 0 = off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientTimeouts {
    pub query: Duration,
    pub idle_transaction: Duration,
    pub transaction: Duration,
    pub client_idle: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::Duration;

    const EXAMPLE: &str = include_str!("../../pooler.toml.example");

    fn problems(text: &str) -> Vec<String> {
        match Config::parse(text, Path::new("/etc/pgsluice")) {
            Ok(_) => panic!("expected problems in:\n{text}"),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn defaults_follow_pgbouncer() {
        let p = Config::default().pooler;
        assert_eq!(p.listen_port, 6432);
        assert_eq!(p.max_client_conn, 100);
        assert_eq!(p.default_pool_size, 20);
        assert_eq!(p.pool_mode, PoolMode::Session);
        assert_eq!(p.auth_type, AuthType::Md5);
        assert_eq!(p.unix_socket_mode, 0o777);
        assert_eq!(p.reserve_pool_timeout, Duration::from_secs(5));
        assert_eq!(p.query_wait_timeout, Duration::from_secs(120));
        assert_eq!(p.query_timeout, Duration::ZERO);
        assert_eq!(p.max_packet_size, 2_147_483_647);
        assert_eq!(p.server_reset_query, "DISCARD ALL");
        assert_eq!(p.auth_file, None);
        assert!(Config::default().databases.is_empty());
    }

    #[test]
    fn the_example_file_parses_to_defaults_plus_one_database() {
        let config = Config::parse(EXAMPLE, Path::new("/etc/pgsluice")).unwrap();
        let expected = PoolerSettings {
            auth_file: Some(PathBuf::from("/etc/pgsluice/userlist.txt")),
            ..PoolerSettings::default()
        };
        assert_eq!(config.pooler, expected);
        assert_eq!(config.databases.keys().collect::<Vec<_>>(), ["roster"]);
        let roster = &config.databases["roster"];
        assert_eq!((roster.host.as_str(), roster.port), ("127.0.0.1", 5432));
        assert_eq!(roster.server_dbname("roster"), "roster");
        assert!(config.users.is_empty());
    }

    #[test]
    fn pin_session_state_is_most_specific_first() {
        let text = "[pooler]\npin_session_state = false\n\
                    [databases.a]\npin_session_state = true\n[databases.b]\n\
                    [users.u]\npin_session_state = false\n";
        let config = Config::parse(text, Path::new("/etc/pgsluice")).unwrap();
        assert!(config.pin_session_state_for("a", "v"));
        assert!(!config.pin_session_state_for("b", "v"));
        assert!(!config.pin_session_state_for("a", "u"));
        assert!(Config::default().pin_session_state_for("a", "u"));
    }

    #[test]
    fn session_read_back_always_is_most_specific_first() {
        let text = "[pooler]\nsession_read_back_always = true\n\
                    [databases.a]\nsession_read_back_always = false\n[databases.b]\n\
                    [users.u]\nsession_read_back_always = true\n";
        let config = Config::parse(text, Path::new(".")).unwrap();
        assert!(!config.session_read_back_always_for("a", "v"));
        assert!(config.session_read_back_always_for("b", "v"));
        assert!(config.session_read_back_always_for("a", "u"));
        assert!(!Config::default().session_read_back_always_for("a", "u"));
        let shown = problems("[pooler]\ncustom_settings = [\"tenant\", \"app.\", \"app.x\"]\n");
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert!(
            shown[0].contains("\"tenant\" is not a custom setting name"),
            "{shown:?}"
        );
    }

    #[test]
    fn the_example_file_documents_every_key() {
        let root: toml::Table = toml::from_str(EXAMPLE).unwrap();
        let pooler = root["pooler"].as_table().unwrap();
        for key in POOLER_KEYS {
            assert!(pooler.contains_key(*key), "[pooler] lacks {key}");
        }
        for key in DATABASE_KEYS.iter().chain(USER_KEYS) {
            assert!(
                EXAMPLE.contains(&format!("\n# {key} = "))
                    || EXAMPLE.contains(&format!("\n{key} = ")),
                "{key}"
            );
        }
    }

    #[test]
    fn every_pooler_key_is_read_exactly_once() {
        // A value of the wrong type for every key: each must be reported, and only once.
        let mut text = String::from("[pooler]\n");
        for key in POOLER_KEYS {
            text.push_str(&format!("{key} = {{ x = 1 }}\n"));
        }
        let shown = problems(&text);
        for key in POOLER_KEYS {
            let prefix = format!("pooler.{key}: ");
            let n = shown.iter().filter(|p| p.starts_with(&prefix)).count();
            assert_eq!(n, 1, "{key}: {shown:#?}");
        }
    }

    #[test]
    fn all_problems_of_a_file_are_reported_together() {
        let shown = problems(
            "[pooler]\nlisten_prot = 6432\nlisten_port = 0\npool_mode = 'transactional'\n\
             query_wait_timeout = '5 parsecs'\nmax_packet_size = 100\nauth_type = 'md5'\n\
             auth_file = ''\n[databases.roster]\nhost = ''\npool_size = 'many'\n\
             [users.pos]\npool_mode = 7\n",
        );
        assert_eq!(
            shown,
            vec![
                "databases.roster.host: must not be empty",
                "databases.roster.pool_size: expected an integer, found a string",
                "pooler.auth_file: must name a user/password file when auth_type = \"md5\" (or set auth_type = \"trust\")",
                "pooler.listen_port: must be between 1 and 65535 (found 0)",
                "pooler.listen_prot: unknown key in [pooler]; did you mean \"listen_port\"?",
                "pooler.max_packet_size: must be between 1024 and 2147483647 (found 100)",
                "pooler.pool_mode: \"transactional\" is not one of \"session\", \"transaction\", \"statement\"",
                "pooler.query_wait_timeout: \"5 parsecs\" is not a duration; expected seconds (e.g. 15 or 1.5) or a string with a unit: \"500us\", \"250ms\", \"15s\", \"2m\", \"1h\"",
                "users.pos.pool_mode: expected a string, found an integer",
            ]
        );
    }

    #[test]
    fn values_of_every_kind_are_read() {
        let config = Config::parse(
            "[pooler]\nlisten_addr = '*, ::1'\nquery_wait_timeout = '250ms'\nserver_lifetime = 1.5\n\
             client_idle_timeout = '2m'\nauth_type = 'trust'\nauth_file = ''\ntcp_keepalive = 0\n\
             unix_socket_mode = '0700'\nadmin_users = ['admin', 'ops']\nlog_format = 'json'\n",
            Path::new("/x"),
        )
        .unwrap();
        let p = &config.pooler;
        assert_eq!(p.listen_addr, ["*", "::1"]);
        assert_eq!(p.query_wait_timeout, Duration::from_millis(250));
        assert_eq!(p.server_lifetime, Duration::from_millis(1500));
        assert_eq!(p.client_idle_timeout, Duration::from_secs(120));
        assert_eq!((p.auth_type, p.auth_file.clone()), (AuthType::Trust, None));
        assert!(!p.tcp_keepalive);
        assert_eq!(p.unix_socket_mode, 0o700);
        assert_eq!(p.admin_users, ["admin", "ops"]);
        assert_eq!(p.log_format, LogFormat::Json);
    }

    #[test]
    fn pool_settings_precedence_user_over_database_over_global() {
        let config = Config::parse(
            "[pooler]\npool_mode = 'session'\ndefault_pool_size = 20\n\
             [databases.roster]\npool_mode = 'transaction'\npool_size = 10\n\
             [databases.pos]\n\
             [users.pos_terminal]\npool_mode = 'statement'\npool_size = 3\n",
            Path::new(""),
        )
        .unwrap();
        assert_eq!(
            config.pool_mode_for("roster", "pos_terminal"),
            PoolMode::Statement
        );
        assert_eq!(
            config.pool_mode_for("roster", "alice"),
            PoolMode::Transaction
        );
        assert_eq!(config.pool_mode_for("pos", "alice"), PoolMode::Session);
        assert_eq!(config.pool_size_for("roster", "pos_terminal"), 3);
        assert_eq!(config.pool_size_for("roster", "alice"), 10);
        assert_eq!(config.pool_size_for("pos", "alice"), 20);
        // An unknown database without fallback still gets the global values.
        assert_eq!(config.pool_mode_for("nope", "alice"), PoolMode::Session);
    }

    #[test]
    fn star_is_the_fallback_database() {
        let config = Config::parse(
            "[databases.roster]\nport = 5433\n[databases.\"*\"]\nhost = 'db.internal'\npool_size = 4\n",
            Path::new(""),
        )
        .unwrap();
        assert_eq!(config.database("roster").unwrap().port, 5433);
        let other = config.database("billing").unwrap();
        assert_eq!(other.host, "db.internal");
        assert_eq!(other.server_dbname("billing"), "billing");
        assert_eq!(config.pool_size_for("billing", "bob"), 4);
        let without = Config::parse("[databases.roster]\n", Path::new("")).unwrap();
        assert!(without.database("billing").is_none());
    }

    #[test]
    fn load_resolves_auth_file_next_to_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pooler.toml");
        std::fs::write(&path, "[pooler]\nauth_file = 'userlist.txt'\n").unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(
            config.pooler.auth_file,
            Some(dir.path().join("userlist.txt"))
        );
        // The auth file itself need not exist yet: the auth module reports that.
        let missing = Config::load(&dir.path().join("nope.toml")).unwrap_err();
        assert!(missing.to_string().starts_with("cannot read config file "));
        let absolute =
            Config::parse("[pooler]\nauth_file = '/srv/users.txt'\n", dir.path()).unwrap();
        assert_eq!(
            absolute.pooler.auth_file,
            Some(PathBuf::from("/srv/users.txt"))
        );
    }
}

//! The [pooler] section: pgsluice-wide settings, with PgBouncer's [pgbouncer] key names,
//! meanings and defaults (PgBouncer docs, "pgbouncer.ini" reference). Read once per load/reload
//! by `Config::parse`; every field is always valid after a successful parse, and a duration of
//! zero means "disabled" wherever PgBouncer documents it so.

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Table;

use super::auth_query::AuthQuerySettings;
use super::error::ConfigProblem;
use super::failover::FailoverSettings;
use super::fleet::{self, FleetSettings};
use super::kinds::{AuthType, LogFormat, PoolMode};
use super::process::ProcessSettings;
use super::reader::{self, Section};
use super::tls::TlsSettings;

/// Every key [pooler] accepts, in the order pooler.toml.example documents them.
#[rustfmt::skip]
pub const POOLER_KEYS: &[&str] = &[
    "listen_addr", "listen_port", "unix_socket_dir", "unix_socket_mode",
    "pool_mode", "max_client_conn", "default_pool_size", "min_pool_size", "reserve_pool_size",
    "reserve_pool_timeout", "max_db_connections", "max_user_connections",
    "max_db_client_connections", "max_user_client_connections",
    "auth_type", "auth_file", "auth_user", "auth_query", "auth_dbname", "auth_hba_file",
    "admin_users", "stats_users",
    "server_reset_query", "server_reset_query_always", "pin_session_state",
    "session_read_back_always", "custom_settings",
    "server_check_query", "server_check_delay",
    "server_connect_timeout", "server_login_retry", "server_lifetime", "server_idle_timeout",
    "server_reset_timeout", "client_login_timeout", "query_wait_timeout", "query_timeout",
    "client_idle_timeout", "idle_transaction_timeout", "transaction_timeout",
    "cancel_wait_timeout", "shutdown_timeout",
    "ignore_startup_parameters", "max_packet_size", "pkt_buf", "tcp_keepalive", "tcp_user_timeout",
    "max_prepared_statements", "max_client_prepared_statements", "max_client_prepared_bytes",
    "notify_queue_size",
    "peer_id", "application_name_add_host",
    "log_format", "verbose", "log_connections", "log_disconnections", "log_pooler_errors",
    "stats_period", "metrics_addr", "logfile", "pidfile", "syslog", "syslog_ident",
    "syslog_facility",
    // The failover keys (failover.rs), the fleet keys (fleet.rs), then the TLS keys (tls.rs),
    // as in pooler.toml.example.
    "target_session_attrs", "max_replica_lag", "failover_hold_timeout", "host_check_period",
    "so_reuseport", "peer_id_from_hostname", "peers_dns",
    "shutdown_accept_delay", "shutdown_idle_grace", "auto_reload",
    // The TLS keys (tls.rs) come last, as in pooler.toml.example.
    "client_tls_sslmode", "client_tls_cert_file", "client_tls_key_file", "client_tls_ca_file",
    "client_tls_protocols",
    "server_tls_sslmode", "server_tls_ca_file", "server_tls_cert_file", "server_tls_key_file",
    "server_tls_protocols",
];

/// PostgreSQL's message length is an Int32 that counts itself (protocol docs, 55.7
/// "Message Formats"), so no message can be longer than this.
pub const MAX_MESSAGE_LENGTH: i64 = i32::MAX as i64;

/// The [pooler] section. Field docs give the PgBouncer meaning; defaults are in `Default`.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolerSettings {
    /// TCP addresses to listen on; "*" means all interfaces; empty = Unix socket only.
    pub listen_addr: Vec<String>,
    /// Port for TCP and for the Unix socket file name (`.s.PGSQL.<port>`).
    pub listen_port: u16,
    /// Directory of the Unix socket; "" disables it.
    pub unix_socket_dir: String,
    /// File mode of the Unix socket.
    pub unix_socket_mode: u32,
    /// When a server connection is released back to the pool.
    pub pool_mode: PoolMode,
    /// Most client connections accepted at once; more are refused with SQLSTATE 53300.
    pub max_client_conn: usize,
    /// Server connections per (database, user) pool unless overridden.
    pub default_pool_size: usize,
    /// Server connections kept open per pool even when idle; 0 = none.
    pub min_pool_size: usize,
    /// Extra server connections a pool may open once a client waited reserve_pool_timeout.
    pub reserve_pool_size: usize,
    /// How long a client waits before the reserve pool is used.
    pub reserve_pool_timeout: Duration,
    /// Most server connections per database over all its pools; 0 = unlimited.
    pub max_db_connections: usize,
    /// Most server connections per user over all its pools; 0 = unlimited.
    pub max_user_connections: usize,
    /// Most client connections per database (over all users); 0 = unlimited.
    pub max_db_client_connections: usize,
    /// Most client connections per user (over all databases); 0 = unlimited.
    pub max_user_client_connections: usize,
    /// How clients authenticate.
    pub auth_type: AuthType,
    /// User/password list, resolved against the config file's directory; None = not set.
    pub auth_file: Option<PathBuf>,
    /// auth_user, auth_query, auth_dbname (see auth_query.rs).
    pub auth_query: AuthQuerySettings,
    /// Users allowed to run any admin console command.
    pub admin_users: Vec<String>,
    /// Users allowed read-only SHOW commands on the admin console.
    pub stats_users: Vec<String>,
    /// Query run on a server released by a session-mode client; "" = none.
    pub server_reset_query: String,
    /// Run server_reset_query in every pool mode, not only session mode.
    pub server_reset_query_always: bool,
    /// Transaction and statement pooling: a client whose session holds state that cannot
    /// move to another server (advisory lock, temporary table, SQL PREPARE, WITH HOLD cursor,
    /// LISTEN) keeps its server until that state is gone. false = PgBouncer's behaviour: the
    /// server goes back to the pool with that state on it.
    pub pin_session_state: bool,
    /// Transaction and statement pooling: read the session back from Postgres after every
    /// transaction, not only after those whose SQL may change it — for functions that change
    /// settings or take advisory locks inside their body.
    pub session_read_back_always: bool,
    /// Custom settings (`app.tenant_id`) read back by name even when no client's SQL names
    /// them: Postgres lists custom settings nowhere once set.
    pub custom_settings: Vec<String>,
    /// Query checking a server idle longer than server_check_delay; "" = no check.
    pub server_check_query: String,
    /// How long a released server is reused without a check; 0 = always check.
    pub server_check_delay: Duration,
    /// Limit on connecting and logging in to a server.
    pub server_connect_timeout: Duration,
    /// After a refused server login, how long new clients of that pool get the server's error
    /// at once instead of queueing for another attempt.
    pub server_login_retry: Duration,
    /// Server connections older than this are closed when released (never mid-transaction);
    /// 0 = each server connection is used once, then closed (PgBouncer's meaning).
    pub server_lifetime: Duration,
    /// Server connections idle longer than this are closed; 0 = never.
    pub server_idle_timeout: Duration,
    /// pgsluice's own: bound on rollback + server_reset_query when a client leaves; past it
    /// the server connection is closed rather than reused.
    pub server_reset_timeout: Duration,
    /// Clients that have not logged in within this are disconnected; 0 = never.
    pub client_login_timeout: Duration,
    /// Longest wait for a server before the query fails with 53300; 0 = forever.
    pub query_wait_timeout: Duration,
    /// Queries running longer than this are cancelled; 0 = never.
    pub query_timeout: Duration,
    /// Clients idle longer than this are disconnected; 0 = never.
    pub client_idle_timeout: Duration,
    /// Clients idle inside a transaction longer than this are disconnected; 0 = never.
    pub idle_transaction_timeout: Duration,
    /// Clients whose transaction has been open longer than this are disconnected; 0 = never.
    pub transaction_timeout: Duration,
    /// Longest a forwarded cancel request may take to reach its server; 0 = no limit.
    pub cancel_wait_timeout: Duration,
    /// pgsluice's own: how long a shutdown waits for clients to leave before closing them.
    pub shutdown_timeout: Duration,
    /// Startup parameters accepted from clients but not tracked or sent to servers.
    pub ignore_startup_parameters: Vec<String>,
    /// Longest message accepted from a client, in bytes.
    pub max_packet_size: usize,
    /// Size of internal read/write buffers, in bytes.
    pub pkt_buf: usize,
    /// Enable TCP keepalive on client and server sockets.
    pub tcp_keepalive: bool,
    /// TCP_USER_TIMEOUT on sockets; 0 = the OS default.
    pub tcp_user_timeout: Duration,
    /// Protocol-level prepared statements tracked per server in transaction mode; 0 = off.
    pub max_prepared_statements: usize,
    /// pgsluice's own: named prepared statements one client may hold in transaction mode.
    pub max_client_prepared_statements: usize,
    /// pgsluice's own: total bytes of query text (and names) one client's statements may hold.
    pub max_client_prepared_bytes: usize,
    /// pgsluice's own: notifications waiting for one LISTEN client in transaction and
    /// statement pooling; a client that lets more pile up is disconnected.
    pub notify_queue_size: usize,
    /// This instance's id in cancel keys, so peers can forward cancels to each other.
    pub peer_id: u16,
    /// Append the client's address to application_name.
    pub application_name_add_host: bool,
    /// Log line format.
    pub log_format: LogFormat,
    /// Extra log detail: 0 = info, 1 = debug, 2+ = trace.
    pub verbose: u8,
    /// Log each successful client login.
    pub log_connections: bool,
    /// Log each client disconnect with its reason.
    pub log_disconnections: bool,
    /// Log errors pgsluice sends to clients.
    pub log_pooler_errors: bool,
    /// Period of the summary statistics log line and of SHOW STATS averages.
    pub stats_period: Duration,
    /// `ip:port` serving Prometheus metrics; "" = off.
    pub metrics_addr: String,
    /// logfile and pidfile (see process.rs).
    pub process: ProcessSettings,
    /// target_session_attrs, max_replica_lag, failover_hold_timeout (see failover.rs).
    pub failover: FailoverSettings,
    /// so_reuseport, peers_dns, draining and auto_reload (see fleet.rs).
    pub fleet: FleetSettings,
    /// client_tls_* and server_tls_* (see tls.rs).
    pub tls: TlsSettings,
}

impl Default for PoolerSettings {
    fn default() -> Self {
        let secs = Duration::from_secs;
        PoolerSettings {
            // PgBouncer listens on no TCP address by default; pgsluice takes loopback so the
            // first run works without a Unix socket and exposes nothing.
            listen_addr: vec!["127.0.0.1".to_string()],
            listen_port: 6432,
            unix_socket_dir: "/tmp".to_string(),
            unix_socket_mode: 0o777,
            pool_mode: PoolMode::Session,
            max_client_conn: 100,
            default_pool_size: 20,
            min_pool_size: 0,
            reserve_pool_size: 0,
            reserve_pool_timeout: secs(5),
            max_db_connections: 0,
            max_user_connections: 0,
            max_db_client_connections: 0,
            max_user_client_connections: 0,
            auth_type: AuthType::Md5,
            auth_file: None,
            auth_query: AuthQuerySettings::default(),
            admin_users: Vec::new(),
            stats_users: Vec::new(),
            server_reset_query: "DISCARD ALL".to_string(),
            server_reset_query_always: false,
            pin_session_state: true,
            session_read_back_always: false,
            custom_settings: Vec::new(),
            server_check_query: "select 1".to_string(),
            server_check_delay: secs(30),
            server_connect_timeout: secs(15),
            server_login_retry: secs(15),
            server_lifetime: secs(3600),
            server_idle_timeout: secs(600),
            server_reset_timeout: secs(5),
            client_login_timeout: secs(60),
            query_wait_timeout: secs(120),
            query_timeout: Duration::ZERO,
            client_idle_timeout: Duration::ZERO,
            idle_transaction_timeout: Duration::ZERO,
            transaction_timeout: Duration::ZERO,
            cancel_wait_timeout: secs(10),
            shutdown_timeout: secs(30),
            ignore_startup_parameters: Vec::new(),
            max_packet_size: MAX_MESSAGE_LENGTH as usize,
            pkt_buf: 4096,
            tcp_keepalive: true,
            tcp_user_timeout: Duration::ZERO,
            max_prepared_statements: 200,
            max_client_prepared_statements: 1000,
            max_client_prepared_bytes: 16 * 1024 * 1024,
            notify_queue_size: 1000,
            peer_id: 0,
            application_name_add_host: false,
            log_format: LogFormat::Plain,
            verbose: 0,
            log_connections: true,
            log_disconnections: true,
            log_pooler_errors: true,
            stats_period: secs(60),
            metrics_addr: String::new(),
            process: ProcessSettings::default(),
            failover: FailoverSettings::default(),
            fleet: FleetSettings::default(),
            tls: TlsSettings::default(),
        }
    }
}

impl PoolerSettings {
    /// Reads [pooler] from `table`, starting from the defaults; problems go to `problems`.
    /// `base_dir` is the config file's directory, against which auth_file is resolved.
    pub fn read(table: &Table, base_dir: &Path, problems: &mut Vec<ConfigProblem>) -> Self {
        let mut s = PoolerSettings::default();
        let mut sec = Section::new("pooler".to_string(), table, POOLER_KEYS, problems);
        s.read_plain_kinds(&mut sec);
        s.read_durations(&mut sec);
        s.read_special(&mut sec);
        s.read_auth_file(&mut sec, base_dir);
        s.auth_query.read(&mut sec, base_dir);
        s.process.read(&mut sec, base_dir);
        s.failover.read(&mut sec);
        s.fleet.read(&mut sec);
        fleet::resolve_peer_id(&mut sec, &mut s.peer_id, &s.fleet);
        s.tls.read(&mut sec, base_dir);
        s
    }

    /// Keys whose only rule is their type: strings, lists, booleans and counts (0 allowed).
    fn read_plain_kinds(&mut self, sec: &mut Section) {
        let strings: [(&str, &mut String); 4] = [
            ("unix_socket_dir", &mut self.unix_socket_dir),
            ("metrics_addr", &mut self.metrics_addr),
            ("server_reset_query", &mut self.server_reset_query),
            ("server_check_query", &mut self.server_check_query),
        ];
        for (key, target) in strings {
            sec.set(key, target, reader::string);
        }
        let lists: [(&str, &mut Vec<String>); 5] = [
            ("listen_addr", &mut self.listen_addr),
            ("admin_users", &mut self.admin_users),
            ("stats_users", &mut self.stats_users),
            ("custom_settings", &mut self.custom_settings),
            (
                "ignore_startup_parameters",
                &mut self.ignore_startup_parameters,
            ),
        ];
        for (key, target) in lists {
            sec.set(key, target, reader::string_list);
        }
        let booleans: [(&str, &mut bool); 8] = [
            (
                "server_reset_query_always",
                &mut self.server_reset_query_always,
            ),
            ("pin_session_state", &mut self.pin_session_state),
            (
                "session_read_back_always",
                &mut self.session_read_back_always,
            ),
            ("tcp_keepalive", &mut self.tcp_keepalive),
            (
                "application_name_add_host",
                &mut self.application_name_add_host,
            ),
            ("log_connections", &mut self.log_connections),
            ("log_disconnections", &mut self.log_disconnections),
            ("log_pooler_errors", &mut self.log_pooler_errors),
        ];
        for (key, target) in booleans {
            sec.set(key, target, reader::boolean);
        }
        let counts: [(&str, &mut usize); 10] = [
            ("min_pool_size", &mut self.min_pool_size),
            ("reserve_pool_size", &mut self.reserve_pool_size),
            ("max_db_connections", &mut self.max_db_connections),
            ("max_user_connections", &mut self.max_user_connections),
            (
                "max_db_client_connections",
                &mut self.max_db_client_connections,
            ),
            (
                "max_user_client_connections",
                &mut self.max_user_client_connections,
            ),
            ("max_prepared_statements", &mut self.max_prepared_statements),
            (
                "max_client_prepared_statements",
                &mut self.max_client_prepared_statements,
            ),
            (
                "max_client_prepared_bytes",
                &mut self.max_client_prepared_bytes,
            ),
            ("notify_queue_size", &mut self.notify_queue_size),
        ];
        for (key, target) in counts {
            sec.set(key, target, reader::count);
        }
    }

    fn read_durations(&mut self, sec: &mut Section) {
        let durations: [(&str, &mut Duration); 17] = [
            ("reserve_pool_timeout", &mut self.reserve_pool_timeout),
            ("server_check_delay", &mut self.server_check_delay),
            ("server_connect_timeout", &mut self.server_connect_timeout),
            ("server_login_retry", &mut self.server_login_retry),
            ("server_lifetime", &mut self.server_lifetime),
            ("server_idle_timeout", &mut self.server_idle_timeout),
            ("server_reset_timeout", &mut self.server_reset_timeout),
            ("client_login_timeout", &mut self.client_login_timeout),
            ("query_wait_timeout", &mut self.query_wait_timeout),
            ("query_timeout", &mut self.query_timeout),
            ("client_idle_timeout", &mut self.client_idle_timeout),
            (
                "idle_transaction_timeout",
                &mut self.idle_transaction_timeout,
            ),
            ("transaction_timeout", &mut self.transaction_timeout),
            ("cancel_wait_timeout", &mut self.cancel_wait_timeout),
            ("shutdown_timeout", &mut self.shutdown_timeout),
            ("tcp_user_timeout", &mut self.tcp_user_timeout),
            ("stats_period", &mut self.stats_period),
        ];
        for (key, target) in durations {
            sec.set(key, target, reader::duration);
        }
    }

    /// Keys with their own range or vocabulary.
    fn read_special(&mut self, sec: &mut Section) {
        sec.set("listen_port", &mut self.listen_port, reader::port);
        sec.set(
            "unix_socket_mode",
            &mut self.unix_socket_mode,
            reader::file_mode,
        );
        sec.set("pool_mode", &mut self.pool_mode, reader::keyword);
        sec.set("auth_type", &mut self.auth_type, reader::keyword);
        sec.set("log_format", &mut self.log_format, reader::keyword);
        // Zero clients or a zero-size pool would make pgsluice refuse every query.
        sec.set(
            "max_client_conn",
            &mut self.max_client_conn,
            reader::positive,
        );
        sec.set(
            "default_pool_size",
            &mut self.default_pool_size,
            reader::positive,
        );
        let max_packet = reader::int_in(1024, MAX_MESSAGE_LENGTH);
        sec.set("max_packet_size", &mut self.max_packet_size, |v| {
            max_packet(v).map(|n| n as usize)
        });
        let pkt_buf = reader::int_in(512, MAX_MESSAGE_LENGTH);
        sec.set("pkt_buf", &mut self.pkt_buf, |v| {
            pkt_buf(v).map(|n| n as usize)
        });
        // PgBouncer limits peer_id to 14 bits: it shares the cancel key with a random part.
        let peer_id = reader::int_in(0, 16383);
        sec.set("peer_id", &mut self.peer_id, |v| {
            peer_id(v).map(|n| n as u16)
        });
        let verbose = reader::int_in(0, 255);
        sec.set("verbose", &mut self.verbose, |v| {
            verbose(v).map(|n| n as u8)
        });
    }

    /// Runs after auth_type is known, which decides whether an empty auth_file is a mistake.
    fn read_auth_file(&mut self, sec: &mut Section, base_dir: &Path) {
        let Some(file) = sec.read("auth_file", reader::string) else {
            return;
        };
        if !file.trim().is_empty() {
            self.auth_file = Some(base_dir.join(file));
        } else if self.auth_type.needs_password() {
            // An absent auth_file is left for the auth module to report (it may come from
            // elsewhere later); an explicitly empty one with passwords required is a mistake.
            sec.problem(
                "auth_file",
                format!(
                    "must name a user/password file when auth_type = \"{}\" \
                     (or set auth_type = \"trust\")",
                    self.auth_type
                ),
            );
        }
    }
}

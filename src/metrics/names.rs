//! Every metric pgsluice exports, by name, in one place (the docs table and the shipped alert
//! rules and dashboard refer to these). Prometheus conventions: base units in the name,
//! `_total` for counters. Labels stay low-cardinality: database, user, state, reason,
//! class — never client addresses.

/// Clients per pool by state (`state` = active | waiting | idle).
pub(crate) const CLIENTS: &str = "pgsluice_clients";
/// Clients per pool pinned to their server in transaction pooling, by kind of session state
/// that cannot move (`reason` = advisory lock | temporary table | prepared statement |
/// cursor WITH HOLD | LISTEN).
pub(crate) const CLIENTS_PINNED: &str = "pgsluice_clients_pinned";
/// Server connections per pool by state (`state` = active | idle | login).
pub(crate) const SERVERS: &str = "pgsluice_servers";
/// Longest current wait for a server per pool, in seconds.
pub(crate) const MAX_WAIT: &str = "pgsluice_client_max_wait_seconds";
/// Configured limits, so saturation is a ratio: pool size per pool, max_db_connections per
/// database (0 = unlimited), max_client_conn for the process.
pub(crate) const POOL_SIZE: &str = "pgsluice_pool_size";
pub(crate) const MAX_DB_CONNECTIONS: &str = "pgsluice_max_db_connections";
pub(crate) const MAX_CLIENT_CONN: &str = "pgsluice_max_client_conn";
/// All client connections of the process, logged in or not.
pub(crate) const CLIENT_CONNECTIONS: &str = "pgsluice_client_connections";
/// Logged-in pool clients (as SHOW CLIENTS lists them), and open servers, that use TLS.
pub(crate) const TLS_CLIENT_CONNECTIONS: &str = "pgsluice_tls_client_connections";
pub(crate) const TLS_SERVER_CONNECTIONS: &str = "pgsluice_tls_server_connections";
/// Traffic per pool.
pub(crate) const TRANSACTIONS: &str = "pgsluice_transactions_total";
pub(crate) const QUERIES: &str = "pgsluice_queries_total";
pub(crate) const RECEIVED_BYTES: &str = "pgsluice_received_bytes_total";
pub(crate) const SENT_BYTES: &str = "pgsluice_sent_bytes_total";
/// Server connections opened, and closed by `reason`.
pub(crate) const SERVERS_OPENED: &str = "pgsluice_server_connections_opened_total";
pub(crate) const SERVERS_CLOSED: &str = "pgsluice_server_connections_closed_total";
/// Server logins Postgres refused or that failed, per pool.
pub(crate) const SERVER_LOGIN_FAILURES: &str = "pgsluice_server_login_failures_total";
/// Client logins, and failed ones by SQLSTATE (`sqlstate` label).
pub(crate) const CLIENT_LOGINS: &str = "pgsluice_client_logins_total";
pub(crate) const CLIENT_LOGIN_FAILURES: &str = "pgsluice_client_login_failures_total";
/// ErrorResponses clients received (from Postgres or pgsluice) by SQLSTATE class (`class`).
pub(crate) const ERRORS: &str = "pgsluice_errors_total";
/// Requests that found no server within query_wait_timeout, per pool.
pub(crate) const WAIT_TIMEOUTS: &str = "pgsluice_query_wait_timeouts_total";
/// Prepared statements in transaction pooling: client Parses, server Parses, Binds, evictions.
pub(crate) const PREPARED_CLIENT_PARSES: &str = "pgsluice_prepared_client_parses_total";
pub(crate) const PREPARED_SERVER_PARSES: &str = "pgsluice_prepared_server_parses_total";
pub(crate) const PREPARED_BINDS: &str = "pgsluice_prepared_binds_total";
pub(crate) const PREPARED_EVICTIONS: &str = "pgsluice_prepared_evictions_total";
/// Histograms per pool, in seconds.
pub(crate) const WAIT_SECONDS: &str = "pgsluice_client_wait_seconds";
pub(crate) const TRANSACTION_SECONDS: &str = "pgsluice_transaction_duration_seconds";
pub(crate) const QUERY_SECONDS: &str = "pgsluice_query_duration_seconds";

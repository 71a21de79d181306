//! Every metric pgsluice exports, by name, in one place (the docs table and the shipped alert
//! rules and dashboard refer to these). Prometheus conventions: base units in the name,
//! `_total` for counters. Labels stay low-cardinality: database, user, state, reason,
//! class — never client addresses. `HELP` gives each its one-line meaning for the exposition's
//! `# HELP` lines, in the words of docs/metrics.md.

/// Clients per pool by state (`state` = active | waiting | idle).
pub(crate) const CLIENTS: &str = "pgsluice_clients";
/// Clients per pool pinned to their server in transaction pooling, by kind of session state
/// that cannot move (`reason` = advisory lock | temporary table | prepared statement |
/// cursor WITH HOLD).
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
/// Client connections that ended in an error, by `kind` (the disconnect log line's field).
pub(crate) const CLIENT_ERRORS: &str = "pgsluice_client_errors_total";
/// CancelRequests received, by where they went (`route` = server | no_match | peer |
/// unknown_peer | misdelivered).
pub(crate) const CANCEL_REQUESTS: &str = "pgsluice_cancel_requests_total";
/// ErrorResponses clients received (from Postgres or pgsluice) by SQLSTATE class (`class`).
pub(crate) const ERRORS: &str = "pgsluice_errors_total";
/// Requests that found no server within query_wait_timeout, per pool.
pub(crate) const WAIT_TIMEOUTS: &str = "pgsluice_query_wait_timeouts_total";
/// Prepared statements in transaction pooling: client Parses, server Parses, Binds, evictions.
pub(crate) const PREPARED_CLIENT_PARSES: &str = "pgsluice_prepared_client_parses_total";
pub(crate) const PREPARED_SERVER_PARSES: &str = "pgsluice_prepared_server_parses_total";
pub(crate) const PREPARED_BINDS: &str = "pgsluice_prepared_binds_total";
pub(crate) const PREPARED_EVICTIONS: &str = "pgsluice_prepared_evictions_total";
/// Database hosts (`host` = host:port): whether the last attempt to reach it succeeded, its
/// role (`role` = primary | standby, value 1), a standby's replay lag, servers held there.
pub(crate) const HOST_UP: &str = "pgsluice_host_up";
pub(crate) const HOST_ROLE: &str = "pgsluice_host_role";
pub(crate) const HOST_REPLICA_LAG: &str = "pgsluice_host_replica_lag_seconds";
pub(crate) const HOST_SERVERS: &str = "pgsluice_host_servers";
/// Per database: primaries that changed, and how long the last failover held new transactions.
pub(crate) const SWITCHOVERS: &str = "pgsluice_switchovers_total";
pub(crate) const FAILOVER_HOLD: &str = "pgsluice_failover_hold_seconds";
/// LISTEN in transaction and statement pooling, per pool: whether its LISTEN connection is
/// up, its subscribers and channels, notifications received and queued for clients, clients
/// cut off for not reading, reconnects and lost-notifications notices.
pub(crate) const LISTEN_UP: &str = "pgsluice_listen_connection_up";
pub(crate) const LISTEN_SUBSCRIBERS: &str = "pgsluice_listen_subscribers";
pub(crate) const LISTEN_CHANNELS: &str = "pgsluice_listen_channels";
pub(crate) const NOTIFICATIONS_RECEIVED: &str = "pgsluice_notifications_received_total";
pub(crate) const NOTIFICATIONS_DELIVERED: &str = "pgsluice_notifications_delivered_total";
pub(crate) const NOTIFICATIONS_DROPPED: &str = "pgsluice_notifications_dropped_total";
pub(crate) const LISTEN_SLOW_CLIENTS: &str = "pgsluice_listen_slow_clients_cut_total";
pub(crate) const LISTEN_RECONNECTS: &str = "pgsluice_listen_reconnects_total";
pub(crate) const NOTIFICATION_LOSS_NOTICES: &str = "pgsluice_notification_loss_notices_total";
/// Histograms per pool, in seconds.
pub(crate) const WAIT_SECONDS: &str = "pgsluice_client_wait_seconds";
pub(crate) const TRANSACTION_SECONDS: &str = "pgsluice_transaction_duration_seconds";
pub(crate) const QUERY_SECONDS: &str = "pgsluice_query_duration_seconds";

/// How a metric is exported, for its `# HELP` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Gauge,
    Counter,
    Histogram,
}

/// Every metric with its kind and one-line meaning.
#[rustfmt::skip]
pub(crate) const HELP: [(&str, Kind, &str); 45] = [
    (CLIENTS, Kind::Gauge, "Clients of the pool by state: active (linked to a server), waiting (queued for one), idle."),
    (CLIENTS_PINNED, Kind::Gauge, "Transaction-pooling clients kept on their server by session state that cannot move, by reason."),
    (SERVERS, Kind::Gauge, "Server connections of the pool by state: active (linked to a client), idle, login (being opened)."),
    (MAX_WAIT, Kind::Gauge, "How long the pool's oldest waiting client has waited for a server so far; 0 when none waits."),
    (POOL_SIZE, Kind::Gauge, "Configured pool size of the pool (pool_size, else default_pool_size)."),
    (MAX_DB_CONNECTIONS, Kind::Gauge, "Configured max_db_connections of the database; 0 = unlimited."),
    (MAX_CLIENT_CONN, Kind::Gauge, "Configured max_client_conn of the process."),
    (CLIENT_CONNECTIONS, Kind::Gauge, "All client connections of the process, logged in or not."),
    (TLS_CLIENT_CONNECTIONS, Kind::Gauge, "Logged-in pool clients that use TLS."),
    (TLS_SERVER_CONNECTIONS, Kind::Gauge, "Open server connections that use TLS."),
    (TRANSACTIONS, Kind::Counter, "Transactions completed through the pool."),
    (QUERIES, Kind::Counter, "Queries completed through the pool."),
    (RECEIVED_BYTES, Kind::Counter, "Bytes received from the pool's clients."),
    (SENT_BYTES, Kind::Counter, "Bytes sent to the pool's clients."),
    (SERVERS_OPENED, Kind::Counter, "Server connections opened (logged in) for the pool."),
    (SERVERS_CLOSED, Kind::Counter, "Server connections closed, by reason."),
    (SERVER_LOGIN_FAILURES, Kind::Counter, "Server logins that Postgres refused or that failed."),
    (CLIENT_LOGINS, Kind::Counter, "Client logins accepted."),
    (CLIENT_LOGIN_FAILURES, Kind::Counter, "Client logins refused, by the SQLSTATE the client got."),
    (CLIENT_ERRORS, Kind::Counter, "Client connections that ended in an error, by kind (as in the disconnect log line)."),
    (CANCEL_REQUESTS, Kind::Counter, "CancelRequests received, by route: to a server, no matching client, on to a peer, unknown peer, or misdelivered by a peer."),
    (ERRORS, Kind::Counter, "ErrorResponses clients received, from Postgres or pgsluice, by SQLSTATE class."),
    (WAIT_TIMEOUTS, Kind::Counter, "Requests that found no server within query_wait_timeout."),
    (PREPARED_CLIENT_PARSES, Kind::Counter, "Parse messages of named prepared statements from clients (transaction pooling)."),
    (PREPARED_SERVER_PARSES, Kind::Counter, "Parses pgsluice sent to servers to prepare clients' named statements there."),
    (PREPARED_BINDS, Kind::Counter, "Binds of named prepared statements from clients."),
    (PREPARED_EVICTIONS, Kind::Counter, "Statements closed on a server to stay within max_prepared_statements."),
    (HOST_UP, Kind::Gauge, "1 when the last attempt to reach the database host succeeded, else 0."),
    (HOST_ROLE, Kind::Gauge, "The database host's role at the last look (role = primary | standby); always 1."),
    (HOST_REPLICA_LAG, Kind::Gauge, "How far a standby host's replay was behind at the last look, in seconds."),
    (HOST_SERVERS, Kind::Gauge, "Server connections pgsluice holds on the database host, by state (active | idle)."),
    (SWITCHOVERS, Kind::Counter, "Times the primary of the database moved to another host."),
    (FAILOVER_HOLD, Kind::Gauge, "How long the last failover of the database held new transactions, in seconds."),
    (LISTEN_UP, Kind::Gauge, "1 while the pool's LISTEN connection is open and listening, else 0."),
    (LISTEN_SUBSCRIBERS, Kind::Gauge, "Transaction/statement-pooling clients of the pool that listen on at least one channel."),
    (LISTEN_CHANNELS, Kind::Gauge, "Channels the pool's clients listen on (the LISTEN connection's channels)."),
    (NOTIFICATIONS_RECEIVED, Kind::Counter, "Notifications Postgres sent on the pool's LISTEN connection."),
    (NOTIFICATIONS_DELIVERED, Kind::Counter, "Notifications queued for the pool's clients (one per client reached)."),
    (NOTIFICATIONS_DROPPED, Kind::Counter, "Notifications that reached no client they were for: queued for, or not fitting the queue of, a client cut off for not reading; or on a channel pgsluice cannot route."),
    (LISTEN_SLOW_CLIENTS, Kind::Counter, "Clients disconnected because notify_queue_size notifications waited for them."),
    (LISTEN_RECONNECTS, Kind::Counter, "Times the pool's LISTEN connection was lost and opened again."),
    (NOTIFICATION_LOSS_NOTICES, Kind::Counter, "Warnings sent to clients that notifications may have been lost (SQLSTATE 08006)."),
    (WAIT_SECONDS, Kind::Histogram, "Time a client waited for a server before its transaction could start."),
    (TRANSACTION_SECONDS, Kind::Histogram, "Transaction duration as seen by the pooler."),
    (QUERY_SECONDS, Kind::Histogram, "Query duration as seen by the pooler."),
];

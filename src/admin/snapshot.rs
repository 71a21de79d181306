//! Plain data the admin console renders: one consistent copy of pools, connections, stats and
//! configuration, filled by the console session from live state before rendering, so no lock
//! is held while rows are formatted and sent. Field meanings follow PgBouncer's usage.md
//! ("SHOW POOLS", "SHOW CLIENTS", ...); units are stated per field.

use std::time::SystemTime;

/// One (database, user) pool, for SHOW POOLS. Counts are connections in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PoolRow {
    pub(crate) database: String,
    pub(crate) user: String,
    pub(crate) cl_active: u64,
    pub(crate) cl_waiting: u64,
    pub(crate) cl_active_cancel_req: u64,
    pub(crate) cl_waiting_cancel_req: u64,
    pub(crate) sv_active: u64,
    pub(crate) sv_active_cancel: u64,
    pub(crate) sv_being_canceled: u64,
    pub(crate) sv_idle: u64,
    pub(crate) sv_used: u64,
    pub(crate) sv_tested: u64,
    pub(crate) sv_login: u64,
    /// How long the oldest waiting client has waited, in microseconds; rendered as PgBouncer's
    /// `maxwait` (whole seconds) and `maxwait_us` (the microseconds left over).
    pub(crate) maxwait_us: u64,
    pub(crate) pool_mode: String,
}

/// One client (SHOW CLIENTS) or server (SHOW SERVERS) connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnRow {
    /// "C" for a client, "S" for a server.
    pub(crate) kind: &'static str,
    pub(crate) user: String,
    pub(crate) database: String,
    /// Clients: active, idle, waiting, active_cancel_req, waiting_cancel_req.
    /// Servers: active, idle, used, tested, new, active_cancel, being_canceled.
    pub(crate) state: String,
    /// The peer: the client's address, or the PostgreSQL server's ("unix" for a socket).
    pub(crate) addr: String,
    pub(crate) port: u16,
    pub(crate) local_addr: String,
    pub(crate) local_port: u16,
    pub(crate) connect_time: SystemTime,
    /// When the client last sent a request / the server was last given one.
    pub(crate) request_time: SystemTime,
    /// How long a waiting client has waited for a server, in microseconds (0 when not
    /// waiting, and for servers); rendered as `wait` seconds and `wait_us` remainder.
    pub(crate) wait_us: u64,
    /// Servers: will be closed when released (RECONNECT, reload changed the address).
    pub(crate) close_needed: bool,
    /// Unique connection id, also rendered in hex as PgBouncer's `ptr`. Draw client and server
    /// ids from one counter so that a `ptr` is unique across both lists.
    pub(crate) id: u64,
    /// The id of the linked server (for a client) or client (for a server), as `link`.
    pub(crate) link: Option<u64>,
    /// Servers: the backend PID from BackendKeyData. Clients: 0.
    pub(crate) remote_pid: u32,
    /// TLS description ("TLSv1.3/TLS_AES_256_GCM_SHA384"), "" when plain.
    pub(crate) tls: String,
    /// The client's application_name (for a server: its linked client's), "" when unset.
    pub(crate) application_name: String,
    /// Protocol-level prepared statements the client has / the server holds.
    pub(crate) prepared_statements: u64,
    /// Clients: why the client keeps its server between transactions (session state that
    /// cannot move: "advisory lock", "LISTEN", ...); "" when it does not. Servers: "".
    pub(crate) pinned: String,
}

impl Default for ConnRow {
    fn default() -> Self {
        ConnRow {
            kind: "C",
            user: String::new(),
            database: String::new(),
            state: String::new(),
            addr: String::new(),
            port: 0,
            local_addr: String::new(),
            local_port: 0,
            connect_time: SystemTime::UNIX_EPOCH,
            request_time: SystemTime::UNIX_EPOCH,
            wait_us: 0,
            close_needed: false,
            id: 0,
            link: None,
            remote_pid: 0,
            tls: String::new(),
            application_name: String::new(),
            prepared_statements: 0,
            pinned: String::new(),
        }
    }
}

/// Per-database traffic, for SHOW STATS, STATS_TOTALS, STATS_AVERAGES and TOTALS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StatsRow {
    pub(crate) database: String,
    /// Totals since start: counts, bytes from/to clients, microseconds.
    pub(crate) xact_count: u64,
    pub(crate) query_count: u64,
    pub(crate) bytes_received: u64,
    pub(crate) bytes_sent: u64,
    pub(crate) xact_time_us: u64,
    pub(crate) query_time_us: u64,
    pub(crate) wait_time_us: u64,
    /// Over the last stats_period: transactions, queries and bytes per second; durations
    /// as the mean per transaction / query / wait (PgBouncer's `avg_*` meanings).
    pub(crate) avg_xact_count: u64,
    pub(crate) avg_query_count: u64,
    pub(crate) avg_recv: u64,
    pub(crate) avg_sent: u64,
    pub(crate) avg_xact_time_us: u64,
    pub(crate) avg_query_time_us: u64,
    pub(crate) avg_wait_time_us: u64,
}

/// One configured database, for SHOW DATABASES.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DatabaseRow {
    pub(crate) name: String,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The database name on the PostgreSQL server.
    pub(crate) database: String,
    pub(crate) force_user: Option<String>,
    pub(crate) pool_size: u64,
    pub(crate) min_pool_size: u64,
    pub(crate) reserve_pool: u64,
    /// The database's own pool_mode, `None` when it inherits the default.
    pub(crate) pool_mode: Option<String>,
    /// max_db_connections in force (0 = unlimited) and server connections now open.
    pub(crate) max_connections: u64,
    pub(crate) current_connections: u64,
    /// max_db_client_connections in force (0 = unlimited) and client connections now open.
    pub(crate) max_client_connections: u64,
    pub(crate) current_client_connections: u64,
    pub(crate) paused: bool,
    pub(crate) disabled: bool,
}

/// One user with settings of its own, for SHOW USERS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UserRow {
    pub(crate) name: String,
    /// The user's own pool_mode, `None` when it inherits.
    pub(crate) pool_mode: Option<String>,
}

/// One setting, for SHOW CONFIG.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ConfigRow {
    pub(crate) key: String,
    pub(crate) value: String,
    pub(crate) default: String,
    /// Whether SET / RELOAD can change it without a restart (rendered "yes"/"no").
    pub(crate) changeable: bool,
}

/// Everything one SHOW command may need. Fill only what the command renders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) pools: Vec<PoolRow>,
    pub(crate) clients: Vec<ConnRow>,
    pub(crate) servers: Vec<ConnRow>,
    pub(crate) stats: Vec<StatsRow>,
    /// Exact pooler-wide stats for SHOW TOTALS when the caller has them; `None` makes the
    /// renderer add up `stats` (averaged durations weighted by each database's rate).
    pub(crate) totals: Option<StatsRow>,
    pub(crate) databases: Vec<DatabaseRow>,
    pub(crate) users: Vec<UserRow>,
    pub(crate) config: Vec<ConfigRow>,
    /// SHOW LISTS rows, (list, items), in [`LIST_NAMES`] order.
    pub(crate) lists: Vec<(String, u64)>,
    /// SHOW STATE rows, (key, value); see [`pause_state`].
    pub(crate) state: Vec<(String, String)>,
    /// SHOW VERSION's single value.
    pub(crate) version: String,
    /// SHOW HOSTS rows, by address.
    pub(crate) hosts: Vec<HostRow>,
    /// SHOW LISTENERS rows, by pool.
    pub(crate) listeners: Vec<ListenerRow>,
    /// SHOW CHANNELS rows, by pool and channel.
    pub(crate) channels: Vec<ChannelRow>,
}

/// One pool's LISTEN connection, for SHOW LISTENERS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ListenerRow {
    pub(crate) database: String,
    pub(crate) user: String,
    /// idle | connecting | listening | reconnecting.
    pub(crate) state: String,
    /// The server host it is connected to ("" without a connection).
    pub(crate) host: String,
    /// Its backend pid (None without a connection).
    pub(crate) pid: Option<u64>,
    pub(crate) connected_s: Option<u64>,
    pub(crate) channels: u64,
    pub(crate) subscribers: u64,
    pub(crate) received: u64,
    pub(crate) delivered: u64,
    pub(crate) dropped: u64,
    pub(crate) slow_clients_cut: u64,
    pub(crate) reconnects: u64,
    pub(crate) loss_notices: u64,
}

/// One channel of one pool, for SHOW CHANNELS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ChannelRow {
    pub(crate) database: String,
    pub(crate) user: String,
    pub(crate) channel: String,
    pub(crate) subscribers: u64,
    pub(crate) delivered: u64,
}

/// One database host, for SHOW HOSTS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HostRow {
    /// `host:port`, or `unix:<socket path>`.
    pub(crate) host: String,
    /// primary | standby | unknown (never reached yet).
    pub(crate) role: String,
    pub(crate) healthy: bool,
    /// A standby's replay lag at the last look, in milliseconds.
    pub(crate) lag_ms: Option<u64>,
    /// Server connections pgsluice holds there now: linked to a client, and idle.
    pub(crate) sv_active: u64,
    pub(crate) sv_idle: u64,
    pub(crate) checked_ms_ago: Option<u64>,
    pub(crate) last_error: Option<String>,
}

/// The rows of PgBouncer's SHOW LISTS, in its order. pgsluice has no slab allocator and no
/// DNS cache of its own: report free_* and dns_* as 0, used_* as live connections.
pub(crate) const LIST_NAMES: [&str; 12] = [
    "databases",
    "users",
    "pools",
    "free_clients",
    "used_clients",
    "login_clients",
    "free_servers",
    "used_servers",
    "dns_names",
    "dns_zones",
    "dns_queries",
    "dns_pending",
];

/// SHOW STATE rows as PgBouncer words them: active / paused / suspended, each "yes" or "no".
/// pgsluice never suspends (SUSPEND is not supported).
pub(crate) fn pause_state(paused: bool) -> Vec<(String, String)> {
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    vec![
        ("active".into(), yes_no(!paused)),
        ("paused".into(), yes_no(paused)),
        ("suspended".into(), yes_no(false)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_state_rows() {
        let rows = pause_state(true);
        let keys: Vec<&str> = rows.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["active", "paused", "suspended"]);
        assert_eq!(rows[0].1, "no");
        assert_eq!(rows[1].1, "yes");
        assert_eq!(pause_state(false)[0].1, "yes");
        assert_eq!(pause_state(false)[2].1, "no");
    }

    #[test]
    fn defaults_are_empty() {
        let conn = ConnRow::default();
        assert_eq!(conn.kind, "C");
        assert_eq!(conn.link, None);
        assert!(Snapshot::default().pools.is_empty());
        assert_eq!(LIST_NAMES.len(), 12);
    }
}

//! One second of the surge, as the chart shows it: what the clients got (`load::Counts`) and
//! what the target says of itself — clients waiting and servers in use from the pooler's
//! console (SHOW POOLS, the same columns in pgsluice and PgBouncer), or for PostgreSQL
//! directly, its client backends (pg_stat_activity) and the clients left without a
//! connection. "Servers" are server connections open, busy or idle: the backends Postgres
//! holds for the target.

use tokio_postgres::{Client, SimpleQueryMessage};

use crate::load::Taken;

/// One second of one target.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sample {
    pub second: u32,
    pub clients: usize,
    pub transactions: u64,
    pub failed: u64,
    pub connection_errors: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub waiting: Option<u64>,
    pub servers: Option<u64>,
}

impl Sample {
    /// `disconnected`: the crowd's clients without a connection, which stand in for
    /// "waiting" where the target has no queue of its own (PostgreSQL directly).
    pub fn new(
        second: u32,
        clients: usize,
        disconnected: u64,
        taken: Taken,
        gauges: Gauges,
    ) -> Sample {
        Sample {
            second,
            clients,
            transactions: taken.transactions,
            failed: taken.failed,
            connection_errors: taken.connection_errors,
            p50_ms: taken.p50_ms,
            p99_ms: taken.p99_ms,
            waiting: gauges.waiting.or(Some(disconnected)),
            servers: gauges.servers,
        }
    }
}

/// What the target reports of itself.
#[derive(Debug, Default, Clone, Copy)]
pub struct Gauges {
    pub waiting: Option<u64>,
    pub servers: Option<u64>,
}

/// Where the gauges come from.
pub enum Observer {
    /// A pooler's admin console: SHOW POOLS.
    Console(Client),
    /// PostgreSQL itself, as the superuser.
    Postgres(Client),
}

impl Observer {
    pub async fn gauges(&self, database: &str, user: &str) -> Gauges {
        match self {
            Observer::Console(c) => pools(c, database, user).await.unwrap_or_default(),
            Observer::Postgres(c) => Gauges {
                // The clients' own count of those without a connection stands in.
                waiting: None,
                servers: backends(c, user).await,
            },
        }
    }
}

async fn pools(console: &Client, database: &str, user: &str) -> Option<Gauges> {
    let msgs = console.simple_query("SHOW POOLS").await.ok()?;
    let mut columns: Vec<String> = Vec::new();
    for m in msgs {
        match m {
            SimpleQueryMessage::RowDescription(cols) => {
                columns = cols.iter().map(|c| c.name().to_owned()).collect();
            }
            SimpleQueryMessage::Row(row) => {
                let get = |name: &str| {
                    let i = columns.iter().position(|c| c == name)?;
                    row.get(i)
                };
                if get("database") == Some(database) && get("user") == Some(user) {
                    let num = |name: &str| get(name).and_then(|v| v.parse::<u64>().ok());
                    // Every server connection of the pool, busy or not: what Postgres counts.
                    let open = ["sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login"];
                    return Some(Gauges {
                        waiting: num("cl_waiting"),
                        servers: Some(open.iter().filter_map(|c| num(c)).sum()),
                    });
                }
            }
            _ => {}
        }
    }
    Some(Gauges::default())
}

async fn backends(postgres: &Client, user: &str) -> Option<u64> {
    let sql = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = '{user}' \
         AND backend_type = 'client backend'"
    );
    let msgs = postgres.simple_query(&sql).await.ok()?;
    msgs.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => row.get(0)?.parse().ok(),
        _ => None,
    })
}

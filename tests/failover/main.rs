//! Primaries, replicas and failover with real streaming replication: a primary and a standby
//! made with `pg_basebackup -R`, pgsluice in front of both. Reads go to the standby and writes
//! to the primary; a switchover (primary stopped, standby promoted) holds new transactions and
//! runs them on the new primary with none failed; the old primary rejoins as a standby; a
//! standby past max_replica_lag is skipped and comes back.

#[path = "../common/mod.rs"]
mod common;

mod lag;
mod switchover;

use common::*;

/// A primary with a streaming standby, the standby caught up.
pub fn replicated_pair() -> (PgCluster, PgCluster) {
    let primary = PgCluster::start();
    let standby = PgCluster::standby_of(&primary);
    (primary, standby)
}

/// pgsluice in transaction pooling over both hosts: `rw` wants the primary, `ro` a standby,
/// `pref` prefers a standby; every database is testdb on the servers.
pub fn pooler_over(primary: &PgCluster, standby: &PgCluster, extra: &str) -> Pooler {
    let hosts = format!(
        "host = [\"127.0.0.1\", \"127.0.0.1\"]\nport = [{}, {}]\ndbname = \"{TEST_DB}\"",
        primary.port(),
        standby.port()
    );
    Pooler::start(
        PoolerConfig::new(primary)
            .pooler(
                "pool_mode = \"transaction\"\ndefault_pool_size = 4\nhost_check_period = \"200ms\"",
            )
            .pooler(extra)
            .database(
                "rw",
                &format!("{hosts}\ntarget_session_attrs = \"read-write\""),
            )
            .database(
                "ro",
                &format!("{hosts}\ntarget_session_attrs = \"read-only\""),
            )
            .database(
                "pref",
                &format!("{hosts}\ntarget_session_attrs = \"prefer-standby\""),
            ),
    )
}

/// The port of the server that answers `client`'s next transaction.
pub async fn server_port(client: &tokio_postgres::Client) -> u16 {
    let row = client
        .query_one("select inet_server_port()", &[])
        .await
        .expect("inet_server_port");
    row.get::<_, i32>(0) as u16
}

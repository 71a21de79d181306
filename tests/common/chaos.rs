//! What every chaos test checks once the fault is over: the pooler's counts are back to
//! normal (no client left active or waiting, no server left active, SHOW LISTS agrees) and
//! Postgres holds no idle-in-transaction backend of the test's database. Called by the
//! chaos tests (`tests/chaos/`). Invariant: only waits on conditions (generous deadline), never on time.

use std::time::Duration;

use tokio_postgres::Client;

use super::console::{console, show, ResultSet};
use super::pg::PgCluster;
use super::pooler::Pooler;
use super::wait_until;

/// How long a fault may take to clear; generous because the machine is shared.
pub const SETTLE: Duration = Duration::from_secs(60);

/// The SHOW POOLS row of (`db`, `user`), if the pool exists.
pub fn pool_row(pools: &ResultSet, db: &str, user: &str) -> Option<usize> {
    pools
        .rows_where("database", db)
        .into_iter()
        .find(|&r| pools.get(r, "user") == user)
}

/// Waits until the pool of (`db`, `user`) has `clients` clients and none of them waits, no
/// server is active or logging in, and SHOW LISTS counts exactly `clients` pooled clients
/// (the console's own connection is not one).
pub async fn pool_settles(p: &Pooler, db: &str, user: &str, clients: i64) {
    let admin = console(p).await;
    let mut last = String::new();
    let what = format!("pool {db}/{user} back to {clients} idle clients, no active server");
    let settled = tokio::time::timeout(SETTLE, async {
        loop {
            let pools = show(&admin, "SHOW POOLS").await;
            let lists = show(&admin, "SHOW LISTS").await;
            let used = lists.lookup("list", "used_clients", "items").to_owned();
            let ok = match pool_row(&pools, db, user) {
                Some(r) => {
                    // <=: pgsluice counts idle clients outside cl_active, PgBouncer inside.
                    pools.number(r, "cl_active") <= clients
                        && pools.number(r, "cl_waiting") == 0
                        && pools.number(r, "sv_active") == 0
                        && pools.number(r, "sv_login") == 0
                }
                None => clients == 0,
            };
            if ok && used == clients.to_string() {
                return;
            }
            last = format!("SHOW POOLS {pools:?}\nused_clients {used}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    if settled.is_err() {
        panic!("timed out waiting for: {what}\n{last}\n{}", p.log());
    }
}

/// Backends of `db` in a state LIKE `state` on the real Postgres.
pub async fn backends_in(su: &Client, db: &str, state: &str) -> i64 {
    su.query_one(
        "select count(*) from pg_stat_activity where datname = $1 and state like $2",
        &[&db, &state],
    )
    .await
    .expect("count pg_stat_activity")
    .get(0)
}

/// Waits until no backend of `db` is idle in transaction (aborted or not).
pub async fn no_idle_in_transaction(cluster: &PgCluster, db: &str) {
    let su = cluster.superuser_client("postgres").await;
    wait_until(
        &format!("no idle-in-transaction backend in {db}"),
        SETTLE,
        || async { backends_in(&su, db, "idle in transaction%").await == 0 },
    )
    .await;
}

//! max_replica_lag: a prefer-standby pool reads from the standby; with its replay paused while
//! the primary writes, the standby falls behind past the limit and the pool's transactions go
//! to the primary; once replay resumes, they come back to the standby.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use crate::{pooler_over, replicated_pair, server_port};

const DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_lagging_standby_is_skipped_and_comes_back() {
    let (primary, standby) = replicated_pair();
    let p = pooler_over(&primary, &standby, "max_replica_lag = \"1s\"");
    let (client, _t) = p.connect(MD5_USER, MD5_PASS, "pref").await.unwrap();
    assert_eq!(server_port(&client).await, standby.port(), "{}", p.log());

    // Writes keep arriving on the primary while the standby does not replay them.
    let table = unique_name("lag_rows");
    primary.sql(TEST_DB, &format!("create table {table}(x int)"));
    wait_until("the standby to replay the table", DEADLINE, || async {
        standby.sql(
            TEST_DB,
            &format!("select count(*) from pg_class where relname = '{table}'"),
        ) == "1"
    })
    .await;
    standby.sql("postgres", "select pg_wal_replay_pause()");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let su = primary.superuser_client(TEST_DB).await;
        let (stop, table) = (stop.clone(), table.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                su.batch_execute(&format!("insert into {table} values (1)"))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    wait_until("the lagging standby to be skipped", DEADLINE, || async {
        server_port(&client).await == primary.port()
    })
    .await;

    standby.sql("postgres", "select pg_wal_replay_resume()");
    wait_until("the standby to be used again", DEADLINE, || async {
        server_port(&client).await == standby.port()
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
}

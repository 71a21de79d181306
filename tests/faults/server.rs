//! When Postgres misbehaves: restarted under the pooler (idle servers from before are never
//! handed out dead, queued clients proceed once it is back; restarts under load are in the
//! chaos group), unreachable past
//! query_wait_timeout (a clear error), and refusing a login (the next clients get the same
//! error at once, for server_login_retry, without another attempt reaching Postgres).

use std::time::Duration;

use crate::common::*;

const LONG: Duration = Duration::from_secs(60);

async fn one(client: &tokio_postgres::Client) -> i32 {
    client.query_one("select 1", &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_is_invisible_to_new_and_queued_clients() {
    let cluster = PgCluster::start();
    let p = Pooler::start(
        PoolerConfig::new(&cluster).pooler("default_pool_size = 2\nquery_wait_timeout = \"60s\""),
    );
    // Two servers sit idle in the pool.
    let (a, ta) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    let (b, tb) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    assert_eq!(one(&a).await + one(&b).await, 2);
    drop((a, b));
    ta.await.unwrap().unwrap();
    tb.await.unwrap().unwrap();

    tokio::task::block_in_place(|| cluster.restart("fast"));
    // Both pooled servers died with the old postmaster; a new client never sees them.
    let (c, tc) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    assert_eq!(one(&c).await, 1);
    drop(c);
    tc.await.unwrap().unwrap();

    // Postgres goes away; a client arriving now queues while pgsluice retries, and proceeds
    // with no error once Postgres is back.
    tokio::task::block_in_place(|| cluster.stop("fast"));
    let waiting = tokio::spawn({
        let cfg = md5_login(p.connect_config());
        async move {
            let (client, task) = connect_with(&cfg).await?;
            let n: i32 = client.query_one("select 2", &[]).await?.get(0);
            drop(client);
            let _ = task.await;
            Ok::<i32, tokio_postgres::Error>(n)
        }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !waiting.is_finished(),
        "the client waits for Postgres to come back"
    );
    tokio::task::block_in_place(|| cluster.start_again());
    let n = tokio::time::timeout(LONG, waiting)
        .await
        .expect("queued client served after the restart")
        .unwrap()
        .expect("no error for the queued client");
    assert_eq!(n, 2);
}

#[tokio::test]
async fn an_unreachable_server_fails_the_client_clearly_after_query_wait_timeout() {
    let p = Pooler::start(
        PoolerConfig::for_server("127.0.0.1", free_port()).pooler("query_wait_timeout = \"1s\""),
    );
    let err = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap_err();
    assert_eq!(sqlstate(&err), Some("08006"), "{err:?}");
    let text = format!("{err:?}");
    assert!(text.contains("query_wait_timeout"), "{text}");
}

#[tokio::test]
async fn a_refused_server_login_is_repeated_at_once_for_server_login_retry() {
    let cluster = shared_cluster();
    let db = unique_name("db");
    cluster.create_database(&db);
    let p = Pooler::start(
        PoolerConfig::new(cluster)
            .pooler("server_login_retry = \"60s\"")
            .database(&db, &format!("user = \"{MD5_USER}\"\npassword = \"wrong\"")),
    );
    let refusals = || {
        let needle = format!("{MD5_USER}@{db} FATAL:  password authentication failed");
        cluster.log().matches(&needle).count()
    };

    let first = p.connect(MD5_USER, MD5_PASS, &db).await.unwrap_err();
    assert_eq!(sqlstate(&first), Some("28P01"), "{first:?}");
    assert_eq!(refusals(), 1);

    let second = p.connect(MD5_USER, MD5_PASS, &db).await.unwrap_err();
    assert_eq!(sqlstate(&second), Some("28P01"), "{second:?}");
    assert!(
        format!("{second:?}").contains("server_login_retry"),
        "{second:?}"
    );
    assert_eq!(
        refusals(),
        1,
        "no new login attempt within server_login_retry"
    );

    // Other pools keep working.
    let (ok, _t) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    assert_eq!(one(&ok).await, 1);
}

//! Session pool mode: one server per client for the client's whole connection, and a clean
//! server for the next client — session state reset, open transactions rolled back, a client
//! killed mid-transaction leaves no lock behind — plus pgbench through the pooler.

use std::time::Duration;

use crate::common::*;

fn single_server_pool() -> Pooler {
    Pooler::start(PoolerConfig::new(shared_cluster()).pooler("default_pool_size = 1"))
}

async fn backend_pid(client: &tokio_postgres::Client) -> i32 {
    client
        .query_one("select pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn next_client_gets_the_same_server_with_no_session_state() {
    let p = single_server_pool();
    let (a, task) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    let pid = backend_pid(&a).await;
    a.batch_execute(
        "set work_mem = '77MB'; create temp table mine(x int); prepare q as select 42; \
         listen some_channel",
    )
    .await
    .unwrap();
    drop(a);
    task.await.unwrap().unwrap();

    let (b, _task) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    assert_eq!(backend_pid(&b).await, pid, "pool of one reuses its server");
    let work_mem: String = b.query_one("show work_mem", &[]).await.unwrap().get(0);
    assert_ne!(work_mem, "77MB");
    let err = b.simple_query("select * from mine").await.unwrap_err();
    assert_eq!(
        sqlstate(&err),
        Some("42P01"),
        "temp table dropped by DISCARD ALL"
    );
    let err = b.simple_query("execute q").await.unwrap_err();
    assert_eq!(
        sqlstate(&err),
        Some("26000"),
        "prepared statement deallocated"
    );
}

#[tokio::test]
async fn client_killed_mid_transaction_leaves_no_lock_and_a_clean_server() {
    let p = single_server_pool();
    let table = unique_name("locked");
    let admin = shared_cluster().superuser_client(TEST_DB).await;
    admin
        .batch_execute(&format!(
            "create table {table}(x int); grant all on {table} to public"
        ))
        .await
        .unwrap();

    let (a, task) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    let pid = backend_pid(&a).await;
    a.batch_execute(&format!(
        "begin; insert into {table} values (1); lock table {table} in access exclusive mode"
    ))
    .await
    .unwrap();
    // The client vanishes without Terminate: its socket is simply dropped.
    task.abort();
    drop(a);

    let (b, _task) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    assert_eq!(
        backend_pid(&b).await,
        pid,
        "the server was cleaned and pooled, not closed"
    );
    b.batch_execute("set lock_timeout = '20s'").await.unwrap();
    b.batch_execute(&format!(
        "begin; lock table {table} in access exclusive mode; commit"
    ))
    .await
    .unwrap();
    let rows: i64 = b
        .query_one(&format!("select count(*) from {table}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 0, "the killed client's insert was rolled back");
    let in_tx: bool = admin
        .query_one(
            "select exists(select 1 from pg_stat_activity where state like 'idle in transaction%' and usename = $1)",
            &[&MD5_USER],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!in_tx, "no backend left idle in transaction");
}

#[tokio::test]
async fn client_killed_during_a_long_query_does_not_hold_the_server() {
    let p = single_server_pool();
    let (a, task) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    let sleeping = tokio::spawn(async move { a.simple_query("select pg_sleep(600)").await });
    let admin = shared_cluster().superuser_client(TEST_DB).await;
    wait_until("the query to start", Duration::from_secs(30), || async {
        admin
            .query_one("select count(*) from pg_stat_activity where query = 'select pg_sleep(600)' and state = 'active'", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
            == 1
    })
    .await;
    task.abort();
    sleeping.abort();
    // The next client gets a working server well before the 600 s sleep would end: pgsluice
    // cancels the orphaned query (or closes that server) and frees the slot.
    let (b, _task) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    let one: i32 = tokio::time::timeout(Duration::from_secs(60), b.query_one("select 1", &[]))
        .await
        .expect("a server within 60 s")
        .unwrap()
        .get(0);
    assert_eq!(one, 1);
}

#[tokio::test]
async fn clients_beyond_pool_size_wait_for_a_server() {
    let p = single_server_pool();
    let (a, task_a) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    let waiting = tokio::spawn({
        let cfg = md5_login(p.connect_config());
        async move {
            let (b, _task) = connect_with(&cfg).await.unwrap();
            b.query_one("select 2", &[]).await.unwrap().get::<_, i32>(0)
        }
    });
    assert_eq!(
        a.query_one("select 1", &[]).await.unwrap().get::<_, i32>(0),
        1
    );
    drop(a);
    task_a.await.unwrap().unwrap();
    let got = tokio::time::timeout(Duration::from_secs(60), waiting)
        .await
        .expect("waiter served")
        .unwrap();
    assert_eq!(got, 2);
}

#[test]
fn pgbench_select_only_through_the_pooler_has_no_failures() {
    let cluster = shared_cluster();
    let db = unique_name("bench");
    cluster.create_database(&db);
    let p = Pooler::start(
        PoolerConfig::new(cluster)
            .pooler("default_pool_size = 50")
            .database(&db, ""),
    );
    let processed = p.pgbench_select_only(&db, 50, 3, &[]);
    assert!(processed > 0);
}

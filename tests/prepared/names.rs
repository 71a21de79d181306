//! Named prepared statements in transaction pooling: a client's statement names are
//! its own whatever server it lands on; statements are prepared lazily and shared between
//! clients; replies are exactly what Postgres would send; memory is bounded.

use std::time::Duration;

use crate::common::*;
use tokio_postgres::Client;

fn tx_pooler(extra: &str) -> Pooler {
    Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler("pool_mode = \"transaction\"\nmax_client_conn = 1000")
            .pooler(extra),
    )
}

async fn login(p: &Pooler) -> Client {
    p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap().0
}

#[tokio::test]
async fn tokio_postgres_clients_use_named_statements_across_many_servers() {
    let p = tx_pooler("default_pool_size = 5");
    let mut tasks = Vec::new();
    for id in 0..50i32 {
        let cfg = md5_login(p.connect_config());
        tasks.push(tokio::spawn(async move {
            let (c, _task) = connect_with(&cfg).await.unwrap();
            let add = c.prepare("select $1::int + $2::int").await.unwrap();
            for n in 0..20i32 {
                let got: i32 = c.query_one(&add, &[&id, &n]).await.unwrap().get(0);
                assert_eq!(got, id + n);
                // tokio-postgres prepares (and later closes) a named statement per call too.
                let echo: String = c
                    .query_one("select $1::text", &[&format!("c{id}")])
                    .await
                    .unwrap()
                    .get(0);
                assert_eq!(echo, format!("c{id}"));
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(120), t)
            .await
            .unwrap()
            .unwrap();
    }
}

#[tokio::test]
async fn a_statement_prepared_on_one_server_works_on_another() {
    let p = tx_pooler("default_pool_size = 2");
    let a = login(&p).await;
    let b = login(&p).await;
    let st = a.prepare("select pg_backend_pid()").await.unwrap();
    // B holds one server in a transaction, so A's next use may land on the other.
    b.batch_execute("begin").await.unwrap();
    let mut pids = std::collections::HashSet::new();
    for _ in 0..5 {
        let pid: i32 = a.query_one(&st, &[]).await.unwrap().get(0);
        pids.insert(pid);
        b.batch_execute("commit; begin").await.unwrap();
    }
    b.batch_execute("commit").await.unwrap();
    assert!(!pids.is_empty());
}

#[tokio::test]
async fn ten_statements_through_a_cache_of_two_all_answer_right() {
    let p = tx_pooler("default_pool_size = 1\nmax_prepared_statements = 2");
    let c = login(&p).await;
    let mut statements = Vec::new();
    for i in 0..10i32 {
        statements.push((
            i,
            c.prepare(&format!("select {i} + $1::int")).await.unwrap(),
        ));
    }
    for round in 0..3i32 {
        for (i, st) in statements.iter().rev() {
            let got: i32 = c.query_one(st, &[&round]).await.unwrap().get(0);
            assert_eq!(got, i + round);
        }
    }
    let on_server: i64 = c
        .query_one(
            "select count(*) from pg_prepared_statements where name like 'pgsluice%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        on_server <= 3,
        "the server keeps at most max_prepared_statements (+ this query's): {on_server}"
    );
}

#[tokio::test]
async fn a_statement_made_stale_by_ddl_heals_after_one_error() {
    let p = tx_pooler("default_pool_size = 1");
    let table = unique_name("ddl");
    let admin = shared_cluster().superuser_client(TEST_DB).await;
    admin
        .batch_execute(&format!("create table {table}(a int); insert into {table} values (1); grant all on {table} to public"))
        .await
        .unwrap();
    let c = login(&p).await;
    let st = c.prepare(&format!("select * from {table}")).await.unwrap();
    assert_eq!(c.query(&st, &[]).await.unwrap().len(), 1);
    admin
        .batch_execute(&format!("alter table {table} add column b int"))
        .await
        .unwrap();
    // Postgres refuses the old plan once ...
    let err = c.query(&st, &[]).await.unwrap_err();
    assert_eq!(sqlstate(&err), Some("0A000"), "{err:?}");
    // ... and a fresh prepare of the same text (as drivers do) gets a fresh statement.
    let again = c.prepare(&format!("select * from {table}")).await.unwrap();
    assert_eq!(again.columns().len(), 2);
    assert_eq!(c.query(&again, &[]).await.unwrap().len(), 1);
}

#[test]
fn pgbench_prepared_with_more_clients_than_servers() {
    let cluster = shared_cluster();
    let db = unique_name("prep");
    cluster.create_database(&db);
    let p = Pooler::start(
        PoolerConfig::new(cluster)
            .pooler("pool_mode = \"transaction\"\ndefault_pool_size = 5")
            .database(&db, ""),
    );
    assert!(p.pgbench_select_only(&db, 30, 3, &["-M", "prepared"]) > 0);
}

#[tokio::test]
async fn sql_prepare_in_transaction_mode_pins_the_client_until_deallocate() {
    // SQL-level PREPARE is session state that cannot move: its client keeps its server.
    let p = tx_pooler("default_pool_size = 2");
    let a = login(&p).await;
    let b = login(&p).await;
    a.batch_execute("prepare q as select 1").await.unwrap();
    // B cannot take the server A used: A is pinned to it, so B gets the other one.
    b.batch_execute("begin").await.unwrap();
    let rows = a.simple_query("execute q").await.unwrap();
    assert_eq!(
        rows.len(),
        3,
        "RowDescription, one row, CommandComplete: {rows:?}"
    );
    a.batch_execute("deallocate q").await.unwrap();
    b.batch_execute("commit").await.unwrap();
    // Unpinned: its server went back, and a third client in a transaction can hold it
    // while A and B still get served.
    let c = login(&p).await;
    c.batch_execute("begin").await.unwrap();
    a.batch_execute("select 1").await.unwrap();
    c.batch_execute("commit").await.unwrap();
    let err = a.batch_execute("execute q").await.unwrap_err();
    assert_eq!(sqlstate(&err), Some("26000"), "deallocated: {err:?}");
}

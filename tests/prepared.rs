//! Named prepared statements in transaction pooling (issue 4): a client's statement names are
//! its own whatever server it lands on; statements are prepared lazily and shared between
//! clients; replies are exactly what Postgres would send; memory is bounded.

mod common;

use std::time::Duration;

use common::*;
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

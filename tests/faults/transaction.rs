//! Transaction pooling under contention and faults: waiters served in arrival order, a waiter
//! that leaves the queue keeping no slot, servers killed by pg_terminate_backend while idle
//! (transparent) or busy (only that client sees an error), and a client killed mid-transaction
//! (rolled back: no locks, no idle-in-transaction backend, the pool of one serves again).
//! Tests that count backends get their own database so parallel tests do not blur the counts.

use std::time::Duration;

use crate::common::*;
use tokio::sync::mpsc;
use tokio_postgres::{Client, SimpleQueryMessage};

const DEADLINE: Duration = Duration::from_secs(60);

/// A transaction-mode pooler in front of a fresh database of its own.
fn db_pooler(extra: &str) -> (Pooler, String) {
    let db = unique_name("txf");
    shared_cluster().create_database(&db);
    let p = Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler("pool_mode = \"transaction\"")
            .pooler(extra)
            .database(&db, ""),
    );
    (p, db)
}

async fn login(p: &Pooler, db: &str) -> (Client, ConnTask) {
    match p.connect(MD5_USER, MD5_PASS, db).await {
        Ok(pair) => pair,
        Err(e) => panic!("login through pgsluice: {e}\n{}", p.log()),
    }
}

/// The first column of the first row of a simple query.
async fn simple_value(c: &Client, sql: &str) -> String {
    let msgs = c.simple_query(sql).await.unwrap();
    match msgs.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
        _ => None,
    }) {
        Some(value) => value,
        None => panic!("{sql}: no non-NULL row"),
    }
}

/// The backend running the query that contains `marker`, once it is running.
async fn busy_pid(su: &Client, db: &str, marker: &str) -> i32 {
    let find = "select pid from pg_stat_activity \
                where datname = $1 and state = 'active' and strpos(query, $2) > 0";
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        if let Some(row) = su.query(find, &[&db, &marker]).await.unwrap().first() {
            return row.get(0);
        }
        assert!(
            std::time::Instant::now() < end,
            "{marker} never became active"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn queued_clients_are_served_in_arrival_order() {
    let (p, db) = db_pooler("default_pool_size = 1");
    // Logging in also needs the server, so everyone logs in before A takes it.
    let (a, _ta) = login(&p, &db).await;
    let mut queued = Vec::new();
    for name in ["B", "C", "D"] {
        queued.push((name, login(&p, &db).await.0));
    }
    a.batch_execute("begin").await.unwrap();
    let (done, mut finished) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for (name, client) in queued {
        let done = done.clone();
        let task = tokio::spawn(async move {
            let value = simple_value(&client, &format!("select '{name}'")).await;
            done.send(value).unwrap();
            client
        });
        // The queue cannot be observed yet: give each request time to reach it first.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !task.is_finished(),
            "{name} must wait while A holds the only server"
        );
        tasks.push(task);
    }
    a.batch_execute("commit").await.unwrap();
    let mut order = Vec::new();
    for _ in 0..3 {
        match tokio::time::timeout(DEADLINE, finished.recv()).await {
            Ok(Some(name)) => order.push(name),
            other => panic!("waiters not served: {other:?} after {order:?}\n{}", p.log()),
        }
    }
    assert_eq!(order, ["B", "C", "D"], "served in arrival order");
    for task in tasks {
        let client = task.await.unwrap();
        assert_eq!(simple_value(&client, "select 1").await, "1");
    }
}

#[tokio::test]
async fn a_waiter_that_disconnects_leaves_no_slot_behind() {
    let (p, db) = db_pooler("default_pool_size = 1");
    let su = shared_cluster().superuser_client(&db).await;
    let (a, _ta) = login(&p, &db).await;
    let (b, b_conn) = login(&p, &db).await;
    let (c, _tc) = login(&p, &db).await;
    a.batch_execute("begin").await.unwrap();
    let b_query = tokio::spawn(async move { b.simple_query("select 'B'").await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!b_query.is_finished(), "B waits behind A");
    // B vanishes while queued: its request task and its socket are gone.
    b_query.abort();
    b_conn.abort();
    assert!(b_query.await.is_err(), "B's request was aborted");
    assert!(b_conn.await.is_err(), "B's connection was aborted");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c_query = tokio::spawn(async move {
        let value = simple_value(&c, "select 'C'").await;
        (c, value)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!c_query.is_finished(), "C waits behind A");
    a.batch_execute("commit").await.unwrap();
    let (c, value) = match tokio::time::timeout(DEADLINE, c_query).await {
        Ok(joined) => joined.unwrap(),
        Err(_) => panic!("C never got the server B left\n{}", p.log()),
    };
    assert_eq!(value, "C");
    // Still one server, and it takes turns between the clients left.
    let pid = simple_value(&a, "select pg_backend_pid()").await;
    for _ in 0..3 {
        assert_eq!(simple_value(&c, "select pg_backend_pid()").await, pid);
        assert_eq!(simple_value(&a, "select pg_backend_pid()").await, pid);
    }
    assert_eq!(
        backends_of(&su, &db, MD5_USER, "%").await,
        1,
        "one server for a pool of one"
    );
}

#[tokio::test]
async fn an_idle_server_terminated_by_the_dba_is_replaced_transparently() {
    let (p, db) = db_pooler("default_pool_size = 1");
    let su = shared_cluster().superuser_client("postgres").await;
    let (a, _ta) = login(&p, &db).await;
    let before = simple_value(&a, "select pg_backend_pid()").await;
    let idle: Vec<i32> = su
        .query(
            "select pid from pg_stat_activity \
             where usename = $1 and datname = $2 and state = 'idle'",
            &[&MD5_USER, &db],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(idle.len(), 1, "the one pooled server is idle: {idle:?}");
    assert_eq!(idle[0].to_string(), before);
    let terminated: bool = su
        .query_one("select pg_terminate_backend($1)", &[&idle[0]])
        .await
        .unwrap()
        .get(0);
    assert!(terminated);
    wait_until("the terminated backend to exit", DEADLINE, || async {
        backends_of(&su, &db, MD5_USER, "%").await == 0
    })
    .await;
    // The next request finds the dead server before sending anything to it.
    let after = match a.simple_query("select pg_backend_pid()").await {
        Ok(msgs) => match &msgs[1] {
            SimpleQueryMessage::Row(row) => row.get(0).unwrap().to_owned(),
            other => panic!("a row: {other:?}"),
        },
        Err(e) => panic!("the client saw the dead idle server: {e:?}\n{}", p.log()),
    };
    assert_ne!(after, before, "a new server");
    assert_eq!(simple_value(&a, "select 'still fine'").await, "still fine");
}

#[tokio::test]
async fn a_busy_server_terminated_fails_only_its_client_and_the_pool_recovers() {
    let (p, db) = db_pooler("default_pool_size = 2");
    let su = shared_cluster().superuser_client("postgres").await;
    let (a, _ta) = login(&p, &db).await;
    let (b, _tb) = login(&p, &db).await;
    let marker = unique_name("busy");
    let sql = format!("select pg_sleep(30) /* {marker} */");
    let sleeper = tokio::spawn(async move { a.simple_query(&sql).await.map(|_| ()) });
    let pid = busy_pid(&su, &db, &marker).await;
    let terminated: bool = su
        .query_one("select pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap()
        .get(0);
    assert!(terminated);
    let result = match tokio::time::timeout(DEADLINE, sleeper).await {
        Ok(joined) => joined.unwrap(),
        Err(_) => panic!("A never heard its server died\n{}", p.log()),
    };
    let err = result.expect_err("A's query was in flight on the terminated server");
    let code = sqlstate(&err);
    assert!(
        matches!(code, Some("57P01") | Some("08006")),
        "server connection lost, or Postgres's termination notice: {err:?}\n{}",
        p.log()
    );
    // B never noticed, a new client is served, and the pool is back to its size.
    assert_eq!(simple_value(&b, "select 'b ok'").await, "b ok");
    let (c, _tc) = login(&p, &db).await;
    assert_eq!(simple_value(&c, "select 'c ok'").await, "c ok");
    c.batch_execute("begin").await.unwrap();
    assert_eq!(simple_value(&b, "select 'b again'").await, "b again");
    c.batch_execute("commit").await.unwrap();
    assert!(backends_of(&su, &db, MD5_USER, "%").await <= 2);
}

#[tokio::test]
async fn a_client_killed_mid_transaction_leaves_no_locks_and_its_server_serves_again() {
    let (p, db) = db_pooler("default_pool_size = 1");
    let su = shared_cluster().superuser_client(&db).await;
    let table = unique_name("killed");
    su.batch_execute(&format!(
        "create table {table}(n int); grant all on {table} to public"
    ))
    .await
    .unwrap();
    let (k, k_conn) = login(&p, &db).await;
    k.batch_execute(&format!(
        "begin; insert into {table} values (1); lock table {table} in access exclusive mode"
    ))
    .await
    .unwrap();
    assert_eq!(
        backends_of(&su, &db, MD5_USER, "idle in transaction%").await,
        1
    );
    // The client process dies: its socket closes with the transaction open.
    k_conn.abort();
    assert!(k_conn.await.is_err());
    drop(k);
    wait_until("no idle-in-transaction backend", DEADLINE, || async {
        backends_of(&su, &db, MD5_USER, "idle in transaction%").await == 0
    })
    .await;
    let locks: i64 = su
        .query_one(
            "select count(*) from pg_locks l join pg_class c on c.oid = l.relation \
             where c.relname = $1 and l.pid <> pg_backend_pid()",
            &[&table],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(locks, 0, "locks left on {table}");
    // The pool of one serves the next client, and the killed transaction was rolled back.
    let (n, _tn) = login(&p, &db).await;
    n.batch_execute(&format!(
        "begin; set local lock_timeout = '20s'; lock table {table} in access exclusive mode"
    ))
    .await
    .unwrap();
    assert_eq!(
        simple_value(&n, &format!("select count(*) from {table}")).await,
        "0"
    );
    n.batch_execute("commit").await.unwrap();
    assert_eq!(
        backends_of(&su, &db, MD5_USER, "%").await,
        1,
        "the pool is back to one server"
    );
}

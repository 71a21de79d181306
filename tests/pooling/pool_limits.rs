//! Pool limits and maintenance seen from outside: what reaches Postgres (pg_stat_activity per
//! database and user) under max_db_connections, max_user_connections, reserve_pool_size,
//! min_pool_size, server_idle_timeout and server_lifetime, and that clients held back by a
//! limit proceed, with no error, once room is made. Session mode: a client holds its server
//! from login to disconnect, so "connected" means "holds a server".

use std::time::Duration;

use crate::common::*;
use tokio::task::JoinHandle;
use tokio_postgres::Client;

const LONG: Duration = Duration::from_secs(60);

/// Client backends on `db` (of `user`, if given), as Postgres sees them.
async fn servers(admin: &Client, db: &str, user: Option<&str>) -> i64 {
    admin
        .query_one(
            "select count(*) from pg_stat_activity where backend_type = 'client backend' \
             and datname = $1 and usename = coalesce($2, usename)",
            &[&db, &user],
        )
        .await
        .unwrap()
        .get(0)
}

async fn wait_for_servers(admin: &Client, db: &str, user: Option<&str>, n: i64) {
    let what = format!("{n} server connection(s) on {db} for {user:?}");
    wait_until(&what, LONG, || async {
        servers(admin, db, user).await == n
    })
    .await;
}

async fn backend_pid(client: &Client) -> i32 {
    client
        .query_one("select pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

/// A client logging in through the pooler in the background; it answers `select 1` once in.
fn connect_later(
    p: &Pooler,
    user: &str,
    password: &str,
    db: &str,
) -> JoinHandle<(Client, ConnTask)> {
    let mut cfg = p.connect_config();
    cfg.user(user).password(password).dbname(db);
    tokio::spawn(async move {
        let (client, task) = connect_with(&cfg).await.expect("login through the pooler");
        let one: i32 = client.query_one("select 1", &[]).await.unwrap().get(0);
        assert_eq!(one, 1);
        (client, task)
    })
}

/// Gives a held-back client time to reach the pooler's queue; the assertions that follow
/// check it is still waiting (an outcome), not how long anything took.
async fn let_it_queue() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

fn fresh_database() -> String {
    let db = unique_name("db");
    shared_cluster().create_database(&db);
    db
}

#[tokio::test]
async fn max_db_connections_is_shared_by_users_served_in_arrival_order() {
    let db = fresh_database();
    let p = Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler("default_pool_size = 5\nquery_wait_timeout = \"60s\"")
            .database(&db, "max_db_connections = 1"),
    );
    let admin = shared_cluster().superuser_client("postgres").await;

    let (alice, alice_task) = p.connect(MD5_USER, MD5_PASS, &db).await.unwrap();
    let bob = connect_later(&p, PLAIN_USER, PLAIN_PASS, &db);
    let_it_queue().await;
    // A second client of alice's pool arrives after bob.
    let alice2 = connect_later(&p, MD5_USER, MD5_PASS, &db);
    let_it_queue().await;
    assert!(
        !bob.is_finished(),
        "bob waits: the database is at max_db_connections"
    );
    assert!(!alice2.is_finished());
    assert_eq!(servers(&admin, &db, None).await, 1);
    // Others keep working: another database of the same pooler is not limited.
    let (other, _t) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    other.simple_query("select 1").await.unwrap();

    // Alice leaves. Her server would suit alice2, but bob came first: it is closed to make
    // room for bob, so a busy pool cannot starve another one of the same database.
    drop(alice);
    alice_task.await.unwrap().unwrap();
    let (bob, bob_task) = tokio::time::timeout(LONG, bob)
        .await
        .expect("bob served")
        .unwrap();
    bob.simple_query("select 1").await.unwrap();
    wait_for_servers(&admin, &db, Some(MD5_USER), 0).await;
    assert_eq!(servers(&admin, &db, Some(PLAIN_USER)).await, 1);
    assert!(!alice2.is_finished(), "the limit still holds");

    drop(bob);
    bob_task.await.unwrap().unwrap();
    let (alice2, _t) = tokio::time::timeout(LONG, alice2)
        .await
        .expect("alice2 served")
        .unwrap();
    alice2.simple_query("select 1").await.unwrap();
    wait_for_servers(&admin, &db, Some(PLAIN_USER), 0).await;
    assert_eq!(servers(&admin, &db, None).await, 1);
}

#[tokio::test]
async fn max_user_connections_spans_databases() {
    let (one, two) = (fresh_database(), fresh_database());
    let p = Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler("max_user_connections = 1\nquery_wait_timeout = \"60s\"")
            .database(&one, "")
            .database(&two, ""),
    );
    let admin = shared_cluster().superuser_client("postgres").await;
    let on_both = || async {
        servers(&admin, &one, Some(MD5_USER)).await + servers(&admin, &two, Some(MD5_USER)).await
    };

    let (first, first_task) = p.connect(MD5_USER, MD5_PASS, &one).await.unwrap();
    let second = connect_later(&p, MD5_USER, MD5_PASS, &two);
    let_it_queue().await;
    assert!(!second.is_finished(), "md5_user is at max_user_connections");
    assert_eq!(on_both().await, 1);
    // Another user on the same database is not held back.
    let (plain, _t) = p.connect(PLAIN_USER, PLAIN_PASS, &two).await.unwrap();
    plain.simple_query("select 1").await.unwrap();

    drop(first);
    first_task.await.unwrap().unwrap();
    let (second, _t) = tokio::time::timeout(LONG, second)
        .await
        .expect("served")
        .unwrap();
    second.simple_query("select 1").await.unwrap();
    wait_for_servers(&admin, &one, Some(MD5_USER), 0).await;
    assert_eq!(servers(&admin, &two, Some(MD5_USER)).await, 1);
}

#[tokio::test]
async fn a_client_that_waited_reserve_pool_timeout_gets_a_reserve_server() {
    let db = fresh_database();
    let p = Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler(
                "default_pool_size = 1\nreserve_pool_size = 1\nreserve_pool_timeout = \"200ms\"\n\
                 query_wait_timeout = \"60s\"",
            )
            .database(&db, ""),
    );
    let admin = shared_cluster().superuser_client("postgres").await;
    let (first, _t1) = p.connect(MD5_USER, MD5_PASS, &db).await.unwrap();
    // The pool is full; the second client is served from the reserve, while the first
    // still holds its server.
    let (second, _t2) = tokio::time::timeout(LONG, p.connect(MD5_USER, MD5_PASS, &db))
        .await
        .expect("reserve server within the deadline")
        .unwrap();
    assert_ne!(backend_pid(&first).await, backend_pid(&second).await);
    assert_eq!(servers(&admin, &db, Some(MD5_USER)).await, 2);
    // pool_size + reserve_pool_size is the ceiling.
    let third = connect_later(&p, MD5_USER, MD5_PASS, &db);
    let_it_queue().await;
    assert!(!third.is_finished());
    assert_eq!(servers(&admin, &db, Some(MD5_USER)).await, 2);
    third.abort();
}

#[tokio::test]
async fn min_pool_size_opens_servers_in_the_background() {
    let (forced, plain) = (fresh_database(), fresh_database());
    let p = Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler("default_pool_size = 5")
            // A forced-user database is kept warm with no client at all (as PgBouncer).
            .database(
                &forced,
                &format!("user = \"{MD5_USER}\"\npassword = \"{MD5_PASS}\"\nmin_pool_size = 2"),
            )
            // Any other pool is kept warm while it has a client.
            .database(&plain, "min_pool_size = 3"),
    );
    let admin = shared_cluster().superuser_client("postgres").await;
    wait_for_servers(&admin, &forced, Some(MD5_USER), 2).await;
    assert_eq!(
        servers(&admin, &plain, None).await,
        0,
        "no client, no forced user"
    );

    let (client, _t) = p.connect(PLAIN_USER, PLAIN_PASS, &plain).await.unwrap();
    client.simple_query("select 1").await.unwrap();
    wait_for_servers(&admin, &plain, Some(PLAIN_USER), 3).await;
}

#[tokio::test]
async fn servers_idle_longer_than_server_idle_timeout_are_closed() {
    let db = fresh_database();
    let p = Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler("server_idle_timeout = \"1s\"")
            .database(&db, ""),
    );
    let admin = shared_cluster().superuser_client("postgres").await;
    let (a, ta) = p.connect(MD5_USER, MD5_PASS, &db).await.unwrap();
    let (b, tb) = p.connect(PLAIN_USER, PLAIN_PASS, &db).await.unwrap();
    a.simple_query("select 1").await.unwrap();
    b.simple_query("select 1").await.unwrap();
    assert_eq!(servers(&admin, &db, None).await, 2);
    drop((a, b));
    ta.await.unwrap().unwrap();
    tb.await.unwrap().unwrap();
    wait_for_servers(&admin, &db, None, 0).await;
    // The pool still serves afterwards.
    let (c, _t) = p.connect(MD5_USER, MD5_PASS, &db).await.unwrap();
    c.simple_query("select 1").await.unwrap();
}

#[tokio::test]
async fn a_server_past_server_lifetime_is_replaced_after_release_never_during_use() {
    let db = fresh_database();
    let p = Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler("default_pool_size = 1\nserver_lifetime = \"1s\"")
            .database(&db, ""),
    );
    let (a, ta) = p.connect(MD5_USER, MD5_PASS, &db).await.unwrap();
    let first = backend_pid(&a).await;
    a.batch_execute("begin").await.unwrap();
    // Older than server_lifetime while in use: the client keeps its server and transaction.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(backend_pid(&a).await, first);
    a.batch_execute("commit").await.unwrap();
    drop(a);
    ta.await.unwrap().unwrap();

    let (b, _tb) = p.connect(MD5_USER, MD5_PASS, &db).await.unwrap();
    assert_ne!(
        backend_pid(&b).await,
        first,
        "retired on release, replaced by a new one"
    );
    let admin = shared_cluster().superuser_client("postgres").await;
    wait_for_servers(&admin, &db, None, 1).await;
}

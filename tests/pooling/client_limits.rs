//! The remaining limits and server checks, end to end: client-count limits per database and
//! per user (53300 at login, others unaffected), server_reset_query_always, server_check_query
//! after server_check_delay, and server_connect_timeout against a server that never answers.

use std::time::Duration;

use crate::common::*;

async fn pid(c: &tokio_postgres::Client) -> String {
    match &c.simple_query("select pg_backend_pid()").await.unwrap()[1] {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).unwrap().to_string(),
        other => panic!("a row: {other:?}"),
    }
}

#[tokio::test]
async fn max_db_client_connections_refuses_the_extra_client_of_that_database() {
    let p = Pooler::start(
        PoolerConfig::new(shared_cluster()).database(TEST_DB, "max_db_client_connections = 2"),
    );
    let (a, _ta) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    let (_b, _tb) = p.connect(SCRAM_USER, SCRAM_PASS, TEST_DB).await.unwrap();
    let err = p
        .connect(PLAIN_USER, PLAIN_PASS, TEST_DB)
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), Some("53300"), "{err:?}");
    assert!(err
        .as_db_error()
        .unwrap()
        .message()
        .contains("max_db_client_connections"));
    drop(a);
    wait_until("a place to free up", Duration::from_secs(30), || async {
        p.connect(PLAIN_USER, PLAIN_PASS, TEST_DB).await.is_ok()
    })
    .await;
}

#[tokio::test]
async fn max_user_client_connections_refuses_the_extra_client_of_that_user() {
    let p = Pooler::start(
        PoolerConfig::new(shared_cluster()).user(MD5_USER, "max_user_client_connections = 1"),
    );
    let (_a, _ta) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    let err = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap_err();
    assert_eq!(sqlstate(&err), Some("53300"), "{err:?}");
    // Another user is not limited.
    let (b, _tb) = p.connect(SCRAM_USER, SCRAM_PASS, TEST_DB).await.unwrap();
    b.simple_query("select 1").await.unwrap();
}

#[tokio::test]
async fn unreported_settings_never_reach_another_client_with_or_without_reset_query_always() {
    let leaky = Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler("pool_mode = \"transaction\"\ndefault_pool_size = 1"),
    );
    let clean = Pooler::start(PoolerConfig::new(shared_cluster()).pooler(
        "pool_mode = \"transaction\"\ndefault_pool_size = 1\nserver_reset_query_always = true",
    ));
    for (p, always) in [(&leaky, false), (&clean, true)] {
        let (a, _ta) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
        let (b, _tb) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
        a.simple_query("set statement_timeout = '7s'")
            .await
            .unwrap();
        let seen = match &b.simple_query("show statement_timeout").await.unwrap()[1] {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).unwrap().to_string(),
            other => panic!("a row: {other:?}"),
        };
        // A's setting follows A; B, on the same server, sees the default either way.
        assert_eq!(seen, "0", "server_reset_query_always = {always}");
        let own = match &a.simple_query("show statement_timeout").await.unwrap()[1] {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).unwrap().to_string(),
            other => panic!("a row: {other:?}"),
        };
        assert_eq!(own, "7s", "server_reset_query_always = {always}");
    }
}

#[tokio::test]
async fn server_check_query_failing_replaces_the_pooled_server() {
    let checked = Pooler::start(PoolerConfig::new(shared_cluster()).pooler(
        "pool_mode = \"transaction\"\ndefault_pool_size = 1\nserver_check_delay = 0\nserver_check_query = \"select 1/0\"",
    ));
    let (c, _t) = checked.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    let first = pid(&c).await;
    assert_ne!(
        pid(&c).await,
        first,
        "a failed check closes the server and opens another"
    );
    let unchecked =
        Pooler::start(PoolerConfig::new(shared_cluster()).pooler(
            "pool_mode = \"transaction\"\ndefault_pool_size = 1\nserver_check_delay = \"1h\"",
        ));
    let (c, _t) = unchecked
        .connect(MD5_USER, MD5_PASS, TEST_DB)
        .await
        .unwrap();
    let first = pid(&c).await;
    assert_eq!(pid(&c).await, first, "no check: the warm server is reused");
}

#[tokio::test]
async fn server_connect_timeout_bounds_a_server_that_never_answers() {
    // Accepts TCP connections (the kernel does) but never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let p = Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler("server_connect_timeout = \"200ms\"\nquery_wait_timeout = \"1s\"")
            .database(
                "silent",
                &format!("host = \"127.0.0.1\"\nport = {port}\ndbname = \"x\""),
            ),
    );
    let err = p.connect(MD5_USER, MD5_PASS, "silent").await.unwrap_err();
    let db = err.as_db_error().expect("an ErrorResponse, not a hang");
    assert_eq!(db.code().code(), "08006", "{db:?}");
    assert!(db.message().contains("timed out"), "{}", db.message());
    // The real database is unaffected.
    let (c, _t) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    c.simple_query("select 1").await.unwrap();
    drop(silent);
}

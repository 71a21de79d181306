//! Named prepared statements against the pooler's bounds and modes, with a raw
//! client: eviction under max_prepared_statements, the per-client statement limit, statements
//! told apart by search_path on one shared server, statement pooling, and session pooling
//! passing names through untouched.

use crate::common::raw::Step;
use crate::common::raw::{
    assert_same_replies, assert_single_fatal, play, tags, Frontend, RawClient,
};
use crate::common::scripts::{run_statement, values};
use crate::common::*;
use Step::{Send, UntilReady};

fn pooler(mode: &str, pool_size: usize, extra: &str) -> Pooler {
    Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler(&format!("pool_mode = \"{mode}\""))
            .pooler(&format!("default_pool_size = {pool_size}"))
            .pooler(extra),
    )
}

async fn pooled(p: &Pooler, params: &[(&str, &str)]) -> RawClient {
    RawClient::connect(p, MD5_USER, MD5_PASS, params).await
}

/// Statements prepared on the server `c` is on (a pool of one: always the same).
async fn server_statements(c: &mut RawClient) -> usize {
    c.query_value("select count(*) from pg_prepared_statements")
        .await
        .parse()
        .unwrap()
}

#[tokio::test]
async fn eviction_keeps_the_server_within_max_prepared_statements() {
    let p = pooler("transaction", 1, "max_prepared_statements = 2");
    let mut a = pooled(&p, &[]).await;
    // B shares the server and some of the texts, under its own names.
    let mut b = pooled(&p, &[]).await;
    let text = |i: usize| format!("select {i} as n{i}");
    for i in 0..10 {
        a.send(Frontend::new().parse(&format!("s{i}"), &text(i)).sync())
            .await;
        assert_eq!(tags(&a.recv_until_ready().await), "1Z");
        let n = server_statements(&mut a).await;
        assert!(n <= 2, "{n} statements on the server after Parse s{i}");
    }
    let order = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 3, 7, 1, 5, 0, 8, 2, 6, 4];
    for (step, &i) in order.iter().enumerate() {
        a.send(run_statement(&format!("s{i}"))).await;
        let got = a.recv_until_ready().await;
        assert_eq!(tags(&got), "2DCZ", "s{i}: {got:?}\n{}", p.log());
        assert_eq!(values(&got), [i.to_string()]);
        if step % 3 == 0 {
            let name = format!("b{i}");
            b.send(
                Frontend::new()
                    .parse(&name, &text(i))
                    .bind("", &name, &[])
                    .execute("", 0)
                    .sync()
                    .close_statement(&name)
                    .sync(),
            )
            .await;
            let got = b.recv_until_ready().await;
            assert_eq!(values(&got), [i.to_string()], "{got:?}");
            assert_eq!(tags(&b.recv_until_ready().await), "3Z");
        }
        let n = server_statements(&mut a).await;
        assert!(n <= 2, "{n} statements on the server after running s{i}");
    }
    let foreign = a
        .query_value("select count(*) from pg_prepared_statements where name !~ '^pgsluice_'")
        .await;
    assert_eq!(foreign, "0", "only pgsluice's own names reach the server");
}

#[tokio::test]
async fn statements_pinned_by_one_request_are_evicted_by_the_next_parse() {
    let p = pooler("transaction", 1, "max_prepared_statements = 2");
    let mut a = pooled(&p, &[]).await;
    // One request uses five statements: all stay prepared while it runs.
    let mut batch = Frontend::new();
    for i in 0..5 {
        let name = format!("s{i}");
        batch = batch
            .parse(&name, &format!("select {i} as n"))
            .bind("", &name, &[])
            .execute("", 0);
    }
    a.send(batch.sync()).await;
    let got = a.recv_until_ready().await;
    assert_eq!(values(&got), ["0", "1", "2", "3", "4"], "{got:?}");
    // The next statement pgsluice prepares brings the server back within the bound.
    a.send(Frontend::new().parse("s5", "select 5 as n").sync())
        .await;
    assert_eq!(tags(&a.recv_until_ready().await), "1Z");
    let n = server_statements(&mut a).await;
    assert!(n <= 2, "{n} statements on the server");
    for i in [4, 0, 5, 2] {
        a.send(run_statement(&format!("s{i}"))).await;
        assert_eq!(values(&a.recv_until_ready().await), [i.to_string()]);
        let n = server_statements(&mut a).await;
        assert!(n <= 2, "{n} statements on the server after s{i}");
    }
}

#[tokio::test]
async fn the_same_text_under_another_search_path_is_another_statement() {
    let (sa, sb) = (unique_name("ps_path_a"), unique_name("ps_path_b"));
    let admin = shared_cluster().superuser_client(TEST_DB).await;
    for s in [&sa, &sb] {
        admin
            .batch_execute(&format!(
                "create schema {s}; create table {s}.t(v text); \
                 insert into {s}.t values ('from {s}'); \
                 grant usage on schema {s} to public; grant select on {s}.t to public"
            ))
            .await
            .unwrap();
    }
    let p = pooler("transaction", 1, "");
    let (oa, ob) = (
        format!("-c search_path={sa}"),
        format!("-c search_path={sb}"),
    );
    let mut a = pooled(&p, &[("options", &oa)]).await;
    let mut b = pooled(&p, &[("options", &ob)]).await;
    let prepare = Frontend::new()
        .parse("q", "select v from t")
        .bind("", "q", &[])
        .execute("", 0)
        .sync();
    for (c, schema) in [(&mut a, &sa), (&mut b, &sb)] {
        c.send(prepare.clone()).await;
        let got = c.recv_until_ready().await;
        assert_eq!(values(&got), [format!("from {schema}")], "{got:?}");
    }
    for _ in 0..3 {
        for (c, schema) in [(&mut b, &sb), (&mut a, &sa)] {
            c.send(run_statement("q")).await;
            let got = c.recv_until_ready().await;
            assert_eq!(
                values(&got),
                [format!("from {schema}")],
                "{got:?}\n{}",
                p.log()
            );
        }
    }
}

#[tokio::test]
async fn statement_mode_keeps_a_name_from_one_request_to_the_next() {
    let script = [
        Send(
            Frontend::new()
                .parse("s", "select $1::int4 * 2 as d")
                .sync(),
        ),
        UntilReady,
        Send(
            Frontend::new()
                .bind("", "s", &[Some("21")])
                .execute("", 0)
                .sync(),
        ),
        UntilReady,
        // Both in one write: two statements, released after each Sync.
        Send(
            Frontend::new()
                .parse("t", "select 'tee' as t")
                .sync()
                .bind("", "t", &[])
                .execute("", 0)
                .sync(),
        ),
        UntilReady,
        UntilReady,
    ];
    let mut d = RawClient::connect_direct(shared_cluster(), MD5_USER, MD5_PASS, &[]).await;
    let expected = play(&mut d, &script).await;
    let p = pooler("statement", 2, "");
    let mut a = pooled(&p, &[]).await;
    let mut b = pooled(&p, &[]).await;
    let mut got = Vec::new();
    for pair in script.chunks(2) {
        got.extend(play(&mut a, pair).await);
        // B runs its own named statement between A's requests.
        b.send(
            Frontend::new()
                .parse("s", "select 'b' as b")
                .bind("", "s", &[])
                .execute("", 0)
                .sync()
                .close_statement("s")
                .sync(),
        )
        .await;
        assert_eq!(values(&b.recv_until_ready().await), ["b"]);
        assert_eq!(tags(&b.recv_until_ready().await), "3Z");
    }
    assert_same_replies(&got, &expected, &p.log());
    assert_eq!(tags(&got), "1Z2DCZ1Z2DCZ");
    assert_eq!(values(&got), ["42", "tee"]);
}

#[tokio::test]
async fn a_client_past_max_client_prepared_statements_gets_53400() {
    let p = pooler("transaction", 2, "max_client_prepared_statements = 3");
    let mut a = pooled(&p, &[]).await;
    let mut b = pooled(&p, &[]).await;
    for i in 1..=3 {
        a.send(Frontend::new().parse(&format!("s{i}"), "select 1").sync())
            .await;
        assert_eq!(tags(&a.recv_until_ready().await), "1Z");
    }
    // A duplicate name is no new statement: the usual 42P05, the connection goes on.
    a.send(Frontend::new().parse("s1", "select 1").sync()).await;
    let got = a.recv_until_ready().await;
    assert_eq!(got[0].sqlstate().as_deref(), Some("42P05"), "{got:?}");
    // Closing one makes room for another.
    a.send(
        Frontend::new()
            .close_statement("s3")
            .parse("s4", "select 4")
            .sync(),
    )
    .await;
    assert_eq!(tags(&a.recv_until_ready().await), "31Z");
    a.send(Frontend::new().parse("s5", "select 5").sync()).await;
    let message = assert_single_fatal(&a.recv_until_closed().await, "53400", "4th statement");
    assert!(
        message.contains("limit is 3"),
        "the message names the limit: {message}"
    );
    // Other clients go on, with their own statements.
    for i in 1..=3 {
        let name = format!("b{i}");
        b.send(
            Frontend::new()
                .parse(&name, &format!("select {i}"))
                .bind("", &name, &[])
                .execute("", 0)
                .sync(),
        )
        .await;
        assert_eq!(values(&b.recv_until_ready().await), [i.to_string()]);
    }
}

#[tokio::test]
async fn session_mode_passes_statement_names_through() {
    let p = pooler("session", 2, "");
    let mut a = pooled(&p, &[]).await;
    a.send(
        Frontend::new()
            .parse("MyStmt", "select 'mine' as m")
            .bind("", "MyStmt", &[])
            .execute("", 0)
            .sync(),
    )
    .await;
    assert_eq!(values(&a.recv_until_ready().await), ["mine"]);
    let names = a
        .query_value("select string_agg(name, ',' order by name) from pg_prepared_statements")
        .await;
    assert_eq!(names, "MyStmt");
    // Duplicates and missing names are Postgres's own answers, naming the client's name.
    a.send(Frontend::new().parse("MyStmt", "select 2").sync())
        .await;
    let got = a.recv_until_ready().await;
    assert_eq!(
        got[0].field(b'M').as_deref(),
        Some("prepared statement \"MyStmt\" already exists")
    );
}

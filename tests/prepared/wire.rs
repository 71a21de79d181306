//! Named prepared statements in transaction pooling at the wire level, with a raw
//! client: each script is played straight to Postgres and through pgsluice, and the replies
//! must be identical byte for byte — while, through pgsluice, the client is moved from one
//! server to the other between its requests (`Hold`), so statements must be prepared again
//! on a server that never saw them, without the client noticing.

use crate::common::raw::{assert_same_replies, play, tags, Backend, Frontend, RawClient, Step};
use crate::common::scripts::{errors, run_statement, statuses, transaction_pooler, values};
use crate::common::*;
use tokio_postgres::{Client, SimpleQueryMessage};
use Step::{Expect, Send, UntilReady};

fn tx_pooler(pool_size: usize) -> Pooler {
    transaction_pooler(&format!("default_pool_size = {pool_size}"))
}

async fn direct() -> RawClient {
    RawClient::connect_direct(shared_cluster(), MD5_USER, MD5_PASS, &[]).await
}

async fn pooled(p: &Pooler) -> RawClient {
    RawClient::connect(p, MD5_USER, MD5_PASS, &[]).await
}

fn context(p: &Pooler) -> String {
    log_tail(&p.log(), 40)
}

/// A tokio-postgres client inside a transaction, so it holds one pooled server.
struct Hold {
    client: Client,
    pid: String,
}

impl Hold {
    async fn take(p: &Pooler) -> Hold {
        let (client, _task) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
        client.batch_execute("begin").await.unwrap();
        // Simple protocol: the holder itself uses no named statement.
        let msgs = client
            .simple_query("select pg_backend_pid()")
            .await
            .unwrap();
        let pid = msgs
            .iter()
            .find_map(|m| match m {
                SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                _ => None,
            })
            .expect("a pid");
        Hold { client, pid }
    }

    async fn release(self) {
        self.client.batch_execute("commit").await.unwrap();
    }

    /// On a pool of two servers: holds the one that is not `free_pid`, so the next request
    /// of any other client runs on server `free_pid`.
    async fn all_but(p: &Pooler, free_pid: &str) -> Hold {
        let first = Hold::take(p).await;
        let second = Hold::take(p).await;
        let (keep, give_back) = if first.pid == free_pid {
            (second, first)
        } else {
            (first, second)
        };
        assert_eq!(give_back.pid, free_pid, "a pool of two servers");
        give_back.release().await;
        keep
    }
}

/// Plays `before` on one server and `after` on the other, through pgsluice (pool of two),
/// and both straight to Postgres; asserts identical replies and returns them.
async fn moved_between(before: &[Step], after: &[Step]) -> Vec<Backend> {
    let mut d = direct().await;
    let mut expected = play(&mut d, before).await;
    expected.extend(play(&mut d, after).await);

    let p = tx_pooler(2);
    let mut a = pooled(&p).await;
    let x = Hold::take(&p).await;
    let mut got = play(&mut a, before).await;
    let x_pid = x.pid.clone();
    x.release().await;
    let y = Hold::all_but(&p, &x_pid).await;
    got.extend(play(&mut a, after).await);
    // Y is still held: this runs where `after` ran, and proves that was the other server.
    let now = a.query_value("select pg_backend_pid()").await;
    y.release().await;
    assert_eq!(now, x_pid, "the client moved to the other server");
    assert_same_replies(&got, &expected, &context(&p));
    got
}

fn missing(name: &str) -> (String, String) {
    (
        "26000".into(),
        format!("prepared statement \"{name}\" does not exist"),
    )
}

#[tokio::test]
async fn parse_describe_flush_then_bind_execute_sync_in_a_later_write() {
    // The Flush keeps the server until the Sync (transaction_flows.rs); same bytes as Postgres.
    let flush = [
        Send(
            Frontend::new()
                .parse("s1", "select $1::int4 + 1 as n")
                .describe_statement("s1")
                .flush(),
        ),
        Expect(3),
    ];
    let sync = [
        Send(
            Frontend::new()
                .bind("", "s1", &[Some("41")])
                .execute("", 0)
                .sync(),
        ),
        UntilReady,
    ];
    let mut d = direct().await;
    let mut expected = play(&mut d, &flush).await;
    expected.extend(play(&mut d, &sync).await);
    let p = tx_pooler(2);
    let mut a = pooled(&p).await;
    let mut got = play(&mut a, &flush).await;
    // Another client takes the other server in between; A's statement is still there.
    let other = Hold::take(&p).await;
    other.release().await;
    got.extend(play(&mut a, &sync).await);
    assert_same_replies(&got, &expected, &context(&p));
    assert_eq!(tags(&got), "1tT2DCZ");
    assert_eq!(values(&got), ["42"]);
}

#[tokio::test]
async fn statement_described_before_a_sync_runs_on_another_server() {
    let before = [
        Send(
            Frontend::new()
                .parse("s1", "select $1::int4 + 1 as n")
                .describe_statement("s1")
                .flush(),
        ),
        Expect(3),
        Send(Frontend::new().sync()),
        UntilReady,
    ];
    let after = [
        Send(
            Frontend::new()
                .bind("", "s1", &[Some("41")])
                .execute("", 0)
                .sync(),
        ),
        UntilReady,
        Send(
            Frontend::new()
                .describe_statement("s1")
                .bind("", "s1", &[Some("1")])
                .execute("", 0)
                .sync(),
        ),
        UntilReady,
    ];
    let got = moved_between(&before, &after).await;
    assert_eq!(tags(&got), "1tTZ2DCZtT2DCZ");
    assert_eq!(values(&got), ["42", "2"]);
}

#[tokio::test]
async fn an_error_mid_pipeline_forgets_only_the_failed_statement() {
    let pipeline = Frontend::new()
        .parse("s1", "select 'one' as a")
        .bind("", "s1", &[])
        .execute("", 0)
        .sync()
        .parse("s2", "selec 'two'")
        .bind("", "s2", &[])
        .execute("", 0)
        .sync()
        .parse("s3", "select 'three' as c")
        .bind("", "s3", &[])
        .execute("", 0)
        .sync();
    let before = [
        Send(pipeline),
        UntilReady,
        UntilReady,
        UntilReady,
        Send(run_statement("s2")),
        UntilReady,
    ];
    let after = [
        Send(run_statement("s1")),
        UntilReady,
        Send(run_statement("s2")),
        UntilReady,
        Send(run_statement("s3")),
        UntilReady,
    ];
    let got = moved_between(&before, &after).await;
    assert_eq!(tags(&got), "12DCZEZ12DCZEZ2DCZEZ2DCZ");
    assert_eq!(values(&got), ["one", "three", "one", "three"]);
    let errs = errors(&got);
    assert_eq!(errs[0].0, "42601");
    assert_eq!(errs[1..], [missing("s2"), missing("s2")]);
    assert_eq!(statuses(&got), "IIIIIII");
}

#[tokio::test]
async fn closed_names_are_reused_and_unknown_names_close_fine() {
    let before = [
        Send(
            Frontend::new()
                .parse("s", "select 'old' as v")
                .bind("", "s", &[])
                .execute("", 0)
                .sync(),
        ),
        UntilReady,
        Send(Frontend::new().close_statement("s").sync()),
        UntilReady,
        Send(
            Frontend::new()
                .parse("s", "select 'new' as v, 2 as w")
                .sync(),
        ),
        UntilReady,
    ];
    let after = [
        Send(run_statement("s")),
        UntilReady,
        // Close and Parse again in one pipeline.
        Send(
            Frontend::new()
                .close_statement("s")
                .parse("s", "select 'newer' as x")
                .bind("", "s", &[])
                .execute("", 0)
                .sync(),
        ),
        UntilReady,
        Send(
            Frontend::new()
                .close_statement("never")
                .close_statement("s")
                .close_statement("s")
                .sync(),
        ),
        UntilReady,
        Send(run_statement("s")),
        UntilReady,
    ];
    let got = moved_between(&before, &after).await;
    assert_eq!(tags(&got), "12DCZ3Z1Z2DCZ312DCZ333ZEZ");
    assert_eq!(values(&got), ["old", "new", "newer"]);
    assert_eq!(errors(&got), [missing("s")]);
}

#[tokio::test]
async fn a_closed_name_does_not_touch_another_clients_statement_of_the_same_text() {
    let p = tx_pooler(1);
    let mut b = pooled(&p).await;
    b.send(Frontend::new().parse("s", "select 'old' as v").sync())
        .await;
    assert_eq!(tags(&b.recv_until_ready().await), "1Z");
    let script = [
        // The server has this text already (B's): ParseComplete is pgsluice's own.
        Send(
            Frontend::new()
                .parse("s", "select 'old' as v")
                .bind("", "s", &[])
                .execute("", 0)
                .sync(),
        ),
        UntilReady,
        Send(Frontend::new().close_statement("s").sync()),
        UntilReady,
        Send(
            Frontend::new()
                .parse("s", "select 'mine' as v")
                .bind("", "s", &[])
                .execute("", 0)
                .sync(),
        ),
        UntilReady,
    ];
    let expected = play(&mut direct().await, &script).await;
    let mut a = pooled(&p).await;
    let got = play(&mut a, &script).await;
    assert_same_replies(&got, &expected, &context(&p));
    assert_eq!(values(&got), ["old", "mine"]);
    b.send(run_statement("s")).await;
    let got = b.recv_until_ready().await;
    assert_eq!(values(&got), ["old"], "{got:?}\n{}", context(&p));
}

#[tokio::test]
async fn duplicate_parse_fails_as_on_postgres_and_aborts_a_transaction() {
    let before = [
        Send(
            Frontend::new()
                .parse("s", "select 1 as a")
                .bind("", "s", &[])
                .execute("", 0)
                .sync(),
        ),
        UntilReady,
        Send(Frontend::new().parse("s", "select 2").sync()),
        UntilReady,
        Send(Frontend::new().parse("s", "select 1 as a").sync()),
        UntilReady,
    ];
    let after = [
        Send(Frontend::new().query("begin")),
        UntilReady,
        Send(
            Frontend::new()
                .parse("s", "select 2")
                .bind("", "s", &[])
                .execute("", 0)
                .sync(),
        ),
        UntilReady,
        Send(Frontend::new().query("rollback")),
        UntilReady,
        Send(run_statement("s")),
        UntilReady,
    ];
    let got = moved_between(&before, &after).await;
    assert_eq!(tags(&got), "12DCZEZEZCZEZCZ2DCZ");
    let exists = (
        "42P05".to_owned(),
        "prepared statement \"s\" already exists".to_owned(),
    );
    assert_eq!(errors(&got), vec![exists; 3]);
    assert_eq!(statuses(&got), "IIITEII");
    assert_eq!(values(&got), ["1", "1"]);
}

#[tokio::test]
async fn deallocate_and_discard_all_drop_the_clients_names() {
    let before = [
        Send(
            Frontend::new()
                .parse("s1", "select 1 as a")
                .sync()
                .parse("s2", "select 2 as b")
                .sync()
                .parse("s3", "select 3 as c")
                .sync(),
        ),
        UntilReady,
        UntilReady,
        UntilReady,
    ];
    let q = |sql: &str| Send(Frontend::new().query(sql));
    let after = [
        // Moved: pgsluice prepares s1 here first, to deallocate it as Postgres would.
        q("DEALLOCATE s1"),
        UntilReady,
        Send(run_statement("s1")),
        UntilReady,
        Send(run_statement("s2")),
        UntilReady,
        q("deallocate prepare S2;"),
        UntilReady,
        Send(run_statement("s2")),
        UntilReady,
        Send(run_statement("s3")),
        UntilReady,
        q("DEALLOCATE ALL"),
        UntilReady,
        Send(run_statement("s3")),
        UntilReady,
        Send(Frontend::new().parse("s4", "select 4 as d").sync()),
        UntilReady,
        q("DISCARD ALL"),
        UntilReady,
        Send(run_statement("s4")),
        UntilReady,
        q("DEALLOCATE nosuch"),
        UntilReady,
        // The names are free again.
        Send(
            Frontend::new()
                .parse("s1", "select 5 as e")
                .bind("", "s1", &[])
                .execute("", 0)
                .sync(),
        ),
        UntilReady,
    ];
    let got = moved_between(&before, &after).await;
    let tags_of = |tag: u8| -> Vec<String> {
        got.iter()
            .filter(|m| m.tag == tag)
            .map(|m| m.cstrings()[0].clone())
            .collect()
    };
    assert_eq!(
        tags_of(b'C'),
        [
            "DEALLOCATE",
            "SELECT 1",
            "DEALLOCATE",
            "SELECT 1",
            "DEALLOCATE ALL",
            "DISCARD ALL",
            "SELECT 1"
        ]
    );
    assert_eq!(
        errors(&got),
        [
            missing("s1"),
            missing("s2"),
            missing("s3"),
            missing("s4"),
            missing("nosuch")
        ]
    );
    assert_eq!(values(&got), ["2", "3", "5"]);
}

#[tokio::test]
async fn a_failed_parse_leaves_no_stale_name() {
    let before = [
        Send(Frontend::new().parse("s", "selec 'bad'").sync()),
        UntilReady,
    ];
    let after = [
        Send(Frontend::new().parse("s", "selec 'bad again'").sync()),
        UntilReady,
        Send(
            Frontend::new()
                .parse("s", "select 7 as n")
                .bind("", "s", &[])
                .execute("", 0)
                .sync(),
        ),
        UntilReady,
        Send(run_statement("s")),
        UntilReady,
    ];
    let got = moved_between(&before, &after).await;
    assert_eq!(tags(&got), "EZEZ12DCZ2DCZ");
    assert!(errors(&got).iter().all(|(code, _)| code == "42601"));
    assert_eq!(values(&got), ["7", "7"]);
}

#[tokio::test]
async fn describe_statement_matches_postgres_on_any_server() {
    let sql = "select $1::int4 as a, $2::text as b, now() as c";
    let before = [
        Send(
            Frontend::new()
                .parse("s", sql)
                .describe_statement("s")
                .parse("nodata", "reset work_mem")
                .describe_statement("nodata")
                .sync(),
        ),
        UntilReady,
    ];
    let after = [
        // Both prepared here on the way, their ParseCompletes hidden.
        Send(
            Frontend::new()
                .describe_statement("s")
                .describe_statement("nodata")
                .sync(),
        ),
        UntilReady,
        Send(Frontend::new().describe_statement("nope").sync()),
        UntilReady,
    ];
    let got = moved_between(&before, &after).await;
    assert_eq!(tags(&got), "1tT1tnZtTtnZEZ");
    assert_eq!(got[1], got[7], "ParameterDescription of s");
    assert_eq!(got[2], got[8], "RowDescription of s");
    assert_eq!(errors(&got), [missing("nope")]);
}

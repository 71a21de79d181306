//! Named prepared statements in transaction pooling in the corners of the protocol:
//! messages Postgres skips after an error, aborted transactions, DEALLOCATE and DISCARD that
//! fail, and SQL that drops statements behind pgsluice's back. Each script is played straight
//! to Postgres and through pgsluice and the replies must be identical, because a client's
//! statements must behave as on its own Postgres session.

use crate::common::raw::{tags, Frontend, RawClient, Step};
use crate::common::scripts::{same_as_direct, transaction_pooler, values};
use crate::common::*;
use Step::{Send, UntilReady};

fn tx_pooler(extra: &str) -> Pooler {
    transaction_pooler(&format!("default_pool_size = 1\n{extra}"))
}

fn q(sql: &str) -> Step {
    Send(Frontend::new().query(sql))
}

fn prepare_and_run(name: &str, sql: &str) -> Step {
    Send(
        Frontend::new()
            .parse(name, sql)
            .bind("", name, &[])
            .execute("", 0)
            .sync(),
    )
}

fn run(name: &str) -> Step {
    Send(Frontend::new().bind("", name, &[]).execute("", 0).sync())
}

#[tokio::test]
async fn a_name_parsed_again_in_the_pipeline_after_its_parse_failed() {
    let script = [
        Send(
            Frontend::new()
                .parse("s", "selec 'bad'")
                .sync()
                .parse("s", "select 'good' as g")
                .bind("", "s", &[])
                .execute("", 0)
                .sync(),
        ),
        UntilReady,
        UntilReady,
        run("s"),
        UntilReady,
    ];
    let got = same_as_direct(&tx_pooler(""), &script).await;
    assert_eq!(tags(&got), "EZ12DCZ2DCZ");
    assert_eq!(values(&got), ["good", "good"]);
}

#[tokio::test]
async fn a_close_skipped_after_an_error_keeps_the_statement() {
    let script = [
        prepare_and_run("s", "select 'kept' as k"),
        UntilReady,
        Send(
            Frontend::new()
                .parse("", "selec oops")
                .close_statement("s")
                .sync(),
        ),
        UntilReady,
        run("s"),
        UntilReady,
    ];
    let got = same_as_direct(&tx_pooler(""), &script).await;
    assert_eq!(tags(&got), "12DCZEZ2DCZ");
    assert_eq!(values(&got), ["kept", "kept"]);
}

#[tokio::test]
async fn parse_in_an_aborted_transaction_fails_as_on_postgres() {
    let script = [
        q("begin"),
        UntilReady,
        prepare_and_run("s1", "select 1 as one"),
        UntilReady,
        q("select 1/0"),
        UntilReady,
        // Postgres: 25P02, and s2 is not created.
        Send(Frontend::new().parse("s2", "select 1 as one").sync()),
        UntilReady,
        q("rollback"),
        UntilReady,
        prepare_and_run("s2", "select 1 as one"),
        UntilReady,
    ];
    let got = same_as_direct(&tx_pooler(""), &script).await;
    assert_eq!(tags(&got), "CZ12DCZEZEZCZ12DCZ");
}

#[tokio::test]
async fn deallocate_and_discard_that_fail_keep_the_statements() {
    let script = [
        prepare_and_run("s1", "select 1 as one"),
        UntilReady,
        prepare_and_run("s2", "select 2 as two"),
        UntilReady,
        q("begin"),
        UntilReady,
        q("select 1/0"),
        UntilReady,
        q("deallocate s1"),
        UntilReady,
        q("deallocate all"),
        UntilReady,
        q("rollback"),
        UntilReady,
        q("begin"),
        UntilReady,
        q("discard all"),
        UntilReady,
        q("rollback"),
        UntilReady,
        run("s1"),
        UntilReady,
        run("s2"),
        UntilReady,
    ];
    let got = same_as_direct(&tx_pooler(""), &script).await;
    assert_eq!(tags(&got), "12DCZ12DCZCZEZEZEZCZCZEZCZ2DCZ2DCZ");
    assert_eq!(values(&got), ["1", "2", "1", "2"]);
}

#[tokio::test]
async fn deallocate_of_an_evicted_statement_in_an_aborted_transaction() {
    let script = [
        prepare_and_run("s1", "select 1 as one"),
        UntilReady,
        // With room for one statement, s1 leaves the server here.
        prepare_and_run("s2", "select 2 as two"),
        UntilReady,
        q("begin"),
        UntilReady,
        q("select 1/0"),
        UntilReady,
        q("deallocate s1"),
        UntilReady,
        q("rollback"),
        UntilReady,
        run("s1"),
        UntilReady,
    ];
    let got = same_as_direct(&tx_pooler("max_prepared_statements = 1"), &script).await;
    assert_eq!(tags(&got), "12DCZ12DCZCZEZEZCZ2DCZ");
}

#[tokio::test]
async fn deallocate_all_over_the_extended_protocol_spares_other_clients() {
    let p = tx_pooler("");
    let mut b = RawClient::connect(&p, MD5_USER, MD5_PASS, &[]).await;
    b.send(
        Frontend::new()
            .parse("mine", "select 'b' as b")
            .bind("", "mine", &[])
            .execute("", 0)
            .sync(),
    )
    .await;
    assert_eq!(values(&b.recv_until_ready().await), ["b"]);
    // A (same single server) drops every statement of the session, as drivers do with
    // unnamed statements (JDBC, psycopg, tokio-postgres `execute`).
    let mut a = RawClient::connect(&p, MD5_USER, MD5_PASS, &[]).await;
    a.send(
        Frontend::new()
            .parse("", "deallocate all")
            .bind("", "", &[])
            .execute("", 0)
            .sync(),
    )
    .await;
    let got = a.recv_until_ready().await;
    assert_eq!(tags(&got), "12CZ", "{got:?}");
    // B's statement is B's: on its own Postgres session it would still exist.
    b.send(Frontend::new().bind("", "mine", &[]).execute("", 0).sync())
        .await;
    let got = b.recv_until_ready().await;
    assert_eq!(tags(&got), "2DCZ", "{got:?}\n{}", log_tail(&p.log(), 40));
}

#[tokio::test]
async fn deallocate_name_over_the_extended_protocol() {
    let script = [
        prepare_and_run("s1", "select 1 as one"),
        UntilReady,
        Send(
            Frontend::new()
                .parse("", "deallocate s1")
                .bind("", "", &[])
                .execute("", 0)
                .sync(),
        ),
        UntilReady,
        run("s1"),
        UntilReady,
    ];
    let got = same_as_direct(&tx_pooler(""), &script).await;
    assert_eq!(tags(&got), "12DCZ12CZEZ");
}

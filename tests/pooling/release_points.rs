//! Release points of transaction pooling at the wire level (raw client): a server stays with
//! its client through Flush-driven flows, pipelines of Sync batches, suspended portals and COPY
//! in both directions, while a second client on the same pool keeps being served by the other
//! server. Also statement mode: pipelined single statements and implicit transactions.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::common::raw::{tags, Frontend, RawClient};
use crate::common::scripts::{statuses, values};
use crate::common::*;
use tokio_postgres::{Client, SimpleQueryMessage};

fn pooler(mode: &str, pool_size: usize) -> Pooler {
    Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler(&format!("pool_mode = \"{mode}\""))
            .pooler(&format!("default_pool_size = {pool_size}")),
    )
}

async fn raw_login(p: &Pooler) -> RawClient {
    RawClient::connect(p, MD5_USER, MD5_PASS, &[]).await
}

async fn login(p: &Pooler) -> Client {
    let (client, _task) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    client
}

/// The first column of the first row of a simple query (simple protocol: no named statement
/// that could be missing on another server).
async fn simple_value(c: &Client, sql: &str) -> String {
    let msgs = c.simple_query(sql).await.unwrap();
    match msgs.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => Some(row.get(0).map(str::to_owned)),
        _ => None,
    }) {
        Some(Some(value)) => value,
        _ => panic!("{sql}: no non-NULL row"),
    }
}

/// A table every role may use, created directly on Postgres.
async fn shared_table(prefix: &str, columns: &str) -> String {
    let table = unique_name(prefix);
    let admin = shared_cluster().superuser_client(TEST_DB).await;
    admin
        .batch_execute(&format!(
            "create table {table}({columns}); grant all on {table} to public"
        ))
        .await
        .unwrap();
    table
}

#[tokio::test]
async fn flush_keeps_the_server_until_sync_and_its_named_statement_with_it() {
    let p = pooler("transaction", 2);
    let mut a = raw_login(&p).await;
    let b = login(&p).await;
    let pid = "select pg_backend_pid()";
    a.send(
        Frontend::new()
            .parse("", pid)
            .bind("", "", &[])
            .execute("", 0)
            .parse("s1", pid)
            .describe_statement("s1")
            .flush(),
    )
    .await;
    let got = a.recv_n(7).await;
    assert_eq!(tags(&got), "12DC1tT", "{got:?}");
    let pid_a = got[2].value();
    // A is between a Flush and its Sync: B must be served by the other server, not A's.
    for _ in 0..3 {
        assert_ne!(
            simple_value(&b, pid).await,
            pid_a,
            "A's server was lent out\n{}",
            p.log()
        );
    }
    a.send(Frontend::new().bind("", "s1", &[]).execute("", 0).sync())
        .await;
    let got = a.recv_until_ready().await;
    assert_eq!(
        tags(&got),
        "2DCZ",
        "s1 still exists (no 26000): {got:?}\n{}",
        p.log()
    );
    assert_eq!(
        values(&got),
        [pid_a],
        "the Sync ran on the server of the Flush"
    );
    assert_eq!(statuses(&got), "I");
    // Released at the Sync: both clients go on being served.
    assert!(!a.query_value(pid).await.is_empty());
    assert!(!simple_value(&b, pid).await.is_empty());
}

#[tokio::test]
async fn a_pipeline_of_sync_batches_in_one_write_runs_on_one_server() {
    let p = pooler("transaction", 2);
    let mut a = raw_login(&p).await;
    // B keeps asking for a server, ready to grab A's between two of its batches.
    let b = login(&p).await;
    let stop = Arc::new(AtomicBool::new(false));
    let busy = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut served = 0u32;
            while !stop.load(Ordering::Relaxed) {
                simple_value(&b, "select pg_backend_pid()").await;
                served += 1;
            }
            served
        })
    };
    let sql = "select pg_backend_pid() from pg_sleep(0.01)";
    for round in 0..10 {
        let mut batch = Frontend::new();
        for _ in 0..4 {
            batch = batch.parse("", sql).bind("", "", &[]).execute("", 0).sync();
        }
        a.send(batch).await;
        let mut got = Vec::new();
        for _ in 0..4 {
            got.extend(a.recv_until_ready().await);
        }
        assert_eq!(tags(&got), "12DCZ".repeat(4), "round {round}: {got:?}");
        assert_eq!(statuses(&got), "IIII");
        let pids = values(&got);
        assert!(
            pids.iter().all(|pid| *pid == pids[0]),
            "round {round}: batches of one write ran on several servers: {pids:?}\n{}",
            p.log()
        );
    }
    stop.store(true, Ordering::Relaxed);
    assert!(busy.await.unwrap() > 0, "B was served meanwhile");
}

#[tokio::test]
async fn a_suspended_portal_survives_between_the_clients_writes() {
    let p = pooler("transaction", 2);
    let mut a = raw_login(&p).await;
    let b = login(&p).await;
    let sql = "select pg_backend_pid() from generate_series(1, 10)";
    a.send(
        Frontend::new()
            .parse("", sql)
            .bind("", "", &[])
            .execute("", 4)
            .flush(),
    )
    .await;
    let mut got = a.recv_n(7).await;
    assert_eq!(tags(&got), "12DDDDs", "{got:?}");
    let pid_a = got[2].value();
    assert_ne!(simple_value(&b, "select pg_backend_pid()").await, pid_a);
    a.send(Frontend::new().execute("", 4).flush()).await;
    got.extend(a.recv_n(5).await);
    assert_ne!(simple_value(&b, "select pg_backend_pid()").await, pid_a);
    a.send(Frontend::new().execute("", 4).flush()).await;
    got.extend(a.recv_n(3).await);
    a.send(Frontend::new().sync()).await;
    got.extend(a.recv_until_ready().await);
    assert_eq!(
        tags(&got),
        "12DDDDsDDDDsDDCZ",
        "the portal was still there for each Execute: {got:?}\n{}",
        p.log()
    );
    assert_eq!(values(&got), vec![pid_a; 10]);
    assert_eq!(statuses(&got), "I");
    assert!(!a.query_value("select 'after'").await.is_empty());
}

#[tokio::test]
async fn copy_in_and_out_hold_the_server_while_other_clients_keep_working() {
    let p = pooler("transaction", 2);
    let table = shared_table("tx_copy", "id int, body text").await;
    let mut a = raw_login(&p).await;
    let b = login(&p).await;
    let count = format!("select count(*) from {table}");

    a.send(Frontend::new().query(&format!("copy {table} from stdin")))
        .await;
    let got = a.recv_n(1).await;
    assert_eq!(tags(&got), "G", "CopyInResponse: {got:?}");
    // The COPY is open on A's server; B runs on the other one and sees nothing yet.
    assert_eq!(simple_value(&b, &count).await, "0");
    a.send(Frontend::new().copy_data(b"1\tone\n2\ttwo\n")).await;
    assert_eq!(simple_value(&b, &count).await, "0");
    a.send(Frontend::new().copy_data(b"3\tthree\n").copy_done())
        .await;
    let got = a.recv_until_ready().await;
    assert_eq!(tags(&got), "CZ", "{got:?}\n{}", p.log());
    assert_eq!(got[0].cstrings(), ["COPY 3"]);
    assert_eq!(statuses(&got), "I");
    assert_eq!(simple_value(&b, &count).await, "3");

    let got = a
        .query(&format!(
            "copy (select * from {table} order by id) to stdout"
        ))
        .await;
    assert_eq!(tags(&got), "HdddcCZ", "{got:?}");
    let out: Vec<u8> = got
        .iter()
        .filter(|m| m.tag == b'd')
        .flat_map(|m| m.body.clone())
        .collect();
    assert_eq!(out, b"1\tone\n2\ttwo\n3\tthree\n");
    assert_eq!(a.query_value(&count).await, "3");

    // psql's \copy (COPY ... FROM STDIN / TO STDOUT underneath) through the same pooler.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "4\tfour\n5\tfive\n").unwrap();
    let copy_in = format!("\\copy {table} from '{}'", file.path().display());
    let out = p.psql(MD5_USER, MD5_PASS, TEST_DB, &["-c", &copy_in]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copy_out = format!("\\copy (select id from {table} order by id) to stdout");
    let out = p.psql(MD5_USER, MD5_PASS, TEST_DB, &["-At", "-c", &copy_out]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1\n2\n3\n4\n5\n");
    assert_eq!(simple_value(&b, &count).await, "5");
}

#[tokio::test]
async fn statement_mode_runs_pipelined_statements_and_implicit_transactions() {
    let p = pooler("statement", 2);
    let table = shared_table("stmt_mode", "n int").await;
    let mut c = raw_login(&p).await;
    let mut batch = Frontend::new();
    for n in 1..=3 {
        batch = batch
            .parse("", &format!("select {n}"))
            .bind("", "", &[])
            .execute("", 0)
            .sync();
    }
    c.send(batch).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.extend(c.recv_until_ready().await);
    }
    assert_eq!(tags(&got), "12DCZ".repeat(3), "{got:?}\n{}", p.log());
    assert_eq!(values(&got), ["1", "2", "3"]);
    assert_eq!(statuses(&got), "III");

    // Several statements in one Query: one implicit transaction, committed at its end.
    let got = c
        .query(&format!(
            "insert into {table} values (1); insert into {table} values (2)"
        ))
        .await;
    assert_eq!(tags(&got), "CCZ", "{got:?}\n{}", p.log());
    assert_eq!(statuses(&got), "I");
    // ...and rolled back as a whole when one of them fails.
    let got = c
        .query(&format!("insert into {table} values (3); select 1/0"))
        .await;
    assert_eq!(tags(&got), "CEZ", "{got:?}");
    assert_eq!(got[1].sqlstate().as_deref(), Some("22012"));
    assert_eq!(statuses(&got), "I");
    let sum = format!("select count(*) || ':' || sum(n) from {table}");
    assert_eq!(c.query_value(&sum).await, "2:3");
    let other = login(&p).await;
    assert_eq!(simple_value(&other, &sum).await, "2:3");
}

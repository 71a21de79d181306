//! Chaos on the Postgres side: restarts (fast and immediate) under load in session and in
//! transaction mode, and backends terminated in the middle of
//! COPY FROM STDIN and COPY TO STDOUT. Clients only ever see exact rows or an error with a
//! SQLSTATE, never a damaged message; the pool's counts come back to normal afterwards.

use std::time::Duration;

use crate::common::chaos::{no_idle_in_transaction, pool_settles, SETTLE};
use crate::common::raw::{Backend, Frontend, RawClient};
use crate::common::*;
use tokio_postgres::{Client, Config, SimpleQueryMessage};

/// SQLSTATEs a session may end with when Postgres goes away under it: admin shutdown or
/// crash shutdown (Postgres's own FATAL), starting up, or pgsluice's "server connection lost".
const RESTART: [&str; 4] = ["57P01", "57P02", "57P03", "08006"];

/// The error's SQLSTATE, or, for "connection closed" (the FATAL came while no request was
/// pending), the SQLSTATE the connection task ended with.
async fn reason(e: &tokio_postgres::Error, task: ConnTask) -> Option<String> {
    if let Some(code) = sqlstate(e) {
        return Some(code.to_owned());
    }
    match tokio::time::timeout(SETTLE, task).await {
        Ok(Ok(Err(e))) => sqlstate(&e).map(str::to_owned),
        _ => None,
    }
}

/// Logs in again, retrying while Postgres is still coming back.
async fn reconnect(cfg: &Config) -> (Client, ConnTask) {
    let end = std::time::Instant::now() + SETTLE;
    loop {
        match connect_with(cfg).await {
            Ok(pair) => return pair,
            Err(e) if std::time::Instant::now() < end => {
                let code = sqlstate(&e).map(str::to_owned);
                assert!(
                    code.as_deref().is_none_or(|c| RESTART.contains(&c)),
                    "login during a restart: {e:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no login after the restart: {e:?}"),
        }
    }
}

async fn one_row(c: &Client, sql: &str) -> Result<Vec<String>, tokio_postgres::Error> {
    let msgs = c.simple_query(sql).await?;
    Ok(msgs
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).unwrap().into()).collect())
            }
            _ => None,
        })
        .expect("a row"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_under_load_in_session_mode() {
    let cluster = PgCluster::start();
    let p =
        Pooler::start(PoolerConfig::new(&cluster).pooler(
            "pool_mode = \"session\"\ndefault_pool_size = 12\nquery_wait_timeout = \"60s\"",
        ));
    let cfg = md5_login(p.connect_config());
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let (rounds_tx, rounds) = tokio::sync::watch::channel(0u64);
    let rounds_tx = std::sync::Arc::new(rounds_tx);
    let work: Vec<_> = (0..10)
        .map(|id| {
            let (cfg, stop, rounds_tx) = (cfg.clone(), stop.clone(), rounds_tx.clone());
            tokio::spawn(async move {
                let (mut c, mut task) = reconnect(&cfg).await;
                let mut failures = Vec::new();
                let mut round = 0u64;
                while !*stop.borrow() {
                    round += 1;
                    let sql = format!(
                        "select {id}, {round}, count(*) from generate_series(1, {id} + 100)"
                    );
                    match one_row(&c, &sql).await {
                        Ok(row) => {
                            let expected =
                                [id.to_string(), round.to_string(), (id + 100).to_string()];
                            assert_eq!(row, expected, "client {id}");
                            rounds_tx.send_modify(|n| *n += 1);
                        }
                        Err(e) => {
                            failures.push(reason(&e, task).await);
                            (c, task) = reconnect(&cfg).await;
                        }
                    }
                }
                failures
            })
        })
        .collect();
    let progress = |at_least: u64| {
        let mut rounds = rounds.clone();
        async move {
            let wait = rounds.wait_for(|n| *n >= at_least);
            tokio::time::timeout(SETTLE, wait)
                .await
                .expect("clients progress")
                .unwrap();
        }
    };
    progress(200).await;
    for mode in ["fast", "immediate"] {
        tokio::task::block_in_place(|| cluster.restart(mode));
        let now = *rounds.borrow();
        progress(now + 200).await;
    }
    stop_tx.send_replace(true);
    for task in work {
        let failures = task.await.unwrap();
        for code in &failures {
            let ok = code.as_deref().is_some_and(|c| RESTART.contains(&c));
            assert!(
                ok,
                "each lost session is told why: {failures:?}\n{}",
                p.log()
            );
        }
        // Session pooling: a client's server dies with Postgres, once per restart.
        assert!(failures.len() <= 2, "{failures:?}");
        eprintln!("a client lost its session with {failures:?}");
    }
    pool_settles(&p, TEST_DB, MD5_USER, 0).await;
    no_idle_in_transaction(&cluster, TEST_DB).await;
}

/// A transaction-mode pooler of one server, and a table md5_user may copy into.
async fn copy_setup() -> (Pooler, String, Client) {
    let cluster = shared_cluster();
    let su = cluster.superuser_client(TEST_DB).await;
    let table = unique_name("chaoscopy");
    su.batch_execute(&format!(
        "create table {table}(n int); grant all on {table} to public"
    ))
    .await
    .unwrap();
    let p = Pooler::start(
        PoolerConfig::new(cluster).pooler("pool_mode = \"transaction\"\ndefault_pool_size = 1"),
    );
    (p, table, su)
}

/// Terminates the backend running the statement that contains `marker`, once it runs.
async fn terminate_running(su: &Client, marker: &str) {
    let find = "select pg_terminate_backend(pid) from pg_stat_activity \
                where datname = $1 and pid <> pg_backend_pid() and strpos(query, $2) > 0";
    wait_until("the COPY's backend terminated", SETTLE, || async {
        let rows = su.query(find, &[&TEST_DB, &marker]).await.unwrap();
        rows.iter().any(|r| r.get::<_, bool>(0))
    })
    .await;
}

/// The pool of one serves again with correct results, and counts are back to normal.
async fn recovered(p: &Pooler, table: &str, rows: i64) {
    let (c, _t) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    let got = one_row(&c, &format!("select count(*) from {table}"))
        .await
        .unwrap();
    assert_eq!(got, [rows.to_string()]);
    drop(c);
    pool_settles(p, TEST_DB, MD5_USER, 0).await;
    no_idle_in_transaction(shared_cluster(), TEST_DB).await;
}

/// Errors that may follow a terminated backend, each FATAL with a SQLSTATE.
fn assert_lost(msgs: &[Backend], what: &str) {
    assert!(
        msgs.iter().any(|m| m.tag == b'E'),
        "{what}: no error at all: {msgs:?}"
    );
    for m in msgs {
        assert!(matches!(m.tag, b'E' | b'N'), "{what}: {m:?}");
        if m.tag == b'E' {
            let code = m.sqlstate().unwrap_or_default();
            assert!(
                ["57P01", "08006"].contains(&code.as_str()),
                "{what}: {:?}",
                m.fields()
            );
            assert_eq!(
                m.field(b'S').as_deref(),
                Some("FATAL"),
                "{what}: {:?}",
                m.fields()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_terminated_mid_copy_from_stdin() {
    let (p, table, su) = copy_setup().await;
    let mut c = RawClient::connect(&p, MD5_USER, MD5_PASS, &[]).await;
    let sql = format!("copy {table} from stdin");
    c.send(Frontend::new().query(&sql)).await;
    assert_eq!(c.recv().await.tag, b'G', "CopyInResponse");
    c.send(Frontend::new().copy_data(b"1\n2\n3\n")).await;
    terminate_running(&su, &sql).await;
    let msgs = c.recv_until_closed().await;
    assert_lost(&msgs, "COPY FROM STDIN");
    // The COPY never committed: not one of its rows is there.
    recovered(&p, &table, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_terminated_mid_copy_to_stdout() {
    let (p, table, su) = copy_setup().await;
    let mut c = RawClient::connect(&p, MD5_USER, MD5_PASS, &[]).await;
    let sql = "copy (select g, repeat('y', 200) from generate_series(1, 3000000) g) to stdout";
    c.send(Frontend::new().query(sql)).await;
    assert_eq!(c.recv().await.tag, b'H', "CopyOutResponse");
    // A few rows, then the client stops reading: Postgres blocks on a full socket, mid-COPY.
    let ys = "y".repeat(200);
    let mut next_row = 1u64;
    let mut check = |m: &Backend| {
        assert_eq!(m.tag, b'd', "{m:?}");
        let expected = format!("{next_row}\t{ys}\n");
        assert!(
            m.body == expected.as_bytes(),
            "row {next_row} damaged: {m:?}"
        );
        next_row += 1;
    };
    for _ in 0..100 {
        check(&c.recv().await);
    }
    terminate_running(&su, "generate_series(1, 3000000)").await;
    // Whatever was on its way still arrives intact; then at most errors, then the end.
    let mut tail = Vec::new();
    while let Some(m) = c.next_message().await {
        if m.tag == b'd' && tail.is_empty() {
            check(&m);
        } else {
            tail.push(m);
        }
    }
    // A backend killed mid-message leaves a cut message, which nothing can be appended to.
    if c.unfinished() == 0 {
        assert_lost(&tail, "COPY TO STDOUT");
    } else {
        assert!(tail.is_empty(), "messages after a cut-short one: {tail:?}");
    }
    eprintln!(
        "{} rows, then {} messages and {} bytes of a cut message",
        next_row - 1,
        tail.len(),
        c.unfinished()
    );
    recovered(&p, &table, 0).await;
}

/// Postgres restarted (fast and immediate) while transaction-mode clients work in a loop:
/// clients between transactions see no error; a query in flight may fail with the server's
/// error; every client carries on afterwards with the pool back to normal.
#[tokio::test]
async fn postgres_restart_under_load_in_transaction_mode() {
    let cluster = PgCluster::start();
    let p = Pooler::start(
        PoolerConfig::new(&cluster).pooler("pool_mode = \"transaction\"\ndefault_pool_size = 4"),
    );
    let mut clients = Vec::new();
    for _ in 0..20 {
        let (c, _task) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
        clients.push(c);
    }
    for mode in ["fast", "immediate"] {
        // Everyone idle between transactions at the moment of the restart.
        cluster.restart(mode);
        for c in &clients {
            let rows = c.simple_query("select 1").await;
            assert!(
                rows.is_ok(),
                "an idle client saw the {mode} restart: {rows:?}\n{}",
                p.log()
            );
        }
    }
    drop(clients);
    // Busy clients during a restart: only a query in flight fails (its client is told the
    // server connection was lost, as with PgBouncer, and reconnects); all carry on.
    let busy: Vec<_> = (0..20)
        .map(|_| {
            let cfg = md5_login(p.connect_config());
            tokio::spawn(async move {
                let (mut c, _task) = connect_with(&cfg).await.unwrap();
                let mut failures = 0;
                for _ in 0..200 {
                    if c.simple_query("select count(*) from pg_class")
                        .await
                        .is_err()
                    {
                        failures += 1;
                        c = connect_with(&cfg)
                            .await
                            .expect("reconnect after a restart")
                            .0;
                    }
                }
                failures
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    cluster.restart("fast");
    for task in busy {
        let failures = task.await.unwrap();
        assert!(
            failures <= 1,
            "a client failed {failures} times for one restart"
        );
    }
}

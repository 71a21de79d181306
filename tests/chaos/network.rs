//! Chaos between pgsluice and Postgres, through the fault-injecting proxy (common/chaos_proxy):
//! latency never changes a result, a stall is bounded by query_timeout (57014) while pools on
//! other servers carry on, dropped and reset server connections under load fail only requests
//! that were in flight (with a SQLSTATE), a fault in the middle of a large row cuts the client
//! off with nothing appended to the row, and refused connections queue clients until Postgres
//! is reachable again. After each fault the pool's counts return to normal.

use std::time::Duration;

use crate::common::chaos::{no_idle_in_transaction, pool_settles, SETTLE};
use crate::common::chaos_proxy::ChaosProxy;
use crate::common::raw::{Frontend, RawClient};
use crate::common::*;
use tokio_postgres::{Client, SimpleQueryMessage};

/// A fresh database on the shared cluster, a proxy in front of it, and a pgsluice whose
/// database `db` goes through the proxy while `direct` reaches the same database straight.
fn setup(extra: &str) -> (String, ChaosProxy, Pooler) {
    let cluster = shared_cluster();
    let db = unique_name("chaosnet");
    cluster.create_database(&db);
    let proxy = ChaosProxy::start(cluster.host(), cluster.port());
    let p = Pooler::start(
        PoolerConfig::for_server("127.0.0.1", proxy.port())
            .without_database(TEST_DB)
            .pooler("pool_mode = \"transaction\"")
            .pooler(extra)
            .database(&db, "")
            .database(
                "direct",
                &format!(
                    "host = \"{}\"\nport = {}\ndbname = \"{db}\"",
                    cluster.host(),
                    cluster.port()
                ),
            ),
    );
    (db, proxy, p)
}

async fn login(p: &Pooler, db: &str) -> Client {
    match p.connect(MD5_USER, MD5_PASS, db).await {
        Ok((client, _task)) => client,
        Err(e) => panic!("login to {db}: {e:?}\n{}", p.log()),
    }
}

/// Every row of a simple query, each as its columns' text.
async fn rows(c: &Client, sql: &str) -> Result<Vec<Vec<String>>, tokio_postgres::Error> {
    Ok(c.simple_query(sql)
        .await?
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL").to_owned())
                    .collect(),
            ),
            _ => None,
        })
        .collect())
}

/// A query whose rows say which client and which round asked, so a row meant for another
/// client (or another round) can never pass unnoticed.
fn tagged(client: usize, round: usize) -> (String, Vec<Vec<String>>) {
    let sql = format!(
        "select {client}, {round}, g, repeat(chr(65 + g % 26), g % 50) \
         from generate_series(1, 40) g"
    );
    let expected = (1..=40)
        .map(|g: u32| {
            let letter = char::from(b'A' + (g % 26) as u8);
            vec![
                client.to_string(),
                round.to_string(),
                g.to_string(),
                letter.to_string().repeat((g % 50) as usize),
            ]
        })
        .collect();
    (sql, expected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_keeps_results_exact_and_a_stall_ends_at_query_timeout() {
    let (db, proxy, p) = setup("default_pool_size = 2\nquery_timeout = \"2s\"");
    proxy.set_latency(Duration::from_millis(5));
    let clients: Vec<Client> = login_all(&p, &db, 4).await;
    let mut work = Vec::new();
    for (id, c) in clients.into_iter().enumerate() {
        work.push(tokio::spawn(async move {
            for round in 0..10 {
                let (sql, expected) = tagged(id, round);
                assert_eq!(rows(&c, &sql).await.unwrap(), expected);
            }
            c
        }));
    }
    let mut clients = Vec::new();
    for w in work {
        clients.push(w.await.unwrap());
    }
    proxy.set_latency(Duration::ZERO);

    // The proxy stops forwarding: the query in flight ends at query_timeout with 57014.
    let direct = login(&p, "direct").await;
    proxy.stall();
    let err = rows(&clients[0], "select 'stalled'")
        .await
        .expect_err("no reply can pass the stall");
    assert_eq!(sqlstate(&err), Some("57014"), "{err:?}\n{}", p.log());
    assert!(format!("{err:?}").contains("query_timeout"), "{err:?}");
    // A pool whose servers do not go through the proxy is untouched.
    assert_eq!(
        rows(&direct, "select 'direct'").await.unwrap()[0][0],
        "direct"
    );
    proxy.resume();

    // The pool recovers: every client, the timed-out one reconnecting, gets exact results.
    clients[0] = login(&p, &db).await;
    for (id, c) in clients.iter().enumerate() {
        let (sql, expected) = tagged(id, 99);
        let got = rows(c, &sql).await;
        assert_eq!(
            got.unwrap_or_else(|e| panic!("{e:?}\n{}", p.log())),
            expected
        );
    }
    drop(direct);
    pool_settles(&p, &db, MD5_USER, 4).await;
    no_idle_in_transaction(shared_cluster(), &db).await;
}

/// `n` clients of `db`, logged in one after the other.
async fn login_all(p: &Pooler, db: &str, n: usize) -> Vec<Client> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(login(p, db).await);
    }
    out
}

/// SQLSTATEs a client may see when its server connection is lost under it.
const LOST: [&str; 3] = ["08006", "57P01", "08P01"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_and_reset_server_connections_fail_only_requests_in_flight() {
    let (db, proxy, p) = setup("default_pool_size = 4");
    let cfg = {
        let mut cfg = p.connect_config();
        cfg.user(MD5_USER).password(MD5_PASS).dbname(&db);
        cfg
    };
    let (progress_tx, mut progress) = tokio::sync::mpsc::unbounded_channel::<()>();
    let work: Vec<_> = (0..20)
        .map(|id| {
            let (cfg, progress_tx) = (cfg.clone(), progress_tx.clone());
            tokio::spawn(async move {
                let (mut c, _t) = connect_with(&cfg).await.expect("login");
                let mut failures = Vec::new();
                for round in 0..60 {
                    let (sql, expected) = tagged(id, round);
                    match rows(&c, &sql).await {
                        Ok(got) => assert_eq!(got, expected, "client {id} round {round}"),
                        Err(e) => {
                            failures.push(sqlstate(&e).map(str::to_owned));
                            c = connect_with(&cfg).await.expect("reconnect").0;
                        }
                    }
                    let _ = progress_tx.send(());
                }
                failures
            })
        })
        .collect();
    drop(progress_tx);
    // Faults land while everyone is busy: a close (FIN) first, then a reset (RST).
    for (after, fault) in [(200, "drop"), (500, "reset")] {
        let mut seen = 0;
        while seen < after && progress.recv().await.is_some() {
            seen += 1;
        }
        match fault {
            "drop" => proxy.drop_all(),
            _ => proxy.reset_all(),
        }
    }
    let mut total = 0;
    for task in work {
        let failures = tokio::time::timeout(SETTLE, task)
            .await
            .expect("clients finish")
            .unwrap();
        for code in &failures {
            let ok = code.as_deref().is_some_and(|c| LOST.contains(&c));
            assert!(
                ok,
                "a lost server is reported with a SQLSTATE: {failures:?}"
            );
        }
        assert!(
            failures.len() <= 2,
            "one failure per fault at most: {failures:?}"
        );
        total += failures.len();
    }
    eprintln!("{total} requests failed across the two faults");
    // The requests in flight on the 4 servers, twice (8), plus a little slack for a server
    // whose close had not reached pgsluice yet when it was handed out.
    assert!(
        total <= 12,
        "{total} requests failed for two faults on 4 servers"
    );
    let c = login(&p, &db).await;
    let (sql, expected) = tagged(7, 7);
    assert_eq!(rows(&c, &sql).await.unwrap(), expected);
    drop(c);
    pool_settles(&p, &db, MD5_USER, 0).await;
    no_idle_in_transaction(shared_cluster(), &db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_server_connections_queue_clients_until_allowed_again() {
    let (db, proxy, p) =
        setup("default_pool_size = 3\nquery_wait_timeout = \"60s\"\nserver_login_retry = \"1s\"");
    let clients: Vec<Client> = login_all(&p, &db, 5).await;
    // No server left and none can be opened.
    proxy.refuse(true);
    proxy.drop_all();
    wait_until("the proxy's connections closed", SETTLE, || async {
        proxy.live() == 0
    })
    .await;
    let accepted = proxy.accepted();
    let mut waiting = Vec::new();
    for (id, c) in clients.into_iter().enumerate() {
        waiting.push(tokio::spawn(async move {
            let (sql, expected) = tagged(id, 1);
            let got = rows(&c, &sql).await;
            (c, got, expected)
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        waiting.iter().all(|w| !w.is_finished()),
        "clients wait while Postgres is unreachable\n{}",
        p.log()
    );
    assert_eq!(
        proxy.accepted(),
        accepted,
        "nothing got through while refused"
    );
    proxy.refuse(false);
    let mut clients = Vec::new();
    for w in waiting {
        let (c, got, expected) = tokio::time::timeout(SETTLE, w)
            .await
            .expect("served once allowed")
            .unwrap();
        assert_eq!(
            got.unwrap_or_else(|e| panic!("{e:?}\n{}", p.log())),
            expected
        );
        clients.push(c);
    }

    // Refused for longer than query_wait_timeout: a clear error, and the client may retry.
    drop(clients);
    let short = Pooler::start(
        p.config()
            .clone()
            .pooler("query_wait_timeout = \"1s\"\nserver_login_retry = \"200ms\""),
    );
    let c = login(&short, &db).await;
    proxy.refuse(true);
    proxy.drop_all();
    let err = rows(&c, "select 1").await.expect_err("unreachable");
    let code = sqlstate(&err);
    assert!(matches!(code, Some("08006" | "53300")), "{err:?}");
    proxy.refuse(false);
    let again = match code {
        Some("53300") => c,
        _ => login(&short, &db).await,
    };
    assert_eq!(rows(&again, "select 'back'").await.unwrap()[0][0], "back");
    drop(again);
    pool_settles(&short, &db, MD5_USER, 0).await;
    pool_settles(&p, &db, MD5_USER, 0).await;
    no_idle_in_transaction(shared_cluster(), &db).await;
}

/// A client inside a half-relayed message cannot be sent an ErrorResponse: it would read it
/// as the rest of that message (here: row data). pgsluice disconnects it instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_lost_mid_message_cuts_the_client_off_with_nothing_appended() {
    let (_db, proxy, p) = setup("auth_type = \"trust\"\nquery_timeout = \"3s\"");
    let p_db = p.config().clone().database(TEST_DB, "");
    drop(p);
    let p = Pooler::start(p_db);
    // The server reset, then a stall until query_timeout, each in the middle of a DataRow.
    for fault in ["reset", "stall"] {
        let mut c = RawClient::connect(&p, TRUST_USER, "", &[]).await;
        // One 8 MB DataRow, trickling through the proxy 16 KiB per 20 ms.
        proxy.set_latency(Duration::from_millis(20));
        c.send(Frontend::new().query("select repeat('x', 8000000)"))
            .await;
        assert_eq!(c.recv().await.tag, b'T', "RowDescription");
        let header = c.recv_bytes(11).await.expect("DataRow header");
        assert_eq!(header[0], b'D');
        let part = c
            .recv_bytes(100_000)
            .await
            .expect("the first part of the row");
        assert!(part.iter().all(|b| *b == b'x'));
        match fault {
            "reset" => proxy.reset_all(),
            _ => proxy.stall(),
        }
        // The rest of the row never comes; an ErrorResponse written now would land inside
        // it, where a client would read it as row data.
        let rest = c.recv_to_end().await;
        let foreign = rest.iter().position(|b| *b != b'x');
        assert!(
            foreign.is_none(),
            "{fault}: bytes appended to a cut DataRow: {:?}\n{}",
            String::from_utf8_lossy(&rest[foreign.unwrap()..]),
            p.log()
        );
        assert!(
            rest.len() < 8_000_000 - 100_000,
            "{fault}: the row was cut short"
        );
        proxy.resume();
        proxy.set_latency(Duration::ZERO);
        // The pool recovers.
        let mut again = RawClient::connect(&p, TRUST_USER, "", &[]).await;
        assert_eq!(again.query_value("select 'again'").await, "again");
    }
    pool_settles(&p, TEST_DB, TRUST_USER, 0).await;
    no_idle_in_transaction(shared_cluster(), TEST_DB).await;
}

//! The drain an orchestrator or load balancer relies on: on SIGTERM /readyz turns 503 while
//! the port still accepts (shutdown_accept_delay), then the listener closes; idle clients get
//! FATAL 57P01 after shutdown_idle_grace, a client in a transaction finishes it first; the
//! process exits 0. /healthz and /readyz also answer whether Postgres can be reached, and
//! so_reuseport lets a second process share the port and take over.

use std::time::{Duration, Instant};

use crate::common::*;
use crate::instances::*;

const DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn sigterm_turns_unready_before_the_listener_closes_then_drains_at_transaction_ends() {
    let slot = Slot::new(1);
    let mut p = Pooler::start(slot.config(
        "shutdown_accept_delay = \"3s\"\nshutdown_idle_grace = \"500ms\"\nshutdown_timeout = \"60s\"",
    ));
    let (code, body) = http_get(slot.metrics_port, "/readyz").await.unwrap();
    assert_eq!((code, body.as_str()), (200, "ready\n"), "{}", p.log());
    let (in_tx, in_tx_task) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    let (idle, idle_task) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    in_tx.simple_query("begin").await.unwrap();
    in_tx.simple_query("select 1").await.unwrap();
    idle.simple_query("select 1").await.unwrap();

    p.signal("TERM");
    wait_until("/readyz to say not ready", DEADLINE, || async {
        matches!(http_get(slot.metrics_port, "/readyz").await, Some((503, _)))
    })
    .await;
    // Unready first: the port still accepts, and a client that arrives now is served.
    assert!(
        accepts(slot.port),
        "the listener closed before /readyz turned\n{}",
        p.log()
    );
    let (late, late_task) = p
        .connect(MD5_USER, MD5_PASS, TEST_DB)
        .await
        .unwrap_or_else(|e| panic!("a client during shutdown_accept_delay: {e}\n{}", p.log()));
    late.simple_query("select 'served'").await.unwrap();
    let (_, body) = http_get(slot.metrics_port, "/readyz").await.unwrap();
    assert!(body.contains("shutting down"), "{body}");

    // Then idle clients are told, after the grace.
    for (task, what) in [(idle_task, "idle client"), (late_task, "late client")] {
        let end = tokio::time::timeout(DEADLINE, task)
            .await
            .expect(what)
            .unwrap();
        let err = end.expect_err(what);
        assert_eq!(sqlstate(&err), Some("57P01"), "{what}: {err:?}");
    }
    assert!(idle.is_closed() && late.is_closed());
    wait_until("the listener to close", DEADLINE, || async {
        !accepts(slot.port)
    })
    .await;

    // The open transaction runs to its end, then its client is closed.
    in_tx.simple_query("select 2").await.unwrap();
    in_tx
        .simple_query("commit")
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", p.log()));
    let err = in_tx
        .simple_query("select 3")
        .await
        .expect_err("went on after its transaction");
    assert!(matches!(sqlstate(&err), None | Some("57P01")), "{err:?}");
    let _ = tokio::time::timeout(DEADLINE, in_tx_task).await;
    let status = p.wait_exit(DEADLINE).expect("pgsluice did not exit");
    assert!(status.success(), "{status}\n{}", p.log());
}

#[tokio::test]
async fn readyz_says_whether_postgres_can_be_reached() {
    let dead = free_port();
    let metrics = free_port();
    let p = Pooler::start(
        PoolerConfig::for_server("127.0.0.1", dead)
            .pooler(&format!("metrics_addr = \"127.0.0.1:{metrics}\"")),
    );
    let (code, body) = http_get(metrics, "/healthz").await.unwrap();
    assert_eq!((code, body.as_str()), (200, "ok\n"));
    let (code, body) = http_get(metrics, "/readyz").await.unwrap();
    assert_eq!(code, 503, "{body}\n{}", p.log());
    assert!(
        body.contains("cannot reach PostgreSQL") && body.contains(&format!("127.0.0.1:{dead}")),
        "{body}"
    );
}

#[tokio::test]
async fn so_reuseport_lets_a_new_process_take_over_the_port() {
    let slot = Slot::new(0);
    let config = slot.config("so_reuseport = true\nmetrics_addr = \"\"");
    let mut old = Pooler::start(config.clone());
    let new = Pooler::start(
        config
            .clone()
            .pooler(&format!("unix_socket_dir = \"{}\"", old.dir().display())),
    );
    // Both serve the one port: the kernel spreads connections over the two processes.
    let pids = |p: &Pooler| p.pid();
    let (old_pid, new_pid) = (pids(&old), pids(&new));
    let mut served_by = std::collections::BTreeSet::new();
    let start = Instant::now();
    while served_by.len() < 2 && start.elapsed() < DEADLINE {
        let (c, _t) = old.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
        c.simple_query("select 1").await.unwrap();
        let logs = (
            old.log().matches("client logged in").count(),
            new.log().matches("client logged in").count(),
        );
        if logs.0 > 0 {
            served_by.insert(old_pid);
        }
        if logs.1 > 0 {
            served_by.insert(new_pid);
        }
    }
    assert_eq!(
        served_by.len(),
        2,
        "old:\n{}\nnew:\n{}",
        old.log(),
        new.log()
    );

    // Without the option the port cannot be shared.
    let refused = Pooler::spawn(slot.config("metrics_addr = \"\""));
    let mut refused = refused;
    let status = refused
        .wait_exit(DEADLINE)
        .expect("a second process without so_reuseport");
    assert!(!status.success());
    assert!(
        refused.log().contains("cannot listen on"),
        "{}",
        refused.log()
    );

    // The old one leaves; every new client is served by the new one.
    old.signal("TERM");
    assert!(old.wait_exit(DEADLINE).is_some(), "{}", old.log());
    for _ in 0..20 {
        let (c, _t) = new.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
        c.simple_query("select 1").await.unwrap();
    }
}

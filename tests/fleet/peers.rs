//! Cancel forwarding between instances: a CancelRequest that lands on another instance than
//! the one serving the client is sent on to the right one ([peers], or peers_dns resolving
//! to it), authenticated by the same secret; a key of an unknown peer, or one a peer sent to
//! the wrong place, is dropped and logged, and never travels further.

use std::time::Duration;

use crate::common::raw::{send_cancel_request, tags, RawClient};
use crate::common::raw_frontend::Frontend;
use crate::common::*;
use crate::instances::*;

const DEADLINE: Duration = Duration::from_secs(30);

/// A raw client on `p` running pg_sleep(60), already seen running by Postgres.
async fn sleeping_client(p: &Pooler, su: &tokio_postgres::Client, app: &str) -> RawClient {
    let mut c = RawClient::connect(p, MD5_USER, MD5_PASS, &[("application_name", app)]).await;
    c.send(Frontend::new().query("select pg_sleep(60)")).await;
    wait_until("the query to run", DEADLINE, || async {
        let rows = su
            .query(
                "select 1 from pg_stat_activity where application_name = $1 \
                 and query = 'select pg_sleep(60)' and state = 'active'",
                &[&app],
            )
            .await
            .unwrap();
        rows.len() == 1
    })
    .await;
    c
}

/// Whether the query is still running a moment after a cancel that should not reach it.
async fn still_sleeping(su: &tokio_postgres::Client, app: &str) -> bool {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rows = su
        .query(
            "select 1 from pg_stat_activity where application_name = $1 and state = 'active'",
            &[&app],
        )
        .await
        .unwrap();
    rows.len() == 1
}

async fn assert_cancelled(c: &mut RawClient, log: &str) {
    let msgs = tokio::time::timeout(DEADLINE, c.recv_until_ready())
        .await
        .unwrap_or_else(|_| panic!("the query was not cancelled\n{log}"));
    assert_eq!(tags(&msgs), "TEZ", "{msgs:?}");
    assert_eq!(msgs[1].sqlstate().as_deref(), Some("57014"), "{msgs:?}");
}

#[tokio::test]
async fn a_cancel_sent_to_another_instance_reaches_the_query() {
    let pg = shared_cluster();
    let su = pg.superuser_client(TEST_DB).await;
    let slots = [Slot::new(1), Slot::new(2)];
    let a = Pooler::start(with_peers(slots[0].config(""), &slots));
    let b = Pooler::start(with_peers(slots[1].config(""), &slots));
    let app = unique_name("peer_cancel");
    let mut c = sleeping_client(&a, &su, &app).await;
    let (pid, secret) = c.key;

    // The wrong secret, forwarded to the owner, cancels nothing.
    send_cancel_request(&b, pid, secret ^ 0x0101_0101).await;
    assert!(
        still_sleeping(&su, &app).await,
        "a wrong secret cancelled the query"
    );

    send_cancel_request(&b, pid, secret).await;
    assert_cancelled(&mut c, &format!("{}\n{}", a.log(), b.log())).await;
    assert_eq!(c.query_value("select 'usable'").await, "usable");
    let (_, metrics) = http_get(slots[1].metrics_port, "/metrics").await.unwrap();
    assert!(
        metrics.contains("pgsluice_cancel_requests_total{route=\"peer\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn peers_dns_finds_the_instance_that_owns_the_key() {
    let pg = shared_cluster();
    let su = pg.superuser_client(TEST_DB).await;
    let (one, two) = (Slot::new(1), Slot::new(2));
    // "localhost" resolves to this machine, where only instance 2 listens on its port: the
    // cancel goes to every address the name resolves to, and the owner acts on it.
    let a = Pooler::start(one.config(&format!("peers_dns = \"localhost:{}\"", two.port)));
    let b = Pooler::start(two.config(""));
    let app = unique_name("dns_cancel");
    let mut c = sleeping_client(&b, &su, &app).await;
    let (pid, secret) = c.key;
    send_cancel_request(&a, pid, secret).await;
    assert_cancelled(&mut c, &format!("{}\n{}", a.log(), b.log())).await;
}

#[tokio::test]
async fn unknown_and_misdelivered_cancels_are_dropped_and_logged() {
    let pg = shared_cluster();
    let su = pg.superuser_client(TEST_DB).await;
    let (one, two, three) = (Slot::new(1), Slot::new(2), Slot::new(3));
    // Instance 1 knows no peers; its [peers] is wrong in the second half of the test.
    let a = Pooler::start(one.config(""));
    let b = Pooler::start(two.config(""));
    let app = unique_name("lost_cancel");
    let mut c = sleeping_client(&b, &su, &app).await;
    let (pid, secret) = c.key;

    send_cancel_request(&a, pid, secret).await;
    wait_for_log(
        &a,
        "which neither [peers] nor peers_dns knows",
        "the unknown peer logged",
    )
    .await;
    assert!(
        still_sleeping(&su, &app).await,
        "an unknown peer's key cancelled something"
    );

    // Peer 2's entry points at instance 3: it gets the key once, and drops it.
    let c3 = Pooler::start(three.config(""));
    let wrong = one.config("").section(
        "peers.2",
        &format!("host = \"127.0.0.1\"\nport = {}", three.port),
    );
    let mut a = a;
    a.rewrite_config(wrong);
    a.signal("HUP");
    wait_for_log(&a, "configuration reloaded", "the reload").await;
    send_cancel_request(&a, pid, secret).await;
    wait_for_log(
        &c3,
        "another instance forwarded here for peer 2",
        "the misdelivery logged",
    )
    .await;
    assert!(
        still_sleeping(&su, &app).await,
        "a misdelivered key cancelled something"
    );

    // The owner itself still honours the key.
    send_cancel_request(&b, pid, secret).await;
    assert_cancelled(&mut c, &b.log()).await;
}

//! What goes wrong, and what each client then sees: a subscriber that stops reading is cut
//! off alone (its pool's others go on), and when the LISTEN connection dies
//! (pg_terminate_backend, a Postgres restart) every subscriber is warned that notifications
//! may have been lost, with SQLSTATE 08006, and delivery resumes on a new connection.

use std::time::Duration;

use crate::common::raw::RawClient;
use crate::common::raw_frontend::Frontend;
use crate::common::*;
use crate::subscriber::*;

/// The console's SHOW LISTENERS value of `column` for `db` ("" while it has no row or the
/// value is NULL).
async fn listener(p: &Pooler, db: &str, column: &str) -> String {
    let console = console::console(p).await;
    let set = console::show(&console, "SHOW LISTENERS").await;
    match set.rows_where("database", db)[..] {
        [row] => set.rows[row][set.columns.iter().position(|c| c == column).unwrap()]
            .clone()
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// Waits until `db`'s LISTEN connection is listening; its backend pid.
async fn listening_pid(p: &Pooler, db: &str) -> String {
    wait_until(
        "the LISTEN connection is open",
        Duration::from_secs(20),
        || async { listener(p, db, "state").await == "listening" },
    )
    .await;
    listener(p, db, "pid").await
}

#[tokio::test]
async fn a_subscriber_that_does_not_read_is_disconnected_and_the_others_go_on() {
    let p = notify_pooler("transaction", "notify_queue_size = 20");
    let ch = unique_name("flood");
    let mut slow = RawClient::connect(&p, MD5_USER, MD5_PASS, &[]).await;
    slow.send(Frontend::new().query(&format!("LISTEN {ch}")))
        .await;
    let complete = slow.recv().await;
    assert_eq!(complete.tag, b'C', "{complete:?}");
    assert_eq!(slow.recv().await.tag, b'Z');
    let mut fast = Subscriber::connect(&p).await;
    fast.listen(&ch).await;
    // Far more than the slow client's socket buffers and its queue of 20 hold.
    let payload = "x".repeat(7000);
    let n = direct_notifier().await;
    let channel = ch.clone();
    // In rounds the reading subscriber keeps up with, until the other is cut off.
    let mut sent = 0;
    while !p.log().contains("does not read its notifications") {
        assert!(sent < 20_000, "never cut off\n{}", log_tail(&p.log(), 20));
        for _ in 0..10 {
            let tag = format!("{sent}:");
            n.execute("select pg_notify($1, $2 || $3)", &[&ch, &tag, &payload])
                .await
                .unwrap();
            sent += 1;
        }
        for i in sent - 10..sent {
            let got = fast.notification().await;
            assert!(
                got.payload().starts_with(&format!("{i}:")),
                "fast subscriber at {i}"
            );
        }
    }
    wait_until(
        "the slow subscriber is cut off",
        Duration::from_secs(30),
        || async {
            p.log()
                .contains("disconnecting a LISTEN client that does not read its notifications")
        },
    )
    .await;
    let log = p.log();
    assert!(
        log.contains("notify_queue_size = 20"),
        "{}",
        log_tail(&log, 20)
    );
    assert!(
        log.contains(&format!("channel \"{channel}\"")),
        "the log names the channel: {}",
        log_tail(&log, 20)
    );
    assert_eq!(listener(&p, TEST_DB, "slow_clients_cut").await, "1");
    let dropped: u64 = listener(&p, TEST_DB, "dropped").await.parse().unwrap();
    assert!(
        dropped > 20,
        "its queue of 20 and the one that did not fit: {dropped}"
    );
    // Its connection ends: reading it now drains the backlog, then the end of the stream.
    let rest = tokio::time::timeout(Duration::from_secs(60), slow.recv_to_end())
        .await
        .expect("the slow client's connection is closed");
    assert!(
        rest.len() > 20 * 7000,
        "it had notifications waiting: {}",
        rest.len()
    );
    // Others are still served.
    fast.client.batch_execute("select 1").await.unwrap();
}

#[tokio::test]
async fn a_terminated_listen_connection_is_replaced_and_subscribers_are_warned() {
    let p = notify_pooler("transaction", "");
    let ch = unique_name("resilient");
    let mut sub = Subscriber::connect(&p).await;
    sub.listen(&ch).await;
    let pid: i32 = listening_pid(&p, TEST_DB).await.parse().unwrap();
    let su = shared_cluster().superuser_client(TEST_DB).await;
    su.execute("select pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    let notice = sub.notice().await;
    assert_eq!(notice.code().code(), "08006", "{notice:?}");
    assert_eq!(notice.severity(), "WARNING");
    assert!(notice
        .message()
        .contains("notifications may have been lost"));
    wait_until(
        "a new LISTEN connection",
        Duration::from_secs(20),
        || async {
            listener(&p, TEST_DB, "state").await == "listening"
                && listener(&p, TEST_DB, "pid").await != pid.to_string()
        },
    )
    .await;
    assert_eq!(listener(&p, TEST_DB, "reconnects").await, "1");
    let n = direct_notifier().await;
    notify(&n, &ch, "after").await;
    assert_eq!(sub.notification().await.payload(), "after");
}

#[tokio::test]
async fn after_a_postgres_restart_subscribers_are_warned_and_delivery_resumes() {
    let cluster = PgCluster::start();
    let metrics_port = free_port();
    let p = Pooler::start(
        PoolerConfig::new(&cluster)
            .pooler("pool_mode = \"transaction\"")
            .pooler(&format!("metrics_addr = \"127.0.0.1:{metrics_port}\"")),
    );
    let ch = unique_name("restart");
    let mut subs = Vec::new();
    for _ in 0..3 {
        let sub = Subscriber::connect(&p).await;
        sub.listen(&ch).await;
        subs.push(sub);
    }
    // Each LISTEN is handed to the LISTEN connection right after its reply: wait for all.
    wait_until("three subscribers", Duration::from_secs(20), || async {
        listener(&p, TEST_DB, "subscribers").await == "3"
            && listener(&p, TEST_DB, "state").await == "listening"
    })
    .await;
    cluster.restart("fast");
    for sub in &mut subs {
        match sub.next_within(Duration::from_secs(30)).await {
            Some(Unasked::Notice(notice)) => assert_eq!(notice.code().code(), "08006"),
            other => panic!(
                "expected a notice, got {other:?}\n{}",
                log_tail(&p.log(), 40)
            ),
        }
    }
    wait_until("listening again", Duration::from_secs(30), || async {
        listener(&p, TEST_DB, "state").await == "listening"
    })
    .await;
    let (n, _task) = cluster.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    notify(&n, &ch, "back").await;
    for sub in &mut subs {
        assert_eq!(sub.notification().await.payload(), "back");
        // The subscriber's own session survived: it holds no server between transactions.
        sub.client.batch_execute("select 1").await.unwrap();
    }
    let body = http_metrics(metrics_port).await;
    for (series, at_least) in [
        ("pgsluice_listen_connection_up{", 1.0),
        ("pgsluice_listen_subscribers{", 3.0),
        ("pgsluice_listen_reconnects_total{", 1.0),
        ("pgsluice_notification_loss_notices_total{", 3.0),
        ("pgsluice_notifications_delivered_total{", 3.0),
    ] {
        let value = body
            .lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
        assert!(value.is_some_and(|v| v >= at_least), "{series}: {value:?}");
    }
}

async fn http_metrics(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).await.unwrap();
    reply
}

#[tokio::test]
async fn reconnect_on_the_console_replaces_the_listen_connection_too() {
    let p = notify_pooler("transaction", "");
    let ch = unique_name("replaced");
    let mut sub = Subscriber::connect(&p).await;
    sub.listen(&ch).await;
    let before = listening_pid(&p, TEST_DB).await;
    let console = console::console(&p).await;
    console::exec(&console, &format!("RECONNECT {TEST_DB}")).await;
    let notice = sub.notice().await;
    assert_eq!(notice.code().code(), "08006", "{notice:?}");
    wait_until(
        "a new LISTEN connection",
        Duration::from_secs(20),
        || async {
            let pid = listening_pid(&p, TEST_DB).await;
            pid != before
        },
    )
    .await;
    notify(&direct_notifier().await, &ch, "on the new one").await;
    expect_payload(&p, &mut sub, "on the new one").await;
    // The subscriber's own transactions go on, handed over to the new servers.
    sub.client.batch_execute("select 1").await.unwrap();
    notify(&direct_notifier().await, &ch, "still").await;
    expect_payload(&p, &mut sub, "still").await;
}

/// The next notification's payload is `payload`; otherwise fails with the pooler's log.
async fn expect_payload(p: &Pooler, sub: &mut Subscriber, payload: &str) {
    loop {
        match sub.next_within(Duration::from_secs(20)).await {
            Some(Unasked::Notification(n)) => {
                assert_eq!(n.payload(), payload);
                return;
            }
            Some(Unasked::Notice(_)) => continue,
            other => panic!(
                "expected {payload:?}, got {other:?}\n{}",
                log_tail(&p.log(), 60)
            ),
        }
    }
}

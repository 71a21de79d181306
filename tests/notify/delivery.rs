//! Delivery: to idle subscribers, after a subscriber's transaction, to many subscribers from
//! one server connection, in order under load.

use std::time::Duration;

use crate::common::*;
use crate::subscriber::*;

#[tokio::test]
async fn an_idle_subscriber_gets_notifications_as_postgres_sent_them() {
    for mode in ["transaction", "statement"] {
        let p = notify_pooler(mode, "");
        let channel = unique_name("orders");
        let mut sub = Subscriber::connect(&p).await;
        // Simple query protocol.
        sub.listen(&channel).await;
        let notifier = direct_notifier().await;
        let pid = backend_pid(&notifier).await;
        notify(&notifier, &channel, "order 1: {\"table\": 7}").await;
        let n = sub.notification().await;
        assert_eq!(n.channel(), channel, "{mode}");
        assert_eq!(n.payload(), "order 1: {\"table\": 7}", "{mode}");
        assert_eq!(n.process_id(), pid, "{mode}: the sender's pid");
        // The extended protocol too, on a second channel.
        let second = unique_name("stock");
        sub.client
            .execute(&format!("LISTEN {second}"), &[])
            .await
            .unwrap();
        notify(&notifier, &second, "s").await;
        notify(&notifier, &channel, "c").await;
        assert_eq!(sub.payloads(2).await, ["s", "c"], "{mode}");
        sub.nothing_for(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn a_notification_sent_during_a_transaction_arrives_after_it() {
    let p = notify_pooler("transaction", "");
    let ch = unique_name("after_tx");
    let mut sub = Subscriber::connect(&p).await;
    sub.listen(&ch).await;
    let n = direct_notifier().await;
    sub.client.batch_execute("BEGIN; select 1").await.unwrap();
    notify(&n, &ch, "sent meanwhile").await;
    sub.client.batch_execute("select 2").await.unwrap();
    sub.nothing_for(Duration::from_millis(300)).await;
    sub.client.batch_execute("COMMIT").await.unwrap();
    assert_eq!(sub.notification().await.payload(), "sent meanwhile");
}

#[tokio::test]
async fn a_hundred_subscribers_share_one_listen_connection() {
    let db = unique_name("fanout");
    shared_cluster().create_database(&db);
    let p = Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler("pool_mode = \"transaction\"\ndefault_pool_size = 2\nmax_client_conn = 200")
            .database(&db, ""),
    );
    let ch = unique_name("menu");
    let mut subs = Vec::new();
    for _ in 0..100 {
        let sub = Subscriber::connect_to(md5_login(p.connect_config()), &db).await;
        sub.listen(&ch).await;
        subs.push(sub);
    }
    // Many channels on one subscriber too.
    let many: Vec<String> = (0..20).map(|i| format!("{ch}_{i}")).collect();
    for c in &many {
        subs[0]
            .client
            .execute(&format!("LISTEN {c}"), &[])
            .await
            .unwrap();
    }
    let su = shared_cluster().superuser_client(&db).await;
    // Two pool servers at most, plus the one LISTEN connection.
    let held = backends_of(&su, &db, MD5_USER, "%").await;
    assert!(held <= 3, "{held} server connections for 100 subscribers");
    let console = console::console(&p).await;
    wait_until(
        "SHOW LISTENERS counts 100 subscribers on 21 channels",
        Duration::from_secs(20),
        || async {
            let l = console::show(&console, "SHOW LISTENERS").await;
            l.rows_where("database", &db).first().is_some_and(|&row| {
                l.get(row, "state") == "listening"
                    && l.number(row, "subscribers") == 100
                    && l.number(row, "channels") == 21
            })
        },
    )
    .await;
    let chans = console::show(&console, "SHOW CHANNELS").await;
    assert_eq!(chans.lookup("channel", &ch, "subscribers"), "100");

    su.execute("select pg_notify($1, 'special')", &[&ch])
        .await
        .unwrap();
    for sub in &mut subs {
        assert_eq!(sub.notification().await.payload(), "special");
    }
    for c in &many {
        su.execute("select pg_notify($1, $1)", &[c]).await.unwrap();
    }
    assert_eq!(subs[0].payloads(20).await, many);
    // Subscribers that leave are unsubscribed, and the LISTEN connection UNLISTENs.
    drop(subs);
    wait_until(
        "no subscribers and no channels left",
        Duration::from_secs(20),
        || async {
            let l = console::show(&console, "SHOW LISTENERS").await;
            let row = l.row_where("database", &db);
            l.number(row, "subscribers") == 0 && l.number(row, "channels") == 0
        },
    )
    .await;
    assert!(console::show(&console, "SHOW CHANNELS")
        .await
        .rows_where("database", &db)
        .is_empty());
}

#[tokio::test]
async fn notifications_keep_postgres_order_while_subscribers_run_transactions() {
    let p = notify_pooler("transaction", "default_pool_size = 3");
    let ch = unique_name("load");
    const COUNT: usize = 2000;
    let mut tasks = Vec::new();
    let (ready_tx, mut ready) = tokio::sync::mpsc::channel(4);
    for s in 0..4 {
        let mut sub = Subscriber::connect(&p).await;
        let ch = ch.clone();
        let ready_tx = ready_tx.clone();
        tasks.push(tokio::spawn(async move {
            sub.listen(&ch).await;
            ready_tx.send(()).await.unwrap();
            let mut got = Vec::with_capacity(COUNT);
            let mut rounds = 0u32;
            // Transactions keep coming until every notification is in, and a few after.
            while got.len() < COUNT || rounds < 20 {
                // A transaction of its own between reads: its server takes over delivery
                // and hands it back each time.
                let tx = sub.client.transaction().await.unwrap();
                tx.batch_execute("select 1").await.unwrap();
                tx.commit().await.unwrap();
                rounds += 1;
                while let Some(item) = sub.next_within(Duration::from_millis(1)).await {
                    if let Unasked::Notification(n) = item {
                        got.push(n.payload().parse::<usize>().unwrap());
                    }
                }
                assert!(rounds < 200_000, "subscriber {s} stalled at {}", got.len());
            }
            (s, got)
        }));
    }
    for _ in 0..4 {
        ready.recv().await.unwrap();
    }
    let n = direct_notifier().await;
    for i in 0..COUNT {
        notify(&n, &ch, &i.to_string()).await;
    }
    let expected: Vec<usize> = (0..COUNT).collect();
    for task in tasks {
        let (s, got) = task.await.unwrap();
        assert!(
            got == expected,
            "subscriber {s}: out of order, repeated or missing: first difference at {:?}",
            got.iter().zip(&expected).position(|(a, b)| a != b)
        );
    }
}

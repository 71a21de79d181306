//! What a subscriber sees of its own LISTEN state, with Postgres as the oracle: the same
//! script run straight to Postgres and through pgsluice gives the same
//! pg_listening_channels() after every step (rolled-back LISTEN and UNLISTEN, savepoints,
//! UNLISTEN *, DISCARD ALL), own notifications arrive as Postgres sends them, and a LISTEN
//! never reaches another client sharing the server.

use std::time::Duration;

use tokio_postgres::Client;

use crate::common::*;
use crate::subscriber::*;

/// pg_listening_channels(), sorted, as one string.
async fn channels(c: &Client) -> String {
    c.query_one(
        "select coalesce(string_agg(c, ',' order by c), '') from pg_listening_channels() c",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test]
async fn pg_listening_channels_follows_postgres_through_rollbacks_savepoints_and_discard() {
    let p = notify_pooler("transaction", "");
    let a = unique_name("a");
    let b = unique_name("b");
    let c = unique_name("c");
    let d = unique_name("d");
    let script = [
        format!("LISTEN {a}"),
        format!("BEGIN; LISTEN {b}; ROLLBACK"),
        format!("BEGIN; UNLISTEN {a}; ROLLBACK"),
        format!("BEGIN; LISTEN {c}; SAVEPOINT s; LISTEN {d}; ROLLBACK TO s; COMMIT"),
        format!("LISTEN {d}; UNLISTEN {c}"),
        format!("BEGIN; UNLISTEN *; LISTEN {b}; COMMIT"),
        "DISCARD ALL".to_string(),
        format!("LISTEN {a}"),
        "UNLISTEN *".to_string(),
    ];
    let direct = direct_notifier().await;
    let pooled = Subscriber::connect(&p).await;
    // Another client keeps taking servers, so the subscriber moves between them.
    let other = Subscriber::connect(&p).await;
    for step in &script {
        direct.batch_execute(step).await.unwrap();
        pooled.client.batch_execute(step).await.unwrap();
        other.client.batch_execute("select 1").await.unwrap();
        assert_eq!(
            channels(&pooled.client).await,
            channels(&direct).await,
            "after {step}"
        );
        // Inside a transaction block too.
        pooled.client.batch_execute("BEGIN").await.unwrap();
        direct.batch_execute("BEGIN").await.unwrap();
        assert_eq!(
            channels(&pooled.client).await,
            channels(&direct).await,
            "in a transaction after {step}"
        );
        pooled.client.batch_execute("COMMIT").await.unwrap();
        direct.batch_execute("COMMIT").await.unwrap();
    }
}

#[tokio::test]
async fn a_rolled_back_listen_does_not_subscribe_and_unlisten_stops_delivery() {
    for mode in ["transaction", "statement"] {
        let p = notify_pooler(mode, "");
        let [kept, rolled_back, dropped, discarded] =
            ["kept", "rb", "dropped", "discarded"].map(unique_name);
        let mut sub = Subscriber::connect(&p).await;
        sub.client
            .batch_execute(&format!("LISTEN {kept}; LISTEN {dropped}"))
            .await
            .unwrap();
        if mode == "transaction" {
            sub.client
                .batch_execute(&format!("BEGIN; LISTEN {rolled_back}; ROLLBACK"))
                .await
                .unwrap();
        }
        sub.client
            .execute(&format!("UNLISTEN {dropped}"), &[])
            .await
            .unwrap();
        let n = direct_notifier().await;
        for ch in [&rolled_back, &dropped, &kept] {
            notify(&n, ch, ch).await;
        }
        let got = sub.notification().await;
        assert_eq!(got.channel(), kept, "{mode}");
        sub.nothing_for(Duration::from_millis(300)).await;

        // UNLISTEN * and DISCARD ALL end every subscription.
        sub.client.batch_execute("UNLISTEN *").await.unwrap();
        notify(&n, &kept, "after unlisten").await;
        sub.listen(&discarded).await;
        sub.client.batch_execute("DISCARD ALL").await.unwrap();
        notify(&n, &discarded, "after discard").await;
        sub.nothing_for(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn a_subscriber_gets_its_own_notification_from_the_server_it_ran_on() {
    let p = notify_pooler("transaction", "");
    let ch = unique_name("own");
    let mut sub = Subscriber::connect(&p).await;
    sub.listen(&ch).await;
    let tx = sub.client.transaction().await.unwrap();
    let pid: i32 = tx
        .query_one("select pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    tx.execute("select pg_notify($1, 'mine')", &[&ch])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let n = sub.notification().await;
    assert_eq!((n.channel(), n.payload()), (ch.as_str(), "mine"));
    assert_eq!(
        n.process_id(),
        pid,
        "sent by the server the transaction ran on"
    );
    sub.nothing_for(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_listen_never_reaches_another_client_on_the_same_server() {
    // One server: the subscriber and the other client take turns on it.
    let p = notify_pooler("transaction", "default_pool_size = 1");
    let ch = unique_name("private");
    let mut sub = Subscriber::connect(&p).await;
    let mut other = Subscriber::connect(&p).await;
    sub.listen(&ch).await;
    let n = direct_notifier().await;
    for i in 0..40 {
        notify(&n, &ch, &i.to_string()).await;
        // Both use the one server, the subscriber's LISTENs on it while it does.
        sub.client.batch_execute("select 1").await.unwrap();
        let tx = other.client.transaction().await.unwrap();
        tx.batch_execute("select pg_sleep(0.001)").await.unwrap();
        tx.commit().await.unwrap();
    }
    let expected: Vec<String> = (0..40).map(|i| i.to_string()).collect();
    assert_eq!(sub.payloads(40).await, expected);
    other.nothing_for(Duration::from_millis(500)).await;
    assert_eq!(channels(&other.client).await, "");
    sub.nothing_for(Duration::from_millis(100)).await;
}

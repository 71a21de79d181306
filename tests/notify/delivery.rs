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
        sub.client
            .batch_execute(&format!("LISTEN {channel}"))
            .await
            .unwrap();
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

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};

use super::*;
use crate::notify::marker::{Direction, Marker};
use crate::notify::Link;

fn link() -> Arc<Link> {
    Arc::new(Link {
        seen_in: watch::Sender::new(0),
        cut: watch::Sender::new(None),
    })
}

fn set(channels: &[&str]) -> BTreeSet<String> {
    channels.iter().map(|c| c.to_string()).collect()
}

fn marker(direction: Direction, client: u64, seq: u64) -> Marker {
    Marker {
        direction,
        client,
        seq,
    }
}

/// A fan-out where client 1 listens on `channels`, its first hand-back done.
fn subscribed(channels: &[&str]) -> (Fanout, mpsc::Receiver<Bytes>) {
    let mut f = Fanout::new();
    let (tx, rx) = mpsc::channel(10);
    f.join(1, tx, link());
    f.update(1, 1, set(channels));
    f.marker(marker(Direction::Out, 1, 1));
    (f, rx)
}

fn drain(rx: &mut mpsc::Receiver<Bytes>) -> Vec<Bytes> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

#[test]
fn a_subscriber_gets_its_channels_from_its_out_marker_on() {
    let mut f = Fanout::new();
    let (tx, mut rx) = mpsc::channel(10);
    f.join(1, tx, link());
    f.update(1, 1, set(&["orders"]));
    assert_eq!(
        f.wanted(),
        set(&["orders"]),
        "listened on before the marker"
    );
    f.notification("orders", &Bytes::from_static(b"early"));
    assert!(drain(&mut rx).is_empty(), "nothing before the out marker");
    f.marker(marker(Direction::Out, 1, 1));
    let fanned = f.notification("orders", &Bytes::from_static(b"a"));
    assert_eq!(fanned.delivered, 1);
    f.notification("stock", &Bytes::from_static(b"other channel"));
    assert_eq!(drain(&mut rx), [Bytes::from_static(b"a")]);
    assert_eq!(f.channel_counts().get("orders"), Some(&1));
}

#[test]
fn between_in_and_out_markers_the_transactions_server_delivers() {
    let mut f = Fanout::new();
    let (tx, mut rx) = mpsc::channel(10);
    let l = link();
    f.join(1, tx, l.clone());
    f.update(1, 1, set(&["a"]));
    f.marker(marker(Direction::Out, 1, 1));
    f.marker(marker(Direction::In, 1, 2));
    assert_eq!(*l.seen_in.borrow(), 2);
    f.notification("a", &Bytes::from_static(b"during"));
    assert!(drain(&mut rx).is_empty());
    // The transaction UNLISTENed a and LISTENed b.
    f.update(1, 3, set(&["b"]));
    assert_eq!(f.wanted(), set(&["a", "b"]));
    f.marker(marker(Direction::Out, 1, 99));
    f.notification("b", &Bytes::from_static(b"not yet"));
    f.marker(marker(Direction::Out, 1, 3));
    f.notification("a", &Bytes::from_static(b"gone"));
    f.notification("b", &Bytes::from_static(b"now"));
    assert_eq!(drain(&mut rx), [Bytes::from_static(b"now")]);
    assert_eq!(f.wanted(), set(&["b"]), "a is no longer wanted");
}

#[test]
fn a_failed_hand_over_makes_its_in_marker_stale() {
    let (mut f, mut rx) = subscribed(&["a"]);
    f.resume(1, 2);
    f.marker(marker(Direction::In, 1, 2));
    f.notification("a", &Bytes::from_static(b"still mine"));
    assert_eq!(drain(&mut rx).len(), 1);
}

#[test]
fn a_full_queue_cuts_that_client_alone() {
    let mut f = Fanout::new();
    let (slow_tx, _slow_rx) = mpsc::channel(2);
    let (fast_tx, mut fast_rx) = mpsc::channel(100);
    let slow_link = link();
    f.join(1, slow_tx, slow_link.clone());
    f.join(2, fast_tx, link());
    for (client, seq) in [(1, 1), (2, 1)] {
        f.update(client, seq, set(&["orders"]));
        f.marker(marker(Direction::Out, client, seq));
    }
    let mut cut = Vec::new();
    for _ in 0..5 {
        cut.extend(f.notification("orders", &Bytes::from_static(b"n")).cut);
    }
    assert_eq!(cut.len(), 1);
    assert_eq!(cut[0].client, 1);
    assert!(
        cut[0].reason.contains("notify_queue_size = 2"),
        "{}",
        cut[0].reason
    );
    assert!(cut[0].reason.contains("\"orders\""), "{}", cut[0].reason);
    assert_eq!(
        cut[0].dropped, 3,
        "two waiting and the one that did not fit"
    );
    assert!(slow_link.cut.borrow().is_some());
    assert_eq!(drain(&mut fast_rx).len(), 5);
    assert_eq!(f.subscriber_count(), 1);
    assert_eq!(f.channel_counts().get("orders"), Some(&1));
}

#[test]
fn a_reconnect_tells_everyone_and_settles_pending_hand_overs() {
    let mut f = Fanout::new();
    let (tx1, mut rx1) = mpsc::channel(10);
    let (tx2, mut rx2) = mpsc::channel(10);
    f.join(1, tx1, link());
    f.join(2, tx2, link());
    f.update(1, 1, set(&["a"]));
    f.marker(marker(Direction::Out, 1, 1));
    f.update(2, 1, set(&["a"]));
    assert_eq!(f.pending_markers(), [marker(Direction::Out, 2, 1)]);
    let notice = Bytes::from_static(b"lost");
    assert!(f.reconnected(&notice).is_empty());
    assert!(f.pending_markers().is_empty());
    f.notification("a", &Bytes::from_static(b"after"));
    for rx in [&mut rx1, &mut rx2] {
        assert_eq!(
            drain(rx),
            [Bytes::from_static(b"lost"), Bytes::from_static(b"after")]
        );
    }
}

#[test]
fn leaving_forgets_the_client_and_its_channels() {
    let mut f = Fanout::new();
    let (tx, _rx) = mpsc::channel(10);
    f.join(7, tx, link());
    f.update(7, 1, set(&["a", "b"]));
    f.marker(marker(Direction::Out, 7, 1));
    assert_eq!(f.wanted(), set(&["a", "b"]));
    f.leave(7);
    assert!(f.wanted().is_empty());
    assert!(!f.has_subscribers());
}

#[test]
fn a_late_out_marker_does_not_resume_a_client_whose_next_hand_over_began() {
    let (mut f, mut rx) = subscribed(&["a"]);
    // Transaction 2 starts (in 2), its hand-back (out 3) is slow, transaction 4 starts
    // (in 4) before out 3 comes round.
    f.marker(marker(Direction::In, 1, 2));
    f.update(1, 3, set(&["a", "b"]));
    f.marker(marker(Direction::In, 1, 4));
    f.marker(marker(Direction::Out, 1, 3));
    f.notification("a", &Bytes::from_static(b"its server delivers this"));
    assert!(drain(&mut rx).is_empty());
    assert_eq!(f.wanted(), set(&["a", "b"]));
    f.update(1, 5, set(&["b"]));
    f.marker(marker(Direction::Out, 1, 5));
    f.notification("b", &Bytes::from_static(b"mine again"));
    assert_eq!(drain(&mut rx), [Bytes::from_static(b"mine again")]);
}

#[test]
fn a_hand_over_announced_without_a_connection_suspends_until_its_hand_back() {
    let (mut f, mut rx) = subscribed(&["a"]);
    // Announced while connected, but the connection is lost before its marker comes.
    f.handed_in(1, 2, true);
    f.notification("a", &Bytes::from_static(b"before the marker"));
    assert_eq!(drain(&mut rx).len(), 1);
    let notice = Bytes::from_static(b"lost");
    f.reconnected(&notice);
    f.notification("a", &Bytes::from_static(b"its server delivers this"));
    assert_eq!(drain(&mut rx), std::slice::from_ref(&notice));
    // Without a connection at all the announcement suspends at once.
    f.update(1, 3, set(&["a"]));
    f.reconnected(&notice);
    f.handed_in(1, 4, false);
    f.notification("a", &Bytes::from_static(b"x"));
    assert_eq!(drain(&mut rx), [notice]);
}

#[test]
fn a_back_marker_resumes_with_the_channels_as_they_were() {
    let (mut f, mut rx) = subscribed(&["a"]);
    f.marker(marker(Direction::In, 1, 2));
    f.notification("a", &Bytes::from_static(b"its server's"));
    f.marker(marker(Direction::Back, 1, 3));
    f.notification("a", &Bytes::from_static(b"mine"));
    assert_eq!(drain(&mut rx), [Bytes::from_static(b"mine")]);
    assert_eq!(f.wanted(), set(&["a"]));
}

//! Ledger bookkeeping without sockets: FIFO handoff, shared budgets and fairness across pools,
//! eviction of idle servers, the reserve pool, refusals remembered for server_login_retry.

use std::time::{Duration, Instant};

use super::*;

#[derive(Debug, PartialEq, Eq)]
pub(in crate::pool) struct Fake {
    pub(in crate::pool) id: u32,
    pub(in crate::pool) connected_at: Instant,
    pub(in crate::pool) last_used: Instant,
}

impl ServerTimes for Fake {
    fn connected_at(&self) -> Instant {
        self.connected_at
    }
    fn last_used(&self) -> Instant {
        self.last_used
    }
}

pub(in crate::pool) fn fake(id: u32, at: Instant) -> Fake {
    Fake {
        id,
        connected_at: at,
        last_used: at,
    }
}

pub(in crate::pool) fn sized(size: usize) -> Limits {
    Limits {
        size,
        login_retry: Duration::from_secs(15),
        ..Limits::default()
    }
}

fn connects(step: Checkout<Fake>) -> Option<Fake> {
    match step {
        Checkout::Connect { victim } => victim,
        other => panic!("expected Connect, got {other:?}"),
    }
}

fn waits(step: Checkout<Fake>) -> (u64, oneshot::Receiver<Handoff<Fake>>) {
    match step {
        Checkout::Wait { ticket, rx } => (ticket, rx),
        other => panic!("expected Wait, got {other:?}"),
    }
}

fn got(rx: &mut oneshot::Receiver<Handoff<Fake>>) -> Option<Handoff<Fake>> {
    rx.try_recv().ok()
}

fn server_id(grant: Option<Handoff<Fake>>) -> u32 {
    match grant {
        Some(Handoff::Server(c)) => c.id,
        other => panic!("expected a server, got {other:?}"),
    }
}

fn is_slot(grant: Option<Handoff<Fake>>) -> bool {
    matches!(grant, Some(Handoff::Slot))
}

#[test]
fn released_servers_go_to_waiters_in_arrival_order() {
    let now = Instant::now();
    let mut l = Ledger::default();
    let p = l.register("db", "alice", sized(1));
    assert!(connects(l.checkout(p, now)).is_none());
    let (_, mut first) = waits(l.checkout(p, now));
    let (_, mut second) = waits(l.checkout(p, now));
    assert_eq!(
        l.counts(p),
        Counts {
            open: 1,
            idle: 0,
            waiting: 2
        }
    );

    assert!(l.release(p, fake(1, now), now).is_empty());
    assert_eq!(server_id(got(&mut first)), 1);
    assert!(got(&mut second).is_none());
    l.release(p, fake(1, now), now);
    assert_eq!(server_id(got(&mut second)), 1);
    l.release(p, fake(1, now), now);
    assert_eq!(
        l.counts(p),
        Counts {
            open: 1,
            idle: 1,
            waiting: 0
        }
    );
    // The idle server is handed out again, not a new one opened.
    assert!(matches!(
        l.checkout(p, now),
        Checkout::Server(Fake { id: 1, .. })
    ));
}

#[test]
fn a_freed_slot_lets_the_longest_waiter_open_a_server() {
    let now = Instant::now();
    let mut l: Ledger<Fake> = Ledger::default();
    let p = l.register("db", "alice", sized(1));
    connects(l.checkout(p, now));
    let (_, mut w) = waits(l.checkout(p, now));
    l.free(p, now);
    assert!(is_slot(got(&mut w)));
    assert_eq!(l.counts(p).open, 1, "the slot moved, it was not lost");
}

#[test]
fn max_db_connections_is_shared_and_idle_servers_of_other_pools_make_room() {
    let now = Instant::now();
    let mut l = Ledger::default();
    let limits = Limits {
        db_limit: 2,
        ..sized(5)
    };
    let a = l.register("db", "alice", limits.clone());
    let b = l.register("db", "bob", limits);
    connects(l.checkout(a, now));
    connects(l.checkout(a, now));
    let (_, mut bw) = waits(l.checkout(b, now));
    assert_eq!(l.db_budget("db").open, 2);

    // Alice's server comes back idle: it is closed and bob opens one in its place.
    let closing = l.release(a, fake(1, now), now);
    assert_eq!(closing.len(), 1);
    assert_eq!(closing[0].1, CloseReason::Evicted);
    assert!(is_slot(got(&mut bw)));
    assert_eq!(l.db_budget("db").open, 2);
    assert_eq!((l.counts(a).open, l.counts(b).open), (1, 1));

    // Alice's idle server is evicted at checkout time too.
    l.release(a, fake(2, now), now);
    l.free(b, now);
    connects(l.checkout(b, now));
    assert_eq!(l.counts(a).idle, 1);
    let victim = connects(l.checkout(b, now)).expect("alice's idle server evicted");
    assert_eq!(victim.id, 2);
    assert_eq!(l.db_budget("db").open, 2);
}

#[test]
fn pools_sharing_a_budget_are_served_in_the_order_their_clients_arrived() {
    let now = Instant::now();
    let mut l = Ledger::default();
    let limits = Limits {
        db_limit: 2,
        ..sized(5)
    };
    let a = l.register("db", "alice", limits.clone());
    let b = l.register("db", "bob", limits);
    connects(l.checkout(a, now));
    connects(l.checkout(a, now));
    let (_, mut bob) = waits(l.checkout(b, now));
    let (_, mut alice) = waits(l.checkout(a, now));
    // Alice's busy pool releases a server while her own client waits: bob arrived first,
    // so alice's server is closed and bob gets the slot; alice does not starve bob.
    let closing = l.release(a, fake(1, now), now);
    assert_eq!(closing.len(), 1);
    assert!(is_slot(got(&mut bob)));
    assert!(got(&mut alice).is_none());
    // The next release serves alice.
    l.release(a, fake(2, now), now);
    assert_eq!(server_id(got(&mut alice)), 2);
}

#[test]
fn a_waiter_blocked_by_its_own_pool_does_not_hold_up_other_pools() {
    let now = Instant::now();
    let mut l: Ledger<Fake> = Ledger::default();
    let a = l.register("db", "alice", sized(1));
    let b = l.register("db", "bob", sized(1));
    connects(l.checkout(a, now));
    let _wait = waits(l.checkout(a, now));
    assert!(connects(l.checkout(b, now)).is_none());
}

#[test]
fn max_user_connections_spans_databases() {
    let now = Instant::now();
    let mut l: Ledger<Fake> = Ledger::default();
    let limits = Limits {
        user_limit: 1,
        ..sized(5)
    };
    let one = l.register("one", "alice", limits.clone());
    let two = l.register("two", "alice", limits);
    connects(l.checkout(one, now));
    let (_, mut w) = waits(l.checkout(two, now));
    assert_eq!(l.user_budget("alice").open, 1);
    l.free(one, now);
    assert!(is_slot(got(&mut w)));
    assert_eq!(l.user_budget("alice").open, 1);
}

#[test]
fn the_reserve_opens_once_the_first_waiter_waited_reserve_pool_timeout() {
    let now = Instant::now();
    let mut l: Ledger<Fake> = Ledger::default();
    let p = l.register(
        "db",
        "alice",
        Limits {
            reserve: 1,
            reserve_timeout: Duration::from_millis(200),
            ..sized(1)
        },
    );
    connects(l.checkout(p, now));
    let (_, mut w) = waits(l.checkout(p, now));
    l.dispatch(now + Duration::from_millis(100));
    assert!(got(&mut w).is_none());
    l.dispatch(now + Duration::from_millis(200));
    assert!(is_slot(got(&mut w)));
    assert_eq!(l.counts(p).open, 2);
    // The reserve is only for clients that waited: a new client queues.
    let (_, mut w2) = waits(l.checkout(p, now + Duration::from_millis(200)));
    l.dispatch(now + Duration::from_secs(1));
    assert!(
        got(&mut w2).is_none(),
        "pool_size + reserve_pool_size reached"
    );
}

#[test]
fn a_waiter_that_gives_up_leaves_the_queue_and_a_sent_grant_is_kept() {
    let now = Instant::now();
    let mut l = Ledger::default();
    let p = l.register("db", "alice", sized(1));
    connects(l.checkout(p, now));
    let (t1, _rx1) = waits(l.checkout(p, now));
    let (t2, mut rx2) = waits(l.checkout(p, now));
    assert!(l.withdraw(p, t1));
    assert_eq!(l.counts(p).waiting, 1);
    l.release(p, fake(1, now), now);
    // The second waiter got it; withdrawing now says "already granted".
    assert!(!l.withdraw(p, t2));
    assert_eq!(server_id(got(&mut rx2)), 1);
}

#[test]
fn a_refused_login_fails_new_checkouts_fast_for_server_login_retry() {
    let now = Instant::now();
    let mut l: Ledger<Fake> = Ledger::default();
    let p = l.register("db", "alice", sized(2));
    connects(l.checkout(p, now));
    l.login_failed(
        p,
        LoginFailure {
            code: "28P01".into(),
            message: "password authentication failed".into(),
            at: now,
        },
    );
    l.free(p, now);
    match l.checkout(p, now + Duration::from_secs(1)) {
        Checkout::Refused(f) => assert_eq!(f.code, "28P01"),
        other => panic!("expected Refused, got {other:?}"),
    }
    assert_eq!(l.counts(p).open, 0, "a refusal holds no slot");
    assert!(connects(l.checkout(p, now + Duration::from_secs(15))).is_none());
    l.login_succeeded(p);
    assert!(l.recent_failure(p, now).is_none());
}

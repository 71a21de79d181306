//! LISTEN/NOTIFY in transaction and statement pooling. A client's LISTENs follow it as its
//! settings do: between its transactions a subscriber holds no server, and one listening
//! connection per pool (`hub`) LISTENs on the union of its clients' channels and fans each
//! notification out to their bounded queues (`fanout`). While a subscriber runs a
//! transaction, its channels are LISTENed on that transaction's server too, so Postgres
//! itself delivers there (own notifications, pg_listening_channels(), rolled-back LISTEN
//! all as on a direct connection); markers (`marker`) on a channel of pgsluice's own cut
//! the one order Postgres delivers in between the two sessions, so nothing is lost or
//! repeated. The client side of the hand-over is `client::listen`.

mod fanout;
mod hub;
pub(crate) mod marker;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};

use crate::pool::{Pool, PoolKey};

/// What a client's `Subscription` shares with its listening connection.
pub(crate) struct Link {
    /// The sequence number of the last "in" marker the listening connection has seen.
    seen_in: watch::Sender<u64>,
    /// Why the client was disconnected (its queue was full); None while it is not.
    cut: watch::Sender<Option<String>>,
}

/// What a client asks of its pool's listening connection.
enum Request {
    Join {
        client: u64,
        queue: mpsc::Sender<Bytes>,
        link: Arc<Link>,
    },
    /// Listen on these channels for the client, and mark where it starts ("out" marker).
    Update {
        client: u64,
        seq: u64,
        channels: BTreeSet<String>,
    },
    /// A hand-over to the client's server with this sequence number is starting.
    HandIn {
        client: u64,
        seq: u64,
    },
    /// A hand-over to the client's server with this sequence number failed.
    Resume {
        client: u64,
        seq: u64,
    },
    /// Tell the client notifications may have been lost.
    Lost {
        client: u64,
    },
    Leave {
        client: u64,
    },
}

/// The state of a listening connection, as SHOW LISTENERS shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HubState {
    /// No subscriber, no connection.
    Idle,
    Connecting,
    Listening,
    /// Lost; connecting again after a pause.
    Reconnecting,
}

impl HubState {
    pub(crate) fn name(self) -> &'static str {
        match self {
            HubState::Idle => "idle",
            HubState::Connecting => "connecting",
            HubState::Listening => "listening",
            HubState::Reconnecting => "reconnecting",
        }
    }

    fn from_u8(v: u8) -> HubState {
        match v {
            1 => HubState::Connecting,
            2 => HubState::Listening,
            3 => HubState::Reconnecting,
            _ => HubState::Idle,
        }
    }
}

/// Counters of one listening connection, for SHOW LISTENERS / SHOW CHANNELS and metrics.
#[derive(Default)]
pub(crate) struct HubStats {
    state: AtomicU8,
    /// Backend pid of the listening connection; 0 when there is none.
    pub(crate) server_pid: AtomicU32,
    /// Notifications queued for clients (one per client reached).
    pub(crate) delivered: AtomicU64,
    /// Notifications Postgres sent on the listening connection.
    pub(crate) received: AtomicU64,
    /// Clients disconnected because their queue was full.
    pub(crate) slow_clients_cut: AtomicU64,
    /// Notifications that reached no client they were for: waiting for, or not fitting in,
    /// the queue of a client that was cut off; or on a channel pgsluice cannot route.
    pub(crate) dropped: AtomicU64,
    /// Times the listening connection was lost and opened again.
    pub(crate) reconnects: AtomicU64,
    /// Lost-notifications notices queued for clients.
    pub(crate) loss_notices: AtomicU64,
    pub(crate) subscribers: AtomicU64,
    /// Channel → (subscribers, notifications queued for them), kept by the hub task.
    pub(crate) channels: Mutex<BTreeMap<String, (usize, u64)>>,
    /// Where the listening connection is, and since when ("" and None without one).
    pub(crate) server: Mutex<(String, Option<Instant>)>,
}

impl HubStats {
    pub(crate) fn state(&self) -> HubState {
        HubState::from_u8(self.state.load(Ordering::Relaxed))
    }

    fn set_state(&self, state: HubState) {
        self.state.store(state as u8, Ordering::Relaxed);
    }
}

/// One pool's listening connection, as clients and the console see it.
pub(crate) struct Hub {
    pub(crate) key: PoolKey,
    /// The channel this connection's markers travel on.
    pub(crate) sync_channel: String,
    requests: mpsc::UnboundedSender<Request>,
    pub(crate) stats: Arc<HubStats>,
}

impl Hub {
    /// Subscribes `client`: notifications for it queue up (at most notify_queue_size) until
    /// it reads them. It listens on nothing until its first `update`.
    pub(crate) fn join(self: &Arc<Self>, client: u64, queue_size: usize) -> Subscription {
        let (queue_tx, queue) = mpsc::channel(queue_size.max(1));
        let link = Arc::new(Link {
            seen_in: watch::Sender::new(0),
            cut: watch::Sender::new(None),
        });
        let _ = self.requests.send(Request::Join {
            client,
            queue: queue_tx,
            link: link.clone(),
        });
        Subscription {
            client,
            hub: self.clone(),
            queue,
            link,
        }
    }
}

/// A client's place on its pool's listening connection; leaving it unsubscribes.
pub(crate) struct Subscription {
    client: u64,
    hub: Arc<Hub>,
    queue: mpsc::Receiver<Bytes>,
    link: Arc<Link>,
}

impl Subscription {
    pub(crate) fn sync_channel(&self) -> &str {
        &self.hub.sync_channel
    }

    /// From the "out" marker `seq` on, the listening connection delivers `channels`.
    pub(crate) fn update(&self, seq: u64, channels: BTreeSet<String>) {
        let _ = self.hub.requests.send(Request::Update {
            client: self.client,
            seq,
            channels,
        });
    }

    /// The hand-over `seq` to the client's server starts (sent before its "in" marker).
    pub(crate) fn hand_in(&self, seq: u64) {
        let _ = self.hub.requests.send(Request::HandIn {
            client: self.client,
            seq,
        });
    }

    /// The hand-over `seq` to the client's server did not happen; deliver again.
    pub(crate) fn resume(&self, seq: u64) {
        let _ = self.hub.requests.send(Request::Resume {
            client: self.client,
            seq,
        });
    }

    /// Queue a lost-notifications notice for this client.
    pub(crate) fn lost(&self) {
        let _ = self.hub.requests.send(Request::Lost {
            client: self.client,
        });
    }

    /// Waits until the listening connection has seen the "in" marker `seq` (it then
    /// delivers nothing more to this client). Some(false) if it has not within `limit`;
    /// None at once while there is no listening connection (it tells the client itself,
    /// once it is back, that notifications may have been lost).
    pub(crate) async fn in_marker_seen(
        &self,
        seq: u64,
        limit: std::time::Duration,
    ) -> Option<bool> {
        if self.hub.stats.state() != HubState::Listening {
            return None;
        }
        let mut seen = self.link.seen_in.subscribe();
        Some(
            tokio::time::timeout(limit, seen.wait_for(|s| *s >= seq))
                .await
                .is_ok_and(|r| r.is_ok()),
        )
    }

    /// A queued notification (or notice), if one is waiting.
    pub(crate) fn try_next(&mut self) -> Option<Bytes> {
        self.queue.try_recv().ok()
    }

    /// The next queued notification or notice; once the queue is empty and closed, why
    /// (the client was cut off). A poll, not a future, so that an idle client's wait keeps
    /// no room for one.
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Bytes, String>> {
        self.queue.poll_recv(cx).map(|frame| {
            frame.ok_or_else(|| {
                self.cut_reason()
                    .unwrap_or_else(|| "the LISTEN connection forgot this client".to_string())
            })
        })
    }

    /// Resolves once the client is cut off (its queue overflowed).
    pub(crate) async fn cut(&self) -> String {
        let mut cut = self.link.cut.subscribe();
        let _ = cut.wait_for(Option::is_some).await;
        self.cut_reason().unwrap_or_default()
    }

    pub(crate) fn cut_reason(&self) -> Option<String> {
        self.link.cut.borrow().clone()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let _ = self.hub.requests.send(Request::Leave {
            client: self.client,
        });
    }
}

/// Every pool's listening connection, created with the pool's first subscriber.
pub(crate) struct Hubs {
    hubs: Mutex<HashMap<PoolKey, Arc<Hub>>>,
    /// Random per process: sync channel names of two pgsluice processes never meet.
    nonce: u64,
    next_id: AtomicU64,
}

impl Hubs {
    pub(crate) fn new() -> Hubs {
        Hubs {
            hubs: Mutex::default(),
            nonce: rand::random(),
            next_id: AtomicU64::new(1),
        }
    }

    /// `pool`'s listening connection, started on first use.
    pub(crate) fn hub(&self, pool: &Arc<Pool>) -> Arc<Hub> {
        let mut hubs = self.hubs.lock().expect("hubs lock");
        if let Some(hub) = hubs.get(&pool.key) {
            return hub.clone();
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (requests, rx) = mpsc::unbounded_channel();
        let hub = Arc::new(Hub {
            key: pool.key.clone(),
            sync_channel: marker::sync_channel(self.nonce, id),
            requests,
            stats: Arc::default(),
        });
        tokio::spawn(hub::run(
            hub.stats.clone(),
            hub.sync_channel.clone(),
            pool.clone(),
            rx,
        ));
        hubs.insert(pool.key.clone(), hub.clone());
        hub
    }

    pub(crate) fn all(&self) -> Vec<Arc<Hub>> {
        let hubs = self.hubs.lock().expect("hubs lock");
        let mut all: Vec<Arc<Hub>> = hubs.values().cloned().collect();
        all.sort_by(|a, b| a.key.cmp(&b.key));
        all
    }
}

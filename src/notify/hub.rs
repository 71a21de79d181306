//! The task that owns one pool's listening connection: opened with the first subscriber,
//! LISTENing on the sync channel and the union of its subscribers' channels (UNLISTEN when
//! the last one leaves a channel), fanning out what Postgres sends, and acting on markers.
//! When the connection is lost (pg_terminate_backend, a restart) it connects again with a
//! growing pause, LISTENs again and tells every subscriber, with a WARNING notice, that
//! notifications may have been lost meanwhile. Replaced, the same way, when the pool's
//! servers are (RECONNECT, a reload that moves them). Closed after server_idle_timeout
//! without subscribers.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::fanout::{Cut, Fanout};
use super::marker::{listen_sql, quote_ident, Marker};
use super::{HubState, HubStats, Request};
use crate::pool::Pool;
use crate::protocol::backend::error_fields;
use crate::protocol::notification;
use crate::protocol::sqlstate;
use crate::protocol::tags::backend_tag;
use crate::server::{read_messages, send_query_only, ServerConn, ServerError};

/// Pauses between attempts to open the listening connection.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const LONGEST_PAUSE: Duration = Duration::from_secs(5);

/// Why a listening session ended without error.
enum Ended {
    /// No subscriber for server_idle_timeout.
    Idle,
    /// The pool's hub is gone (pgsluice is exiting).
    Gone,
}

struct Hub {
    stats: Arc<HubStats>,
    sync: String,
    pool: Arc<Pool>,
    fanout: Fanout,
    /// The last connection was lost with subscribers on it: the next one tells them.
    lost: Option<String>,
}

pub(super) async fn run(
    stats: Arc<HubStats>,
    sync: String,
    pool: Arc<Pool>,
    mut requests: mpsc::UnboundedReceiver<Request>,
) {
    let mut hub = Hub {
        stats,
        sync,
        pool,
        fanout: Fanout::new(),
        lost: None,
    };
    let mut pause = FIRST_PAUSE;
    loop {
        hub.stats.set_state(HubState::Idle);
        while !hub.fanout.has_subscribers() {
            match requests.recv().await {
                Some(request) => hub.apply(request),
                None => return,
            }
        }
        hub.stats.set_state(match hub.lost {
            Some(_) => HubState::Reconnecting,
            None => HubState::Connecting,
        });
        let Some(conn) = hub.connect(&mut requests).await else {
            return;
        };
        let conn = match conn {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(pool = %hub.pool.key.database, user = %hub.pool.key.user, reason = %e, "cannot open the LISTEN connection; trying again");
                hub.lost.get_or_insert_with(|| e.to_string());
                hub.wait(pause, &mut requests).await;
                pause = (pause * 2).min(LONGEST_PAUSE);
                continue;
            }
        };
        pause = FIRST_PAUSE;
        match hub.serve(conn, &mut requests).await {
            Ok(Ended::Idle) => {}
            Ok(Ended::Gone) => return,
            Err(e) => {
                tracing::warn!(pool = %hub.pool.key.database, user = %hub.pool.key.user, reason = %e, "LISTEN connection lost; connecting again");
                hub.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                if hub.fanout.has_subscribers() {
                    hub.lost = Some(e.to_string());
                }
            }
        }
        hub.stats.server_pid.store(0, Ordering::Relaxed);
        *hub.stats.server.lock().expect("hub stats") = (String::new(), None);
    }
}

impl Hub {
    /// Opens the connection while still answering clients; None when the hub is gone.
    async fn connect(
        &mut self,
        requests: &mut mpsc::UnboundedReceiver<Request>,
    ) -> Option<Result<ServerConn, ServerError>> {
        let pool = self.pool.clone();
        let open = pool.open_unpooled();
        tokio::pin!(open);
        loop {
            tokio::select! {
                conn = &mut open => return Some(conn),
                request = requests.recv() => match request {
                    Some(request) => self.apply(request),
                    None => return None,
                },
            }
        }
    }

    /// Sleeps `pause` while answering clients.
    async fn wait(&mut self, pause: Duration, requests: &mut mpsc::UnboundedReceiver<Request>) {
        let until = tokio::time::Instant::now() + pause;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(until) => return,
                request = requests.recv() => match request {
                    Some(request) => self.apply(request),
                    None => return,
                },
            }
        }
    }

    /// Listens on `conn` until it fails, the hub goes, or no subscriber is left for long.
    async fn serve(
        &mut self,
        mut conn: ServerConn,
        requests: &mut mpsc::UnboundedReceiver<Request>,
    ) -> Result<Ended, ServerError> {
        let mut listening = self.fanout.wanted();
        // Its markers write nothing worth keeping: no commit waits for a disk flush.
        let mut sql = format!(
            "SET synchronous_commit TO off; {}{}",
            listen_sql([self.sync.as_str()]),
            listen_sql(listening.iter().map(String::as_str))
        );
        if self.lost.is_none() {
            // Hand-overs that came while the first connection opened: their markers now.
            for marker in self.fanout.pending_markers() {
                sql.push_str(&marker.notify_sql(&self.sync));
                sql.push_str("; ");
            }
        }
        send_query_only(&mut conn, &sql).await?;
        // Listening only once those LISTENs have committed: a notification committed before
        // then may be missed, which is what the lost-notifications warning below covers.
        let mut frames = Vec::new();
        let mut ready = false;
        while !ready {
            read_messages(&mut conn, &mut frames).await?;
            for (tag, body) in frames.drain(..) {
                ready |= tag == backend_tag::READY_FOR_QUERY;
                self.message(tag, &body)?;
            }
        }
        let (addr, _) = conn.address().host_port();
        self.stats
            .server_pid
            .store(conn.backend_key().0, Ordering::Relaxed);
        *self.stats.server.lock().expect("hub stats") = (addr, Some(Instant::now()));
        self.stats.set_state(HubState::Listening);
        tracing::info!(pool = %self.pool.key.database, user = %self.pool.key.user, channels = listening.len(), "LISTEN connection open");
        if let Some(reason) = self.lost.take() {
            let notice = lost_notice(&reason);
            let cuts = self.fanout.reconnected(&notice);
            self.counted_notices(self.fanout.subscriber_count() + cuts.len());
            self.log_cuts(&cuts);
        }
        self.publish();
        let idle_after = self.pool.settings().server_idle_timeout;
        // RECONNECT, or a reload that moved the pool's servers: this connection goes too.
        let generation = self.pool.generation.load(Ordering::SeqCst);
        let mut look_again = tokio::time::interval(Duration::from_secs(1));
        let mut idle_since: Option<tokio::time::Instant> = None;
        loop {
            if self.fanout.has_subscribers() {
                idle_since = None;
            } else if idle_since.is_none() {
                idle_since = Some(tokio::time::Instant::now());
            }
            let idle_deadline = idle_since
                .filter(|_| !idle_after.is_zero())
                .map(|t| t + idle_after);
            tokio::select! {
                read = read_messages(&mut conn, &mut frames) => {
                    read?;
                    for (tag, body) in frames.drain(..) {
                        self.message(tag, &body)?;
                    }
                }
                request = requests.recv() => {
                    let Some(request) = request else {
                        conn.terminate_now();
                        return Ok(Ended::Gone);
                    };
                    let marker = match &request {
                        Request::Update { client, seq, .. } => Some(Marker {
                            direction: super::marker::Direction::Out,
                            client: *client,
                            seq: *seq,
                        }),
                        _ => None,
                    };
                    self.apply(request);
                    let sql = self.reconcile(&mut listening, marker);
                    if !sql.is_empty() {
                        send_query_only(&mut conn, &sql).await?;
                    }
                    self.publish();
                }
                _ = look_again.tick() => {
                    if self.pool.generation.load(Ordering::SeqCst) != generation {
                        conn.terminate_now();
                        return Err(ServerError::Unexpected(
                            "the pool's servers are being replaced (RECONNECT or a reload)".into(),
                        ));
                    }
                }
                () = tokio::time::sleep_until(idle_deadline.unwrap_or_else(tokio::time::Instant::now)), if idle_deadline.is_some() => {
                    tracing::info!(pool = %self.pool.key.database, user = %self.pool.key.user, "closing the LISTEN connection: no client listens (server_idle_timeout)");
                    conn.terminate_now();
                    return Ok(Ended::Idle);
                }
            }
        }
    }

    /// One message from the listening connection.
    fn message(&mut self, tag: u8, body: &[u8]) -> Result<(), ServerError> {
        match tag {
            backend_tag::NOTIFICATION_RESPONSE => {
                let Some(n) = notification::parse(body) else {
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(pool = %self.pool.key.database, "dropped a notification pgsluice cannot route (its channel name is not UTF-8)");
                    return Ok(());
                };
                if n.channel == self.sync {
                    if let Some(marker) = Marker::parse(n.payload) {
                        self.fanout.marker(marker);
                        self.publish();
                    }
                    return Ok(());
                }
                self.stats.received.fetch_add(1, Ordering::Relaxed);
                let frame = notification::frame(body);
                let fanned = self.fanout.notification(n.channel, &frame);
                self.stats
                    .delivered
                    .fetch_add(fanned.delivered, Ordering::Relaxed);
                if let Ok(mut channels) = self.stats.channels.lock() {
                    if let Some(c) = channels.get_mut(n.channel) {
                        c.1 += fanned.delivered;
                    }
                }
                if !fanned.cut.is_empty() {
                    self.log_cuts(&fanned.cut);
                    self.publish();
                }
                Ok(())
            }
            backend_tag::ERROR_RESPONSE => {
                // A LISTEN refused (a standby: "cannot execute LISTEN during recovery") or
                // the session ended (pg_terminate_backend): either way this connection cannot
                // serve; a new one may.
                let f = error_fields(body);
                Err(ServerError::Rejected {
                    code: f.code.unwrap_or_default(),
                    message: f.message.unwrap_or_default(),
                })
            }
            _ => Ok(()),
        }
    }

    fn apply(&mut self, request: Request) {
        match request {
            Request::Join {
                client,
                queue,
                link,
            } => self.fanout.join(client, queue, link),
            Request::Update {
                client,
                seq,
                channels,
            } => self.fanout.update(client, seq, channels),
            Request::HandIn { client, seq } => {
                let connected = self.stats.state() == HubState::Listening;
                self.fanout.handed_in(client, seq, connected);
            }
            Request::Resume { client, seq } => self.fanout.resume(client, seq),
            Request::Lost { client } => {
                let notice = lost_notice("the hand-over of this client's LISTEN took too long");
                let cut = self.fanout.lost(client, &notice);
                self.counted_notices(1);
                self.log_cuts(cut.as_slice());
            }
            Request::Leave { client } => self.fanout.leave(client),
        }
    }

    /// SQL that makes the connection listen on what subscribers want (new channels first,
    /// then the "out" marker, in one transaction so the marker comes after them), and stop
    /// listening on what nobody wants; "" when nothing changes.
    fn reconcile(&self, listening: &mut BTreeSet<String>, marker: Option<Marker>) -> String {
        let wanted = self.fanout.wanted();
        let mut sql = listen_sql(wanted.difference(listening).map(String::as_str));
        for gone in listening.difference(&wanted) {
            sql.push_str("UNLISTEN ");
            sql.push_str(&quote_ident(gone));
            sql.push_str("; ");
        }
        if let Some(marker) = marker {
            sql.push_str(&marker.notify_sql(&self.sync));
        }
        *listening = wanted;
        sql
    }

    /// Refreshes what SHOW LISTENERS / SHOW CHANNELS read.
    fn publish(&self) {
        self.stats
            .subscribers
            .store(self.fanout.subscriber_count() as u64, Ordering::Relaxed);
        let counts = self.fanout.channel_counts();
        let mut channels = self.stats.channels.lock().expect("hub stats");
        channels.retain(|name, _| counts.contains_key(name));
        for (name, subscribers) in counts {
            channels.entry(name).or_insert((0, 0)).0 = subscribers;
        }
    }

    fn counted_notices(&self, n: usize) {
        self.stats
            .loss_notices
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    fn log_cuts(&self, cuts: &[Cut]) {
        for cut in cuts {
            self.stats.slow_clients_cut.fetch_add(1, Ordering::Relaxed);
            self.stats.dropped.fetch_add(cut.dropped, Ordering::Relaxed);
            tracing::warn!(pool = %self.pool.key.database, user = %self.pool.key.user, client = cut.client, reason = %cut.reason, "disconnecting a LISTEN client that does not read its notifications");
        }
    }
}

/// The WARNING a subscriber gets when notifications may have been lost.
fn lost_notice(reason: &str) -> Bytes {
    notification::warning(
        sqlstate::CONNECTION_FAILURE,
        "notifications may have been lost: pgsluice's LISTEN connection to the server was \
         interrupted; LISTEN again is not needed",
        &format!("cause: {reason}"),
    )
}

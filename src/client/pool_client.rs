//! What session and transaction pooling share: a logged-in client (`PoolClient`), the first
//! server it meets (startup parameters applied, ParameterStatus/BackendKeyData/ReadyForQuery
//! sent), and relaying with the client-side timeouts and shutdown notices. Giving the server
//! back afterwards is `settle`'s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use super::settings::Settings;
use super::ClientError;
use crate::config::ClientTimeouts;
use crate::live::{ConnInfo, ConnState, TrafficStats};
use crate::net::pump::Pump;
use crate::net::BoxStream;
use crate::pool::{Lease, Pool, Report};
use crate::prepared::ClientStatements;
use crate::protocol::backend::{self, Severity};
use crate::protocol::tracker::{Tracker, TX_IDLE};
use crate::relay::{
    relay, Activity, ClientSide, Prepared, RelayEnd, RelayStops, ReplyPlan, SessionEffects,
};
use crate::server::{apply, Applied, ServerConn};
use crate::state::{Shared, Shutdown};

/// A logged-in client, ready for its session.
pub(crate) struct PoolClient<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) stream: &'a mut BoxStream,
    pub(crate) pump: Pump,
    pub(crate) pool: Arc<Pool>,
    /// Its session settings: what it expects on any server, and what it has been told.
    pub(crate) settings: Settings,
    pub(crate) cancel_key: (u32, u32),
    pub(crate) client_id: u64,
    pub(crate) timeouts: ClientTimeouts,
    /// This client's named prepared statements, when pgsluice maps them (transaction and
    /// statement pooling); None passes names through (session pooling).
    pub(crate) statements: Option<ClientStatements>,
    /// Its record in SHOW CLIENTS.
    pub(crate) info: Arc<ConnInfo>,
    /// pin_session_state for its pool: state that cannot move keeps its server.
    pub(crate) pin_session_state: bool,
    /// session_read_back_always for its pool: read back after every transaction.
    pub(crate) read_back_always: bool,
    /// Its LISTENs (transaction and statement pooling); None while it listens on nothing.
    pub(crate) listen: Option<Box<super::listen::ClientListen>>,
}

/// Why relaying for this client stopped.
#[derive(Debug)]
pub(super) enum Event {
    Relay(RelayEnd),
    IdleTransactionTimeout(Duration),
    TransactionTimeout(Duration),
    QueryTimeout(Duration),
    ClientIdleTimeout(Duration),
    /// KILL or KILL_CLIENT from the console.
    Killed,
}

impl PoolClient<'_> {
    /// Checks out a server: held while the database is PAUSEd, given up at once if the client
    /// goes away or is killed while it waits (so its place in the queue is not kept for
    /// nobody). The wait counts in SHOW STATS.
    pub(super) async fn checkout(&mut self) -> Result<Lease, ClientError> {
        self.info.set_state(ConnState::Waiting);
        let started = Instant::now();
        let pool = self.pool.clone();
        let db = pool.key.database.as_str();
        while self.shared.control.is_paused(db) {
            tokio::select! {
                () = self.shared.control.wait_resumed(db) => {}
                more = self.pump.read_while_waiting(self.stream) => if !matches!(more, Ok(true)) {
                    return Err(ClientError::Gone);
                },
                () = self.info.killed() => return Err(ClientError::Killed),
            }
        }
        let checkout = pool.checkout();
        tokio::pin!(checkout);
        let lease = loop {
            tokio::select! {
                lease = &mut checkout => match lease {
                    Ok(lease) => break lease,
                    Err(e) => {
                        if matches!(e, crate::pool::PoolError::WaitTimeout { .. }) {
                            TrafficStats::add(&pool.stats.wait_timeouts, 1);
                        }
                        return Err(e.into());
                    }
                },
                more = self.pump.read_while_waiting(self.stream) => match more {
                    Ok(true) => continue,
                    _ => return Err(ClientError::Gone),
                },
                () = self.info.killed() => return Err(ClientError::Killed),
            }
        };
        let waited = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        TrafficStats::add(&pool.stats.wait_time_us, waited);
        pool.stats.histograms.wait.record(started.elapsed());
        self.info.set_state(ConnState::Active);
        Ok(lease)
    }

    /// Records the client-server link both ways (SHOW CLIENTS / SHOW SERVERS).
    pub(super) fn link(&self, server: &ServerConn) {
        self.info.set_link(Some(server.id()));
        if let Some(reg) = server.registration() {
            reg.info().set_state(ConnState::Active);
            reg.info().set_link(Some(self.client_id));
        }
    }

    pub(super) fn unlink(&self, server: &ServerConn) {
        self.info.set_link(None);
        self.info.set_state(ConnState::Idle);
        if let Some(reg) = server.registration() {
            reg.info().set_state(ConnState::Idle);
            reg.info().set_link(None);
        }
        if let Some(st) = &self.statements {
            self.info
                .prepared_statements
                .store(st.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        if let Some(name) = self.settings.reported.get("application_name") {
            let mut shown = self.info.application_name.lock().expect("info lock");
            if *shown != *name {
                shown.clone_from(name);
            }
        }
    }

    /// Applies the startup parameters on the first server and greets the client with the
    /// resulting ParameterStatus values, its cancel key and ReadyForQuery.
    pub(super) async fn greet(&mut self, lease: &mut Lease) -> Result<(), ClientError> {
        let server = lease.server();
        if let Applied::Refused { code, message } = apply(server, &self.settings.values).await? {
            // Postgres refused a startup parameter: a FATAL at login, as Postgres itself does.
            return Err(ClientError::Rejected { code, message });
        }
        let report = Report::new(self.settings.startup.clone(), server.params().clone());
        self.greet_with(&report).await
    }

    /// Greets the client with `report`'s ParameterStatus values, its cancel key and
    /// ReadyForQuery. The client keeps the report's shared maps rather than copies.
    pub(super) async fn greet_with(&mut self, report: &Report) -> Result<(), ClientError> {
        let mut out = BytesMut::new();
        for (name, value) in &report.all {
            backend::parameter_status(&mut out, name, value);
        }
        self.settings.reported = report.session.clone();
        if *report.startup == *self.settings.startup {
            let unchanged = Arc::ptr_eq(&self.settings.values, &self.settings.startup);
            self.settings.startup = report.startup.clone();
            if unchanged {
                self.settings.values = report.startup.clone();
            }
        }
        backend::backend_key_data(&mut out, self.cancel_key.0, self.cancel_key.1);
        backend::ready_for_query(&mut out, TX_IDLE);
        self.stream.write_all(&out).await?;
        Ok(())
    }

    /// Points this client's cancel key at `server`.
    pub(super) fn point_cancel(&self, server: &ServerConn) {
        self.shared
            .cancels
            .point(self.cancel_key, server.cancel_target());
    }

    /// Relays until the client or server ends it, `stops` say stop, or a timeout fires.
    /// SIGINT turns the session into "stop at the next idle point". `tracking`: note whatever
    /// may change the session (transaction and statement pooling).
    pub(super) async fn relay_until_event(
        &mut self,
        server: &mut ServerConn,
        tracker: &mut Tracker,
        stops: RelayStops,
        tracking: bool,
    ) -> Event {
        let t = &self.timeouts;
        let mut shutdown = self.shared.shutdown_state();
        let mut activity = Activity::now();
        let recheck = [t.idle_transaction, t.transaction, t.query, t.client_idle]
            .into_iter()
            .filter(|d| !d.is_zero())
            .min()
            .map(|d| (d / 4).clamp(Duration::from_millis(10), Duration::from_secs(1)));
        let search_path = self.settings.search_path().to_owned();
        let mut plan = ReplyPlan::default();
        let shared = self.shared;
        let mut side = ClientSide {
            stream: self.stream,
            pump: &mut self.pump,
            reported: &mut self.settings.reported,
            effects: tracking.then_some(&mut self.settings.effects),
            prepared: self.statements.as_mut().map(|client| Prepared {
                registry: &shared.statements,
                client,
                counters: &shared.statement_counters,
                search_path: &search_path,
                effects: SessionEffects::default(),
                unnamed_changes_session: false,
                startup: &self.settings.startup,
            }),
            plan: &mut plan,
        };
        loop {
            let closing = *shutdown.borrow_and_update() == Shutdown::Closing;
            let stops = RelayStops {
                stop_at_idle: stops.stop_at_idle || closing,
                ..stops
            };
            // The relay moves the deadlines (a query starts, a transaction opens) without
            // returning, so with any timeout configured, look again at a fraction of it.
            let deadline = [
                next_deadline(t, tracker, &activity, stops.stop_at_idle),
                recheck.map(|r| Instant::now() + r),
            ]
            .into_iter()
            .flatten()
            .min();
            tokio::select! {
                end = relay(&mut side, server, tracker, &mut activity, stops) => return Event::Relay(end),
                Ok(()) = shutdown.changed(), if !closing => continue,
                () = self.info.killed() => return Event::Killed,
                () = sleep_until(deadline) => {
                    if let Some(event) = expired(t, tracker, &activity, stops.stop_at_idle) {
                        return event;
                    }
                }
            }
        }
    }
}

impl<'a> PoolClient<'a> {
    /// Points the client's cancel key away from `server`, then waits for cancels already on
    /// their way to it (at most cancel_wait_timeout): one landing after the server has gone
    /// to another client would cancel that client's query. False when one may still land.
    pub(super) fn detach_cancel(
        &self,
        server: &ServerConn,
    ) -> impl std::future::Future<Output = bool> + Send + 'a {
        let shared = self.shared;
        let backend = server.backend_key();
        let pending = shared.cancels.detach(self.cancel_key, backend);
        async move {
            if !pending {
                return true;
            }
            let limit = shared.config().pooler.cancel_wait_timeout;
            shared.cancels.quiesce(backend, limit).await
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// A timeout that may fire, and what it means when it does.
struct Timer {
    due: Option<Instant>,
    event: Event,
}

/// The timeouts that can apply now: idle_transaction_timeout while a transaction waits on
/// the client, transaction_timeout while one is open, query_timeout while a reply is owed,
/// client_idle_timeout while a session-mode client holds an idle server. A client stalled in
/// the middle of a message is waiting-on-client and idle whatever the tracker counts (its
/// request is not complete), so those two apply to it in every pool mode: a half-sent
/// message must not hold a server for ever.
fn timers(
    t: &ClientTimeouts,
    tracker: &Tracker,
    activity: &Activity,
    releasing: bool,
) -> [Timer; 4] {
    let at = |base: Instant, limit: Duration| (!limit.is_zero()).then(|| base + limit);
    let stalled = activity.client_mid_message;
    let waiting_on_client = (tracker.outstanding == 0 && !tracker.unsynced) || stalled;
    let in_transaction = waiting_on_client && tracker.tx_status != TX_IDLE;
    [
        Timer {
            due: in_transaction
                .then(|| at(activity.last_client, t.idle_transaction))
                .flatten(),
            event: Event::IdleTransactionTimeout(t.idle_transaction),
        },
        Timer {
            due: activity.tx_since.and_then(|since| at(since, t.transaction)),
            event: Event::TransactionTimeout(t.transaction),
        },
        Timer {
            due: activity.busy_since.and_then(|b| at(b, t.query)),
            event: Event::QueryTimeout(t.query),
        },
        Timer {
            due: ((!releasing && tracker.is_idle()) || stalled)
                .then(|| at(activity.last_client, t.client_idle))
                .flatten(),
            event: Event::ClientIdleTimeout(t.client_idle),
        },
    ]
}

fn next_deadline(
    t: &ClientTimeouts,
    tracker: &Tracker,
    activity: &Activity,
    releasing: bool,
) -> Option<Instant> {
    timers(t, tracker, activity, releasing)
        .iter()
        .filter_map(|t| t.due)
        .min()
}

fn expired(
    t: &ClientTimeouts,
    tracker: &Tracker,
    activity: &Activity,
    releasing: bool,
) -> Option<Event> {
    let now = Instant::now();
    timers(t, tracker, activity, releasing)
        .into_iter()
        .find(|t| t.due.is_some_and(|d| d <= now))
        .map(|t| t.event)
}

/// Writes a FATAL ErrorResponse; the connection is closed right after.
pub(crate) async fn send_fatal(stream: &mut BoxStream, code: &str, message: &str) {
    let mut out = BytesMut::new();
    backend::error_response(&mut out, Severity::Fatal, code, message, None, None);
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&out)).await;
}

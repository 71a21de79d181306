//! One pool's async side: checkout (an idle server vetted first, a new one opened via
//! `connect`, or a place in the FIFO queue that a cancelled client leaves at once) and checkin
//! (retiring servers past server_lifetime). All bookkeeping is one call into the shared ledger
//! under its lock, never held across `.await`; servers the ledger gives back to close are
//! closed after unlocking.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::oneshot;

use super::health::{check_due, close_idle_server, looks_alive, passes_check};
use super::hosts::HostRegistry;
use super::ledger::{
    Checkout, CloseReason, Closing, Counts, Handoff, Ledger, LoginFailure, PoolId,
};
use super::{Lease, PoolError, PoolKey, PoolSettings};
use crate::live::{ConnTable, TrafficStats};
use crate::server::{Credential, ServerConn};

pub(super) type SharedLedger = Arc<Mutex<Ledger<ServerConn>>>;

pub(crate) struct Pool {
    pub(crate) key: PoolKey,
    pub(super) id: PoolId,
    settings: Mutex<Arc<PoolSettings>>,
    ledger: SharedLedger,
    pub(super) next_server_id: Arc<AtomicU64>,
    pub(super) servers: Arc<ConnTable>,
    /// Roles and lag of the database hosts, shared by every pool.
    pub(super) hosts: Arc<HostRegistry>,
    /// Traffic of this pool's clients (SHOW STATS).
    pub(crate) stats: Arc<TrafficStats>,
    /// Bumped by RECONNECT and by a reload that changes where or how servers log in: servers
    /// of an older generation are closed instead of reused.
    pub(crate) generation: AtomicU64,
    /// What its servers report at login, so that logins need no server.
    pub(crate) login_reports: super::login_report::LoginReports,
}

/// What every pool shares with the others: the ledger, server ids, SHOW SERVERS's table and
/// what is known of the hosts.
pub(super) struct Common {
    pub(super) ledger: SharedLedger,
    pub(super) ids: Arc<AtomicU64>,
    pub(super) servers: Arc<ConnTable>,
    pub(super) hosts: Arc<HostRegistry>,
}

impl Pool {
    pub(super) fn new(
        key: PoolKey,
        id: PoolId,
        settings: PoolSettings,
        common: Common,
        stats: TrafficStats,
    ) -> Pool {
        Pool {
            key,
            id,
            settings: Mutex::new(Arc::new(settings)),
            ledger: common.ledger,
            next_server_id: common.ids,
            servers: common.servers,
            hosts: common.hosts,
            stats: Arc::new(stats),
            generation: AtomicU64::new(0),
            login_reports: Default::default(),
        }
    }

    pub(crate) fn settings(&self) -> Arc<PoolSettings> {
        self.settings.lock().expect("pool settings lock").clone()
    }

    /// Learns a credential at run time (SCRAM keys from a client's login). A refusal
    /// remembered under the old credential no longer says anything.
    pub(crate) fn set_credential(&self, credential: Credential) {
        let mut s = self.settings.lock().expect("pool settings lock");
        let mut new = (**s).clone();
        new.credential = credential;
        *s = Arc::new(new);
        drop(s);
        self.ledger().login_succeeded(self.id);
    }

    /// Settings re-resolved from a new configuration; a credential learned at run time is
    /// kept when the configuration still offers none.
    pub(crate) fn update_settings(self: &Arc<Self>, mut new: PoolSettings) {
        let moved = {
            let mut s = self.settings.lock().expect("pool settings lock");
            if matches!(new.credential, Credential::None) {
                new.credential = s.credential.clone();
            }
            let moved = s.addresses != new.addresses
                || s.target != new.target
                || s.server_params != new.server_params
                || s.server_user != new.server_user
                || s.server_database != new.server_database
                || !s.credential.same_as(&new.credential)
                // PgBouncer: "Changing any TLS settings will trigger a RECONNECT".
                || !s.tls.same_as(&new.tls);
            *s = Arc::new(new.clone());
            moved
        };
        if moved {
            // New address, login or TLS: servers are replaced as they are released.
            self.reconnect();
        }
        let closing = self
            .ledger()
            .set_limits(self.id, new.limits(), Instant::now());
        finish(closing);
    }

    /// Replaces every server: idle ones are closed now, the others when released.
    pub(crate) fn reconnect(self: &Arc<Self>) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let now = Instant::now();
        let mut ledger = self.ledger();
        let idle = std::mem::take(&mut ledger.books[self.id].idle);
        let mut closing = Vec::new();
        for conn in idle {
            closing.extend(ledger.free(self.id, now));
            closing.push((conn, CloseReason::Reconnect));
        }
        drop(ledger);
        finish(closing);
    }

    /// Servers open, idle, and clients waiting, now.
    #[allow(dead_code, reason = "for the admin console's SHOW POOLS and tests")]
    pub(crate) fn counts(&self) -> Counts {
        self.ledger().counts(self.id)
    }

    pub(super) fn ledger(&self) -> MutexGuard<'_, Ledger<ServerConn>> {
        self.ledger.lock().expect("pool ledger lock")
    }

    /// A server for one client: an idle one, a new one, or the next one released, waiting at
    /// most query_wait_timeout (0 = forever), which also bounds retries while Postgres is
    /// unreachable.
    pub(crate) async fn checkout(self: &Arc<Self>) -> Result<Lease, PoolError> {
        let started = Instant::now();
        let wait_limit = self.settings().query_wait_timeout;
        let deadline = (!wait_limit.is_zero()).then(|| started + wait_limit);
        loop {
            let step = self.ledger().checkout(self.id, Instant::now());
            let lease = match step {
                Checkout::Server(conn) => self.lease_for(conn),
                Checkout::Connect { victim } => {
                    if let Some(v) = victim {
                        close_idle_server(v, CloseReason::Evicted);
                    }
                    Lease::slot(self.clone())
                }
                Checkout::Refused(failure) => return Err(refused(failure)),
                Checkout::Wait { ticket, rx } => {
                    match self.wait(ticket, rx, started, deadline).await? {
                        Handoff::Server(conn) => self.lease_for(conn),
                        Handoff::Slot => Lease::slot(self.clone()),
                    }
                }
            };
            if lease.conn.is_none() {
                return self.open(lease, started, deadline).await;
            }
            if let Some(lease) = self.vet(lease).await {
                return Ok(lease);
            }
            // That idle server was dead or failed its check (and is closed): try again.
        }
    }

    async fn wait(
        &self,
        ticket: u64,
        rx: oneshot::Receiver<Handoff<ServerConn>>,
        started: Instant,
        deadline: Option<Instant>,
    ) -> Result<Handoff<ServerConn>, PoolError> {
        let mut waiting = Waiting {
            pool: self,
            ticket,
            rx,
            settled: false,
        };
        let s = self.settings();
        let mut reserve_at = (s.reserve_pool_size > 0 && !s.reserve_pool_timeout.is_zero())
            .then(|| tokio::time::Instant::now() + s.reserve_pool_timeout);
        let deadline = deadline.map(tokio::time::Instant::from_std);
        loop {
            tokio::select! {
                biased;
                got = &mut waiting.rx => {
                    waiting.settled = true;
                    // The ledger never drops a waiter it did not serve; treat it as a timeout.
                    return got.map_err(|_| wait_timeout(self, started, &s));
                }
                _ = sleep_until(reserve_at) => {
                    // reserve_pool_timeout passed: the longest waiter may open a reserve server.
                    reserve_at = None;
                    let closing = self.ledger().dispatch(Instant::now());
                    finish(closing);
                }
                _ = sleep_until(deadline) => {
                    if self.ledger().withdraw(self.id, ticket) {
                        waiting.settled = true;
                        return Err(wait_timeout(self, started, &s));
                    }
                    // A grant raced the deadline and is in the channel: take it.
                }
            }
        }
    }

    /// Checks an idle server before a client gets it; None when it was closed instead.
    async fn vet(&self, mut lease: Lease) -> Option<Lease> {
        let s = self.settings();
        let conn = lease.conn.as_mut()?;
        if !looks_alive(conn) {
            tracing::info!(
                server = conn.id(),
                "closing pooled server: it was closed while idle"
            );
            lease.discard();
            return None;
        }
        if !check_due(
            conn,
            &s.server_check_query,
            s.server_check_delay,
            Instant::now(),
        ) {
            return Some(lease);
        }
        // Mid-check the server is not clean: if this task is cancelled, close it.
        lease.untouched = false;
        let conn = lease.conn.as_mut()?;
        if passes_check(conn, &s.server_check_query, s.connect_timeout).await {
            conn.mark_used(Instant::now());
            lease.untouched = true;
            Some(lease)
        } else {
            lease.discard();
            None
        }
    }

    fn lease_for(self: &Arc<Self>, conn: ServerConn) -> Lease {
        Lease {
            pool: Some(self.clone()),
            conn: Some(conn),
            untouched: true,
        }
    }

    /// Returns a clean server: retired past server_lifetime (0 = used once), else to the
    /// longest waiter, else idle.
    pub(crate) fn checkin(self: &Arc<Self>, mut lease: Lease) {
        let Some(mut conn) = lease.disarm() else {
            self.slot_freed();
            return;
        };
        let now = Instant::now();
        conn.mark_used(now);
        // Statements used by the client that leaves may now be evicted.
        conn.statements_mut().unpin_all();
        let mut ledger = self.ledger();
        let lifetime = ledger.limits(self.id).lifetime;
        let expired = lifetime.is_zero()
            || now.saturating_duration_since(ServerConn::connected_at(&conn)) >= lifetime;
        // Invariant 1: anything already read past the last ReadyForQuery (a notification, a
        // notice) belongs to the last client, never to the next one.
        let unexpected = conn.has_unread();
        let outdated = conn.generation() < self.generation.load(Ordering::SeqCst);
        if expired || unexpected || outdated {
            let closing = ledger.free(self.id, now);
            drop(ledger);
            let reason = if unexpected {
                CloseReason::Unexpected
            } else {
                CloseReason::Lifetime
            };
            close_idle_server(conn, reason);
            finish(closing);
        } else {
            let closing = ledger.release(self.id, conn, now);
            drop(ledger);
            finish(closing);
        }
    }

    /// An untouched server goes back as it came.
    pub(super) fn put_back(&self, conn: ServerConn) {
        let closing = self.ledger().release(self.id, conn, Instant::now());
        finish(closing);
    }

    /// A slot was given up (server closed or never opened): a waiter may open a new one.
    pub(super) fn slot_freed(&self) {
        let closing = self.ledger().free(self.id, Instant::now());
        finish(closing);
    }
}

/// Closes what the ledger handed back, after its lock is released.
pub(super) fn finish(closing: Closing<ServerConn>) {
    for (conn, reason) in closing {
        close_idle_server(conn, reason);
    }
}

pub(super) fn refused(f: LoginFailure) -> PoolError {
    PoolError::LoginRetry {
        code: f.code,
        message: f.message,
        ago: f.at.elapsed(),
    }
}

fn wait_timeout(pool: &Pool, started: Instant, s: &PoolSettings) -> PoolError {
    PoolError::WaitTimeout {
        database: pool.key.database.clone(),
        user: pool.key.user.clone(),
        waited: started.elapsed(),
        size: s.size,
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A place in the queue. Dropped early (timeout, or the client's task cancelled), it leaves
/// the queue at once; a grant that was already sent is taken back, so nothing leaks.
struct Waiting<'a> {
    pool: &'a Pool,
    ticket: u64,
    rx: oneshot::Receiver<Handoff<ServerConn>>,
    settled: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        if self.pool.ledger().withdraw(self.pool.id, self.ticket) {
            return;
        }
        match self.rx.try_recv() {
            Ok(Handoff::Server(conn)) => self.pool.put_back(conn),
            Ok(Handoff::Slot) => self.pool.slot_freed(),
            Err(_) => {}
        }
    }
}

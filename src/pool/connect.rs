//! Opening server connections for a pool: one connect + login + connect_query on the best host
//! for the pool's target_session_attrs, retried with capped exponential backoff while no host
//! will do (until query_wait_timeout, or failover_hold_timeout while a read-write pool waits
//! for a primary), and a refused login remembered in the ledger for server_login_retry so
//! later clients fail at once. Also the warm-up connects min_pool_size asks for, and the host
//! checks that keep each host's role and lag known. Called from `server_pool` and maintenance.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::backoff::{is_transient, primary_missing, Backoff};
use super::hosts::fits;
use super::ledger::LoginFailure;
use super::server_pool::refused;
use super::{Lease, Pool, PoolError, PoolSettings};
use crate::config::TargetSessionAttrs;
use crate::live::{ConnState, Endpoints, TrafficStats};
use crate::net::Address;
use crate::server::{login, server_role, ServerConn, ServerError};

impl Pool {
    /// Opens a server for a counted slot, retrying transient failures with backoff.
    pub(super) async fn open(
        &self,
        mut lease: Lease,
        started: Instant,
        deadline: Option<Instant>,
    ) -> Result<Lease, PoolError> {
        let mut backoff = Backoff::default();
        let mut attempts = 0u32;
        loop {
            let s = self.settings();
            let database = &self.key.database;
            // A failover in progress is not a refusal: server_login_retry waits for its end.
            let holding = s.target.wants_primary() && self.hosts.holding_since(database).is_some();
            if !holding {
                if let Some(failure) = self.ledger().recent_failure(self.id, Instant::now()) {
                    return Err(refused(failure));
                }
            }
            attempts += 1;
            let e = match self.connect_once().await {
                Ok(conn) => {
                    self.ledger().login_succeeded(self.id);
                    lease.conn = Some(conn);
                    return Ok(lease);
                }
                Err(e) => e,
            };
            if !is_transient(&e) {
                self.remember_refusal(&e);
                return Err(e.into());
            }
            // No primary (gone, restarting, not promoted yet): new transactions are held, for
            // at most failover_hold_timeout since the hold began. A primary that is merely
            // full (53300) is no failover.
            let mut limit = deadline;
            let mut hold = None;
            if s.target.wants_primary() && primary_missing(&e) {
                let since = self.hosts.hold(database);
                let end = since + s.failover_hold_timeout;
                limit = Some(limit.map_or(end, |d| d.min(end)));
                hold = Some(since);
            }
            let remaining = limit.map(|d| d.saturating_duration_since(Instant::now()));
            if remaining.is_some_and(|r| r.is_zero()) {
                let cause = match hold {
                    Some(since) if since + s.failover_hold_timeout <= Instant::now() => format!(
                        "no host became primary within failover_hold_timeout ({:.1}s): {e}",
                        s.failover_hold_timeout.as_secs_f64()
                    ),
                    _ => e.to_string(),
                };
                return Err(PoolError::Unreachable {
                    database: database.clone(),
                    user: self.key.user.clone(),
                    waited: started.elapsed(),
                    cause,
                });
            }
            if attempts == 1 {
                tracing::warn!(pool = %database, user = %self.key.user, reason = %e, "cannot open a server connection; retrying until query_wait_timeout");
            } else {
                tracing::debug!(pool = %database, user = %self.key.user, attempts, reason = %e, "server still unreachable");
            }
            let pause = backoff.pause();
            tokio::time::sleep(remaining.map_or(pause, |r| r.min(pause))).await;
        }
    }

    /// One connect + login + connect_query, bounded by server_connect_timeout per host.
    pub(super) async fn connect_once(&self) -> Result<ServerConn, ServerError> {
        let result = match self.connect_and_login().await {
            Ok((conn, address)) => self.finish_open(conn, &address).await,
            Err(e) => Err(e),
        };
        match &result {
            Ok(_) => TrafficStats::add(&self.stats.servers_opened, 1),
            Err(_) => TrafficStats::add(&self.stats.server_login_failures, 1),
        }
        result
    }

    /// Tries the hosts best first and keeps the first server whose role fits the pool's
    /// target (for prefer-standby, a primary only when no standby will do).
    async fn connect_and_login(&self) -> Result<(ServerConn, Address), ServerError> {
        let s = self.settings();
        if !s.watches_hosts() {
            let address = s.addresses[0].clone();
            let conn = self.login_at(&s, &address).await?;
            return Ok((conn, address));
        }
        let busy = self.servers.by_server_address();
        let candidates = self
            .hosts
            .order(&s.addresses, s.target, s.max_replica_lag, |a| {
                busy.get(&a.to_string())
                    .map_or(0, |by_state| by_state.values().sum())
            });
        let mut reasons = Vec::new();
        let mut fallback: Option<(ServerConn, Address)> = None;
        for address in candidates {
            let mut conn = match self.login_at(&s, &address).await {
                Ok(conn) => conn,
                Err(e) => {
                    self.hosts.failed(&address, &e.to_string());
                    if !is_transient(&e) {
                        return Err(e);
                    }
                    reasons.push(format!("{address}: {e}"));
                    continue;
                }
            };
            let with_lag = s.target.prefers_standby() && !s.max_replica_lag.is_zero();
            let role = match server_role(&mut conn, with_lag).await {
                Ok(role) => role,
                Err(e) => {
                    self.hosts.failed(&address, &e.to_string());
                    reasons.push(format!("{address}: {e}"));
                    continue;
                }
            };
            self.hosts.saw(&address, role, s.max_replica_lag);
            if !fits(s.target, &role, s.max_replica_lag) {
                // Never handed out: a standby where writes were asked for, a lagging one.
                conn.terminate_now();
                let lag = role
                    .lag
                    .map(|l| format!(", {:.1}s behind", l.as_secs_f64()));
                reasons.push(format!(
                    "{address} is a {}{}",
                    role.name(),
                    lag.unwrap_or_default()
                ));
                continue;
            }
            if s.target == TargetSessionAttrs::PreferStandby && !role.standby {
                if fallback.is_none() {
                    fallback = Some((conn, address));
                } else {
                    conn.terminate_now();
                }
                continue;
            }
            if !role.standby && s.target.wants_primary() {
                self.primary_found(&address);
            }
            if let Some((mut spare, _)) = fallback.take() {
                spare.terminate_now();
            }
            return Ok((conn, address));
        }
        if let Some(found) = fallback {
            return Ok(found);
        }
        Err(ServerError::NoHostFits(format!(
            "{} ({})",
            s.target,
            reasons.join("; ")
        )))
    }

    /// A primary was found for a read-write pool: ends a hold, logs a switchover.
    fn primary_found(&self, address: &Address) {
        let Some(s) = self.hosts.primary_found(&self.key.database, address) else {
            return;
        };
        let from = s.from.as_deref().unwrap_or("none");
        if s.moved() {
            tracing::warn!(database = %s.database, from, to = %s.to, held_ms = s.held.as_millis() as u64, "switchover: the primary is now {}; new transactions were held {:.1}s", s.to, s.held.as_secs_f64());
        } else {
            tracing::warn!(database = %s.database, primary = %s.to, held_ms = s.held.as_millis() as u64, "the primary is back; new transactions were held {:.1}s", s.held.as_secs_f64());
        }
    }

    /// Connect and log in to one host, bounded by server_connect_timeout.
    async fn login_at(
        &self,
        s: &PoolSettings,
        address: &Address,
    ) -> Result<ServerConn, ServerError> {
        let id = self.next_server_id.fetch_add(1, Ordering::Relaxed) + 1;
        login(s.login_request(id, address)).await
    }

    /// A server connection of the pool's login on the host its target asks for, with
    /// connect_query run, that is never lent to a client nor counted in the pool: the one a
    /// pool LISTENs on for its clients.
    pub(crate) async fn open_unpooled(&self) -> Result<ServerConn, ServerError> {
        let (mut conn, _) = self.connect_and_login().await?;
        self.run_connect_query(&mut conn).await?;
        Ok(conn)
    }

    async fn run_connect_query(&self, conn: &mut ServerConn) -> Result<(), ServerError> {
        let s = self.settings();
        if let Some(q) = s.connect_query.as_deref().filter(|q| !q.trim().is_empty()) {
            let outcome = crate::server::simple_query(conn, q).await?;
            if let Some((code, message)) = outcome.error {
                return Err(ServerError::Rejected { code, message });
            }
        }
        Ok(())
    }

    /// connect_query, then the server joins the pool's books and SHOW SERVERS.
    async fn finish_open(
        &self,
        mut conn: ServerConn,
        address: &Address,
    ) -> Result<ServerConn, ServerError> {
        self.run_connect_query(&mut conn).await?;
        let s = self.settings();
        let id = conn.id();
        tracing::info!(server = id, pool = %self.key.database, user = %self.key.user, %address, tls = %conn.tls(), "server connection opened");
        self.login_reports.server_logged_in(conn.params());
        let (addr, port) = address.host_port();
        let ends = Endpoints {
            addr,
            port,
            local_addr: conn.local().map(|l| l.ip().to_string()).unwrap_or_default(),
            local_port: conn.local().map_or(0, |l| l.port()),
            tls: conn.tls().to_string(),
        };
        let reg = self.servers.register(
            id,
            &s.server_user,
            &self.key.database,
            ends,
            ConnState::Idle,
        );
        reg.info()
            .remote_pid
            .store(u64::from(conn.backend_key().0), Ordering::Relaxed);
        let generation = self.generation.load(Ordering::SeqCst);
        reg.info().generation.store(generation, Ordering::Relaxed);
        conn.join_pool(reg, generation, self.stats.clone());
        Ok(conn)
    }

    /// Looks at one host again on a connection of its own: role and replay lag. Run by the
    /// maintenance pass every host_check_period for pools that watch their hosts.
    pub(super) async fn check_host(self: Arc<Self>, address: Address) {
        let s = self.settings();
        let checked = async {
            let mut conn = self.login_at(&s, &address).await?;
            let role = server_role(&mut conn, true).await;
            conn.terminate_now();
            role
        };
        match tokio::time::timeout(s.connect_timeout + Duration::from_secs(1), checked).await {
            Ok(Ok(role)) => {
                self.hosts.saw(&address, role, s.max_replica_lag);
            }
            Ok(Err(e)) => self.hosts.failed(&address, &e.to_string()),
            Err(_) => self.hosts.failed(&address, "no answer to the host check"),
        }
        self.hosts.end_check(&address);
    }

    /// Remembers a refused login for server_login_retry, keeping Postgres's own words.
    pub(super) fn remember_refusal(&self, e: &ServerError) {
        let message = match e {
            ServerError::Rejected { message, .. } => message.clone(),
            other => other.to_string(),
        };
        tracing::warn!(pool = %self.key.database, user = %self.key.user, reason = %e, "server login refused; new clients fail at once for server_login_retry");
        self.ledger().login_failed(
            self.id,
            LoginFailure {
                code: e.sqlstate().to_string(),
                message,
                at: Instant::now(),
            },
        );
    }

    /// Opens one server for min_pool_size on a slot the ledger already counted.
    pub(super) async fn warm(self: Arc<Self>) {
        let mut lease = Lease::slot(self.clone());
        match self.connect_once().await {
            Ok(conn) => {
                self.ledger().login_succeeded(self.id);
                lease.conn = Some(conn);
                // A fresh, idle server: dropping the lease pools it.
                lease.untouched = true;
            }
            // A missing credential may be learned from the next client's SCRAM login.
            Err(e)
                if !is_transient(&e)
                    && !matches!(e, ServerError::Auth(_) | ServerError::Scram(_)) =>
            {
                self.remember_refusal(&e)
            }
            Err(e) => {
                tracing::debug!(pool = %self.key.database, user = %self.key.user, reason = %e, "min_pool_size connection failed")
            }
        }
    }
}

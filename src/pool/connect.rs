//! Opening server connections for a pool: one connect + login + connect_query, retried with
//! capped exponential backoff while Postgres is unreachable (until query_wait_timeout), and a
//! refused login remembered in the ledger for server_login_retry so later clients fail at once.
//! Also the background warm-up connects min_pool_size asks for. Called from `server_pool`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::backoff::{is_transient, Backoff};
use super::ledger::LoginFailure;
use super::server_pool::refused;
use super::{Lease, Pool, PoolError};
use crate::live::{ConnState, Endpoints, TrafficStats};
use crate::server::{login, LoginRequest, ServerConn, ServerError};

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
            if let Some(failure) = self.ledger().recent_failure(self.id, Instant::now()) {
                return Err(refused(failure));
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
            let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if remaining.is_some_and(|r| r.is_zero()) {
                return Err(PoolError::Unreachable {
                    database: self.key.database.clone(),
                    user: self.key.user.clone(),
                    waited: started.elapsed(),
                    cause: e.to_string(),
                });
            }
            if attempts == 1 {
                tracing::warn!(pool = %self.key.database, user = %self.key.user, reason = %e, "cannot open a server connection; retrying until query_wait_timeout");
            } else {
                tracing::debug!(pool = %self.key.database, user = %self.key.user, attempts, reason = %e, "server still unreachable");
            }
            let pause = backoff.pause();
            tokio::time::sleep(remaining.map_or(pause, |r| r.min(pause))).await;
        }
    }

    /// One connect + login + connect_query, bounded by server_connect_timeout.
    pub(super) async fn connect_once(&self) -> Result<ServerConn, ServerError> {
        let result = self.connect_and_login().await;
        match &result {
            Ok(_) => TrafficStats::add(&self.stats.servers_opened, 1),
            Err(_) => TrafficStats::add(&self.stats.server_login_failures, 1),
        }
        result
    }

    async fn connect_and_login(&self) -> Result<ServerConn, ServerError> {
        let s = self.settings();
        let id = self.next_server_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut conn = login(LoginRequest {
            id,
            address: &s.address,
            user: &s.server_user,
            database: &s.server_database,
            credential: &s.credential,
            connect_timeout: s.connect_timeout,
            keepalive: s.keepalive,
            read_size: s.read_size,
            max_prepared_statements: s.max_prepared_statements,
            tls: &s.tls,
        })
        .await?;
        if let Some(q) = s.connect_query.as_deref().filter(|q| !q.trim().is_empty()) {
            let outcome = crate::server::simple_query(&mut conn, q).await?;
            if let Some((code, message)) = outcome.error {
                return Err(ServerError::Rejected { code, message });
            }
        }
        tracing::info!(server = id, pool = %self.key.database, user = %self.key.user, address = %s.address, tls = %conn.tls(), "server connection opened");
        self.login_reports.server_logged_in(conn.params());
        let (addr, port) = s.address.host_port();
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
        reg.info().remote_pid.store(
            u64::from(conn.backend_key().0),
            std::sync::atomic::Ordering::Relaxed,
        );
        let generation = self.generation.load(std::sync::atomic::Ordering::SeqCst);
        reg.info()
            .generation
            .store(generation, std::sync::atomic::Ordering::Relaxed);
        conn.join_pool(reg, generation, self.stats.clone());
        Ok(conn)
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

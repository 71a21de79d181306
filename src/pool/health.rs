//! Is a pooled server still good to hand out? A cheap look for anything Postgres said while
//! the server sat idle (it only speaks unprompted to announce its end), the server_check_query
//! once it sat longer than server_check_delay, and a polite close (Terminate) for servers the
//! pool retires while idle. Called by `server_pool` on checkout and after ledger decisions.

use std::time::{Duration, Instant};

use super::ledger::{CloseReason, ServerTimes};
use crate::protocol::tracker::TX_IDLE;
use crate::server::{simple_query, ServerConn};

impl ServerTimes for ServerConn {
    fn connected_at(&self) -> Instant {
        ServerConn::connected_at(self)
    }
    fn last_used(&self) -> Instant {
        ServerConn::last_used(self)
    }
}

/// False when the server has hung up or has something to say (a FATAL on shutdown or
/// pg_terminate_backend): such a server is not safe to hand out.
pub(super) fn looks_alive(conn: &mut ServerConn) -> bool {
    conn.looks_alive()
}

/// Whether server_check_query is due: it is set, and the server was unused for longer than
/// server_check_delay (0 = always), as PgBouncer.
pub(super) fn check_due(conn: &ServerConn, query: &str, delay: Duration, now: Instant) -> bool {
    !query.trim().is_empty() && now.saturating_duration_since(ServerConn::last_used(conn)) >= delay
}

/// Runs server_check_query; true when it succeeded and left the server idle.
pub(super) async fn passes_check(conn: &mut ServerConn, query: &str, limit: Duration) -> bool {
    match tokio::time::timeout(limit, simple_query(conn, query)).await {
        Ok(Ok(outcome)) => {
            outcome.error.is_none() && outcome.tx_status == TX_IDLE && conn.is_between_messages()
        }
        Ok(Err(e)) => {
            tracing::info!(server = conn.id(), reason = %e, "server failed server_check_query");
            false
        }
        Err(_) => {
            tracing::info!(server = conn.id(), ?limit, "server_check_query timed out");
            false
        }
    }
}

/// Closes an idle server: Terminate if the socket takes it right away, then the socket.
pub(super) fn close_idle_server(mut conn: ServerConn, reason: CloseReason) {
    conn.terminate_now();
    conn.stats().count_closed(reason.label());
    tracing::info!(
        server = conn.id(),
        age = ?ServerConn::connected_at(&conn).elapsed(),
        reason = reason.as_str(),
        "server connection closed"
    );
}

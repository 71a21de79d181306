//! Is a pooled server still good to hand out? A cheap look for anything Postgres said while
//! the server sat idle (it only speaks unprompted to announce its end), the server_check_query
//! once it sat longer than server_check_delay, and a polite close (Terminate) for servers the
//! pool retires while idle. Called by `server_pool` on checkout and after ledger decisions.

use std::pin::Pin;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use tokio::io::AsyncWrite;

use super::ledger::{CloseReason, ServerTimes};
use crate::protocol::tags::frontend_tag;
use crate::protocol::tracker::TX_IDLE;
use crate::server::{simple_query, ServerConn};

impl ServerTimes for ServerConn {
    fn connected_at(&self) -> Instant {
        self.connected_at
    }
    fn last_used(&self) -> Instant {
        self.last_used
    }
}

/// False when the server has hung up or has something to say (a FATAL on shutdown or
/// pg_terminate_backend): such a server is not safe to hand out.
pub(super) fn looks_alive(conn: &mut ServerConn) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    let ServerConn {
        stream, inbound, ..
    } = conn;
    inbound.is_empty() && inbound.poll_fill_once(&mut cx, stream).is_pending()
}

/// Whether server_check_query is due: it is set, and the server was unused for longer than
/// server_check_delay (0 = always), as PgBouncer.
pub(super) fn check_due(conn: &ServerConn, query: &str, delay: Duration, now: Instant) -> bool {
    !query.trim().is_empty() && now.saturating_duration_since(conn.last_used) >= delay
}

/// Runs server_check_query; true when it succeeded and left the server idle.
pub(super) async fn passes_check(conn: &mut ServerConn, query: &str, limit: Duration) -> bool {
    match tokio::time::timeout(limit, simple_query(conn, query)).await {
        Ok(Ok(outcome)) => {
            outcome.error.is_none() && outcome.tx_status == TX_IDLE && conn.inbound.is_clean()
        }
        Ok(Err(e)) => {
            tracing::info!(server = conn.id, reason = %e, "server failed server_check_query");
            false
        }
        Err(_) => {
            tracing::info!(server = conn.id, ?limit, "server_check_query timed out");
            false
        }
    }
}

/// Closes an idle server: Terminate if the socket takes it right away, then the socket.
pub(super) fn close_idle_server(mut conn: ServerConn, reason: CloseReason) {
    let mut cx = Context::from_waker(Waker::noop());
    // PostgreSQL docs, 55.2.10 Termination: Terminate, then close; best effort only.
    let _ = Pin::new(&mut conn.stream).poll_write(&mut cx, &[frontend_tag::TERMINATE, 0, 0, 0, 4]);
    conn.stats.count_closed(reason.label());
    tracing::info!(
        server = conn.id,
        age = ?conn.connected_at.elapsed(),
        reason = reason.as_str(),
        "server connection closed"
    );
}

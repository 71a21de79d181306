//! The end of a client's use of a server, shared by session and transaction pooling — the one
//! place that decides what becomes of the server (invariant 8): kept by a pinned client,
//! checked in when clean, reset when the client left mid-way or left session state, closed
//! when in doubt (invariant 1) — and what the event that ended the relay means for the client
//! (a FATAL, an ERROR, or nothing when it was caught mid-message).

use std::time::Duration;

use super::pool_client::{Event, PoolClient};
use super::ClientError;
use crate::pool::Lease;
use crate::protocol::sqlstate;
use crate::protocol::tracker::Tracker;
use crate::relay::RelayEnd;
use crate::server::{reset_for_next_client, send_cancel};
use crate::state::Shared;

/// After a transaction that ended cleanly (ReadyForQuery idle, nothing owed): the server stays
/// with a pinned client (returned), or goes back to the pool — through server_reset_query when
/// server_reset_query_always asks for it — or is closed while a cancel for the client may
/// still land on it (`cancels_quiet` false), where it could cancel the next client's query.
/// A cancel still on its way to a pinned client's server can only reach that client's own
/// next query, as on a direct connection.
pub(super) async fn after_transaction(
    client: &mut PoolClient<'_>,
    lease: Lease,
    cancels_quiet: bool,
) -> Option<Lease> {
    if !client.settings.pins.is_empty() {
        return Some(lease);
    }
    if !cancels_quiet {
        tracing::info!("closing server: a cancel for its last client may still land");
        lease.discard();
    } else if client.shared.config().pooler.server_reset_query_always {
        let (cut, left) = (ClientLeft::BetweenMessages, Leftover::Transaction);
        release(client.shared, lease, Tracker::default(), cut, left).await;
    } else {
        let pool = lease.pool().clone();
        pool.checkin(lease);
    }
    None
}

/// Ends the client's use of `lease` after `event`; returns what to tell the client — nothing,
/// when the event caught the client inside a half-relayed message (a server lost or a timeout
/// in the middle of a large DataRow or CopyData): bytes written then would be read as the rest
/// of that message, so the client is only disconnected.
/// `cancels_quiet` is `detach_cancel`'s answer: when a cancel may still land, the server
/// is closed rather than reset and pooled.
pub(super) async fn settle(
    client: &mut PoolClient<'_>,
    mut lease: Lease,
    tracker: Tracker,
    event: Event,
    cancels_quiet: bool,
) -> Result<(), ClientError> {
    let cut = lease.server().mid_message();
    settle_event(client, lease, tracker, event, cancels_quiet)
        .await
        .map_err(|e| match e {
            e if cut && e.reaches_client() => ClientError::CutOff(Box::new(e)),
            e => e,
        })
}

async fn settle_event(
    client: &mut PoolClient<'_>,
    mut lease: Lease,
    tracker: Tracker,
    event: Event,
    cancels_quiet: bool,
) -> Result<(), ClientError> {
    let result = match event {
        Event::Relay(RelayEnd::ClientTerminated | RelayEnd::ClientGone) => Ok(()),
        Event::Relay(RelayEnd::ClientProtocol(e)) => Err(e.into()),
        Event::Relay(RelayEnd::Idle) => Err(ClientError::ShuttingDown),
        Event::Relay(RelayEnd::StatementLimit(e)) => Err(ClientError::Rejected {
            code: e.sqlstate().into(),
            message: e.to_string(),
        }),
        Event::Relay(RelayEnd::TransactionBlock) => Err(ClientError::Rejected {
            code: sqlstate::FEATURE_NOT_SUPPORTED.into(),
            message: "transaction blocks are not allowed in statement pooling mode".into(),
        }),
        Event::Relay(RelayEnd::TerminatedInCopy) => {
            lease.discard();
            return Ok(());
        }
        Event::Relay(RelayEnd::ServerGone(reason)) => {
            lease.discard();
            return Err(ClientError::ServerGone(reason));
        }
        Event::QueryTimeout(limit) => {
            // PgBouncer's rule: cancel the query and close that server.
            let s = lease.server();
            let (pid, secret) = s.backend_key();
            let _ = send_cancel(s.address(), pid, secret).await;
            lease.discard();
            return Err(ClientError::Rejected {
                code: sqlstate::QUERY_CANCELED.into(),
                message: format!("query_timeout ({limit:?}) exceeded; the query was canceled"),
            });
        }
        Event::IdleTransactionTimeout(limit) => Err(ClientError::Rejected {
            code: sqlstate::IDLE_IN_TRANSACTION_SESSION_TIMEOUT.into(),
            message: format!(
                "idle_transaction_timeout ({limit:?}) exceeded; transaction rolled back"
            ),
        }),
        Event::TransactionTimeout(limit) => Err(ClientError::Rejected {
            code: sqlstate::TRANSACTION_TIMEOUT.into(),
            message: format!("transaction_timeout ({limit:?}) exceeded; transaction rolled back"),
        }),
        Event::ClientIdleTimeout(limit) => Err(ClientError::IdleTimeout(limit)),
        Event::Killed => Err(ClientError::Killed),
    };
    if super::listen::on_server(client) {
        // It LISTENs for the client, and nothing tells whether the client's transaction
        // changed that: only closing it is sure to leave nobody a subscription.
        tracing::info!("closing server: it still listens on the client's channels");
        lease.discard();
    } else if cancels_quiet {
        let cut = if client.pump.is_clean() {
            ClientLeft::BetweenMessages
        } else {
            ClientLeft::MidMessage
        };
        // Transaction pooling: state the client left may be more than a transaction.
        let left = if !client.settings.pins.is_empty() || client.settings.effects.changed {
            Leftover::SessionState
        } else {
            Leftover::Transaction
        };
        release(client.shared, lease, tracker, cut, left).await;
    } else {
        tracing::info!("closing server: a cancel for its last client may still land");
        lease.discard();
    }
    result
}

/// Where in its stream of messages the client left its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClientLeft {
    /// Everything it sent was whole.
    BetweenMessages,
    /// Part of a message may be at the server: the server cannot be reset, only closed.
    MidMessage,
}

/// What the client may have left on the server besides an unfinished transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Leftover {
    /// At most a transaction, which the reset rolls back.
    Transaction,
    /// Session state (a lock, a temporary table, settings): only server_reset_query clears
    /// it, and without one the server is closed.
    SessionState,
}

/// Resets the server for the next client and pools it, or closes it if that fails.
pub(super) async fn release(
    shared: &Shared,
    mut lease: Lease,
    tracker: Tracker,
    cut: ClientLeft,
    left: Leftover,
) {
    let config = shared.config();
    let p = &config.pooler;
    let limit = if p.server_reset_timeout.is_zero() {
        Duration::from_secs(5)
    } else {
        p.server_reset_timeout
    };
    let server = lease.server();
    let (id, age) = (server.id(), server.connected_at().elapsed());
    if left == Leftover::SessionState && p.server_reset_query.trim().is_empty() {
        tracing::info!(
            server = id,
            ?age,
            "closing server connection: its client left session state and server_reset_query is empty"
        );
        lease.discard();
        return;
    }
    let client_side_clean = cut == ClientLeft::BetweenMessages;
    let reset = reset_for_next_client(server, tracker, client_side_clean, &p.server_reset_query);
    match tokio::time::timeout(limit, reset).await {
        Ok(Ok(())) => {
            let pool = lease.pool().clone();
            pool.checkin(lease);
        }
        Ok(Err(e)) => {
            tracing::info!(server = id, ?age, reason = %e, "closing server connection after failed reset");
            lease.discard();
        }
        Err(_) => {
            tracing::info!(
                server = id,
                ?age,
                ?limit,
                "closing server connection: reset timed out (server_reset_timeout)"
            );
            lease.discard();
        }
    }
}

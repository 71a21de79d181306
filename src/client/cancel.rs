//! A CancelRequest that arrived on a new connection (PostgreSQL docs, "Canceling Requests in
//! Progress"): forwarded to the server now serving the client that owns the key, or, when
//! another instance of the fleet issued the key, to that instance ([peers] or every address
//! peers_dns resolves to). Bounded by cancel_wait_timeout; never answers the requester.

use std::time::Duration;

use crate::net::Address;
use crate::server::{cancel_route, send_cancel, CancelRoute};
use crate::state::Shared;

/// How a CancelRequest was dealt with: the `route` label of pgsluice_cancel_requests_total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum CancelOutcome {
    /// Sent to the server of the client that owns the key.
    Server,
    /// The key is not (or no longer) one of this instance's clients'.
    NoMatch,
    /// Sent on to the instance that issued the key.
    Peer,
    /// Issued by an instance that neither [peers] nor peers_dns knows.
    UnknownPeer,
    /// Forwarded here by a peer, but not ours: dropped, never forwarded twice.
    Misdelivered,
}

impl CancelOutcome {
    pub(crate) fn label(self) -> &'static str {
        match self {
            CancelOutcome::Server => "server",
            CancelOutcome::NoMatch => "no_match",
            CancelOutcome::Peer => "peer",
            CancelOutcome::UnknownPeer => "unknown_peer",
            CancelOutcome::Misdelivered => "misdelivered",
        }
    }
}

/// Forwards a CancelRequest where its key leads; anything that matches nothing is dropped
/// silently, as PostgreSQL does.
pub(super) async fn forward_cancel(shared: &Shared, pid: u32, secret: u32) {
    let config = shared.config();
    let outcome = match cancel_route(config.pooler.peer_id, pid) {
        CancelRoute::Here => to_server(shared, pid, secret).await,
        CancelRoute::Peer { peer_id, pid } => to_peer(shared, peer_id, pid, secret).await,
        CancelRoute::Misdelivered { peer_id } => {
            tracing::warn!(
                peer_id,
                own_peer_id = config.pooler.peer_id,
                "dropping a cancel request another instance forwarded here for peer {peer_id}: \
                 check that every instance has its own peer_id and that [peers] matches them"
            );
            CancelOutcome::Misdelivered
        }
    };
    shared.counters.cancel(outcome.label());
}

async fn to_server(shared: &Shared, pid: u32, secret: u32) -> CancelOutcome {
    // Counted as in flight until delivered: the client's server is not given to anyone else
    // before then (see `PoolClient::detach_cancel`).
    let Some((target, _in_flight)) = shared.cancels.begin(pid, secret) else {
        return CancelOutcome::NoMatch;
    };
    let limit = shared.config().pooler.cancel_wait_timeout;
    if let Err(e) = bounded(
        limit,
        send_cancel(&target.address, target.pid, target.secret),
    )
    .await
    {
        tracing::warn!(error = %e, "could not forward cancel request (cancel_wait_timeout)");
    }
    CancelOutcome::Server
}

/// Sends the cancel, no longer forwardable, to the instance with `peer_id`: the [peers] entry
/// when there is one, else every address peers_dns resolves to (only the owner of the key
/// acts on it; the others drop it as misdelivered).
async fn to_peer(shared: &Shared, peer_id: u16, pid: u32, secret: u32) -> CancelOutcome {
    let config = shared.config();
    let p = &config.pooler;
    let targets: Vec<Address> = if let Some(peer) = config.peers.get(&peer_id) {
        vec![Address::from_host_port(&peer.host, peer.port)]
    } else if let Some((host, port)) = p.fleet.peers_dns_target(p.listen_port) {
        match tokio::net::lookup_host((host.as_str(), port)).await {
            Ok(found) => found
                .map(|a| Address::Tcp {
                    host: a.ip().to_string(),
                    port: a.port(),
                })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, peers_dns = %p.fleet.peers_dns, peer_id, "cannot resolve peers_dns to forward a cancel request");
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    if targets.is_empty() {
        tracing::warn!(
            peer_id,
            "dropping a cancel request for peer {peer_id}, which neither [peers] nor peers_dns knows"
        );
        return CancelOutcome::UnknownPeer;
    }
    let limit = p.cancel_wait_timeout;
    let sends = targets.iter().map(|address| async move {
        if let Err(e) = bounded(limit, send_cancel(address, pid, secret)).await {
            tracing::warn!(error = %e, %address, peer_id, "could not forward cancel request to peer");
        }
    });
    futures_util::future::join_all(sends).await;
    CancelOutcome::Peer
}

async fn bounded(
    limit: Duration,
    send: impl std::future::Future<Output = std::io::Result<()>>,
) -> std::io::Result<()> {
    if limit.is_zero() {
        return send.await;
    }
    tokio::time::timeout(limit, send)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

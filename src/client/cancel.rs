//! A CancelRequest that arrived on a new connection (PostgreSQL docs, "Canceling Requests in
//! Progress"): forwarded to the server now serving the client that owns the key, bounded by
//! cancel_wait_timeout. Called by the client task; never answers the requester.

use crate::server::send_cancel;
use crate::state::Shared;

/// Forwards a CancelRequest when both halves of the key match a live client; anything else
/// is dropped silently, as PostgreSQL does.
pub(super) async fn forward_cancel(shared: &Shared, pid: u32, secret: u32) {
    // Counted as in flight until delivered: the client's server is not given to anyone else
    // before then (see `PoolClient::detach_cancel`).
    let Some((target, _in_flight)) = shared.cancels.begin(pid, secret) else {
        return;
    };
    let limit = shared.config().pooler.cancel_wait_timeout;
    let send = send_cancel(&target.address, target.pid, target.secret);
    let result = if limit.is_zero() {
        send.await
    } else {
        tokio::time::timeout(limit, send)
            .await
            .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not forward cancel request (cancel_wait_timeout)");
    }
}

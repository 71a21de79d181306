//! Session pool mode: the client gets one server at login and keeps it until it leaves; then
//! the server is reset (rollback, server_reset_query) and pooled again, or closed if anything
//! is in doubt.

use super::attach::PoolClient;
use super::settle::{settle, ClientLeft, Leftover};
use super::ClientError;
use crate::protocol::tracker::Tracker;
use crate::relay::RelayStops;

pub(super) async fn run(mut c: PoolClient<'_>) -> Result<(), ClientError> {
    let mut lease = c.checkout().await?;
    if let Err(e) = c.greet(&mut lease).await {
        let (cut, left) = (ClientLeft::BetweenMessages, Leftover::Transaction);
        super::settle::release(c.shared, lease, Tracker::default(), cut, left).await;
        return Err(e);
    }
    let server = lease.server();
    c.point_cancel(server);
    c.link(server);
    tracing::debug!(
        client = c.client_id,
        server = server.id(),
        "server attached"
    );
    let mut tracker = Tracker::default();
    let event = c
        .relay_until_event(server, &mut tracker, RelayStops::default(), false)
        .await;
    let cancels_quiet = c.detach_cancel(lease.server()).await;
    c.unlink(lease.server());
    settle(&mut c, lease, tracker, event, cancels_quiet).await
}

//! Session pool mode: the client gets one server at login and keeps it until it leaves; then
//! the server is reset (rollback, server_reset_query) and pooled again, or closed if anything
//! is in doubt.

use super::pool_client::PoolClient;
use super::settle::{settle, ClientLeft, Leftover};
use super::ClientError;
use crate::protocol::tracker::Tracker;
use crate::relay::RelayStops;

pub(super) async fn run(mut client: PoolClient<'_>) -> Result<(), ClientError> {
    let mut lease = client.checkout().await?;
    if let Err(e) = client.greet(&mut lease).await {
        let (cut, left) = (ClientLeft::BetweenMessages, Leftover::Transaction);
        super::settle::release(client.shared, lease, Tracker::default(), cut, left).await;
        return Err(e);
    }
    let server = lease.server();
    client.point_cancel(server);
    client.link(server);
    tracing::debug!(
        client = client.client_id,
        server = server.id(),
        "server attached"
    );
    let mut tracker = Tracker::default();
    let event = client
        .relay_until_event(server, &mut tracker, RelayStops::default(), false)
        .await;
    let cancels_quiet = client.detach_cancel(lease.server()).await;
    client.unlink(lease.server());
    settle(&mut client, lease, tracker, event, cancels_quiet).await
}

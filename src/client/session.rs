//! Session pool mode: the client gets one server at login and keeps it until it leaves.
//! At login its startup parameters are applied to the server (one round trip, only what
//! differs); when it leaves, the server is reset (rollback, server_reset_query, bounded by
//! server_reset_timeout) and pooled again, or closed if anything is in doubt.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use super::ClientError;
use crate::net::pump::Pump;
use crate::net::BoxStream;
use crate::pool::{Lease, Pool};
use crate::protocol::backend::{self, Severity};
use crate::protocol::tracker::Tracker;
use crate::relay::{relay, RelayEnd};
use crate::server::{apply_params, reset_for_next_client, CancelTarget};
use crate::state::{Shared, Shutdown};

/// A logged-in client, ready for its session.
pub(crate) struct Attached<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) stream: &'a mut BoxStream,
    pub(crate) pump: Pump,
    pub(crate) pool: Arc<Pool>,
    pub(crate) params: Vec<(String, String)>,
    pub(crate) cancel_key: (u32, u32),
    pub(crate) client_id: u64,
}

pub(crate) async fn run(mut c: Attached<'_>) -> Result<(), ClientError> {
    let mut lease = c.pool.checkout().await?;
    let server = lease.server();
    if let Some((code, message)) = apply_params(server, &c.params).await? {
        // Postgres refused a startup parameter: a FATAL at login, as Postgres itself does.
        release(c.shared, lease, Tracker::default(), true).await;
        return Err(ClientError::Rejected { code, message });
    }
    let mut out = BytesMut::new();
    for (name, value) in &server.params {
        backend::parameter_status(&mut out, name, value);
    }
    backend::backend_key_data(&mut out, c.cancel_key.0, c.cancel_key.1);
    backend::ready_for_query(&mut out, b'I');
    c.stream.write_all(&out).await?;
    c.shared.cancels.point(
        c.cancel_key,
        Some(CancelTarget {
            address: server.address.clone(),
            pid: server.backend_pid,
            secret: server.backend_secret,
        }),
    );
    tracing::debug!(client = c.client_id, server = server.id, "server attached");

    let mut tracker = Tracker::default();
    let end = relay_until_end(&mut c, &mut lease, &mut tracker).await;
    c.shared.cancels.point(c.cancel_key, None);
    let result = match end {
        RelayEnd::ClientTerminated | RelayEnd::ClientGone => Ok(()),
        RelayEnd::ClientProtocol(e) => Err(e.into()),
        RelayEnd::Idle => Err(ClientError::ShuttingDown),
        RelayEnd::ServerGone(reason) => {
            lease.discard();
            return Err(ClientError::ServerGone(reason));
        }
    };
    let clean = c.pump.is_clean();
    release(c.shared, lease, tracker, clean).await;
    result
}

/// Relays, re-arming on shutdown notices: SIGINT turns the session into "stop at the next
/// idle point".
async fn relay_until_end(
    c: &mut Attached<'_>,
    lease: &mut Lease,
    tracker: &mut Tracker,
) -> RelayEnd {
    let mut shutdown: watch::Receiver<Shutdown> = c.shared.shutdown_state();
    let server = lease.server();
    loop {
        let stop_at_idle = *shutdown.borrow_and_update() == Shutdown::Closing;
        tokio::select! {
            end = relay(c.stream, &mut c.pump, server, tracker, stop_at_idle) => return end,
            Ok(()) = shutdown.changed(), if !stop_at_idle => continue,
        }
    }
}

/// Resets the server for the next client and pools it, or closes it if that fails.
async fn release(shared: &Shared, mut lease: Lease, tracker: Tracker, client_side_clean: bool) {
    let config = shared.config();
    let p = &config.pooler;
    let limit = if p.server_reset_timeout.is_zero() {
        Duration::from_secs(5)
    } else {
        p.server_reset_timeout
    };
    let server = lease.server();
    let (id, age) = (server.id, server.connected_at.elapsed());
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

/// Writes a FATAL ErrorResponse; the connection is closed right after.
pub(crate) async fn send_fatal(stream: &mut BoxStream, code: &str, message: &str) {
    let mut out = BytesMut::new();
    backend::error_response(&mut out, Severity::Fatal, code, message, None, None);
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&out)).await;
}

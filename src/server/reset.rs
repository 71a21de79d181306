//! Bringing a server back to a known-clean state after its client left, so it can serve the
//! next one (docs/architecture.md, invariant 1): finish or abort whatever the client left running,
//! roll back an open transaction, run server_reset_query. Any doubt means an error, and the
//! caller closes the server instead of pooling it.

use bytes::BytesMut;
use postgres_protocol::message::frontend;
use tokio::io::AsyncWriteExt;

use super::exchange::{drain, simple_query};
use super::{send_cancel, ServerConn, ServerError};
use crate::protocol::tags::frontend_tag;
use crate::protocol::tracker::{Tracker, TX_IDLE};

/// `client_side_clean` is false when the client's last message reached the server only in
/// part: then the server is mid-message and cannot be saved.
pub(crate) async fn reset_for_next_client(
    server: &mut ServerConn,
    mut tracker: Tracker,
    client_side_clean: bool,
    reset_query: &str,
) -> Result<(), ServerError> {
    if !client_side_clean || !server.inbound.is_clean() {
        return Err(ServerError::Unexpected(
            "client left in the middle of a message".into(),
        ));
    }
    if tracker.unsynced && !tracker.copy_in {
        // Extended-protocol messages without their Sync: Postgres may hold an implicit
        // transaction with the client's work in it, and the Sync that would end it commits
        // (docs "Extended Query"). The client never asked for that; closing the connection
        // makes Postgres roll it back (invariant 7).
        return Err(ServerError::Unexpected(
            "client left in the middle of an extended-protocol batch; closing the server so \
             its implicit transaction is rolled back, not committed"
                .into(),
        ));
    }
    let mut out = BytesMut::new();
    if tracker.copy_in {
        // PostgreSQL docs, COPY: CopyFail ends copy-in with an ErrorResponse.
        frontend::copy_fail("client disconnected", &mut out)?;
    }
    if tracker.copy_in {
        // Ended with an error by the CopyFail, so whatever the batch held is rolled back.
        frontend::sync(&mut out);
        tracker.frontend(frontend_tag::SYNC);
    }
    if !out.is_empty() {
        server.stream.write_all(&out).await?;
    }
    if tracker.outstanding > tracker.copy_in as u32 {
        // Something is still running for a client that is gone: ask Postgres to stop it
        // rather than wait for it.
        let _ = send_cancel(&server.address, server.backend_pid, server.backend_secret).await;
    }
    let mut tx_status = tracker.tx_status;
    if tracker.outstanding > 0 {
        tx_status = drain(server, &mut tracker).await?.tx_status;
    }
    if tx_status != TX_IDLE {
        tx_status = simple_query(server, "ROLLBACK").await?.tx_status;
    }
    if !reset_query.trim().is_empty() {
        let outcome = simple_query(server, reset_query).await?;
        if let Some((code, message)) = outcome.error {
            return Err(ServerError::Rejected { code, message });
        }
        tx_status = outcome.tx_status;
        // server_reset_query (DISCARD ALL, RESET ALL) undid what pgsluice had set.
        server.applied.clear();
        server.prepared.clear();
    }
    if tx_status != TX_IDLE || !server.inbound.is_clean() {
        return Err(ServerError::Unexpected(format!(
            "server not idle after reset (status {})",
            tx_status as char
        )));
    }
    Ok(())
}

//! Session state following its client in transaction pooling (docs/architecture.md, invariant 3):
//! before a client uses a server, the server is given exactly the client's settings; after a
//! transaction that may have changed them, they are read back from Postgres; state that cannot
//! move with the client (advisory locks, temporary tables, SQL prepared statements, WITH HOLD
//! cursors) pins it to its server until that state is gone — visibly, in SHOW CLIENTS,
//! in `pgsluice_clients_pinned` and in the log.

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use super::pool_client::PoolClient;
use super::ClientError;
use crate::server::{apply, capture, Applied, ServerConn, ServerError};

/// Why a server could not be given a client's settings.
pub(super) enum ApplyError {
    /// Postgres refused a value (SQLSTATE, message): the client is told so.
    Refused { code: String, message: String },
    /// The server failed; nothing of the client's request has reached it.
    Server(ServerError),
}

/// Gives `server` exactly the client's settings, and tells the client of every reported
/// value that changed on the way.
pub(super) async fn apply_to(
    client: &mut PoolClient<'_>,
    server: &mut ServerConn,
) -> Result<(), ApplyError> {
    match apply(server, &client.settings.values).await {
        Ok(Applied::Unchanged) => Ok(()),
        Ok(Applied::Changed) => tell_changes(client, server)
            .await
            .map_err(|e| ApplyError::Server(ServerError::Io(e))),
        Ok(Applied::Refused { code, message }) => Err(ApplyError::Refused { code, message }),
        Err(e) => Err(ApplyError::Server(e)),
    }
}

/// After a transaction that may have changed the session: reads its state back from the
/// server so that it follows the client, and pins the client when some of it cannot. A
/// startup parameter the client RESET gets its startup value back at once, and the client is
/// told of it. Returns the channels the session listens on (its LISTENs follow it another
/// way: `listen`).
pub(super) async fn read_back(
    client: &mut PoolClient<'_>,
    server: &mut ServerConn,
) -> Result<Vec<String>, ClientError> {
    // Custom settings it holds (from startup, or read back before) must be read back too.
    let held = client
        .settings
        .values
        .keys()
        .filter(|name| name.contains('.'));
    client.settings.effects.names.extend(held.cloned());
    let config = client.shared.config();
    let configured = config.pooler.custom_settings.iter();
    client
        .settings
        .effects
        .names
        .extend(configured.map(|name| name.to_ascii_lowercase()));
    client
        .shared
        .custom_names
        .note(&mut client.settings.effects.names);
    let custom = client.shared.custom_names.sql_array();
    let snapshot = capture(server, &custom).await?;
    client.settings.absorb(&snapshot);
    if client.pin_session_state {
        set_pins(client, snapshot.pins.clone());
    } else if !snapshot.pins.is_empty() {
        tracing::debug!(
            client = client.client_id,
            pins = ?snapshot.pins,
            "session state that cannot move left on the server (pin_session_state = false)"
        );
    }
    if client.settings.differs_from(&snapshot) {
        if let Applied::Refused { code, message } = apply(server, &client.settings.values).await? {
            return Err(ClientError::Rejected { code, message });
        }
        tell_changes(client, server).await?;
    }
    Ok(snapshot.channels)
}

/// Records why the client is pinned ("" when it is not) where SHOW CLIENTS and the metrics
/// see it, with a log line at each change.
fn set_pins(client: &mut PoolClient<'_>, pins: Vec<String>) {
    if pins == client.settings.pins {
        return;
    }
    let reason = pins.join(", ");
    if pins.is_empty() {
        tracing::info!(
            client = client.client_id,
            "client unpinned: its session state is gone"
        );
    } else {
        tracing::info!(
            client = client.client_id,
            reason = %reason,
            "client pinned to its server until this session state is gone"
        );
    }
    *client.info.pinned.lock().expect("info lock") = reason;
    client.settings.pins = pins;
}

/// ParameterStatus for every reported value the server now holds that the client has not
/// been told: pgsluice changed them for it (Postgres sends ParameterStatus at any time).
async fn tell_changes(client: &mut PoolClient<'_>, server: &mut ServerConn) -> std::io::Result<()> {
    let mut out = BytesMut::new();
    client.settings.report_changes(server.params(), &mut out);
    if !out.is_empty() {
        client.stream.write_all(&out).await?;
    }
    Ok(())
}

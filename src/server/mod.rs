//! One connection to PostgreSQL: its socket, what Postgres told us at login (parameters,
//! backend key), and the session state we know it has. Logins live in `login`, the
//! request/reply helpers in `exchange`, cleaning a server for the next client in `reset`.
//! Callers: the pool (login), the client session (params, reset), cancel forwarding.

mod cancel;
mod custom_names;
mod encrypt;
mod exchange;
mod login;
mod reset;
mod session;

use std::collections::BTreeMap;
use std::time::Instant;

pub(crate) use cancel::{send_cancel, CancelRegistry, CancelTarget};
pub(crate) use custom_names::CustomNames;
pub(crate) use exchange::{quote_literal, simple_query};
pub(crate) use login::{login, Credential, LoginRequest};
pub(crate) use reset::reset_for_next_client;
pub(crate) use session::{apply, capture, Applied, Snapshot, PIN_REASONS};

use crate::live::{Registration, TrafficStats};
use crate::net::pump::{Pump, PumpError};
use crate::net::{Address, BoxStream};
use crate::prepared::ServerStatements;
use crate::protocol::sqlstate;
use crate::protocol::ProtocolError;

/// An open, logged-in server connection.
pub(crate) struct ServerConn {
    pub(crate) id: u64,
    pub(crate) stream: BoxStream,
    /// Bytes from the server on their way to a client (or to be drained).
    pub(crate) inbound: Pump,
    /// Values Postgres reported with ParameterStatus, by name as reported.
    pub(crate) params: BTreeMap<String, String>,
    /// Every run-time parameter at source "session" on this server, as far as pgsluice knows
    /// (lower-case name → value): what it set for the last client, or read back after that
    /// client changed something (`session::capture`).
    pub(crate) applied: BTreeMap<String, String>,
    /// The user it logged in as (session_authorization at login), which a client's
    /// SET SESSION AUTHORIZATION is compared with.
    pub(crate) login_user: String,
    /// Statements pgsluice prepared on this server under pooler-wide names.
    pub(crate) prepared: ServerStatements,
    /// Local end of the TCP connection (None over a Unix socket).
    pub(crate) local: Option<std::net::SocketAddr>,
    /// Its record in SHOW SERVERS, set by the pool once logged in.
    pub(crate) registration: Option<Registration>,
    /// The pool generation it was opened in (RECONNECT replaces older ones).
    pub(crate) generation: u64,
    /// Traffic counters of the pool this server belongs to.
    pub(crate) stats: std::sync::Arc<TrafficStats>,
    /// BackendKeyData of this server process, for forwarding cancels.
    pub(crate) backend_pid: u32,
    pub(crate) backend_secret: u32,
    pub(crate) address: Address,
    /// "TLSv1.3/TLS_AES_256_GCM_SHA384" over TLS, "" in plain text (SHOW SERVERS).
    pub(crate) tls: String,
    pub(crate) connected_at: Instant,
    pub(crate) last_used: Instant,
}

impl std::fmt::Debug for ServerConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConn")
            .field("id", &self.id)
            .field("address", &self.address)
            .field("backend_pid", &self.backend_pid)
            .finish_non_exhaustive()
    }
}

/// Splits a ParameterStatus body into name and value.
pub(crate) fn parse_parameter_status(body: &[u8]) -> Option<(&str, &str)> {
    let mut parts = body.split(|b| *b == 0);
    let name = std::str::from_utf8(parts.next()?).ok()?;
    let value = std::str::from_utf8(parts.next()?).ok()?;
    Some((name, value))
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ServerError {
    #[error("could not connect to server {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("server connection timed out after {0:?}")]
    Timeout(std::time::Duration),
    #[error("server connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// Bytes from the server that are not a valid message.
    #[error("server sent an invalid message: {0}")]
    Protocol(#[source] ProtocolError),
    /// A valid message where Postgres's protocol does not allow it.
    #[error("server sent an invalid message: {0}")]
    Unexpected(String),
    #[error("server login failed: {message}")]
    Rejected { code: String, message: String },
    #[error("server login failed: {0}")]
    Auth(String),
    #[error("server closed the connection")]
    Closed,
    #[error("server TLS failed: {0}")]
    Tls(String),
}

impl ServerError {
    /// SQLSTATE for the client: Postgres's own when it refused us, else connection failure.
    pub(crate) fn sqlstate(&self) -> &str {
        match self {
            ServerError::Rejected { code, .. } => code,
            ServerError::Auth(_) => sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
            _ => sqlstate::CONNECTION_FAILURE,
        }
    }
}

impl From<PumpError> for ServerError {
    fn from(e: PumpError) -> Self {
        match e {
            PumpError::Read(e) | PumpError::Write(e) => ServerError::Io(e),
            PumpError::Protocol(p) => ServerError::Protocol(p),
        }
    }
}

impl From<ProtocolError> for ServerError {
    fn from(e: ProtocolError) -> Self {
        ServerError::Protocol(e)
    }
}

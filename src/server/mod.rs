//! One connection to PostgreSQL: its socket, what Postgres told us at login (parameters,
//! backend key), and the session state we know it has. Logins live in `login`, the
//! request/reply helpers in `exchange`, cleaning a server for the next client in `reset`.
//! Callers: the pool (login), the client session (params, reset), cancel forwarding.

mod cancel;
mod custom_names;
mod encrypt;
mod exchange;
mod listen;
mod login;
mod reset;
mod role;
mod session;

use std::collections::BTreeMap;
use std::time::Instant;

pub(crate) use cancel::{
    route as cancel_route, send_cancel, CancelRegistry, CancelRoute, CancelTarget,
};
pub(crate) use custom_names::CustomNames;
pub(crate) use exchange::{query_rows_with, quote_literal, simple_query};
pub(crate) use listen::{
    listening_channels, read_messages, read_notifications, send_query as send_query_only,
    unlisten_all, MARKED,
};
pub(crate) use login::{login, Credential, LoginRequest};
pub(crate) use reset::reset_for_next_client;
pub(crate) use role::{server_role, ServerRole};
pub(crate) use session::{apply, capture, Applied, Snapshot, PIN_REASONS};

use crate::live::{Registration, TrafficStats};
use crate::net::pump::{Pump, PumpError};
use crate::net::{Address, BoxStream};
use crate::prepared::ServerStatements;
use crate::protocol::sqlstate;
use crate::protocol::tags::frontend_tag;
use crate::protocol::ProtocolError;

/// An open, logged-in server connection.
pub(crate) struct ServerConn {
    id: u64,
    stream: BoxStream,
    /// Bytes from the server on their way to a client (or to be drained).
    inbound: Pump,
    /// Values Postgres reported with ParameterStatus, by name as reported.
    params: BTreeMap<String, String>,
    /// Every run-time parameter at source "session" on this server, as far as pgsluice knows
    /// (lower-case name → value): what it set for the last client, or read back after that
    /// client changed something (`session::capture`).
    applied: BTreeMap<String, String>,
    /// The user it logged in as (session_authorization at login), which a client's
    /// SET SESSION AUTHORIZATION is compared with.
    login_user: String,
    /// NotificationResponse frames Postgres sent while pgsluice itself was reading replies
    /// (a client's LISTEN being handed over, `listen`): kept in order for that client, never
    /// dropped unseen and never left for another.
    notifications: Vec<bytes::Bytes>,
    /// Statements pgsluice prepared on this server under pooler-wide names.
    prepared: ServerStatements,
    /// Local end of the TCP connection (None over a Unix socket).
    local: Option<std::net::SocketAddr>,
    /// Its record in SHOW SERVERS, set by the pool once logged in.
    registration: Option<Registration>,
    /// The pool generation it was opened in (RECONNECT replaces older ones).
    generation: u64,
    /// Traffic counters of the pool this server belongs to.
    stats: std::sync::Arc<TrafficStats>,
    /// BackendKeyData of this server process, for forwarding cancels.
    backend_pid: u32,
    backend_secret: u32,
    address: Address,
    /// "TLSv1.3/TLS_AES_256_GCM_SHA384" over TLS, "" in plain text (SHOW SERVERS).
    tls: String,
    connected_at: Instant,
    last_used: Instant,
}

/// The parts of a server connection the relay drives at once, borrowed apart.
pub(crate) struct RelayParts<'a> {
    pub(crate) stream: &'a mut BoxStream,
    /// Bytes from the server on their way to the client.
    pub(crate) inbound: &'a mut Pump,
    /// Values Postgres reported, updated as ParameterStatus messages pass.
    pub(crate) params: &'a mut BTreeMap<String, String>,
    pub(crate) statements: &'a mut ServerStatements,
    pub(crate) stats: &'a TrafficStats,
}

impl ServerConn {
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn relay_parts(&mut self) -> RelayParts<'_> {
        RelayParts {
            stream: &mut self.stream,
            inbound: &mut self.inbound,
            params: &mut self.params,
            statements: &mut self.prepared,
            stats: &self.stats,
        }
    }

    /// Values Postgres reported with ParameterStatus, by name as reported.
    pub(crate) fn params(&self) -> &BTreeMap<String, String> {
        &self.params
    }

    pub(crate) fn address(&self) -> &Address {
        &self.address
    }

    /// "TLSv1.3/TLS_AES_256_GCM_SHA384" over TLS, "" in plain text.
    pub(crate) fn tls(&self) -> &str {
        &self.tls
    }

    /// Local end of the TCP connection (None over a Unix socket).
    pub(crate) fn local(&self) -> Option<std::net::SocketAddr> {
        self.local
    }

    pub(crate) fn connected_at(&self) -> Instant {
        self.connected_at
    }

    pub(crate) fn last_used(&self) -> Instant {
        self.last_used
    }

    pub(crate) fn mark_used(&mut self, now: Instant) {
        self.last_used = now;
    }

    /// The server process's BackendKeyData (process id, secret key).
    pub(crate) fn backend_key(&self) -> (u32, u32) {
        (self.backend_pid, self.backend_secret)
    }

    /// Where a CancelRequest for this server's current query goes.
    pub(crate) fn cancel_target(&self) -> CancelTarget {
        CancelTarget {
            address: self.address.clone(),
            pid: self.backend_pid,
            secret: self.backend_secret,
        }
    }

    /// The pool generation it was opened in (RECONNECT replaces older ones).
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Makes it a server of a pool: its record in SHOW SERVERS, the pool generation it is
    /// opened in, and the pool's traffic counters.
    pub(crate) fn join_pool(
        &mut self,
        registration: Registration,
        generation: u64,
        stats: std::sync::Arc<TrafficStats>,
    ) {
        self.registration = Some(registration);
        self.generation = generation;
        self.stats = stats;
    }

    /// Its record in SHOW SERVERS, once the pool registered it.
    pub(crate) fn registration(&self) -> Option<&Registration> {
        self.registration.as_ref()
    }

    /// Traffic counters of the pool it belongs to.
    pub(crate) fn stats(&self) -> &TrafficStats {
        &self.stats
    }

    /// Statements pgsluice prepared on it under pooler-wide names.
    pub(crate) fn statements_mut(&mut self) -> &mut ServerStatements {
        &mut self.prepared
    }

    /// Postgres sent something that nobody has read (a pooled server must have nothing).
    pub(crate) fn has_unread(&self) -> bool {
        !self.inbound.is_empty() || !self.notifications.is_empty()
    }

    /// Bytes from Postgres are buffered that nobody has read yet.
    pub(crate) fn has_unread_bytes(&self) -> bool {
        !self.inbound.is_empty()
    }

    /// The notifications read while pgsluice read replies, oldest first.
    pub(crate) fn take_notifications(&mut self) -> Vec<bytes::Bytes> {
        std::mem::take(&mut self.notifications)
    }

    /// Everything read from it was relayed whole, and nothing waits to be written.
    pub(crate) fn is_between_messages(&self) -> bool {
        self.inbound.is_clean()
    }

    /// A client is inside a half-relayed message from this server.
    pub(crate) fn mid_message(&self) -> bool {
        self.inbound.mid_message()
    }

    /// False when the server has hung up or has something to say (a FATAL on shutdown or
    /// pg_terminate_backend), without waiting: such a server is not safe to hand out.
    pub(crate) fn looks_alive(&mut self) -> bool {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        self.inbound.is_empty()
            && self
                .inbound
                .poll_fill_once(&mut cx, &mut self.stream)
                .is_pending()
    }

    /// Sends Terminate if the socket takes it right away (PostgreSQL docs, "Termination"),
    /// best effort, before the connection is dropped.
    pub(crate) fn terminate_now(&mut self) {
        use tokio::io::AsyncWrite;
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let terminate = [frontend_tag::TERMINATE, 0, 0, 0, 4];
        let _ = std::pin::Pin::new(&mut self.stream).poll_write(&mut cx, &terminate);
    }
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
    /// Postgres asked for a login pgsluice cannot give (no password, no mechanism).
    #[error("server login failed: {0}")]
    Auth(String),
    /// The SCRAM exchange with Postgres failed.
    #[error("server login failed: {0}")]
    Scram(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("server closed the connection")]
    Closed,
    #[error("server TLS failed: {0}")]
    Tls(#[source] crate::tls::TlsError),
    /// No host of the database fits the pool's target_session_attrs now (each one's reason).
    #[error("no server fits target_session_attrs = {0}")]
    NoHostFits(String),
    /// server_tls_sslmode requires TLS and the server refused it.
    #[error("server TLS failed: the server does not accept TLS connections (server_tls_sslmode = \"{0}\")")]
    TlsRefused(String),
}

impl ServerError {
    /// SQLSTATE for the client: Postgres's own when it refused us, else connection failure.
    pub(crate) fn sqlstate(&self) -> &str {
        match self {
            ServerError::Rejected { code, .. } => code,
            ServerError::Auth(_) | ServerError::Scram(_) => {
                sqlstate::INVALID_AUTHORIZATION_SPECIFICATION
            }
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

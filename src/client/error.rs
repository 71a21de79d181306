//! Why a client connection ended in error: `ClientError` keeps the cause (the I/O, protocol,
//! pool or server error underneath), knows the SQLSTATE the client is sent and whether it
//! can still be sent one, and names its `kind` — the `kind` field of the disconnect log line
//! and the label of `pgsluice_client_errors_total`. Messages are safe to show the client.

use std::time::Duration;

use crate::auth::AuthError;
use crate::pool::PoolError;
use crate::protocol::{sqlstate, ProtocolError};
use crate::relay::ServerLost;
use crate::server::ServerError;
use crate::tls::TlsError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    #[error("connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("client closed the connection")]
    Gone,
    /// Bytes from the client that are not a valid message, or a message over a limit.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// A valid message where the protocol does not allow it.
    #[error("{0}")]
    Violation(String),
    /// A SASL exchange the client got wrong (other than a wrong password).
    #[error("{0}")]
    Sasl(#[source] AuthError),
    #[error("password authentication failed for user \"{user}\"")]
    AuthFailed { user: String },
    #[error("no such database: \"{0}\" (add a [databases.{0}] section or a [databases.\"*\"] fallback to pooler.toml)")]
    NoDatabase(String),
    #[error("timeout during login (client_login_timeout)")]
    LoginTimeout,
    /// The TLS handshake failed: nothing can be told to the client in a form it could read.
    #[error("{0}")]
    Tls(#[source] TlsError),
    /// A direct TLS connection (PostgreSQL 17) where pgsluice does not accept one.
    #[error("direct TLS connection refused: client_tls_sslmode = \"{mode}\"{}", unix_note(.unix))]
    DirectTlsRefused { mode: String, unix: bool },
    #[error("pgsluice is shutting down; connect again to go on")]
    ShuttingDown,
    #[error("terminated by the administrator (KILL)")]
    Killed,
    #[error("database \"{0}\" is disabled (DISABLE); try again after ENABLE")]
    Disabled(String),
    #[error("client_idle_timeout ({0:?}) exceeded; closing the idle connection")]
    IdleTimeout(Duration),
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error("server connection lost: {0}")]
    ServerGone(#[source] ServerLost),
    /// Any error met while the client was inside a half-relayed message from its server: an
    /// ErrorResponse written then would be read as that message's data, so the client is
    /// only disconnected. The SQLSTATE and kind are the cause's, for logs and metrics.
    #[error("{0} (mid-message: disconnected without an ErrorResponse)")]
    CutOff(#[source] Box<ClientError>),
    /// pgsluice refused a request (a timeout, a limit, a value Postgres refused).
    #[error("{message}")]
    Rejected { code: String, message: String },
    #[error("internal error: {what}")]
    Internal {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
}

impl ClientError {
    pub(super) fn sqlstate(&self) -> &str {
        match self {
            ClientError::Io(_) | ClientError::Gone => sqlstate::CONNECTION_FAILURE,
            ClientError::Violation(_)
            | ClientError::Sasl(_)
            | ClientError::LoginTimeout
            | ClientError::Tls(_)
            | ClientError::DirectTlsRefused { .. } => sqlstate::PROTOCOL_VIOLATION,
            ClientError::Protocol(e) => e.sqlstate(),
            ClientError::AuthFailed { .. } => sqlstate::INVALID_PASSWORD,
            ClientError::NoDatabase(_) => sqlstate::INVALID_CATALOG_NAME,
            ClientError::ShuttingDown => sqlstate::ADMIN_SHUTDOWN,
            ClientError::IdleTimeout(_) => sqlstate::IDLE_SESSION_TIMEOUT,
            ClientError::Killed => sqlstate::ADMIN_SHUTDOWN,
            ClientError::Disabled(_) => sqlstate::CANNOT_CONNECT_NOW,
            ClientError::Pool(e) => e.sqlstate(),
            ClientError::Server(e) => e.sqlstate(),
            ClientError::ServerGone(_) => sqlstate::CONNECTION_FAILURE,
            ClientError::CutOff(cause) => cause.sqlstate(),
            ClientError::Rejected { code, .. } => code,
            ClientError::Internal { .. } => sqlstate::INTERNAL_ERROR,
        }
    }

    /// What kind of failure this is, in a word: a log field and a metric label, so it stays
    /// one of a few fixed values.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            ClientError::Io(_) | ClientError::Gone => "client_connection",
            ClientError::Protocol(_) | ClientError::Violation(_) => "protocol",
            ClientError::Sasl(_) | ClientError::AuthFailed { .. } => "authentication",
            ClientError::NoDatabase(_) => "no_database",
            ClientError::LoginTimeout => "login_timeout",
            ClientError::Tls(_) | ClientError::DirectTlsRefused { .. } => "tls",
            ClientError::ShuttingDown => "shutdown",
            ClientError::Killed => "killed",
            ClientError::Disabled(_) => "disabled",
            ClientError::IdleTimeout(_) => "idle_timeout",
            ClientError::Pool(_) => "pool",
            ClientError::Server(_) => "server",
            ClientError::ServerGone(_) => "server_lost",
            ClientError::CutOff(cause) => cause.kind(),
            ClientError::Rejected { .. } => "rejected",
            ClientError::Internal { .. } => "internal",
        }
    }

    /// Whether the client can still be told why.
    pub(super) fn reaches_client(&self) -> bool {
        !matches!(
            self,
            ClientError::Io(_)
                | ClientError::Gone
                | ClientError::Tls(_)
                | ClientError::DirectTlsRefused { .. }
                | ClientError::CutOff(_)
        )
    }
}

fn unix_note(unix: &bool) -> &'static str {
    if *unix {
        " (not over a Unix socket)"
    } else {
        ""
    }
}

//! Authentication, sans-io: the PgBouncer-style auth_file (userlist), PostgreSQL md5 auth, and
//! SCRAM-SHA-256 both as the server (towards clients) and as a pass-through client (towards
//! Postgres, using keys recovered from the client's proof). Called by `client` (client login)
//! and `server` (server login). Nothing here touches a socket; every error message is safe to
//! show a client and never contains a password, hash or key.

mod hba;
mod md5;
mod scram_client;
mod scram_common;
mod scram_server;
mod secret;
mod userlist;

use std::path::PathBuf;

use crate::protocol::sqlstate;

pub use hba::{Connection, Hba, HbaMethod};
pub use md5::{md5_response_from_secret, md5_secret, verify_md5};
pub use scram_client::{Binding, ScramKeys, ScramPassthroughClient};
pub use scram_common::ct_eq;
pub use scram_server::ScramServer;
pub use secret::{ScramSecret, Secret};
pub use userlist::Userlist;

/// The SASL mechanism names advertised in AuthenticationSASL (PostgreSQL docs, "SASL
/// Authentication"). The `-PLUS` variant binds the exchange to the TLS channel (offered only
/// over TLS).
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";
pub const SCRAM_SHA_256_PLUS: &str = "SCRAM-SHA-256-PLUS";

/// Everything that can go wrong while authenticating or loading credentials.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong password, or an unknown user (deliberately indistinguishable, so that clients
    /// cannot probe which user names exist).
    #[error("password authentication failed")]
    PasswordMismatch,
    /// The peer sent a SCRAM message that does not follow RFC 5802's grammar.
    #[error("malformed SCRAM message: {0}")]
    Malformed(String),
    /// A well-formed request for something we do not implement (channel binding, authzid, ...).
    #[error("unsupported SCRAM feature: {0}")]
    Unsupported(String),
    /// Postgres's ServerSignature did not match: the server does not know our keys, so it is
    /// not the server we meant to talk to (RFC 5802 section 5: mutual authentication).
    #[error("server SCRAM signature did not verify")]
    ServerSignatureMismatch,
    /// A line of the auth_file could not be parsed. The message names the problem, never the
    /// content of the line.
    #[error("auth_file line {line}: {message}")]
    Userlist { line: usize, message: String },
    /// The auth_hba_file could not be read or has bad lines (each named `file:line`).
    #[error("auth_hba_file: {0}")]
    Hba(String),
    /// The auth_file could not be read.
    #[error("cannot read auth_file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl AuthError {
    /// The SQLSTATE to put in the ErrorResponse sent to a client for this error
    /// (PostgreSQL docs, Appendix A "PostgreSQL Error Codes").
    pub fn sqlstate(&self) -> &'static str {
        match self {
            // invalid_password, as PostgreSQL answers a failed password/md5/SCRAM login.
            AuthError::PasswordMismatch => sqlstate::INVALID_PASSWORD,
            // protocol_violation, as PostgreSQL answers an unparsable SASL message.
            AuthError::Malformed(_) => sqlstate::PROTOCOL_VIOLATION,
            // feature_not_supported.
            AuthError::Unsupported(_) => sqlstate::FEATURE_NOT_SUPPORTED,
            // invalid_authorization_specification: the pooler could not log in to Postgres.
            AuthError::ServerSignatureMismatch => sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
            // config_file_error.
            AuthError::Userlist { .. } | AuthError::Io { .. } | AuthError::Hba(_) => {
                sqlstate::CONFIG_FILE_ERROR
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_client_safe_and_have_sqlstates() {
        let e = AuthError::Userlist {
            line: 7,
            message: "unterminated quoted field".into(),
        };
        assert_eq!(e.to_string(), "auth_file line 7: unterminated quoted field");
        assert_eq!(e.sqlstate(), "F0000");
        assert_eq!(AuthError::PasswordMismatch.sqlstate(), "28P01");
        assert_eq!(
            AuthError::PasswordMismatch.to_string(),
            "password authentication failed"
        );
        assert_eq!(AuthError::Malformed("x".into()).sqlstate(), "08P01");
    }
}

//! Errors of the admin console: a query that does not parse, a command the user may not run,
//! a control command that cannot apply. Built by the parser and by the console session;
//! each knows its SQLSTATE, severity and hint and writes itself as an ErrorResponse.
//! Messages are client-safe: an unknown command is echoed by its keywords only, never the
//! whole query (which could carry a password someone typed into the wrong console).

use bytes::BytesMut;

use crate::protocol::backend::{error_response, Severity};
use crate::protocol::sqlstate;

/// Everything that can go wrong with one admin console query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AdminError {
    /// The command word (or `SHOW` subject) is not one the console knows.
    #[error("invalid command '{0}'")]
    UnknownCommand(String),
    /// A known command with missing, extra or malformed arguments.
    #[error("{0}")]
    Syntax(String),
    /// A PgBouncer command pgsluice deliberately does not implement (SUSPEND, SHOW FDS, ...).
    #[error("{0} is not supported by pgsluice")]
    NotSupported(String),
    /// A stats_users member tried a command that changes state.
    #[error("admin access needed: {command} may only be run by a user listed in admin_users")]
    NotAllowed { command: String },
    /// The user is in neither admin_users nor stats_users.
    #[error(
        "user \"{user}\" may not use the admin console: it is in neither admin_users nor stats_users"
    )]
    AccessDenied { user: String },
    /// Anything but a simple Query (Parse, Bind, FunctionCall...) reached the console.
    #[error("the admin console supports only the simple query protocol")]
    SimpleQueryOnly,
    /// PAUSE/KILL/... named a database that is not configured.
    #[error("no such database: {0}")]
    NoSuchDatabase(String),
    /// KILL_CLIENT named an id that SHOW CLIENTS does not list.
    #[error("no client with id {0}; see the id column of SHOW CLIENTS")]
    NoSuchClient(u64),
    /// SET with a value the setting does not accept.
    #[error("SET {key} failed: {reason}")]
    SetFailed { key: String, reason: String },
    /// SET on a setting that only a restart can change.
    #[error("{key} cannot be changed while running; edit the configuration file and restart")]
    NeedsRestart { key: String },
    /// RELOAD found errors; the old configuration stays in force.
    #[error("RELOAD failed, the configuration is unchanged: {0}")]
    ReloadFailed(String),
    /// Shutdown began: the console session ends so it does not keep the process alive.
    #[error("pgsluice is shutting down")]
    ShuttingDown,
}

impl AdminError {
    /// The SQLSTATE (PostgreSQL docs, Appendix A "Error Codes"). PgBouncer sends 08P01 for
    /// nearly every console error; we use the codes PostgreSQL itself would choose, so a
    /// script can tell a typo from a refusal.
    pub(crate) fn sqlstate(&self) -> &'static str {
        match self {
            AdminError::UnknownCommand(_) | AdminError::Syntax(_) => sqlstate::SYNTAX_ERROR, // syntax_error
            AdminError::NotSupported(_) => sqlstate::FEATURE_NOT_SUPPORTED, // feature_not_supported
            AdminError::NotAllowed { .. } => sqlstate::INSUFFICIENT_PRIVILEGE, // insufficient_privilege
            AdminError::AccessDenied { .. } => sqlstate::INVALID_AUTHORIZATION_SPECIFICATION, // invalid_authorization_specification
            AdminError::SimpleQueryOnly => sqlstate::PROTOCOL_VIOLATION, // protocol_violation
            AdminError::NoSuchDatabase(_) => sqlstate::INVALID_CATALOG_NAME, // invalid_catalog_name
            AdminError::NoSuchClient(_) => sqlstate::UNDEFINED_OBJECT,   // undefined_object
            AdminError::SetFailed { .. } => sqlstate::INVALID_PARAMETER_VALUE, // invalid_parameter_value
            AdminError::NeedsRestart { .. } => sqlstate::CANT_CHANGE_RUNTIME_PARAM, // cant_change_runtime_param
            AdminError::ReloadFailed(_) => sqlstate::CONFIG_FILE_ERROR, // config_file_error, as PgBouncer
            AdminError::ShuttingDown => sqlstate::ADMIN_SHUTDOWN,       // admin_shutdown
        }
    }

    /// FATAL ends the console session: a user without console rights, a client speaking
    /// the extended protocol, which would otherwise wait for replies we never send, or
    /// shutdown.
    pub(crate) fn severity(&self) -> Severity {
        match self {
            AdminError::AccessDenied { .. }
            | AdminError::SimpleQueryOnly
            | AdminError::ShuttingDown => Severity::Fatal,
            _ => Severity::Error,
        }
    }

    /// What the user can do about it, sent as the `H` field (psql prints it as `HINT:`).
    pub(crate) fn hint(&self) -> Option<&'static str> {
        match self {
            AdminError::UnknownCommand(_) | AdminError::Syntax(_) => {
                Some("See SHOW HELP; for the console's commands.")
            }
            AdminError::NotAllowed { .. } => {
                Some("Members of stats_users may run SHOW commands only.")
            }
            AdminError::SimpleQueryOnly => Some(
                "Use psql, or a driver's simple query mode (e.g. tokio-postgres simple_query).",
            ),
            AdminError::NoSuchDatabase(_) => Some("SHOW DATABASES lists the configured ones."),
            _ => None,
        }
    }

    /// Appends this error as an ErrorResponse; the caller follows it with ReadyForQuery
    /// (ERROR) or closes the connection (FATAL).
    pub(crate) fn write_error_response(&self, out: &mut BytesMut) {
        let message = self.to_string();
        error_response(
            out,
            self.severity(),
            self.sqlstate(),
            &message,
            None,
            self.hint(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::backend::error_fields;

    #[test]
    fn codes_follow_postgres() {
        assert_eq!(AdminError::UnknownCommand("X".into()).sqlstate(), "42601");
        assert_eq!(AdminError::Syntax("x".into()).sqlstate(), "42601");
        let not_allowed = AdminError::NotAllowed {
            command: "PAUSE".into(),
        };
        assert_eq!(not_allowed.sqlstate(), "42501");
        assert!(not_allowed.to_string().contains("PAUSE"));
        let denied = AdminError::AccessDenied { user: "bob".into() };
        assert_eq!(denied.sqlstate(), "28000");
        assert_eq!(denied.severity(), Severity::Fatal);
        assert_eq!(AdminError::SimpleQueryOnly.sqlstate(), "08P01");
        assert_eq!(AdminError::SimpleQueryOnly.severity(), Severity::Fatal);
        assert_eq!(AdminError::NoSuchDatabase("x".into()).sqlstate(), "3D000");
        assert_eq!(AdminError::ReloadFailed("x".into()).sqlstate(), "F0000");
        assert_eq!(not_allowed.severity(), Severity::Error);
    }

    #[test]
    fn writes_an_error_response_with_hint() {
        let mut out = BytesMut::new();
        AdminError::UnknownCommand("FOO".into()).write_error_response(&mut out);
        assert_eq!(out[0], b'E');
        let fields = error_fields(&out[5..]);
        assert_eq!(fields.severity.as_deref(), Some("ERROR"));
        assert_eq!(fields.code.as_deref(), Some("42601"));
        assert_eq!(fields.message.as_deref(), Some("invalid command 'FOO'"));
        assert!(out.windows(14).any(|w| w == b"HSee SHOW HELP"));
    }
}

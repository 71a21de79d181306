//! Which run-time parameters are part of a client's session state. Postgres reports some
//! parameters with ParameterStatus (GUC_REPORT); of those, the read-only ones describe the
//! server, not the session, and must never be "restored" on another server.

/// Reported parameters a client cannot set: they describe the server or the login.
const READ_ONLY: [&str; 6] = [
    "server_version",
    "server_encoding",
    "integer_datetimes",
    "is_superuser",
    "session_authorization",
    "in_hot_standby",
];

/// True for a parameter whose value belongs to the client's session and must follow the
/// client from server to server in transaction pooling.
pub fn is_session_parameter(name: &str) -> bool {
    !READ_ONLY.iter().any(|r| r.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::is_session_parameter;

    #[test]
    fn server_facts_are_not_session_state() {
        assert!(is_session_parameter("application_name"));
        assert!(is_session_parameter("DateStyle"));
        assert!(!is_session_parameter("server_version"));
        assert!(!is_session_parameter("IS_SUPERUSER"));
    }
}

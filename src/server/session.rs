//! The session-level state of one server connection, as pgsluice moves clients across it in
//! transaction pooling: `apply` makes the server's settings exactly a client's (every run-time
//! parameter at source "session": set what differs, RESET what the last client left), and
//! `capture` reads back from Postgres what a client's transaction left behind — its settings,
//! reported or not, its role, and the state that cannot follow it to another server (advisory
//! locks, temporary tables, SQL prepared statements, WITH HOLD cursors), which pins the
//! client, and whether it listens on a channel (LISTEN follows the client another way). `ServerConn::applied` is what pgsluice knows is set on the server; it is
//! complete after either, which is what keeps one client's settings from reaching another.

use std::collections::BTreeMap;

use super::exchange::{query_rows, quote_literal, simple_query};
use super::{ServerConn, ServerError};

/// Reported by Postgres and settable, but not listed in pg_settings: compared with the login.
const SESSION_AUTHORIZATION: &str = "session_authorization";

/// The kinds of session state that cannot move to another server, as `capture` names them.
pub(crate) const PIN_REASONS: [&str; 4] = [
    "advisory lock",
    "temporary table",
    "prepared statement",
    "cursor WITH HOLD",
];

/// One row per setting at source "session" ('s'), one per kind of pinning state ('p'), one
/// per channel the session listens on ('l'). `role`
/// and `session_authorization` are not in pg_settings, so they are read on their own.
const CAPTURE_SQL: &str = "\
SELECT 's', name, setting FROM pg_catalog.pg_settings WHERE source = 'session' \
UNION ALL SELECT 's', 'role', pg_catalog.current_setting('role') \
 WHERE pg_catalog.current_setting('role') <> 'none' \
UNION ALL SELECT 's', 'session_authorization', pg_catalog.current_setting('session_authorization') \
UNION ALL SELECT 'p', 'advisory lock', NULL WHERE EXISTS (SELECT FROM pg_catalog.pg_locks \
 WHERE pid = pg_catalog.pg_backend_pid() AND locktype = 'advisory') \
UNION ALL SELECT 'p', 'temporary table', NULL WHERE EXISTS (SELECT FROM pg_catalog.pg_class \
 WHERE relnamespace = pg_catalog.pg_my_temp_schema()) \
UNION ALL SELECT 'p', 'prepared statement', NULL WHERE EXISTS \
 (SELECT FROM pg_catalog.pg_prepared_statements WHERE from_sql) \
UNION ALL SELECT 'p', 'cursor WITH HOLD', NULL WHERE EXISTS \
 (SELECT FROM pg_catalog.pg_cursors WHERE is_holdable) \
UNION ALL SELECT 'l', c, NULL FROM pg_catalog.pg_listening_channels() c";

/// What a client's transactions left on a server.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    /// Every setting at source "session" (lower-case name → value as Postgres stores it).
    pub(crate) settings: BTreeMap<String, String>,
    /// Why the session cannot move to another server; empty when it can.
    pub(crate) pins: Vec<String>,
    /// The channels the session listens on.
    pub(crate) channels: Vec<String>,
}

/// Reads back the session state of `server` (idle, nothing owed) in one round trip, and
/// records its settings as what the server holds. `custom` is `CustomNames::sql_array`: the
/// custom settings to read by name ("" for none).
pub(crate) async fn capture(
    server: &mut ServerConn,
    custom: &str,
) -> Result<Snapshot, ServerError> {
    let (rows, outcome) = if custom.is_empty() {
        query_rows(server, CAPTURE_SQL).await?
    } else {
        // A placeholder RESET reads as '' ever after: that is "not set".
        let sql = format!(
            "{CAPTURE_SQL} UNION ALL SELECT 's', n, pg_catalog.current_setting(n, true) \
             FROM pg_catalog.unnest({custom}) n \
             WHERE coalesce(pg_catalog.current_setting(n, true), '') <> ''"
        );
        query_rows(server, &sql).await?
    };
    if let Some((code, message)) = outcome.error {
        return Err(ServerError::Unexpected(format!(
            "session capture failed: {code}: {message}"
        )));
    }
    let mut snapshot = Snapshot::default();
    for row in rows {
        let [Some(kind), Some(name), value] = <[Option<String>; 3]>::try_from(row)
            .map_err(|_| ServerError::Unexpected("session capture: wrong row shape".into()))?
        else {
            return Err(ServerError::Unexpected("session capture: NULL kind".into()));
        };
        match (kind.as_str(), value) {
            ("s", Some(value)) => {
                if name == SESSION_AUTHORIZATION && value == server.login_user {
                    continue;
                }
                snapshot.settings.insert(name.to_ascii_lowercase(), value);
            }
            ("p", _) => snapshot.pins.push(name),
            ("l", _) => snapshot.channels.push(name),
            _ => {
                return Err(ServerError::Unexpected(
                    "session capture: unknown row".into(),
                ))
            }
        }
    }
    server.applied.clone_from(&snapshot.settings);
    Ok(snapshot)
}

/// Makes the server's session settings exactly `wanted` (lower-case name → value) in one
/// round trip: what the server holds and `wanted` lacks is RESET, what differs is set. Nothing
/// is sent (and nothing allocated) when they already match. Returns Postgres's error if it
/// refused one (the server is then unchanged: the statements run as one transaction), and
/// whether anything was sent.
pub(crate) async fn apply(
    server: &mut ServerConn,
    wanted: &BTreeMap<String, String>,
) -> Result<Applied, ServerError> {
    let mut sql = String::new();
    for name in server.applied.keys() {
        if !wanted.contains_key(name) {
            sql.push_str("RESET ");
            sql.push_str(&quote_ident(name));
            sql.push_str("; ");
        }
    }
    // SET SESSION AUTHORIZATION resets the role, so it goes first.
    let mut sets: Vec<(&String, &String)> = wanted
        .iter()
        .filter(|(name, value)| server.applied.get(*name) != Some(*value))
        .collect();
    if sql.is_empty() && sets.is_empty() {
        return Ok(Applied::Unchanged);
    }
    sets.sort_by_key(|(name, _)| name.as_str() != SESSION_AUTHORIZATION);
    if !sets.is_empty() {
        sql.push_str("SELECT ");
        for (i, (name, value)) in sets.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str("pg_catalog.set_config(");
            sql.push_str(&quote_literal(name));
            sql.push_str(", ");
            sql.push_str(&quote_literal(value));
            sql.push_str(", false)");
        }
    }
    let outcome = simple_query(server, &sql).await?;
    if let Some((code, message)) = outcome.error {
        return Ok(Applied::Refused { code, message });
    }
    server.applied.clone_from(wanted);
    Ok(Applied::Changed)
}

/// What `apply` did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Applied {
    /// The server already had exactly those settings.
    Unchanged,
    /// Settings were set or reset; ParameterStatus values may have changed.
    Changed,
    /// Postgres refused a value: SQLSTATE and message.
    Refused { code: String, message: String },
}

/// SQL identifier, quoted; a dotted custom parameter name ("myapp.mode") stays one name.
fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::{CAPTURE_SQL, PIN_REASONS};

    #[test]
    fn the_capture_names_each_pin_reason() {
        for reason in PIN_REASONS {
            assert!(
                CAPTURE_SQL.contains(&format!("'p', '{reason}'")),
                "{reason}"
            );
        }
        assert_eq!(CAPTURE_SQL.matches("'p', '").count(), PIN_REASONS.len());
    }
}

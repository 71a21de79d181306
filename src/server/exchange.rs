//! Requests pgsluice itself sends to a server outside any client's relay: applying a client's
//! session parameters, ROLLBACK, server_reset_query. Replies are read through the server's
//! own inbound pump (so no byte of a half-read message is lost) and discarded, keeping the
//! first error and the ParameterStatus values Postgres reports.

use std::collections::BTreeMap;

use bytes::BytesMut;
use postgres_protocol::message::frontend;
use tokio::io::AsyncWriteExt;

use super::{ServerConn, ServerError};
use crate::net::pump::{Paused, Verdict};
use crate::protocol::backend::error_fields;
use crate::protocol::tracker::{backend_must_buffer, Tracker};

/// What a request pgsluice sent got back.
#[derive(Debug, Default)]
pub(crate) struct QueryOutcome {
    /// SQLSTATE and message of the first ErrorResponse.
    pub(crate) error: Option<(String, String)>,
    pub(crate) tx_status: u8,
}

/// Sends `sql` as a simple Query and reads until its ReadyForQuery.
pub(crate) async fn simple_query(
    server: &mut ServerConn,
    sql: &str,
) -> Result<QueryOutcome, ServerError> {
    let mut out = BytesMut::new();
    frontend::query(sql, &mut out)?;
    server.stream.write_all(&out).await?;
    let mut tracker = Tracker {
        outstanding: 1,
        ..Tracker::default()
    };
    drain(server, &mut tracker).await
}

/// Reads and discards replies until `tracker` owes nothing.
pub(crate) async fn drain(
    server: &mut ServerConn,
    tracker: &mut Tracker,
) -> Result<QueryOutcome, ServerError> {
    let mut outcome = QueryOutcome::default();
    let mut sink = tokio::io::sink();
    while tracker.outstanding > 0 {
        let ServerConn {
            stream,
            inbound,
            params,
            ..
        } = server;
        let mut handler = |tag: u8, body: Option<&[u8]>| {
            match (tag, body) {
                (b'S', Some(b)) => {
                    if let Some((n, v)) = super::parse_parameter_status(b) {
                        params.insert(n.to_string(), v.to_string());
                    }
                }
                (b'E', Some(b)) if outcome.error.is_none() => {
                    let f = error_fields(b);
                    outcome.error = Some((
                        f.code.unwrap_or_else(|| "XX000".into()),
                        f.message.unwrap_or_default(),
                    ));
                }
                _ => {}
            }
            tracker.backend(tag, body);
            if tag == b'Z' {
                Verdict::ForwardThenStop
            } else {
                Verdict::Forward
            }
        };
        let paused = std::future::poll_fn(|cx| {
            inbound.poll_pump(cx, stream, &mut sink, backend_must_buffer, &mut handler)
        })
        .await?;
        if paused == Paused::Eof {
            return Err(ServerError::Closed);
        }
    }
    outcome.tx_status = tracker.tx_status;
    Ok(outcome)
}

/// Makes the server's session match `wanted` (name → value) in one round trip: parameters
/// Postgres reports are set only where its last report differs; unreported ones (search_path
/// before PostgreSQL 17, statement_timeout from `options`) where pgsluice has not set that
/// value itself, and those pgsluice set for an earlier client but `wanted` lacks are RESET.
/// Returns Postgres's error if it refused one.
pub(crate) async fn apply_params(
    server: &mut ServerConn,
    wanted: &BTreeMap<String, String>,
) -> Result<Option<(String, String)>, ServerError> {
    // Runs before every transaction: the common case (every value already in place, the
    // names spelled as Postgres reports them) allocates nothing and does one map lookup per
    // parameter.
    let mut sets = Vec::new();
    let mut applied: Option<BTreeMap<String, String>> = None;
    for (name, value) in wanted {
        let reported = server.params.get(name).or_else(|| {
            server
                .params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        });
        let current = match reported {
            Some(v) => Some(v),
            None => server.applied.get(&name.to_ascii_lowercase()),
        };
        if current != Some(value) {
            sets.push(format!(
                "pg_catalog.set_config({}, {}, false)",
                quote_literal(name),
                quote_literal(value)
            ));
        }
        if reported.is_none() {
            applied
                .get_or_insert_with(|| server.applied.clone())
                .insert(name.to_ascii_lowercase(), value.clone());
        }
    }
    let mut statements = Vec::new();
    if !sets.is_empty() {
        statements.push(format!("SELECT {}", sets.join(", ")));
    }
    for name in server.applied.keys() {
        if !wanted.keys().any(|w| w.eq_ignore_ascii_case(name)) {
            statements.push(format!("RESET {}", quote_ident(name)));
            applied
                .get_or_insert_with(|| server.applied.clone())
                .remove(name);
        }
    }
    if statements.is_empty() {
        return Ok(None);
    }
    let outcome = simple_query(server, &statements.join("; ")).await?;
    if outcome.error.is_none() {
        if let Some(applied) = applied {
            server.applied = applied;
        }
    }
    Ok(outcome.error)
}

/// SQL identifier, quoted; a dotted custom parameter name ("myapp.mode") stays one name.
fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// SQL string literal; standard_conforming_strings is on in every supported Postgres, and an
/// E'' literal keeps us correct even if a client turned it off.
pub(crate) fn quote_literal(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 3);
    if s.contains('\\') {
        q.push('E');
    }
    q.push('\'');
    for c in s.chars() {
        match c {
            '\'' => q.push_str("''"),
            '\\' => q.push_str("\\\\"),
            c => q.push(c),
        }
    }
    q.push('\'');
    q
}

#[cfg(test)]
mod tests {
    use super::quote_literal;

    #[test]
    fn literals_are_quoted() {
        assert_eq!(quote_literal("a'b"), "'a''b'");
        assert_eq!(quote_literal("c:\\x"), "E'c:\\\\x'");
    }
}

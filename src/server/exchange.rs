//! Requests pgsluice itself sends to a server outside any client's relay: ROLLBACK,
//! server_reset_query, and the queries of `session`. Replies are read through the server's
//! own inbound pump (so no byte of a half-read message is lost) and discarded, keeping the
//! first error and the ParameterStatus values Postgres reports.

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

//! Requests pgsluice itself sends to a server outside any client's relay: ROLLBACK,
//! server_reset_query, and the queries of `session`. Replies are read through the server's
//! own inbound pump (so no byte of a half-read message is lost) and discarded, keeping the
//! first error, the ParameterStatus values Postgres reports and any notification (for the
//! client whose LISTEN it answers).

use bytes::BytesMut;
use postgres_protocol::message::frontend;
use tokio::io::AsyncWriteExt;

use super::{ServerConn, ServerError};
use crate::net::pump::{Paused, Verdict};
use crate::protocol::backend::error_fields;
use crate::protocol::sqlstate;
use crate::protocol::tags::backend_tag;
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
    let mut tracker = send_query(server, sql).await?;
    drain(server, &mut tracker).await
}

/// Reads and discards replies until `tracker` owes nothing.
pub(crate) async fn drain(
    server: &mut ServerConn,
    tracker: &mut Tracker,
) -> Result<QueryOutcome, ServerError> {
    read_replies(server, tracker, None).await
}

/// Sends `sql` as a simple Query and returns its rows as text, NULL as None, with what
/// `drain` returns.
pub(crate) async fn query_rows(
    server: &mut ServerConn,
    sql: &str,
) -> Result<(Vec<Vec<Option<String>>>, QueryOutcome), ServerError> {
    let mut tracker = send_query(server, sql).await?;
    let mut rows = Vec::new();
    let outcome = read_replies(server, &mut tracker, Some(&mut rows)).await?;
    Ok((rows, outcome))
}

/// Runs `sql` with text `params` through the extended protocol (Parse, Bind, Execute, Sync),
/// so values are bound, never spliced into the SQL; returns the rows as `query_rows` does.
pub(crate) async fn query_rows_with(
    server: &mut ServerConn,
    sql: &str,
    params: &[&str],
) -> Result<(Vec<Vec<Option<String>>>, QueryOutcome), ServerError> {
    let mut out = BytesMut::new();
    frontend::parse("", sql, std::iter::empty(), &mut out)?;
    frontend::bind(
        "",
        "",
        std::iter::empty(),
        params.iter(),
        |value, buf| {
            bytes::BufMut::put_slice(buf, value.as_bytes());
            Ok(postgres_protocol::IsNull::No)
        },
        std::iter::empty(),
        &mut out,
    )
    .map_err(|_| ServerError::Unexpected("cannot encode a Bind message".into()))?;
    frontend::execute("", 0, &mut out)?;
    frontend::sync(&mut out);
    server.stream.write_all(&out).await?;
    let mut tracker = Tracker {
        outstanding: 1,
        ..Tracker::default()
    };
    let mut rows = Vec::new();
    let outcome = read_replies(server, &mut tracker, Some(&mut rows)).await?;
    Ok((rows, outcome))
}

/// Writes `sql` as a simple Query; the tracker owes its one ReadyForQuery.
pub(super) async fn send_query(server: &mut ServerConn, sql: &str) -> Result<Tracker, ServerError> {
    let mut out = BytesMut::new();
    frontend::query(sql, &mut out)?;
    server.stream.write_all(&out).await?;
    Ok(Tracker {
        outstanding: 1,
        ..Tracker::default()
    })
}

/// Backend messages `read_replies` reads whole when it collects rows.
fn rows_must_buffer(tag: u8) -> bool {
    tag == backend_tag::DATA_ROW || replies_must_buffer(tag)
}

/// Backend messages `read_replies` always reads whole: a notification is kept for its client.
pub(super) fn replies_must_buffer(tag: u8) -> bool {
    tag == backend_tag::NOTIFICATION_RESPONSE || backend_must_buffer(tag)
}

/// Reads replies until `tracker` owes nothing, keeping the first error and the
/// ParameterStatus values, and the DataRows when `rows` is given.
pub(super) async fn read_replies(
    server: &mut ServerConn,
    tracker: &mut Tracker,
    mut rows: Option<&mut Vec<Vec<Option<String>>>>,
) -> Result<QueryOutcome, ServerError> {
    let must_buffer = match rows {
        Some(_) => rows_must_buffer,
        None => replies_must_buffer,
    };
    let mut malformed = false;
    let mut outcome = QueryOutcome::default();
    let mut sink = tokio::io::sink();
    while tracker.outstanding > 0 {
        let ServerConn {
            stream,
            inbound,
            params,
            notifications,
            ..
        } = server;
        let mut handler = |tag: u8, body: Option<&[u8]>| {
            if keep_unasked(tag, body, params, notifications) {
                tracker.backend(tag, body);
                return Verdict::Forward;
            }
            match (tag, body) {
                (backend_tag::ERROR_RESPONSE, Some(b)) if outcome.error.is_none() => {
                    let f = error_fields(b);
                    outcome.error = Some((
                        f.code.unwrap_or_else(|| sqlstate::INTERNAL_ERROR.into()),
                        f.message.unwrap_or_default(),
                    ));
                }
                (backend_tag::DATA_ROW, Some(b)) => match (rows.as_deref_mut(), data_row(b)) {
                    (Some(rows), Some(row)) => rows.push(row),
                    (Some(_), None) => malformed = true,
                    (None, _) => {}
                },
                _ => {}
            }
            tracker.backend(tag, body);
            if tag == backend_tag::READY_FOR_QUERY {
                Verdict::ForwardThenStop
            } else {
                Verdict::Forward
            }
        };
        let paused = std::future::poll_fn(|cx| {
            inbound.poll_pump(cx, stream, &mut sink, must_buffer, &mut handler)
        })
        .await?;
        if paused == Paused::Eof {
            return Err(ServerError::Closed);
        }
    }
    if malformed {
        return Err(ServerError::Unexpected("malformed DataRow".into()));
    }
    outcome.tx_status = tracker.tx_status;
    Ok(outcome)
}

/// What Postgres may send unasked (PostgreSQL docs, "Asynchronous Operations"), kept: a
/// ParameterStatus value in `params`, a NotificationResponse (whole, from a pump that buffers
/// it) in `notifications`. True when `tag` was one of those.
pub(super) fn keep_unasked(
    tag: u8,
    body: Option<&[u8]>,
    params: &mut std::collections::BTreeMap<String, String>,
    notifications: &mut Vec<bytes::Bytes>,
) -> bool {
    match (tag, body) {
        (backend_tag::PARAMETER_STATUS, Some(b)) => {
            if let Some((n, v)) = super::parse_parameter_status(b) {
                params.insert(n.to_string(), v.to_string());
            }
            true
        }
        (backend_tag::NOTIFICATION_RESPONSE, Some(b)) => {
            notifications.push(crate::protocol::notification::frame(b));
            true
        }
        _ => false,
    }
}

/// The columns of a DataRow body as text; None for a malformed row.
fn data_row(body: &[u8]) -> Option<Vec<Option<String>>> {
    let count = u16::from_be_bytes(body.get(..2)?.try_into().ok()?);
    let mut rest = &body[2..];
    let mut columns = Vec::with_capacity(count.into());
    for _ in 0..count {
        let len = i32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
        rest = &rest[4..];
        if len < 0 {
            columns.push(None);
            continue;
        }
        let len = usize::try_from(len).ok()?;
        let value = rest.get(..len)?;
        columns.push(Some(String::from_utf8_lossy(value).into_owned()));
        rest = &rest[len..];
    }
    Some(columns)
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
    use super::{data_row, quote_literal};

    #[test]
    fn data_rows_decode_with_nulls() {
        let body = b"\0\x03\0\0\0\x01s\xff\xff\xff\xff\0\0\0\x02ab";
        assert_eq!(
            data_row(body),
            Some(vec![Some("s".into()), None, Some("ab".into())])
        );
        assert_eq!(data_row(b"\0\x01\0\0\0\x05ab"), None);
    }

    #[test]
    fn literals_are_quoted() {
        assert_eq!(quote_literal("a'b"), "'a''b'");
        assert_eq!(quote_literal("c:\\x"), "E'c:\\\\x'");
    }
}

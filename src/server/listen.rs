//! The LISTEN state of a server connection while a client's subscriptions are handed to it
//! and back (`client::listen`): reading which channels it listens on, waiting for the
//! notifications Postgres sends an idle session, and `UNLISTEN *` before it goes back to the
//! pool. Notifications read here land in `ServerConn::notifications`, in the order Postgres
//! sent them, for the client they belong to.

use std::future::poll_fn;
use std::task::Poll;

use super::exchange::{keep_unasked, query_rows, replies_must_buffer, simple_query};
use super::{ServerConn, ServerError};
use crate::net::pump::{Paused, Verdict};
use crate::protocol::backend::error_fields;
use crate::protocol::tags::backend_tag;

/// What `SELECT 'marked', …` returns in `listening_channels`'s `prefix`.
pub(crate) const MARKED: &str = "marked";

/// Runs `prefix` (statements ending in "; ", "" for none) and then lists the channels the
/// session listens on, as Postgres stores their names. True besides when `prefix` returned a
/// row `(MARKED, …)` (a marker it sent only under a condition).
pub(crate) async fn listening_channels(
    server: &mut ServerConn,
    prefix: &str,
) -> Result<(Vec<String>, bool), ServerError> {
    let sql = format!("{prefix}SELECT pg_catalog.pg_listening_channels()");
    let (rows, outcome) = query_rows(server, &sql).await?;
    if let Some((code, message)) = outcome.error {
        return Err(ServerError::Rejected { code, message });
    }
    let mut marked = false;
    let mut channels = Vec::new();
    for row in rows {
        match <[Option<String>; 2]>::try_from(row) {
            Ok([Some(first), _]) if first == MARKED => marked = true,
            Ok(_) => {}
            Err(row) => channels.extend(row.into_iter().next().flatten()),
        }
    }
    Ok((channels, marked))
}

/// Stops listening on every channel and forgets what was delivered meanwhile: after this
/// the server holds no LISTEN state and nothing for anyone (it may be pooled).
pub(crate) async fn unlisten_all(server: &mut ServerConn) -> Result<(), ServerError> {
    let outcome = simple_query(server, "UNLISTEN *").await?;
    server.notifications.clear();
    match outcome.error {
        Some((code, message)) => Err(ServerError::Rejected { code, message }),
        None => Ok(()),
    }
}

/// Waits, with no request outstanding, until Postgres sends at least one notification; it
/// then is in `ServerConn::notifications`. NoticeResponse and ParameterStatus may come too;
/// anything else (a FATAL from pg_terminate_backend, a shutdown) ends the connection's use.
pub(crate) async fn read_notifications(server: &mut ServerConn) -> Result<(), ServerError> {
    let before = server.notifications.len();
    let mut unexpected: Option<String> = None;
    let ServerConn {
        stream,
        inbound,
        params,
        notifications,
        ..
    } = server;
    let mut sink = tokio::io::sink();
    let paused = poll_fn(|cx| {
        let mut handler = |tag: u8, body: Option<&[u8]>| {
            if keep_unasked(tag, body, params, notifications) {
                return Verdict::Forward;
            }
            match (tag, body) {
                (backend_tag::NOTICE_RESPONSE, _) => {}
                (backend_tag::ERROR_RESPONSE, Some(b)) => {
                    let f = error_fields(b);
                    unexpected = Some(format!(
                        "{}: {}",
                        f.code.unwrap_or_default(),
                        f.message.unwrap_or_default()
                    ));
                    return Verdict::ForwardThenStop;
                }
                _ => {
                    unexpected = Some(format!("message {:?} while idle", char::from(tag)));
                    return Verdict::ForwardThenStop;
                }
            }
            Verdict::Forward
        };
        match inbound.poll_pump(cx, stream, &mut sink, replies_must_buffer, &mut handler) {
            Poll::Pending if notifications.len() > before => Poll::Ready(Ok(Paused::Stopped)),
            other => other,
        }
    })
    .await?;
    if let Some(what) = unexpected {
        return Err(ServerError::Unexpected(what));
    }
    if paused == Paused::Eof {
        return Err(ServerError::Closed);
    }
    Ok(())
}

/// Writes `sql` as a simple Query without waiting for its replies (the listening
/// connection reads them with everything else Postgres sends it).
pub(crate) async fn send_query(server: &mut ServerConn, sql: &str) -> Result<(), ServerError> {
    super::exchange::send_query(server, sql).await.map(|_| ())
}

/// Reads at least one whole message, then every whole one already buffered, into `out` as
/// (tag, body). Cancel-safe: what was read is in `out` or still in the connection.
pub(crate) async fn read_messages(
    server: &mut ServerConn,
    out: &mut Vec<(u8, bytes::Bytes)>,
) -> Result<(), ServerError> {
    let before = out.len();
    let ServerConn {
        stream, inbound, ..
    } = server;
    let mut sink = tokio::io::sink();
    let paused = poll_fn(|cx| {
        let mut handler = |tag: u8, body: Option<&[u8]>| {
            out.push((tag, bytes::Bytes::copy_from_slice(body.unwrap_or_default())));
            Verdict::Forward
        };
        match inbound.poll_pump(cx, stream, &mut sink, |_| true, &mut handler) {
            Poll::Pending if out.len() > before => Poll::Ready(Ok(Paused::Stopped)),
            other => other,
        }
    })
    .await?;
    if paused == Paused::Eof && out.len() == before {
        return Err(ServerError::Closed);
    }
    Ok(())
}

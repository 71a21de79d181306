//! Transaction and statement pool modes: the client holds a server only from its first
//! message that needs one until Postgres is idle again (ReadyForQuery 'I', nothing owed, no
//! COPY); then the server goes straight back to the pool. Before each use the server is given
//! this client's session parameters (one round trip, only when something differs). A client
//! that cannot get a server within query_wait_timeout gets ERROR 53300 and ReadyForQuery, and
//! may retry on the same connection.

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use super::follow::{self, ApplyError};
use super::listen::{self, HandOverError};
use super::pool_client::{Event, PoolClient};
use super::settle::{after_transaction, settle, ClientLeft, Leftover};
use super::ClientError;
use crate::config::PoolMode;
use crate::net::pump::{Paused, Verdict};
use crate::pool::{Lease, PoolError};
use crate::protocol::backend::{self, Severity};
use crate::protocol::tags::frontend_tag;
use crate::protocol::tracker::{frontend_must_buffer, Tracker, TX_IDLE};
use crate::relay::{RelayEnd, RelayStops};
use crate::state::Shutdown;

/// Serves a client of a transaction or statement pool (`mode`) until it leaves.
/// The client is borrowed, not moved in: an async fn keeps its arguments apart from its
/// locals, and an idle client's task should hold one copy of its state, not two.
pub(super) async fn run(client: &mut PoolClient<'_>, mode: PoolMode) -> Result<(), ClientError> {
    Box::pin(greet(client)).await?;

    let mut shutdown = client.shared.shutdown_state();
    let stops = RelayStops {
        stop_at_idle: true,
        refuse_transaction_blocks: mode == PoolMode::Statement,
    };
    // The server of a pinned client, between its requests; boxed, so that an idle client's
    // task does not carry room for a lease it rarely has.
    let mut pinned: Option<Box<Lease>> = None;
    let result = loop {
        match wait_for_request(client, &mut shutdown).await {
            Ok(true) => {}
            Ok(false) => break Ok(()),
            Err(e) => break Err(e),
        }
        // Boxed: the request's futures (checkout, relay, settle) are several KiB, and an idle
        // client should not carry them; one allocation per request buys ~6 KiB per idle client.
        match Box::pin(serve_request(client, stops, pinned.take())).await {
            Served::Next => {}
            Served::Pinned(lease) => pinned = Some(lease),
            Served::End(result) => break result,
        }
        // Draining: the transaction just ended, so this is the moment to close.
        if *shutdown.borrow() == Shutdown::Closing {
            break Err(ClientError::ShuttingDown);
        }
    };
    if let Some(lease) = pinned.map(|lease| *lease) {
        // Its session state (a lock, a temporary table...) must not reach the next client.
        let (cut, left) = (ClientLeft::BetweenMessages, Leftover::SessionState);
        // Boxed: an idle client's task should not carry the reset's future.
        Box::pin(super::settle::release(
            client.shared,
            lease,
            Tracker::default(),
            cut,
            left,
        ))
        .await;
    }
    result
}

/// Greets the client with the ParameterStatus values of its session: learnt from earlier
/// logins when every startup value is known, so no server is needed; otherwise from a server
/// its startup parameters are applied on (which teaches them), which then goes back.
async fn greet(client: &mut PoolClient<'_>) -> Result<(), ClientError> {
    let reports = &client.pool.login_reports;
    if let Some(report) = reports.report(&client.settings.values) {
        return client.greet_with(&report).await;
    }
    let mut lease = client.checkout().await?;
    let greeted = client.greet(&mut lease).await;
    if greeted.is_ok() {
        let pool = client.pool.clone();
        pool.login_reports
            .learn(&client.settings.values, lease.server().params());
    }
    let pool = lease.pool().clone();
    pool.checkin(lease);
    greeted
}

/// What became of one request.
enum Served {
    /// Done; the server went back to the pool.
    Next,
    /// Done; the client keeps this server for its next request (follow::read_back pinned it).
    Pinned(Box<Lease>),
    /// The client's session ends so.
    End(Result<(), ClientError>),
}

/// Serves one request on the client's pinned server, or on a server checked out for it.
async fn serve_request(
    client: &mut PoolClient<'_>,
    stops: RelayStops,
    mut pinned: Option<Box<Lease>>,
) -> Served {
    // Servers found dead before any byte of the request reached them, in a row.
    let mut dead_in_a_row = 0;
    loop {
        let was_pinned = pinned.is_some();
        let mut lease = match pinned.take().map(|lease| *lease) {
            Some(lease) => lease,
            None => match checkout_and_apply(client, &mut dead_in_a_row).await {
                Ok(Some(lease)) => lease,
                Ok(None) => continue,
                Err(served) => return served,
            },
        };
        match listen::hand_over(client, lease.server()).await {
            Ok(()) => {}
            Err(HandOverError::Server(e)) if !was_pinned && dead_in_a_row < MAX_DEAD_IN_A_ROW => {
                tracing::info!(error = %e, "server failed while taking the client's LISTENs; using another");
                lease.discard();
                dead_in_a_row += 1;
                continue;
            }
            Err(HandOverError::Server(e)) => {
                lease.discard();
                return Served::End(Err(e.into()));
            }
            Err(HandOverError::Client(e)) => {
                lease.discard();
                return Served::End(Err(e));
            }
        }
        client.point_cancel(lease.server());
        client.link(lease.server());
        tracing::debug!(
            client = client.client_id,
            server = lease.server().id(),
            "server attached"
        );
        let sent_before = client.pump.written();
        let mut tracker = Tracker::default();
        let event = client
            .relay_until_event(lease.server(), &mut tracker, stops, true)
            .await;
        let no_cancel_pending = client.detach_cancel(lease.server()).await;
        client.unlink(lease.server());
        tracing::debug!(client = client.client_id, ?event, "server detached");
        let read_back = client.settings.effects.changed || client.read_back_always;
        let idle = matches!(event, Event::Relay(RelayEnd::Idle));
        let mut listening = Vec::new();
        if idle && read_back {
            match follow::read_back(client, lease.server()).await {
                Ok(channels) => listening = channels,
                Err(e) => {
                    lease.discard();
                    return Served::End(Err(e));
                }
            }
        }
        if idle {
            if let Err(e) = listen::hand_back(client, lease.server(), &listening).await {
                lease.discard();
                // A pinned client's state went with the server: its session cannot go on.
                let pinned = was_pinned || !client.settings.pins.is_empty();
                if pinned || !matches!(e, ClientError::Server(_)) {
                    return Served::End(Err(e));
                }
                tracing::info!(error = %e, "closing server: handing the client's LISTENs back failed");
                return Served::Next;
            }
        }
        match event {
            Event::Relay(RelayEnd::Idle) => {
                return match after_transaction(client, lease, no_cancel_pending).await {
                    Some(pinned) => Served::Pinned(Box::new(pinned)),
                    None => Served::Next,
                };
            }
            Event::Relay(RelayEnd::ServerGone(reason))
                if !was_pinned
                    && client.pump.written() == sent_before
                    && dead_in_a_row < MAX_DEAD_IN_A_ROW =>
            {
                // The server failed before taking any byte of the request: send the same
                // request to another server, and the client never knows.
                tracing::info!(%reason, "server connection failed before the request reached it; retrying on another");
                lease.discard();
                listen::server_discarded(client);
                client.pump.rewind();
                dead_in_a_row += 1;
            }
            other => {
                return Served::End(settle(client, lease, tracker, other, no_cancel_pending).await)
            }
        }
    }
}

/// A server from the pool with the client's settings applied. Ok(None) when it turned out
/// dead and another should be tried; Err with how the request ends otherwise.
async fn checkout_and_apply(
    client: &mut PoolClient<'_>,
    dead_in_a_row: &mut u32,
) -> Result<Option<Lease>, Served> {
    let mut lease = match client.checkout().await {
        Ok(lease) => lease,
        Err(ClientError::Pool(e @ PoolError::WaitTimeout { .. })) => {
            return Err(match refuse_request(client, &e).await {
                Ok(()) => Served::Next,
                Err(e) => Served::End(Err(e)),
            });
        }
        Err(e) => return Err(Served::End(Err(e))),
    };
    match follow::apply_to(client, lease.server()).await {
        Ok(()) => Ok(Some(lease)),
        Err(ApplyError::Refused { code, message }) => {
            let (cut, left) = (ClientLeft::BetweenMessages, Leftover::Transaction);
            super::settle::release(client.shared, lease, Tracker::default(), cut, left).await;
            Err(Served::End(Err(ClientError::Rejected { code, message })))
        }
        Err(ApplyError::Server(e)) if *dead_in_a_row < MAX_DEAD_IN_A_ROW => {
            // Died while pooled; nothing of the client's request was sent yet.
            tracing::info!(error = %e, "server connection dead at checkout; using another");
            lease.discard();
            *dead_in_a_row += 1;
            Ok(None)
        }
        Err(ApplyError::Server(e)) => Err(Served::End(Err(e.into()))),
    }
}

/// How many dead servers in a row one request may skip before its client is told.
const MAX_DEAD_IN_A_ROW: u32 = 3;

/// Waits, with no server, for the client's next request, writing it the notifications of
/// the channels it listens on meanwhile. False when the client is done
/// (Terminate or end of stream). client_idle_timeout counts from the client's last bytes, so
/// a client that sent half a message and stalled is closed by it (57P05), as an idle one.
/// While draining, an idle client has shutdown_idle_grace to start its next transaction (the
/// caller closes it when that ends): closing it at once would race a query it may be
/// sending this very moment, such as the first one of a client that just logged in.
async fn wait_for_request(
    client: &mut PoolClient<'_>,
    shutdown: &mut watch::Receiver<Shutdown>,
) -> Result<bool, ClientError> {
    let idle = client.timeouts.client_idle;
    let mut drain_deadline: Option<tokio::time::Instant> = None;
    // From the client's last bytes: notifications written to it do not make it less idle.
    let mut idle_deadline = (!idle.is_zero()).then(|| tokio::time::Instant::now() + idle);
    loop {
        if drain_deadline.is_none() && *shutdown.borrow_and_update() == Shutdown::Closing {
            let grace = client.shared.config().pooler.fleet.shutdown_idle_grace;
            drain_deadline = Some(tokio::time::Instant::now() + grace);
        }
        // Only a whole first message asks for a server: half of one, then a stall, would
        // otherwise hold that server (and with it every client queued behind).
        if let Some(tag) = client.pump.peek_request() {
            return Ok(tag != frontend_tag::TERMINATE);
        }
        tokio::select! {
            more = client.pump.read_more(client.stream) => match more {
                Ok(true) => {
                    idle_deadline = (!idle.is_zero()).then(|| tokio::time::Instant::now() + idle);
                    continue;
                }
                _ => return Ok(false),
            },
            () = sleep_until_or_forever(idle_deadline) => return Err(ClientError::IdleTimeout(idle)),
            () = client.info.killed() => return Err(ClientError::Killed),
            () = sleep_until_or_forever(drain_deadline) => return Err(ClientError::ShuttingDown),
            Ok(()) = shutdown.changed(), if drain_deadline.is_none() => continue,
            note = listen::next(&mut client.listen) => match note {
                // Boxed: an idle client's wait should not carry room for a delivery.
                Ok(frame) => Box::pin(listen::deliver(client, frame)).await?,
                Err(reason) => return Err(listen::cut_off(reason)),
            },
        }
    }
}

async fn sleep_until_or_forever(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Answers a request no server could be found for: ERROR 53300, the request's messages
/// (through its Query or Sync) discarded, then ReadyForQuery so the client may retry.
async fn refuse_request(client: &mut PoolClient<'_>, error: &PoolError) -> Result<(), ClientError> {
    client.shared.counters.error_sent(error.sqlstate());
    let mut out = BytesMut::new();
    backend::error_response(
        &mut out,
        Severity::Error,
        error.sqlstate(),
        &error.to_string(),
        None,
        None,
    );
    client.stream.write_all(&out).await?;
    let mut sink = tokio::io::sink();
    let mut handler = |tag: u8, _: Option<&[u8]>| match tag {
        frontend_tag::QUERY | frontend_tag::SYNC => Verdict::ForwardThenStop,
        frontend_tag::TERMINATE => Verdict::StopBefore,
        _ => Verdict::Forward,
    };
    let stream = &mut *client.stream;
    let pump = &mut client.pump;
    let paused = std::future::poll_fn(|cx| {
        pump.poll_pump(cx, stream, &mut sink, frontend_must_buffer, &mut handler)
    })
    .await
    .map_err(|_| ClientError::Gone)?;
    if paused == Paused::Eof {
        return Err(ClientError::Gone);
    }
    out.clear();
    backend::ready_for_query(&mut out, TX_IDLE);
    client.stream.write_all(&out).await?;
    Ok(())
}

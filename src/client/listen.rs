//! A client's LISTENs in transaction and statement pooling, its side of `notify`: before
//! each transaction of a client that listens, the server it got LISTENs on its channels (so
//! Postgres delivers there, exactly as on a direct connection, and pg_listening_channels(),
//! UNLISTEN and a rolled-back LISTEN behave as Postgres documents); after it, the channels
//! the server then listens on are read back and handed to the pool's listening connection,
//! and the server is UNLISTENed before anyone else gets it. Markers cut Postgres's one order
//! of notifications between the two, so the client gets each one once and in order. Between
//! transactions the client's queued notifications are written to it as they come.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;

use super::pool_client::PoolClient;
use super::ClientError;
use crate::notify::marker::{listen_sql, quote_ident, Direction, Marker};
use crate::notify::Subscription;
use crate::protocol::notification;
use crate::protocol::sqlstate;
use crate::server::{
    listening_channels, quote_literal, read_notifications, simple_query, unlisten_all, ServerConn,
    ServerError, MARKED,
};

/// How long a hand-over waits for its marker to come round before it gives up (and the
/// client is told that notifications may have been lost).
const HAND_OVER_WAIT: Duration = Duration::from_secs(5);

/// A marker's transaction writes nothing worth keeping: it need not wait for its commit
/// record to reach disk (a NOTIFY gives a transaction an id, hence a commit record).
const NO_FLUSH: &str = "SET LOCAL synchronous_commit TO off; ";

/// What a client of a transaction or statement pool listens on.
#[derive(Default)]
pub(crate) struct ClientListen {
    /// Its channels, as the server of its last transaction reported them.
    channels: BTreeSet<String>,
    /// Its place on the pool's listening connection, while it listens.
    sub: Option<Subscription>,
    /// Sequence number of its last hand-over.
    seq: u64,
    /// The server in hand was given its channels and must hand them back.
    on_server: bool,
}

/// True when the server in hand holds the client's LISTENs: it must not be pooled as is.
pub(super) fn on_server(client: &PoolClient<'_>) -> bool {
    client.listen.as_ref().is_some_and(|l| l.on_server)
}

/// Before a transaction of a client that listens: `server` LISTENs on its channels from an
/// "in" marker on, and what the listening connection queued for it before that marker is
/// written to it first. A server error (Postgres refusing the LISTENs, on a standby, counts
/// as one) leaves the client as it was, its listening connection delivering on, and told
/// that notifications may have been lost; the server must then be closed.
pub(super) async fn hand_over(
    client: &mut PoolClient<'_>,
    server: &mut ServerConn,
) -> Result<(), HandOverError> {
    let client_id = client.client_id;
    let Some(l) = client.listen.as_deref_mut() else {
        return Ok(());
    };
    let Some(sub) = l.sub.as_ref().filter(|_| !l.channels.is_empty()) else {
        return Ok(());
    };
    if let Some(reason) = sub.cut_reason() {
        return Err(HandOverError::Client(cut_off(reason)));
    }
    l.seq += 1;
    let marker = Marker {
        direction: Direction::In,
        client: client_id,
        seq: l.seq,
    };
    let sync = sub.sync_channel().to_string();
    let mut sql = String::from(NO_FLUSH);
    sql.push_str(&listen_sql(l.channels.iter().map(String::as_str)));
    sql.push_str(&listen_sql([sync.as_str()]));
    sql.push_str(&marker.notify_sql(&sync));
    sub.hand_in(marker.seq);
    let result = async {
        let outcome = simple_query(server, &sql).await?;
        if let Some((code, message)) = outcome.error {
            // Refused as a whole (LISTEN on a standby, a full notification queue): the
            // server listens on nothing; its transaction must not run without the channels.
            return Err(ServerError::Rejected { code, message });
        }
        let mut after = Vec::new();
        wait_for_marker(server, &sync, marker, &mut after).await?;
        let outcome = simple_query(server, &format!("UNLISTEN {}", quote_ident(&sync))).await?;
        if let Some((code, message)) = outcome.error {
            return Err(ServerError::Rejected { code, message });
        }
        after.extend(own(server.take_notifications(), &sync));
        Ok(after)
    }
    .await;
    let after = match result {
        Ok(after) => after,
        Err(e) => {
            // What the server delivered after its marker, if it got that far, is gone.
            sub.resume(marker.seq);
            sub.lost();
            return Err(HandOverError::Server(e));
        }
    };
    l.on_server = true;
    if sub.in_marker_seen(marker.seq, HAND_OVER_WAIT).await == Some(false) {
        sub.lost();
    }
    let sub = l.sub.as_mut().expect("checked above");
    let mut frames: Vec<Bytes> = std::iter::from_fn(|| sub.try_next()).collect();
    if let Some(reason) = sub.cut_reason() {
        return Err(HandOverError::Client(cut_off(reason)));
    }
    frames.extend(after);
    write(client, frames)
        .await
        .map_err(|e| HandOverError::Client(e.into()))
}

/// Why a hand-over failed.
pub(super) enum HandOverError {
    /// The server failed; it must be closed, and the client may go on elsewhere.
    Server(ServerError),
    /// The client is gone or cut off.
    Client(ClientError),
}

/// After a transaction that ended idle: when `server` listens on channels for the client
/// (handed over, or LISTENed by the transaction — `listening`, the channels the session
/// read-back found),
/// they go to the pool's listening connection from an "out" marker on, what the server
/// delivered before it is written to the client, and the server is UNLISTENed. Err: the
/// server is not fit for the pool (it may still listen); the client goes on.
pub(super) async fn hand_back(
    client: &mut PoolClient<'_>,
    server: &mut ServerConn,
    listening: &[String],
) -> Result<(), ClientError> {
    if listening.is_empty() && !on_server(client) {
        return Ok(());
    }
    let client_id = client.client_id;
    let hub = client.shared.hubs.hub(&client.pool);
    let sync = hub.sync_channel.clone();
    let l = client.listen.get_or_insert_with(Box::default);
    // Whatever happens next, this server is not kept as it is.
    l.on_server = false;
    // When the transaction left the channels as they were, the server itself marks where
    // the listening connection takes over ("back"), in the same round trip.
    let mut sql = listen_sql([sync.as_str()]);
    let back = (l.sub.is_some() && !l.channels.is_empty()).then(|| Marker {
        direction: Direction::Back,
        client: client_id,
        seq: l.seq + 1,
    });
    if let Some(back) = back {
        sql.insert_str(0, NO_FLUSH);
        let unchanged: Vec<String> = l.channels.iter().map(|c| quote_literal(c)).collect();
        sql.push_str(&format!(
            "SELECT '{MARKED}', pg_catalog.pg_notify({}, '{}') WHERE (SELECT \
             coalesce(pg_catalog.array_agg(c ORDER BY c COLLATE \"C\"), '{{}}') FROM \
             pg_catalog.pg_listening_channels() c) = ARRAY[{}]::text[]; ",
            quote_literal(&sync),
            back.payload(),
            unchanged.join(", ")
        ));
    }
    let (channels, marked) = match listening_channels(server, &sql).await {
        Ok(found) => found,
        Err(e) => {
            // The server failed after the client's transaction: its channels are the ones the
            // read-back found, if it ran, else the ones it had. It is told that some
            // notifications may have been lost.
            if !listening.is_empty() {
                l.channels = listening.iter().cloned().collect();
            }
            if !l.channels.is_empty() {
                let queue_size = client.shared.config().pooler.notify_queue_size;
                let sub = l.sub.get_or_insert_with(|| hub.join(client_id, queue_size));
                l.seq += 1;
                sub.update(l.seq, l.channels.clone());
                sub.lost();
            }
            return Err(e.into());
        }
    };
    let channels: BTreeSet<String> = channels.into_iter().filter(|c| *c != sync).collect();
    let mut frames = Vec::new();
    if channels.is_empty() {
        frames.extend(own(server.take_notifications(), &sync));
        l.sub = None;
    } else if let Some(back) = back.filter(|_| marked) {
        l.seq = back.seq;
        if let Err(e) = wait_for_marker(server, &sync, back, &mut frames).await {
            if let Some(sub) = &l.sub {
                sub.lost();
            }
            return Err(e.into());
        }
    } else {
        let queue_size = client.shared.config().pooler.notify_queue_size;
        let sub = l.sub.get_or_insert_with(|| hub.join(client_id, queue_size));
        l.seq += 1;
        let marker = Marker {
            direction: Direction::Out,
            client: client_id,
            seq: l.seq,
        };
        sub.update(marker.seq, channels.clone());
        match tokio::time::timeout(
            HAND_OVER_WAIT,
            wait_for_marker(server, &sync, marker, &mut frames),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                sub.lost();
                l.channels = channels;
                return Err(e.into());
            }
            Err(_) => {
                tracing::warn!(client = client_id, "LISTEN hand-back: the listening connection did not answer within 5s; notifications may have been lost");
                sub.lost();
            }
        }
    }
    l.channels = channels;
    // Written before the server is cleaned: if that fails, the client still has them.
    write(client, frames).await?;
    unlisten_all(server).await?;
    Ok(())
}

/// The server a subscriber's channels were handed over to is closed before the hand-back
/// (it failed before the client's request reached it): the listening connection delivers
/// again, and the client hears that some notifications may have been lost.
pub(super) fn server_discarded(client: &mut PoolClient<'_>) {
    if let Some(l) = client.listen.as_deref_mut().filter(|l| l.on_server) {
        l.on_server = false;
        if let Some(sub) = &l.sub {
            sub.resume(l.seq);
            sub.lost();
        }
    }
}

/// Reads `server`'s notifications until `marker` comes on the sync channel: those before it
/// go to `before` (when it is an "out" marker, the client's server delivers them) or are
/// dropped (an "in" marker: the listening connection delivered them); those after it stay
/// for the caller when the marker is "in", are dropped when it is "out".
async fn wait_for_marker(
    server: &mut ServerConn,
    sync: &str,
    marker: Marker,
    frames: &mut Vec<Bytes>,
) -> Result<(), ServerError> {
    let mut found = false;
    loop {
        for frame in server.take_notifications() {
            let Some(n) = notification::parse(&frame[5..]) else {
                continue;
            };
            if n.channel == sync {
                found |= Marker::parse(n.payload) == Some(marker);
                continue;
            }
            let keep = match marker.direction {
                Direction::In => found,
                Direction::Out | Direction::Back => !found,
            };
            if keep {
                frames.push(frame);
            }
        }
        if found {
            return Ok(());
        }
        match tokio::time::timeout(HAND_OVER_WAIT, read_notifications(server)).await {
            Ok(read) => read?,
            Err(_) => {
                return Err(ServerError::Unexpected(format!(
                    "LISTEN hand-over: marker {} did not come within {HAND_OVER_WAIT:?}",
                    marker.payload()
                )))
            }
        }
    }
}

/// The notifications among `frames` that are the client's (not pgsluice's markers).
fn own(frames: Vec<Bytes>, sync: &str) -> impl Iterator<Item = Bytes> + '_ {
    frames
        .into_iter()
        .filter(move |frame| notification::parse(&frame[5..]).is_some_and(|n| n.channel != sync))
}

/// Waits for the client's next queued notification; never, while it listens on nothing.
pub(super) fn next(
    listen: &mut Option<Box<ClientListen>>,
) -> impl std::future::Future<Output = Result<Bytes, String>> + '_ {
    std::future::poll_fn(
        move |cx| match listen.as_deref_mut().and_then(|l| l.sub.as_mut()) {
            Some(sub) => sub.poll_next(cx),
            None => std::task::Poll::Pending,
        },
    )
}

/// Writes `first` and whatever else is queued to the idle client. A client that stops
/// reading meanwhile and is cut off by its pool's listening connection is disconnected at
/// once, mid-message if need be (it is not reading anyway).
pub(super) async fn deliver(client: &mut PoolClient<'_>, first: Bytes) -> Result<(), ClientError> {
    // Frames come only from a subscription (`next`).
    let Some(sub) = client.listen.as_deref_mut().and_then(|l| l.sub.as_mut()) else {
        return Ok(());
    };
    let mut frames = vec![first];
    frames.extend(std::iter::from_fn(|| sub.try_next()).take(64));
    let out = concat(&frames);
    // A client that does not read may leave this write waiting: KILL still ends it.
    tokio::select! {
        written = client.stream.write_all(&out) => Ok(written?),
        reason = sub.cut() => Err(ClientError::CutOff(Box::new(cut_off(reason)))),
        () = client.info.killed() => Err(ClientError::CutOff(Box::new(ClientError::Killed))),
    }
}

/// The error a client gets when its notification queue overflowed.
pub(super) fn cut_off(reason: String) -> ClientError {
    ClientError::Rejected {
        code: sqlstate::CONFIGURATION_LIMIT_EXCEEDED.into(),
        message: format!("disconnected: {reason}"),
    }
}

async fn write(client: &mut PoolClient<'_>, frames: Vec<Bytes>) -> std::io::Result<()> {
    if frames.is_empty() {
        return Ok(());
    }
    client.stream.write_all(&concat(&frames)).await
}

/// Whole messages, one after another, for one write.
fn concat(frames: &[Bytes]) -> BytesMut {
    let mut out = BytesMut::with_capacity(frames.iter().map(Bytes::len).sum());
    for frame in frames {
        out.extend_from_slice(frame);
    }
    out
}

//! The relay loop for one attached client and server: both directions polled in one future
//! (like copy_bidirectional, so a large request and a large reply never deadlock on full
//! buffers), messages forwarded byte-exact, the tracker updated from tags alone, and
//! ParameterStatus values remembered for the server and, when they are session state, for the
//! client. All state lives in the pumps, tracker and `Activity`, so the future can be dropped
//! and started again (shutdown notice, timer) without losing bytes.

use std::collections::BTreeMap;
use std::task::Poll;
use std::time::Instant;

use super::directions::{Backend, Frontend};
use super::end::{RelayEnd, ServerLost};
use super::replies::{self, ReplyPlan};
use super::statements::{self, Prepared};
use crate::live::TrafficStats;
use crate::net::pump::{Paused, Pump, PumpError};
use crate::net::BoxStream;
use crate::prepared::LimitError;
use crate::protocol::session_effects::{custom_setting_names, may_change_session};
use crate::protocol::tags::frontend_tag;
use crate::protocol::tracker::{backend_must_buffer, frontend_must_buffer, Tracker, TX_IDLE};
use crate::server::{RelayParts, ServerConn};

/// When to hand control back besides the ends above.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RelayStops {
    /// Return `Idle` once Postgres owes nothing and no transaction is open.
    pub(crate) stop_at_idle: bool,
    /// Statement pooling: a ReadyForQuery inside a transaction is refused.
    pub(crate) refuse_transaction_blocks: bool,
}

/// When the client last sent something and since when a reply has been owed, for the
/// idle-transaction and query timeouts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Activity {
    pub(crate) last_client: Instant,
    pub(crate) busy_since: Option<Instant>,
    /// Since when Postgres has reported an open transaction.
    pub(crate) tx_since: Option<Instant>,
    /// When the client's current transaction (autocommit statement or block) began.
    pub(crate) xact_start: Option<Instant>,
    /// A client message has begun arriving and has not all arrived (part of it may be at the
    /// server already): the request is waiting on the client, whatever the tracker counts.
    pub(crate) client_mid_message: bool,
}

impl Activity {
    pub(crate) fn now() -> Activity {
        Activity {
            last_client: Instant::now(),
            busy_since: None,
            tx_since: None,
            xact_start: None,
            client_mid_message: false,
        }
    }
}

/// One attached client: its stream, its inbound pump, the ParameterStatus values it has been
/// sent, and, in transaction and statement pooling, its named prepared statements and a flag
/// for anything that may have changed its session.
pub(crate) struct ClientSide<'a> {
    pub(crate) stream: &'a mut BoxStream,
    pub(crate) pump: &'a mut Pump,
    pub(crate) reported: &'a mut std::sync::Arc<BTreeMap<String, String>>,
    /// What relayed messages may have done to the session, so that its state is read back
    /// before the server goes to another client. None in session pooling.
    pub(crate) effects: Option<&'a mut SessionEffects>,
    pub(crate) prepared: Option<Prepared<'a>>,
    /// Replies owed for what was sent; kept across relays of one attachment.
    pub(crate) plan: &'a mut ReplyPlan,
}

/// What the relay noticed that may have changed a client's session: a Query or Parse whose
/// SQL `may_change_session`, a Bind of such a statement, a FunctionCall, a reported setting
/// changing; and the custom setting names that SQL named.
#[derive(Debug, Default)]
pub(crate) struct SessionEffects {
    pub(crate) changed: bool,
    pub(crate) names: Vec<String>,
}

impl SessionEffects {
    /// Notes a frontend message.
    pub(super) fn frontend(&mut self, tag: u8, body: Option<&[u8]>) {
        let sql = match (tag, body) {
            (frontend_tag::QUERY, Some(sql)) => sql,
            (frontend_tag::PARSE, Some(body)) => {
                // Parse: the statement name, then the query, each NUL-terminated.
                body.splitn(3, |b| *b == 0).nth(1).unwrap_or_default()
            }
            // A FunctionCall may call anything.
            (frontend_tag::FUNCTION_CALL, _) => {
                self.changed = true;
                return;
            }
            _ => return,
        };
        if may_change_session(sql) {
            self.changed = true;
            custom_setting_names(sql, &mut self.names);
        }
    }

    /// Takes in what another observer noticed.
    pub(crate) fn merge(&mut self, other: &mut SessionEffects) {
        self.changed |= std::mem::take(&mut other.changed);
        self.names.append(&mut other.names);
    }
}

/// Relays until something ends it.
pub(crate) async fn relay(
    client: &mut ClientSide<'_>,
    server: &mut ServerConn,
    tracker: &mut Tracker,
    activity: &mut Activity,
    stops: RelayStops,
) -> RelayEnd {
    if stops.stop_at_idle
        && tracker.is_idle()
        && client.pump.is_empty()
        && !server.has_unread_bytes()
    {
        return RelayEnd::Idle;
    }
    let ClientSide {
        stream: client_stream,
        pump: client_pump,
        reported,
        effects,
        prepared,
        plan,
    } = client;
    let RelayParts {
        stream: server_stream,
        inbound: server_pump,
        params: server_params,
        statements: server_statements,
        stats,
    } = server.relay_parts();
    type MustBuffer = fn(u8) -> bool;
    let (frontend_buffer, backend_buffer): (MustBuffer, MustBuffer) = match (&prepared, &effects) {
        (Some(_), _) => (statements::frontend_must_buffer, replies::must_buffer),
        (None, Some(_)) => (session_effects_must_buffer, replies::must_buffer),
        (None, None) => (frontend_must_buffer, backend_must_buffer),
    };
    // Transaction and statement pooling follow every reply group, statements mapped or not:
    // the server may go to another client only when the last one is answered, and a request
    // Postgres skips after an error is owed nothing.
    let has_plan = prepared.is_some() || effects.is_some();
    // Outlive one poll: the stop they cause may be reported on a later poll.
    let mut refused = false;
    let mut limit: Option<LimitError> = None;
    // The client sent Terminate after requests Postgres is still answering: as on a direct
    // connection, those finish and their replies are delivered before the session ends.
    let mut terminating = false;
    // The client's Terminate went to Postgres mid-COPY: only its answer is left to relay.
    let mut terminated_in_copy = false;
    std::future::poll_fn(|cx| {
        let (received_before, sent_before) = (client_pump.written(), server_pump.written());
        let mut frontend = Frontend {
            tracker,
            plan,
            has_plan,
            prepared: prepared.as_mut(),
            effects: effects.as_deref_mut(),
            server_statements,
            limit: &mut limit,
            saw_client: false,
        };
        let c2s = if terminated_in_copy {
            Poll::Pending
        } else {
            client_pump.poll_pump(
                cx,
                client_stream,
                server_stream,
                frontend_buffer,
                &mut |tag, body| frontend.message(tag, body),
            )
        };
        let saw_client = frontend.saw_client;
        // Any byte counts as activity, so a long message sent slowly is not "idle".
        if saw_client || client_pump.written() > received_before {
            activity.last_client = Instant::now();
        }
        activity.client_mid_message = client_pump.awaiting_rest();
        if saw_client {
            if tracker.outstanding > 0 && activity.busy_since.is_none() {
                activity.busy_since = Some(activity.last_client);
            }
            activity.xact_start.get_or_insert(activity.last_client);
        }
        if prepared.is_some() && server_pump.is_clean() {
            // Replies pgsluice owes with nothing from Postgres ahead of them go out now.
            if let Some(ready) = plan.take_ready() {
                server_pump.inject(&ready);
            }
        }
        match c2s {
            Poll::Ready(Ok(Paused::Stopped)) if limit.is_some() => {
                return Poll::Ready(RelayEnd::StatementLimit(limit.take().expect("set")))
            }
            // Held, not ended: woken again when the replies it waits for are in.
            Poll::Ready(Ok(Paused::Stopped)) if plan.is_holding() => {}
            Poll::Ready(Ok(Paused::Stopped)) if tracker.frontend_copy_in => {
                terminated_in_copy = true;
            }
            Poll::Ready(Ok(Paused::Stopped)) => {
                // An unsynced batch is rolled back, as Postgres does on Terminate; anything
                // else whole that it owes replies for, it completes first.
                terminating = tracker.outstanding > 0 && !tracker.unsynced && !tracker.copy_in;
                if !terminating {
                    return Poll::Ready(RelayEnd::ClientTerminated);
                }
            }
            Poll::Ready(Ok(Paused::Eof)) | Poll::Ready(Err(PumpError::Read(_))) => {
                return Poll::Ready(RelayEnd::ClientGone)
            }
            Poll::Ready(Err(PumpError::Write(e))) => {
                return Poll::Ready(RelayEnd::ServerGone(ServerLost::Io(e)))
            }
            Poll::Ready(Err(PumpError::Protocol(e))) => {
                return Poll::Ready(RelayEnd::ClientProtocol(e))
            }
            Poll::Pending => {}
        }
        // Bytes of the client's next request still on their way would belong to this server.
        let client_clean = client_pump.is_clean();
        let mut backend = Backend {
            tracker,
            plan,
            has_plan,
            stops,
            reported,
            effects: effects.as_deref_mut(),
            server_params,
            stats,
            activity,
            client_clean,
            refused: &mut refused,
        };
        let s2c = server_pump.poll_pump(
            cx,
            server_stream,
            client_stream,
            backend_buffer,
            &mut |tag, body| backend.message(tag, body),
        );
        if let Some(p) = prepared.as_mut() {
            statements::apply_undo(plan.take_undone(), p.registry, p.client, server_statements);
            statements::apply_shapes(plan.take_shapes(), p.registry, p.client);
            if server_pump.is_clean() && s2c.is_pending() {
                if let Some(ready) = plan.take_ready() {
                    server_pump.inject(&ready);
                    cx.waker().wake_by_ref();
                }
            }
            // What the held message waited for is in (and undone where it failed): read on.
            if plan.release_hold() {
                cx.waker().wake_by_ref();
            }
        }
        if tracker.outstanding == 0 {
            activity.busy_since = None;
            if terminating && server_pump.is_clean() {
                return Poll::Ready(RelayEnd::ClientTerminated);
            }
        }
        TrafficStats::add(
            &stats.bytes_received,
            client_pump.written() - received_before,
        );
        TrafficStats::add(&stats.bytes_sent, server_pump.written() - sent_before);
        match s2c {
            Poll::Ready(Ok(Paused::Stopped)) if refused => Poll::Ready(RelayEnd::TransactionBlock),
            Poll::Ready(Ok(Paused::Stopped)) => Poll::Ready(RelayEnd::Idle),
            Poll::Ready(Ok(Paused::Eof)) if terminated_in_copy => {
                Poll::Ready(RelayEnd::TerminatedInCopy)
            }
            Poll::Ready(Ok(Paused::Eof)) => Poll::Ready(RelayEnd::ServerGone(ServerLost::Closed)),
            Poll::Ready(Err(PumpError::Read(e))) => {
                Poll::Ready(RelayEnd::ServerGone(ServerLost::Io(e)))
            }
            Poll::Ready(Err(PumpError::Write(_))) => Poll::Ready(RelayEnd::ClientGone),
            Poll::Ready(Err(PumpError::Protocol(e))) => {
                Poll::Ready(RelayEnd::ServerGone(ServerLost::Protocol(e)))
            }
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Frontend messages read whole when statements are not mapped: Terminate, the Query and
/// Parse whose SQL may change the session, and Describe, whose kind says what replies it gets.
fn session_effects_must_buffer(tag: u8) -> bool {
    use frontend_tag::{DESCRIBE, PARSE, QUERY, TERMINATE};
    matches!(tag, TERMINATE | QUERY | PARSE | DESCRIBE)
}

/// Counts one ReadyForQuery: a query done, and when Postgres is idle again a transaction done
/// (SHOW STATS: total_query_count, total_xact_count and their times).
pub(super) fn record_ready(stats: &TrafficStats, activity: &mut Activity, tx_status: u8) {
    let now = Instant::now();
    TrafficStats::add(&stats.query_count, 1);
    if let Some(since) = activity.busy_since {
        TrafficStats::add(&stats.query_time_us, micros(now - since));
        stats.histograms.query.record(now - since);
    }
    if tx_status == TX_IDLE {
        TrafficStats::add(&stats.xact_count, 1);
        if let Some(start) = activity.xact_start.take() {
            TrafficStats::add(&stats.xact_time_us, micros(now - start));
            stats.histograms.transaction.record(now - start);
        }
    }
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

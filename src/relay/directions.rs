//! The two directions of the relay, one message at a time: `Frontend::message` decides what
//! each client message becomes on its way to Postgres (forwarded, rewritten, held, dropped)
//! and what it makes Postgres owe; `Backend::message` decides what each server message becomes
//! on its way to the client and when the server may go. `session::relay` builds one of each
//! per poll over the state that outlives polls (tracker, reply plan, statements, activity).

use std::collections::BTreeMap;
use std::time::Instant;

use super::replies::ReplyPlan;
use super::session::{record_ready, Activity, RelayStops, SessionEffects};
use super::statements::{self, Prepared};
use crate::live::TrafficStats;
use crate::net::pump::Verdict;
use crate::prepared::{LimitError, ServerStatements};
use crate::protocol::params::is_session_parameter;
use crate::protocol::tags::{backend_tag, frontend_tag};
use crate::protocol::tracker::{Tracker, TX_IDLE};
use crate::server::parse_parameter_status;

/// Client → server, for one poll.
pub(super) struct Frontend<'s, 'a> {
    pub(super) tracker: &'s mut Tracker,
    pub(super) plan: &'s mut ReplyPlan,
    /// Whether every reply group is followed (transaction and statement pooling).
    pub(super) has_plan: bool,
    pub(super) prepared: Option<&'s mut Prepared<'a>>,
    pub(super) effects: Option<&'s mut SessionEffects>,
    pub(super) server_statements: &'s mut ServerStatements,
    /// The client went past its prepared-statement limits; the message was not forwarded.
    pub(super) limit: &'s mut Option<LimitError>,
    /// A client message was handled in this poll.
    pub(super) saw_client: bool,
}

impl Frontend<'_, '_> {
    pub(super) fn message(&mut self, tag: u8, body: Option<&[u8]>) -> Verdict {
        if self.plan.is_holding() {
            // Its meaning depends on replies still owed; read on once they are in.
            return Verdict::StopBefore;
        }
        if tag == frontend_tag::TERMINATE {
            if self.tracker.frontend_copy_in {
                // Postgres answers a Terminate inside COPY FROM STDIN with two errors and
                // closes; let it, so the client reads what a direct connection sends.
                return Verdict::ForwardThenStop;
            }
            return Verdict::StopBefore;
        }
        if self.tracker.ignored_in_copy(tag) {
            // A Sync or Flush Postgres will ignore: no reply to plan, none owed.
            self.saw_client = true;
            return Verdict::Forward;
        }
        if let Some(e) = self.effects.as_deref_mut() {
            e.frontend(tag, body);
        }
        let verdict = match self.prepared.as_deref_mut() {
            Some(p) => {
                let outcome =
                    p.frontend(self.server_statements, self.plan, tag, body, self.tracker);
                match outcome {
                    Ok((v, _)) if self.plan.is_holding() => return v,
                    Ok((v, injected)) if injected.dropped => {
                        // Postgres would skip it: nothing to count, nothing owed.
                        self.saw_client = true;
                        return v;
                    }
                    Ok((v, injected)) => {
                        for _ in 0..injected.syncs {
                            self.tracker.frontend(frontend_tag::SYNC);
                        }
                        for _ in 0..injected.queries {
                            self.tracker.frontend(frontend_tag::QUERY);
                        }
                        if let Some(e) = self.effects.as_deref_mut() {
                            e.merge(&mut p.effects);
                        }
                        v
                    }
                    Err(e) => {
                        *self.limit = Some(e);
                        return Verdict::StopBefore;
                    }
                }
            }
            None => {
                if self.has_plan {
                    statements::expect_unmapped(self.plan, tag, body);
                }
                Verdict::Forward
            }
        };
        self.saw_client = true;
        self.tracker.frontend(tag);
        if self.has_plan {
            // Requests sent while Postgres skips to the Sync owe no ReadyForQuery.
            let skipped = self.plan.take_skipped_requests();
            self.tracker.outstanding = self.tracker.outstanding.saturating_sub(skipped);
        }
        verdict
    }
}

/// Server → client, for one poll.
pub(super) struct Backend<'s> {
    pub(super) tracker: &'s mut Tracker,
    pub(super) plan: &'s mut ReplyPlan,
    pub(super) has_plan: bool,
    pub(super) stops: RelayStops,
    /// The ParameterStatus values the client has been sent.
    pub(super) reported: &'s mut std::sync::Arc<BTreeMap<String, String>>,
    pub(super) effects: Option<&'s mut SessionEffects>,
    /// Values the server reported, by name as reported.
    pub(super) server_params: &'s mut BTreeMap<String, String>,
    pub(super) stats: &'s TrafficStats,
    pub(super) activity: &'s mut Activity,
    /// Nothing of the client's next request is on its way: the server may go at idle.
    pub(super) client_clean: bool,
    /// Statement pooling refused a transaction block (the ReadyForQuery was not forwarded).
    pub(super) refused: &'s mut bool,
}

impl Backend<'_> {
    pub(super) fn message(&mut self, tag: u8, body: Option<&[u8]>) -> Verdict {
        let status = body.and_then(|b| b.first());
        if self.stops.refuse_transaction_blocks
            && tag == backend_tag::READY_FOR_QUERY
            && status.is_some_and(|s| *s != TX_IDLE)
        {
            *self.refused = true;
            return Verdict::StopBefore;
        }
        let mut planned = if self.has_plan {
            match self.plan.on_backend(tag, body) {
                // The message comes round again after what was inserted.
                v @ Verdict::InsertBefore(_) => return v,
                v => v,
            }
        } else {
            Verdict::Forward
        };
        if let (backend_tag::PARAMETER_STATUS, Some(b)) = (tag, body) {
            planned = self.parameter_status(b, planned);
        }
        self.tracker.backend(tag, body);
        if self.has_plan && tag == backend_tag::ERROR_RESPONSE {
            // Requests Postgres skipped to the next Sync owe no ReadyForQuery.
            let skipped = self.plan.take_skipped_requests();
            self.tracker.outstanding = self.tracker.outstanding.saturating_sub(skipped);
        }
        if matches!(
            tag,
            backend_tag::COPY_IN_RESPONSE | backend_tag::COPY_BOTH_RESPONSE
        ) {
            self.plan
                .drop_ignored_syncs(self.tracker.take_ignored_syncs());
        }
        if let (backend_tag::ERROR_RESPONSE, Some(b)) = (tag, body) {
            self.stats.count_error(&error_class(b));
        }
        if tag == backend_tag::READY_FOR_QUERY {
            self.ready();
        }
        let stop = self.stops.stop_at_idle
            && tag == backend_tag::READY_FOR_QUERY
            && self.tracker.is_idle()
            && self.client_clean
            && self.plan.is_empty();
        match (planned, stop) {
            (Verdict::Forward, true) => Verdict::ForwardThenStop,
            (Verdict::Replace(b), true) => Verdict::ReplaceThenStop(b),
            (v, _) => v,
        }
    }

    /// A ParameterStatus: remembered for the server, and for the client when it is shown; one
    /// the client was last told already is not shown, as Postgres reports a value only when it
    /// differs from the last it reported to this client (the server's last report may have
    /// gone to pgsluice or to another client).
    fn parameter_status(&mut self, body: &[u8], planned: Verdict) -> Verdict {
        let Some((name, value)) = parse_parameter_status(body) else {
            return planned;
        };
        self.server_params
            .insert(name.to_string(), value.to_string());
        if !is_session_parameter(name) {
            return planned;
        }
        if let Some(e) = self.effects.as_deref_mut() {
            e.changed = true;
        }
        if !matches!(planned, Verdict::Forward) {
            return planned;
        }
        if self.reported.get(name).is_some_and(|v| v == value) {
            return Verdict::Replace(bytes::Bytes::new());
        }
        std::sync::Arc::make_mut(self.reported).insert(name.to_string(), value.to_string());
        planned
    }

    /// A ReadyForQuery: a query done (and a transaction when idle), for the statistics and
    /// the transaction timeout.
    fn ready(&mut self) {
        record_ready(self.stats, self.activity, self.tracker.tx_status);
        let open = self.tracker.tx_status != TX_IDLE;
        if open && self.activity.tx_since.is_none() {
            self.activity.tx_since = Some(Instant::now());
        } else if !open {
            self.activity.tx_since = None;
        }
    }
}

/// The SQLSTATE class (two characters) of an ErrorResponse body; "??" if it has no code.
fn error_class(body: &[u8]) -> String {
    crate::protocol::backend::error_fields(body)
        .code
        .map(|c| c.chars().take(2).collect())
        .unwrap_or_else(|| "??".to_string())
}

//! Named prepared statements in transaction and statement pooling. A client's
//! statement names are its own: each distinct statement (exact text, parameter types, and
//! the search_path it was parsed under) gets one pooler-wide server name, prepared lazily on
//! whichever server the client lands on, inside the client's own pipeline. The reply plan
//! then hides the replies pgsluice caused and supplies the ones Postgres will not send.
//! Any doubt about what a server has prepared means forgetting it: a Close is sent before
//! every Parse of a server name, so re-preparing is always safe.

use std::collections::BTreeMap;

use bytes::BytesMut;

use super::replies::{Disposition, Kind, ReplyPlan, Shape, Undo};
use super::session::SessionEffects;
use crate::net::pump::Verdict;
use crate::prepared::{
    ClientStatements, Counters, LimitError, Registry, ServerStatements, Statement,
};
use crate::protocol::backend::{self, Severity};
use crate::protocol::extended::{
    bind_target, close_complete, describe_or_close, parse_body, parse_complete, session_command,
    write_bind_renamed, write_close, write_describe, write_parse, ParseBody, SessionCommand,
};
use crate::protocol::session_effects::{bind_parameter_names, may_change_session};
use crate::protocol::sqlstate;
use crate::protocol::tags::{frontend_tag, tx_status};
use crate::protocol::tracker::Tracker;

/// A name no statement is prepared under: a client's unknown name is sent as this, so
/// Postgres answers "does not exist" exactly as it would have (renamed back for the client).
pub(super) const MISSING: &str = "pgsluice_missing";

/// One client's side of the bookkeeping, for the length of a relay.
pub(crate) struct Prepared<'a> {
    pub(crate) registry: &'a Registry,
    pub(crate) client: &'a mut ClientStatements,
    pub(crate) counters: &'a Counters,
    /// The client's search_path ("" = the server default): part of a statement's identity.
    pub(crate) search_path: &'a str,
    /// Binds of statements whose SQL may change the session, and the custom setting names
    /// they were given as parameters (`set_config($1, $2, false)`).
    pub(crate) effects: SessionEffects,
    /// The unnamed statement's SQL may change the session.
    pub(crate) unnamed_changes_session: bool,
    /// The client's startup parameters (lower-case name → value): what RESET returns to.
    pub(crate) startup: &'a BTreeMap<String, String>,
}

/// Frontend messages the rewriter must see whole: those it rewrites, and those it may have to
/// drop (Execute, Flush, FunctionCall after an error pgsluice answered itself).
pub(crate) fn frontend_must_buffer(tag: u8) -> bool {
    use frontend_tag::*;
    matches!(
        tag,
        TERMINATE | PARSE | BIND | DESCRIBE | CLOSE | QUERY | EXECUTE | FLUSH | FUNCTION_CALL
    )
}

impl Prepared<'_> {
    /// The verdict for one frontend message, with the replies it will get recorded in `plan`.
    pub(crate) fn frontend(
        &mut self,
        server: &mut ServerStatements,
        plan: &mut ReplyPlan,
        tag: u8,
        body: Option<&[u8]>,
        tracker: &Tracker,
    ) -> Result<(Verdict, Injected), LimitError> {
        if plan.drops_until_sync(tag) {
            let dropped = Injected {
                dropped: true,
                ..Injected::default()
            };
            return Ok((Verdict::Replace(bytes::Bytes::new()), dropped));
        }
        let Some(body) = body else {
            expect_plain(plan, tag);
            return Ok((Verdict::Forward, Injected::default()));
        };
        let mut cx = Cx {
            me: self,
            server,
            plan,
            out: BytesMut::new(),
            aborted: tracker.tx_status == tx_status::FAILED,
            mid_batch: tracker.unsynced,
            injected_syncs: 0,
            injected_queries: 0,
        };
        let outcome = match tag {
            frontend_tag::PARSE => cx.parse(body)?,
            frontend_tag::BIND => cx.bind(body),
            frontend_tag::DESCRIBE => cx.describe(body),
            frontend_tag::CLOSE => cx.close(body),
            frontend_tag::QUERY => cx.query(body),
            _ => Outcome::Untouched,
        };
        let mut injected = Injected {
            syncs: cx.injected_syncs,
            queries: cx.injected_queries,
            dropped: false,
        };
        let verdict = match outcome {
            Outcome::Rewritten => Verdict::Replace(cx.out.freeze()),
            Outcome::Planned => Verdict::Forward,
            Outcome::Untouched => {
                expect_plain(cx.plan, tag);
                Verdict::Forward
            }
            Outcome::Hold { flush } => {
                let mut first = std::mem::take(&mut cx.out);
                if flush {
                    postgres_protocol::message::frontend::flush(&mut first);
                }
                if first.is_empty() {
                    Verdict::StopBefore
                } else {
                    Verdict::InsertBefore(first.freeze())
                }
            }
            Outcome::Drop => {
                injected.dropped = true;
                Verdict::Replace(bytes::Bytes::new())
            }
        };
        Ok((verdict, injected))
    }
}

/// Requests pgsluice added to a client's message, each owed a ReadyForQuery.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Injected {
    pub(crate) syncs: u32,
    pub(crate) queries: u32,
    /// The client's message itself was dropped, not sent: nothing of it is owed.
    pub(crate) dropped: bool,
}

/// The replies of a message forwarded untouched.
fn expect_plain(plan: &mut ReplyPlan, tag: u8) {
    let kind = match tag {
        frontend_tag::PARSE | frontend_tag::BIND | frontend_tag::CLOSE => Kind::One,
        frontend_tag::DESCRIBE => Kind::One,
        frontend_tag::EXECUTE => Kind::Execute,
        frontend_tag::SYNC => Kind::Sync,
        frontend_tag::QUERY | frontend_tag::FUNCTION_CALL => Kind::UntilReady,
        // Flush, COPY data and anything else: no reply group of their own.
        _ => return,
    };
    plan.expect(kind, Disposition::Forward);
}

/// The replies of a message relayed when statements are not mapped: as `expect_plain`, and a
/// Describe of a statement (ParameterDescription, then RowDescription or NoData) as such.
pub(super) fn expect_unmapped(plan: &mut ReplyPlan, tag: u8, body: Option<&[u8]>) {
    let statement = body.is_some_and(|b| b.first() == Some(&frontend_tag::TARGET_STATEMENT));
    if tag == frontend_tag::DESCRIBE && statement {
        plan.expect(Kind::DescribeStatement, Disposition::Forward);
    } else {
        expect_plain(plan, tag);
    }
}

/// What became of one message.
pub(super) enum Outcome {
    /// Replaced by `Cx::out`, replies planned.
    Rewritten,
    /// Forwarded as is, replies planned.
    Planned,
    /// Forwarded as is; plan its replies from the tag.
    Untouched,
    /// Not forwarded yet: it depends on replies still owed (`ReplyPlan::hold`). What `Cx::out`
    /// holds goes first; `flush`: then a Flush, so that Postgres sends those replies.
    Hold { flush: bool },
    /// Not forwarded at all: Postgres would skip it after the error pgsluice answered with.
    Drop,
}

/// Working state for one message.
pub(super) struct Cx<'p, 'a> {
    pub(super) me: &'p mut Prepared<'a>,
    pub(super) server: &'p mut ServerStatements,
    pub(super) plan: &'p mut ReplyPlan,
    pub(super) out: BytesMut,
    /// The last ReadyForQuery said the transaction failed: Postgres refuses Parse (25P02),
    /// so pgsluice must not answer one itself.
    pub(super) aborted: bool,
    /// Extended-protocol messages are waiting for the client's Sync: no Sync of ours may go in.
    pub(super) mid_batch: bool,
    /// Syncs pgsluice added, each owed a ReadyForQuery the tracker must count.
    pub(super) injected_syncs: u32,
    /// Simple Queries pgsluice added, likewise.
    pub(super) injected_queries: u32,
}

impl Cx<'_, '_> {
    fn parse(&mut self, body: &[u8]) -> Result<Outcome, LimitError> {
        let Ok(p) = parse_body(body) else {
            return Ok(Outcome::Untouched);
        };
        if drops_all_statements(p.query) {
            // DEALLOCATE ALL / DISCARD ALL through the extended protocol (drivers send their
            // SQL that way): Postgres will drop every statement of the session.
            self.me.client.clear();
            self.server.clear();
        }
        if let Some(outcome) = self.deallocate_by_parse(&p) {
            return Ok(outcome);
        }
        if p.name.is_empty() {
            self.me.unnamed_changes_session = may_change_session(p.query.as_bytes());
            return Ok(Outcome::Untouched);
        }
        if self.plan.awaits_parse_of(p.name) {
            // A Parse of this name is still unanswered: whether this one is a duplicate
            // (42P05) or a fresh statement depends on whether that one failed.
            let flush = !self.plan.is_holding();
            self.plan.hold(p.name);
            return Ok(Outcome::Hold { flush });
        }
        Counters::add(&self.me.counters.client_parses, 1);
        if let Some(existing) = self.me.client.get(p.name).cloned() {
            // Postgres refuses a second Parse of a name: let it say so, about the client's name.
            self.ensure_prepared(&existing);
            write_parse(
                &mut self.out,
                &existing.server_name,
                p.query,
                &p.param_types,
            );
            self.plan
                .expect(Kind::One, rename(&existing.server_name, p.name));
            return Ok(Outcome::Rewritten);
        }
        let st = self
            .me
            .registry
            .intern(self.me.search_path, p.query, &p.param_types);
        self.me.client.insert(p.name, st.clone())?;
        let undo_client = Some((p.name.to_string(), st.id));
        if self.server.contains(st.id) && !self.aborted {
            self.server.touch(st.id);
            let mut done = BytesMut::new();
            parse_complete(&mut done);
            let undo = Undo {
                client: undo_client,
                ..Undo::default()
            };
            self.plan.synthesize(done.freeze(), Some(undo));
            self.learn_shape(p.name, &st);
            return Ok(Outcome::Rewritten);
        }
        self.prepare(&st, Disposition::Forward, undo_client);
        self.learn_shape(p.name, &st);
        Ok(Outcome::Rewritten)
    }

    /// A hidden Describe of the statement the client just parsed under `name`: the result
    /// shape Postgres fixes for it now, against which later preparations are checked.
    fn learn_shape(&mut self, name: &str, st: &Statement) {
        if self.aborted {
            return;
        }
        write_describe(
            &mut self.out,
            frontend_tag::TARGET_STATEMENT,
            &st.server_name,
        );
        let shape = Disposition::Shape {
            name: name.to_string(),
            check: false,
        };
        self.plan.expect(Kind::DescribeStatement, shape);
    }

    /// `DEALLOCATE name` as the text of a Parse (drivers send their SQL that way) of one of the
    /// client's protocol-level statements: the server's name replaces the client's, as for a
    /// simple Query. Other names pass through: Postgres answers for them.
    fn deallocate_by_parse(&mut self, p: &ParseBody<'_>) -> Option<Outcome> {
        let mut text = Vec::with_capacity(p.query.len() + 1);
        text.extend_from_slice(p.query.as_bytes());
        text.push(0);
        let Some(SessionCommand::Deallocate(name)) = session_command(&text) else {
            return None;
        };
        let name = name.into_owned();
        let st = self.me.client.get(&name).cloned()?;
        if !self.aborted {
            self.ensure_prepared(&st);
        }
        self.me.client.remove(&name);
        self.server.remove(st.id);
        let sql = format!("DEALLOCATE {}", st.server_name);
        write_parse(&mut self.out, p.name, &sql, &p.param_types);
        let undo = Undo {
            restore: vec![(name.clone(), st.clone())],
            ..Undo::default()
        };
        self.plan
            .expect_or_undo(Kind::One, rename(&st.server_name, &name), Some(undo));
        Some(Outcome::Rewritten)
    }

    fn bind(&mut self, body: &[u8]) -> Outcome {
        let Ok(target) = bind_target(body) else {
            return Outcome::Untouched;
        };
        if target.statement.is_empty() {
            if self.me.unnamed_changes_session {
                bind_parameter_names(&body[target.rest_offset..], &mut self.me.effects.names);
            }
            return Outcome::Untouched;
        }
        let st = self.me.client.get(target.statement).cloned();
        if let Some(st) = &st {
            if self.me.client.is_stale(target.statement) && !self.aborted {
                // DDL changed its result since the client parsed it: Postgres refuses it
                // until it is parsed again, and so does pgsluice, on any server.
                let mut error = BytesMut::new();
                backend::error_response(
                    &mut error,
                    Severity::Error,
                    sqlstate::FEATURE_NOT_SUPPORTED,
                    "cached plan must not change result type",
                    None,
                    None,
                );
                self.plan.refuse(error.freeze());
                return Outcome::Drop;
            }
            let known = self.me.client.shape(target.statement).is_some();
            if known && !self.server.contains(st.id) && !self.aborted {
                // This server prepares it afresh: only once its shape is known to be the one
                // the client parsed may the Bind go.
                self.prepare(st, Disposition::Swallow, None);
                write_describe(
                    &mut self.out,
                    frontend_tag::TARGET_STATEMENT,
                    &st.server_name,
                );
                let check = Disposition::Shape {
                    name: target.statement.to_string(),
                    check: true,
                };
                self.plan.expect(Kind::DescribeStatement, check);
                let flush = !self.plan.is_holding();
                self.plan.hold(target.statement);
                return Outcome::Hold { flush };
            }
        }
        Counters::add(&self.me.counters.binds, 1);
        if st.as_ref().is_some_and(|st| st.changes_session) {
            self.me.effects.changed = true;
            bind_parameter_names(&body[target.rest_offset..], &mut self.me.effects.names);
        }
        let (name, disposition) = self.server_name_for(target.statement);
        write_bind_renamed(&mut self.out, body, &target, &name);
        let undo = st.map(|st| Undo {
            server: Some(st.id),
            retire: true,
            stale: Some(target.statement.to_string()),
            ..Undo::default()
        });
        self.plan.expect_or_undo(Kind::One, disposition, undo);
        Outcome::Rewritten
    }

    fn describe(&mut self, body: &[u8]) -> Outcome {
        match describe_or_close(body) {
            Ok((frontend_tag::TARGET_STATEMENT, name)) if !name.is_empty() => {
                let (server_name, disposition) = self.server_name_for(name);
                write_describe(&mut self.out, frontend_tag::TARGET_STATEMENT, &server_name);
                self.plan.expect(Kind::DescribeStatement, disposition);
                Outcome::Rewritten
            }
            Ok((frontend_tag::TARGET_STATEMENT, _)) => {
                self.plan
                    .expect(Kind::DescribeStatement, Disposition::Forward);
                Outcome::Planned
            }
            _ => Outcome::Untouched,
        }
    }

    fn close(&mut self, body: &[u8]) -> Outcome {
        match describe_or_close(body) {
            Ok((frontend_tag::TARGET_STATEMENT, name)) if !name.is_empty() => {
                // The server statement may serve other clients: only this client's name goes.
                // If an earlier error makes Postgres skip this Close, the name stays.
                let undo = self.me.client.remove(name).map(|st| Undo {
                    restore: vec![(name.to_string(), st)],
                    ..Undo::default()
                });
                let mut done = BytesMut::new();
                close_complete(&mut done);
                self.plan.synthesize(done.freeze(), undo);
                Outcome::Rewritten
            }
            _ => Outcome::Untouched,
        }
    }

    /// The server name for a client's statement, prepared first if this server lacks it.
    fn server_name_for(&mut self, client_name: &str) -> (String, Disposition) {
        match self.me.client.get(client_name).cloned() {
            Some(st) => {
                self.ensure_prepared(&st);
                (st.server_name.clone(), rename(&st.server_name, client_name))
            }
            // A SQL-level statement (PREPARE) or none: Postgres answers for itself. A name
            // like pgsluice's own must not reach the statements pgsluice prepared.
            None if !is_pooler_name(client_name) => (client_name.to_string(), Disposition::Forward),
            None => (MISSING.to_string(), rename(MISSING, client_name)),
        }
    }

    /// Like `ensure_prepared`, for a simple Query that needs the statement: a Parse that
    /// failed would make Postgres skip the Query and never send its ReadyForQuery, so the
    /// preparation goes in its own hidden group, closed by a Sync of pgsluice's.
    pub(super) fn ensure_prepared_alone(&mut self, st: &Statement) {
        if self.server.contains(st.id) {
            self.server.touch(st.id);
            return;
        }
        if self.mid_batch {
            // No Sync may go in the middle of the client's batch; Postgres will answer the
            // DEALLOCATE with "does not exist" about the client's name.
            return;
        }
        for evicted in self.server.insert(st) {
            write_close(&mut self.out, frontend_tag::TARGET_STATEMENT, &evicted);
            self.plan.expect(Kind::One, Disposition::Hide);
            Counters::add(&self.me.counters.evictions, 1);
        }
        write_close(
            &mut self.out,
            frontend_tag::TARGET_STATEMENT,
            &st.server_name,
        );
        self.plan.expect(Kind::One, Disposition::Hide);
        self.out.extend_from_slice(&st.parse_message);
        let undo = Undo {
            server: Some(st.id),
            ..Undo::default()
        };
        self.plan
            .expect_or_undo(Kind::One, Disposition::Hide, Some(undo));
        write_sync(&mut self.out);
        self.plan.expect(Kind::Sync, Disposition::Hide);
        self.injected_syncs += 1;
        Counters::add(&self.me.counters.server_parses, 1);
    }

    fn ensure_prepared(&mut self, st: &Statement) {
        if self.server.contains(st.id) {
            self.server.touch(st.id);
        } else {
            self.prepare(st, Disposition::Swallow, None);
        }
    }

    /// Close (whatever stale copy may exist) and Parse `st` on the server, evicting the least
    /// recently used statements beyond max_prepared_statements.
    fn prepare(&mut self, st: &Statement, disposition: Disposition, client: Option<(String, u64)>) {
        for evicted in self.server.insert(st) {
            write_close(&mut self.out, frontend_tag::TARGET_STATEMENT, &evicted);
            self.plan.expect(Kind::One, Disposition::Swallow);
            Counters::add(&self.me.counters.evictions, 1);
        }
        write_close(
            &mut self.out,
            frontend_tag::TARGET_STATEMENT,
            &st.server_name,
        );
        self.plan.expect(Kind::One, Disposition::Swallow);
        self.out.extend_from_slice(&st.parse_message);
        let undo = Undo {
            server: Some(st.id),
            client,
            ..Undo::default()
        };
        self.plan.expect_or_undo(Kind::One, disposition, Some(undo));
        Counters::add(&self.me.counters.server_parses, 1);
    }
}

/// Whether a client's name could be one pgsluice prepares statements under.
pub(super) fn is_pooler_name(name: &str) -> bool {
    name.starts_with("pgsluice_")
}

fn write_sync(out: &mut BytesMut) {
    postgres_protocol::message::frontend::sync(out);
}

pub(super) fn rename(from: &str, to: &str) -> Disposition {
    Disposition::Rename {
        from: from.to_string(),
        to: to.to_string(),
    }
}

/// Applies what the plan handed back: statements Postgres did not prepare after all, and
/// statements a failed Bind showed may be stale.
pub(crate) fn apply_undo(
    undone: Vec<Undo>,
    registry: &Registry,
    client: &mut ClientStatements,
    server: &mut ServerStatements,
) {
    for u in undone {
        if let (true, Some(name)) = (u.plan_changed, &u.stale) {
            client.mark_stale(name);
        }
        if let Some(id) = u.server {
            server.remove(id);
            if u.retire {
                registry.retire(id);
            }
        }
        if let Some((name, id)) = u.client {
            if client.get(&name).is_some_and(|st| st.id == id) {
                client.remove(&name);
            }
        }
        for (name, st) in u.restore {
            // It held these before, so only names added since could make this fail.
            let _ = client.insert(&name, st);
        }
    }
}

/// Records the shapes hidden Describes found, and marks a client statement whose shape on a
/// server preparing it afresh is not the one it was parsed with. That statement is retired
/// too: servers that prepared it before the DDL still hold the old plan, so a new Parse of the
/// same text must not share it.
pub(crate) fn apply_shapes(shapes: Vec<Shape>, registry: &Registry, client: &mut ClientStatements) {
    for s in shapes {
        if !s.check {
            client.set_shape(&s.name, s.shape);
        } else if client.shape(&s.name).is_some_and(|known| *known != s.shape) {
            client.mark_stale(&s.name);
            if let Some(st) = client.get(&s.name) {
                registry.retire(st.id);
            }
        }
    }
}

/// DEALLOCATE ALL or DISCARD ALL as the text of a Parse.
fn drops_all_statements(query: &str) -> bool {
    let mut body = Vec::with_capacity(query.len() + 1);
    body.extend_from_slice(query.as_bytes());
    body.push(0);
    matches!(
        session_command(&body),
        Some(SessionCommand::DeallocateAll | SessionCommand::DiscardAll)
    )
}

//! Pairs every request on its way to Postgres with the replies the client must see, so that
//! replies pgsluice must hide (ParseComplete of a Parse it injected) are dropped and replies
//! Postgres will not send (ParseComplete of a Parse the server already had, CloseComplete of
//! a Close pgsluice answered itself) appear in exactly the position Postgres would have sent
//! them (PostgreSQL docs "Extended Query": one reply group per message; after an error the
//! backend skips to Sync). Pure bookkeeping: the relay feeds it and applies its verdicts.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use crate::net::pump::Verdict;
use crate::prepared::Statement;
use crate::protocol::backend::error_fields;
use crate::protocol::extended::write_error_renamed;
use crate::protocol::sqlstate;
use crate::protocol::tags::{backend_tag, frontend_tag};

/// How the replies to one request end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Parse, Bind, Close, Describe of a portal: one message.
    One,
    /// Describe of a statement: ParameterDescription, then RowDescription or NoData.
    DescribeStatement,
    /// Execute: rows (and COPY traffic) until CommandComplete, EmptyQueryResponse or
    /// PortalSuspended.
    Execute,
    /// Sync: ReadyForQuery; also where error skipping ends.
    Sync,
    /// Simple Query or FunctionCall: everything until ReadyForQuery.
    UntilReady,
}

/// What the client sees of those replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Disposition {
    Forward,
    /// Replies to a message pgsluice injected; an error is still shown, as it explains why
    /// the client's own next message fails.
    Swallow,
    /// Forward, but in an error say the client's statement name, not the server's.
    Rename {
        from: String,
        to: String,
    },
    /// Replies to a group pgsluice sent on its own (ending in its own Sync): the client sees
    /// nothing of it, errors included.
    Hide,
    /// A simple Query to which pgsluice appended statements of its own: only the first
    /// CommandComplete is the client's, the later ones are hidden.
    FirstCompletion,
    /// The client's DISCARD ALL, followed by a Query of pgsluice's that sets these startup
    /// parameters (lower-case name, value) again: its ReadyForQuery is hidden, and so is a
    /// ParameterStatus for one of them that the next Query will report differently.
    Restoring(Vec<(String, String)>),
    /// pgsluice's Query after a `Restoring` one: only its ReadyForQuery is shown (and what
    /// Postgres reports before it).
    OnlyReady,
    /// pgsluice's own Describe of the client's statement `name`, hidden: its result shape is
    /// recorded (`Shape::check` false) or compared with the recorded one (true).
    Shape {
        name: String,
        check: bool,
    },
}

/// The result shape of a client statement, as a hidden Describe found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shape {
    pub(crate) name: String,
    /// RowDescription body; empty for NoData.
    pub(crate) shape: Bytes,
    pub(crate) check: bool,
}

/// Bookkeeping to take back when Postgres did not do what a message asked (it failed, or
/// was skipped after an earlier error): that statement is not prepared after all.
#[derive(Debug, Clone, Default)]
pub(crate) struct Undo {
    /// The statement id the server does not have.
    pub(crate) server: Option<u64>,
    /// The client statement name (and the id it must still map to) that does not exist.
    pub(crate) client: Option<(String, u64)>,
    /// Client names a Close, DEALLOCATE or DISCARD ALL removed: they still exist.
    pub(crate) restore: Vec<(String, Arc<Statement>)>,
    /// Set for a Bind that failed: the statement may be stale after DDL ("cached plan must not
    /// change result type"), so no new Parse may share it. Not handed back when merely skipped.
    pub(crate) retire: bool,
    /// For a Bind: the client's name, which Postgres now refuses until it is parsed again if
    /// the Bind failed with "cached plan must not change result type".
    pub(crate) stale: Option<String>,
    /// Set by the plan when the failure was that one.
    pub(crate) plan_changed: bool,
}

#[derive(Debug)]
enum Entry {
    Reply {
        kind: Kind,
        disposition: Disposition,
        undo: Option<Undo>,
        /// An ErrorResponse came in this group (a simple Query that failed).
        failed: bool,
        /// CommandComplete messages seen in this group.
        completions: u32,
    },
    Synthesize(Bytes, Option<Undo>),
}

#[derive(Debug, Default)]
pub(crate) struct ReplyPlan {
    entries: VecDeque<Entry>,
    undone: Vec<Undo>,
    /// Simple Queries and FunctionCalls Postgres skipped after an extended-protocol error:
    /// the ReadyForQuery each was counted for will never come.
    skipped_requests: u32,
    /// An extended-protocol message failed and the client has not sent its Sync yet: Postgres
    /// ignores everything until that Sync, so nothing sent meanwhile gets a reply.
    skipping: bool,
    /// The client's messages wait (the relay reads no more of them) until the Parse of this
    /// statement name, still unanswered, is answered, or its shape checked.
    hold: Option<String>,
    /// pgsluice answered the client's message itself with an error, as Postgres would have:
    /// like Postgres, it drops the client's messages until the Sync.
    client_skipping: bool,
    /// Shapes hidden Describes found since the last call.
    shapes: Vec<Shape>,
}

/// Messages Postgres may send at any time, outside any reply group.
fn is_asynchronous(tag: u8) -> bool {
    matches!(
        tag,
        backend_tag::NOTICE_RESPONSE
            | backend_tag::NOTIFICATION_RESPONSE
            | backend_tag::PARAMETER_STATUS
    )
}

/// Backend messages the plan must see whole (they end a reply group or may be rewritten).
pub(crate) fn must_buffer(tag: u8) -> bool {
    matches!(
        tag,
        backend_tag::PARSE_COMPLETE
            | backend_tag::BIND_COMPLETE
            | backend_tag::CLOSE_COMPLETE
            | backend_tag::NO_DATA
            | backend_tag::PARAMETER_DESCRIPTION
            | backend_tag::ROW_DESCRIPTION
            | backend_tag::COMMAND_COMPLETE
            | backend_tag::EMPTY_QUERY_RESPONSE
            | backend_tag::PORTAL_SUSPENDED
            | backend_tag::READY_FOR_QUERY
            | backend_tag::ERROR_RESPONSE
            | backend_tag::PARAMETER_STATUS
    )
}

impl ReplyPlan {
    pub(crate) fn expect(&mut self, kind: Kind, disposition: Disposition) {
        self.expect_or_undo(kind, disposition, None);
    }

    /// Like `expect`; `undo` is handed back if the message fails or is skipped.
    pub(crate) fn expect_or_undo(
        &mut self,
        kind: Kind,
        disposition: Disposition,
        undo: Option<Undo>,
    ) {
        if kind == Kind::Sync {
            self.skipping = false;
        } else if self.skipping {
            self.skipped(kind, undo);
            return;
        }
        self.entries.push_back(Entry::Reply {
            kind,
            disposition,
            undo,
            failed: false,
            completions: 0,
        });
    }

    /// A reply the client must get that Postgres will not send; `undo` as for `expect`.
    pub(crate) fn synthesize(&mut self, bytes: Bytes, undo: Option<Undo>) {
        if self.skipping {
            self.skipped(Kind::One, undo);
            return;
        }
        self.entries.push_back(Entry::Synthesize(bytes, undo));
    }

    /// A request Postgres skips (after an error, before the Sync): no replies, and what it
    /// would have done is taken back.
    fn skipped(&mut self, kind: Kind, undo: Option<Undo>) {
        if kind == Kind::UntilReady {
            self.skipped_requests += 1;
        }
        if let Some(u) = undo.filter(|u| !u.retire) {
            self.undone.push(u);
        }
    }

    /// Whether an entry still waits for the answer to a Parse of the client's `name`, or to
    /// the check of its shape.
    pub(crate) fn awaits_parse_of(&self, name: &str) -> bool {
        self.entries.iter().any(|e| match e {
            Entry::Reply {
                disposition:
                    Disposition::Shape {
                        name: n,
                        check: true,
                    },
                ..
            } => n == name,
            Entry::Reply { undo, .. } | Entry::Synthesize(_, undo) => undo
                .as_ref()
                .and_then(|u| u.client.as_ref())
                .is_some_and(|(n, _)| n == name),
        })
    }

    /// Shapes found since the last call.
    pub(crate) fn take_shapes(&mut self) -> Vec<Shape> {
        std::mem::take(&mut self.shapes)
    }

    /// Answers the client's current message with `error` (a whole ErrorResponse) as Postgres
    /// would have, and drops its messages up to the Sync, as Postgres skips them.
    pub(crate) fn refuse(&mut self, error: Bytes) {
        self.synthesize(error, None);
        self.client_skipping = true;
    }

    /// Whether the client's messages are being dropped up to its Sync (`refuse`); a Sync ends
    /// it.
    pub(crate) fn drops_until_sync(&mut self, tag: u8) -> bool {
        if self.client_skipping && tag == frontend_tag::SYNC {
            self.client_skipping = false;
            return false;
        }
        self.client_skipping
    }

    /// Holds the client's messages until the Parse of `name` is answered.
    pub(crate) fn hold(&mut self, name: &str) {
        self.hold = Some(name.to_string());
    }

    pub(crate) fn is_holding(&self) -> bool {
        self.hold.is_some()
    }

    /// Ends the hold once its Parse is answered; true when it did.
    pub(crate) fn release_hold(&mut self) -> bool {
        let resolved = self
            .hold
            .as_deref()
            .is_some_and(|name| !self.awaits_parse_of(name));
        if resolved {
            self.hold = None;
        }
        resolved
    }

    /// Simple Queries and FunctionCalls skipped since the last call, for the tracker.
    pub(crate) fn take_skipped_requests(&mut self) -> u32 {
        std::mem::take(&mut self.skipped_requests)
    }

    /// What must be taken back since the last call.
    pub(crate) fn take_undone(&mut self) -> Vec<Undo> {
        std::mem::take(&mut self.undone)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Synthesized replies now at the front: nothing Postgres owes comes before them.
    pub(crate) fn take_ready(&mut self) -> Option<BytesMut> {
        let mut out = BytesMut::new();
        while let Some(Entry::Synthesize(b, _)) = self.entries.front() {
            out.extend_from_slice(b);
            self.entries.pop_front();
        }
        (!out.is_empty()).then_some(out)
    }

    /// The verdict for one backend message; `body` is present for `must_buffer` tags.
    pub(crate) fn on_backend(&mut self, tag: u8, body: Option<&[u8]>) -> Verdict {
        if let (
            backend_tag::PARAMETER_STATUS,
            Some(body),
            Some(Entry::Reply {
                disposition: Disposition::Restoring(restored),
                ..
            }),
        ) = (tag, body, self.entries.front())
        {
            if let Some((name, value)) = crate::server::parse_parameter_status(body) {
                let restored_differently = restored
                    .iter()
                    .any(|(n, v)| n.eq_ignore_ascii_case(name) && v != value);
                if restored_differently {
                    return Verdict::Replace(Bytes::new());
                }
            }
        }
        if is_asynchronous(tag) {
            return Verdict::Forward;
        }
        let mut out = self.take_ready().unwrap_or_default();
        if body.is_none() && !out.is_empty() {
            // A streamed message cannot be rewritten: put what is due in front of it, then
            // see the message again.
            return Verdict::InsertBefore(out.freeze());
        }
        let Some(Entry::Reply {
            kind, disposition, ..
        }) = self.entries.front()
        else {
            return match body {
                Some(b) if !out.is_empty() => {
                    append(&mut out, tag, b);
                    Verdict::Replace(out.freeze())
                }
                _ => Verdict::Forward,
            };
        };
        let (kind, disposition) = (*kind, disposition.clone());
        let completes = match kind {
            Kind::One => true,
            Kind::DescribeStatement => tag != backend_tag::PARAMETER_DESCRIPTION,
            Kind::Execute => matches!(
                tag,
                backend_tag::COMMAND_COMPLETE
                    | backend_tag::EMPTY_QUERY_RESPONSE
                    | backend_tag::PORTAL_SUSPENDED
                    | backend_tag::ERROR_RESPONSE
            ),
            Kind::Sync | Kind::UntilReady => tag == backend_tag::READY_FOR_QUERY,
        };
        if tag == backend_tag::COMMAND_COMPLETE {
            if let Some(Entry::Reply { completions, .. }) = self.entries.front_mut() {
                *completions += 1;
            }
        }
        let shown = match (&disposition, tag, body) {
            (Disposition::Swallow, backend_tag::ERROR_RESPONSE, _)
            | (Disposition::Forward, _, _) => true,
            (Disposition::FirstCompletion, backend_tag::COMMAND_COMPLETE, _) => matches!(
                self.entries.front(),
                Some(Entry::Reply { completions: 1, .. })
            ),
            (Disposition::FirstCompletion, _, _) => true,
            (Disposition::Restoring(_), backend_tag::READY_FOR_QUERY, _) => false,
            (Disposition::Restoring(_), _, _) => true,
            (Disposition::OnlyReady, backend_tag::READY_FOR_QUERY, _) => true,
            (Disposition::OnlyReady, _, _) => false,
            (Disposition::Shape { .. }, _, _) => false,
            (Disposition::Swallow | Disposition::Hide, _, _) => false,
            (
                Disposition::Rename { from, to },
                backend_tag::ERROR_RESPONSE | backend_tag::NOTICE_RESPONSE,
                Some(b),
            ) => {
                let before = out.len();
                if write_error_renamed(&mut out, tag, b, from, to).is_err() {
                    out.truncate(before);
                    append(&mut out, tag, b);
                }
                false
            }
            (Disposition::Rename { .. }, _, _) => true,
        };
        if tag == backend_tag::ERROR_RESPONSE {
            if let Some(Entry::Reply { failed, .. }) = self.entries.front_mut() {
                *failed = true;
            }
        }
        if completes {
            let described = matches!(tag, backend_tag::ROW_DESCRIPTION | backend_tag::NO_DATA);
            if let (Disposition::Shape { name, check }, true) = (&disposition, described) {
                self.shapes.push(Shape {
                    name: name.clone(),
                    shape: body.map(Bytes::copy_from_slice).unwrap_or_default(),
                    check: *check,
                });
            }
            if let Some(Entry::Reply {
                undo: Some(mut undo),
                failed: true,
                ..
            }) = self.entries.pop_front()
            {
                undo.plan_changed = tag == backend_tag::ERROR_RESPONSE
                    && body.and_then(|b| error_fields(b).code).as_deref()
                        == Some(sqlstate::FEATURE_NOT_SUPPORTED);
                self.undone.push(undo);
            }
            if tag == backend_tag::ERROR_RESPONSE
                && matches!(kind, Kind::One | Kind::DescribeStatement | Kind::Execute)
            {
                self.skip_to_sync();
            }
        }
        if completes {
            let ready = self.take_ready();
            if shown {
                match body {
                    Some(b) => append(&mut out, tag, b),
                    // Streamed messages never complete a group (must_buffer), so nothing
                    // can be due after one.
                    None => return Verdict::Forward,
                }
            }
            if let Some(ready) = ready {
                out.extend_from_slice(&ready);
            }
        } else if shown {
            match body {
                Some(b) => append(&mut out, tag, b),
                None => return Verdict::Forward,
            }
        }
        if shown && out.len() == body.map_or(0, |b| b.len() + 5) {
            // Nothing added or removed: keep the zero-copy path.
            return Verdict::Forward;
        }
        Verdict::Replace(out.freeze())
    }

    /// Postgres read `n` Syncs in copy-in mode and ignored them (docs "COPY Operations"):
    /// no ReadyForQuery will answer them, so their entries go — the first `n` still queued,
    /// since every Sync sent before the request that started the copy is answered already.
    pub(crate) fn drop_ignored_syncs(&mut self, n: u32) {
        for _ in 0..n {
            let at = self.entries.iter().position(|e| {
                matches!(
                    e,
                    Entry::Reply {
                        kind: Kind::Sync,
                        ..
                    }
                )
            });
            if let Some(at) = at {
                self.entries.remove(at);
            }
        }
    }

    /// After an error in an extended-protocol message Postgres ignores everything up to the
    /// next Sync, so neither its replies nor ours for those messages exist.
    fn skip_to_sync(&mut self) {
        self.skipping = true;
        while let Some(e) = self.entries.front() {
            if matches!(
                e,
                Entry::Reply {
                    kind: Kind::Sync,
                    ..
                }
            ) {
                self.skipping = false;
                break;
            }
            match self.entries.pop_front() {
                Some(Entry::Reply { kind, undo, .. }) => self.skipped(kind, undo),
                Some(Entry::Synthesize(_, undo)) => self.skipped(Kind::One, undo),
                None => {}
            }
        }
    }
}

/// Appends a whole message rebuilt from its tag and body.
fn append(out: &mut BytesMut, tag: u8, body: &[u8]) {
    out.put_u8(tag);
    out.put_u32(body.len() as u32 + 4);
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests;

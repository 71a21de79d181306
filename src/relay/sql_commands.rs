//! The SQL commands a client sends as a simple Query that touch what pgsluice keeps for it:
//! `DEALLOCATE [ALL]` and `EXECUTE` of its protocol-level statements (mapped to the server's
//! names), `DISCARD ALL`, and `RESET` / `RESET ALL`, which on the client's own connection would
//! return its startup parameters to their startup values (pgsluice sets them again in the same
//! reply). Recognised only when the Query is that one statement (`protocol::extended`'s
//! session_command); anything else passes through. Part of `statements`' `Cx`.

use super::replies::{Disposition, Kind, Undo};
use super::statements::{is_pooler_name, rename, Cx, Outcome, MISSING};
use crate::protocol::extended::{session_command, write_query, SessionCommand};
use crate::server::quote_literal;

impl Cx<'_, '_> {
    pub(super) fn query(&mut self, body: &[u8]) -> Outcome {
        match session_command(body) {
            Some(command @ (SessionCommand::DeallocateAll | SessionCommand::DiscardAll)) => {
                // Postgres drops every statement of the session, ours included; if it
                // refuses (aborted transaction, DISCARD ALL in a block) the names stay.
                let undo = Undo {
                    restore: self.me.client.take_all(),
                    ..Undo::default()
                };
                self.server.clear();
                if command == SessionCommand::DiscardAll {
                    return self.discard_all(body, undo);
                }
                self.plan
                    .expect_or_undo(Kind::UntilReady, Disposition::Forward, Some(undo));
                Outcome::Planned
            }
            Some(SessionCommand::Deallocate(name)) => {
                let (server_name, disposition, undo) = match self.me.client.remove(&name) {
                    Some(st) => {
                        // In a failed transaction the DEALLOCATE fails (25P02) whatever the
                        // server holds; an injected Parse would fail first and make Postgres
                        // skip the Query, so no ReadyForQuery would ever come.
                        if !self.aborted {
                            self.ensure_prepared_alone(&st);
                        }
                        self.server.remove(st.id);
                        let undo = Undo {
                            restore: vec![(name.to_string(), st.clone())],
                            ..Undo::default()
                        };
                        (
                            st.server_name.clone(),
                            rename(&st.server_name, &name),
                            Some(undo),
                        )
                    }
                    // Not one of its protocol-level statements: a SQL-level one (PREPARE),
                    // or none; Postgres answers for itself.
                    None if !is_pooler_name(&name) => return Outcome::Untouched,
                    None => (MISSING.to_string(), rename(MISSING, &name), None),
                };
                write_query(&mut self.out, &format!("DEALLOCATE {server_name}"));
                self.plan
                    .expect_or_undo(Kind::UntilReady, disposition, undo);
                Outcome::Rewritten
            }
            Some(SessionCommand::Reset(name)) => self.reset(
                body,
                self.me
                    .startup
                    .get(&*name)
                    .map(|value| (name.as_ref(), value.as_str()))
                    .into_iter()
                    .collect(),
            ),
            Some(SessionCommand::ResetAll) => {
                let all = self
                    .me
                    .startup
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                self.reset(body, all)
            }
            Some(SessionCommand::Execute { name, args }) => {
                // EXECUTE of a statement it prepared through the protocol: Postgres shares
                // one name space between the two, so the server's name must be used.
                let Some(st) = self.me.client.get(&name).cloned() else {
                    return Outcome::Untouched;
                };
                if !self.aborted {
                    self.ensure_prepared_alone(&st);
                }
                write_query(&mut self.out, &format!("EXECUTE {}{args}", st.server_name));
                self.plan
                    .expect(Kind::UntilReady, rename(&st.server_name, &name));
                Outcome::Rewritten
            }
            None => Outcome::Untouched,
        }
    }

    /// RESET of startup parameters: on a connection of its own the client would get its
    /// startup values back, where pgsluice's server would go to its own. So the values are
    /// set again in the same Query, right after the RESET, hidden but for what Postgres
    /// reports at its end (ParameterStatus with the startup value, as on a direct connection).
    fn reset(&mut self, body: &[u8], startup: Vec<(&str, &str)>) -> Outcome {
        if startup.is_empty() {
            return Outcome::Untouched;
        }
        let text = body.strip_suffix(&[0]).unwrap_or(body);
        let Ok(text) = std::str::from_utf8(text) else {
            return Outcome::Untouched;
        };
        let mut sql = text.trim_end().trim_end_matches(';').to_string();
        for (name, value) in startup {
            sql.push_str("; ");
            sql.push_str(&set_statement(name, value));
        }
        write_query(&mut self.out, &sql);
        self.plan
            .expect(Kind::UntilReady, Disposition::FirstCompletion);
        Outcome::Rewritten
    }

    /// DISCARD ALL returns startup parameters to the server's values, where the client's
    /// own connection would return to its startup values. It cannot share a Query with
    /// anything, so a Query of pgsluice's follows it and sets them again; the client sees
    /// one reply, with what Postgres reports at the end of the second (ParameterStatus of
    /// the startup values) in place of what it reported at the end of the first.
    fn discard_all(&mut self, body: &[u8], undo: Undo) -> Outcome {
        let text = std::str::from_utf8(body.strip_suffix(&[0]).unwrap_or(body));
        let (Ok(text), false, false) = (text, self.me.startup.is_empty(), self.mid_batch) else {
            self.plan
                .expect_or_undo(Kind::UntilReady, Disposition::Forward, Some(undo));
            return Outcome::Planned;
        };
        write_query(&mut self.out, text);
        let sets: Vec<String> = self
            .me
            .startup
            .iter()
            .map(|(name, value)| set_statement(name, value))
            .collect();
        write_query(&mut self.out, &sets.join("; "));
        let restored = self.me.startup.clone().into_iter().collect();
        self.plan.expect_or_undo(
            Kind::UntilReady,
            Disposition::Restoring(restored),
            Some(undo),
        );
        self.plan.expect(Kind::UntilReady, Disposition::OnlyReady);
        self.injected_queries += 1;
        Outcome::Rewritten
    }
}

/// `SET "name" TO 'value'`.
fn set_statement(name: &str, value: &str) -> String {
    format!(
        "SET \"{}\" TO {}",
        name.replace('"', "\"\""),
        quote_literal(value)
    )
}

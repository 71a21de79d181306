//! What Postgres still owes a connection, read off the messages passing through.
//!
//! Every simple Query, FunctionCall and Sync earns exactly one ReadyForQuery (PostgreSQL docs
//! "Message Flow"); extended-protocol messages sent without a Sync leave the server mid-batch;
//! COPY sub-protocols end with ReadyForQuery — except that Postgres ignores Sync and Flush
//! while it is in copy-in mode (docs "COPY Operations"), so those earn nothing. A server is
//! reusable by someone else only when `is_idle()` — invariant 1 of docs/architecture.md.

use super::tags::{backend_tag, frontend_tag, tx_status};

/// ReadyForQuery's status outside a transaction block.
pub(crate) const TX_IDLE: u8 = tx_status::IDLE;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tracker {
    /// ReadyForQuery messages Postgres still owes.
    pub(crate) outstanding: u32,
    /// Extended-protocol messages were sent since the last Sync.
    pub(crate) unsynced: bool,
    /// Status byte of the last ReadyForQuery: 'I' idle, 'T' in a transaction, 'E' failed one.
    pub(crate) tx_status: u8,
    pub(crate) copy_in: bool,
    pub(crate) copy_out: bool,
    /// Postgres is in copy-in mode and the frontend has not yet sent CopyDone or CopyFail:
    /// a Sync or Flush forwarded now is ignored by Postgres.
    pub(crate) frontend_copy_in: bool,
    /// Syncs forwarded since the last Execute, Query or FunctionCall and before any CopyDone
    /// or CopyFail: if that request turns out to start a COPY FROM STDIN, Postgres reads them
    /// in copy-in mode and ignores them (tokio-postgres sends Bind, Execute, Sync at once).
    pub(crate) copy_syncs: u32,
    /// The frontend sent CopyDone or CopyFail since the last Execute, Query or FunctionCall.
    pub(crate) copy_ended: bool,
    /// Set when CopyInResponse arrives: the Syncs Postgres will ignore, for the reply plan.
    pub(crate) ignored_syncs: u32,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker {
            outstanding: 0,
            unsynced: false,
            tx_status: TX_IDLE,
            copy_in: false,
            copy_out: false,
            frontend_copy_in: false,
            copy_syncs: 0,
            copy_ended: false,
            ignored_syncs: 0,
        }
    }
}

impl Tracker {
    /// A frontend message (client → server) is being forwarded.
    pub(crate) fn frontend(&mut self, tag: u8) {
        if self.ignored_in_copy(tag) {
            return;
        }
        match tag {
            frontend_tag::QUERY | frontend_tag::FUNCTION_CALL => {
                self.outstanding += 1;
                self.start_request();
            }
            frontend_tag::SYNC => {
                self.outstanding += 1;
                self.unsynced = false;
                if !self.copy_ended {
                    self.copy_syncs += 1;
                }
            }
            frontend_tag::EXECUTE => {
                self.unsynced = true;
                self.start_request();
            }
            // Parse, Bind, Describe, Close, Flush.
            frontend_tag::PARSE
            | frontend_tag::BIND
            | frontend_tag::DESCRIBE
            | frontend_tag::CLOSE
            | frontend_tag::FLUSH => self.unsynced = true,
            // CopyDone, CopyFail: Postgres reads Syncs again after these.
            frontend_tag::COPY_DONE | frontend_tag::COPY_FAIL => {
                self.frontend_copy_in = false;
                self.copy_ended = true;
            }
            _ => {}
        }
    }

    fn start_request(&mut self) {
        self.copy_syncs = 0;
        self.copy_ended = false;
    }

    /// Postgres ignores this frontend message: a Sync or Flush sent in copy-in mode. The relay
    /// forwards it without expecting any reply.
    pub(crate) fn ignored_in_copy(&self, tag: u8) -> bool {
        self.frontend_copy_in && matches!(tag, frontend_tag::SYNC | frontend_tag::FLUSH)
    }

    /// CopyInResponse (or CopyBothResponse): the Syncs sent after the request that started the
    /// copy, and before the frontend ended it, were read in copy-in mode and earn nothing.
    fn copy_in_started(&mut self) {
        self.copy_in = true;
        let ignored = self.copy_syncs.min(self.outstanding);
        self.outstanding -= ignored;
        self.ignored_syncs = ignored;
        self.copy_syncs = 0;
        self.frontend_copy_in = !self.copy_ended;
    }

    /// The Syncs the last CopyInResponse made void, once: the reply plan drops their entries.
    pub(crate) fn take_ignored_syncs(&mut self) -> u32 {
        std::mem::take(&mut self.ignored_syncs)
    }

    /// A backend message (server → client) arrived; `body` is present for the tags in
    /// [`backend_must_buffer`].
    pub(crate) fn backend(&mut self, tag: u8, body: Option<&[u8]>) {
        match tag {
            backend_tag::READY_FOR_QUERY => {
                self.outstanding = self.outstanding.saturating_sub(1);
                self.tx_status = body
                    .and_then(|b| b.first().copied())
                    .unwrap_or(tx_status::FAILED);
                self.copy_in = false;
                self.copy_out = false;
                self.frontend_copy_in = false;
            }
            backend_tag::COPY_IN_RESPONSE => self.copy_in_started(),
            backend_tag::COPY_OUT_RESPONSE => self.copy_out = true,
            backend_tag::COPY_BOTH_RESPONSE => {
                self.copy_in_started();
                self.copy_out = true;
            }
            backend_tag::COPY_DONE => self.copy_out = false,
            // An error ends copy-in mode; Postgres then skips to the next Sync, which counts.
            backend_tag::ERROR_RESPONSE => self.frontend_copy_in = false,
            _ => {}
        }
    }

    /// Nothing owed, nothing half-sent, no transaction open: safe to hand to another client.
    pub(crate) fn is_idle(&self) -> bool {
        self.outstanding == 0
            && !self.unsynced
            && !self.copy_in
            && !self.copy_out
            && self.tx_status == TX_IDLE
    }
}

/// Backend messages whose bodies the relay reads: ReadyForQuery (status), ParameterStatus
/// (session state to remember), ErrorResponse (severity, for logging FATALs).
pub(crate) fn backend_must_buffer(tag: u8) -> bool {
    matches!(
        tag,
        backend_tag::READY_FOR_QUERY | backend_tag::PARAMETER_STATUS | backend_tag::ERROR_RESPONSE
    )
}

/// Frontend messages whose bodies the relay reads: Terminate only, for now.
pub(crate) fn frontend_must_buffer(tag: u8) -> bool {
    tag == frontend_tag::TERMINATE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_query_round_trip() {
        let mut t = Tracker::default();
        t.frontend(b'Q');
        assert!(!t.is_idle());
        t.backend(b'T', None);
        t.backend(b'Z', Some(b"T"));
        assert!(t.outstanding == 0 && !t.is_idle());
        t.frontend(b'Q');
        t.backend(b'Z', Some(b"I"));
        assert!(t.is_idle());
    }

    #[test]
    fn pipeline_owes_one_ready_per_sync() {
        let mut t = Tracker::default();
        for tag in [b'P', b'B', b'E', b'S', b'B', b'E', b'S'] {
            t.frontend(tag);
        }
        assert_eq!(t.outstanding, 2);
        t.backend(b'Z', Some(b"I"));
        assert!(!t.is_idle());
        t.backend(b'Z', Some(b"I"));
        assert!(t.is_idle());
    }

    #[test]
    fn unsynced_batch_and_copy_are_not_idle() {
        let mut t = Tracker::default();
        t.frontend(b'P');
        t.frontend(b'H');
        assert!(!t.is_idle());
        let mut t = Tracker::default();
        t.frontend(b'Q');
        t.backend(b'G', None);
        assert!(t.copy_in);
        t.frontend(b'd');
        t.frontend(b'c');
        t.backend(b'C', None);
        t.backend(b'Z', Some(b"I"));
        assert!(t.is_idle());
    }

    #[test]
    fn a_sync_sent_with_the_execute_of_copy_from_stdin_earns_nothing() {
        // tokio-postgres: Bind, Execute, Sync; CopyInResponse; CopyData, CopyDone, Sync.
        // Postgres reads the first Sync in copy-in mode and ignores it: one ReadyForQuery.
        let mut t = Tracker::default();
        for tag in [b'B', b'E', b'S'] {
            t.frontend(tag);
        }
        t.backend(b'2', None);
        t.backend(b'G', None);
        assert_eq!((t.outstanding, t.take_ignored_syncs()), (0, 1));
        t.frontend(b'd');
        t.frontend(b'H');
        t.frontend(b'S');
        assert_eq!(t.outstanding, 0, "Flush and Sync mid-copy are ignored too");
        t.frontend(b'c');
        t.frontend(b'S');
        assert!(!t.is_idle());
        t.backend(b'C', None);
        t.backend(b'Z', Some(b"I"));
        assert!(t.is_idle(), "{t:?}");
        assert_eq!(t.take_ignored_syncs(), 0);
    }

    #[test]
    fn a_copy_ended_before_copy_in_response_keeps_the_final_sync() {
        // Everything pipelined: only the Sync before CopyDone is ignored.
        let mut t = Tracker::default();
        for tag in [b'B', b'E', b'S', b'd', b'c', b'S'] {
            t.frontend(tag);
        }
        t.backend(b'G', None);
        assert_eq!((t.outstanding, t.take_ignored_syncs()), (1, 1));
        assert!(!t.ignored_in_copy(b'S'));
        t.backend(b'C', None);
        t.backend(b'Z', Some(b"I"));
        assert!(t.is_idle());
    }

    #[test]
    fn an_error_in_copy_in_makes_the_next_sync_count() {
        let mut t = Tracker::default();
        for tag in [b'B', b'E', b'S'] {
            t.frontend(tag);
        }
        t.backend(b'G', None);
        t.frontend(b'd');
        t.backend(b'E', None);
        // The client answers the error with a Sync, no CopyDone: Postgres owes ReadyForQuery.
        t.frontend(b'S');
        assert_eq!(t.outstanding, 1);
        t.backend(b'Z', Some(b"I"));
        assert!(t.is_idle());
    }

    #[test]
    fn copy_by_simple_query_after_a_synced_batch_ignores_nothing() {
        let mut t = Tracker::default();
        for tag in [b'B', b'E', b'S'] {
            t.frontend(tag);
        }
        t.backend(b'C', None);
        t.backend(b'Z', Some(b"I"));
        t.frontend(b'Q');
        t.backend(b'G', None);
        assert_eq!((t.outstanding, t.take_ignored_syncs()), (1, 0));
        t.frontend(b'd');
        t.frontend(b'c');
        t.backend(b'C', None);
        t.backend(b'Z', Some(b"I"));
        assert!(t.is_idle());
    }
}

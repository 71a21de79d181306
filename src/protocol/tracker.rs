//! What Postgres still owes a connection, read off the messages passing through.
//!
//! Every simple Query, FunctionCall and Sync earns exactly one ReadyForQuery (PostgreSQL docs
//! "Message Flow"); extended-protocol messages sent without a Sync leave the server mid-batch;
//! COPY sub-protocols end with ReadyForQuery. A server is reusable by someone else only when
//! `is_idle()` — invariant 1 of ARCHITECTURE.md.

/// Transaction status bytes of ReadyForQuery.
pub(crate) const TX_IDLE: u8 = b'I';

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
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker {
            outstanding: 0,
            unsynced: false,
            tx_status: TX_IDLE,
            copy_in: false,
            copy_out: false,
        }
    }
}

impl Tracker {
    /// A frontend message (client → server) is being forwarded.
    pub(crate) fn frontend(&mut self, tag: u8) {
        match tag {
            b'Q' | b'F' => self.outstanding += 1,
            b'S' => {
                self.outstanding += 1;
                self.unsynced = false;
            }
            // Parse, Bind, Describe, Execute, Close, Flush.
            b'P' | b'B' | b'D' | b'E' | b'C' | b'H' => self.unsynced = true,
            _ => {}
        }
    }

    /// A backend message (server → client) arrived; `body` is present for the tags in
    /// [`backend_must_buffer`].
    pub(crate) fn backend(&mut self, tag: u8, body: Option<&[u8]>) {
        match tag {
            b'Z' => {
                self.outstanding = self.outstanding.saturating_sub(1);
                self.tx_status = body.and_then(|b| b.first().copied()).unwrap_or(b'E');
                self.copy_in = false;
                self.copy_out = false;
            }
            b'G' => self.copy_in = true,
            b'H' => self.copy_out = true,
            b'W' => {
                self.copy_in = true;
                self.copy_out = true;
            }
            b'c' => self.copy_out = false,
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
    matches!(tag, b'Z' | b'S' | b'E')
}

/// Frontend messages whose bodies the relay reads: Terminate only, for now.
pub(crate) fn frontend_must_buffer(tag: u8) -> bool {
    tag == b'X'
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
}

//! Protocol-level prepared statements in transaction and statement mode: each
//! client keeps its own statement names (`client`), statements are interned pooler-wide under
//! one server-side name (`registry`), and each server connection tracks what is prepared on it
//! in a bounded LRU (`server`). Pure bookkeeping, no I/O; the relay drives it.

mod client;
mod registry;
mod server;

use std::sync::atomic::{AtomicU64, Ordering};

use crate::protocol::sqlstate;

pub(crate) use self::{
    client::ClientStatements,
    registry::{Registry, Statement},
    server::ServerStatements,
};

/// A client tried to keep more prepared statements than its limits allow. The text is safe
/// to send to the client: it names the limit and the numbers, never the query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LimitError {
    #[error(
        "too many prepared statements on this connection: {count} already prepared, the limit \
         is {max}; close (DEALLOCATE) statements that are no longer needed"
    )]
    Count { count: usize, max: usize },
    #[error(
        "prepared statements on this connection would hold {needed} bytes of names and query \
         text, over the limit of {max} bytes; close (DEALLOCATE) statements that are no \
         longer needed"
    )]
    Bytes { needed: usize, max: usize },
}

impl LimitError {
    /// The SQLSTATE of the ErrorResponse sent to the client.
    pub(crate) fn sqlstate(&self) -> &'static str {
        sqlstate::CONFIGURATION_LIMIT_EXCEEDED
    }
}

/// Pooler-wide prepared statement counters for the admin console and metrics.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Parse messages with a statement name received from clients.
    pub(crate) client_parses: AtomicU64,
    /// Parse messages pgsluice sent to servers (forwarded or injected).
    pub(crate) server_parses: AtomicU64,
    /// Bind messages to named statements, renamed on the way.
    pub(crate) binds: AtomicU64,
    /// Statements closed on a server to stay within max_prepared_statements.
    pub(crate) evictions: AtomicU64,
}

/// A point-in-time copy of `Counters`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(dead_code, reason = "read by the admin console and metrics")]
pub(crate) struct CountersSnapshot {
    pub(crate) client_parses: u64,
    pub(crate) server_parses: u64,
    pub(crate) binds: u64,
    pub(crate) evictions: u64,
}

impl Counters {
    /// Adds `n` to one counter; counters are statistics, so relaxed ordering is enough.
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    #[allow(dead_code, reason = "read by the admin console and metrics")]
    pub(crate) fn snapshot(&self) -> CountersSnapshot {
        CountersSnapshot {
            client_parses: self.client_parses.load(Ordering::Relaxed),
            server_parses: self.server_parses.load(Ordering::Relaxed),
            binds: self.binds.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_errors_name_the_numbers() {
        let err = LimitError::Count { count: 3, max: 3 };
        assert_eq!(err.sqlstate(), "53400");
        assert!(err
            .to_string()
            .contains("3 already prepared, the limit is 3"));
        let err = LimitError::Bytes {
            needed: 1200,
            max: 1000,
        };
        assert_eq!(err.sqlstate(), "53400");
        assert!(err.to_string().contains("1200 bytes"));
        assert!(err.to_string().contains("limit of 1000 bytes"));
    }

    #[test]
    fn counters_add_and_snapshot() {
        let counters = Counters::default();
        Counters::add(&counters.client_parses, 2);
        Counters::add(&counters.binds, 5);
        Counters::add(&counters.evictions, 1);
        assert_eq!(
            counters.snapshot(),
            CountersSnapshot {
                client_parses: 2,
                server_parses: 0,
                binds: 5,
                evictions: 1
            }
        );
    }
}

//! A lease on one server slot of a pool. Slots are counted, not servers: whoever holds a
//! Lease holds one unit of pool_size, with or without a connection yet. Dropping a Lease
//! in any way (error, panic, a cancelled waiter) gives the slot back, so a pool can never
//! leak capacity; a connection dropped with it is closed unless it was never used.

use std::sync::Arc;

use super::Pool;
use crate::server::ServerConn;

pub(crate) struct Lease {
    pub(super) pool: Option<Arc<Pool>>,
    pub(super) conn: Option<ServerConn>,
    /// Handed over from the idle list and not touched since: safe to put back as is.
    pub(super) untouched: bool,
}

impl Lease {
    pub(super) fn slot(pool: Arc<Pool>) -> Lease {
        Lease {
            pool: Some(pool),
            conn: None,
            untouched: false,
        }
    }

    /// The server, for use by one client. From here on the connection is assumed dirty
    /// until checked in through a reset.
    pub(crate) fn server(&mut self) -> &mut ServerConn {
        self.untouched = false;
        self.conn
            .as_mut()
            .expect("a lease handed to a client holds a server")
    }

    pub(crate) fn pool(&self) -> &Arc<Pool> {
        self.pool.as_ref().expect("live lease has a pool")
    }

    /// Closes the server and frees the slot (a server in an unknown state).
    pub(crate) fn discard(mut self) {
        if let Some(conn) = self.conn.take() {
            conn.stats().count_closed("error");
        }
    }

    /// Detaches the pool without freeing the slot: the caller moved the slot elsewhere.
    pub(super) fn disarm(&mut self) -> Option<ServerConn> {
        self.pool = None;
        self.conn.take()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(pool) = self.pool.take() else { return };
        match self.conn.take() {
            Some(conn) if self.untouched => pool.put_back(conn),
            _ => pool.slot_freed(),
        }
    }
}

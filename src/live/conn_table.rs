//! The table of live connections of one kind (clients or servers): a record is registered
//! when the connection starts and leaves when its `Registration` drops, however the
//! connection ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use super::conn_info::{ConnInfo, ConnState, Endpoints};

/// All live connections of one kind.
#[derive(Debug, Default)]
pub(crate) struct ConnTable {
    conns: Mutex<HashMap<u64, Weak<ConnInfo>>>,
}

/// Keeps a record in its table for as long as the connection lives.
#[derive(Debug)]
pub(crate) struct Registration {
    info: Arc<ConnInfo>,
    table: Arc<ConnTable>,
}

impl ConnTable {
    pub(crate) fn register(
        self: &Arc<Self>,
        id: u64,
        user: &str,
        database: &str,
        ends: Endpoints,
        state: ConnState,
    ) -> Registration {
        let info = Arc::new(ConnInfo::new(id, user, database, ends, state));
        self.conns
            .lock()
            .expect("connection table lock")
            .insert(id, Arc::downgrade(&info));
        Registration {
            info,
            table: self.clone(),
        }
    }

    /// Every live connection, oldest first.
    pub(crate) fn list(&self) -> Vec<Arc<ConnInfo>> {
        let mut all: Vec<_> = self
            .conns
            .lock()
            .expect("connection table lock")
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        all.sort_by_key(|c| c.id);
        all
    }

    /// Server connections per server address (`ConnInfo::server_address`), by state: what
    /// host ordering, SHOW HOSTS and the host metrics count.
    pub(crate) fn by_server_address(&self) -> HashMap<String, HashMap<ConnState, usize>> {
        let mut out: HashMap<String, HashMap<ConnState, usize>> = HashMap::new();
        for info in self.list() {
            *out.entry(info.server_address())
                .or_default()
                .entry(info.state())
                .or_default() += 1;
        }
        out
    }

    pub(crate) fn get(&self, id: u64) -> Option<Arc<ConnInfo>> {
        self.conns
            .lock()
            .expect("connection table lock")
            .get(&id)
            .and_then(Weak::upgrade)
    }
}

impl Registration {
    pub(crate) fn info(&self) -> &Arc<ConnInfo> {
        &self.info
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut conns) = self.table.conns.lock() {
            conns.remove(&self.info.id);
        }
    }
}

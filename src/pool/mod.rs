//! Server pools keyed by (database, user): the registry that finds or creates them, and the
//! errors checkout reports. The pool itself (idle list, FIFO waiters, slot accounting) is in
//! `server_pool`; the guard that keeps slot counts exact whatever happens is in `lease`.

mod lease;
mod server_pool;
mod settings;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) use lease::Lease;
pub(crate) use server_pool::Pool;
pub(crate) use settings::PoolSettings;

use crate::server::ServerError;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PoolKey {
    /// The database name clients ask for (a [databases] section or "*" match).
    pub(crate) database: String,
    pub(crate) user: String,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum PoolError {
    #[error("no server connection available for pool {database}/{user} within query_wait_timeout ({:.1}s): all {size} servers are busy; raise pool_size or query_wait_timeout", .waited.as_secs_f64())]
    WaitTimeout {
        database: String,
        user: String,
        waited: Duration,
        size: usize,
    },
    #[error(transparent)]
    Server(#[from] ServerError),
}

impl PoolError {
    pub(crate) fn sqlstate(&self) -> &str {
        match self {
            PoolError::WaitTimeout { .. } => "53300",
            PoolError::Server(e) => e.sqlstate(),
        }
    }
}

/// All pools of this process.
#[derive(Default)]
pub(crate) struct PoolRegistry {
    pools: Mutex<HashMap<PoolKey, Arc<Pool>>>,
    next_server_id: Arc<AtomicU64>,
}

impl PoolRegistry {
    /// The pool for `key`, created with `settings()` on first use.
    pub(crate) fn get_or_create(
        &self,
        key: &PoolKey,
        settings: impl FnOnce() -> PoolSettings,
    ) -> Arc<Pool> {
        let mut pools = self.pools.lock().expect("pool registry lock");
        if let Some(p) = pools.get(key) {
            return p.clone();
        }
        let pool = Arc::new(Pool::new(
            key.clone(),
            settings(),
            self.next_server_id.clone(),
        ));
        pools.insert(key.clone(), pool.clone());
        pool
    }

    pub(crate) fn all(&self) -> Vec<Arc<Pool>> {
        self.pools
            .lock()
            .expect("pool registry lock")
            .values()
            .cloned()
            .collect()
    }

    /// Closes every idle server (shutdown).
    pub(crate) fn close_idle(&self) {
        for pool in self.all() {
            pool.close_idle();
        }
    }
}

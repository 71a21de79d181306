//! Server pools keyed by (database, user): the registry that finds or creates them, admits
//! clients under max_db/user_client_connections, and the errors checkout reports. Bookkeeping
//! for every pool (idle lists, FIFO waiters, shared max_db/user_connections budgets) lives in
//! one `ledger` behind one short lock; `server_pool` is a pool's async side, `lease` the guard
//! that keeps counts exact whatever happens, `maintenance` the once-a-second upkeep.

mod auth_lookup;
mod backoff;
mod budget;
mod clients;
mod connect;
pub(crate) mod contention;
mod health;
pub(crate) mod hosts;
mod lease;
mod ledger;
mod login_report;
mod maintenance;
mod server_pool;
mod settings;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) use clients::ClientSlot;
pub(crate) use lease::Lease;
#[allow(unused_imports, reason = "for the admin console's SHOW POOLS")]
pub(crate) use ledger::Counts;
pub(crate) use login_report::Report;
pub(crate) use maintenance::MAINTENANCE_PERIOD;
pub(crate) use server_pool::Pool;
pub(crate) use settings::PoolSettings;

use crate::auth::Userlist;
use crate::config::Config;
use crate::live::{ConnTable, PoolHistograms, TrafficStats};
use crate::protocol::sqlstate;
use crate::server::ServerError;
use crate::tls::ServerTls;
use clients::ClientCounts;
use server_pool::SharedLedger;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PoolKey {
    /// The database name clients ask for (a [databases] section or "*" match).
    pub(crate) database: String,
    pub(crate) user: String,
}

impl PoolKey {
    /// The pool a client of `user` logging in to `database` belongs to. As PgBouncer, a
    /// database with a forced `user` has one pool for all its clients, named after that user.
    pub(crate) fn for_client(config: &Config, database: &str, user: &str) -> PoolKey {
        let forced = config.database(database).and_then(|d| d.user.clone());
        PoolKey {
            database: database.to_string(),
            user: forced.unwrap_or_else(|| user.to_string()),
        }
    }
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
    #[error("could not reach the server of pool {database}/{user} within query_wait_timeout ({:.1}s): {cause}", .waited.as_secs_f64())]
    Unreachable {
        database: String,
        user: String,
        waited: Duration,
        cause: String,
    },
    #[error("{message} (the server refused a login {:.0}s ago; pgsluice tries again after server_login_retry)", .ago.as_secs_f64())]
    LoginRetry {
        code: String,
        message: String,
        ago: Duration,
    },
    #[error("no more connections allowed for {what} ({setting} = {limit})")]
    TooManyClients {
        setting: &'static str,
        what: String,
        limit: usize,
    },
    #[error(transparent)]
    Server(#[from] ServerError),
}

impl PoolError {
    pub(crate) fn sqlstate(&self) -> &str {
        match self {
            PoolError::WaitTimeout { .. } | PoolError::TooManyClients { .. } => {
                sqlstate::TOO_MANY_CONNECTIONS
            }
            // connection_failure: Postgres itself is unreachable, not merely busy.
            PoolError::Unreachable { .. } => sqlstate::CONNECTION_FAILURE,
            PoolError::LoginRetry { code, .. } => code,
            PoolError::Server(e) => e.sqlstate(),
        }
    }
}

/// The pools by key, and by ledger id (the ledger's order).
#[derive(Default)]
struct Pools {
    by_key: HashMap<PoolKey, Arc<Pool>>,
    by_id: Vec<Arc<Pool>>,
}

/// All pools of this process.
#[derive(Default)]
pub(crate) struct PoolRegistry {
    pools: Mutex<Pools>,
    ledger: SharedLedger,
    clients: Arc<Mutex<ClientCounts>>,
    next_server_id: Arc<AtomicU64>,
    /// Every open server connection, for SHOW SERVERS.
    pub(crate) servers: Arc<ConnTable>,
    /// auth_query lookups, with connections and a cache of their own.
    pub(crate) auth_lookup: auth_lookup::AuthLookup,
    /// What is known of every database host (roles, lag, failover holds).
    pub(crate) hosts: Arc<hosts::HostRegistry>,
    /// The host registry's role changes already acted on by the maintenance pass.
    roles_seen: AtomicU64,
    /// Whether pools record duration histograms (metrics are on).
    histograms: bool,
}

impl PoolRegistry {
    /// `histograms`: each new pool records its duration histograms (metrics are on).
    pub(crate) fn new(histograms: bool) -> PoolRegistry {
        PoolRegistry {
            histograms,
            ..PoolRegistry::default()
        }
    }

    /// The pool for `key`, created with `settings()` on first use.
    pub(crate) fn get_or_create(
        &self,
        key: &PoolKey,
        settings: impl FnOnce() -> PoolSettings,
    ) -> Arc<Pool> {
        let mut pools = self.pools.lock().expect("pool registry lock");
        if let Some(p) = pools.by_key.get(key) {
            return p.clone();
        }
        let settings = settings();
        let id = self.ledger.lock().expect("pool ledger lock").register(
            &key.database,
            &settings.server_user,
            settings.limits(),
        );
        debug_assert_eq!(id, pools.by_id.len());
        let pool = Arc::new(Pool::new(
            key.clone(),
            id,
            settings,
            server_pool::Common {
                ledger: self.ledger.clone(),
                ids: self.next_server_id.clone(),
                servers: self.servers.clone(),
                hosts: self.hosts.clone(),
            },
            TrafficStats::with_histograms(if self.histograms {
                PoolHistograms::enabled()
            } else {
                PoolHistograms::default()
            }),
        ));
        pools.by_key.insert(key.clone(), pool.clone());
        pools.by_id.push(pool.clone());
        pool
    }

    pub(crate) fn all(&self) -> Vec<Arc<Pool>> {
        self.pools.lock().expect("pool registry lock").by_id.clone()
    }

    /// Counts a client logging in to `database` as `user`, or refuses it (SQLSTATE 53300)
    /// past max_db_client_connections / max_user_client_connections. Keep the slot for as
    /// long as the client is connected.
    pub(crate) fn admit_client(
        &self,
        config: &Config,
        database: &str,
        user: &str,
    ) -> Result<ClientSlot, PoolError> {
        self.clients.lock().expect("client counts lock").admit(
            database,
            user,
            config.max_db_client_connections_for(database),
            config.max_user_client_connections_for(user),
        )?;
        Ok(ClientSlot {
            counts: self.clients.clone(),
            database: database.to_string(),
            user: user.to_string(),
        })
    }

    /// Clients admitted now: on `database` (all users), and of `user` (all databases).
    #[allow(dead_code, reason = "for the admin console and tests")]
    pub(crate) fn client_counts(&self, database: &str, user: &str) -> (usize, usize) {
        let c = self.clients.lock().expect("client counts lock");
        (c.on_database(database), c.of_user(user))
    }

    /// Re-resolves every pool's settings from a new configuration (reload). Pools whose
    /// database is gone keep their settings until their clients leave.
    pub(crate) fn reload(
        &self,
        config: &Config,
        userlist: Option<&Userlist>,
        tls: &Arc<ServerTls>,
    ) {
        for pool in self.all() {
            if let Some(db) = config.database(&pool.key.database) {
                pool.update_settings(PoolSettings::resolve(config, &pool.key, db, userlist, tls));
            }
        }
    }

    /// Closes every idle server (shutdown).
    pub(crate) fn close_idle(&self) {
        let closing = self
            .ledger
            .lock()
            .expect("pool ledger lock")
            .close_all_idle(Instant::now());
        server_pool::finish(closing);
    }
}

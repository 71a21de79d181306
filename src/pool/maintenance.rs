//! The maintenance pass over every pool, run by the app's background task each
//! MAINTENANCE_PERIOD: creates the pools of forced-user databases that want min_pool_size
//! (PgBouncer keeps those warm without clients), has each pool's ledger retire idle servers
//! (`ledger::upkeep`), and opens the servers min_pool_size asks for in background tasks. Never awaits while
//! holding a lock: the pass itself is synchronous and only spawns the connects.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::server_pool::finish;
use super::{PoolKey, PoolRegistry, PoolSettings};
use crate::auth::Userlist;
use crate::config::{Config, FALLBACK_DATABASE};
use crate::tls::ServerTls;

/// How often the maintenance task runs (PgBouncer's janitor runs a few times a second; one
/// second is plenty for timeouts counted in seconds).
pub(crate) const MAINTENANCE_PERIOD: Duration = Duration::from_secs(1);

impl PoolRegistry {
    /// One upkeep pass. Must run inside a tokio runtime (it spawns the warm-up connects).
    pub(crate) fn maintain(
        &self,
        config: &Config,
        userlist: Option<&Userlist>,
        tls: &Arc<ServerTls>,
    ) {
        self.create_forced_pools(config, userlist, tls);
        let pools = self.all();
        let with_clients: HashSet<usize> = {
            let counts = self.clients.lock().expect("client counts lock");
            pools
                .iter()
                .filter(|p| counts.of_pair(&p.key.database, &p.key.user) > 0)
                .map(|p| p.id)
                .collect()
        };
        let upkeep = self
            .ledger
            .lock()
            .expect("pool ledger lock")
            .upkeep(Instant::now(), |id| with_clients.contains(&id));
        finish(upkeep.closing);
        self.watch_hosts(&pools);
        for id in upkeep.open {
            let pool = pools
                .get(id)
                .cloned()
                .unwrap_or_else(|| self.all()[id].clone());
            tokio::spawn(pool.warm());
        }
    }

    /// Pools whose servers may sit on the wrong host after a role changed (a promotion, a
    /// standby past max_replica_lag) replace them; and each host of a pool that watches its
    /// hosts and has servers is looked at again every host_check_period.
    fn watch_hosts(&self, pools: &[Arc<super::Pool>]) {
        let changes = self.hosts.role_changes.load(Ordering::Relaxed);
        let changed = self.roles_seen.swap(changes, Ordering::Relaxed) != changes;
        for pool in pools {
            let s = pool.settings();
            if !s.watches_hosts() {
                continue;
            }
            if changed {
                pool.reconnect();
            }
            if s.host_check_period.is_zero() || pool.counts().open == 0 {
                continue;
            }
            for address in &s.addresses {
                if self.hosts.start_check(address, s.host_check_period) {
                    tokio::spawn(pool.clone().check_host(address.clone()));
                }
            }
        }
    }

    /// A forced-user database with min_pool_size has its pool from the start, keyed as
    /// `PoolKey::for_client` keys its clients.
    fn create_forced_pools(
        &self,
        config: &Config,
        userlist: Option<&Userlist>,
        tls: &Arc<ServerTls>,
    ) {
        for (name, db) in &config.databases {
            let Some(user) = &db.user else { continue };
            if name == FALLBACK_DATABASE || config.min_pool_size_for(name) == 0 {
                continue;
            }
            let key = PoolKey {
                database: name.clone(),
                user: user.clone(),
            };
            self.get_or_create(&key, || {
                PoolSettings::resolve(config, &key, db, userlist, tls)
            });
        }
    }
}

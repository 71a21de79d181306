//! Client counts per database and per user, for max_db_client_connections and
//! max_user_client_connections (PgBouncer: a client past either limit is refused at login), and
//! per (database, user) so min_pool_size knows which pools have clients. The client login code
//! calls `PoolRegistry::admit_client`; the `ClientSlot` it gets back keeps the counts exact
//! however the client ends, because dropping it is the only way to uncount.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::PoolError;

#[derive(Debug, Default)]
pub(crate) struct ClientCounts {
    by_db: HashMap<String, usize>,
    by_user: HashMap<String, usize>,
    by_pair: HashMap<(String, String), usize>,
}

impl ClientCounts {
    /// Counts one more client of `db`/`user` unless a limit (0 = unlimited) is reached.
    pub(crate) fn admit(
        &mut self,
        db: &str,
        user: &str,
        db_limit: usize,
        user_limit: usize,
    ) -> Result<(), PoolError> {
        let on_db = self.by_db.get(db).copied().unwrap_or(0);
        if db_limit > 0 && on_db >= db_limit {
            return Err(PoolError::TooManyClients {
                setting: "max_db_client_connections",
                what: format!("database \"{db}\""),
                limit: db_limit,
            });
        }
        let of_user = self.by_user.get(user).copied().unwrap_or(0);
        if user_limit > 0 && of_user >= user_limit {
            return Err(PoolError::TooManyClients {
                setting: "max_user_client_connections",
                what: format!("user \"{user}\""),
                limit: user_limit,
            });
        }
        *self.by_db.entry(db.to_string()).or_default() += 1;
        *self.by_user.entry(user.to_string()).or_default() += 1;
        *self
            .by_pair
            .entry((db.to_string(), user.to_string()))
            .or_default() += 1;
        Ok(())
    }

    fn leave(&mut self, db: &str, user: &str) {
        fn down<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
            if let Some(n) = map.get_mut(key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(key);
                }
            }
        }
        down(&mut self.by_db, &db.to_string());
        down(&mut self.by_user, &user.to_string());
        down(&mut self.by_pair, &(db.to_string(), user.to_string()));
    }

    pub(crate) fn on_database(&self, db: &str) -> usize {
        self.by_db.get(db).copied().unwrap_or(0)
    }

    pub(crate) fn of_user(&self, user: &str) -> usize {
        self.by_user.get(user).copied().unwrap_or(0)
    }

    pub(crate) fn of_pair(&self, db: &str, user: &str) -> usize {
        self.by_pair
            .get(&(db.to_string(), user.to_string()))
            .copied()
            .unwrap_or(0)
    }
}

/// One admitted client; dropping it (however the client ends) gives its place back.
#[derive(Debug)]
pub(crate) struct ClientSlot {
    pub(super) counts: Arc<Mutex<ClientCounts>>,
    pub(super) database: String,
    pub(super) user: String,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.counts
            .lock()
            .expect("client counts lock")
            .leave(&self.database, &self.user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_apply_per_database_and_per_user_and_zero_is_unlimited() {
        let mut c = ClientCounts::default();
        c.admit("roster", "alice", 2, 0).unwrap();
        c.admit("roster", "bob", 2, 0).unwrap();
        let e = c.admit("roster", "carol", 2, 0).unwrap_err();
        assert_eq!(e.sqlstate(), "53300");
        assert!(
            e.to_string().contains("max_db_client_connections = 2"),
            "{e}"
        );
        assert!(e.to_string().contains("database \"roster\""), "{e}");
        // Another database is not affected; the user limit is.
        c.admit("pos", "alice", 0, 2).unwrap();
        let e = c.admit("billing", "alice", 0, 2).unwrap_err();
        assert!(
            e.to_string().contains("max_user_client_connections = 2"),
            "{e}"
        );
        assert_eq!(c.on_database("roster"), 2);
        assert_eq!(c.of_user("alice"), 2);
        assert_eq!(c.of_pair("roster", "alice"), 1);
        // A refused client is not counted.
        assert_eq!(c.on_database("billing"), 0);
        c.leave("roster", "bob");
        c.admit("roster", "carol", 2, 0).unwrap();
    }

    #[test]
    fn the_registry_admits_by_config_and_a_dropped_slot_frees_its_place() {
        use crate::config::Config;
        use crate::pool::PoolRegistry;
        let config = Config::parse(
            "[pooler]\nmax_user_client_connections = 3\n\
             [databases.roster]\nmax_db_client_connections = 1\n[databases.pos]\n\
             [users.kiosk]\nmax_user_client_connections = 1\n",
            std::path::Path::new(""),
        )
        .unwrap();
        let registry = PoolRegistry::default();
        let first = registry.admit_client(&config, "roster", "alice").unwrap();
        let e = registry.admit_client(&config, "roster", "bob").unwrap_err();
        assert_eq!(e.sqlstate(), "53300");
        assert!(
            e.to_string().contains("max_db_client_connections = 1"),
            "{e}"
        );
        // [users.kiosk] overrides [pooler]; other users get the global limit.
        let _kiosk = registry.admit_client(&config, "pos", "kiosk").unwrap();
        assert!(registry.admit_client(&config, "pos", "kiosk").is_err());
        let _a2 = registry.admit_client(&config, "pos", "alice").unwrap();
        let _a3 = registry.admit_client(&config, "pos", "alice").unwrap();
        let e = registry.admit_client(&config, "pos", "alice").unwrap_err();
        assert!(
            e.to_string().contains("max_user_client_connections = 3"),
            "{e}"
        );
        assert_eq!(registry.client_counts("roster", "alice"), (1, 3));
        drop(first);
        assert_eq!(registry.client_counts("roster", "alice"), (0, 2));
        let _bob = registry.admit_client(&config, "roster", "bob").unwrap();
    }
}

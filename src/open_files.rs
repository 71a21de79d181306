//! Open files (RLIMIT_NOFILE): every client and every server connection is a descriptor. At
//! start pgsluice raises its soft limit to the hard limit (a login shell's default soft limit
//! is 1024), and works out how many clients fit beside the servers the configuration may
//! open, so that a flood of clients never takes the descriptors server connections need:
//! clients past that many are refused at once with 53300, like those past max_client_conn.

use std::collections::BTreeSet;

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

use crate::config::{Config, FALLBACK_DATABASE};

/// Descriptors kept for pgsluice itself besides clients and servers: listeners, the metrics
/// endpoint and its scrapes, cancel requests forwarded to Postgres, configuration and
/// certificate files read on reload, standard streams.
pub(crate) const OWN_DESCRIPTORS: u64 = 64;

/// What an unlimited hard limit is raised to: Linux's default `fs.nr_open`.
const UNLIMITED_TARGET: u64 = 1 << 20;

/// The open-files limit before and after `raise`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Raised {
    pub(crate) before: u64,
    pub(crate) now: u64,
}

/// Raises the soft open-files limit to the hard limit; returns the limit before and after.
/// Failure to raise it is not fatal: pgsluice runs within the limit it has.
pub(crate) fn raise() -> Raised {
    let limit = getrlimit(Resource::Nofile);
    let before = limit.current.unwrap_or(u64::MAX);
    let target = limit.maximum.unwrap_or(UNLIMITED_TARGET);
    if target <= before {
        return Raised {
            before,
            now: before,
        };
    }
    let raised = Rlimit {
        current: Some(target),
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => Raised {
            before,
            now: target,
        },
        Err(e) => {
            tracing::warn!(error = %e, before, target, "could not raise the open files limit");
            Raised {
                before,
                now: before,
            }
        }
    }
}

/// The current soft open-files limit.
pub(crate) fn current_limit() -> u64 {
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// How many clients fit in the open-files limit beside the servers and pgsluice's own files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientRoom {
    /// Clients admitted at most: max_client_conn, or fewer when the limit does not allow it.
    pub(crate) clients: usize,
    /// Server connections the configuration may open at most.
    pub(crate) servers: u64,
    /// The soft open-files limit.
    pub(crate) limit: u64,
}

impl ClientRoom {
    /// Works out the room for clients under `config` with the users `auth_users` (from
    /// auth_file) and the soft open-files `limit`.
    pub(crate) fn new<'a>(
        config: &Config,
        auth_users: impl Iterator<Item = &'a str>,
        limit: u64,
    ) -> ClientRoom {
        let servers = max_servers(config, auth_users);
        let spare = limit.saturating_sub(servers.saturating_add(OWN_DESCRIPTORS));
        let max = config.pooler.max_client_conn;
        let clients = usize::try_from(spare).unwrap_or(usize::MAX).min(max);
        ClientRoom {
            clients,
            servers,
            limit,
        }
    }

    /// False when max_client_conn clients and every server cannot all be open at once.
    pub(crate) fn fits(&self, config: &Config) -> bool {
        self.clients >= config.pooler.max_client_conn
    }

    /// What to tell the DBA when they do not fit; None when they do.
    pub(crate) fn warning(&self, config: &Config) -> Option<String> {
        (!self.fits(config)).then(|| {
            format!(
                "open files limit {} cannot hold max_client_conn = {} clients beside up to {} \
                 server connections and {} descriptors of pgsluice's own: clients past {} are \
                 refused with 53300; raise the hard limit (ulimit -Hn, systemd LimitNOFILE=) \
                 or lower max_client_conn",
                self.limit,
                config.pooler.max_client_conn,
                self.servers,
                OWN_DESCRIPTORS,
                self.clients
            )
        })
    }
}

/// Server connections the configuration may open: for every database, each user's pool
/// (pool size plus reserve), bounded by max_db_connections; the "*" fallback counts as one
/// database. Users are those of auth_file and of [users] (at least one), or the database's
/// forced user.
fn max_servers<'a>(config: &Config, auth_users: impl Iterator<Item = &'a str>) -> u64 {
    let mut users: BTreeSet<&str> = auth_users.collect();
    users.extend(config.users.keys().map(String::as_str));
    if users.is_empty() {
        users.insert("");
    }
    let mut total: u64 = 0;
    for (name, db) in &config.databases {
        let per_user = |user: &str| {
            let size = config.pool_size_for(name, user) + config.reserve_pool_for(name);
            size as u64
        };
        let mut servers: u64 = match &db.user {
            Some(forced) => per_user(forced),
            None => users.iter().map(|u| per_user(u)).sum(),
        };
        let db_limit = config.max_db_connections_for(name) as u64;
        if db_limit > 0 {
            servers = servers.min(db_limit);
        }
        if name == FALLBACK_DATABASE && servers == 0 {
            continue;
        }
        total = total.saturating_add(servers);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(text: &str) -> Config {
        Config::parse(text, Path::new(".")).unwrap()
    }

    #[test]
    fn servers_are_pools_times_users_bounded_per_database() {
        let c = config(
            "[pooler]\ndefault_pool_size = 10\nreserve_pool_size = 2\nmax_client_conn = 900\n\
             [databases.a]\n[databases.b]\nmax_db_connections = 5\n\
             [databases.forced]\nuser = \"app\"\npool_size = 3\n",
        );
        let room = ClientRoom::new(&c, ["u1", "u2"].into_iter(), 1024);
        // a: 2 users × 12; b: 24 bounded to 5; forced: 3 + 2.
        assert_eq!(room.servers, 24 + 5 + 5);
        assert_eq!(room.clients, 900);
        assert!(room.fits(&c));
        assert_eq!(room.warning(&c), None);
    }

    #[test]
    fn clients_past_what_fits_are_counted_out() {
        let c = config("[pooler]\nmax_client_conn = 5000\n[databases.a]\n");
        let room = ClientRoom::new(&c, ["u"].into_iter(), 1024);
        assert_eq!(room.servers, 20);
        assert_eq!(room.clients, 1024 - 20 - OWN_DESCRIPTORS as usize);
        assert!(!room.fits(&c));
        let warning = room.warning(&c).unwrap();
        assert!(warning.contains("open files limit 1024"), "{warning}");
        assert!(warning.contains("clients past 940"), "{warning}");
    }

    #[test]
    fn raising_never_lowers_the_limit() {
        let Raised { before, now } = raise();
        assert!(now >= before);
        assert_eq!(current_limit(), now);
    }
}

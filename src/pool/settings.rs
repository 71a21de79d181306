//! What one pool takes from pooler.toml and auth_file: where its servers are, which login
//! they use, how many there may be and for how long. Resolved when the pool is created (and
//! again on reload): the database's forced user/password if set (as PgBouncer), else the
//! client's own user with its auth_file secret. Limits use PgBouncer's names and precedence.
//! The server-side TLS in force rides along, so a reload that changes it replaces servers.

use std::sync::Arc;
use std::time::Duration;

use super::ledger::Limits;
use super::PoolKey;
use crate::auth::{Secret, Userlist};
use crate::config::{Config, DatabaseSettings, TargetSessionAttrs};
use crate::net::Address;
use crate::server::{Credential, LoginRequest};
use crate::tls::ServerTls;

#[derive(Debug, Clone)]
pub(crate) struct PoolSettings {
    /// The database's hosts, in the order written.
    pub(crate) addresses: Vec<Address>,
    /// Which of them its servers may be on.
    pub(crate) target: TargetSessionAttrs,
    /// A standby further behind than this is skipped; 0 = no limit.
    pub(crate) max_replica_lag: Duration,
    /// How long new transactions wait for a primary while none is found.
    pub(crate) failover_hold_timeout: Duration,
    /// How often each host's role and lag are looked at again; 0 = only at login.
    pub(crate) host_check_period: Duration,
    pub(crate) server_database: String,
    pub(crate) server_user: String,
    pub(crate) credential: Credential,
    pub(crate) size: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) query_wait_timeout: Duration,
    pub(crate) keepalive: bool,
    pub(crate) read_size: usize,
    /// Capacity of each server's prepared-statement cache (max_prepared_statements).
    pub(crate) max_prepared_statements: usize,
    pub(crate) connect_query: Option<String>,
    /// min_pool_size (the database's, else [pooler]'s), capped at `size` by the ledger.
    pub(crate) min_pool_size: usize,
    /// reserve_pool (the database's) else reserve_pool_size.
    pub(crate) reserve_pool_size: usize,
    pub(crate) reserve_pool_timeout: Duration,
    /// Budget over every pool of this database; 0 = unlimited.
    pub(crate) max_db_connections: usize,
    /// Budget over every pool of `server_user` (PgBouncer: the forced user, else the
    /// client's); 0 = unlimited.
    pub(crate) max_user_connections: usize,
    /// The database forces a server user: min_pool_size then holds without clients.
    pub(crate) forced_user: bool,
    pub(crate) server_idle_timeout: Duration,
    pub(crate) server_lifetime: Duration,
    pub(crate) server_check_delay: Duration,
    pub(crate) server_check_query: String,
    pub(crate) server_login_retry: Duration,
    /// server_tls_* as loaded at the last (re)load.
    pub(crate) tls: Arc<ServerTls>,
    /// Startup parameters every server of the pool logs in with (client_encoding...).
    pub(crate) server_params: Vec<(String, String)>,
}

impl PoolSettings {
    pub(crate) fn resolve(
        config: &Config,
        key: &PoolKey,
        db: &DatabaseSettings,
        userlist: Option<&Userlist>,
        tls: &Arc<ServerTls>,
    ) -> PoolSettings {
        let p = &config.pooler;
        let server_user = server_user_for(db, key);
        let credential = match (&db.password, userlist.and_then(|u| u.get(&server_user))) {
            (Some(password), _) => Credential::Password(password.clone()),
            (None, Some(Secret::Plain(password))) => Credential::Password(password.clone()),
            (None, Some(Secret::Md5(secret))) => Credential::Md5Secret(secret.clone()),
            // SCRAM secrets become usable once a client logs in with SCRAM (pass-through).
            (None, Some(Secret::Scram(_))) | (None, None) => Credential::None,
        };
        PoolSettings {
            addresses: db
                .addresses()
                .iter()
                .map(|(host, port)| Address::from_host_port(host, *port))
                .collect(),
            target: config.target_session_attrs_for(&key.database, &key.user),
            max_replica_lag: config.max_replica_lag_for(&key.database),
            failover_hold_timeout: p.failover.failover_hold_timeout,
            host_check_period: p.failover.host_check_period,
            server_database: db.dbname.clone().unwrap_or_else(|| key.database.clone()),
            server_user,
            credential,
            size: config.pool_size_for(&key.database, &key.user),
            connect_timeout: p.server_connect_timeout,
            query_wait_timeout: p.query_wait_timeout,
            keepalive: p.tcp_keepalive,
            read_size: p.pkt_buf,
            max_prepared_statements: p.max_prepared_statements,
            connect_query: db.connect_query.clone(),
            min_pool_size: config.min_pool_size_for(&key.database),
            reserve_pool_size: config.reserve_pool_for(&key.database),
            reserve_pool_timeout: p.reserve_pool_timeout,
            max_db_connections: config.max_db_connections_for(&key.database),
            max_user_connections: config.max_user_connections_for(&server_user_for(db, key)),
            forced_user: db.user.is_some(),
            server_idle_timeout: p.server_idle_timeout,
            server_lifetime: p.server_lifetime,
            server_check_delay: p.server_check_delay,
            server_check_query: p.server_check_query.clone(),
            server_login_retry: p.server_login_retry,
            tls: tls.clone(),
            server_params: db.server_params.clone(),
        }
    }

    /// The login of one server of this pool at `address` (server `id`).
    pub(crate) fn login_request<'a>(&'a self, id: u64, address: &'a Address) -> LoginRequest<'a> {
        LoginRequest {
            id,
            address,
            user: &self.server_user,
            database: &self.server_database,
            credential: &self.credential,
            connect_timeout: self.connect_timeout,
            keepalive: self.keepalive,
            read_size: self.read_size,
            max_prepared_statements: self.max_prepared_statements,
            tls: &self.tls,
            startup: &self.server_params,
        }
    }

    /// Whether its hosts need watching: several of them, or a target that depends on roles.
    pub(crate) fn watches_hosts(&self) -> bool {
        self.addresses.len() > 1 || self.target != TargetSessionAttrs::Any
    }

    /// The ledger's view of these settings.
    pub(crate) fn limits(&self) -> Limits {
        Limits {
            size: self.size,
            reserve: self.reserve_pool_size,
            reserve_timeout: self.reserve_pool_timeout,
            min: self.min_pool_size.min(self.size),
            min_without_clients: self.forced_user,
            idle_timeout: self.server_idle_timeout,
            lifetime: self.server_lifetime,
            login_retry: self.server_login_retry,
            db_limit: self.max_db_connections,
            user_limit: self.max_user_connections,
        }
    }
}

fn server_user_for(db: &DatabaseSettings, key: &PoolKey) -> String {
    db.user.clone().unwrap_or_else(|| key.user.clone())
}

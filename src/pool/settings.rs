//! What one pool takes from pooler.toml and auth_file: where its servers are, which login
//! they use, how many there may be. Resolved when the pool is created: the database's forced
//! user/password if set (as PgBouncer), else the client's own user with its auth_file secret.

use std::time::Duration;

use super::PoolKey;
use crate::auth::{Secret, Userlist};
use crate::config::{Config, DatabaseSettings};
use crate::net::Address;
use crate::server::Credential;

#[derive(Debug, Clone)]
pub(crate) struct PoolSettings {
    pub(crate) address: Address,
    pub(crate) server_database: String,
    pub(crate) server_user: String,
    pub(crate) credential: Credential,
    pub(crate) size: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) query_wait_timeout: Duration,
    pub(crate) keepalive: bool,
    pub(crate) read_size: usize,
    pub(crate) connect_query: Option<String>,
}

impl PoolSettings {
    pub(crate) fn resolve(
        config: &Config,
        key: &PoolKey,
        db: &DatabaseSettings,
        userlist: Option<&Userlist>,
    ) -> PoolSettings {
        let p = &config.pooler;
        let server_user = db.user.clone().unwrap_or_else(|| key.user.clone());
        let credential = match (&db.password, userlist.and_then(|u| u.get(&server_user))) {
            (Some(password), _) => Credential::Password(password.clone()),
            (None, Some(Secret::Plain(password))) => Credential::Password(password.clone()),
            (None, Some(Secret::Md5(secret))) => Credential::Md5Secret(secret.clone()),
            // SCRAM secrets become usable once a client logs in with SCRAM (pass-through).
            (None, Some(Secret::Scram(_))) | (None, None) => Credential::None,
        };
        PoolSettings {
            address: Address::from_host_port(&db.host, db.port),
            server_database: db.dbname.clone().unwrap_or_else(|| key.database.clone()),
            server_user,
            credential,
            size: config.pool_size_for(&key.database, &key.user),
            connect_timeout: p.server_connect_timeout,
            query_wait_timeout: p.query_wait_timeout,
            keepalive: p.tcp_keepalive,
            read_size: p.pkt_buf,
            connect_query: db.connect_query.clone(),
        }
    }
}

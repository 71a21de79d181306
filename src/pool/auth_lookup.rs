//! auth_query: the secret of a client that auth_file does not list, looked up in PostgreSQL
//! as PgBouncer does — `auth_user` logs in to `auth_dbname` (default: the database the client
//! asked for) and runs `auth_query` with the user name as its bound parameter $1, never
//! spliced into SQL. The lookups keep a few connections of their own per database, and
//! answers (a secret, or none) are cached for CACHE_FOR so a login storm costs one query.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{PoolKey, PoolSettings};
use crate::auth::{Secret, Userlist};
use crate::config::Config;
use crate::protocol::tracker::TX_IDLE;
use crate::server::{login, query_rows_with, ServerConn};
use crate::tls::ServerTls;

/// How long an answer is reused: a changed password is seen within this.
const CACHE_FOR: Duration = Duration::from_secs(5);
/// Idle lookup connections kept per (database, auth_user).
const IDLE_PER_DATABASE: usize = 2;

/// Where a lookup runs: the database section's hosts, the server database, the auth_user.
type Place = (String, String, String);
/// A cached answer for (database, user): when it was found, and the secret if any.
type Answer = (Instant, Option<Secret>);

#[derive(Default)]
pub(crate) struct AuthLookup {
    idle: Mutex<HashMap<Place, Vec<ServerConn>>>,
    cache: Mutex<HashMap<(String, String), Answer>>,
}

impl AuthLookup {
    /// The secret of `user` for a client of `database`: Ok(None) when auth_query finds no
    /// such user (or no password); Err with the cause when the lookup itself failed. Both
    /// end in the same 28P01 for the client; only the log says which.
    pub(crate) async fn secret(
        &self,
        config: &Config,
        userlist: Option<&Userlist>,
        tls: &Arc<ServerTls>,
        database: &str,
        user: &str,
    ) -> Result<Option<Secret>, String> {
        let cache_key = (database.to_string(), user.to_string());
        if let Some((at, secret)) = self.cache.lock().expect("auth cache").get(&cache_key) {
            if at.elapsed() < CACHE_FOR {
                return Ok(secret.clone());
            }
        }
        let a = &config.pooler.auth_query;
        let db = config
            .database(database)
            .ok_or_else(|| format!("no database {database:?} to run auth_query in"))?;
        let key = PoolKey {
            database: database.to_string(),
            user: config.auth_user_for(database).to_string(),
        };
        let mut s = PoolSettings::resolve(config, &key, db, userlist, tls);
        if !a.auth_dbname.is_empty() {
            s.server_database = a.auth_dbname.clone();
        }
        let place = (
            format!("{:?}", s.addresses),
            s.server_database.clone(),
            s.server_user.clone(),
        );
        let mut conn = match self.take_idle(&place) {
            Some(conn) => conn,
            None => login(s.login_request(0, &s.addresses[0]))
                .await
                .map_err(|e| format!("auth_user {} cannot log in: {e}", s.server_user))?,
        };
        let (rows, outcome) = query_rows_with(&mut conn, &a.auth_query, &[user])
            .await
            .map_err(|e| format!("auth_query failed: {e}"))?;
        if let Some((code, message)) = outcome.error {
            return Err(format!("auth_query failed: {code}: {message}"));
        }
        if outcome.tx_status == TX_IDLE && conn.is_between_messages() {
            self.give_back(place, conn);
        }
        let secret = rows
            .first()
            .and_then(|row| row.get(1).cloned().flatten())
            .filter(|s| !s.is_empty())
            .map(|s| Secret::parse(&s));
        self.cache
            .lock()
            .expect("auth cache")
            .insert(cache_key, (Instant::now(), secret.clone()));
        Ok(secret)
    }

    fn take_idle(&self, place: &Place) -> Option<ServerConn> {
        let mut idle = self.idle.lock().expect("auth lookup pool");
        while let Some(mut conn) = idle.get_mut(place)?.pop() {
            if conn.looks_alive() {
                return Some(conn);
            }
        }
        None
    }

    fn give_back(&self, place: Place, mut conn: ServerConn) {
        let mut idle = self.idle.lock().expect("auth lookup pool");
        let kept = idle.entry(place).or_default();
        if kept.len() < IDLE_PER_DATABASE {
            kept.push(conn);
        } else {
            conn.terminate_now();
        }
    }
}

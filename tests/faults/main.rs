//! When Postgres or the pool misbehaves: restarts, refused logins, contention and timeouts.

#[path = "../common/mod.rs"]
mod common;

mod server;
mod transaction;

//! Session state in transaction pooling, with PostgreSQL as the oracle: every scenario is
//! played straight to Postgres and through pgsluice, with the client moved between servers.

#[path = "../common/mod.rs"]
mod common;

mod differential;

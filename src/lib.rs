//! pgsluice: a PostgreSQL connection pooler.
//!
//! Data flow: listener (`app`) ─▶ `client` (startup, auth) ─▶ route (database, user → pool)
//! ─▶ `pool` checkout (FIFO wait queue, limits) ─▶ `server` (reuse idle / connect + login)
//! ─▶ `relay` (forward byte-exact, track what Postgres owes) ─▶ release (reset) ─▶ checkin.
//! Layers call downward only: protocol ← auth ← server/pool ← relay ← client ← app.
//!
//! `protocol` and `auth` are public because they are sans-io parsers that the fuzz targets and
//! benches drive directly; everything else is internal.
#![forbid(unsafe_code)]

pub(crate) mod admin;
pub mod app;
pub mod auth;
pub(crate) mod client;
pub mod config;
pub(crate) mod live;
pub(crate) mod metrics;
pub(crate) mod net;
pub(crate) mod pool;
pub(crate) mod prepared;
pub mod protocol;
pub(crate) mod relay;
pub(crate) mod server;
pub(crate) mod state;
pub(crate) mod tls;

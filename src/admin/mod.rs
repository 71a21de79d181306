//! Admin console, sans-io part: parse a simple-query string into a [`Command`], and render a
//! [`Snapshot`] of pools, clients, servers and stats as the exact result sets PgBouncer's
//! console sends (same command names, column names, column order and column types), so
//! pgbouncer_exporter, monitoring integrations and DBA runbooks keep working.
//! `session` runs the console over a client's socket, `gather` fills snapshots from live
//! state, `control` executes PAUSE/KILL/RELOAD/...; the other modules are sans-io.

pub(crate) mod command;
mod control;
pub(crate) mod error;
mod gather;
pub(crate) mod render;
mod result_set;
pub(crate) mod session;
pub(crate) mod snapshot;
mod timefmt;
mod tokens;

#[cfg(test)]
mod test_support;

pub(crate) use control::reload;
pub(crate) use error::AdminError;
pub(crate) use session::{serve, Role};

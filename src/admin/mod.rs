//! Admin console, sans-io part: parse a simple-query string into a [`Command`], and render a
//! [`Snapshot`] of pools, clients, servers and stats as the exact result sets PgBouncer's
//! console sends (same command names, column names, column order and column types), so
//! pgbouncer_exporter, monitoring integrations and DBA runbooks keep working.
//! Called by the console session loop, which checks access, executes control commands and
//! fills snapshots from live state; nothing here touches sockets or shared state.
#![allow(dead_code)] // wired by the console session

pub(crate) mod command;
pub(crate) mod error;
pub(crate) mod render;
mod render_conns;
mod render_stats;
pub(crate) mod snapshot;
mod timefmt;
mod tokens;

#[cfg(test)]
mod test_support;

// What the console session imports. `dead_code` does not cover re-exports, hence these
// `allow`s, to be removed with it once the session is wired.
#[allow(unused_imports)]
pub(crate) use command::{parse, Command, ShowWhat, ShutdownMode};
#[allow(unused_imports)]
pub(crate) use error::AdminError;
#[allow(unused_imports)]
pub(crate) use render::{help_text, set_ignored, show};
#[allow(unused_imports)]
pub(crate) use snapshot::{
    pause_state, ConfigRow, ConnRow, DatabaseRow, PoolRow, Snapshot, StatsRow, UserRow, LIST_NAMES,
};

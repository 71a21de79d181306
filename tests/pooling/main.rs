//! Pooling as clients meet it: the session, transaction and statement modes, their release
//! points, the pool and client limits, a connection's first moments, the command line and the
//! harness itself.

#[path = "../common/mod.rs"]
mod common;

mod cli;
mod client_limits;
mod daemon;
mod harness;
mod open_files;
mod pgbouncer_ini;
mod pool_limits;
mod release_points;
mod session;
mod startup;
mod transaction;

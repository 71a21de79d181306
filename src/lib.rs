//! pgsluice: a PostgreSQL connection pooler.
//!
//! Data flow: listener (`app`) ─▶ `client` (startup, auth) ─▶ route (database, user → pool)
//! ─▶ `pool` checkout (FIFO wait queue, limits) ─▶ `server` (reuse idle / connect + login)
//! ─▶ `relay` (forward byte-exact, track what Postgres owes) ─▶ release (reset) ─▶ checkin.
//! Layers call downward only: protocol ← auth ← server/pool ← notify/relay ← client ← app.
//!
//! `protocol`, `auth` and `config` are public because they are sans-io parsers that the fuzz
//! targets and benches drive directly; everything else is internal, except the one hidden entry
//! point below that lets fuzz/ reach the admin console's command parser.
#![forbid(unsafe_code)]

pub(crate) mod admin;
pub mod app;
pub mod auth;
pub(crate) mod client;
pub mod config;
pub(crate) mod histogram;
pub(crate) mod live;
pub(crate) mod metrics;
pub(crate) mod net;
pub(crate) mod notify;
pub(crate) mod open_files;
pub(crate) mod pool;
pub(crate) mod prepared;
pub mod process;
pub mod protocol;
pub(crate) mod relay;
pub(crate) mod server;
pub(crate) mod state;
pub(crate) mod tls;

/// Runs `clients` threads checking servers out of one pool of `servers` and back in,
/// `rounds` times each, on the real ledger without sockets; returns how many checkouts
/// waited. Exists only for `benches/pool.rs`; not a stable API.
#[doc(hidden)]
pub fn bench_pool_contention(clients: usize, servers: usize, rounds: usize) -> u64 {
    pool::contention::run(clients, servers, rounds)
}

/// Parses one admin console query exactly as a console session does with a Query body (lossy
/// UTF-8, trailing NULs trimmed) and returns the CommandComplete tag, or the SQLSTATE and
/// client-facing message of the error. Exists only for `fuzz/fuzz_targets/admin_command.rs`:
/// the console itself stays crate-private, and this is not a stable API.
#[doc(hidden)]
pub fn fuzz_admin_command(query_body: &[u8]) -> Result<String, (&'static str, String)> {
    let text = String::from_utf8_lossy(query_body);
    match admin::command::parse(text.trim_end_matches('\0')) {
        Ok(command) => Ok(command.tag()),
        Err(e) => Err((e.sqlstate(), e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fuzz_admin_command_reads_a_query_body_like_the_console() {
        assert_eq!(
            super::fuzz_admin_command(b"show pools;\0"),
            Ok("SHOW".into())
        );
        assert_eq!(
            super::fuzz_admin_command(b"SET default_pool_size = 5\0"),
            Ok("SET default_pool_size=5".into())
        );
        let (sqlstate, message) = super::fuzz_admin_command(b"SELECT 1\0").unwrap_err();
        assert_eq!(
            (sqlstate, message.as_str()),
            ("42601", "invalid command 'SELECT'")
        );
    }
}

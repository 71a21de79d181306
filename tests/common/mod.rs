//! Integration-test harness: a throwaway PostgreSQL (`pg`), a pgsluice process (`pooler`),
//! and client helpers. Each test group (`tests/<group>/main.rs`) includes it as `mod common;`
//! and uses what it needs, so items unused in one test binary are expected (hence the
//! `dead_code` allowance). See docs/architecture.md, "Tests": real server, real clients,
//! assertions on observable outcomes.
#![allow(dead_code)]

pub mod certs;
pub mod chaos;
pub mod chaos_proxy;
pub mod clients;
pub mod console;
pub mod differential;
pub mod pg;
pub mod pg_direct;
pub mod pgbin;
pub mod pgsetup;
pub mod pooler;
pub mod pooler_config;
pub mod raw;
pub mod raw_frontend;
pub mod raw_scram;
pub mod scripts;
pub mod tls;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

// Re-exports for `use common::*;` — each test binary uses a different subset.
#[allow(unused_imports)]
pub use clients::{
    connect_as, connect_with, md5_login, sqlstate, tcp_config, wait_until, wait_until_blocking,
    ConnTask,
};
#[allow(unused_imports)]
pub use pg::{shared_cluster, PgCluster, PgOptions};
#[allow(unused_imports)]
pub use pg_direct::backends_of;
#[allow(unused_imports)]
pub use pgbin::{pg_bindir, pg_tool};
#[allow(unused_imports)]
pub use pgsetup::*;
#[allow(unused_imports)]
pub use pooler::Pooler;
#[allow(unused_imports)]
pub use pooler_config::PoolerConfig;

/// A name no other test in any concurrently running test binary will pick: `prefix_pid_n`,
/// lower case so it is a valid unquoted SQL identifier.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}_{}_{n}", prefix.to_ascii_lowercase(), std::process::id())
}

/// A TCP port on 127.0.0.1 that was free a moment ago (callers retry if they lose the race).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}

/// A free TCP port below the ephemeral range (32768 and up), for a listener that must come
/// back on the same port after a restart: a port from the ephemeral range can meanwhile be
/// taken as the source port of some outgoing connection.
pub fn fixed_port() -> u16 {
    loop {
        let port = 20_000 + rand::random::<u16>() % 12_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The last `lines` lines of a log, for panic messages that must stay readable.
pub fn log_tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A log file's text so far (lossy UTF-8); empty if it does not exist yet.
pub fn read_log(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

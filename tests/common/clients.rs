//! Client-side helpers shared by tests: connecting with tokio-postgres, reading SQLSTATEs,
//! and waiting on conditions. Called by tests and by `pg.rs`/`pooler.rs`. Invariant: tests
//! never assert on timing — they poll a condition with a generous deadline and panic with a
//! description of what never happened.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_postgres::NoTls;

use super::pgsetup::{MD5_PASS, MD5_USER, TEST_DB};

/// The spawned connection task of a tokio-postgres client; its result says how it ended.
pub type ConnTask = JoinHandle<Result<(), tokio_postgres::Error>>;

/// TCP connection settings for `host:port` (Postgres or the pooler) with a short connect
/// timeout; add user, password, dbname, options.
pub fn tcp_config(host: &str, port: u16) -> tokio_postgres::Config {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(host)
        .port(port)
        .connect_timeout(Duration::from_secs(10));
    cfg
}

/// `cfg` logging in as md5_user to testdb, the login most tests use; add what the test is about.
pub fn md5_login(mut cfg: tokio_postgres::Config) -> tokio_postgres::Config {
    cfg.user(MD5_USER).password(MD5_PASS).dbname(TEST_DB);
    cfg
}

/// Logs in over `cfg` as `user` to `db`; None sends no password at all (a server that asks
/// for one then gets a client-side error, not a wrong password).
pub async fn connect_as(
    mut cfg: tokio_postgres::Config,
    user: &str,
    password: Option<&str>,
    db: &str,
) -> Result<(tokio_postgres::Client, ConnTask), tokio_postgres::Error> {
    cfg.user(user).dbname(db);
    if let Some(password) = password {
        cfg.password(password);
    }
    connect_with(&cfg).await
}

/// Connects without TLS and spawns the connection task on the current runtime.
pub async fn connect_with(
    cfg: &tokio_postgres::Config,
) -> Result<(tokio_postgres::Client, ConnTask), tokio_postgres::Error> {
    let (client, connection) = cfg.connect(NoTls).await?;
    Ok((client, tokio::spawn(connection)))
}

/// The SQLSTATE of a server-reported error ("28P01"...), None for I/O or client-side errors.
pub fn sqlstate(err: &tokio_postgres::Error) -> Option<&str> {
    err.code().map(|code| code.code())
}

/// Polls `condition` every 50 ms until it returns true; panics with `what` after `deadline`.
pub async fn wait_until<F, Fut>(what: &str, deadline: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = Instant::now() + deadline;
    loop {
        if condition().await {
            return;
        }
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `wait_until` for synchronous conditions (psql output, log contents, process state).
pub fn wait_until_blocking<F>(what: &str, deadline: Duration, mut condition: F)
where
    F: FnMut() -> bool,
{
    let end = Instant::now() + deadline;
    while !condition() {
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

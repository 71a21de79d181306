//! Talking to a harness cluster directly, bypassing the pooler: tokio-postgres clients, psql
//! as the superuser over the Unix socket, per-test databases. Called by tests for setup and for
//! checking what really reached Postgres (pg_stat_activity, table contents).
//! Invariant: nothing here goes through pgsluice.

use std::process::{Command, Output, Stdio};

use super::pg::PgCluster;
use super::pgbin::pg_tool;
use super::pgsetup::SUPERUSER;
use super::{connect_as, log_tail, tcp_config, ConnTask};

impl PgCluster {
    /// Connection settings for 127.0.0.1:port with a short connect timeout; add user/db.
    pub fn config(&self) -> tokio_postgres::Config {
        tcp_config(self.host(), self.port())
    }

    /// Connects straight to Postgres over TCP (no pooler); an empty password is not sent.
    pub async fn connect(
        &self,
        user: &str,
        password: &str,
        db: &str,
    ) -> Result<(tokio_postgres::Client, ConnTask), tokio_postgres::Error> {
        let password = (!password.is_empty()).then_some(password);
        connect_as(self.config(), user, password, db).await
    }

    /// A superuser client straight to Postgres (trusted on 127.0.0.1).
    pub async fn superuser_client(&self, db: &str) -> tokio_postgres::Client {
        match self.connect(SUPERUSER, "", db).await {
            Ok((client, _conn)) => client,
            Err(e) => panic!(
                "superuser connect to {db}: {e}\n{}",
                log_tail(&self.log(), 40)
            ),
        }
    }

    /// psql as the superuser over the Unix socket: `-X -v ON_ERROR_STOP=1` plus `args`.
    pub fn psql_direct(&self, db: &str, args: &[&str]) -> Output {
        Command::new(pg_tool("psql"))
            .args(["-X", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.socket_dir())
            .args(["-p", &self.port().to_string(), "-U", SUPERUSER, "-d", db])
            .args(args)
            .env_remove("PGOPTIONS")
            .env_remove("PGSERVICE")
            .stdin(Stdio::null())
            .output()
            .expect("spawn psql")
    }

    /// Runs `sql` as the superuser and returns its unaligned, tuples-only output; panics on error.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let out = self.psql_direct(db, &["-At", "-c", sql]);
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A fresh database like `testdb` (every role may connect and create in `public`), for
    /// tests that must not share tables with others, e.g. `pgbench -i`.
    pub fn create_database(&self, name: &str) {
        self.sql(
            "postgres",
            &format!("CREATE DATABASE {name} OWNER postgres"),
        );
        self.sql(
            "postgres",
            &format!("GRANT CONNECT, TEMPORARY ON DATABASE {name} TO PUBLIC"),
        );
        self.sql(name, "GRANT CREATE, USAGE ON SCHEMA public TO PUBLIC");
    }
}

/// Backends of `user` in `db` whose state matches the LIKE pattern `state` ("%" for all):
/// what a pooler logging in as `user` holds open on Postgres.
pub async fn backends_of(su: &tokio_postgres::Client, db: &str, user: &str, state: &str) -> i64 {
    su.query_one(
        "select count(*) from pg_stat_activity \
         where datname = $1 and usename = $2 and state like $3",
        &[&db, &user, &state],
    )
    .await
    .expect("count pg_stat_activity")
    .get(0)
}

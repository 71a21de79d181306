//! The systems under test, started once per bench run: a throwaway PostgreSQL
//! (max_connections 100, pgbench scale 10), pgsluice without and with metrics, and PgBouncer
//! when installed, all in front of the same cluster with the same user (md5 everywhere, so no
//! path gets a cheaper login). Used by `matrix` (throughput), `idle` and `profile`.

use std::process::Command;

use crate::common::{pg_tool, PgCluster, PgOptions, Pooler, PoolerConfig, MD5_PASS, MD5_USER};
use crate::options::Options;
use crate::pgbouncer::{Bouncer, BouncerSpec};
use crate::procstat;

/// Every client logs in as this role (stored as md5 in Postgres, hba `md5`).
pub const USER: &str = MD5_USER;
pub const PASSWORD: &str = MD5_PASS;
pub const DATABASE: &str = crate::common::TEST_DB;
/// Server connections per pool, both poolers.
pub const POOL_SIZE: u32 = 20;
/// Room for the 10,000 idle clients and the 1000-client surge.
pub const MAX_CLIENT_CONN: u32 = 12_000;
pub const MAX_CONNECTIONS: u32 = 100;
pub const SCALE: u32 = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Target {
    Direct,
    Pgsluice,
    PgsluiceMetrics,
    PgBouncer,
}

impl Target {
    pub fn label(self) -> &'static str {
        match self {
            Target::Direct => "direct",
            Target::Pgsluice => "pgsluice",
            Target::PgsluiceMetrics => "pgsluice+metrics",
            Target::PgBouncer => "PgBouncer",
        }
    }
}

/// Where pgbench connects, and the pooler process to charge CPU to (none for direct).
pub struct Endpoint {
    pub port: u16,
    pub pid: Option<u32>,
}

pub struct Bench {
    pub pg: PgCluster,
    pub sluice: Pooler,
    pub sluice_metrics: Pooler,
    pub metrics_port: u16,
    pub bouncer: Option<Bouncer>,
    pub ticks: f64,
    /// /proc/loadavg when the bench started: other work on the machine distorts figures.
    pub load_at_start: String,
}

impl Bench {
    pub fn start(opts: &Options) -> Bench {
        let pg = PgCluster::start_with(
            PgOptions {
                max_connections: MAX_CONNECTIONS,
                ..PgOptions::default()
            }
            // The scale-10 data set (~160 MB) fits, so -S measures the path, not the disk.
            .setting("shared_buffers", "256MB"),
        );
        eprintln!(
            "compare: PostgreSQL on port {}, pgbench -i -s {SCALE}",
            pg.port()
        );
        init_pgbench(&pg);
        let sluice = start_pgsluice(&pg, None, opts);
        let metrics_port = crate::common::free_port();
        let sluice_metrics = start_pgsluice(&pg, Some(metrics_port), opts);
        let bouncer = opts.pgbouncer.as_ref().map(|bin| start_bouncer(bin, &pg));
        if bouncer.is_none() {
            eprintln!(
                "compare: PgBouncer not found (apt-get install pgbouncer, or PGBOUNCER=path)"
            );
        }
        Bench {
            pg,
            sluice,
            sluice_metrics,
            metrics_port,
            bouncer,
            ticks: procstat::clock_ticks(),
            load_at_start: procstat::load_average(),
        }
    }

    pub fn endpoint(&self, target: Target) -> Option<Endpoint> {
        match target {
            Target::Direct => Some(Endpoint {
                port: self.pg.port(),
                pid: None,
            }),
            Target::Pgsluice => Some(Endpoint {
                port: self.sluice.port(),
                pid: Some(self.sluice.pid()),
            }),
            Target::PgsluiceMetrics => Some(Endpoint {
                port: self.sluice_metrics.port(),
                pid: Some(self.sluice_metrics.pid()),
            }),
            Target::PgBouncer => self.bouncer.as_ref().map(|b| Endpoint {
                port: b.port(),
                pid: Some(b.pid()),
            }),
        }
    }

    /// `VACUUM ANALYZE` of the pgbench tables as the superuser, straight to Postgres, so that
    /// each cell starts from the same state (pgbench itself runs with -n).
    pub fn vacuum(&self) {
        self.pg.sql(DATABASE, "VACUUM ANALYZE");
    }
}

/// pgsluice in transaction mode with a pool of 20; `metrics` sets metrics_addr.
pub fn start_pgsluice(pg: &PgCluster, metrics: Option<u16>, opts: &Options) -> Pooler {
    let mut cfg = PoolerConfig::new(pg).pooler(&format!(
        "pool_mode = \"transaction\"\n\
         default_pool_size = {POOL_SIZE}\n\
         max_client_conn = {MAX_CLIENT_CONN}"
    ));
    if let Some(port) = metrics {
        cfg = cfg.pooler(&format!("metrics_addr = \"127.0.0.1:{port}\""));
    }
    for line in &opts.pgsluice_config {
        cfg = cfg.pooler(line);
    }
    for (key, value) in &opts.pgsluice_env {
        cfg = cfg.env(key, value);
    }
    Pooler::start(cfg)
}

pub fn start_bouncer(bin: &std::path::Path, pg: &PgCluster) -> Bouncer {
    Bouncer::start(&BouncerSpec {
        bin,
        pg_port: pg.port(),
        database: DATABASE,
        pool_size: POOL_SIZE,
        max_client_conn: MAX_CLIENT_CONN,
        users: &[(USER, PASSWORD)],
    })
}

/// `pgbench -i -s 10` as the bench user, straight to Postgres.
fn init_pgbench(pg: &PgCluster) {
    let out = pgbench_command(pg.port())
        .args(["-i", "-s", &SCALE.to_string(), "-q"])
        .output()
        .expect("spawn pgbench -i");
    assert!(
        out.status.success(),
        "pgbench -i failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// pgbench aimed at 127.0.0.1:`port` as the bench user; the database comes from PGDATABASE.
pub fn pgbench_command(port: u16) -> Command {
    let mut cmd = Command::new(pg_tool("pgbench"));
    cmd.env("PGHOST", "127.0.0.1")
        .env("PGPORT", port.to_string())
        .env("PGUSER", USER)
        .env("PGPASSWORD", PASSWORD)
        .env("PGDATABASE", DATABASE)
        .env("PGCONNECT_TIMEOUT", "30")
        .env_remove("PGOPTIONS")
        .env_remove("PGSERVICE")
        .stdin(std::process::Stdio::null());
    cmd
}

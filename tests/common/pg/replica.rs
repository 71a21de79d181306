//! Streaming replication between harness clusters, for the failover tests: a standby made from
//! a running cluster with `pg_basebackup -R` (docs, "pg_basebackup"), promoted with
//! `pg_promote()`, and a former primary turned into a standby of the new one (standby.signal
//! and primary_conninfo, docs "Hot Standby"). Replication logs in as the superuser over the
//! primary's Unix socket, which the harness's pg_hba.conf trusts.

use super::super::pgbin::{chown_to_postgres, pg_bindir, running_as_root, server_command};
use super::super::pgsetup::SUPERUSER;
use super::{cluster_dir, PgCluster, PgOptions, Server};
use std::sync::Mutex;

impl PgCluster {
    /// A hot standby of `primary`, streaming from it, on its own free port.
    pub fn standby_of(primary: &PgCluster) -> PgCluster {
        let as_postgres = running_as_root();
        let dir = cluster_dir(as_postgres);
        let bindir = pg_bindir();
        let out = server_command(&bindir.join("pg_basebackup"), as_postgres)
            .arg("-D")
            .arg(dir.path().join("data"))
            .args([
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
                "-U",
                SUPERUSER,
                "-h",
            ])
            .arg(primary.socket_dir())
            .args(["-p", &primary.port().to_string()])
            .current_dir(dir.path())
            .output()
            .expect("spawn pg_basebackup");
        assert!(
            out.status.success(),
            "pg_basebackup failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            primary.log()
        );
        let mut standby = PgCluster {
            dir,
            bindir,
            port: 0,
            as_postgres,
            opts: PgOptions::default(),
            server: Mutex::new(None::<Server>),
        };
        standby.boot_on_free_port();
        standby
    }

    /// Promotes this standby to primary and waits until it accepts writes.
    pub fn promote(&self) {
        let out = self.psql_direct("postgres", &["-Atc", "select pg_promote(true, 60)"]);
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "t",
            "pg_promote failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// Turns this stopped former primary into a standby of `primary` and starts it.
    pub fn rejoin_as_standby_of(&self, primary: &PgCluster) {
        assert!(!self.is_running(), "stop the old primary first");
        let data = self.data_dir();
        std::fs::write(data.join("standby.signal"), "").expect("write standby.signal");
        let conninfo = format!(
            "\nprimary_conninfo = 'host={} port={} user={SUPERUSER}'\n",
            primary.socket_dir().display(),
            primary.port()
        );
        let auto = data.join("postgresql.auto.conf");
        let mut text = std::fs::read_to_string(&auto).unwrap_or_default();
        text.push_str(&conninfo);
        std::fs::write(&auto, text).expect("write postgresql.auto.conf");
        if self.as_postgres {
            chown_to_postgres(&data);
        }
        self.start_again();
    }

    /// Whether `pg_is_in_recovery()` is true here.
    pub fn in_recovery(&self) -> bool {
        self.sql("postgres", "select pg_is_in_recovery()") == "t"
    }
}

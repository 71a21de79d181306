//! A PgBouncer process configured like the pgsluice under test: transaction pooling, 20 servers
//! per pool, md5 client auth from a userlist, everything else at PgBouncer's defaults (so, as in
//! pgsluice, server_reset_query only runs in session mode). Started by `setup`; killed on Drop.
//! PgBouncer refuses to run as root, so as root it runs as the `postgres` user via setpriv(1),
//! which execs in place and keeps the child's pid equal to PgBouncer's (CPU and RSS read it).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::pgbin::{chown_to_postgres, running_as_root};
use crate::common::{free_port, log_tail, read_log};

pub struct Bouncer {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
    pub version: String,
}

/// What differs between the bench's PgBouncer instances.
pub struct BouncerSpec<'a> {
    pub bin: &'a Path,
    pub pg_port: u16,
    pub database: &'a str,
    pub pool_size: u32,
    pub max_client_conn: u32,
    /// `(user, password)` lines of the auth_file.
    pub users: &'a [(&'a str, &'a str)],
}

impl Bouncer {
    pub fn start(spec: &BouncerSpec) -> Bouncer {
        for _ in 0..5 {
            let mut b = Bouncer::spawn(spec);
            match b.wait_ready() {
                Ok(()) => return b,
                Err(log) if log.contains("Address already in use") => continue,
                Err(log) => panic!("pgbouncer did not start\n{}", log_tail(&log, 30)),
            }
        }
        panic!("pgbouncer: no free port after 5 tries");
    }

    fn spawn(spec: &BouncerSpec) -> Bouncer {
        let dir = tempfile::Builder::new()
            .prefix("pgsluice-bouncer-")
            .tempdir_in("/tmp")
            .expect("pgbouncer temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod pgbouncer dir");
        let port = free_port();
        let ini = dir.path().join("pgbouncer.ini");
        std::fs::write(&ini, render_ini(spec, port, dir.path())).expect("write pgbouncer.ini");
        let userlist: String = spec
            .users
            .iter()
            .map(|(u, p)| format!("\"{u}\" \"{p}\"\n"))
            .collect();
        std::fs::write(dir.path().join("userlist.txt"), userlist).expect("write userlist");
        let as_root = running_as_root();
        if as_root {
            chown_to_postgres(dir.path());
        }
        let mut cmd = if as_root {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ]);
            c.arg(spec.bin);
            c
        } else {
            Command::new(spec.bin)
        };
        let child = cmd
            .arg(&ini)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn pgbouncer");
        Bouncer {
            dir,
            port,
            child,
            version: version(spec.bin),
        }
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("poll pgbouncer") {
                return Err(format!("exit status {status}\n{}", self.log()));
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "pgbouncer not ready\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("pgbouncer.log")
    }
    pub fn log(&self) -> String {
        read_log(&self.log_path())
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// pgbouncer.ini (PgBouncer docs, "pgbouncer.ini"): only what must differ from its defaults.
fn render_ini(spec: &BouncerSpec, port: u16, dir: &Path) -> String {
    format!(
        "[databases]\n\
         {db} = host=127.0.0.1 port={pg_port} dbname={db}\n\
         \n\
         [pgbouncer]\n\
         listen_addr = 127.0.0.1\n\
         listen_port = {port}\n\
         unix_socket_dir =\n\
         auth_type = md5\n\
         auth_file = {dir}/userlist.txt\n\
         logfile = {dir}/pgbouncer.log\n\
         pool_mode = transaction\n\
         default_pool_size = {pool}\n\
         max_client_conn = {max}\n\
         stats_users = {stats}\n",
        db = spec.database,
        stats = spec.users.first().map_or("", |(user, _)| *user),
        pg_port = spec.pg_port,
        pool = spec.pool_size,
        max = spec.max_client_conn,
        dir = dir.display(),
    )
}

/// First line of `pgbouncer --version`, e.g. "PgBouncer 1.18.0".
fn version(bin: &Path) -> String {
    Command::new(bin)
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .unwrap_or_default()
}

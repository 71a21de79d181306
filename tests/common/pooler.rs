//! A pgsluice process under test: config rendered into its own temp dir, a free port, its
//! output in `<dir>/pgsluice.log`. Tests start it with `Pooler::start(PoolerConfig)` and talk to
//! it with tokio-postgres, psql or pgbench. Invariant: the process is SIGKILLed on Drop, so a
//! failing test never leaves a pooler behind; its log is printed when a test panics.

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use super::pgbin::pg_tool;
use super::pgsetup::{MD5_PASS, MD5_USER};
use super::pooler_config::PoolerConfig;
use super::{connect_as, free_port, log_tail, read_log, tcp_config, ConnTask};

const READY_DEADLINE: Duration = Duration::from_secs(30);
const CONFIG_FILE: &str = "pooler.toml";
const USERLIST_FILE: &str = "userlist.txt";
const LOG_FILE: &str = "pgsluice.log";

pub struct Pooler {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
    cfg: PoolerConfig,
}

impl Pooler {
    /// Spawns pgsluice and waits until its TCP port accepts; panics with its log if it exits.
    pub fn start(cfg: PoolerConfig) -> Pooler {
        // A port picked by us can be taken by a parallel test before pgsluice binds it.
        for _ in 0..5 {
            let mut pooler = Pooler::spawn(cfg.clone());
            match pooler.wait_ready() {
                Ok(()) => return pooler,
                Err(log) if cfg.pooler_value("listen_port").is_none() && port_taken(&log) => {
                    continue
                }
                Err(log) => panic!("pgsluice exited during startup\n{log}"),
            }
        }
        panic!("pgsluice: no free port after 5 tries");
    }

    /// Spawns pgsluice without waiting: for tests that expect it to refuse a config and exit.
    pub fn spawn(cfg: PoolerConfig) -> Pooler {
        let dir = tempfile::Builder::new()
            .prefix("pgsluice-pooler-")
            .tempdir_in("/tmp")
            .expect("create pooler temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod pooler dir");
        let port = match cfg.pooler_value("listen_port") {
            Some(value) => value.parse().expect("listen_port override is a number"),
            None => free_port(),
        };
        write_config(dir.path(), port, &cfg);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join(LOG_FILE))
            .expect("open pgsluice.log");
        // PGSLUICE_BIN runs another build (benches compare two builds with it).
        let binary = std::env::var_os("PGSLUICE_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_pgsluice")));
        let mut cmd = match cfg.open_files_limit() {
            // prlimit sets the limit and execs pgsluice: the child's pid stays pgsluice's.
            Some((soft, hard)) => {
                let mut cmd = Command::new("prlimit");
                cmd.arg(format!("--nofile={soft}:{hard}"))
                    .arg("--")
                    .arg(&binary);
                cmd
            }
            None => Command::new(&binary),
        };
        cmd.arg("-c")
            .arg(dir.path().join(cfg.config_name().unwrap_or(CONFIG_FILE)))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log);
        for (key, value) in cfg.env_vars() {
            cmd.env(key, value);
        }
        let child = cmd.spawn().expect("spawn pgsluice");
        Pooler {
            dir,
            port,
            child,
            cfg,
        }
    }

    /// Polls the TCP port; Err(log) if the process exited first.
    pub fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_DEADLINE;
        let addr = ("127.0.0.1", self.port);
        loop {
            if let Some(status) = self.child.try_wait().expect("poll pgsluice") {
                return Err(format!("exit status {status}\n{}", self.log()));
            }
            if TcpStream::connect(addr).is_ok() {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "pgsluice not accepting on port {} after {READY_DEADLINE:?}\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Rewrites pooler.toml and userlist.txt (same port and dir), e.g. before `signal("HUP")`.
    pub fn rewrite_config(&mut self, cfg: PoolerConfig) {
        write_config(self.dir.path(), self.port, &cfg);
        self.cfg = cfg;
    }

    /// Sends a signal by name ("HUP", "TERM", "INT", "USR1", "SIGKILL"...) with `kill -s`.
    pub fn signal(&self, sig: &str) {
        let name = sig.strip_prefix("SIG").unwrap_or(sig);
        let status = Command::new("kill")
            .args(["-s", name, &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -s {name} {} failed", self.pid());
    }

    /// Waits up to `deadline` for the process to exit on its own.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + deadline;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll pgsluice") {
                return Some(status);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }
    /// The pooler's temp dir, which is also its `unix_socket_dir`.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    pub fn config_path(&self) -> PathBuf {
        self.dir
            .path()
            .join(self.cfg.config_name().unwrap_or(CONFIG_FILE))
    }
    pub fn config(&self) -> &PoolerConfig {
        &self.cfg
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join(LOG_FILE)
    }
    pub fn log(&self) -> String {
        read_log(&self.log_path())
    }

    /// TCP connection settings for the pooler; add user, password, dbname, options.
    pub fn connect_config(&self) -> tokio_postgres::Config {
        tcp_config(self.host(), self.port)
    }

    /// Same, over the pooler's Unix socket.
    pub fn connect_config_unix(&self) -> tokio_postgres::Config {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host_path(self.socket_dir()).port(self.port);
        cfg
    }

    /// Connects through pgsluice over TCP (NoTls); the connection task is already spawned.
    pub async fn connect(
        &self,
        user: &str,
        password: &str,
        db: &str,
    ) -> Result<(tokio_postgres::Client, ConnTask), tokio_postgres::Error> {
        connect_as(self.connect_config(), user, Some(password), db).await
    }

    /// `psql -X -v ON_ERROR_STOP=1 -w -h 127.0.0.1 -p <port> -U user -d db <args>`.
    pub fn psql(&self, user: &str, password: &str, db: &str, args: &[&str]) -> Output {
        self.client_command("psql", user, password, db)
            .args(["-X", "-v", "ON_ERROR_STOP=1", "-w", "-h", self.host()])
            .args(["-p", &self.port.to_string(), "-U", user, "-d", db])
            .args(args)
            .output()
            .expect("spawn psql")
    }

    /// `pgbench <args>` against the pooler; host, port, user and database come from PG* vars
    /// because pgbench takes the database as a trailing positional argument.
    pub fn pgbench(&self, user: &str, password: &str, db: &str, args: &[&str]) -> Output {
        self.client_command("pgbench", user, password, db)
            .args(args)
            .output()
            .expect("spawn pgbench")
    }

    /// Initialises pgbench's tables in `db` through the pooler, then runs the select-only
    /// script with `clients` clients for `seconds`; panics unless every transaction succeeded.
    /// `extra` adds pgbench options (e.g. `-M prepared`). Returns how many transactions were
    /// processed.
    pub fn pgbench_select_only(&self, db: &str, clients: u32, seconds: u32, extra: &[&str]) -> u64 {
        let init = self.pgbench(MD5_USER, MD5_PASS, db, &["-i", "-s", "1", "-q"]);
        let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(
            init.status.success(),
            "pgbench -i: {}\n{}",
            stderr(&init),
            self.log()
        );
        let (c, t) = (clients.to_string(), seconds.to_string());
        let mut args = vec!["-S", "-c", &c, "-j", "2", "-T", &t, "-n"];
        args.extend_from_slice(extra);
        let run = self.pgbench(MD5_USER, MD5_PASS, db, &args);
        let out = String::from_utf8_lossy(&run.stdout);
        assert!(run.status.success(), "pgbench: {out}\n{}", stderr(&run));
        assert!(out.contains("number of failed transactions: 0"), "{out}");
        out.lines()
            .find_map(|l| l.strip_prefix("number of transactions actually processed: "))
            .and_then(|n| n.split('/').next()?.trim().parse::<u64>().ok())
            .unwrap_or(0)
    }

    fn client_command(&self, tool: &str, user: &str, password: &str, db: &str) -> Command {
        let mut cmd = Command::new(pg_tool(tool));
        cmd.env("PGHOST", self.host())
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", user)
            .env("PGDATABASE", db)
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "30")
            .env_remove("PGOPTIONS")
            .env_remove("PGSERVICE")
            .stdin(Stdio::null());
        cmd
    }
}

impl Drop for Pooler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- pgsluice log tail ---\n{}", log_tail(&self.log(), 80));
        }
    }
}

/// Writes both files via rename, so a reload never reads a half-written file.
fn write_config(dir: &Path, port: u16, cfg: &PoolerConfig) {
    let mut files = vec![
        (CONFIG_FILE.to_owned(), cfg.render_toml(port, dir)),
        (USERLIST_FILE.to_owned(), cfg.render_userlist()),
    ];
    // Extra files (certificates, keys) before the config that names them.
    files.splice(0..0, cfg.files().iter().cloned());
    for (name, text) in files {
        let tmp = dir.join(format!("{name}.tmp"));
        std::fs::write(&tmp, text).expect("write pooler config");
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
            .expect("chmod pooler file");
        std::fs::rename(&tmp, dir.join(name)).expect("rename pooler config");
    }
}

fn port_taken(log: &str) -> bool {
    let lower = log.to_ascii_lowercase();
    lower.contains("address already in use") || lower.contains("addrinuse")
}

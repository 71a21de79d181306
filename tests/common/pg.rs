//! A throwaway PostgreSQL cluster: initdb in a temp dir, a postmaster on a free 127.0.0.1 port,
//! the roles of `pgsetup.rs`. Tests share one per binary (`shared_cluster`) or own one
//! (`PgCluster::start`) when they stop or restart it. Invariant: the server never outlives the
//! test process — it runs under a shell wrapper that stops it when our end of its stdin closes,
//! which also covers the shared cluster kept in a static that is never dropped.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use super::pgbin::{chown_to_postgres, pg_bindir, pg_tool, running_as_root, server_command};
use super::pgsetup::{PG_HBA, SETUP_SQL, SUPERUSER};
use super::{free_port, log_tail, read_log};

mod replica;

const READY_DEADLINE: Duration = Duration::from_secs(60);
const STOP_DEADLINE: Duration = Duration::from_secs(60);
const LOG_FILE: &str = "postgres.log";
/// Touched by the wrapper when our end of the pipe closed (test process gone): only then does
/// it delete the cluster directory, so `stop`/`start_again` keep the data.
const EOF_MARKER: &str = ".harness-eof";

/// `$1` = cluster dir, the rest = the postgres command line. A line on stdin picks the shutdown
/// mode (docs "Shutting Down the Server": TERM smart, INT fast, QUIT immediate); EOF means the
/// test process is gone: fast shutdown, then remove the directory. Job-control-less shells
/// ignore SIGINT/SIGQUIT in background jobs, but the postmaster installs its own handlers.
const WRAPPER: &str = r#"
dir="$1"; shift
exec 3<&0 </dev/null >>"$dir/postgres.log" 2>&1
"$@" 3<&- &
pid=$!
(
  if read -r mode <&3; then :; else mode=eof; : >"$dir/.harness-eof"; fi
  case "$mode" in
    immediate) sig=QUIT ;;
    smart) sig=TERM ;;
    *) sig=INT ;;
  esac
  kill -s "$sig" "$pid" 2>/dev/null
) &
watcher=$!
wait "$pid"
status=$?
kill "$watcher" 2>/dev/null
if [ -e "$dir/.harness-eof" ]; then rm -rf "$dir"; fi
exit "$status"
"#;

/// Server settings; `max_connections` is separate because pool-limit tests tune it most.
#[derive(Clone, Debug)]
pub struct PgOptions {
    pub max_connections: u32,
    /// Extra `name=value` settings passed as `-c name=value`.
    pub settings: Vec<(String, String)>,
    /// Files written into the data directory before the first start (mode 0600, owned by the
    /// server's user): TLS keys and certificates, named relative to it in `settings`.
    pub files: Vec<(String, String)>,
    /// pg_hba.conf lines placed before the harness's own (first match wins).
    pub hba_first: Vec<String>,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            max_connections: 200,
            settings: Vec::new(),
            files: Vec::new(),
            hba_first: Vec::new(),
        }
    }
}

impl PgOptions {
    pub fn setting(mut self, name: &str, value: &str) -> Self {
        self.settings.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A file for the data directory (e.g. `server.key` for `ssl_key_file=server.key`).
    pub fn file(mut self, name: &str, contents: &str) -> Self {
        self.files.push((name.to_owned(), contents.to_owned()));
        self
    }

    /// A pg_hba.conf line that takes precedence over the harness's defaults.
    pub fn hba_first(mut self, line: &str) -> Self {
        self.hba_first.push(line.to_owned());
        self
    }
}

/// The running postmaster's wrapper and the write end of its control pipe.
struct Server {
    wrapper: Child,
    control: ChildStdin,
}

pub struct PgCluster {
    dir: tempfile::TempDir,
    bindir: PathBuf,
    port: u16,
    as_postgres: bool,
    opts: PgOptions,
    server: Mutex<Option<Server>>,
}

/// The cluster shared by all tests of one test binary, started on first use.
pub fn shared_cluster() -> &'static PgCluster {
    static CLUSTER: OnceLock<PgCluster> = OnceLock::new();
    CLUSTER.get_or_init(PgCluster::start)
}

impl PgCluster {
    /// An owned cluster with default options, stopped and deleted on Drop.
    pub fn start() -> PgCluster {
        Self::start_with(PgOptions::default())
    }

    pub fn start_with(opts: PgOptions) -> PgCluster {
        let as_postgres = running_as_root();
        let dir = cluster_dir(as_postgres);
        let mut cluster = PgCluster {
            dir,
            bindir: pg_bindir(),
            port: 0,
            as_postgres,
            opts,
            server: Mutex::new(None),
        };
        cluster.initdb();
        cluster.boot_on_free_port();
        cluster.run_setup();
        cluster
    }

    fn initdb(&self) {
        let out = server_command(&self.bindir.join("initdb"), self.as_postgres)
            .arg("-D")
            .arg(self.data_dir())
            .args(["--auth=trust", "-U", SUPERUSER, "-E", "UTF8", "--locale=C"])
            .arg("--no-sync")
            .current_dir(self.dir.path())
            .output()
            .expect("spawn initdb");
        assert!(
            out.status.success(),
            "initdb failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let hba = self.data_dir().join("pg_hba.conf");
        let mut text = String::new();
        for line in &self.opts.hba_first {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(PG_HBA);
        std::fs::write(&hba, text).expect("write pg_hba.conf");
        if self.as_postgres {
            chown_to_postgres(&hba);
        }
        // Postgres refuses a key readable by others ("has group or world access").
        for (name, contents) in &self.opts.files {
            let path = self.data_dir().join(name);
            std::fs::write(&path, contents).expect("write data directory file");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .expect("chmod data directory file");
            if self.as_postgres {
                chown_to_postgres(&path);
            }
        }
    }

    /// Free ports are only free until someone binds them; retry if another test won the race.
    fn boot_on_free_port(&mut self) {
        for _ in 0..5 {
            self.port = free_port();
            match self.boot() {
                Ok(()) => return,
                Err(BootError::PortInUse) => continue,
            }
        }
        panic!("postgres: no free port after 5 tries\n{}", self.log());
    }

    fn boot(&self) -> Result<(), BootError> {
        let mut cmd = server_command(Path::new("/bin/sh"), self.as_postgres);
        cmd.arg("-c")
            .arg(WRAPPER)
            .arg("pgsluice-pg")
            .arg(self.dir.path());
        cmd.arg(self.bindir.join("postgres"))
            .arg("-D")
            .arg(self.data_dir());
        cmd.arg("-p").arg(self.port.to_string());
        for (name, value) in self.settings() {
            cmd.arg("-c").arg(format!("{name}={value}"));
        }
        let mut wrapper = cmd
            .current_dir(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn postgres wrapper");
        let control = wrapper.stdin.take().expect("wrapper stdin");
        let mut server = Server { wrapper, control };
        let started = self.wait_ready(&mut server);
        *self.server() = Some(server);
        started
    }

    fn settings(&self) -> Vec<(String, String)> {
        let sock = self.socket_dir().to_string_lossy().into_owned();
        let mut s: Vec<(String, String)> = [
            ("listen_addresses", "127.0.0.1"),
            ("unix_socket_directories", sock.as_str()),
            // Throwaway data: fsync costs time and buys nothing. synchronous_commit stays on
            // so a committed row survives an immediate restart (crash-recovery tests).
            ("fsync", "off"),
            ("full_page_writes", "off"),
            ("shared_buffers", "32MB"),
            ("logging_collector", "off"),
            ("log_line_prefix", "%m [%p] %q%u@%d "),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        s.push((
            "max_connections".into(),
            self.opts.max_connections.to_string(),
        ));
        s.extend(self.opts.settings.iter().cloned());
        s
    }

    fn wait_ready(&self, server: &mut Server) -> Result<(), BootError> {
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if let Some(status) = server.wrapper.try_wait().expect("poll wrapper") {
                let log = self.log();
                if log.contains("Address already in use") {
                    return Err(BootError::PortInUse);
                }
                panic!("postgres exited during startup ({status})\n{log}");
            }
            let ready = Command::new(pg_tool("pg_isready"))
                .arg("-q")
                .args(["-h", &self.socket_dir().to_string_lossy()])
                .args([
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    SUPERUSER,
                    "-d",
                    "postgres",
                ])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ready {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "postgres not ready after {READY_DEADLINE:?}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn run_setup(&self) {
        let script = self.dir.path().join("setup.sql");
        std::fs::write(&script, SETUP_SQL).expect("write setup.sql");
        let out = self.psql_direct("postgres", &["-q", "-f", &script.to_string_lossy()]);
        assert!(
            out.status.success(),
            "cluster setup failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// Stops the server: `mode` is "smart", "fast" or "immediate". Waits until it is gone.
    pub fn stop(&self, mode: &str) {
        assert!(
            matches!(mode, "smart" | "fast" | "immediate"),
            "unknown shutdown mode {mode:?}"
        );
        assert!(self.server().is_some(), "postgres is not running");
        if let Err(e) = self.try_stop(mode) {
            panic!("{e}\n{}", log_tail(&self.log(), 40));
        }
    }

    /// Never panics, so Drop can use it while a failed test unwinds.
    fn try_stop(&self, mode: &str) -> Result<(), String> {
        let Some(mut server) = self.server().take() else {
            return Ok(());
        };
        // A write error means the wrapper already exited: nothing left to stop.
        let _ = writeln!(server.control, "{mode}");
        drop(server.control);
        let deadline = Instant::now() + STOP_DEADLINE;
        loop {
            match server.wrapper.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Ok(None) => return Err(format!("postgres did not stop ({mode}) in time")),
                Err(e) => return Err(format!("waiting for postgres: {e}")),
            }
        }
    }

    fn server(&self) -> MutexGuard<'_, Option<Server>> {
        self.server.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a stopped server again, same data directory and port.
    pub fn start_again(&self) {
        assert!(!self.is_running(), "postgres is already running");
        if let Err(BootError::PortInUse) = self.boot() {
            panic!("port {} was taken while postgres was down", self.port);
        }
    }

    pub fn restart(&self, mode: &str) {
        self.stop(mode);
        self.start_again();
    }

    /// True while the postmaster (hence its wrapper) is alive.
    pub fn is_running(&self) -> bool {
        match self.server().as_mut() {
            Some(server) => server.wrapper.try_wait().expect("poll wrapper").is_none(),
            None => false,
        }
    }

    /// The postmaster's pid, from the first line of postmaster.pid.
    pub fn postmaster_pid(&self) -> u32 {
        let text = std::fs::read_to_string(self.data_dir().join("postmaster.pid"))
            .expect("read postmaster.pid");
        text.lines()
            .next()
            .unwrap_or("")
            .trim()
            .parse()
            .expect("pid")
    }

    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("sock")
    }
    pub fn bindir(&self) -> &Path {
        &self.bindir
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join(LOG_FILE)
    }
    pub fn log(&self) -> String {
        read_log(&self.log_path())
    }
}

enum BootError {
    PortInUse,
}

/// A cluster's directory with its `sock` subdirectory, owned by the server's user. Under /tmp,
/// not $TMPDIR: the socket path must stay short (sun_path is ~107 bytes) and every parent
/// must be traversable by the postgres user.
fn cluster_dir(as_postgres: bool) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("pgsluice-pg-")
        .tempdir_in("/tmp")
        .expect("create cluster temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod cluster dir");
    std::fs::create_dir(dir.path().join("sock")).expect("create socket dir");
    if as_postgres {
        chown_to_postgres(dir.path());
    }
    dir
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- postgres log tail ---\n{}", log_tail(&self.log(), 60));
        }
        // Errors are ignored: panicking inside Drop would abort the whole test binary.
        let _ = self.try_stop("fast");
    }
}

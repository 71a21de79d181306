//! Locating the PostgreSQL binaries and running them as the right OS user.
//! Called by the cluster code (`pg.rs`) and by the client helpers (psql, pgbench).
//! Invariant: discovery never silently skips — no server binaries means a panic that says how
//! to install them, because a test suite that quietly tests nothing is worse than a red one.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Environment variable that overrides every other way of finding the server binaries.
pub const PG_BINDIR_ENV: &str = "PG_BINDIR";

/// The directory holding `initdb`, `postgres`, `pg_ctl`, `pg_isready` (and on Debian also `psql`
/// and `pgbench`). Order: `$PG_BINDIR`, `pg_config --bindir`, `initdb` on `PATH` (symlinks
/// resolved, so Debian's `/usr/local/bin/initdb -> /usr/lib/postgresql/N/bin/initdb` finds the
/// full bindir), then the newest `/usr/lib/postgresql/*/bin`.
pub fn pg_bindir() -> PathBuf {
    if let Some(dir) = std::env::var_os(PG_BINDIR_ENV) {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join("initdb").is_file(),
            "{PG_BINDIR_ENV}={} does not contain `initdb`",
            dir.display()
        );
        return dir;
    }
    pg_config_bindir()
        .or_else(initdb_on_path)
        .or_else(newest_debian_bindir)
        .unwrap_or_else(|| {
            panic!(
                "PostgreSQL server binaries (initdb, postgres) not found. Install them \
                 (Debian/Ubuntu: `apt-get install postgresql postgresql-contrib`) or set \
                 {PG_BINDIR_ENV} to the directory that contains `initdb`."
            )
        })
}

fn pg_config_bindir() -> Option<PathBuf> {
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    dir.join("initdb").is_file().then_some(dir)
}

fn initdb_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("initdb"))
        .find(|candidate| candidate.is_file())
        .and_then(|initdb| std::fs::canonicalize(initdb).ok())
        .and_then(|real| real.parent().map(Path::to_path_buf))
}

/// Debian installs each major version side by side; the newest one is the natural pick.
fn newest_debian_bindir() -> Option<PathBuf> {
    let entries = std::fs::read_dir("/usr/lib/postgresql").ok()?;
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let major: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((major, bin))
        })
        .max_by_key(|(major, _)| *major)
        .map(|(_, bin)| bin)
}

/// A client tool (`psql`, `pgbench`, `pg_isready`): from the server's bindir when it is there,
/// so client and server versions match, else whatever `PATH` offers.
pub fn pg_tool(name: &str) -> PathBuf {
    let in_bindir = pg_bindir().join(name);
    if in_bindir.is_file() {
        in_bindir
    } else {
        PathBuf::from(name)
    }
}

/// Postgres refuses to run as root ("root execution of the PostgreSQL server is not
/// permitted"), so as root the server side runs as the `postgres` system user.
pub fn running_as_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().next())
        .map(|uid| uid == "0")
        .unwrap_or(false)
}

/// A command for a server-side program: run directly, or via `runuser -u postgres --` as root.
pub fn server_command(program: &Path, as_postgres: bool) -> Command {
    if as_postgres {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// Hands `path` to the `postgres` system user (only used when running as root).
pub fn chown_to_postgres(path: &Path) {
    let status = Command::new("chown")
        .arg("-R")
        .arg("postgres:")
        .arg(path)
        .status()
        .expect("run chown");
    assert!(
        status.success(),
        "chown postgres {} failed; does the `postgres` system user exist? \
         (`useradd --system --user-group postgres`)",
        path.display()
    );
}

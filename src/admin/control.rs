//! The console's control commands and live reconfiguration: PAUSE/RESUME, DISABLE/ENABLE,
//! KILL/KILL_CLIENT, RECONNECT/WAIT_CLOSE, RELOAD (also SIGHUP), SHUTDOWN and SET. They act
//! only through the shared state's own levers (pause flags, kill notices, pool generations,
//! a swapped configuration snapshot); the relay is never driven from here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::command::{Command, ShutdownMode};
use super::error::AdminError;
use crate::config::{Config, Source};
use crate::live::ConnState;
use crate::state::{load_userlist, Shared, Shutdown};
use crate::tls::TlsContext;

/// Settings that only a restart can change (listening sockets, log format, identity).
pub(crate) const RESTART_ONLY: [&str; 9] = [
    "listen_addr",
    "listen_port",
    "unix_socket_dir",
    "unix_socket_mode",
    "log_format",
    "metrics_addr",
    "peer_id",
    "peer_id_from_hostname",
    "so_reuseport",
];

/// What a control command reports besides its CommandComplete: notices for the caller.
type Done = Vec<String>;

fn done(_tag: &'static str) -> Result<Done, AdminError> {
    Ok(Vec::new())
}

/// Runs one control command (SHOW is rendered elsewhere).
pub(crate) async fn run(shared: &Shared, cmd: &Command) -> Result<Done, AdminError> {
    if let Command::Pause(Some(db))
    | Command::Resume(Some(db))
    | Command::Disable(db)
    | Command::Enable(db)
    | Command::Kill(Some(db))
    | Command::Reconnect(Some(db))
    | Command::WaitClose(Some(db)) = cmd
    {
        if shared.config().database(db).is_none() {
            return Err(AdminError::NoSuchDatabase(db.clone()));
        }
    }
    match cmd {
        Command::Pause(db) => {
            shared.control.pause(db.as_deref());
            wait_for(|| active_servers(shared, db.as_deref()) == 0).await;
            done("PAUSE")
        }
        Command::Resume(db) => {
            shared.control.resume(db.as_deref());
            done("RESUME")
        }
        Command::Disable(db) => {
            shared.control.set_disabled(db, true);
            done("DISABLE")
        }
        Command::Enable(db) => {
            shared.control.set_disabled(db, false);
            done("ENABLE")
        }
        Command::Kill(db) => {
            for c in shared.client_table.list() {
                if db.as_deref().is_none_or(|d| c.database == d) {
                    c.kill();
                }
            }
            reconnect(shared, db.as_deref());
            done("KILL")
        }
        Command::KillClient(id) => match shared.client_table.get(*id) {
            Some(c) => {
                c.kill();
                done("KILL_CLIENT")
            }
            None => Err(AdminError::NoSuchClient(*id)),
        },
        Command::Reconnect(db) => {
            reconnect(shared, db.as_deref());
            done("RECONNECT")
        }
        Command::WaitClose(db) => {
            wait_for(|| outdated_servers(shared, db.as_deref()) == 0).await;
            done("WAIT_CLOSE")
        }
        Command::Reload => reload(shared, &BTreeMap::new()).map_err(AdminError::ReloadFailed),
        Command::Shutdown(mode) => {
            shared.begin_shutdown(match mode {
                ShutdownMode::WaitForClients => Shutdown::Draining,
                ShutdownMode::WaitForServers | ShutdownMode::Immediate => Shutdown::Closing,
            });
            done("SHUTDOWN")
        }
        Command::Set { key, value } => set(shared, key, value),
        Command::Show(_) | Command::Empty | Command::IgnoredSet { .. } => done("SHOW"),
    }
}

async fn wait_for(mut condition: impl FnMut() -> bool) {
    while !condition() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn matches_db(db: Option<&str>, name: &str) -> bool {
    db.is_none_or(|d| d == name)
}

fn active_servers(shared: &Shared, db: Option<&str>) -> usize {
    shared
        .pools
        .servers
        .list()
        .iter()
        .filter(|s| matches_db(db, &s.database) && s.state() == ConnState::Active)
        .count()
}

fn reconnect(shared: &Shared, db: Option<&str>) {
    for pool in shared.pools.all() {
        if matches_db(db, &pool.key.database) {
            pool.reconnect();
        }
    }
}

/// Servers opened before the last RECONNECT of their pool and not closed yet.
fn outdated_servers(shared: &Shared, db: Option<&str>) -> usize {
    let pools = shared.pools.all();
    shared
        .pools
        .servers
        .list()
        .iter()
        .filter(|s| matches_db(db, &s.database))
        .filter(|s| {
            let gen = s.generation.load(std::sync::atomic::Ordering::Relaxed);
            pools.iter().any(|p| {
                p.key.database == s.database
                    && gen < p.generation.load(std::sync::atomic::Ordering::SeqCst)
            })
        })
        .count()
}

/// Re-reads pooler.toml (with `overrides` from SET applied over [pooler]) and auth_file and
/// swaps them in. A file with any problem changes nothing and the problems are returned.
pub(crate) fn reload(
    shared: &Shared,
    overrides: &BTreeMap<String, toml::Value>,
) -> Result<Vec<String>, String> {
    let path = shared
        .config_path
        .as_ref()
        .ok_or_else(|| "pgsluice was started without a configuration file".to_string())?;
    let source = Source::read(path)
        .map_err(|e| format!("{} has errors; nothing changed:\n{e}", path.display()))?;
    let mut overrides = overrides.clone();
    for (k, v) in shared.set_overrides() {
        overrides.entry(k).or_insert(v);
    }
    let text = apply_overrides(&source.toml, &overrides)?;
    let base = path.parent().unwrap_or(std::path::Path::new("."));
    let config = source
        .parse(&text, base)
        .map_err(|e| format!("{} has errors; nothing changed:\n{e}", path.display()))?;
    for warning in &source.warnings {
        tracing::warn!("{warning}");
    }
    let userlist =
        load_userlist(&config).map_err(|e| format!("auth_file: {e}; nothing changed"))?;
    // Certificate and key files are re-read on every reload (PgBouncer: new file contents are
    // used for new connections); a file that cannot be used changes nothing.
    let tls = TlsContext::load(&config.pooler.tls)
        .map(Arc::new)
        .map_err(|e| format!("{} has errors; nothing changed:\n{e}", path.display()))?;
    let old = shared.config();
    let notices = restart_notices(&old, &config);
    shared.replace_config(config.clone(), userlist.clone(), tls.clone());
    let userlist = config.pooler.auth_file.as_ref().map(|_| &userlist);
    shared.pools.reload(&config, userlist, &tls.server);
    tracing::info!(path = %path.display(), "configuration reloaded");
    for n in &notices {
        tracing::warn!("{n}");
    }
    Ok(notices)
}

/// SET key = value: the same as editing [pooler] and reloading, kept across later reloads.
fn set(shared: &Shared, key: &str, value: &str) -> Result<Vec<String>, AdminError> {
    if RESTART_ONLY.contains(&key) {
        return Err(AdminError::NeedsRestart {
            key: key.to_string(),
        });
    }
    let parsed: toml::Value = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    let overrides = BTreeMap::from([(key.to_string(), parsed.clone())]);
    let notices = reload(shared, &overrides).map_err(|reason| AdminError::SetFailed {
        key: key.to_string(),
        reason,
    })?;
    shared.remember_override(key, parsed);
    Ok(notices)
}

fn apply_overrides(
    text: &str,
    overrides: &BTreeMap<String, toml::Value>,
) -> Result<String, String> {
    if overrides.is_empty() {
        return Ok(text.to_string());
    }
    let mut root: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let pooler = root
        .entry("pooler")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let toml::Value::Table(t) = pooler {
        for (k, v) in overrides {
            t.insert(k.clone(), v.clone());
        }
    }
    toml::to_string(&root).map_err(|e| e.to_string())
}

/// Changed settings a reload cannot apply.
fn restart_notices(old: &Config, new: &Config) -> Vec<String> {
    let old_rows = old.pooler.show_rows();
    new.pooler
        .show_rows()
        .into_iter()
        .zip(old_rows)
        .filter(|(n, o)| n.value != o.value && RESTART_ONLY.contains(&n.key))
        .map(|(n, _)| format!("{} changed; it takes effect only after a restart", n.key))
        .collect()
}

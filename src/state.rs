//! The one handle every task shares: the current configuration, auth_file and TLS snapshot, the
//! pools, the cancel keys, client counts and the shutdown signal. Built by `app`, read by the
//! client tasks (and later the admin console and metrics). Reload swaps snapshots inside it.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::watch;

use crate::auth::Userlist;
use crate::config::Config;
use crate::live::{ConnTable, PeriodAverages, ProcessCounters, TrafficTotals};
use crate::open_files::{self, ClientRoom};
use crate::pool::PoolRegistry;
use crate::prepared::{Counters, Registry};
use crate::server::CancelRegistry;
use crate::tls::TlsContext;

/// How far shutdown has gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shutdown {
    Running,
    /// SHUTDOWN WAIT_FOR_CLIENTS: no new clients; connected clients may finish and leave on
    /// their own.
    Draining,
    /// SIGTERM, SIGINT, SHUTDOWN: no new clients; each client is closed once its transaction
    /// ends.
    Closing,
}

pub(crate) struct Shared {
    config: RwLock<Arc<Config>>,
    userlist: RwLock<Arc<Userlist>>,
    /// Certificates and keys loaded from the files [pooler] names; swapped whole on reload.
    tls: RwLock<Arc<TlsContext>>,
    pub(crate) pools: PoolRegistry,
    /// Each pool's LISTEN connection, for LISTEN in transaction and statement pooling.
    pub(crate) hubs: crate::notify::Hubs,
    pub(crate) cancels: CancelRegistry,
    /// Every connected client, for SHOW CLIENTS, KILL and KILL_CLIENT.
    pub(crate) client_table: Arc<ConnTable>,
    /// PAUSE / DISABLE state steered from the console and signals.
    pub(crate) control: Control,
    /// Where the configuration was loaded from, for RELOAD and SIGHUP.
    pub(crate) config_path: Option<PathBuf>,
    /// Logins and errors for metrics.
    pub(crate) counters: ProcessCounters,
    /// SHOW STATS averages over the last stats_period, refreshed by the stats task.
    pub(crate) averages: Mutex<PeriodAverages>,
    /// Settings changed with the console's SET, re-applied over pooler.toml on every reload.
    overrides: Mutex<std::collections::BTreeMap<String, toml::Value>>,
    /// Named prepared statements of all clients, interned pooler-wide.
    pub(crate) statements: Registry,
    pub(crate) statement_counters: Counters,
    /// Custom settings (`app.tenant_id`) clients have set, read back by name.
    pub(crate) custom_names: crate::server::CustomNames,
    /// Clients connected now (counted from accept to close).
    /// Clients admitted at most: max_client_conn, or fewer when the open-files limit cannot
    /// hold that many beside the servers (`open_files::ClientRoom`).
    pub(crate) client_room: AtomicUsize,
    pub(crate) clients: AtomicUsize,
    next_client_id: AtomicU64,
    /// Random per process: keys the fake SCRAM salts of unknown users.
    pub(crate) mock_key: [u8; 32],
    shutdown: watch::Sender<Shutdown>,
}

/// The clients that fit in the open-files limit beside the servers `config` may open; says
/// so when that is fewer than max_client_conn (at start and on every reload).
fn client_room(config: &Config, userlist: &Userlist) -> ClientRoom {
    let room = ClientRoom::new(config, userlist.users(), open_files::current_limit());
    if let Some(warning) = room.warning(config) {
        tracing::warn!("{warning}");
    }
    room
}

impl Shared {
    pub(crate) fn new(
        config: Config,
        userlist: Userlist,
        tls: TlsContext,
        config_path: Option<PathBuf>,
        histograms: bool,
    ) -> Arc<Shared> {
        let room = client_room(&config, &userlist);
        Arc::new(Shared {
            config: RwLock::new(Arc::new(config)),
            userlist: RwLock::new(Arc::new(userlist)),
            tls: RwLock::new(Arc::new(tls)),
            pools: PoolRegistry::new(histograms),
            hubs: crate::notify::Hubs::new(),
            cancels: CancelRegistry::default(),
            client_table: Arc::default(),
            control: Control::default(),
            config_path,
            overrides: Mutex::default(),
            averages: Mutex::default(),
            counters: ProcessCounters::default(),
            statements: Registry::new(),
            statement_counters: Counters::default(),
            custom_names: crate::server::CustomNames::default(),
            client_room: AtomicUsize::new(room.clients),
            clients: AtomicUsize::new(0),
            next_client_id: AtomicU64::new(0),
            mock_key: rand::random(),
            shutdown: watch::channel(Shutdown::Running).0,
        })
    }

    pub(crate) fn set_overrides(&self) -> std::collections::BTreeMap<String, toml::Value> {
        self.overrides.lock().expect("overrides lock").clone()
    }

    pub(crate) fn remember_override(&self, key: &str, value: toml::Value) {
        self.overrides
            .lock()
            .expect("overrides lock")
            .insert(key.to_string(), value);
    }

    /// Traffic totals per database, summed over its pools.
    pub(crate) fn totals_by_database(&self) -> std::collections::HashMap<String, TrafficTotals> {
        let mut by_db = std::collections::HashMap::<String, TrafficTotals>::new();
        for pool in self.pools.all() {
            *by_db.entry(pool.key.database.clone()).or_default() += pool.stats.totals();
        }
        by_db
    }

    /// Swaps in a reloaded configuration, auth_file and TLS material.
    pub(crate) fn replace_config(&self, config: Config, userlist: Userlist, tls: Arc<TlsContext>) {
        let room = client_room(&config, &userlist);
        self.client_room.store(room.clients, Ordering::Relaxed);
        *self.config.write().expect("config lock") = Arc::new(config);
        *self.userlist.write().expect("userlist lock") = Arc::new(userlist);
        *self.tls.write().expect("tls lock") = tls;
    }

    pub(crate) fn tls(&self) -> Arc<TlsContext> {
        self.tls.read().expect("tls lock").clone()
    }

    pub(crate) fn config(&self) -> Arc<Config> {
        self.config.read().expect("config lock").clone()
    }

    pub(crate) fn userlist(&self) -> Arc<Userlist> {
        self.userlist.read().expect("userlist lock").clone()
    }

    pub(crate) fn next_client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(crate) fn shutdown_state(&self) -> watch::Receiver<Shutdown> {
        self.shutdown.subscribe()
    }

    pub(crate) fn begin_shutdown(&self, mode: Shutdown) {
        self.shutdown.send_if_modified(|s| {
            // Closing is stricter than Draining; never go back.
            let stricter = matches!(
                (*s, mode),
                (Shutdown::Running, _) | (Shutdown::Draining, Shutdown::Closing)
            );
            if stricter {
                *s = mode;
            }
            stricter
        });
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow() != Shutdown::Running
    }
}

/// PAUSE and DISABLE, globally or per database (PgBouncer's console semantics).
#[derive(Default)]
pub(crate) struct Control {
    state: Mutex<ControlState>,
    resumed: tokio::sync::Notify,
}

#[derive(Default)]
struct ControlState {
    paused_all: bool,
    paused: HashSet<String>,
    disabled: HashSet<String>,
}

impl Control {
    pub(crate) fn pause(&self, db: Option<&str>) {
        let mut s = self.state.lock().expect("control lock");
        match db {
            Some(db) => {
                s.paused.insert(db.to_string());
            }
            None => s.paused_all = true,
        }
    }

    pub(crate) fn resume(&self, db: Option<&str>) {
        {
            let mut s = self.state.lock().expect("control lock");
            match db {
                Some(db) => {
                    s.paused.remove(db);
                }
                None => {
                    s.paused_all = false;
                    s.paused.clear();
                }
            }
        }
        self.resumed.notify_waiters();
    }

    pub(crate) fn is_paused(&self, db: &str) -> bool {
        let s = self.state.lock().expect("control lock");
        s.paused_all || s.paused.contains(db)
    }

    pub(crate) fn any_paused(&self) -> bool {
        let s = self.state.lock().expect("control lock");
        s.paused_all || !s.paused.is_empty()
    }

    /// Returns once `db` is not paused (at once if it is not).
    pub(crate) async fn wait_resumed(&self, db: &str) {
        loop {
            let notified = self.resumed.notified();
            if !self.is_paused(db) {
                return;
            }
            notified.await;
        }
    }

    pub(crate) fn set_disabled(&self, db: &str, disabled: bool) {
        let mut s = self.state.lock().expect("control lock");
        if disabled {
            s.disabled.insert(db.to_string());
        } else {
            s.disabled.remove(db);
        }
    }

    pub(crate) fn is_disabled(&self, db: &str) -> bool {
        self.state
            .lock()
            .expect("control lock")
            .disabled
            .contains(db)
    }
}

/// Loads the auth_file a configuration names (an empty list when it names none).
/// The auth_file, with the auth_hba_file's rules when auth_type = hba.
pub(crate) fn load_userlist(config: &Config) -> Result<Userlist, crate::auth::AuthError> {
    let userlist = match &config.pooler.auth_file {
        Some(path) => Userlist::load(path)?,
        None => Userlist::parse("")?,
    };
    match (
        &config.pooler.auth_type,
        &config.pooler.auth_query.auth_hba_file,
    ) {
        (crate::config::AuthType::Hba, Some(path)) => {
            let hba = crate::auth::Hba::load(path).map_err(crate::auth::AuthError::Hba)?;
            Ok(userlist.with_hba(hba))
        }
        _ => Ok(userlist),
    }
}

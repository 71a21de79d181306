//! The one handle every task shares: the current configuration and auth_file snapshot, the
//! pools, the cancel keys, client counts and the shutdown signal. Built by `app`, read by the
//! client tasks (and later the admin console and metrics). Reload swaps snapshots inside it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use crate::auth::Userlist;
use crate::config::Config;
use crate::pool::PoolRegistry;
use crate::prepared::{Counters, Registry};
use crate::server::CancelRegistry;

/// How far shutdown has gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shutdown {
    Running,
    /// SIGTERM: no new clients; connected clients may finish and leave on their own.
    Draining,
    /// SIGINT: no new clients; each client is closed once its transaction ends.
    Closing,
}

pub(crate) struct Shared {
    config: RwLock<Arc<Config>>,
    userlist: RwLock<Arc<Userlist>>,
    pub(crate) pools: PoolRegistry,
    pub(crate) cancels: CancelRegistry,
    /// Named prepared statements of all clients, interned pooler-wide.
    pub(crate) statements: Registry,
    pub(crate) statement_counters: Counters,
    /// Clients connected now (counted from accept to close).
    pub(crate) clients: AtomicUsize,
    next_client_id: AtomicU64,
    /// Random per process: keys the fake SCRAM salts of unknown users.
    pub(crate) mock_key: [u8; 32],
    shutdown: watch::Sender<Shutdown>,
}

impl Shared {
    pub(crate) fn new(config: Config, userlist: Userlist) -> Arc<Shared> {
        Arc::new(Shared {
            config: RwLock::new(Arc::new(config)),
            userlist: RwLock::new(Arc::new(userlist)),
            pools: PoolRegistry::default(),
            cancels: CancelRegistry::default(),
            statements: Registry::new(),
            statement_counters: Counters::default(),
            clients: AtomicUsize::new(0),
            next_client_id: AtomicU64::new(0),
            mock_key: rand::random(),
            shutdown: watch::channel(Shutdown::Running).0,
        })
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

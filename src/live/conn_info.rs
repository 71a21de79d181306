//! One live connection's record for SHOW CLIENTS / SHOW SERVERS: its state, endpoints and
//! timestamps, written by its own task with plain atomic stores (no lock on the hot path),
//! and the KILL flag the admin console sets on it.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

/// Connection states as SHOW CLIENTS / SHOW SERVERS name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub(crate) enum ConnState {
    Login = 0,
    Active = 1,
    Waiting = 2,
    Idle = 3,
    Used = 4,
    Tested = 5,
}

impl ConnState {
    fn from_u8(v: u8) -> ConnState {
        match v {
            1 => ConnState::Active,
            2 => ConnState::Waiting,
            3 => ConnState::Idle,
            4 => ConnState::Used,
            5 => ConnState::Tested,
            _ => ConnState::Login,
        }
    }
}

/// One client or server connection.
#[derive(Debug)]
pub(crate) struct ConnInfo {
    pub(crate) id: u64,
    pub(crate) user: String,
    pub(crate) database: String,
    pub(crate) addr: String,
    pub(crate) port: u16,
    pub(crate) local_addr: String,
    pub(crate) local_port: u16,
    /// "TLSv1.3/TLS_AES_256_GCM_SHA384" over TLS, "" in plain text (SHOW CLIENTS/SERVERS).
    pub(crate) tls: String,
    pub(crate) connect_time: SystemTime,
    state: AtomicU8,
    /// Unix micros of the last request (clients) or use (servers).
    request_time: AtomicU64,
    /// Unix micros since when a client waits for a server; 0 = not waiting.
    wait_since: AtomicU64,
    /// The id of the connection at the other end (server of a client or the reverse); 0 = none.
    link: AtomicU64,
    pub(crate) remote_pid: AtomicU64,
    pub(crate) application_name: Mutex<String>,
    pub(crate) prepared_statements: AtomicU64,
    /// Clients: why the client is pinned to its server ("advisory lock, LISTEN"), "" if not.
    pub(crate) pinned: Mutex<String>,
    /// Servers: the pool generation it belongs to (WAIT_CLOSE waits for older ones to go).
    pub(crate) generation: AtomicU64,
    /// Set by KILL / KILL_CLIENT; the client task ends as soon as it notices.
    killed: AtomicBool,
    kill: Notify,
}

pub(crate) fn unix_micros(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn from_micros(us: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(us)
}

impl ConnInfo {
    /// A server's address as the host registry names it (`Address`'s display form).
    pub(crate) fn server_address(&self) -> String {
        if self.port == 0 {
            format!("unix:{}", self.addr)
        } else {
            format!("{}:{}", self.addr, self.port)
        }
    }
    /// A fresh record, connected now.
    pub(crate) fn new(
        id: u64,
        user: &str,
        database: &str,
        ends: Endpoints,
        state: ConnState,
    ) -> ConnInfo {
        ConnInfo {
            id,
            user: user.to_string(),
            database: database.to_string(),
            addr: ends.addr,
            port: ends.port,
            local_addr: ends.local_addr,
            local_port: ends.local_port,
            tls: ends.tls,
            connect_time: SystemTime::now(),
            state: AtomicU8::new(state as u8),
            request_time: AtomicU64::new(0),
            wait_since: AtomicU64::new(0),
            link: AtomicU64::new(0),
            remote_pid: AtomicU64::new(0),
            application_name: Mutex::new(String::new()),
            prepared_statements: AtomicU64::new(0),
            pinned: Mutex::new(String::new()),
            generation: AtomicU64::new(0),
            killed: AtomicBool::new(false),
            kill: Notify::new(),
        }
    }

    pub(crate) fn state(&self) -> ConnState {
        ConnState::from_u8(self.state.load(Ordering::Relaxed))
    }

    pub(crate) fn set_state(&self, s: ConnState) {
        self.state.store(s as u8, Ordering::Relaxed);
        match s {
            ConnState::Waiting => self
                .wait_since
                .store(unix_micros(SystemTime::now()), Ordering::Relaxed),
            _ => self.wait_since.store(0, Ordering::Relaxed),
        }
        if s == ConnState::Active {
            self.request_time
                .store(unix_micros(SystemTime::now()), Ordering::Relaxed);
        }
    }

    pub(crate) fn request_time(&self) -> SystemTime {
        match self.request_time.load(Ordering::Relaxed) {
            0 => self.connect_time,
            us => from_micros(us),
        }
    }

    /// How long it has been waiting for a server (zero when not waiting).
    pub(crate) fn wait(&self) -> Duration {
        match self.wait_since.load(Ordering::Relaxed) {
            0 => Duration::ZERO,
            since => SystemTime::now()
                .duration_since(from_micros(since))
                .unwrap_or_default(),
        }
    }

    pub(crate) fn link(&self) -> Option<u64> {
        match self.link.load(Ordering::Relaxed) {
            0 => None,
            id => Some(id),
        }
    }

    pub(crate) fn set_link(&self, id: Option<u64>) {
        self.link.store(id.unwrap_or(0), Ordering::Relaxed);
    }

    pub(crate) fn kill(&self) {
        self.killed.store(true, Ordering::Relaxed);
        self.kill.notify_waiters();
    }

    pub(crate) fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }

    /// Resolves once KILL or KILL_CLIENT named this connection.
    pub(crate) async fn killed(&self) {
        loop {
            let notified = self.kill.notified();
            if self.is_killed() {
                return;
            }
            notified.await;
        }
    }
}

/// Where a connection comes from and goes to.
#[derive(Debug, Clone, Default)]
pub(crate) struct Endpoints {
    pub(crate) addr: String,
    pub(crate) port: u16,
    pub(crate) local_addr: String,
    pub(crate) local_port: u16,
    /// The TLS protocol and cipher suite; "" without TLS.
    pub(crate) tls: String,
}

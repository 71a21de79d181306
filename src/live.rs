//! What is connected right now, for the admin console: one record per client and per server
//! connection, updated by their tasks with plain atomic stores (no lock on the hot path) and
//! listed by SHOW CLIENTS / SHOW SERVERS. Records leave their table when their guard drops,
//! however the connection ends. Also the traffic counters behind SHOW STATS.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

use crate::histogram::DurationHistogram;

/// Connection states as SHOW CLIENTS / SHOW SERVERS name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// All live connections of one kind.
#[derive(Debug, Default)]
pub(crate) struct ConnTable {
    conns: Mutex<HashMap<u64, Weak<ConnInfo>>>,
}

/// Keeps a record in its table for as long as the connection lives.
#[derive(Debug)]
pub(crate) struct Registration {
    info: Arc<ConnInfo>,
    table: Arc<ConnTable>,
}

impl ConnTable {
    pub(crate) fn register(
        self: &Arc<Self>,
        id: u64,
        user: &str,
        database: &str,
        ends: Endpoints,
        state: ConnState,
    ) -> Registration {
        let info = Arc::new(ConnInfo {
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
        });
        self.conns
            .lock()
            .expect("connection table lock")
            .insert(id, Arc::downgrade(&info));
        Registration {
            info,
            table: self.clone(),
        }
    }

    /// Every live connection, oldest first.
    pub(crate) fn list(&self) -> Vec<Arc<ConnInfo>> {
        let mut all: Vec<_> = self
            .conns
            .lock()
            .expect("connection table lock")
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        all.sort_by_key(|c| c.id);
        all
    }

    pub(crate) fn get(&self, id: u64) -> Option<Arc<ConnInfo>> {
        self.conns
            .lock()
            .expect("connection table lock")
            .get(&id)
            .and_then(Weak::upgrade)
    }
}

impl Registration {
    pub(crate) fn info(&self) -> &Arc<ConnInfo> {
        &self.info
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut conns) = self.table.conns.lock() {
            conns.remove(&self.info.id);
        }
    }
}

/// Traffic counters of one pool (SHOW STATS and metrics), bumped with relaxed atomic adds.
#[derive(Debug, Default)]
pub(crate) struct TrafficStats {
    pub(crate) xact_count: AtomicU64,
    pub(crate) query_count: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) xact_time_us: AtomicU64,
    pub(crate) query_time_us: AtomicU64,
    pub(crate) wait_time_us: AtomicU64,
    pub(crate) servers_opened: AtomicU64,
    pub(crate) server_login_failures: AtomicU64,
    pub(crate) wait_timeouts: AtomicU64,
    /// Server connections closed, by reason (rare: a lock is fine).
    pub(crate) servers_closed: Mutex<HashMap<&'static str, u64>>,
    /// ErrorResponses from Postgres relayed to clients, by SQLSTATE class.
    pub(crate) errors: Mutex<HashMap<String, u64>>,
    /// Duration histograms for metrics; no-ops when metrics are off.
    pub(crate) histograms: PoolHistograms,
}

/// Duration histograms of one pool; `Default` (metrics off) records nothing.
#[derive(Debug, Default)]
pub(crate) struct PoolHistograms {
    pub(crate) wait: DurationHistogram,
    pub(crate) transaction: DurationHistogram,
    pub(crate) query: DurationHistogram,
}

impl PoolHistograms {
    pub(crate) fn enabled() -> Self {
        PoolHistograms {
            wait: DurationHistogram::enabled(),
            transaction: DurationHistogram::enabled(),
            query: DurationHistogram::enabled(),
        }
    }
}

impl TrafficStats {
    pub(crate) fn with_histograms(histograms: PoolHistograms) -> Self {
        TrafficStats {
            histograms,
            ..TrafficStats::default()
        }
    }

    pub(crate) fn count_closed(&self, reason: &'static str) {
        if let Ok(mut m) = self.servers_closed.lock() {
            *m.entry(reason).or_default() += 1;
        }
    }

    /// Counts an ErrorResponse body by the class (first two characters) of its SQLSTATE.
    pub(crate) fn count_error(&self, class: &str) {
        if let Ok(mut m) = self.errors.lock() {
            *m.entry(class.to_string()).or_default() += 1;
        }
    }
}

/// A copy of the counters at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TrafficTotals {
    pub(crate) xact_count: u64,
    pub(crate) query_count: u64,
    pub(crate) bytes_received: u64,
    pub(crate) bytes_sent: u64,
    pub(crate) xact_time_us: u64,
    pub(crate) query_time_us: u64,
    pub(crate) wait_time_us: u64,
}

impl TrafficStats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn totals(&self) -> TrafficTotals {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TrafficTotals {
            xact_count: l(&self.xact_count),
            query_count: l(&self.query_count),
            bytes_received: l(&self.bytes_received),
            bytes_sent: l(&self.bytes_sent),
            xact_time_us: l(&self.xact_time_us),
            query_time_us: l(&self.query_time_us),
            wait_time_us: l(&self.wait_time_us),
        }
    }
}

impl std::ops::AddAssign for TrafficTotals {
    fn add_assign(&mut self, o: TrafficTotals) {
        self.xact_count += o.xact_count;
        self.query_count += o.query_count;
        self.bytes_received += o.bytes_received;
        self.bytes_sent += o.bytes_sent;
        self.xact_time_us += o.xact_time_us;
        self.query_time_us += o.query_time_us;
        self.wait_time_us += o.wait_time_us;
    }
}

/// Per-second rates and per-event means over the last stats_period, per database (SHOW
/// STATS_AVERAGES and the avg_* columns): counts and bytes per second, transaction time per
/// transaction, query time per query, wait time per transaction.
#[derive(Debug, Default)]
pub(crate) struct PeriodAverages {
    last: HashMap<String, TrafficTotals>,
    last_at: Option<std::time::Instant>,
    averages: HashMap<String, TrafficTotals>,
}

impl PeriodAverages {
    /// Closes a period with the current totals.
    pub(crate) fn tick(
        &mut self,
        now: std::time::Instant,
        totals: &HashMap<String, TrafficTotals>,
    ) {
        if let Some(at) = self.last_at {
            let secs = (now - at).as_secs_f64().max(0.001);
            self.averages = totals
                .iter()
                .map(|(db, t)| {
                    let before = self.last.get(db).copied().unwrap_or_default();
                    (db.clone(), averages(before, *t, secs))
                })
                .collect();
        }
        self.last = totals.clone();
        self.last_at = Some(now);
    }

    pub(crate) fn get(&self, db: &str) -> TrafficTotals {
        self.averages.get(db).copied().unwrap_or_default()
    }
}

fn averages(before: TrafficTotals, now: TrafficTotals, secs: f64) -> TrafficTotals {
    let d = |a: u64, b: u64| a.saturating_sub(b);
    let per_sec = |n: u64| (n as f64 / secs).round() as u64;
    let per = |n: u64, k: u64| n.checked_div(k).unwrap_or(0);
    let xacts = d(now.xact_count, before.xact_count);
    let queries = d(now.query_count, before.query_count);
    TrafficTotals {
        xact_count: per_sec(xacts),
        query_count: per_sec(queries),
        bytes_received: per_sec(d(now.bytes_received, before.bytes_received)),
        bytes_sent: per_sec(d(now.bytes_sent, before.bytes_sent)),
        xact_time_us: per(d(now.xact_time_us, before.xact_time_us), xacts),
        query_time_us: per(d(now.query_time_us, before.query_time_us), queries),
        wait_time_us: per(d(now.wait_time_us, before.wait_time_us), xacts),
    }
}

/// Process-wide counters for metrics: client logins and failed ones by SQLSTATE, errors
/// pgsluice itself sent to clients by SQLSTATE class, and client connections that ended in
/// an error by kind.
#[derive(Debug, Default)]
pub(crate) struct ProcessCounters {
    pub(crate) logins: AtomicU64,
    pub(crate) login_failures: Mutex<HashMap<String, u64>>,
    pub(crate) errors: Mutex<HashMap<String, u64>>,
    pub(crate) client_errors: Mutex<HashMap<&'static str, u64>>,
}

impl ProcessCounters {
    pub(crate) fn client_error(&self, kind: &'static str) {
        if let Ok(mut m) = self.client_errors.lock() {
            *m.entry(kind).or_default() += 1;
        }
    }

    pub(crate) fn login_failed(&self, sqlstate: &str) {
        if let Ok(mut m) = self.login_failures.lock() {
            *m.entry(sqlstate.to_string()).or_default() += 1;
        }
    }

    pub(crate) fn error_sent(&self, sqlstate: &str) {
        if let Ok(mut m) = self.errors.lock() {
            *m.entry(sqlstate.chars().take(2).collect()).or_default() += 1;
        }
    }
}

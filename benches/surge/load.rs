//! The surge's clients: each connects, runs a one-row primary-key SELECT (pgbench -S's
//! transaction), thinks for a moment and runs the next, reconnecting after any failure, as an
//! application's request handlers do. `Crowd` keeps as many running as the ramp asks for and
//! counts, per second, what they got: transactions, failed transactions, connection errors,
//! latencies, and how many are without a connection right now.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::common::{connect_with, md5_login};

/// What the clients counted since the last `take`.
#[derive(Debug, Default)]
pub struct Counts {
    transactions: AtomicU64,
    failed: AtomicU64,
    connection_errors: AtomicU64,
    latencies_us: Mutex<Vec<u32>>,
}

/// One second's figures from the clients' side.
pub struct Taken {
    pub transactions: u64,
    pub failed: u64,
    pub connection_errors: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl Counts {
    pub fn take(&self) -> Taken {
        let mut latencies = std::mem::take(&mut *self.latencies_us.lock().unwrap());
        latencies.sort_unstable();
        let pct = |p: f64| {
            (!latencies.is_empty()).then(|| {
                let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
                f64::from(latencies[i]) / 1000.0
            })
        };
        Taken {
            transactions: self.transactions.swap(0, Ordering::Relaxed),
            failed: self.failed.swap(0, Ordering::Relaxed),
            connection_errors: self.connection_errors.swap(0, Ordering::Relaxed),
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
        }
    }
}

struct Client {
    stop: Arc<AtomicBool>,
    /// It holds a connection right now.
    connected: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

/// The running clients of one target.
pub struct Crowd {
    cfg: tokio_postgres::Config,
    think: Duration,
    clients: Vec<Client>,
    pub counts: Arc<Counts>,
}

impl Crowd {
    pub fn new(port: u16, database: &str, think: Duration) -> Crowd {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host("127.0.0.1")
            .port(port)
            .dbname(database)
            .connect_timeout(Duration::from_secs(10));
        Crowd {
            cfg: md5_login(cfg),
            think,
            clients: Vec::new(),
            counts: Arc::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Clients of the crowd without a connection right now (connecting, or refused and
    /// retrying).
    pub fn disconnected(&self) -> u64 {
        let without = self
            .clients
            .iter()
            .filter(|c| !c.connected.load(Ordering::Relaxed));
        without.count() as u64
    }

    /// Starts or stops clients until `n` run.
    pub fn resize(&mut self, n: usize) {
        while self.clients.len() < n {
            let stop = Arc::new(AtomicBool::new(false));
            let connected = Arc::new(AtomicBool::new(false));
            let task = tokio::spawn(client(
                self.cfg.clone(),
                self.think,
                (stop.clone(), connected.clone()),
                self.counts.clone(),
                self.clients.len() as u64,
            ));
            self.clients.push(Client {
                stop,
                connected,
                task,
            });
        }
        while self.clients.len() > n {
            let c = self.clients.pop().expect("non-empty");
            c.stop.store(true, Ordering::Relaxed);
            if !c.connected.load(Ordering::Relaxed) {
                // Connecting or waiting to retry: nothing to finish, so no need to wait.
                c.task.abort();
            }
        }
    }

    /// Stops every client and waits until all have closed their connections.
    pub async fn stop_all(&mut self) {
        for c in &self.clients {
            c.stop.store(true, Ordering::Relaxed);
        }
        for c in self.clients.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(30), c.task).await;
        }
    }
}

async fn client(
    cfg: tokio_postgres::Config,
    think: Duration,
    (stop, connected): (Arc<AtomicBool>, Arc<AtomicBool>),
    counts: Arc<Counts>,
    seed: u64,
) {
    let mut aid = seed.wrapping_mul(7919) % 1_000_000 + 1;
    let mut conn = None;
    while !stop.load(Ordering::Relaxed) {
        let Some(c) = conn.as_ref() else {
            match connect_with(&cfg).await {
                Ok((c, _task)) => {
                    connected.store(true, Ordering::Relaxed);
                    conn = Some(c);
                }
                Err(_) => {
                    counts.connection_errors.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            continue;
        };
        aid = aid * 48271 % 1_000_000 + 1;
        let sql = format!("SELECT abalance FROM pgbench_accounts WHERE aid = {aid}");
        let started = Instant::now();
        match c.simple_query(&sql).await {
            Ok(_) => {
                let us = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                counts.transactions.fetch_add(1, Ordering::Relaxed);
                counts.latencies_us.lock().unwrap().push(us);
            }
            Err(_) => {
                counts.failed.fetch_add(1, Ordering::Relaxed);
                connected.store(false, Ordering::Relaxed);
                conn = None;
                continue;
            }
        }
        if !think.is_zero() {
            tokio::time::sleep(think).await;
        }
    }
}

//! A workload for the pool micro-benchmark (`benches/pool.rs`): threads standing in
//! for client tasks check servers out of one shared ledger and back in, more clients than
//! servers, so some wait and are handed a server on release: the lock, the LIFO idle list,
//! the FIFO waiters and the handoff channel, without sockets. Reached through
//! `pgsluice::bench_pool_contention`; not an API.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::ledger::{Checkout, Handoff, Ledger, Limits, ServerTimes};

struct Server {
    at: Instant,
}

impl ServerTimes for Server {
    fn connected_at(&self) -> Instant {
        self.at
    }
    fn last_used(&self) -> Instant {
        self.at
    }
}

/// Runs `clients` threads, each doing `rounds` checkout/checkin pairs on a pool of `servers`;
/// returns how many checkouts had to wait for a release.
pub fn run(clients: usize, servers: usize, rounds: usize) -> u64 {
    let mut ledger: Ledger<Server> = Ledger::default();
    let limits = Limits {
        size: servers,
        ..Limits::default()
    };
    let id = ledger.register("db", "user", limits);
    let ledger = Arc::new(Mutex::new(ledger));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let ledger = ledger.clone();
            std::thread::spawn(move || {
                let mut waited = 0;
                for _ in 0..rounds {
                    let step = ledger.lock().expect("ledger").checkout(id, Instant::now());
                    let server = match step {
                        Checkout::Server(s) => s,
                        // A slot: "open" a server (no socket here).
                        Checkout::Connect { .. } => Server { at: Instant::now() },
                        Checkout::Wait { rx, .. } => {
                            waited += 1;
                            match rx.blocking_recv().expect("a waiter is always served") {
                                Handoff::Server(s) => s,
                                Handoff::Slot => Server { at: Instant::now() },
                            }
                        }
                        Checkout::Refused(_) => unreachable!("no login ever fails here"),
                    };
                    let closing =
                        ledger
                            .lock()
                            .expect("ledger")
                            .release(id, server, Instant::now());
                    drop(closing);
                }
                waited
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("bench thread"))
        .sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_checkout_is_served() {
        // 8 clients on 1 server: a lost handoff would leave a thread waiting forever.
        let waited = super::run(8, 1, 2000);
        assert!(waited <= 8 * 2000);
    }
}

//! The bookkeeping of every pool under one lock: idle servers, FIFO waiters with arrival
//! tickets, open counts and the budgets pools share (see `limits`). Pure and synchronous, so it
//! is tested without sockets: callers lock for one call, pass `now`, and close what it hands
//! back after unlocking. Invariants after every call: each count equals the idle + lent +
//! connecting servers it covers, and no waiter could be served (`dispatch` ran).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::budget::Budget;

mod limits;
mod upkeep;

/// Index of a pool in the ledger; the registry keeps its `Arc<Pool>`s in the same order.
pub(crate) type PoolId = usize;

/// What the ledger needs to know about a server connection.
pub(crate) trait ServerTimes {
    fn connected_at(&self) -> Instant;
    fn last_used(&self) -> Instant;
}

/// One pool's limits, from its `PoolSettings` (PgBouncer names; zero = disabled/unlimited).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) size: usize,
    pub(crate) reserve: usize,
    pub(crate) reserve_timeout: Duration,
    /// min_pool_size, already capped at `size`.
    pub(crate) min: usize,
    /// PgBouncer keeps min_pool_size for forced-user pools even without clients.
    pub(crate) min_without_clients: bool,
    pub(crate) idle_timeout: Duration,
    /// Zero means "use once" (checked at release); idle servers are aged out only when > 0.
    pub(crate) lifetime: Duration,
    pub(crate) login_retry: Duration,
    pub(crate) db_limit: usize,
    pub(crate) user_limit: usize,
}

/// What a waiter is handed.
#[derive(Debug)]
pub(crate) enum Handoff<C> {
    /// A pooled server, clean and idle.
    Server(C),
    /// The right to open one new server, already counted in every budget.
    Slot,
}

/// How a pool's longest waiter (or a new checkout) can be served right now.
pub(crate) enum Supply<C> {
    /// An idle server of its own pool.
    Idle(C),
    /// A slot to open a new server, already counted.
    Open,
    /// An idle server of another pool, closed to make room under a shared budget.
    Evict(C),
    Nothing,
}

/// A refused server login, remembered for server_login_retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoginFailure {
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) at: Instant,
}

/// The answer to a checkout.
#[derive(Debug)]
pub(crate) enum Checkout<C> {
    Server(C),
    /// A slot was counted: open a server. `victim` is an idle server of another pool that
    /// was evicted to make room under a shared budget; the caller closes it.
    Connect {
        victim: Option<C>,
    },
    Wait {
        ticket: u64,
        rx: oneshot::Receiver<Handoff<C>>,
    },
    /// A login to this pool's server was refused within server_login_retry.
    Refused(LoginFailure),
}

/// Why the ledger gave a server back to be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    Evicted,
    IdleTimeout,
    Lifetime,
    Surplus,
    Shutdown,
    Unexpected,
    Reconnect,
}

impl CloseReason {
    /// A short metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            CloseReason::Evicted => "evicted",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::Lifetime => "lifetime",
            CloseReason::Surplus => "surplus",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Unexpected => "unexpected",
            CloseReason::Reconnect => "reconnect",
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CloseReason::Evicted => {
                "making room for another pool (max_db_connections / max_user_connections)"
            }
            CloseReason::IdleTimeout => "idle longer than server_idle_timeout",
            CloseReason::Lifetime => "older than server_lifetime",
            CloseReason::Surplus => "reserve server no longer needed",
            CloseReason::Shutdown => "shutting down",
            CloseReason::Unexpected => "sent something after its last ReadyForQuery",
            CloseReason::Reconnect => "replaced (RECONNECT, or a reload changed its login)",
        }
    }
}

pub(crate) type Closing<C> = Vec<(C, CloseReason)>;

pub(super) struct Waiter<C> {
    ticket: u64,
    pub(super) since: Instant,
    tx: oneshot::Sender<Handoff<C>>,
}

pub(super) struct Book<C> {
    pub(super) db: String,
    pub(super) user: String,
    pub(super) limits: Limits,
    /// LIFO: the most recently used server is last (PgBouncer reuses the warmest).
    pub(super) idle: Vec<C>,
    pub(super) waiters: VecDeque<Waiter<C>>,
    /// Servers of this pool: idle, lent out, or being opened.
    pub(super) open: usize,
    pub(super) failure: Option<LoginFailure>,
}

/// A pool's numbers, for tests and the admin console.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) open: usize,
    pub(crate) idle: usize,
    pub(crate) waiting: usize,
}

pub(crate) struct Ledger<C> {
    pub(super) books: Vec<Book<C>>,
    pub(super) dbs: HashMap<String, Budget>,
    pub(super) users: HashMap<String, Budget>,
    /// Pools with waiters, by the ticket of their longest waiter: arrival order across pools.
    queue: BTreeSet<(u64, PoolId)>,
    next_ticket: u64,
}

impl<C> Default for Ledger<C> {
    fn default() -> Self {
        Ledger {
            books: Vec::new(),
            dbs: HashMap::new(),
            users: HashMap::new(),
            queue: BTreeSet::new(),
            next_ticket: 0,
        }
    }
}

impl<C: ServerTimes> Ledger<C> {
    /// Adds a pool; `db` and `user` name the budgets it draws from.
    pub(crate) fn register(&mut self, db: &str, user: &str, limits: Limits) -> PoolId {
        self.books.push(Book {
            db: db.to_string(),
            user: user.to_string(),
            limits: Limits::default(),
            idle: Vec::new(),
            waiters: VecDeque::new(),
            open: 0,
            failure: None,
        });
        let id = self.books.len() - 1;
        self.set_limits(id, limits, Instant::now());
        id
    }

    /// New limits (reload); larger ones may serve waiters at once.
    pub(crate) fn set_limits(&mut self, id: PoolId, limits: Limits, now: Instant) -> Closing<C> {
        let book = &mut self.books[id];
        self.dbs.entry(book.db.clone()).or_default().limit = limits.db_limit;
        self.users.entry(book.user.clone()).or_default().limit = limits.user_limit;
        book.limits = limits;
        self.dispatch(now)
    }

    pub(crate) fn limits(&self, id: PoolId) -> &Limits {
        &self.books[id].limits
    }

    pub(crate) fn counts(&self, id: PoolId) -> Counts {
        let b = &self.books[id];
        Counts {
            open: b.open,
            idle: b.idle.len(),
            waiting: b.waiters.len(),
        }
    }

    /// An idle server, a new slot, or a place at the back of the queue.
    pub(crate) fn checkout(&mut self, id: PoolId, now: Instant) -> Checkout<C> {
        // Waiters of this pool came first; the invariant says none of them can be served,
        // so neither can this client, except from an idle server (none, by the same rule).
        if self.books[id].waiters.is_empty() {
            let book = &self.books[id];
            let size = book.limits.size;
            if book.idle.is_empty() && book.open < size {
                // This client needs a new login: pointless while a refusal is fresh.
                if let Some(failure) = self.recent_failure(id, now) {
                    return Checkout::Refused(failure);
                }
            }
            match self.supply(id, size) {
                Supply::Idle(c) => return Checkout::Server(c),
                Supply::Open => return Checkout::Connect { victim: None },
                Supply::Evict(victim) => {
                    return Checkout::Connect {
                        victim: Some(victim),
                    }
                }
                Supply::Nothing => {}
            }
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let (tx, rx) = oneshot::channel();
        let book = &mut self.books[id];
        if book.waiters.is_empty() {
            self.queue.insert((ticket, id));
        }
        book.waiters.push_back(Waiter {
            ticket,
            since: now,
            tx,
        });
        Checkout::Wait { ticket, rx }
    }

    /// A clean server comes back: to the longest waiter that may have it, else idle.
    pub(crate) fn release(&mut self, id: PoolId, conn: C, now: Instant) -> Closing<C> {
        self.books[id].idle.push(conn);
        self.dispatch(now)
    }

    /// A server of this pool was closed or never opened: its slot goes to the next waiter.
    pub(crate) fn free(&mut self, id: PoolId, now: Instant) -> Closing<C> {
        self.uncount(id);
        self.dispatch(now)
    }

    /// Takes a waiter out of the queue (it gave up). False when it was already handed a
    /// grant, which then sits in its channel for it to take back.
    pub(crate) fn withdraw(&mut self, id: PoolId, ticket: u64) -> bool {
        let book = &mut self.books[id];
        let Some(pos) = book.waiters.iter().position(|w| w.ticket == ticket) else {
            return false;
        };
        book.waiters.remove(pos);
        if pos == 0 {
            self.requeue(id, ticket);
        }
        true
    }

    pub(crate) fn recent_failure(&self, id: PoolId, now: Instant) -> Option<LoginFailure> {
        let book = &self.books[id];
        let f = book.failure.as_ref()?;
        (now.saturating_duration_since(f.at) < book.limits.login_retry).then(|| f.clone())
    }

    pub(crate) fn login_failed(&mut self, id: PoolId, failure: LoginFailure) {
        self.books[id].failure = Some(failure);
    }

    pub(crate) fn login_succeeded(&mut self, id: PoolId) {
        self.books[id].failure = None;
    }

    /// Serves waiters, longest-waiting first across all pools, until none can be served.
    /// Pools sharing a full budget are thus served in the order their clients arrived.
    pub(crate) fn dispatch(&mut self, now: Instant) -> Closing<C> {
        let mut closing = Vec::new();
        'serve: loop {
            let waiting: Vec<PoolId> = self.queue.iter().map(|&(_, id)| id).collect();
            for id in waiting {
                let cap = self.cap(id, now);
                let grant = match self.supply(id, cap) {
                    Supply::Nothing => continue,
                    Supply::Idle(c) => Handoff::Server(c),
                    Supply::Open => Handoff::Slot,
                    Supply::Evict(victim) => {
                        closing.push((victim, CloseReason::Evicted));
                        Handoff::Slot
                    }
                };
                self.hand_to_first(id, grant, &mut closing, now);
                continue 'serve;
            }
            return closing;
        }
    }

    fn hand_to_first(
        &mut self,
        id: PoolId,
        grant: Handoff<C>,
        closing: &mut Closing<C>,
        now: Instant,
    ) {
        let waiter = self.books[id]
            .waiters
            .pop_front()
            .expect("a queued pool has a waiter");
        self.requeue(id, waiter.ticket);
        // A waiter withdraws (under this lock) before dropping its receiver, so a send
        // cannot fail; should it anyway, the grant is not lost.
        if let Err(grant) = waiter.tx.send(grant) {
            match grant {
                Handoff::Server(c) => self.books[id].idle.push(c),
                Handoff::Slot => self.uncount(id),
            }
            closing.extend(self.dispatch(now));
        }
    }

    /// Refreshes the queue entry of `id` after its first waiter (`old`) left.
    fn requeue(&mut self, id: PoolId, old: u64) {
        self.queue.remove(&(old, id));
        if let Some(next) = self.books[id].waiters.front() {
            self.queue.insert((next.ticket, id));
        }
    }

    /// Whether the pool has clients attached or waiting (for min_pool_size).
    pub(super) fn busy(&self, id: PoolId) -> bool {
        let b = &self.books[id];
        b.open > b.idle.len() || !b.waiters.is_empty()
    }
}

#[cfg(test)]
pub(super) mod tests;

//! The limits a pool checks before opening a server: its own pool_size (plus
//! reserve_pool_size for a client that waited reserve_pool_timeout), and the budgets it shares
//! with other pools, max_db_connections per database and max_user_connections per user
//! (PgBouncer: zero = unlimited). When a budget is full, an idle server of another pool that
//! shares it is closed to make room. The ledger's limits, under its lock.

use std::time::Instant;

use super::{Ledger, PoolId, ServerTimes, Supply};
use crate::pool::budget::Budget;

impl<C: ServerTimes> Ledger<C> {
    #[allow(dead_code, reason = "for the admin console and tests")]
    pub(crate) fn db_budget(&self, db: &str) -> Budget {
        self.dbs.get(db).copied().unwrap_or_default()
    }

    #[allow(dead_code, reason = "for the admin console and tests")]
    pub(crate) fn user_budget(&self, user: &str) -> Budget {
        self.users.get(user).copied().unwrap_or_default()
    }

    /// Servers this pool's longest waiter may have open: pool_size, plus reserve_pool_size
    /// once that waiter has waited reserve_pool_timeout (0 disables the reserve).
    pub(super) fn cap(&self, id: PoolId, now: Instant) -> usize {
        let book = &self.books[id];
        let l = &book.limits;
        let reserve_due = l.reserve > 0
            && !l.reserve_timeout.is_zero()
            && book
                .waiters
                .front()
                .is_some_and(|w| now.saturating_duration_since(w.since) >= l.reserve_timeout);
        l.size + if reserve_due { l.reserve } else { 0 }
    }

    /// How `id`'s longest waiter (or a new checkout) can be served within `cap` servers.
    pub(super) fn supply(&mut self, id: PoolId, cap: usize) -> Supply<C> {
        if let Some(c) = self.books[id].idle.pop() {
            return Supply::Idle(c);
        }
        let book = &self.books[id];
        if book.open >= cap {
            return Supply::Nothing;
        }
        let db_ok = self.dbs[&book.db].has_room();
        let user_ok = self.users[&book.user].has_room();
        if db_ok && user_ok {
            self.count(id);
            return Supply::Open;
        }
        // max_db_connections / max_user_connections reached: close the least recently used
        // idle server of another pool that shares every full budget, and take its place.
        let victim = self
            .books
            .iter()
            .enumerate()
            .filter(|(v, b)| {
                *v != id
                    && !b.idle.is_empty()
                    && (db_ok || b.db == book.db)
                    && (user_ok || b.user == book.user)
            })
            .min_by_key(|(_, b)| b.idle[0].last_used())
            .map(|(v, _)| v);
        let Some(v) = victim else {
            return Supply::Nothing;
        };
        let conn = self.books[v].idle.remove(0);
        self.uncount(v);
        self.count(id);
        Supply::Evict(conn)
    }

    pub(super) fn count(&mut self, id: PoolId) {
        let book = &mut self.books[id];
        book.open += 1;
        if let Some(b) = self.dbs.get_mut(&book.db) {
            b.open += 1;
        }
        if let Some(b) = self.users.get_mut(&book.user) {
            b.open += 1;
        }
    }

    pub(super) fn uncount(&mut self, id: PoolId) {
        let book = &mut self.books[id];
        book.open = book.open.saturating_sub(1);
        if let Some(b) = self.dbs.get_mut(&book.db) {
            b.open = b.open.saturating_sub(1);
        }
        if let Some(b) = self.users.get_mut(&book.user) {
            b.open = b.open.saturating_sub(1);
        }
    }

    /// Whether opening one more server for `id` fits pool_size and both budgets.
    pub(super) fn may_open(&self, id: PoolId, upto: usize) -> bool {
        let book = &self.books[id];
        book.open < upto && self.dbs[&book.db].has_room() && self.users[&book.user].has_room()
    }
}

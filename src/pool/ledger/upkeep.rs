//! The ledger's share of the maintenance pass (`pool::maintenance`), about once a second,
//! and the shutdown sweep: retire idle servers past server_lifetime or server_idle_timeout, drop
//! reserve servers once nobody waits, and count the slots min_pool_size wants opened. Pure
//! like the ledger itself: it decides, the caller closes and connects after unlocking.

use std::time::Instant;

use super::{CloseReason, Closing, Ledger, PoolId, ServerTimes};

/// What one upkeep pass decided.
pub(crate) struct Upkeep<C> {
    pub(crate) closing: Closing<C>,
    /// One entry per server to open (already counted): min_pool_size top-ups.
    pub(crate) open: Vec<PoolId>,
}

impl<C: ServerTimes> Ledger<C> {
    /// `has_clients(id)`: clients are logged in to pool `id` (PgBouncer keeps min_pool_size
    /// only for such pools and for forced-user pools).
    pub(crate) fn upkeep(
        &mut self,
        now: Instant,
        has_clients: impl Fn(PoolId) -> bool,
    ) -> Upkeep<C> {
        let mut closing = Vec::new();
        let mut freed = Vec::new();
        for id in 0..self.books.len() {
            let floor = self.min_kept(id, &has_clients);
            let book = &mut self.books[id];
            let l = book.limits.clone();
            let mut keep = Vec::with_capacity(book.idle.len());
            // Oldest-used first, so the idle-timeout floor keeps the warmest servers.
            for conn in std::mem::take(&mut book.idle) {
                let open_now = book.open - freed.iter().filter(|f| **f == id).count();
                let reason = if !l.lifetime.is_zero()
                    && now.saturating_duration_since(conn.connected_at()) >= l.lifetime
                {
                    Some(CloseReason::Lifetime)
                } else if !l.idle_timeout.is_zero()
                    && now.saturating_duration_since(conn.last_used()) >= l.idle_timeout
                    && open_now > floor
                {
                    Some(CloseReason::IdleTimeout)
                } else if open_now > l.size && book.waiters.is_empty() {
                    Some(CloseReason::Surplus)
                } else {
                    None
                };
                match reason {
                    Some(r) => {
                        closing.push((conn, r));
                        freed.push(id);
                    }
                    None => keep.push(conn),
                }
            }
            book.idle = keep;
        }
        for id in freed {
            self.uncount(id);
        }
        closing.extend(self.dispatch(now));
        let mut open = Vec::new();
        for id in 0..self.books.len() {
            let floor = self.min_kept(id, &has_clients);
            if self.recent_failure(id, now).is_some() {
                continue;
            }
            while self.may_open(id, floor) {
                self.count(id);
                open.push(id);
            }
        }
        Upkeep { closing, open }
    }

    /// The servers min_pool_size keeps for `id` right now.
    fn min_kept(&self, id: PoolId, has_clients: &impl Fn(PoolId) -> bool) -> usize {
        let l = &self.books[id].limits;
        if l.min_without_clients || has_clients(id) || self.busy(id) {
            l.min.min(l.size)
        } else {
            0
        }
    }

    /// Takes every idle server out (shutdown); their slots go to waiters, if any.
    pub(crate) fn close_all_idle(&mut self, now: Instant) -> Closing<C> {
        let mut closing = Vec::new();
        for id in 0..self.books.len() {
            for conn in std::mem::take(&mut self.books[id].idle) {
                closing.push((conn, CloseReason::Shutdown));
                self.uncount(id);
            }
        }
        closing.extend(self.dispatch(now));
        closing
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::tests::{fake, sized, Fake};
    use super::super::{Checkout, Counts, Ledger, Limits};
    use super::*;

    fn ids(closing: &Closing<Fake>) -> Vec<(u32, CloseReason)> {
        closing.iter().map(|(c, r)| (c.id, *r)).collect()
    }

    /// A pool holding `n` idle servers opened and last used at `at`.
    fn with_idle(l: &mut Ledger<Fake>, limits: Limits, n: u32, at: Instant) -> PoolId {
        let p = l.register("db", "alice", limits);
        for _ in 0..n {
            assert!(matches!(l.checkout(p, at), Checkout::Connect { .. }));
        }
        for id in 0..n {
            l.release(p, fake(id, at), at);
        }
        p
    }

    #[test]
    fn idle_servers_past_server_idle_timeout_are_closed() {
        let t0 = Instant::now();
        let mut l = Ledger::default();
        let limits = Limits {
            idle_timeout: Duration::from_secs(1),
            ..sized(5)
        };
        let p = with_idle(&mut l, limits, 2, t0);
        let up = l.upkeep(t0 + Duration::from_millis(500), |_| false);
        assert!(up.closing.is_empty() && up.open.is_empty());
        let up = l.upkeep(t0 + Duration::from_secs(1), |_| false);
        assert_eq!(
            ids(&up.closing),
            [(0, CloseReason::IdleTimeout), (1, CloseReason::IdleTimeout)]
        );
        assert_eq!(l.counts(p), Counts::default());
    }

    #[test]
    fn min_pool_size_survives_the_idle_timeout_and_is_topped_up() {
        let t0 = Instant::now();
        let mut l = Ledger::default();
        let limits = Limits {
            idle_timeout: Duration::from_secs(1),
            min: 2,
            ..sized(5)
        };
        let p = with_idle(&mut l, limits, 3, t0);
        // With clients: one of three expires, min_pool_size keeps two.
        let up = l.upkeep(t0 + Duration::from_secs(2), |_| true);
        assert_eq!(ids(&up.closing), [(0, CloseReason::IdleTimeout)]);
        assert!(up.open.is_empty());
        // Without clients and not a forced-user pool: min_pool_size does not apply.
        let up = l.upkeep(t0 + Duration::from_secs(2), |_| false);
        assert_eq!(up.closing.len(), 2);
        // With clients again, it asks for two new servers (already counted).
        let up = l.upkeep(t0 + Duration::from_secs(2), |_| true);
        assert_eq!(up.open, [p, p]);
        assert_eq!(l.counts(p).open, 2);
    }

    #[test]
    fn forced_user_pools_are_kept_warm_without_clients_within_budgets() {
        let t0 = Instant::now();
        let mut l: Ledger<Fake> = Ledger::default();
        let limits = Limits {
            min: 3,
            min_without_clients: true,
            db_limit: 2,
            ..sized(5)
        };
        let p = l.register("db", "app", limits);
        let up = l.upkeep(t0, |_| false);
        assert_eq!(up.open, [p, p], "max_db_connections caps the warm-up");
        assert!(l.upkeep(t0, |_| false).open.is_empty());
    }

    #[test]
    fn idle_servers_past_server_lifetime_are_closed_even_below_min() {
        let t0 = Instant::now();
        let mut l = Ledger::default();
        let limits = Limits {
            lifetime: Duration::from_secs(10),
            min: 1,
            min_without_clients: true,
            ..sized(5)
        };
        let p = with_idle(&mut l, limits, 1, t0);
        let up = l.upkeep(t0 + Duration::from_secs(10), |_| false);
        assert_eq!(ids(&up.closing), [(0, CloseReason::Lifetime)]);
        assert_eq!(up.open, [p], "and replaced for min_pool_size");
    }

    #[test]
    fn reserve_servers_are_closed_once_nobody_waits() {
        let t0 = Instant::now();
        let mut l = Ledger::default();
        let p = with_idle(&mut l, sized(1), 1, t0);
        // Pretend a reserve server was opened: two open, pool_size one.
        l.count(p);
        l.release(p, fake(7, t0), t0);
        let up = l.upkeep(t0, |_| true);
        assert_eq!(ids(&up.closing), [(0, CloseReason::Surplus)]);
        assert_eq!(
            l.counts(p),
            Counts {
                open: 1,
                idle: 1,
                waiting: 0
            }
        );
    }

    #[test]
    fn closing_idle_servers_at_shutdown_frees_their_slots() {
        let t0 = Instant::now();
        let mut l = Ledger::default();
        let p = with_idle(&mut l, sized(2), 2, t0);
        let closing = l.close_all_idle(t0);
        assert_eq!(closing.len(), 2);
        assert_eq!(l.counts(p), Counts::default());
        assert_eq!(l.db_budget("db").open, 0);
    }
}

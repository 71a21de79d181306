//! What pgsluice knows of every database host: its role (primary or standby) and replay lag as
//! last seen, whether it answered, and how many servers pgsluice holds on it; and, per
//! database, the primary it last used and the failover hold in progress. Shared by every pool
//! (one host can serve several databases); read by the admin console and the metrics. Pools
//! order their candidate hosts from it, so the same knowledge steers every pool at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::TargetSessionAttrs;
use crate::net::Address;
use crate::server::ServerRole;

/// One host as pgsluice knows it.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostState {
    /// The role at the last successful look; None before any.
    pub(crate) role: Option<ServerRole>,
    /// Whether the last attempt to reach it succeeded.
    pub(crate) healthy: bool,
    /// Why the last attempt failed, for SHOW HOSTS.
    pub(crate) last_error: Option<String>,
    /// When it was last looked at (a login or a host check).
    pub(crate) checked: Option<Instant>,
    /// A host check is running.
    pub(crate) checking: bool,
}

/// A failover in progress for one database: since when no primary was found.
#[derive(Debug, Clone)]
struct Hold {
    since: Instant,
    previous: Option<String>,
}

/// One database's primary as pgsluice last used it, and the hold while it has none.
#[derive(Debug, Default)]
struct Primary {
    last: Option<String>,
    hold: Option<Hold>,
}

/// A switchover seen: the primary changed, or came back after a hold.
#[derive(Debug, Clone)]
pub(crate) struct Switchover {
    pub(crate) database: String,
    pub(crate) from: Option<String>,
    pub(crate) to: String,
    pub(crate) held: Duration,
}

impl Switchover {
    /// Another host is primary now (not the same one back after a restart).
    pub(crate) fn moved(&self) -> bool {
        self.from.as_ref().is_some_and(|f| *f != self.to)
    }
}

#[derive(Default)]
pub(crate) struct HostRegistry {
    hosts: Mutex<BTreeMap<String, HostState>>,
    /// Per database: the primary last used, and the hold in progress.
    primaries: Mutex<HashMap<String, Primary>>,
    /// Switchovers per database, and the last hold's length, for the metrics.
    switchovers: Mutex<BTreeMap<String, (u64, Duration)>>,
    /// Bumped whenever a host's role changes; the maintenance pass then has the pools that
    /// watch their hosts replace their servers.
    pub(crate) role_changes: AtomicU64,
}

impl HostRegistry {
    /// Candidates for a new server of a pool with `target`, best first. Hosts known to fit
    /// come first (standbys least busy first where standbys are wanted), then hosts not
    /// known yet, then those that did not fit or answer last time: roles change in a
    /// failover, so every host is still tried.
    /// `busy` says how many servers pgsluice holds on a host now.
    pub(crate) fn order(
        &self,
        addresses: &[Address],
        target: TargetSessionAttrs,
        max_lag: Duration,
        busy: impl Fn(&Address) -> usize,
    ) -> Vec<Address> {
        if addresses.len() == 1 {
            return addresses.to_vec();
        }
        let hosts = self.hosts.lock().expect("hosts lock");
        let mut ranked: Vec<(u8, usize, usize, Address)> = addresses
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let state = hosts.get(&a.to_string());
                let rank = match state.and_then(|s| s.role.filter(|_| s.healthy)) {
                    None if state.is_some_and(|s| !s.healthy) => 4,
                    None => 2,
                    Some(role) if fits(target, &role, max_lag) => match target {
                        TargetSessionAttrs::PreferStandby if !role.standby => 3,
                        _ => 1,
                    },
                    Some(_) => 4,
                };
                let busy = if target.prefers_standby() { busy(a) } else { 0 };
                (rank, busy, i, a.clone())
            })
            .collect();
        ranked.sort_by_key(|(rank, busy, i, _)| (*rank, *busy, *i));
        ranked.into_iter().map(|(.., a)| a).collect()
    }

    /// Records a successful look at `address`; true when its role changed (a promotion, a
    /// demotion, or a standby crossing max_replica_lag either way), which makes the pools
    /// replace their servers there.
    pub(crate) fn saw(&self, address: &Address, role: ServerRole, max_lag: Duration) -> bool {
        let mut hosts = self.hosts.lock().expect("hosts lock");
        let state = hosts.entry(address.to_string()).or_default();
        let lagging =
            |r: &ServerRole| r.standby && !max_lag.is_zero() && r.lag.is_some_and(|l| l > max_lag);
        let changed = state.role.is_some_and(|old| {
            old.standby != role.standby || (role.lag.is_some() && lagging(&old) != lagging(&role))
        });
        if changed {
            tracing::warn!(host = %address, role = role.name(), lag = ?role.lag, "host changed role");
            self.role_changes.fetch_add(1, Ordering::Relaxed);
        }
        let mut role = role;
        if role.lag.is_none() && role.standby {
            // A login without the lag query keeps the lag last measured.
            role.lag = state.role.and_then(|r| r.lag);
        }
        state.role = Some(role);
        state.healthy = true;
        state.last_error = None;
        state.checked = Some(Instant::now());
        changed
    }

    /// Records a failed attempt to reach `address`.
    pub(crate) fn failed(&self, address: &Address, error: &str) {
        let mut hosts = self.hosts.lock().expect("hosts lock");
        let state = hosts.entry(address.to_string()).or_default();
        state.healthy = false;
        state.last_error = Some(error.to_string());
        state.checked = Some(Instant::now());
    }

    /// Whether a host check of `address` is due (none running, none within `period`); marks
    /// one as running when it is.
    pub(crate) fn start_check(&self, address: &Address, period: Duration) -> bool {
        let mut hosts = self.hosts.lock().expect("hosts lock");
        let state = hosts.entry(address.to_string()).or_default();
        let due = !state.checking && state.checked.is_none_or(|c| c.elapsed() >= period);
        if due {
            state.checking = true;
        }
        due
    }

    pub(crate) fn end_check(&self, address: &Address) {
        if let Some(state) = self
            .hosts
            .lock()
            .expect("hosts lock")
            .get_mut(&address.to_string())
        {
            state.checking = false;
        }
    }

    /// No host of `database` is primary now: starts its hold (once) and says since when.
    pub(crate) fn hold(&self, database: &str) -> Instant {
        let mut primaries = self.primaries.lock().expect("primaries lock");
        let Primary { last, hold } = primaries.entry(database.to_string()).or_default();
        if hold.is_none() {
            tracing::warn!(database, previous = ?last, "no host is primary: holding new transactions until one is (failover_hold_timeout)");
        }
        hold.get_or_insert_with(|| Hold {
            since: Instant::now(),
            previous: last.clone(),
        })
        .since
    }

    /// Since when new transactions of `database` are held, if they are.
    pub(crate) fn holding_since(&self, database: &str) -> Option<Instant> {
        let primaries = self.primaries.lock().expect("primaries lock");
        primaries
            .get(database)
            .and_then(|p| p.hold.as_ref())
            .map(|h| h.since)
    }

    /// A server of `database` logged in to the primary `address`: ends a hold, and reports a
    /// switchover when the primary is not the one used before.
    pub(crate) fn primary_found(&self, database: &str, address: &Address) -> Option<Switchover> {
        let to = address.to_string();
        let mut primaries = self.primaries.lock().expect("primaries lock");
        let Primary { last, hold } = primaries.entry(database.to_string()).or_default();
        let ended = hold.take();
        let moved = last.as_ref().is_some_and(|l| *l != to);
        let from = ended.as_ref().map_or(last.clone(), |h| h.previous.clone());
        *last = Some(to.clone());
        if ended.is_none() && !moved {
            return None;
        }
        let switchover = Switchover {
            database: database.to_string(),
            from,
            to,
            held: ended.map_or(Duration::ZERO, |h| h.since.elapsed()),
        };
        drop(primaries);
        let mut counts = self.switchovers.lock().expect("switchovers lock");
        let entry = counts.entry(database.to_string()).or_default();
        if switchover.moved() {
            entry.0 += 1;
        }
        entry.1 = switchover.held;
        Some(switchover)
    }

    /// Every host known, by address.
    pub(crate) fn snapshot(&self) -> BTreeMap<String, HostState> {
        self.hosts.lock().expect("hosts lock").clone()
    }

    /// Switchovers seen per database, with the last hold's length.
    pub(crate) fn switchovers(&self) -> BTreeMap<String, (u64, Duration)> {
        self.switchovers.lock().expect("switchovers lock").clone()
    }
}

/// Whether a server with `role` may serve a pool with `target` (libpq's meanings), a standby
/// lagging past `max_lag` (when not zero) excepted.
pub(crate) fn fits(target: TargetSessionAttrs, role: &ServerRole, max_lag: Duration) -> bool {
    let lag_ok = max_lag.is_zero() || !role.standby || role.lag.is_none_or(|l| l <= max_lag);
    match target {
        TargetSessionAttrs::Any => true,
        TargetSessionAttrs::ReadWrite => !role.standby && !role.read_only_default,
        TargetSessionAttrs::Primary => !role.standby,
        TargetSessionAttrs::ReadOnly => {
            (role.standby && lag_ok) || (!role.standby && role.read_only_default)
        }
        TargetSessionAttrs::Standby => role.standby && lag_ok,
        TargetSessionAttrs::PreferStandby => !role.standby || lag_ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> Address {
        Address::Tcp {
            host: "127.0.0.1".into(),
            port,
        }
    }

    fn role(standby: bool, lag_s: Option<u64>) -> ServerRole {
        ServerRole {
            standby,
            read_only_default: false,
            lag: lag_s.map(Duration::from_secs),
        }
    }

    #[test]
    fn targets_pick_the_right_roles() {
        let lag = Duration::from_secs(5);
        let (primary, fresh, stale) = (role(false, None), role(true, Some(1)), role(true, Some(9)));
        use TargetSessionAttrs::*;
        assert!(fits(ReadWrite, &primary, lag) && !fits(ReadWrite, &fresh, lag));
        assert!(fits(ReadOnly, &fresh, lag) && !fits(ReadOnly, &stale, lag));
        assert!(!fits(ReadOnly, &primary, lag));
        assert!(fits(Standby, &fresh, lag) && !fits(Standby, &primary, lag));
        assert!(fits(PreferStandby, &primary, lag) && !fits(PreferStandby, &stale, lag));
        assert!(fits(Any, &stale, lag));
        let read_only_primary = ServerRole {
            read_only_default: true,
            ..primary
        };
        assert!(
            !fits(ReadWrite, &read_only_primary, lag) && fits(Primary, &read_only_primary, lag)
        );
    }

    #[test]
    fn standbys_least_busy_first_and_unknown_hosts_still_tried() {
        let hosts = HostRegistry::default();
        let (a, b, c, d) = (addr(1), addr(2), addr(3), addr(4));
        hosts.saw(&a, role(false, None), Duration::ZERO);
        hosts.saw(&b, role(true, Some(0)), Duration::ZERO);
        hosts.saw(&c, role(true, Some(0)), Duration::ZERO);
        let busy = |x: &Address| if *x == addr(2) { 2 } else { 0 };
        let all = [a.clone(), b.clone(), c.clone(), d.clone()];
        let order = hosts.order(&all, TargetSessionAttrs::ReadOnly, Duration::ZERO, busy);
        assert_eq!(order, [c.clone(), b.clone(), d.clone(), a.clone()]);
        let order = hosts.order(&all, TargetSessionAttrs::ReadWrite, Duration::ZERO, busy);
        assert_eq!(order[0], a);
        assert_eq!(order[1], d, "an unknown host comes before known standbys");
        let order = hosts.order(
            &all,
            TargetSessionAttrs::PreferStandby,
            Duration::ZERO,
            busy,
        );
        assert_eq!(order, [c.clone(), b.clone(), d.clone(), a.clone()]);
        hosts.failed(&c, "refused");
        let order = hosts.order(&all, TargetSessionAttrs::ReadOnly, Duration::ZERO, busy);
        assert_eq!(order.last(), Some(&c));
    }

    #[test]
    fn a_hold_ends_with_a_switchover_to_the_new_primary() {
        let hosts = HostRegistry::default();
        assert!(
            hosts.primary_found("rw", &addr(1)).is_none(),
            "the first primary"
        );
        assert!(hosts.primary_found("rw", &addr(1)).is_none());
        let since = hosts.hold("rw");
        assert_eq!(hosts.hold("rw"), since, "one hold at a time");
        assert!(hosts.holding_since("rw").is_some());
        let s = hosts.primary_found("rw", &addr(2)).expect("a switchover");
        assert_eq!(
            (s.from.as_deref(), s.to.as_str()),
            (Some("127.0.0.1:1"), "127.0.0.1:2")
        );
        assert!(hosts.holding_since("rw").is_none());
        assert_eq!(hosts.switchovers()["rw"].0, 1);
        // A promotion seen without a hold is a switchover too.
        assert!(hosts.primary_found("rw", &addr(1)).is_some());
        assert!(!hosts.saw(&addr(1), role(false, None), Duration::ZERO));
        assert!(
            hosts.saw(&addr(1), role(true, None), Duration::ZERO),
            "demoted"
        );
    }
}

//! The metrics of database hosts and failovers: per host whether it answered, its role, a
//! standby's replay lag and the servers held there; per database the switchovers seen and how
//! long the last failover held new transactions. Read from the pools' host registry at scrape
//! time, like every gauge here.

use super::names;
use super::Exporter;
use crate::live::ConnState;
use crate::state::Shared;

pub(super) fn refresh(shared: &Shared, e: &Exporter) {
    let held = shared.pools.servers.by_server_address();
    for (host, state) in shared.pools.hosts.snapshot() {
        let labels = vec![("host", host.clone())];
        e.gauge(names::HOST_UP, &labels, f64::from(u8::from(state.healthy)));
        if let Some(role) = state.role {
            let mut with_role = labels.clone();
            with_role.push(("role", role.name().to_string()));
            e.gauge(names::HOST_ROLE, &with_role, 1.0);
            if let Some(lag) = role.lag {
                e.gauge(names::HOST_REPLICA_LAG, &labels, lag.as_secs_f64());
            }
        }
        for (name, st) in [("active", ConnState::Active), ("idle", ConnState::Idle)] {
            let mut with_state = labels.clone();
            with_state.push(("state", name.to_string()));
            let n = held
                .get(&host)
                .and_then(|by_state| by_state.get(&st))
                .copied()
                .unwrap_or(0);
            e.gauge(names::HOST_SERVERS, &with_state, n as f64);
        }
    }
    for (database, (count, held)) in shared.pools.hosts.switchovers() {
        let labels = vec![("database", database)];
        e.counter(names::SWITCHOVERS, &labels, count);
        e.gauge(names::FAILOVER_HOLD, &labels, held.as_secs_f64());
    }
}

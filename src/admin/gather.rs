//! Fills a console `Snapshot` from live state: pools from the pool ledger and the connection
//! tables, connections from the client and server tables, traffic from the pools' counters
//! and the stats_period averages, the rest from the configuration in force. Reads only.

use std::sync::atomic::Ordering;

use super::control::RESTART_ONLY;
use super::snapshot::{
    pause_state, ChannelRow, ConfigRow, ConnRow, DatabaseRow, HostRow, ListenerRow, PoolRow,
    Snapshot, StatsRow, UserRow, LIST_NAMES,
};
use crate::live::{ConnInfo, ConnState, TrafficTotals};
use crate::state::Shared;

pub(crate) fn snapshot(shared: &Shared) -> Snapshot {
    let config = shared.config();
    let clients: Vec<_> = shared.client_table.list();
    let servers: Vec<_> = shared.pools.servers.list();
    let pools = shared.pools.all();
    let mut snap = Snapshot {
        version: format!("pgsluice {}", env!("CARGO_PKG_VERSION")),
        state: pause_state(shared.control.any_paused()),
        ..Snapshot::default()
    };
    for pool in &pools {
        let (db, user) = (&pool.key.database, &pool.key.user);
        let mine = |c: &&std::sync::Arc<ConnInfo>| &c.database == db;
        let cl = clients.iter().filter(mine).filter(|c| {
            &c.user == user || config.database(db).and_then(|d| d.user.as_ref()) == Some(user)
        });
        let sv = servers.iter().filter(mine).filter(|s| &s.user == user);
        let count = |it: &mut dyn Iterator<Item = &std::sync::Arc<ConnInfo>>, st: ConnState| {
            it.filter(|c| c.state() == st).count() as u64
        };
        let counts = pool.counts();
        let sv_active = count(&mut sv.clone(), ConnState::Active);
        let sv_idle = counts.idle as u64;
        snap.pools.push(PoolRow {
            database: db.clone(),
            user: user.clone(),
            cl_active: count(&mut cl.clone(), ConnState::Active),
            cl_waiting: count(&mut cl.clone(), ConnState::Waiting),
            sv_active,
            sv_idle,
            sv_login: (counts.open as u64).saturating_sub(sv_active + sv_idle),
            maxwait_us: cl.map(|c| c.wait().as_micros() as u64).max().unwrap_or(0),
            pool_mode: config.pool_mode_for(db, user).to_string(),
            ..PoolRow::default()
        });
    }
    snap.hosts = host_rows(shared);
    (snap.listeners, snap.channels) = listener_rows(shared);
    snap.clients = clients.iter().map(|c| conn_row(c, "C", 0)).collect();
    snap.servers = servers
        .iter()
        .map(|s| {
            let current = pools
                .iter()
                .filter(|p| p.key.database == s.database)
                .map(|p| p.generation.load(Ordering::SeqCst))
                .max()
                .unwrap_or(0);
            let mut row = conn_row(s, "S", s.remote_pid.load(Ordering::Relaxed) as u32);
            row.close_needed = s.generation.load(Ordering::Relaxed) < current;
            row
        })
        .collect();
    let averages = shared.averages.lock().expect("averages lock");
    let mut totals = shared.totals_by_database().into_iter().collect::<Vec<_>>();
    totals.sort_by(|a, b| a.0.cmp(&b.0));
    snap.stats = totals
        .iter()
        .map(|(db, t)| stats_row(db, *t, averages.get(db)))
        .collect();
    drop(averages);
    for (name, d) in &config.databases {
        let current = servers.iter().filter(|s| &s.database == name).count() as u64;
        let clients_now = clients.iter().filter(|c| &c.database == name).count() as u64;
        snap.databases.push(DatabaseRow {
            name: name.clone(),
            host: d.host.clone(),
            port: d.port,
            database: d.server_dbname(name).to_string(),
            force_user: d.user.clone(),
            pool_size: d.pool_size.unwrap_or(config.pooler.default_pool_size) as u64,
            min_pool_size: config.min_pool_size_for(name) as u64,
            reserve_pool: config.reserve_pool_for(name) as u64,
            pool_mode: d.pool_mode.map(|m| m.to_string()),
            max_connections: config.max_db_connections_for(name) as u64,
            current_connections: current,
            max_client_connections: d
                .max_db_client_connections
                .unwrap_or(config.pooler.max_db_client_connections)
                as u64,
            current_client_connections: clients_now,
            paused: shared.control.is_paused(name),
            disabled: shared.control.is_disabled(name),
        });
    }
    snap.users = config
        .users
        .iter()
        .map(|(name, u)| UserRow {
            name: name.clone(),
            pool_mode: u.pool_mode.map(|m| m.to_string()),
        })
        .collect();
    snap.config = config
        .pooler
        .show_rows()
        .into_iter()
        .map(|r| ConfigRow {
            changeable: !RESTART_ONLY.contains(&r.key),
            key: r.key.to_string(),
            value: r.value,
            default: r.default,
        })
        .collect();
    let counts = [
        config.databases.len(),
        config.users.len(),
        pools.len(),
        0,
        clients.len(),
        0,
        0,
        servers.len(),
        0,
        0,
        0,
        0,
    ];
    snap.lists = LIST_NAMES
        .iter()
        .zip(counts)
        .map(|(n, c)| (n.to_string(), c as u64))
        .collect();
    snap
}

fn conn_row(c: &ConnInfo, kind: &'static str, remote_pid: u32) -> ConnRow {
    let state = match c.state() {
        ConnState::Active => "active",
        ConnState::Waiting => "waiting",
        ConnState::Idle => "idle",
        ConnState::Used => "used",
        ConnState::Tested => "tested",
        ConnState::Login => {
            if kind == "S" {
                "new"
            } else {
                "login"
            }
        }
    };
    ConnRow {
        kind,
        user: c.user.clone(),
        database: c.database.clone(),
        state: state.to_string(),
        addr: c.addr.clone(),
        port: c.port,
        local_addr: c.local_addr.clone(),
        local_port: c.local_port,
        connect_time: c.connect_time,
        request_time: c.request_time(),
        wait_us: c.wait().as_micros() as u64,
        close_needed: false,
        id: c.id,
        link: c.link(),
        remote_pid,
        tls: c.tls.clone(),
        application_name: c
            .application_name
            .lock()
            .map(|n| n.clone())
            .unwrap_or_default(),
        prepared_statements: c.prepared_statements.load(Ordering::Relaxed),
        pinned: c.pinned.lock().map(|p| p.clone()).unwrap_or_default(),
    }
}

fn stats_row(db: &str, t: TrafficTotals, avg: TrafficTotals) -> StatsRow {
    StatsRow {
        database: db.to_string(),
        xact_count: t.xact_count,
        query_count: t.query_count,
        bytes_received: t.bytes_received,
        bytes_sent: t.bytes_sent,
        xact_time_us: t.xact_time_us,
        query_time_us: t.query_time_us,
        wait_time_us: t.wait_time_us,
        avg_xact_count: avg.xact_count,
        avg_query_count: avg.query_count,
        avg_recv: avg.bytes_received,
        avg_sent: avg.bytes_sent,
        avg_xact_time_us: avg.xact_time_us,
        avg_query_time_us: avg.query_time_us,
        avg_wait_time_us: avg.wait_time_us,
    }
}

/// SHOW HOSTS: what the pools learnt of each database host, with the servers held there.
fn host_rows(shared: &Shared) -> Vec<HostRow> {
    let held = shared.pools.servers.by_server_address();
    shared
        .pools
        .hosts
        .snapshot()
        .into_iter()
        .map(|(host, state)| {
            let in_state = |st: ConnState| {
                held.get(&host)
                    .and_then(|by_state| by_state.get(&st))
                    .copied()
                    .unwrap_or(0) as u64
            };
            HostRow {
                role: state.role.map_or("unknown", |r| r.name()).to_string(),
                healthy: state.healthy,
                lag_ms: state.role.and_then(|r| r.lag).map(|l| l.as_millis() as u64),
                sv_active: in_state(ConnState::Active),
                sv_idle: in_state(ConnState::Idle),
                checked_ms_ago: state.checked.map(|c| c.elapsed().as_millis() as u64),
                last_error: state.last_error,
                host,
            }
        })
        .collect()
}

/// SHOW LISTENERS and SHOW CHANNELS: each pool's LISTEN connection and its channels.
fn listener_rows(shared: &Shared) -> (Vec<ListenerRow>, Vec<ChannelRow>) {
    let mut listeners = Vec::new();
    let mut channels = Vec::new();
    for hub in shared.hubs.all() {
        let s = &hub.stats;
        let (host, since) = s.server.lock().expect("hub stats").clone();
        let pid = s.server_pid.load(Ordering::Relaxed);
        let chans = s.channels.lock().expect("hub stats").clone();
        listeners.push(ListenerRow {
            database: hub.key.database.clone(),
            user: hub.key.user.clone(),
            state: s.state().name().to_string(),
            host,
            pid: (pid != 0).then_some(u64::from(pid)),
            connected_s: since.map(|t| t.elapsed().as_secs()),
            channels: chans.len() as u64,
            subscribers: s.subscribers.load(Ordering::Relaxed),
            received: s.received.load(Ordering::Relaxed),
            delivered: s.delivered.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            slow_clients_cut: s.slow_clients_cut.load(Ordering::Relaxed),
            reconnects: s.reconnects.load(Ordering::Relaxed),
            loss_notices: s.loss_notices.load(Ordering::Relaxed),
        });
        for (channel, (subscribers, delivered)) in chans {
            channels.push(ChannelRow {
                database: hub.key.database.clone(),
                user: hub.key.user.clone(),
                channel,
                subscribers: subscribers as u64,
                delivered,
            });
        }
    }
    (listeners, channels)
}

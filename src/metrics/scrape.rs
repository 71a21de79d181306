//! Gathers every exported value from live state just before a scrape is rendered: gauges from
//! the pool ledger and the connection tables, counters from the pools' and the process's own
//! atomics (so nothing on the hot path changes for metrics), limits from the configuration.

use std::sync::atomic::Ordering;

use super::names;
use super::{Exporter, Labels};
use crate::live::{ConnState, PoolHistograms};
use crate::server::PIN_REASONS;
use crate::state::Shared;

pub(crate) fn refresh(shared: &Shared, e: &Exporter) {
    let config = shared.config();
    let clients = shared.client_table.list();
    let servers = shared.pools.servers.list();
    for pool in shared.pools.all() {
        let (db, user) = (pool.key.database.clone(), pool.key.user.clone());
        let labels: Labels = vec![("database", db.clone()), ("user", user.clone())];
        let with = |k: &'static str, v: &str| {
            let mut l = labels.clone();
            l.push((k, v.to_string()));
            l
        };
        let mine: Vec<_> = clients
            .iter()
            .filter(|c| c.database == db && (c.user == user || forced(&config, &db, &user)))
            .collect();
        for (state, st) in [
            ("active", ConnState::Active),
            ("waiting", ConnState::Waiting),
            ("idle", ConnState::Idle),
        ] {
            let count = mine.iter().filter(|c| c.state() == st).count();
            e.gauge(names::CLIENTS, &with("state", state), count as f64);
        }
        for reason in PIN_REASONS {
            let count = mine
                .iter()
                .filter(|c| {
                    c.pinned
                        .lock()
                        .is_ok_and(|p| p.split(", ").any(|r| r == reason))
                })
                .count();
            e.gauge(names::CLIENTS_PINNED, &with("reason", reason), count as f64);
        }
        let max_wait = mine.iter().map(|c| c.wait()).max().unwrap_or_default();
        e.gauge(names::MAX_WAIT, &labels, max_wait.as_secs_f64());
        let counts = pool.counts();
        let active = servers
            .iter()
            .filter(|s| s.database == db && s.user == user && s.state() == ConnState::Active)
            .count();
        e.gauge(names::SERVERS, &with("state", "active"), active as f64);
        e.gauge(names::SERVERS, &with("state", "idle"), counts.idle as f64);
        let login = counts.open.saturating_sub(active + counts.idle);
        e.gauge(names::SERVERS, &with("state", "login"), login as f64);
        e.gauge(names::POOL_SIZE, &labels, pool.settings().size as f64);
        let s = &pool.stats;
        let t = s.totals();
        e.counter(names::TRANSACTIONS, &labels, t.xact_count);
        e.counter(names::QUERIES, &labels, t.query_count);
        e.counter(names::RECEIVED_BYTES, &labels, t.bytes_received);
        e.counter(names::SENT_BYTES, &labels, t.bytes_sent);
        e.counter(
            names::SERVERS_OPENED,
            &labels,
            s.servers_opened.load(Ordering::Relaxed),
        );
        e.counter(
            names::SERVER_LOGIN_FAILURES,
            &labels,
            s.server_login_failures.load(Ordering::Relaxed),
        );
        e.counter(
            names::WAIT_TIMEOUTS,
            &labels,
            s.wait_timeouts.load(Ordering::Relaxed),
        );
        for (reason, count) in s
            .servers_closed
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
        {
            e.counter(names::SERVERS_CLOSED, &with("reason", reason), count);
        }
    }
    for name in config.databases.keys() {
        let labels: Labels = vec![("database", name.clone())];
        e.gauge(
            names::MAX_DB_CONNECTIONS,
            &labels,
            config.max_db_connections_for(name) as f64,
        );
    }
    e.gauge(
        names::MAX_CLIENT_CONN,
        &Vec::new(),
        config.pooler.max_client_conn as f64,
    );
    e.gauge(
        names::CLIENT_CONNECTIONS,
        &Vec::new(),
        shared.clients.load(Ordering::Relaxed) as f64,
    );
    // Which connections use TLS: counts, not a label, so series stay few.
    let tls_count = |conns: &[std::sync::Arc<crate::live::ConnInfo>]| {
        conns.iter().filter(|c| !c.tls.is_empty()).count() as f64
    };
    e.gauge(
        names::TLS_CLIENT_CONNECTIONS,
        &Vec::new(),
        tls_count(&clients),
    );
    e.gauge(
        names::TLS_SERVER_CONNECTIONS,
        &Vec::new(),
        tls_count(&servers),
    );
    process_counters(shared, e);
    super::hosts::refresh(shared, e);
    super::listen::refresh(shared, e);
}

/// A forced-user database pools every client under its forced user.
fn forced(config: &crate::config::Config, db: &str, user: &str) -> bool {
    config.database(db).and_then(|d| d.user.as_deref()) == Some(user)
}

fn process_counters(shared: &Shared, e: &Exporter) {
    let p = &shared.counters;
    e.counter(
        names::CLIENT_LOGINS,
        &Vec::new(),
        p.logins.load(Ordering::Relaxed),
    );
    for (code, count) in p
        .login_failures
        .lock()
        .map(|m| m.clone())
        .unwrap_or_default()
    {
        e.counter(
            names::CLIENT_LOGIN_FAILURES,
            &vec![("sqlstate", code)],
            count,
        );
    }
    let client_errors = p.client_errors.lock().map(|m| m.clone());
    for (kind, count) in client_errors.unwrap_or_default() {
        e.counter(
            names::CLIENT_ERRORS,
            &vec![("kind", kind.to_string())],
            count,
        );
    }
    let cancels = p.cancels.lock().map(|m| m.clone());
    for (route, count) in cancels.unwrap_or_default() {
        e.counter(
            names::CANCEL_REQUESTS,
            &vec![("route", route.to_string())],
            count,
        );
    }
    let mut errors = p.errors.lock().map(|m| m.clone()).unwrap_or_default();
    for pool in shared.pools.all() {
        for (class, count) in pool
            .stats
            .errors
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
        {
            *errors.entry(class).or_default() += count;
        }
    }
    for (class, count) in errors {
        e.counter(names::ERRORS, &vec![("class", class)], count);
    }
    let c = shared.statement_counters.snapshot();
    e.counter(names::PREPARED_CLIENT_PARSES, &Vec::new(), c.client_parses);
    e.counter(names::PREPARED_SERVER_PARSES, &Vec::new(), c.server_parses);
    e.counter(names::PREPARED_BINDS, &Vec::new(), c.binds);
    e.counter(names::PREPARED_EVICTIONS, &Vec::new(), c.evictions);
}

/// Appends the duration histograms of every pool, one family at a time (the exposition
/// format wants a family's samples together, after its TYPE line).
pub(crate) fn render_histograms<'a>(
    out: &mut String,
    pools: impl IntoIterator<Item = (&'a str, &'a str, &'a PoolHistograms)> + Clone,
) {
    type Pick = fn(&PoolHistograms) -> &crate::histogram::DurationHistogram;
    let families: [(&str, Pick); 3] = [
        (names::WAIT_SECONDS, |h| &h.wait),
        (names::TRANSACTION_SECONDS, |h| &h.transaction),
        (names::QUERY_SECONDS, |h| &h.query),
    ];
    for (name, pick) in families {
        let mut typed = false;
        for (database, user, histograms) in pools.clone() {
            let h = pick(histograms);
            if !h.is_enabled() {
                continue;
            }
            if !typed {
                if let Some((_, _, help)) =
                    names::HELP.iter().find(|(metric, _, _)| *metric == name)
                {
                    out.push_str(&format!("# HELP {name} {help}\n"));
                }
                out.push_str(&format!("# TYPE {name} histogram\n"));
                typed = true;
            }
            let labels = format!(
                "database=\"{}\",user=\"{}\",",
                escape(database),
                escape(user)
            );
            h.render(out, name, &labels);
        }
    }
}

/// A label value as the text format wants it: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

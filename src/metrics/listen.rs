//! The metrics of LISTEN in transaction and statement pooling: per pool, its LISTEN
//! connection's state, subscribers and channels, and the counters of notifications received,
//! queued for clients, clients cut off, reconnects and lost-notifications notices. Read from
//! each pool's listening connection at scrape time.

use std::sync::atomic::Ordering;

use super::names;
use super::Exporter;
use crate::notify::HubState;
use crate::state::Shared;

pub(super) fn refresh(shared: &Shared, e: &Exporter) {
    for hub in shared.hubs.all() {
        let s = &hub.stats;
        let labels = vec![
            ("database", hub.key.database.clone()),
            ("user", hub.key.user.clone()),
        ];
        let up = s.state() == HubState::Listening;
        e.gauge(names::LISTEN_UP, &labels, f64::from(u8::from(up)));
        let count = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        e.gauge(
            names::LISTEN_SUBSCRIBERS,
            &labels,
            count(&s.subscribers) as f64,
        );
        let channels = s.channels.lock().map_or(0, |c| c.len());
        e.gauge(names::LISTEN_CHANNELS, &labels, channels as f64);
        e.counter(names::NOTIFICATIONS_RECEIVED, &labels, count(&s.received));
        e.counter(names::NOTIFICATIONS_DELIVERED, &labels, count(&s.delivered));
        e.counter(names::NOTIFICATIONS_DROPPED, &labels, count(&s.dropped));
        e.counter(
            names::LISTEN_SLOW_CLIENTS,
            &labels,
            count(&s.slow_clients_cut),
        );
        e.counter(names::LISTEN_RECONNECTS, &labels, count(&s.reconnects));
        e.counter(
            names::NOTIFICATION_LOSS_NOTICES,
            &labels,
            count(&s.loss_notices),
        );
    }
}

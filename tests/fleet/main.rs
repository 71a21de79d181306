//! Several pgsluice instances as one fleet: cancels forwarded between peers ([peers] and
//! peers_dns), the drain on SIGTERM (/readyz first, then the listener, then each client at
//! its transaction's end), so_reuseport, auto_reload through a ConfigMap-style symlink swap,
//! and three instances behind a real HAProxy restarted one by one under load.

#[path = "../common/mod.rs"]
mod common;

mod auto_reload;
mod behind_haproxy;
mod drain;
mod instances;
mod peers;

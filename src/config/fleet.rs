//! The settings that let several pgsluice instances run as one fleet behind a load balancer:
//! sharing a port (`so_reuseport`, PgBouncer's key), finding each other to forward cancels
//! (`[peers]` with PgBouncer's meaning, or `peers_dns` naming a headless Service, and
//! `peer_id_from_hostname` for a StatefulSet's ordinal), draining on shutdown
//! (`shutdown_accept_delay`, `shutdown_idle_grace`) and following files that change on disk
//! (`auto_reload`). Read by `PoolerSettings::read` and `parse_config`; shown by SHOW CONFIG.

use std::collections::BTreeMap;
use std::time::Duration;

use toml::{Table, Value};

use super::duration::format as dur;
use super::error::ConfigProblem;
use super::reader::{self, toml_key, Section};

/// The keys of one `[peers.<id>]` entry.
pub const PEER_KEYS: &[&str] = &["host", "port"];

/// The largest peer_id: PgBouncer's limit, because the id shares the cancel key's process id
/// with a random part and the bits that stop a forwarded cancel from travelling on.
pub const MAX_PEER_ID: u16 = 16383;

#[derive(Debug, Clone, PartialEq)]
pub struct FleetSettings {
    /// Listen with SO_REUSEPORT, so several processes share one port (and a new one can start
    /// before the old one stops); the kernel spreads new connections over them.
    pub so_reuseport: bool,
    /// Take peer_id from the host name's trailing ordinal plus one (`pgsluice-2` → 3), as a
    /// Kubernetes StatefulSet names its pods.
    pub peer_id_from_hostname: bool,
    /// A DNS name (`host` or `host:port`) that resolves to every instance, such as a headless
    /// Service: a cancel for another instance is sent to each address it resolves to.
    pub peers_dns: String,
    /// After a shutdown signal, how long to go on accepting while /readyz already says
    /// "draining", so load balancers stop sending clients before the port closes.
    pub shutdown_accept_delay: Duration,
    /// While shutting down, how long an idle client may take to start its next transaction
    /// before it is closed; one that does is closed as soon as that transaction ends.
    pub shutdown_idle_grace: Duration,
    /// Reload pooler.toml and the auth_file when their contents change on disk (a ConfigMap
    /// or Secret update swaps a symlink), with RELOAD's all-or-nothing validation.
    pub auto_reload: bool,
}

impl Default for FleetSettings {
    fn default() -> Self {
        FleetSettings {
            so_reuseport: false,
            peer_id_from_hostname: false,
            peers_dns: String::new(),
            shutdown_accept_delay: Duration::ZERO,
            shutdown_idle_grace: Duration::from_secs(1),
            auto_reload: false,
        }
    }
}

impl FleetSettings {
    pub(super) fn read(&mut self, sec: &mut Section) {
        sec.set("so_reuseport", &mut self.so_reuseport, reader::boolean);
        sec.set(
            "peer_id_from_hostname",
            &mut self.peer_id_from_hostname,
            reader::boolean,
        );
        sec.set("peers_dns", &mut self.peers_dns, peers_dns);
        sec.set(
            "shutdown_accept_delay",
            &mut self.shutdown_accept_delay,
            reader::duration,
        );
        sec.set(
            "shutdown_idle_grace",
            &mut self.shutdown_idle_grace,
            reader::duration,
        );
        sec.set("auto_reload", &mut self.auto_reload, reader::boolean);
    }

    /// SHOW CONFIG values, in POOLER_KEYS order.
    pub(super) fn show_values(&self) -> Vec<(&'static str, String)> {
        vec![
            ("so_reuseport", self.so_reuseport.to_string()),
            (
                "peer_id_from_hostname",
                self.peer_id_from_hostname.to_string(),
            ),
            ("peers_dns", self.peers_dns.clone()),
            ("shutdown_accept_delay", dur(self.shutdown_accept_delay)),
            ("shutdown_idle_grace", dur(self.shutdown_idle_grace)),
            ("auto_reload", self.auto_reload.to_string()),
        ]
    }

    /// `peers_dns` split into host and port; the port defaults to `listen_port`, since every
    /// instance of a fleet listens on the same one.
    pub fn peers_dns_target(&self, listen_port: u16) -> Option<(String, u16)> {
        if self.peers_dns.is_empty() {
            return None;
        }
        Some(match split_host_port(&self.peers_dns) {
            Some((host, port)) => (host.to_string(), port),
            None => (self.peers_dns.clone(), listen_port),
        })
    }
}

/// `host:port` with a numeric port; a bare host (or an IPv6 literal without brackets) is None.
fn split_host_port(s: &str) -> Option<(&str, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.contains(':') && !s.starts_with('[') {
        return None;
    }
    Some((host, port.parse().ok()?))
}

fn peers_dns(v: &Value) -> Result<String, String> {
    let s = reader::string(v)?;
    let s = s.trim().to_string();
    if let Some((_, port)) = s.rsplit_once(':') {
        if !s.contains('[') && s.matches(':').count() == 1 && port.parse::<u16>().is_err() {
            return Err(format!(
                "{s:?} is not `host` or `host:port` with a port between 1 and 65535"
            ));
        }
    }
    Ok(s)
}

/// One `[peers.<id>]` entry: where the instance with that peer_id listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSettings {
    /// Host name, IP address, or a Unix socket directory (starting with '/').
    pub host: String,
    pub port: u16,
}

/// Reads `[peers]`: PgBouncer's section, one entry per other instance keyed by its peer_id.
pub(super) fn read_peers(
    table: &Table,
    problems: &mut Vec<ConfigProblem>,
) -> BTreeMap<u16, PeerSettings> {
    let mut peers = BTreeMap::new();
    for (name, value) in table {
        let path = format!("peers.{}", toml_key(name));
        let id = match name.parse::<u16>() {
            Ok(id) if (1..=MAX_PEER_ID).contains(&id) => id,
            _ => {
                problems.push(ConfigProblem::new(
                    path,
                    format!("a peer is named by its peer_id, a number between 1 and {MAX_PEER_ID}"),
                ));
                continue;
            }
        };
        let Value::Table(t) = value else {
            problems.push(ConfigProblem::new(
                path.clone(),
                format!("must be a table: write `[{path}]` with host and port below it"),
            ));
            continue;
        };
        let mut sec = Section::new(path, t, PEER_KEYS, problems);
        let mut peer = PeerSettings {
            host: String::new(),
            port: 6432,
        };
        sec.set("host", &mut peer.host, reader::non_empty_string);
        sec.set("port", &mut peer.port, reader::port);
        if peer.host.is_empty() && !t.contains_key("host") {
            sec.problem("host", "missing: where does this peer listen?");
        }
        peers.insert(id, peer);
    }
    peers
}

/// With peer_id_from_hostname, sets `peer_id` from this machine's host name.
pub(super) fn resolve_peer_id(sec: &mut Section, peer_id: &mut u16, fleet: &FleetSettings) {
    if !fleet.peer_id_from_hostname {
        return;
    }
    if sec.has("peer_id") {
        sec.problem(
            "peer_id_from_hostname",
            "set peer_id or peer_id_from_hostname, not both",
        );
        return;
    }
    let name = rustix::system::uname();
    let hostname = name.nodename().to_string_lossy();
    match peer_id_from_hostname(&hostname) {
        Ok(id) => *peer_id = id,
        Err(e) => sec.problem("peer_id_from_hostname", e),
    }
}

/// The peer_id a StatefulSet pod's host name implies: its trailing ordinal plus one, since
/// peer_id 0 means "no peering".
pub fn peer_id_from_hostname(hostname: &str) -> Result<u16, String> {
    let ordinal = hostname
        .rsplit_once('-')
        .and_then(|(_, n)| n.parse::<u16>().ok())
        .ok_or_else(|| {
            format!("host name {hostname:?} does not end in -<ordinal> (as StatefulSet pods do)")
        })?;
    match ordinal.checked_add(1) {
        Some(id) if id <= MAX_PEER_ID => Ok(id),
        _ => Err(format!(
            "host name {hostname:?} gives peer_id {} (ordinal + 1), above {MAX_PEER_ID}",
            u32::from(ordinal) + 1
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_ids_come_from_statefulset_ordinals() {
        assert_eq!(peer_id_from_hostname("pgsluice-0"), Ok(1));
        assert_eq!(peer_id_from_hostname("pos-pooler-12"), Ok(13));
        assert!(peer_id_from_hostname("pgsluice")
            .unwrap_err()
            .contains("does not end in -<ordinal>"));
        assert!(peer_id_from_hostname("pgsluice-abc").is_err());
        assert!(peer_id_from_hostname("p-16383")
            .unwrap_err()
            .contains("above 16383"));
    }

    #[test]
    fn the_kubernetes_configmap_holds_a_valid_pooler_toml() {
        let manifest = include_str!("../../deploy/kubernetes/configmap.yaml");
        let (_, block) = manifest.split_once("pooler.toml: |\n").unwrap();
        let text: String = block
            .lines()
            .map(|l| l.strip_prefix("    ").unwrap_or(l))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(text.contains("peer_id_from_hostname = true"));
        // This machine's host name is no StatefulSet pod's: stand in for it.
        let text = text.replace("peer_id_from_hostname = true", "peer_id = 1");
        let config = crate::config::Config::parse(&text, std::path::Path::new("/etc/pgsluice"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(config.pooler.fleet.auto_reload);
        assert_eq!(
            config
                .pooler
                .fleet
                .peers_dns_target(config.pooler.listen_port),
            Some(("pgsluice-peers".to_string(), 6432))
        );
    }

    #[test]
    fn peers_dns_defaults_to_the_listen_port() {
        let with = |s: &str| FleetSettings {
            peers_dns: s.to_string(),
            ..FleetSettings::default()
        };
        assert_eq!(with("").peers_dns_target(6432), None);
        assert_eq!(
            with("pgsluice-peers.db.svc").peers_dns_target(6432),
            Some(("pgsluice-peers.db.svc".to_string(), 6432))
        );
        assert_eq!(
            with("peers:7000").peers_dns_target(6432),
            Some(("peers".to_string(), 7000))
        );
        assert_eq!(
            with("[::1]:7000").peers_dns_target(6432),
            Some(("::1".to_string(), 7000))
        );
    }
}

//! Helpers for tests with several instances: a config per instance with a fixed port (so a
//! restarted instance comes back where the others and the load balancer expect it), its
//! peer_id and a metrics listener, plus plain HTTP GETs of /readyz and /healthz.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

/// One instance's place in a fleet.
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    pub peer_id: u16,
    pub port: u16,
    pub metrics_port: u16,
}

impl Slot {
    /// Ports below the ephemeral range: a restarted instance binds them again.
    pub fn new(peer_id: u16) -> Slot {
        Slot {
            peer_id,
            port: fixed_port(),
            metrics_port: fixed_port(),
        }
    }

    /// Transaction pooling, this slot's port, peer_id and metrics listener.
    pub fn config(&self, extra: &str) -> PoolerConfig {
        PoolerConfig::new(shared_cluster())
            .pooler(&format!(
                "pool_mode = \"transaction\"\nlisten_port = {}\npeer_id = {}\n\
                 metrics_addr = \"127.0.0.1:{}\"",
                self.port, self.peer_id, self.metrics_port
            ))
            .pooler(extra)
    }
}

/// `config` with a [peers] entry for every slot (an instance's own entry is harmless).
pub fn with_peers(mut config: PoolerConfig, slots: &[Slot]) -> PoolerConfig {
    for s in slots {
        config = config.section(
            &format!("peers.{}", s.peer_id),
            &format!("host = \"127.0.0.1\"\nport = {}", s.port),
        );
    }
    config
}

/// GET `path` over HTTP/1.0: (status code, body); None when nothing listens.
pub async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut reply = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut reply))
        .await
        .ok()?
        .ok()?;
    let (head, body) = reply.split_once("\r\n\r\n")?;
    let code = head.split(' ').nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// Whether something accepts TCP connections on the port.
pub fn accepts(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// The first line of `log` containing `needle`, waiting for it to appear.
pub async fn wait_for_log(p: &Pooler, needle: &str, what: &str) {
    wait_until(what, Duration::from_secs(30), || async {
        p.log().contains(needle)
    })
    .await;
}

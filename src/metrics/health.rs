//! /healthz and /readyz, served beside /metrics for load balancers and Kubernetes probes.
//! Alive: the process answers. Ready: it accepts clients, is not shutting down, and can reach
//! PostgreSQL — a TCP connection to a database's host opens (PostgreSQL logs nothing for a
//! connection closed before its startup packet). Probes are cached for a second, so a busy
//! load balancer cannot turn them into a connection storm.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::net::Address;
use crate::state::Shared;

/// How long one reachability verdict is reused.
const PROBE_CACHE: Duration = Duration::from_secs(1);
/// How long a probe waits for a TCP connection before calling the host unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The last reachability verdict, shared by every /readyz request.
#[derive(Default)]
pub(crate) struct Reachability {
    last: Mutex<Option<(Instant, Result<(), String>)>>,
}

/// A probe's answer: ready or not, and why, for the response body.
pub(crate) struct Readiness {
    pub(crate) ready: bool,
    pub(crate) reason: String,
}

impl Reachability {
    pub(crate) async fn readiness(&self, shared: &Shared) -> Readiness {
        if shared.is_shutting_down() {
            return Readiness {
                ready: false,
                reason: "not ready: shutting down (draining clients)".to_string(),
            };
        }
        match self.reach(shared).await {
            Ok(()) => Readiness {
                ready: true,
                reason: "ready".to_string(),
            },
            Err(why) => Readiness {
                ready: false,
                reason: format!("not ready: {why}"),
            },
        }
    }

    async fn reach(&self, shared: &Shared) -> Result<(), String> {
        if let Some((at, verdict)) = self.last.lock().expect("readiness cache").clone() {
            if at.elapsed() < PROBE_CACHE {
                return verdict;
            }
        }
        let verdict = probe(shared).await;
        *self.last.lock().expect("readiness cache") = Some((Instant::now(), verdict.clone()));
        verdict
    }
}

/// Ok when at least one configured database server (any host of any database) answers a TCP
/// connection, or none is configured: one database or replica being down should not take the
/// whole instance out of a load balancer that also serves the others.
async fn probe(shared: &Shared) -> Result<(), String> {
    let config = shared.config();
    // One probe per distinct server, however many databases share it.
    let mut seen = BTreeSet::new();
    let addresses: Vec<Address> = config
        .databases
        .values()
        .flat_map(|db| db.addresses())
        .map(|(host, port)| Address::from_host_port(&host, port))
        .filter(|a| seen.insert(a.to_string()))
        .collect();
    if addresses.is_empty() {
        return Ok(());
    }
    let keepalive = config.pooler.tcp_keepalive;
    let attempts = addresses.iter().map(|address| async move {
        match tokio::time::timeout(PROBE_TIMEOUT, address.connect(keepalive)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("{address}: {e}")),
            Err(_) => Err(format!("{address}: no answer within {PROBE_TIMEOUT:?}")),
        }
    });
    let results = futures_util::future::join_all(attempts).await;
    if results.iter().any(Result::is_ok) {
        return Ok(());
    }
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    Err(format!("cannot reach PostgreSQL ({})", failures.join("; ")))
}

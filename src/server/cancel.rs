//! Forwarding a CancelRequest to a server: PostgreSQL docs "Canceling Requests in Progress" —
//! a new connection carrying only the 16-byte CancelRequest with the backend's key, closed
//! by the server without a reply.

use bytes::BytesMut;
use postgres_protocol::message::frontend;
use tokio::io::AsyncWriteExt;

use crate::net::Address;

pub(crate) async fn send_cancel(address: &Address, pid: u32, secret: u32) -> std::io::Result<()> {
    let mut stream = address.connect(false).await?;
    let mut out = BytesMut::new();
    frontend::cancel_request(pid as i32, secret as i32, &mut out);
    stream.write_all(&out).await?;
    stream.shutdown().await?;
    // Wait for Postgres to close its end so the cancel has been read before we return.
    let mut sink = [0u8; 16];
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut stream, &mut sink),
    )
    .await;
    Ok(())
}

/// The server a client's cancel key currently points at.
#[derive(Debug, Clone)]
pub(crate) struct CancelTarget {
    pub(crate) address: Address,
    pub(crate) pid: u32,
    pub(crate) secret: u32,
}

/// Set in the process id of every key pgsluice hands out and cleared in a cancel forwarded to
/// a peer, so that a forwarded cancel is never forwarded again: a wrong [peers] entry or a
/// DNS name that lists every instance cannot make it travel in circles. Bit 31 stays clear,
/// because some drivers keep the process id as a signed integer.
const MAY_FORWARD: u32 = 1 << 30;

/// Where a CancelRequest goes, decided from its process id alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CancelRoute {
    /// This instance issued the key: look it up here.
    Here,
    /// Another instance did: send it there, with this process id (no longer forwardable).
    Peer { peer_id: u16, pid: u32 },
    /// Another instance's key that was already forwarded once: drop it.
    Misdelivered { peer_id: u16 },
}

/// The peer_id a key's process id carries (bits 16 to 29).
pub(crate) fn key_peer_id(pid: u32) -> u16 {
    ((pid >> 16) & 0x3FFF) as u16
}

pub(crate) fn route(own_peer_id: u16, pid: u32) -> CancelRoute {
    let peer_id = key_peer_id(pid);
    if peer_id == own_peer_id {
        CancelRoute::Here
    } else if pid & MAY_FORWARD != 0 {
        CancelRoute::Peer {
            peer_id,
            pid: pid & !MAY_FORWARD,
        }
    } else {
        CancelRoute::Misdelivered { peer_id }
    }
}

/// Cancel keys pgsluice handed to its clients (BackendKeyData), and where each one leads.
/// The process id carries this instance's peer_id in bits 16 to 29 so that several
/// instances behind one address can tell whose key a cancel carries (invariant 6).
/// It also counts the cancels on their way to each server, so that a server is not handed to
/// another client while a cancel meant for the previous one can still land on it.
#[derive(Default)]
pub(crate) struct CancelRegistry {
    inner: std::sync::Mutex<Inner>,
    /// Woken whenever a forwarded cancel has been delivered (or given up).
    delivered: tokio::sync::Notify,
}

#[derive(Default)]
struct Inner {
    keys: std::collections::HashMap<(u32, u32), Option<CancelTarget>>,
    /// Cancels being forwarded, by the backend key they carry.
    in_flight: std::collections::HashMap<(u32, u32), usize>,
}

/// A cancel on its way to a server; dropping it (delivered, failed or timed out) lets
/// `quiesce` callers go on.
pub(crate) struct InFlight<'a> {
    registry: &'a CancelRegistry,
    backend: (u32, u32),
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut inner = self.registry.lock();
        if let Some(n) = inner.in_flight.get_mut(&self.backend) {
            *n -= 1;
            if *n == 0 {
                inner.in_flight.remove(&self.backend);
            }
        }
        drop(inner);
        self.registry.delivered.notify_waiters();
    }
}

impl CancelRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("cancel registry lock")
    }

    /// A fresh random key, unique among live clients.
    pub(crate) fn issue(&self, peer_id: u16) -> (u32, u32) {
        let mut inner = self.lock();
        loop {
            let pid = MAY_FORWARD | (u32::from(peer_id) << 16) | u32::from(rand::random::<u16>());
            let key = (pid, rand::random::<u32>());
            if let std::collections::hash_map::Entry::Vacant(e) = inner.keys.entry(key) {
                e.insert(None);
                return key;
            }
        }
    }

    pub(crate) fn point(&self, key: (u32, u32), target: CancelTarget) {
        if let Some(slot) = self.lock().keys.get_mut(&key) {
            *slot = Some(target);
        }
    }

    /// Points `key` nowhere (its client is leaving `backend`) and says whether a cancel is
    /// still on its way to that backend, in one lock: the common answer, no, costs the relay
    /// nothing more than pointing the key away did.
    pub(crate) fn detach(&self, key: (u32, u32), backend: (u32, u32)) -> bool {
        let mut inner = self.lock();
        if let Some(slot) = inner.keys.get_mut(&key) {
            *slot = None;
        }
        inner.in_flight.contains_key(&backend)
    }

    pub(crate) fn forget(&self, key: (u32, u32)) {
        self.lock().keys.remove(&key);
    }

    /// The target for a key, only when both halves match (a wrong secret finds nothing),
    /// counted as in flight to that server until the returned guard is dropped. A key that
    /// a peer forwarded here matches too: only its forwarding bit differs.
    pub(crate) fn begin(&self, pid: u32, secret: u32) -> Option<(CancelTarget, InFlight<'_>)> {
        let mut inner = self.lock();
        let target = inner
            .keys
            .get(&(pid | MAY_FORWARD, secret))
            .cloned()
            .flatten()?;
        let backend = (target.pid, target.secret);
        *inner.in_flight.entry(backend).or_default() += 1;
        Some((
            target,
            InFlight {
                registry: self,
                backend,
            },
        ))
    }

    /// Waits until no cancel is on its way to the backend with this key, at most `limit`
    /// (0 = no limit). Call after the client's key stopped pointing at it, so no new one can
    /// start. False when one may still land: that server must not serve anyone else.
    pub(crate) async fn quiesce(&self, backend: (u32, u32), limit: std::time::Duration) -> bool {
        let wait = async {
            loop {
                let delivered = self.delivered.notified();
                let pending = self.lock().in_flight.contains_key(&backend);
                if !pending {
                    return;
                }
                delivered.await;
            }
        };
        if limit.is_zero() {
            wait.await;
            true
        } else {
            tokio::time::timeout(limit, wait).await.is_ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn target() -> CancelTarget {
        CancelTarget {
            address: Address::Tcp {
                host: "127.0.0.1".into(),
                port: 5432,
            },
            pid: 77,
            secret: 88,
        }
    }

    #[test]
    fn a_key_is_forwarded_to_its_peer_once() {
        let registry = CancelRegistry::default();
        let (pid, secret) = registry.issue(7);
        assert_eq!(key_peer_id(pid), 7);
        assert!(pid < 1 << 31, "positive as a signed process id");
        assert_eq!(route(7, pid), CancelRoute::Here);
        let CancelRoute::Peer { peer_id, pid: sent } = route(3, pid) else {
            panic!("another instance's key is forwarded");
        };
        assert_eq!((peer_id, key_peer_id(sent)), (7, 7));
        // At the owner the forwarded key finds its client; elsewhere it goes no further.
        assert_eq!(route(7, sent), CancelRoute::Here);
        assert_eq!(route(5, sent), CancelRoute::Misdelivered { peer_id: 7 });
        registry.point((pid, secret), target());
        assert!(registry.begin(sent, secret).is_some());
        assert!(registry.begin(sent, secret ^ 1).is_none());
    }

    #[tokio::test]
    async fn a_server_is_quiet_only_once_its_cancels_are_delivered() {
        let registry = CancelRegistry::default();
        let key = registry.issue(0);
        assert!(registry.begin(key.0, key.1 ^ 1).is_none(), "wrong secret");
        assert!(registry.begin(key.0, key.1).is_none(), "not attached");
        registry.point(key, target());
        let (found, in_flight) = registry.begin(key.0, key.1).expect("attached");
        assert_eq!((found.pid, found.secret), (77, 88));
        assert!(registry.detach(key, (77, 88)), "a cancel is on its way");
        // While the cancel is on its way, the server is not quiet.
        assert!(!registry.quiesce((77, 88), Duration::from_millis(50)).await);
        let waiter = registry.quiesce((77, 88), Duration::from_secs(30));
        tokio::pin!(waiter);
        assert!(futures_pending(waiter.as_mut()).await);
        drop(in_flight);
        assert!(waiter.await, "delivered: the server may serve someone else");
        assert!(!registry.detach(key, (77, 88)));
        // Another server's key was never waited on.
        assert!(registry.quiesce((1, 2), Duration::from_millis(1)).await);
    }

    async fn futures_pending<F: std::future::Future + Unpin>(mut f: F) -> bool {
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(std::pin::Pin::new(&mut f).poll(cx).is_pending())
        })
        .await
    }
}

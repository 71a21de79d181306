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

/// Cancel keys pgsluice handed to its clients (BackendKeyData), and where each one leads.
/// The process id carries this instance's peer_id in its high 16 bits so that several
/// instances behind one address can tell whose key a cancel carries (invariant 6).
#[derive(Default)]
pub(crate) struct CancelRegistry {
    keys: std::sync::Mutex<std::collections::HashMap<(u32, u32), Option<CancelTarget>>>,
}

impl CancelRegistry {
    /// A fresh random key, unique among live clients.
    pub(crate) fn issue(&self, peer_id: u16) -> (u32, u32) {
        let mut keys = self.keys.lock().expect("cancel registry lock");
        loop {
            let pid = (u32::from(peer_id) << 16) | u32::from(rand::random::<u16>());
            let key = (pid, rand::random::<u32>());
            if let std::collections::hash_map::Entry::Vacant(e) = keys.entry(key) {
                e.insert(None);
                return key;
            }
        }
    }

    pub(crate) fn point(&self, key: (u32, u32), target: Option<CancelTarget>) {
        if let Some(slot) = self
            .keys
            .lock()
            .expect("cancel registry lock")
            .get_mut(&key)
        {
            *slot = target;
        }
    }

    pub(crate) fn forget(&self, key: (u32, u32)) {
        self.keys.lock().expect("cancel registry lock").remove(&key);
    }

    /// The target for a key, only when both halves match (a wrong secret finds nothing).
    pub(crate) fn lookup(&self, pid: u32, secret: u32) -> Option<CancelTarget> {
        self.keys
            .lock()
            .expect("cancel registry lock")
            .get(&(pid, secret))
            .cloned()
            .flatten()
    }
}

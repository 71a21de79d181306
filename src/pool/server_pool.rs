//! One pool: idle servers (LIFO, so the warmest is reused, as PgBouncer's default), a FIFO
//! queue of waiting clients, and the count of slots in use. The lock is a short synchronous
//! critical section never held across `.await`; a released server goes straight to the
//! longest waiter; a waiter that gives up leaves the queue at once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Context;
use std::time::Instant;

use tokio::sync::oneshot;

use super::{Lease, PoolError, PoolKey, PoolSettings};
use crate::server::{login, Credential, LoginRequest, ServerConn};

#[derive(Default)]
struct State {
    idle: Vec<ServerConn>,
    waiters: VecDeque<(u64, oneshot::Sender<Lease>)>,
    /// Slots in use: idle servers plus live leases (connected or connecting).
    total: usize,
    next_waiter: u64,
}

pub(crate) struct Pool {
    pub(crate) key: PoolKey,
    settings: Mutex<Arc<PoolSettings>>,
    state: Mutex<State>,
    next_server_id: Arc<AtomicU64>,
}

enum Next {
    Ready(Lease),
    Connect(Lease),
    Wait(u64, oneshot::Receiver<Lease>),
}

impl Pool {
    pub(super) fn new(key: PoolKey, settings: PoolSettings, ids: Arc<AtomicU64>) -> Pool {
        Pool {
            key,
            settings: Mutex::new(Arc::new(settings)),
            state: Mutex::new(State::default()),
            next_server_id: ids,
        }
    }

    pub(crate) fn settings(&self) -> Arc<PoolSettings> {
        self.settings.lock().expect("pool settings lock").clone()
    }

    /// Learns a credential at run time (SCRAM keys from a client's login).
    pub(crate) fn set_credential(&self, credential: Credential) {
        let mut s = self.settings.lock().expect("pool settings lock");
        let mut new = (**s).clone();
        new.credential = credential;
        *s = Arc::new(new);
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("pool state lock")
    }

    /// A server for one client: an idle one, a new one if below pool size, or the next one
    /// released, waiting at most query_wait_timeout (0 = forever).
    pub(crate) async fn checkout(self: &Arc<Self>) -> Result<Lease, PoolError> {
        let started = Instant::now();
        loop {
            let next = self.next_step();
            let mut lease = match next {
                Next::Ready(lease) => lease,
                Next::Connect(lease) => return self.connect(lease).await,
                Next::Wait(id, rx) => self.wait(id, rx, started).await?,
            };
            if lease.conn.is_none() {
                return self.connect(lease).await;
            }
            if lease.conn.as_mut().is_some_and(looks_alive) {
                return Ok(lease);
            }
            // Closed while idle (server restart, idle timeout on the server): try again.
            lease.discard();
        }
    }

    fn next_step(self: &Arc<Self>) -> Next {
        let size = self.settings().size;
        let mut st = self.state();
        if let Some(conn) = st.idle.pop() {
            return Next::Ready(self.lease_for(conn));
        }
        if st.total < size {
            st.total += 1;
            return Next::Connect(Lease::slot(self.clone()));
        }
        let id = st.next_waiter;
        st.next_waiter += 1;
        let (tx, rx) = oneshot::channel();
        st.waiters.push_back((id, tx));
        Next::Wait(id, rx)
    }

    async fn wait(
        &self,
        id: u64,
        mut rx: oneshot::Receiver<Lease>,
        started: Instant,
    ) -> Result<Lease, PoolError> {
        let settings = self.settings();
        let limit = settings.query_wait_timeout;
        let remaining = limit.saturating_sub(started.elapsed());
        let got = if limit.is_zero() {
            (&mut rx).await.ok()
        } else {
            tokio::time::timeout(remaining, &mut rx)
                .await
                .ok()
                .and_then(Result::ok)
        };
        if let Some(lease) = got {
            return Ok(lease);
        }
        self.state().waiters.retain(|(w, _)| *w != id);
        // A handoff may have raced with the timeout.
        if let Ok(lease) = rx.try_recv() {
            return Ok(lease);
        }
        Err(PoolError::WaitTimeout {
            database: self.key.database.clone(),
            user: self.key.user.clone(),
            waited: started.elapsed(),
            size: settings.size,
        })
    }

    async fn connect(&self, mut lease: Lease) -> Result<Lease, PoolError> {
        let s = self.settings();
        let id = self.next_server_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut conn = login(LoginRequest {
            id,
            address: &s.address,
            user: &s.server_user,
            database: &s.server_database,
            credential: &s.credential,
            connect_timeout: s.connect_timeout,
            keepalive: s.keepalive,
            read_size: s.read_size,
        })
        .await?;
        if let Some(q) = s.connect_query.as_deref().filter(|q| !q.trim().is_empty()) {
            let outcome = crate::server::simple_query(&mut conn, q).await?;
            if let Some((code, message)) = outcome.error {
                return Err(crate::server::ServerError::Rejected { code, message }.into());
            }
        }
        tracing::info!(server = id, pool = %self.key.database, user = %self.key.user, address = %s.address, "server connection opened");
        lease.conn = Some(conn);
        Ok(lease)
    }

    fn lease_for(self: &Arc<Self>, conn: ServerConn) -> Lease {
        Lease {
            pool: Some(self.clone()),
            conn: Some(conn),
            untouched: true,
        }
    }

    /// Returns a clean server: to the longest waiter if any, else to the idle list.
    pub(crate) fn checkin(self: &Arc<Self>, mut lease: Lease) {
        if let Some(mut conn) = lease.disarm() {
            conn.last_used = Instant::now();
            self.put_back(conn);
        }
    }

    pub(super) fn put_back(self: &Arc<Self>, conn: ServerConn) {
        let mut handoff = self.lease_for(conn);
        let mut st = self.state();
        while let Some((_, tx)) = st.waiters.pop_front() {
            match tx.send(handoff) {
                Ok(()) => return,
                Err(back) => handoff = back,
            }
        }
        let conn = handoff.disarm().expect("handoff holds a server");
        st.idle.push(conn);
    }

    /// A slot was given up (server closed or never opened): a waiter may open a new one.
    pub(super) fn slot_freed(self: &Arc<Self>) {
        let mut st = self.state();
        while let Some((_, tx)) = st.waiters.pop_front() {
            match tx.send(Lease::slot(self.clone())) {
                Ok(()) => return,
                Err(mut back) => {
                    back.disarm();
                }
            }
        }
        st.total = st.total.saturating_sub(1);
    }

    pub(crate) fn close_idle(&self) {
        let closed = {
            let mut st = self.state();
            let n = st.idle.len();
            st.total -= n;
            std::mem::take(&mut st.idle)
        };
        drop(closed);
    }
}

/// A pooled server that has anything to say, or has hung up, is not safe to hand out:
/// Postgres only speaks unprompted to announce its end (FATAL on shutdown/terminate).
fn looks_alive(conn: &mut ServerConn) -> bool {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let ServerConn {
        stream, inbound, ..
    } = conn;
    inbound.poll_fill_once(&mut cx, stream).is_pending()
}

//! A fault-injecting TCP proxy between pgsluice and Postgres, for the chaos tests
//! (`tests/chaos/`): it forwards bytes both ways and, switched at runtime, adds latency per chunk, stalls (stops
//! forwarding, sockets stay open), closes or resets (RST) every current connection, or refuses
//! new ones. Invariant: it runs on its own thread and runtime, so a test that blocks its own
//! runtime (psql, pg_ctl) never stalls the network under pgsluice by accident.

use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How current connections are ended by `drop_all` / `reset_all`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kill {
    /// Ordinary close (FIN): the peer reads end of stream.
    Close,
    /// SO_LINGER 0 then close: the peer gets a RST ("connection reset by peer").
    Reset,
}

/// What the test switches and the proxy's tasks watch.
struct Controls {
    latency_ms: AtomicU64,
    stalled: watch::Sender<bool>,
    refusing: watch::Sender<bool>,
    /// Whether the listening socket is open now (it follows `refusing` a moment later).
    open: watch::Sender<bool>,
    /// Generation and kind of the last kill: connections started before it end.
    kill: watch::Sender<(u64, Kill)>,
    live: AtomicUsize,
    accepted: AtomicU64,
    shutdown: watch::Sender<bool>,
}

pub struct ChaosProxy {
    port: u16,
    controls: Arc<Controls>,
    thread: Option<JoinHandle<()>>,
}

impl ChaosProxy {
    /// A proxy on 127.0.0.1:<free port> forwarding to `host:port`, passing bytes unchanged.
    pub fn start(host: &str, port: u16) -> ChaosProxy {
        let controls = Arc::new(Controls {
            latency_ms: AtomicU64::new(0),
            stalled: watch::channel(false).0,
            refusing: watch::channel(false).0,
            open: watch::channel(true).0,
            kill: watch::channel((0, Kill::Close)).0,
            live: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
            shutdown: watch::channel(false).0,
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind chaos proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let local = listener.local_addr().expect("proxy address").port();
        let target = format!("{host}:{port}");
        let ctl = controls.clone();
        let thread = std::thread::Builder::new()
            .name("chaos-proxy".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("proxy runtime");
                rt.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("tokio listener");
                    let mut shutdown = ctl.shutdown.subscribe();
                    tokio::select! {
                        () = accept_loop(listener, local, target, ctl.clone()) => {}
                        _ = shutdown.wait_for(|s| *s) => {}
                    }
                });
                // Dropping the runtime drops every connection task and closes its sockets.
                rt.shutdown_timeout(Duration::from_secs(1));
            })
            .expect("spawn proxy thread");
        ChaosProxy {
            port: local,
            controls,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Delay added before each chunk is forwarded, in both directions.
    pub fn set_latency(&self, latency: Duration) {
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self.controls.latency_ms.store(ms, Ordering::SeqCst);
    }

    /// Stops forwarding in both directions; the sockets stay open and nothing is lost.
    pub fn stall(&self) {
        self.controls.stalled.send_replace(true);
    }

    /// Lifts a stall: everything held is forwarded.
    pub fn resume(&self) {
        self.controls.stalled.send_replace(false);
    }

    /// Closes every current connection on both sides (FIN); new ones are accepted.
    pub fn drop_all(&self) {
        self.kill(Kill::Close);
    }

    /// Resets every current connection on both sides (RST); new ones are accepted.
    pub fn reset_all(&self) {
        self.kill(Kill::Reset);
    }

    fn kill(&self, kind: Kill) {
        self.controls
            .kill
            .send_modify(|(generation, k)| (*generation, *k) = (*generation + 1, kind));
    }

    /// While true, new connections are refused (the listening socket is closed, so connect
    /// gets ECONNREFUSED); current connections carry on. Returns once the socket is closed
    /// (or open again), so nothing connects in between.
    pub fn refuse(&self, refusing: bool) {
        self.controls.refusing.send_replace(refusing);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while *self.controls.open.borrow() == refusing {
            assert!(
                std::time::Instant::now() < deadline,
                "chaos proxy: the listening socket did not follow refuse({refusing})"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Connections being forwarded now.
    pub fn live(&self) -> usize {
        self.controls.live.load(Ordering::SeqCst)
    }

    /// Connections accepted since the start.
    pub fn accepted(&self) -> u64 {
        self.controls.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.controls.shutdown.send_replace(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts until shut down; while refusing, the listener is closed and bound again after.
async fn accept_loop(mut listener: TcpListener, port: u16, target: String, ctl: Arc<Controls>) {
    let mut refusing = ctl.refusing.subscribe();
    loop {
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((client, _)) = accepted else { continue };
                    ctl.accepted.fetch_add(1, Ordering::SeqCst);
                    let generation = ctl.kill.borrow().0;
                    tokio::spawn(connection(client, target.clone(), ctl.clone(), generation));
                }
                _ = refusing.wait_for(|r| *r) => break,
            }
        }
        drop(listener);
        ctl.open.send_replace(false);
        let _ = refusing.wait_for(|r| !*r).await;
        listener = rebind(port).await;
        ctl.open.send_replace(true);
    }
}

/// Binds the proxy's port again (SO_REUSEADDR is set by tokio, so TIME_WAIT does not block it).
async fn rebind(port: u16) -> TcpListener {
    for _ in 0..100 {
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await {
            return listener;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("chaos proxy: port {port} could not be bound again");
}

/// Counts a connection as live for as long as its task runs.
struct LiveGuard(Arc<Controls>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn connection(mut client: TcpStream, target: String, ctl: Arc<Controls>, generation: u64) {
    ctl.live.fetch_add(1, Ordering::SeqCst);
    let _guard = LiveGuard(ctl.clone());
    let Ok(mut upstream) = TcpStream::connect(&target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let mut kill = ctl.kill.subscribe();
    let killed = {
        let (mut cr, mut cw) = client.split();
        let (mut ur, mut uw) = upstream.split();
        tokio::select! {
            _ = pipe(&mut cr, &mut uw, &ctl) => None,
            _ = pipe(&mut ur, &mut cw, &ctl) => None,
            k = kill.wait_for(|(g, _)| *g > generation) => k.ok().map(|k| k.1),
        }
    };
    if killed == Some(Kill::Reset) {
        for stream in [&client, &upstream] {
            let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
        }
    }
}

/// One direction: read a chunk, wait out latency and any stall, write it. Ends at end of
/// stream or on an error; the caller then closes both sockets.
async fn pipe<R, W>(reader: &mut R, writer: &mut W, ctl: &Controls) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut stalled = ctl.stalled.subscribe();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let _ = stalled.wait_for(|s| !*s).await;
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return writer.shutdown().await;
        }
        let latency = ctl.latency_ms.load(Ordering::SeqCst);
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        // A stall that began while this chunk was read holds the chunk too.
        let _ = stalled.wait_for(|s| !*s).await;
        writer.write_all(&buf[..n]).await?;
    }
}

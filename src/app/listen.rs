//! The listening sockets and the accept loops: every listen_addr on listen_port (with
//! SO_REUSEPORT when so_reuseport is set, so several processes share the port) and the Unix
//! socket; each accepted client is counted against max_client_conn and the open-files room,
//! then gets its own task. On shutdown an accept loop first takes the connections the kernel
//! has already completed, so they are served and drained instead of reset with the socket.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::AppError;
use crate::client;
use crate::net::{tune_tcp, BoxStream};
use crate::open_files;
use crate::protocol::sqlstate;
use crate::state::Shared;

/// Connections the kernel may hold completed for us before we accept them.
const LISTEN_BACKLOG: i32 = 1024;

pub(super) enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

pub(super) async fn bind(shared: &Shared) -> Result<Vec<Listener>, AppError> {
    let config = shared.config();
    let p = &config.pooler;
    let mut out = Vec::new();
    for addr in &p.listen_addr {
        let hosts: Vec<&str> = if addr == "*" {
            vec!["0.0.0.0", "::"]
        } else {
            vec![addr.as_str()]
        };
        for host in hosts {
            match bind_tcp(host, p.listen_port, p.fleet.so_reuseport).await {
                Ok(l) => {
                    tracing::info!(
                        address = %format!("{host}:{}", p.listen_port),
                        so_reuseport = p.fleet.so_reuseport,
                        "listening"
                    );
                    out.push(Listener::Tcp(l));
                }
                // "*" also tries IPv6; a machine without it still serves IPv4.
                Err(e) if addr == "*" && host == "::" => {
                    tracing::debug!(error = %e, "no IPv6 listener")
                }
                Err(source) => {
                    return Err(AppError::Listen {
                        address: format!("{host}:{}", p.listen_port),
                        source,
                    })
                }
            }
        }
    }
    if let Some(path) = unix_socket_path(shared) {
        // A socket file left by a previous run that died would make bind fail. With
        // so_reuseport the file belongs to the instance still running: leave it alone.
        if !p.fleet.so_reuseport || !path.exists() {
            let _ = std::fs::remove_file(&path);
            let l = UnixListener::bind(&path).map_err(|source| AppError::Listen {
                address: path.display().to_string(),
                source,
            })?;
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::Permissions::from_mode(p.unix_socket_mode);
            let _ = std::fs::set_permissions(&path, mode);
            tracing::info!(address = %path.display(), "listening");
            out.push(Listener::Unix(l));
        } else {
            tracing::warn!(
                address = %path.display(),
                "so_reuseport: the Unix socket is held by another instance; not listening on it"
            );
        }
    }
    Ok(out)
}

/// A TCP listener; with `reuseport`, SO_REUSEPORT lets other processes bind the same port.
async fn bind_tcp(host: &str, port: u16, reuseport: bool) -> std::io::Result<TcpListener> {
    let mut last_error = None;
    for address in tokio::net::lookup_host((host, port)).await? {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(address),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        // As tokio's own bind: a restart must not wait for old connections in TIME_WAIT.
        socket.set_reuse_address(true)?;
        if reuseport {
            socket.set_reuse_port(true)?;
        }
        if address.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.set_nonblocking(true)?;
        match socket.bind(&address.into()) {
            Ok(()) => {
                socket.listen(LISTEN_BACKLOG)?;
                return TcpListener::from_std(socket.into());
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| std::io::ErrorKind::AddrNotAvailable.into()))
}

pub(super) fn unix_socket_path(shared: &Shared) -> Option<PathBuf> {
    let config = shared.config();
    let p = &config.pooler;
    (!p.unix_socket_dir.is_empty())
        .then(|| PathBuf::from(&p.unix_socket_dir).join(format!(".s.PGSQL.{}", p.listen_port)))
}

pub(super) fn remove_unix_socket(shared: &Shared) {
    if let Some(path) = unix_socket_path(shared) {
        let _ = std::fs::remove_file(path);
    }
}

type Accepted = std::io::Result<(BoxStream, String)>;

async fn accept(shared: &Shared, listener: &Listener) -> Accepted {
    match listener {
        Listener::Tcp(l) => l.accept().await.map(|(s, a)| {
            let _ = tune_tcp(&s, shared.config().pooler.tcp_keepalive);
            (Box::new(s) as BoxStream, a.to_string())
        }),
        Listener::Unix(l) => l
            .accept()
            .await
            .map(|(s, _)| (Box::new(s) as BoxStream, "unix".to_string())),
    }
}

/// Accepts clients until `stop`, then those already waiting in the backlog, then closes the
/// socket by dropping it.
pub(super) async fn accept_loop(
    shared: Arc<Shared>,
    listener: Listener,
    client_tasks: TaskTracker,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            accepted = accept(&shared, &listener) => accepted,
        };
        match accepted {
            Ok((stream, peer)) => admit(&shared, &client_tasks, stream, peer),
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    // Closing a listening socket resets the connections in its backlog: take them first.
    let mut taken = 0;
    while let Some(Ok((stream, peer))) = accept(&shared, &listener).now_or_never() {
        admit(&shared, &client_tasks, stream, peer);
        taken += 1;
    }
    if taken > 0 {
        tracing::info!(
            clients = taken,
            "accepted the clients waiting in the backlog before closing the listener"
        );
    }
}

/// Counts the client and spawns its task, or refuses it past max_client_conn (or past the
/// clients the open-files limit holds beside the servers).
fn admit(shared: &Arc<Shared>, client_tasks: &TaskTracker, mut stream: BoxStream, peer: String) {
    let max = shared.client_room.load(Ordering::Relaxed);
    let now = shared.clients.fetch_add(1, Ordering::SeqCst) + 1;
    let guard = ClientCount(shared.clone());
    if now > max {
        let configured = shared.config().pooler.max_client_conn;
        let message = if max < configured {
            format!(
                "no more connections allowed (max_client_conn = {configured}, of which the \
                 open files limit {} holds {max} beside the server connections)",
                open_files::current_limit()
            )
        } else {
            format!("no more connections allowed (max_client_conn = {max})")
        };
        client_tasks.spawn(async move {
            let _guard = guard;
            tracing::warn!(%peer, clients_allowed = max, "refusing client: too many clients");
            client::send_fatal(&mut stream, sqlstate::TOO_MANY_CONNECTIONS, &message).await;
        });
        return;
    }
    let shared = shared.clone();
    client_tasks.spawn(async move {
        let _guard = guard;
        client::serve(shared, stream, peer).await;
    });
}

/// Keeps `Shared::clients` exact however a client task ends.
struct ClientCount(Arc<Shared>);

impl Drop for ClientCount {
    fn drop(&mut self) {
        self.0.clients.fetch_sub(1, Ordering::SeqCst);
    }
}

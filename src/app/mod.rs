//! The composition root: loads auth_file, builds the shared state, binds every listen_addr and
//! the Unix socket, spawns one task per client and the pool maintenance task, and runs the
//! signal-driven shutdown, the drain a load balancer or Kubernetes expects: SIGTERM or SIGINT
//! turns /readyz to "not ready" at once, goes on accepting for shutdown_accept_delay, stops
//! accepting, and closes each client as soon as its transaction ends (an idle one after
//! shutdown_idle_grace), bounded by shutdown_timeout; a second signal exits at once.

mod auto_reload;
mod listen;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin;
use crate::auth::{AuthError, Userlist};
use crate::config::{Config, ConfigErrors};
use crate::metrics;
use crate::open_files::{self, ClientRoom};
use crate::state::{Shared, Shutdown};
use crate::tls::TlsContext;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot load auth_file: {0}")]
    AuthFile(#[from] AuthError),
    #[error("TLS files:\n{0}")]
    Tls(ConfigErrors),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot install signal handler: {0}")]
    Signal(#[source] std::io::Error),
}

/// Loads the auth_file a config names (an empty list when it names none).
pub fn load_userlist(config: &Config) -> Result<Userlist, AuthError> {
    crate::state::load_userlist(config)
}

/// Reads every certificate, key and CA file the TLS settings name (for `--check`); problems
/// are named by their pooler.toml key.
pub fn check_tls(config: &Config) -> Result<(), ConfigErrors> {
    TlsContext::load(&config.pooler.tls).map(|_| ())
}

/// For `--check`: the warning pgsluice would log at start when max_client_conn clients and
/// the servers the configuration may open do not fit in the open-files limit it would run
/// with (the hard limit, to which it raises the soft one).
pub fn open_files_warning(config: &Config, userlist: &Userlist) -> Option<String> {
    let limit = open_files::raise().now;
    ClientRoom::new(config, userlist.users(), limit).warning(config)
}

/// Runs the pooler until shutdown completes.
pub async fn run(config: Config, config_path: Option<PathBuf>) -> Result<(), AppError> {
    let userlist = load_userlist(&config)?;
    let open_files = open_files::raise();
    if open_files.now != open_files.before {
        tracing::info!(
            from = open_files.before,
            to = open_files.now,
            "open files limit raised to the hard limit"
        );
    }
    let tls = TlsContext::load(&config.pooler.tls).map_err(AppError::Tls)?;
    let exporter =
        (!config.pooler.metrics_addr.is_empty()).then(|| Arc::new(metrics::Exporter::new()));
    let metrics_addr = config.pooler.metrics_addr.clone();
    let shared = Shared::new(config, userlist, tls, config_path, exporter.is_some());
    // Handlers first: once the port accepts, a supervisor may signal at any moment, and a
    // signal arriving before its handler exists would kill the process (default action).
    let mut term = signal(SignalKind::terminate()).map_err(AppError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(AppError::Signal)?;
    let mut hup = signal(SignalKind::hangup()).map_err(AppError::Signal)?;
    let mut usr1 = signal(SignalKind::user_defined1()).map_err(AppError::Signal)?;
    let mut usr2 = signal(SignalKind::user_defined2()).map_err(AppError::Signal)?;
    let listeners = listen::bind(&shared).await?;
    // Every client task, so that shutdown can wait for them to end.
    let client_tasks = TaskTracker::new();
    let mut accepting = JoinSet::new();
    let stop_accepting = CancellationToken::new();
    for listener in listeners {
        accepting.spawn(listen::accept_loop(
            shared.clone(),
            listener,
            client_tasks.clone(),
            stop_accepting.clone(),
        ));
    }
    let maintenance = tokio::spawn(maintain_pools(shared.clone()));
    let watching = tokio::spawn(auto_reload::watch(shared.clone()));
    let scrapes = match exporter {
        Some(exporter) => {
            let listener =
                TcpListener::bind(&metrics_addr)
                    .await
                    .map_err(|source| AppError::Listen {
                        address: metrics_addr.clone(),
                        source,
                    })?;
            tracing::info!(address = %metrics_addr, "serving Prometheus metrics on /metrics");
            Some(tokio::spawn(metrics::serve(
                listener,
                shared.clone(),
                exporter,
            )))
        }
        None => None,
    };
    let stats = tokio::spawn(keep_stats(shared.clone()));
    let mut requested = shared.shutdown_state();
    let mode = loop {
        tokio::select! {
            _ = term.recv() => break Shutdown::Closing,
            _ = int.recv() => break Shutdown::Closing,
            _ = hup.recv() => match admin::reload(&shared, &Default::default()) {
                Ok(_) => {}
                Err(e) => tracing::error!("SIGHUP reload refused: {e}"),
            },
            _ = usr1.recv() => {
                tracing::info!("SIGUSR1: pausing all databases");
                shared.control.pause(None);
            }
            _ = usr2.recv() => {
                tracing::info!("SIGUSR2: resuming all databases");
                shared.control.resume(None);
            }
            // SHUTDOWN from the admin console.
            Ok(()) = requested.changed() => {
                let mode = *requested.borrow();
                if mode != Shutdown::Running {
                    break mode;
                }
            }
        }
    };
    // Not ready from now on (/readyz), so load balancers stop sending clients here.
    shared.begin_shutdown(mode);
    maintenance.abort();
    stats.abort();
    watching.abort();
    let accept_delay = shared.config().pooler.fleet.shutdown_accept_delay;
    tracing::info!(
        ?mode,
        ?accept_delay,
        "shutdown requested: reporting not ready; clients are closed as their transactions end"
    );
    if !accept_delay.is_zero() {
        tokio::select! {
            () = tokio::time::sleep(accept_delay) => {}
            _ = term.recv() => tracing::warn!("second signal: closing the listeners now"),
            _ = int.recv() => tracing::warn!("second signal: closing the listeners now"),
        }
    }
    stop_accepting.cancel();
    while accepting.join_next().await.is_some() {}
    tracing::info!("no longer accepting clients");
    client_tasks.close();
    listen::remove_unix_socket(&shared);
    shared.pools.close_idle();

    let limit = shared.config().pooler.shutdown_timeout;
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    let all_gone = client_tasks.wait();
    tokio::pin!(all_gone);
    // Servers that leaving clients give back are closed as they come back.
    let mut close_returned = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            _ = &mut all_gone => {
                tracing::info!("all clients gone; exiting");
                break;
            }
            _ = &mut deadline => {
                tracing::warn!(
                    clients = client_tasks.len(),
                    ?limit,
                    "shutdown_timeout reached; closing remaining clients"
                );
                break;
            }
            _ = term.recv() => { tracing::warn!("second signal: exiting now"); break }
            _ = int.recv() => { tracing::warn!("second signal: exiting now"); break }
            _ = close_returned.tick() => shared.pools.close_idle(),
        }
    }
    shared.pools.close_idle();
    if let Some(s) = scrapes {
        s.abort();
    }
    Ok(())
}

/// The pools' upkeep (min_pool_size, server_idle_timeout, server_lifetime) once a period,
/// until shutdown begins: from then on no server is opened only to be kept warm.
async fn maintain_pools(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown_state();
    let mut tick = tokio::time::interval(crate::pool::MAINTENANCE_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let config = shared.config();
                let userlist = config.pooler.auth_file.as_ref().map(|_| shared.userlist());
                shared.pools.maintain(&config, userlist.as_deref(), &shared.tls().server);
            }
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() != Shutdown::Running {
                    return;
                }
            }
        }
    }
}

/// Closes a stats_period every stats_period (SHOW STATS averages) and logs one line per
/// database, as PgBouncer's periodic stats line.
async fn keep_stats(shared: Arc<Shared>) {
    loop {
        let period = shared
            .config()
            .pooler
            .stats_period
            .max(Duration::from_secs(1));
        tokio::time::sleep(period).await;
        let totals = shared.totals_by_database();
        let mut averages = shared.averages.lock().expect("averages lock");
        averages.tick(Instant::now(), &totals);
        for db in totals.keys() {
            let a = averages.get(db);
            tracing::info!(
                database = %db,
                xacts_per_s = a.xact_count,
                queries_per_s = a.query_count,
                in_bytes_per_s = a.bytes_received,
                out_bytes_per_s = a.bytes_sent,
                xact_us = a.xact_time_us,
                query_us = a.query_time_us,
                wait_us = a.wait_time_us,
                "stats"
            );
        }
    }
}

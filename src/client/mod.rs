//! One task per client connection: the startup packet, authentication, routing to a pool,
//! then the session; or a cancel request forwarded to the right server. Every error the
//! pooler itself raises reaches the client as an ErrorResponse with a SQLSTATE
//! (docs/architecture.md, invariant 5) before the socket closes.

mod auth;
mod cancel;
mod error;
mod follow;
mod listen;
mod pool_client;
mod session;
mod settings;
mod settle;
mod startup;
mod transaction;

pub(crate) use error::ClientError;

use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

pub(crate) use pool_client::send_fatal;

use crate::admin;
use crate::auth::{Secret, Userlist};
use crate::config::PoolMode;
use crate::config::{AuthType, Config};
use crate::live::{ConnState, Endpoints, Registration};
use crate::net::pump::Pump;
use crate::net::BoxStream;
use crate::pool::{ClientSlot, PoolKey, PoolSettings};
use crate::prepared::ClientStatements;
use crate::protocol::backend;
use crate::protocol::sqlstate;
use crate::protocol::startup::{database, protocol_options, user};
use crate::server::Credential;
use crate::state::Shared;
use crate::tls::TlsPeer;
use startup::FirstPacket;

/// Serves one accepted connection to its end.
pub(crate) async fn serve(shared: Arc<Shared>, mut stream: BoxStream, peer: String) {
    let id = shared.next_client_id();
    let config = shared.config();
    let accepted = std::time::Instant::now();
    let mut who = String::new();
    let result = handle(&shared, &mut stream, &peer, id, &mut who).await;
    // The facts of PgBouncer's "closing because: … (age=…)" line, which runbooks grep for.
    let age_s = accepted.elapsed().as_secs();
    match &result {
        Ok(()) => {
            if config.pooler.log_disconnections {
                tracing::info!(client = id, %peer, %who, age_s, reason = "client close request", "client disconnected");
            }
        }
        Err(e) => {
            shared.counters.client_error(e.kind());
            if e.reaches_client() {
                shared.counters.error_sent(e.sqlstate());
                send_fatal(&mut stream, e.sqlstate(), &e.to_string()).await;
            }
            if config.pooler.log_disconnections || config.pooler.log_pooler_errors {
                tracing::info!(client = id, %peer, %who, age_s, kind = e.kind(), sqlstate = e.sqlstate(), reason = %e, "client disconnected");
            }
        }
    }
    let _ = stream.shutdown().await;
}

async fn handle(
    shared: &Shared,
    stream: &mut BoxStream,
    peer: &str,
    id: u64,
    who: &mut String,
) -> Result<(), ClientError> {
    let config = shared.config();
    let p = &config.pooler;
    let tls = shared.tls();
    let mut buf = BytesMut::new();
    let arrival = startup::ClientTransport {
        tls: &tls.client,
        unix: peer == "unix",
    };
    // The TLS handshake is part of the login, bounded by client_login_timeout like the rest.
    // Boxed, like every phase but the idle wait: a task's future is as large as its largest
    // state, and each idle client keeps its future for as long as it stays connected.
    let login = Box::pin(async {
        match startup::read_opening(stream, &mut buf, &arrival).await? {
            (
                FirstPacket::Cancel {
                    process_id,
                    secret_key,
                },
                _,
            ) => {
                cancel::forward_cancel(shared, process_id, secret_key).await;
                Ok(None)
            }
            (FirstPacket::Startup { minor, params }, tls_peer) => {
                let opened = StartupRequest {
                    minor,
                    params,
                    tls: tls_peer,
                };
                log_in(shared, stream, &mut buf, opened, peer, id)
                    .await
                    .map(Some)
            }
        }
    });
    let login = if p.client_login_timeout.is_zero() {
        login.await
    } else {
        tokio::time::timeout(p.client_login_timeout, login)
            .await
            .unwrap_or(Err(ClientError::LoginTimeout))
    };
    match &login {
        Ok(Some(_)) => {
            shared
                .counters
                .logins
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Err(e) if e.reaches_client() => shared.counters.login_failed(e.sqlstate()),
        _ => {}
    }
    let logged_in = match login? {
        None => return Ok(()),
        Some(LoginOutcome::Console(role)) => {
            let key = shared.cancels.issue(p.peer_id);
            let result = Box::pin(admin::serve(shared, stream, buf, role, key)).await;
            shared.cancels.forget(key);
            return result.map_err(ClientError::Io);
        }
        Some(LoginOutcome::Pooled(logged_in)) => logged_in,
    };
    // PgBouncer names every client "db/user@addr" in its log; the close line says who left.
    *who = format!("{}/{}", logged_in.pool.key.database, logged_in.user);
    let mut pump = Pump::new(p.max_packet_size, p.pkt_buf);
    pump.prefill(&buf);
    drop(buf);
    let pin_session_state =
        config.pin_session_state_for(&logged_in.pool.key.database, &logged_in.user);
    let read_back_always =
        config.session_read_back_always_for(&logged_in.pool.key.database, &logged_in.user);
    let mut attached = pool_client::PoolClient {
        pin_session_state,
        read_back_always,
        listen: None,
        shared,
        stream,
        pump,
        pool: logged_in.pool,
        settings: settings::Settings::from_startup(logged_in.params),
        cancel_key: logged_in.cancel_key,
        client_id: id,
        timeouts: config.timeouts_for(&logged_in.user),
        info: logged_in.registration.info().clone(),
        statements: (logged_in.mode != PoolMode::Session && p.max_prepared_statements > 0).then(
            || {
                ClientStatements::new(
                    p.max_client_prepared_statements,
                    p.max_client_prepared_bytes,
                )
            },
        ),
    };
    let result = match logged_in.mode {
        PoolMode::Session => Box::pin(session::run(attached)).await,
        mode @ (PoolMode::Transaction | PoolMode::Statement) => {
            transaction::run(&mut attached, mode).await
        }
    };
    shared.cancels.forget(logged_in.cancel_key);
    result
}

/// Names that reach the admin console rather than a pool (PgBouncer answers on "pgbouncer").
const CONSOLE_DATABASES: [&str; 2] = ["pgsluice", "pgbouncer"];

/// Where a logged-in client goes.
enum LoginOutcome {
    Pooled(PoolLogin),
    Console(admin::Role),
}

/// admin_users may do everything, stats_users only SHOW; anyone else is refused after
/// authenticating like any client.
fn console_role(p: &crate::config::PoolerSettings, user: &str) -> Result<admin::Role, ClientError> {
    if p.admin_users.iter().any(|u| u == user) {
        Ok(admin::Role::Admin)
    } else if p.stats_users.iter().any(|u| u == user) {
        Ok(admin::Role::Stats)
    } else {
        let denied = admin::AdminError::AccessDenied {
            user: user.to_string(),
        };
        Err(ClientError::Rejected {
            code: denied.sqlstate().into(),
            message: denied.to_string(),
        })
    }
}

struct PoolLogin {
    /// Keeps the client in SHOW CLIENTS while it lives.
    registration: Registration,
    pool: Arc<crate::pool::Pool>,
    user: String,
    /// Counts this client against max_db/user_client_connections while it lives.
    _client_slot: ClientSlot,
    mode: PoolMode,
    params: Vec<(String, String)>,
    cancel_key: (u32, u32),
}

/// auth_query's answer for a user auth_file does not list, when auth_user is set and a
/// password is needed. A failed lookup is logged with its cause and counts as no secret, so
/// the client sees exactly what a wrong password shows.
async fn look_up_secret(
    shared: &Shared,
    config: &Config,
    userlist: Option<&Userlist>,
    database: &str,
    user: &str,
) -> Option<Secret> {
    let p = &config.pooler;
    let listed = userlist.is_some_and(|u| u.get(user).is_some());
    if listed
        || config.auth_user_for(database).is_empty()
        || !p.auth_type.needs_password()
        || CONSOLE_DATABASES.contains(&database)
        || config.database(database).is_none()
    {
        return None;
    }
    let tls = shared.tls().server.clone();
    let lookup = shared
        .pools
        .auth_lookup
        .secret(config, userlist, &tls, database, user);
    match lookup.await {
        Ok(secret) => {
            if secret.is_none() {
                tracing::info!(%user, %database, "auth_query found no such user (or no password)");
            }
            secret
        }
        Err(cause) => {
            tracing::warn!(%user, %database, %cause, "auth_query lookup failed; the client is refused as with a wrong password");
            None
        }
    }
}

/// A StartupMessage and the TLS it arrived over.
struct StartupRequest {
    minor: u16,
    params: Vec<(String, String)>,
    tls: Option<TlsPeer>,
}

async fn log_in(
    shared: &Shared,
    stream: &mut BoxStream,
    buf: &mut BytesMut,
    opened: StartupRequest,
    peer: &str,
    id: u64,
) -> Result<LoginOutcome, ClientError> {
    let StartupRequest { minor, params, tls } = opened;
    let config = shared.config();
    let p = &config.pooler;
    let user = user(&params).unwrap_or_default().to_string();
    let database = database(&params).to_string();
    // A client accepted while shutting down (during shutdown_accept_delay, or from the backlog
    // as the listeners close) logs in and is then drained like the others.
    let unrecognized = protocol_options(&params);
    if minor > 0 || !unrecognized.is_empty() {
        // PostgreSQL docs, NegotiateProtocolVersion: we speak 3.0 and no protocol options.
        let mut out = BytesMut::new();
        backend::negotiate_protocol_version(
            &mut out,
            crate::protocol::startup::PROTOCOL_3_0,
            &unrecognized,
        );
        stream.write_all(&out).await?;
    }
    let session_params = session_params(&params, &p.ignore_startup_parameters)?;

    let userlist = p.auth_file.as_ref().map(|_| shared.userlist());
    let looked_up = look_up_secret(shared, &config, userlist.as_deref(), &database, &user).await;
    let mut exchange = auth::AuthExchange {
        stream,
        buf,
        user: &user,
        mock_key: &shared.mock_key,
        tls: tls.as_ref(),
    };
    // The rules are loaded with the auth_file, even when no auth_file is set.
    let rules = shared.userlist();
    let auth_type = match (p.auth_type, rules.hba()) {
        (AuthType::Hba, Some(hba)) => exchange.hba_method(hba, peer, &database)?,
        (auth_type, _) => auth_type,
    };
    let authenticated = exchange
        .authenticate(auth_type, userlist.as_deref(), looked_up.clone())
        .await?;

    if CONSOLE_DATABASES.contains(&database.as_str()) {
        return console_role(p, &user).map(LoginOutcome::Console);
    }
    let db = config
        .database(&database)
        .ok_or_else(|| ClientError::NoDatabase(database.clone()))?;
    if shared.control.is_disabled(&database) {
        return Err(ClientError::Disabled(database));
    }
    let client_slot = shared.pools.admit_client(&config, &database, &user)?;
    let key = PoolKey::for_client(&config, &database, &user);
    let tls_server = shared.tls().server.clone();
    let pool = shared.pools.get_or_create(&key, || {
        PoolSettings::resolve(&config, &key, db, userlist.as_deref(), &tls_server)
    });
    if let Some(Secret::Md5(secret)) = &looked_up {
        // A secret auth_query found logs this user in to md5 servers too.
        if db.user.is_none() && matches!(pool.settings().credential, Credential::None) {
            pool.set_credential(Credential::Md5Secret(secret.clone()));
        }
    }
    if let Some(keys) = authenticated.scram_keys {
        // Only the client's own login may learn its keys, never a forced user's pool.
        let own_login = db.user.is_none() && db.password.is_none();
        if own_login && matches!(pool.settings().credential, Credential::None) {
            pool.set_credential(Credential::ScramKeys(keys));
        }
    }
    let mut out = BytesMut::new();
    backend::authentication_ok(&mut out);
    stream.write_all(&out).await?;
    let tls_text = tls.map(|t| t.description).unwrap_or_default();
    if p.log_connections {
        tracing::info!(client = id, %peer, %user, %database, tls = %tls_text, "client logged in");
    }
    let ends = Endpoints {
        tls: tls_text,
        ..endpoints(peer)
    };
    let registration = shared
        .client_table
        .register(id, &user, &database, ends, ConnState::Idle);
    if let Some((_, name)) = params.iter().find(|(k, _)| k == "application_name") {
        *registration
            .info()
            .application_name
            .lock()
            .expect("info lock") = name.clone();
    }
    Ok(LoginOutcome::Pooled(PoolLogin {
        registration,
        pool,
        user: user.clone(),
        _client_slot: client_slot,
        mode: config.pool_mode_for(&database, &user),
        params: session_params,
        cancel_key: shared.cancels.issue(p.peer_id),
    }))
}

/// The startup parameters to set on the server: all but the connection's identity, protocol
/// options and ignore_startup_parameters; `options` is split into its `-c name=value` parts.
fn session_params(
    params: &[(String, String)],
    ignored: &[String],
) -> Result<Vec<(String, String)>, ClientError> {
    let mut out = Vec::new();
    for (name, value) in params {
        let lower = name.to_ascii_lowercase();
        if ignored.iter().any(|i| i.eq_ignore_ascii_case(name)) {
            continue;
        }
        match lower.as_str() {
            "user" | "database" => {}
            "replication" => {
                return Err(ClientError::Rejected {
                    code: sqlstate::FEATURE_NOT_SUPPORTED.into(),
                    message: "replication connections are not supported by pgsluice".into(),
                })
            }
            "options" => out.extend(crate::protocol::startup::parse_options(value)?),
            _ if lower.starts_with("_pq_.") => {}
            _ => out.push((name.clone(), value.clone())),
        }
    }
    Ok(out)
}

/// The peer's address and port from its display form ("1.2.3.4:5", "[::1]:5", "unix").
fn endpoints(peer: &str) -> Endpoints {
    match peer.parse::<std::net::SocketAddr>() {
        Ok(a) => Endpoints {
            addr: a.ip().to_string(),
            port: a.port(),
            ..Endpoints::default()
        },
        Err(_) => Endpoints {
            addr: peer.to_string(),
            ..Endpoints::default()
        },
    }
}

//! Opening a server connection: connect, TLS per server_tls_sslmode (`encrypt`),
//! StartupMessage, authenticate as the client side (trust, cleartext, md5, SCRAM-SHA-256 with
//! a password via postgres-protocol, or SCRAM pass-through with keys recovered from the
//! client's own SCRAM login; -PLUS with channel binding when Postgres offers it over TLS), then
//! collect ParameterStatus and BackendKeyData until ReadyForQuery. Bounded by
//! server_connect_timeout.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::sasl::{
    ChannelBinding, ScramSha256, SCRAM_SHA_256, SCRAM_SHA_256_PLUS,
};
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{ServerConn, ServerError};
use crate::auth::{md5_response_from_secret, Binding, ScramKeys, ScramPassthroughClient};
use crate::net::pump::Pump;
use crate::net::{Address, BoxStream};
use crate::prepared::ServerStatements;
use crate::protocol::sqlstate;
use crate::protocol::tags::error_field;
use crate::tls::{ServerTls, ServerTlsInfo};

/// What we can prove to Postgres.
#[derive(Clone)]
pub(crate) enum Credential {
    None,
    Password(String),
    /// An md5 secret ("md5" + hex) from auth_file: enough for md5 servers.
    Md5Secret(String),
    /// Keys recovered from a client's SCRAM login: enough for SCRAM servers with the same secret.
    ScramKeys(ScramKeys),
}

impl Credential {
    /// Whether two credentials log in the same way (a reload that changes it replaces servers).
    pub(crate) fn same_as(&self, other: &Credential) -> bool {
        match (self, other) {
            (Credential::None, Credential::None) => true,
            (Credential::Password(a), Credential::Password(b))
            | (Credential::Md5Secret(a), Credential::Md5Secret(b)) => a == b,
            (Credential::ScramKeys(a), Credential::ScramKeys(b)) => {
                a.client_key == b.client_key && a.server_key == b.server_key
            }
            _ => false,
        }
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        f.write_str(match self {
            Credential::None => "None",
            Credential::Password(_) => "Password(..)",
            Credential::Md5Secret(_) => "Md5Secret(..)",
            Credential::ScramKeys(_) => "ScramKeys(..)",
        })
    }
}

pub(crate) struct LoginRequest<'a> {
    pub(crate) id: u64,
    pub(crate) address: &'a Address,
    pub(crate) user: &'a str,
    pub(crate) database: &'a str,
    pub(crate) credential: &'a Credential,
    pub(crate) connect_timeout: Duration,
    pub(crate) keepalive: bool,
    pub(crate) read_size: usize,
    pub(crate) max_prepared_statements: usize,
    /// server_tls_* in force for this pool.
    pub(crate) tls: &'a ServerTls,
    /// Extra startup parameters: the session defaults of every server of the pool
    /// (PgBouncer's client_encoding, datestyle and timezone in [databases]).
    pub(crate) startup: &'a [(String, String)],
}

/// Connects and logs in, within `connect_timeout`.
pub(crate) async fn login(req: LoginRequest<'_>) -> Result<ServerConn, ServerError> {
    match tokio::time::timeout(req.connect_timeout, login_inner(&req)).await {
        Ok(r) => r,
        Err(_) => Err(ServerError::Timeout(req.connect_timeout)),
    }
}

async fn login_inner(req: &LoginRequest<'_>) -> Result<ServerConn, ServerError> {
    let (stream, local) = req
        .address
        .connect_with_local(req.keepalive)
        .await
        .map_err(|source| ServerError::Connect {
            address: req.address.to_string(),
            source,
        })?;
    let (mut stream, tls) = super::encrypt::negotiate(stream, req.address, req.tls).await?;
    let mut out = BytesMut::new();
    let extra = req.startup.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    frontend::startup_message(
        [("user", req.user), ("database", req.database)]
            .into_iter()
            .chain(extra),
        &mut out,
    )?;
    stream.write_all(&out).await?;

    let mut inbuf = BytesMut::with_capacity(1024);
    let mut params = BTreeMap::new();
    let mut key = (0, 0);
    let mut sasl: Option<Sasl> = None;
    loop {
        let msg = next_message(&mut stream, &mut inbuf).await?;
        out.clear();
        match msg {
            Message::AuthenticationOk => {}
            Message::AuthenticationCleartextPassword => match req.credential {
                Credential::Password(p) => frontend::password_message(p.as_bytes(), &mut out)?,
                _ => return Err(missing("a plain-text password", req)),
            },
            Message::AuthenticationMd5Password(body) => {
                let answer = match req.credential {
                    Credential::Password(p) => postgres_protocol::authentication::md5_hash(
                        req.user.as_bytes(),
                        p.as_bytes(),
                        body.salt(),
                    ),
                    Credential::Md5Secret(s) => md5_response_from_secret(s, body.salt()),
                    _ => return Err(missing("a password or md5 secret", req)),
                };
                frontend::password_message(answer.as_bytes(), &mut out)?;
            }
            Message::AuthenticationSasl(body) => {
                let mut mechanisms = body.mechanisms();
                let (mut plain, mut plus) = (false, false);
                while let Some(m) = mechanisms.next()? {
                    plain |= m == SCRAM_SHA_256;
                    plus |= m == SCRAM_SHA_256_PLUS;
                }
                let binding = choose_binding(tls.as_ref(), plain, plus)?;
                let (state, mechanism, first) = Sasl::start(req, binding)?;
                tracing::debug!(server = req.id, %mechanism, "server SASL login");
                frontend::sasl_initial_response(mechanism, &first, &mut out)?;
                sasl = Some(state);
            }
            Message::AuthenticationSaslContinue(body) => {
                let state = sasl.as_mut().ok_or_else(|| unexpected("SASLContinue"))?;
                let reply = state.server_first(body.data())?;
                frontend::sasl_response(&reply, &mut out)?;
            }
            Message::AuthenticationSaslFinal(body) => {
                let state = sasl.take().ok_or_else(|| unexpected("SASLFinal"))?;
                state.server_final(body.data())?;
            }
            Message::ParameterStatus(body) => {
                params.insert(body.name()?.to_string(), body.value()?.to_string());
            }
            Message::BackendKeyData(body) => {
                key = (body.process_id() as u32, body.secret_key() as u32)
            }
            Message::NoticeResponse(_) => {}
            Message::ErrorResponse(body) => return Err(rejected(body.fields())?),
            Message::ReadyForQuery(_) => break,
            _ => return Err(unexpected("message during login")),
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
        }
    }
    let mut inbound = Pump::new(i32::MAX as usize, req.read_size);
    inbound.prefill(&inbuf);
    let now = Instant::now();
    Ok(ServerConn {
        id: req.id,
        stream,
        inbound,
        login_user: params
            .get("session_authorization")
            .cloned()
            .unwrap_or_else(|| req.user.to_string()),
        params,
        applied: BTreeMap::new(),
        notifications: Vec::new(),
        local,
        registration: None,
        generation: 0,
        stats: Arc::default(),
        prepared: ServerStatements::new(req.max_prepared_statements),
        backend_pid: key.0,
        backend_secret: key.1,
        address: req.address.clone(),
        tls: tls.map(|t| t.description).unwrap_or_default(),
        connected_at: now,
        last_used: now,
    })
}

/// Reads one whole backend message.
async fn next_message(stream: &mut BoxStream, buf: &mut BytesMut) -> Result<Message, ServerError> {
    loop {
        if let Some(msg) = Message::parse(buf)? {
            return Ok(msg);
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(ServerError::Closed);
        }
    }
}

/// Either SCRAM flavour, driven the same way.
enum Sasl {
    Password(ScramSha256),
    Keys(ScramPassthroughClient),
}

/// Which SCRAM flavour to use, as libpq chooses: SCRAM-SHA-256-PLUS when Postgres offers it
/// over TLS and its certificate has a defined tls-server-end-point; 'y' when we could bind but
/// Postgres offered no -PLUS (it can then detect a downgrade); 'n' without TLS.
fn choose_binding(
    tls: Option<&ServerTlsInfo>,
    plain: bool,
    plus: bool,
) -> Result<Binding, ServerError> {
    let end_point = tls.and_then(|t| t.end_point.clone());
    match (end_point, plus) {
        (Some(data), true) => Ok(Binding::TlsServerEndPoint(data)),
        _ if !plain => Err(ServerError::Auth(
            "server offers no supported SASL mechanism".into(),
        )),
        (Some(_), false) => Ok(Binding::NotOffered),
        (None, _) => Ok(Binding::Unsupported),
    }
}

impl Sasl {
    fn start(
        req: &LoginRequest<'_>,
        binding: Binding,
    ) -> Result<(Sasl, &'static str, Vec<u8>), ServerError> {
        match req.credential {
            Credential::Password(p) => {
                let (mechanism, cb) = match binding {
                    Binding::TlsServerEndPoint(data) => (
                        SCRAM_SHA_256_PLUS,
                        ChannelBinding::tls_server_end_point(data),
                    ),
                    Binding::NotOffered => (SCRAM_SHA_256, ChannelBinding::unrequested()),
                    Binding::Unsupported => (SCRAM_SHA_256, ChannelBinding::unsupported()),
                };
                let s = ScramSha256::new(p.as_bytes(), cb);
                let first = s.message().to_vec();
                Ok((Sasl::Password(s), mechanism, first))
            }
            Credential::ScramKeys(keys) => {
                let c = ScramPassthroughClient::new(keys.clone(), rand::random())
                    .with_channel_binding(binding);
                let (first, mechanism) = (c.client_first(), c.mechanism());
                Ok((Sasl::Keys(c), mechanism, first))
            }
            _ => Err(missing("a password or the client's SCRAM login", req)),
        }
    }

    fn server_first(&mut self, data: &[u8]) -> Result<Vec<u8>, ServerError> {
        match self {
            Sasl::Password(s) => {
                s.update(data).map_err(|e| ServerError::Scram(e.into()))?;
                Ok(s.message().to_vec())
            }
            Sasl::Keys(c) => c
                .server_first(data)
                .map_err(|e| ServerError::Scram(e.into())),
        }
    }

    fn server_final(self, data: &[u8]) -> Result<(), ServerError> {
        match self {
            Sasl::Password(mut s) => s.finish(data).map_err(|e| ServerError::Scram(e.into())),
            Sasl::Keys(c) => c
                .server_final(data)
                .map_err(|e| ServerError::Scram(e.into())),
        }
    }
}

fn missing(what: &str, req: &LoginRequest<'_>) -> ServerError {
    ServerError::Auth(format!(
        "server asks for {what} for user \"{}\" and pgsluice has none (set it in auth_file or the database's password)",
        req.user
    ))
}

fn unexpected(what: &str) -> ServerError {
    ServerError::Unexpected(format!("unexpected {what}"))
}

/// Turns a login ErrorResponse into Rejected, keeping Postgres's SQLSTATE and message.
fn rejected(
    mut fields: postgres_protocol::message::backend::ErrorFields<'_>,
) -> Result<ServerError, ServerError> {
    let (mut code, mut message) = (String::from(sqlstate::CONNECTION_FAILURE), String::new());
    while let Some(f) = fields.next()? {
        match f.type_() {
            error_field::CODE => code = String::from_utf8_lossy(f.value_bytes()).into_owned(),
            error_field::MESSAGE => message = String::from_utf8_lossy(f.value_bytes()).into_owned(),
            _ => {}
        }
    }
    Ok(ServerError::Rejected { code, message })
}

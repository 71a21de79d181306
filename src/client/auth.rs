//! Authenticating a client as PostgreSQL would: trust, plain (cleartext), md5 and
//! SCRAM-SHA-256 (-PLUS over TLS) against auth_file secrets, or a TLS client certificate
//! (`cert`). Unknown users go through the same exchange as known ones and fail with the same
//! 28P01 message, so user names cannot be probed. PBKDF2 runs on the blocking pool so one
//! login never stalls other clients' I/O.

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::Decoder;

use super::ClientError;
use crate::auth::{
    ct_eq, md5_secret, verify_md5, Connection, Hba, HbaMethod, ScramKeys, ScramSecret, ScramServer,
    Secret, Userlist,
};
use crate::config::AuthType;
use crate::net::BoxStream;
use crate::protocol::backend;
use crate::protocol::codec::{Frame, FrameCodec};
use crate::protocol::frontend::{password_message, sasl_initial_response, PASSWORD_MESSAGE_TAG};
use crate::protocol::sqlstate;
use crate::tls::TlsPeer;

/// Iterations when a plain-text secret must be turned into a SCRAM one (PostgreSQL's default).
const SCRAM_ITERATIONS: u32 = 4096;
/// Password messages are small; refuse anything bigger before buffering it.
const MAX_AUTH_MESSAGE: usize = 8192;

/// What a successful login leaves behind.
#[derive(Default)]
pub(crate) struct Authenticated {
    /// Keys recovered from a SCRAM login against a SCRAM secret: usable towards Postgres.
    pub(crate) scram_keys: Option<ScramKeys>,
}

/// The login conversation with one client.
pub(crate) struct AuthExchange<'a> {
    pub(crate) stream: &'a mut BoxStream,
    pub(crate) buf: &'a mut BytesMut,
    pub(crate) user: &'a str,
    /// Per-process random key that makes fake SCRAM salts for unknown users unguessable.
    pub(crate) mock_key: &'a [u8],
    /// The connection's TLS, if any: client certificate and channel-binding data.
    pub(crate) tls: Option<&'a TlsPeer>,
}

impl AuthExchange<'_> {
    /// Runs the exchange `auth_type` calls for; on success nothing is sent yet (the caller
    /// sends AuthenticationOk once the database is known to exist).
    /// `looked_up` is the secret auth_query found for a user auth_file does not list.
    pub(crate) async fn authenticate(
        &mut self,
        auth_type: AuthType,
        userlist: Option<&Userlist>,
        looked_up: Option<Secret>,
    ) -> Result<Authenticated, ClientError> {
        let secret = userlist
            .and_then(|u| u.get(self.user))
            .cloned()
            .or(looked_up);
        match auth_type {
            // With an auth_file, PgBouncer still requires the user to be listed in it.
            AuthType::Trust if userlist.is_none() || secret.is_some() => {
                Ok(Authenticated::default())
            }
            AuthType::Trust => Err(self.failed()),
            AuthType::Plain => self.plain(secret).await,
            AuthType::Md5 => match secret {
                Some(Secret::Scram(s)) => self.scram(Some(Secret::Scram(s))).await,
                other => self.md5(other).await,
            },
            AuthType::ScramSha256 => self.scram(secret).await,
            AuthType::Cert => self.cert(),
            // Resolved to a method per connection before the exchange (`hba_method`).
            AuthType::Hba => Err(self.failed()),
        }
    }

    /// PostgreSQL's `cert` method (docs, "Certificate Authentication"): the verified client
    /// certificate's CommonName must be the user name; no password is asked.
    fn cert(&self) -> Result<Authenticated, ClientError> {
        let cn = self.tls.and_then(|t| t.common_name.as_deref());
        match cn {
            Some(cn) if cn == self.user => Ok(Authenticated::default()),
            _ => Err(ClientError::Rejected {
                code: sqlstate::INVALID_AUTHORIZATION_SPECIFICATION.into(),
                message: format!(
                    "certificate authentication failed for user \"{}\"{}",
                    self.user,
                    match cn {
                        Some(_) => "",
                        None => " (connect over TLS with a client certificate whose CN is the user name)",
                    }
                ),
            }),
        }
    }

    /// `auth_type = hba`: the method the auth_hba_file gives this connection, or the refusal
    /// PostgreSQL words for a `reject` record or no matching record (28000).
    pub(crate) fn hba_method(
        &self,
        hba: &Hba,
        peer: &str,
        database: &str,
    ) -> Result<AuthType, ClientError> {
        let tls = self.tls.is_some();
        let conn = match peer.parse::<std::net::SocketAddr>() {
            Ok(addr) => Connection::Host {
                addr: addr.ip(),
                tls,
            },
            Err(_) => Connection::Local,
        };
        let host = match conn {
            Connection::Host { addr, .. } => addr.to_string(),
            Connection::Local => "[local]".to_string(),
        };
        let encryption = if tls {
            "SSL encryption"
        } else {
            "no encryption"
        };
        let refuse = |what: &str| ClientError::Rejected {
            code: sqlstate::INVALID_AUTHORIZATION_SPECIFICATION.into(),
            message: format!(
                "{what} for host \"{host}\", user \"{}\", database \"{database}\", {encryption}",
                self.user
            ),
        };
        Ok(match hba.method(conn, database, self.user) {
            None => return Err(refuse("no pg_hba.conf entry")),
            Some(HbaMethod::Reject) => return Err(refuse("pg_hba.conf rejects connection")),
            Some(HbaMethod::Trust) => AuthType::Trust,
            Some(HbaMethod::Md5) => AuthType::Md5,
            Some(HbaMethod::ScramSha256) => AuthType::ScramSha256,
            Some(HbaMethod::Password) => AuthType::Plain,
            Some(HbaMethod::Cert) => AuthType::Cert,
        })
    }

    fn failed(&self) -> ClientError {
        ClientError::AuthFailed {
            user: self.user.to_string(),
        }
    }

    async fn plain(&mut self, secret: Option<Secret>) -> Result<Authenticated, ClientError> {
        let mut out = BytesMut::new();
        backend::authentication_cleartext_password(&mut out);
        self.stream.write_all(&out).await?;
        let frame = self.read_password_frame().await?;
        let password = String::from_utf8_lossy(password_message(&frame.body)?).into_owned();
        let ok = match secret {
            Some(Secret::Plain(p)) => ct_eq(p.as_bytes(), password.as_bytes()),
            Some(Secret::Md5(m)) => {
                ct_eq(m.as_bytes(), md5_secret(self.user, &password).as_bytes())
            }
            Some(Secret::Scram(s)) => {
                let derived = tokio::task::spawn_blocking(move || {
                    (
                        ScramSecret::from_password(&password, &s.salt, s.iterations),
                        s,
                    )
                })
                .await
                .map_err(|source| ClientError::Internal {
                    what: "password check failed",
                    source,
                })?;
                ct_eq(&derived.0.stored_key, &derived.1.stored_key)
            }
            None => false,
        };
        if ok {
            Ok(Authenticated::default())
        } else {
            Err(self.failed())
        }
    }

    async fn md5(&mut self, secret: Option<Secret>) -> Result<Authenticated, ClientError> {
        let salt: [u8; 4] = rand::random();
        let mut out = BytesMut::new();
        backend::authentication_md5_password(&mut out, salt);
        self.stream.write_all(&out).await?;
        let frame = self.read_password_frame().await?;
        let response = password_message(&frame.body)?;
        match secret {
            Some(s) if verify_md5(&s, self.user, salt, response) => Ok(Authenticated::default()),
            _ => Err(self.failed()),
        }
    }

    async fn scram(&mut self, secret: Option<Secret>) -> Result<Authenticated, ClientError> {
        let nonce: [u8; 18] = rand::random();
        let (mut server, passthrough) = match secret {
            Some(Secret::Scram(s)) => (ScramServer::new(s.clone(), nonce), Some(s.server_key)),
            Some(Secret::Plain(p)) => {
                let salt: [u8; 16] = rand::random();
                let s = tokio::task::spawn_blocking(move || {
                    ScramSecret::from_password(&p, &salt, SCRAM_ITERATIONS)
                })
                .await
                .map_err(|source| ClientError::Internal {
                    what: "password check failed",
                    source,
                })?;
                (ScramServer::new(s, nonce), None)
            }
            // An md5 secret cannot answer SCRAM; fail the same way as a wrong password.
            Some(Secret::Md5(_)) | None => (
                ScramServer::new_dummy_keyed(self.mock_key, self.user, nonce),
                None,
            ),
        };
        if let Some(cb_data) = self.tls.and_then(|t| t.end_point.clone()) {
            // PostgreSQL offers SCRAM-SHA-256-PLUS on every TLS connection whose certificate
            // has a defined tls-server-end-point (docs, "SASL Authentication").
            server = server.with_channel_binding(cb_data);
        }
        let mut out = BytesMut::new();
        backend::authentication_sasl(&mut out, server.mechanisms());
        self.stream.write_all(&out).await?;

        let frame = self.read_password_frame().await?;
        let initial = sasl_initial_response(&frame.body)?;
        if server.select_mechanism(initial.mechanism).is_err() {
            return Err(ClientError::Violation(format!(
                "unsupported SASL mechanism \"{}\"",
                initial.mechanism
            )));
        }
        let server_first = server
            .client_first(initial.data)
            .map_err(|e| self.scram_error(e))?;
        out.clear();
        backend::authentication_sasl_continue(&mut out, &server_first);
        self.stream.write_all(&out).await?;

        let frame = self.read_password_frame().await?;
        let outcome = server
            .client_final(&frame.body)
            .map_err(|e| self.scram_error(e))?;
        out.clear();
        backend::authentication_sasl_final(&mut out, &outcome.server_final);
        self.stream.write_all(&out).await?;
        Ok(Authenticated {
            scram_keys: passthrough.map(|server_key| ScramKeys {
                client_key: outcome.client_key,
                server_key,
            }),
        })
    }

    fn scram_error(&self, e: crate::auth::AuthError) -> ClientError {
        match e {
            crate::auth::AuthError::PasswordMismatch => self.failed(),
            other => ClientError::Sasl(other),
        }
    }

    /// Reads one PasswordMessage/SASL message ('p').
    async fn read_password_frame(&mut self) -> Result<Frame, ClientError> {
        let mut codec = FrameCodec::new(MAX_AUTH_MESSAGE);
        loop {
            if let Some(frame) = codec.decode(self.buf)? {
                if frame.tag != PASSWORD_MESSAGE_TAG {
                    return Err(ClientError::Violation(format!(
                        "expected a password message, got message type '{}'",
                        frame.tag.escape_ascii()
                    )));
                }
                return Ok(frame);
            }
            self.buf.reserve(1024);
            if self.stream.read_buf(self.buf).await? == 0 {
                return Err(ClientError::Gone);
            }
        }
    }
}

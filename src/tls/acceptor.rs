//! TLS towards clients: the rustls server configuration built from client_tls_* and the
//! handshake on an accepted socket, after an SSLRequest or directly (PostgreSQL 17's
//! `sslnegotiation=direct`). The handshake runs inside the client's own task, under its
//! client_login_timeout, so a slow or stalling peer holds nobody else up.

use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use super::facts::{common_name, describe, end_point_hash};
use super::files::Problems;
use super::{provider, versions, TlsError, ALPN_POSTGRESQL};
use crate::config::{SslMode, TlsSettings};
use crate::net::write_through::WriteThrough;
use crate::net::{BoxStream, Transport};

/// What the client side of TLS needs: the mode, and the acceptor when TLS is on.
pub(crate) struct ClientTls {
    pub(crate) mode: SslMode,
    acceptor: Option<TlsAcceptor>,
    /// tls-server-end-point of our own certificate; None when undefined for its algorithm.
    end_point: Option<Vec<u8>>,
}

/// Facts about one client's TLS connection.
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsPeer {
    /// For SHOW CLIENTS' tls column.
    pub(crate) description: String,
    /// CommonName of the client certificate; only set for a certificate that was verified
    /// against client_tls_ca_file.
    pub(crate) common_name: Option<String>,
    /// Channel-binding data of the certificate we presented (SCRAM-SHA-256-PLUS).
    pub(crate) end_point: Option<Vec<u8>>,
    /// Whether the client negotiated ALPN "postgresql" (required for direct TLS).
    pub(crate) alpn_postgresql: bool,
}

impl ClientTls {
    pub(crate) fn disabled() -> ClientTls {
        ClientTls {
            mode: SslMode::Disable,
            acceptor: None,
            end_point: None,
        }
    }

    /// Builds the acceptor from client_tls_*; problems go to `problems`.
    pub(super) fn load(s: &TlsSettings, problems: &mut Problems) -> Option<ClientTls> {
        if s.client_tls_sslmode == SslMode::Disable {
            return Some(ClientTls::disabled());
        }
        // validate() already demanded both files for any mode but disable. Every file is
        // read and parsed before giving up, so one run reports all their problems.
        let cert_pem = problems.read("client_tls_cert_file", s.client_tls_cert_file.as_ref()?);
        let key_pem = problems.read("client_tls_key_file", s.client_tls_key_file.as_ref()?);
        let ca_pem = s
            .client_tls_ca_file
            .as_ref()
            .map(|path| problems.read("client_tls_ca_file", path));
        let certs = cert_pem.and_then(|pem| problems.certs("client_tls_cert_file", &pem));
        let key = key_pem.and_then(|pem| problems.key("client_tls_key_file", &pem));
        let roots =
            ca_pem.map(|pem| pem.and_then(|pem| problems.roots("client_tls_ca_file", &pem)));
        let (certs, key) = (certs?, key?);
        let roots = match roots {
            Some(r) => Some(r?),
            None => None,
        };
        let end_point = end_point_hash(&certs[0]);
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&versions(&s.client_tls_protocols))
            .map_err(|e| problems.add("client_tls_protocols", e.to_string()))
            .ok()?;
        let builder = match roots {
            Some(roots) => {
                let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider());
                // PgBouncer: verify-ca/verify-full demand a certificate; below that a presented
                // one is still checked here, so `cert` auth can trust what it reads.
                let verifier = if s.client_tls_sslmode >= SslMode::VerifyCa {
                    verifier
                } else {
                    verifier.allow_unauthenticated()
                };
                let verifier = verifier
                    .build()
                    .map_err(|e| problems.add("client_tls_ca_file", e.to_string()))
                    .ok()?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(|e| {
                problems.add(
                    "client_tls_key_file",
                    format!("does not fit client_tls_cert_file: {e}"),
                )
            })
            .ok()?;
        // PostgreSQL 17 docs, "Direct SSL negotiation": the server requires ALPN "postgresql"
        // on direct connections and accepts it after an SSLRequest too.
        config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
        Some(ClientTls {
            mode: s.client_tls_sslmode,
            acceptor: Some(TlsAcceptor::from(Arc::new(config))),
            end_point,
        })
    }

    /// Whether an SSLRequest is answered 'S'.
    pub(crate) fn enabled(&self) -> bool {
        self.acceptor.is_some()
    }

    /// Runs the server side of the handshake on `stream` and returns the encrypted stream.
    pub(crate) async fn accept<S: Transport>(
        &self,
        stream: S,
    ) -> Result<(BoxStream, TlsPeer), TlsError> {
        let acceptor = self.acceptor.as_ref().ok_or(TlsError::Disabled)?;
        let tls = acceptor.accept(stream).await.map_err(TlsError::Handshake)?;
        let (_, conn) = tls.get_ref();
        let peer = TlsPeer {
            description: describe(conn),
            common_name: conn
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| common_name(c)),
            end_point: self.end_point.clone(),
            alpn_postgresql: conn.alpn_protocol() == Some(ALPN_POSTGRESQL),
        };
        Ok((Box::new(WriteThrough::new(tls)), peer))
    }
}

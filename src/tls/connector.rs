//! TLS towards Postgres: the rustls client configuration built from server_tls_*, with the
//! certificate checks PgBouncer's modes ask for (prefer/require: none, verify-ca: the chain,
//! verify-full: the chain and the host name), and the handshake after Postgres answered 'S'
//! to our SSLRequest. A fingerprint of the settings and file contents lets a reload tell
//! whether servers must be replaced.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use tokio_rustls::TlsConnector;

use super::facts::{describe, end_point_hash};
use super::files::Problems;
use super::{provider, versions, TlsError};
use crate::config::{SslMode, TlsSettings};
use crate::net::write_through::WriteThrough;
use crate::net::{BoxStream, Transport};

/// What the server side of TLS needs.
pub(crate) struct ServerTls {
    pub(crate) mode: SslMode,
    /// None when no SSLRequest is sent (disable, allow).
    connector: Option<TlsConnector>,
    /// SHA-256 over the mode, the protocols and every file's bytes.
    fingerprint: [u8; 32],
}

/// Facts about one server connection's TLS.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServerTlsInfo {
    /// For SHOW SERVERS' tls column.
    pub(crate) description: String,
    /// Channel-binding data of Postgres's certificate, for SCRAM-SHA-256-PLUS.
    pub(crate) end_point: Option<Vec<u8>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    pub(crate) fn disabled() -> ServerTls {
        ServerTls {
            mode: SslMode::Disable,
            connector: None,
            fingerprint: [0; 32],
        }
    }

    /// Builds the connector from server_tls_*; problems go to `problems`.
    pub(super) fn load(s: &TlsSettings, problems: &mut Problems) -> Option<ServerTls> {
        let mut fingerprint = Sha256::new();
        fingerprint.update(s.server_tls_sslmode.to_string());
        fingerprint.update([0]);
        fingerprint.update(s.server_tls_protocols.to_string());
        let mut read = |key: &str, path: &Option<std::path::PathBuf>| match path {
            Some(path) => {
                let bytes = problems.read(key, path);
                let content = bytes.as_deref().unwrap_or_default();
                fingerprint.update((content.len() as u64).to_be_bytes());
                fingerprint.update(content);
                Some(bytes)
            }
            None => {
                fingerprint.update(u64::MAX.to_be_bytes());
                None
            }
        };
        let ca = read("server_tls_ca_file", &s.server_tls_ca_file);
        let cert = read("server_tls_cert_file", &s.server_tls_cert_file);
        let key = read("server_tls_key_file", &s.server_tls_key_file);
        let fingerprint = fingerprint.finalize().into();
        if s.server_tls_sslmode < SslMode::Prefer {
            return Some(ServerTls {
                mode: s.server_tls_sslmode,
                connector: None,
                fingerprint,
            });
        }
        let roots = ca.map(|pem| pem.and_then(|p| problems.roots("server_tls_ca_file", &p)));
        let certs = cert.map(|pem| pem.and_then(|p| problems.certs("server_tls_cert_file", &p)));
        let key = key.map(|pem| pem.and_then(|p| problems.key("server_tls_key_file", &p)));
        let verifier: Arc<dyn ServerCertVerifier> = match (s.server_tls_sslmode, roots) {
            (SslMode::VerifyCa | SslMode::VerifyFull, Some(roots)) => {
                let webpki = WebPkiServerVerifier::builder_with_provider(roots?, provider())
                    .build()
                    .map_err(|e| problems.add("server_tls_ca_file", e.to_string()))
                    .ok()?;
                if s.server_tls_sslmode == SslMode::VerifyFull {
                    webpki
                } else {
                    Arc::new(ChainOnly(webpki))
                }
            }
            // validate() demanded a CA file for the verify modes.
            (SslMode::VerifyCa | SslMode::VerifyFull, None) => return None,
            _ => Arc::new(Unverified(provider())),
        };
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&versions(&s.server_tls_protocols))
            .map_err(|e| problems.add("server_tls_protocols", e.to_string()))
            .ok()?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match (certs, key) {
            (Some(certs), Some(key)) => builder
                .with_client_auth_cert(certs?, key?)
                .map_err(|e| {
                    problems.add(
                        "server_tls_key_file",
                        format!("does not fit server_tls_cert_file: {e}"),
                    )
                })
                .ok()?,
            _ => builder.with_no_client_auth(),
        };
        Some(ServerTls {
            mode: s.server_tls_sslmode,
            connector: Some(TlsConnector::from(Arc::new(config))),
            fingerprint,
        })
    }

    /// Whether an SSLRequest is sent to Postgres (prefer and stricter).
    pub(crate) fn requests_tls(&self) -> bool {
        self.connector.is_some()
    }

    /// Whether a server that refuses TLS must be refused in turn (require and stricter).
    pub(crate) fn required(&self) -> bool {
        self.mode >= SslMode::Require
    }

    /// Whether servers opened under `other` were opened the way this one would open them.
    pub(crate) fn same_as(&self, other: &ServerTls) -> bool {
        self.fingerprint == other.fingerprint
    }

    /// The client side of the handshake with Postgres at `host`.
    pub(crate) async fn connect<S: Transport>(
        &self,
        stream: S,
        host: &str,
    ) -> Result<(BoxStream, ServerTlsInfo), TlsError> {
        let connector = self.connector.as_ref().ok_or(TlsError::Disabled)?;
        let name = match ServerName::try_from(host.to_string()) {
            Ok(name) => name,
            Err(_) if self.mode < SslMode::VerifyFull => {
                ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into())
            }
            Err(_) => return Err(TlsError::HostName(host.to_string())),
        };
        let tls = connector
            .connect(name, stream)
            .await
            .map_err(TlsError::Handshake)?;
        let (_, conn) = tls.get_ref();
        let info = ServerTlsInfo {
            description: describe(conn),
            end_point: conn
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| end_point_hash(c)),
        };
        Ok((Box::new(WriteThrough::new(tls)), info))
    }
}

/// prefer/require: the connection is encrypted, the certificate taken as it comes (PgBouncer:
/// "Server certificate is not validated"); handshake signatures are still checked.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// verify-ca: the chain must lead to server_tls_ca_file; the name is not checked (webpki
/// checks it last, so a name mismatch means everything else passed).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

//! TLS on both sides with rustls (ring provider): `acceptor` for clients (client_tls_*),
//! `connector` for Postgres (server_tls_*), `facts` for what a handshake and a certificate
//! tell us (SHOW column text, CommonName, SCRAM channel binding). `TlsContext::load` reads
//! every file at startup, `--check` and RELOAD; a context is immutable and swapped whole, so a
//! connection keeps the one it started with. File problems come back as `ConfigErrors` named
//! by their pooler.toml key.

mod acceptor;
mod connector;
mod facts;
mod files;

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::SupportedProtocolVersion;

pub(crate) use acceptor::{ClientTls, TlsPeer};
pub(crate) use connector::{ServerTls, ServerTlsInfo};

use crate::config::{ConfigErrors, ConfigProblem, TlsProtocols, TlsSettings};

/// The ALPN protocol name PostgreSQL 17 registered (docs: "Direct SSL negotiation").
pub(crate) const ALPN_POSTGRESQL: &[u8] = b"postgresql";

#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    #[error("TLS is not enabled")]
    Disabled,
    #[error("TLS handshake failed: {0}")]
    Handshake(#[source] std::io::Error),
    #[error("\"{0}\" is not a valid host name for verify-full (server_tls_sslmode)")]
    HostName(String),
}

/// The TLS configuration of both sides, loaded from one [pooler] snapshot.
pub(crate) struct TlsContext {
    pub(crate) client: ClientTls,
    pub(crate) server: Arc<ServerTls>,
}

impl TlsContext {
    /// No TLS anywhere (tests and tools that do not load files).
    #[allow(dead_code, reason = "used by unit tests of other modules")]
    pub(crate) fn disabled() -> TlsContext {
        TlsContext {
            client: ClientTls::disabled(),
            server: Arc::new(ServerTls::disabled()),
        }
    }

    /// Reads and checks every certificate, key and CA file the settings name. All problems
    /// of both sides are reported together.
    pub(crate) fn load(settings: &TlsSettings) -> Result<TlsContext, ConfigErrors> {
        let mut problems = files::Problems::default();
        let client = ClientTls::load(settings, &mut problems);
        let server = ServerTls::load(settings, &mut problems);
        match (client, server) {
            (Some(client), Some(server)) if problems.0.is_empty() => Ok(TlsContext {
                client,
                server: Arc::new(server),
            }),
            // validate() reports incomplete settings before this runs; never fail silently.
            _ if problems.0.is_empty() => Err(ConfigErrors(vec![ConfigProblem::new(
                "pooler.client_tls_sslmode",
                "TLS settings are incomplete (a mode needs its certificate, key or CA file)",
            )])),
            _ => Err(ConfigErrors(problems.0)),
        }
    }
}

/// The one crypto provider pgsluice uses, whatever else the dependency graph enables.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls versions `protocols` allows (the parser guarantees at least one).
fn versions(protocols: &TlsProtocols) -> Vec<&'static SupportedProtocolVersion> {
    let mut v = Vec::new();
    if protocols.tls13 {
        v.push(&rustls::version::TLS13);
    }
    if protocols.tls12 {
        v.push(&rustls::version::TLS12);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SslMode;
    use std::path::Path;

    /// A CA and a leaf it signed for "localhost", as PEM files in `dir`.
    pub(crate) fn write_certs(dir: &Path) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        std::fs::write(dir.join("ca.crt"), ca_cert.pem()).unwrap();
        std::fs::write(dir.join("server.crt"), leaf.pem()).unwrap();
        std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    }

    fn settings(dir: &Path) -> TlsSettings {
        TlsSettings {
            client_tls_sslmode: SslMode::VerifyCa,
            client_tls_cert_file: Some(dir.join("server.crt")),
            client_tls_key_file: Some(dir.join("server.key")),
            client_tls_ca_file: Some(dir.join("ca.crt")),
            server_tls_sslmode: SslMode::VerifyFull,
            server_tls_ca_file: Some(dir.join("ca.crt")),
            ..TlsSettings::default()
        }
    }

    #[test]
    fn good_files_load_and_bad_ones_are_named_by_key() {
        let dir = tempfile::tempdir().unwrap();
        write_certs(dir.path());
        let ctx = TlsContext::load(&settings(dir.path())).unwrap();
        assert!(ctx.client.enabled());
        assert!(ctx.server.requests_tls() && ctx.server.required());

        let mut bad = settings(dir.path());
        bad.client_tls_cert_file = Some(dir.path().join("missing.crt"));
        bad.client_tls_key_file = Some(dir.path().join("ca.crt"));
        bad.server_tls_ca_file = Some(dir.path().join("server.key"));
        let errors = TlsContext::load(&bad).err().unwrap();
        let keys: Vec<&str> = errors.0.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "pooler.client_tls_cert_file",
                "pooler.client_tls_key_file",
                "pooler.server_tls_ca_file"
            ],
            "{errors}"
        );
        assert!(errors.to_string().contains("missing.crt"), "{errors}");
    }

    #[test]
    fn a_key_that_does_not_fit_the_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write_certs(dir.path());
        let other = rcgen::KeyPair::generate().unwrap();
        std::fs::write(dir.path().join("other.key"), other.serialize_pem()).unwrap();
        let mut s = settings(dir.path());
        s.client_tls_key_file = Some(dir.path().join("other.key"));
        let errors = TlsContext::load(&s).err().unwrap();
        assert_eq!(errors.0.len(), 1);
        assert!(errors.0[0]
            .to_string()
            .starts_with("pooler.client_tls_key_file: does not fit client_tls_cert_file"));
    }

    #[test]
    fn server_fingerprint_follows_settings_and_file_contents() {
        let dir = tempfile::tempdir().unwrap();
        write_certs(dir.path());
        let s = settings(dir.path());
        let a = TlsContext::load(&s).unwrap().server;
        let b = TlsContext::load(&s).unwrap().server;
        assert!(a.same_as(&b));
        write_certs(dir.path());
        let c = TlsContext::load(&s).unwrap().server;
        assert!(!a.same_as(&c), "a new CA file must replace servers");
        let d = TlsContext::load(&TlsSettings {
            server_tls_sslmode: SslMode::Require,
            ..s
        })
        .unwrap()
        .server;
        assert!(!c.same_as(&d));
        assert!(!TlsContext::disabled().client.enabled());
    }
}

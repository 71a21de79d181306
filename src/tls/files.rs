//! Reading certificate, key and CA files (PEM) for the TLS configurations. Every problem is
//! reported under the pooler.toml key that named the file, so `pgsluice --check`, startup and
//! RELOAD say which setting to fix. The raw bytes are kept for the configuration fingerprint;
//! key material never appears in a message.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::ConfigProblem;

/// Collects the problems of one load, each under its `pooler.<key>`.
#[derive(Default)]
pub(super) struct Problems(pub(super) Vec<ConfigProblem>);

impl Problems {
    pub(super) fn add(&mut self, key: &str, message: impl Into<String>) {
        self.0
            .push(ConfigProblem::new(format!("pooler.{key}"), message));
    }

    /// The bytes of the file `key` names; None (and a problem) when it cannot be read.
    pub(super) fn read(&mut self, key: &str, path: &Path) -> Option<Vec<u8>> {
        match std::fs::read(path) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                self.add(key, format!("cannot read {}: {e}", path.display()));
                None
            }
        }
    }

    /// A certificate chain (end entity first), at least one certificate.
    pub(super) fn certs(&mut self, key: &str, pem: &[u8]) -> Option<Vec<CertificateDer<'static>>> {
        let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem).collect();
        match certs {
            Ok(certs) if !certs.is_empty() => Some(certs),
            Ok(_) => {
                self.add(key, "no PEM certificate (BEGIN CERTIFICATE) in the file");
                None
            }
            Err(e) => {
                self.add(key, format!("not a valid PEM certificate file: {e}"));
                None
            }
        }
    }

    /// One private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub(super) fn key(&mut self, key: &str, pem: &[u8]) -> Option<PrivateKeyDer<'static>> {
        match PrivateKeyDer::from_pem_slice(pem) {
            Ok(k) => Some(k),
            // The pem error never quotes the key itself, only its shape.
            Err(e) => {
                self.add(key, format!("no usable PEM private key in the file: {e}"));
                None
            }
        }
    }

    /// Trust anchors from a CA file; every certificate in it must be usable as one.
    pub(super) fn roots(&mut self, key: &str, pem: &[u8]) -> Option<Arc<RootCertStore>> {
        let certs = self.certs(key, pem)?;
        let mut store = RootCertStore::empty();
        for cert in certs {
            if let Err(e) = store.add(cert) {
                self.add(
                    key,
                    format!("a certificate in the file is not a usable CA: {e}"),
                );
                return None;
            }
        }
        Some(Arc::new(store))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_name_the_key_and_never_the_content() {
        let mut p = Problems::default();
        assert!(p
            .read("client_tls_cert_file", Path::new("/nonexistent/x.crt"))
            .is_none());
        assert!(p.certs("client_tls_cert_file", b"hello").is_none());
        let secretish = b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n";
        assert!(p.key("client_tls_key_file", b"no key here").is_none());
        assert!(p.roots("client_tls_ca_file", secretish).is_none());
        let shown: Vec<String> = p.0.iter().map(ToString::to_string).collect();
        assert!(shown[0].starts_with(
            "pooler.client_tls_cert_file: cannot read /nonexistent/x.crt: No such file"
        ));
        assert_eq!(
            shown[1],
            "pooler.client_tls_cert_file: no PEM certificate (BEGIN CERTIFICATE) in the file"
        );
        assert!(shown[2].starts_with("pooler.client_tls_key_file: no usable PEM private key"));
        assert!(shown[3].starts_with("pooler.client_tls_ca_file: "));
        assert!(shown.iter().all(|s| !s.contains("c2VjcmV0")), "{shown:?}");
    }
}

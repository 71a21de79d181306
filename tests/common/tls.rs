//! TLS on the test's side: rustls client configurations that trust a test CA (optionally with a
//! client certificate), tokio-postgres connections through tokio-postgres-rustls, and a
//! hand-rolled handshake — after an SSLRequest or directly with ALPN "postgresql", as
//! PostgreSQL 17's `sslnegotiation=direct` does — that returns the server's certificate.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::certs::CertAndKey;
use super::ConnTask;

/// A rustls client that trusts `ca_pem` and checks the host name; with `client`, presents
/// that certificate; with `alpn`, offers ALPN "postgresql".
pub fn client_config(
    ca_pem: &str,
    client: Option<&CertAndKey>,
    alpn: bool,
) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA cert");
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots);
    let mut config = match client {
        Some(c) => {
            let certs = CertificateDer::pem_slice_iter(c.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("client cert PEM");
            let key = PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes()).expect("client key");
            builder
                .with_client_auth_cert(certs, key)
                .expect("client auth")
        }
        None => builder.with_no_client_auth(),
    };
    if alpn {
        config.alpn_protocols = vec![b"postgresql".to_vec()];
    }
    config
}

/// Connects with tokio-postgres over TLS (the `cfg` says sslmode, channel_binding...).
pub async fn connect_tls(
    cfg: &tokio_postgres::Config,
    config: rustls::ClientConfig,
) -> Result<(tokio_postgres::Client, ConnTask), tokio_postgres::Error> {
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(config);
    let (client, connection) = cfg.connect(tls).await?;
    Ok((client, tokio::spawn(connection)))
}

/// Opens TCP to `port` and runs the TLS handshake for "localhost": after an SSLRequest
/// answered 'S', or with `direct` as the very first bytes. Panics if TLS is refused.
pub async fn handshake(
    port: u16,
    config: rustls::ClientConfig,
    direct: bool,
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    if !direct {
        // SSLRequest: length 8, code 80877103 (PostgreSQL docs, "Message Formats").
        tcp.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]).await?;
        let answer = tcp.read_u8().await?;
        assert_eq!(answer, b'S', "SSLRequest answered {:?}", answer as char);
    }
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from("localhost").expect("server name");
    connector.connect(name, tcp).await
}

/// The DER of the certificate the server presented on `stream`.
pub fn peer_certificate(stream: &TlsStream<TcpStream>) -> Vec<u8> {
    let (_, conn) = stream.get_ref();
    conn.peer_certificates().expect("server certificate")[0].to_vec()
}

/// CommonName and serial number (decimal) of a DER certificate.
pub fn subject_and_serial(der: &[u8]) -> (String, String) {
    let (_, cert) = x509_parser::parse_x509_certificate(der).expect("parse certificate");
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())
        .unwrap_or_default()
        .to_string();
    (cn, cert.serial.to_string())
}

//! What a certificate and a finished handshake tell us: the `tls-server-end-point` channel
//! binding of a certificate (RFC 5929 section 4.1, used by SCRAM-SHA-256-PLUS), the CommonName
//! of a client certificate (`cert` auth), and the "TLSv1.3/TLS_AES_256_GCM_SHA384" text that
//! SHOW CLIENTS / SHOW SERVERS print in their `tls` column, as PgBouncer does.

use rustls::{CipherSuite, CommonState, ProtocolVersion};
use sha2::Digest;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::signature_algorithm::SignatureAlgorithm;

/// The channel-binding data of a certificate: its DER hashed with the hash of its signature
/// algorithm, except that MD5 and SHA-1 are replaced by SHA-256 (RFC 5929 section 4.1).
/// None when that is undefined (Ed25519, no single hash) or the certificate does not parse;
/// SCRAM-SHA-256-PLUS is then not used, as with PostgreSQL.
pub(crate) fn end_point_hash(der: &[u8]) -> Option<Vec<u8>> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let oid = cert.signature_algorithm.algorithm.to_id_string();
    let hash = match oid.as_str() {
        // md5WithRSA, sha1WithRSA, sha256WithRSA, ecdsa-with-SHA1, ecdsa-with-SHA256, DSA-SHA1/256
        "1.2.840.113549.1.1.4"
        | "1.2.840.113549.1.1.5"
        | "1.2.840.113549.1.1.11"
        | "1.2.840.10045.4.1"
        | "1.2.840.10045.4.3.2"
        | "1.2.840.10040.4.3"
        | "2.16.840.1.101.3.4.3.2" => "sha256",
        "1.2.840.113549.1.1.14" | "1.2.840.10045.4.3.1" => "sha224",
        "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" => "sha384",
        "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" => "sha512",
        // RSASSA-PSS carries its hash in the parameters.
        "1.2.840.113549.1.1.10" => pss_hash(&cert)?,
        _ => return None,
    };
    Some(digest(hash, der))
}

fn pss_hash(cert: &X509Certificate<'_>) -> Option<&'static str> {
    let SignatureAlgorithm::RSASSA_PSS(params) =
        SignatureAlgorithm::try_from(&cert.signature_algorithm).ok()?
    else {
        return None;
    };
    match params.hash_algorithm_oid().to_id_string().as_str() {
        "1.3.14.3.2.26" | "2.16.840.1.101.3.4.2.1" => Some("sha256"),
        "2.16.840.1.101.3.4.2.4" => Some("sha224"),
        "2.16.840.1.101.3.4.2.2" => Some("sha384"),
        "2.16.840.1.101.3.4.2.3" => Some("sha512"),
        _ => None,
    }
}

fn digest(hash: &str, der: &[u8]) -> Vec<u8> {
    match hash {
        "sha224" => sha2::Sha224::digest(der).to_vec(),
        "sha384" => sha2::Sha384::digest(der).to_vec(),
        "sha512" => sha2::Sha512::digest(der).to_vec(),
        _ => sha2::Sha256::digest(der).to_vec(),
    }
}

/// The first CommonName of a certificate's subject.
pub(crate) fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

/// "TLSv1.3/TLS_AES_256_GCM_SHA384": the protocol and the cipher suite, with OpenSSL's names
/// for TLS 1.2 suites so the column reads as it does under PgBouncer.
pub(crate) fn describe(state: &CommonState) -> String {
    let version = match state.protocol_version() {
        Some(ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(ProtocolVersion::TLSv1_2) => "TLSv1.2",
        _ => "TLS",
    };
    let suite = state
        .negotiated_cipher_suite()
        .map(|s| suite_name(s.suite()))
        .unwrap_or_default();
    format!("{version}/{suite}")
}

fn suite_name(suite: CipherSuite) -> String {
    let openssl = match suite {
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "ECDHE-ECDSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => {
            "ECDHE-ECDSA-CHACHA20-POLY1305"
        }
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "ECDHE-RSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "ECDHE-RSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-RSA-CHACHA20-POLY1305",
        // TLS 1.3 suites: the IANA name ("TLS_AES_256_GCM_SHA384"), as OpenSSL prints it.
        other => {
            return other
                .as_str()
                .map(|s| s.replacen("TLS13_", "TLS_", 1))
                .unwrap_or_else(|| format!("{other:?}"))
        }
    };
    openssl.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(alg: &'static rcgen::SignatureAlgorithm, cn: &str) -> Vec<u8> {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn end_point_hash_follows_the_signature_hash() {
        let p256 = cert(&rcgen::PKCS_ECDSA_P256_SHA256, "a");
        assert_eq!(
            end_point_hash(&p256),
            Some(sha2::Sha256::digest(&p256).to_vec())
        );
        let p384 = cert(&rcgen::PKCS_ECDSA_P384_SHA384, "a");
        assert_eq!(
            end_point_hash(&p384),
            Some(sha2::Sha384::digest(&p384).to_vec())
        );
        // Ed25519 signs without a separate hash: RFC 5929 leaves the binding undefined.
        assert_eq!(end_point_hash(&cert(&rcgen::PKCS_ED25519, "a")), None);
        assert_eq!(end_point_hash(b"not a certificate"), None);
    }

    #[test]
    fn common_name_is_read_from_the_subject() {
        assert_eq!(
            common_name(&cert(&rcgen::PKCS_ECDSA_P256_SHA256, "pos_terminal")).as_deref(),
            Some("pos_terminal")
        );
        assert_eq!(common_name(b"junk"), None);
    }

    #[test]
    fn suites_are_named_as_pgbouncer_shows_them() {
        assert_eq!(
            suite_name(CipherSuite::TLS13_AES_256_GCM_SHA384),
            "TLS_AES_256_GCM_SHA384"
        );
        assert_eq!(
            suite_name(CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
            "ECDHE-RSA-AES128-GCM-SHA256"
        );
    }
}

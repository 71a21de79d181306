//! The keyword-valued settings: pool_mode, auth_type, log_format and the TLS sslmodes.
//! Spelled exactly as in PgBouncer's documentation so existing configs keep working; parsed by
//! the section reader and displayed back (SHOW CONFIG, logs) in the same spelling.

use std::fmt;
use std::str::FromStr;

/// When a server connection goes back to the pool (PgBouncer "pool_mode").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoolMode {
    /// Released when the client disconnects.
    Session,
    /// Released when a transaction ends (ReadyForQuery with status `I`).
    Transaction,
    /// Released after each statement; multi-statement transactions are refused.
    Statement,
}

/// How clients prove who they are to pgsluice (PgBouncer "auth_type").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthType {
    /// No password asked; the user name is taken on trust.
    Trust,
    /// Cleartext password (use only over TLS or local sockets).
    Plain,
    /// MD5 challenge (PostgreSQL docs, 53.3.2 "Password Authentication").
    Md5,
    /// SCRAM-SHA-256 (RFC 7677), the PostgreSQL default since version 14.
    ScramSha256,
    /// A TLS client certificate whose CommonName equals the user name (PgBouncer "cert").
    Cert,
    /// The method is chosen per connection by the auth_hba_file (PgBouncer "hba").
    Hba,
}

/// How hard to insist on TLS (PgBouncer client_tls_sslmode / server_tls_sslmode, libpq's
/// sslmode words). Ordered from weakest to strictest, so `mode >= SslMode::Require` reads as
/// "TLS is mandatory".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SslMode {
    /// No TLS: clients asking for it get 'N'; servers are not asked.
    Disable,
    /// Clients: TLS when they ask for it. Servers: plain (as PgBouncer, no fallback to TLS).
    Allow,
    /// Clients: as allow. Servers: TLS when Postgres offers it, unverified, else plain.
    Prefer,
    /// TLS mandatory, certificate not verified (client certificates are checked against
    /// client_tls_ca_file when one is presented and that file is set).
    Require,
    /// TLS mandatory and the peer's certificate must chain to the configured CA.
    VerifyCa,
    /// As verify-ca; towards servers the host name must also match the certificate.
    VerifyFull,
}

/// Output format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogFormat {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Maps each keyword of an enum to its value: the one table both parsing and display use.
trait Keywords: Sized + Copy + PartialEq + 'static {
    const ALL: &'static [(&'static str, Self)];

    fn keyword(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, v)| *v == self)
            .map(|(k, _)| *k)
            .unwrap_or("?")
    }

    fn from_keyword(s: &str) -> Result<Self, String> {
        let wanted = s.trim().to_ascii_lowercase();
        Self::ALL
            .iter()
            .find(|(k, _)| *k == wanted)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let choices: Vec<String> =
                    Self::ALL.iter().map(|(k, _)| format!("{k:?}")).collect();
                format!("{s:?} is not one of {}", choices.join(", "))
            })
    }
}

impl Keywords for PoolMode {
    const ALL: &'static [(&'static str, Self)] = &[
        ("session", PoolMode::Session),
        ("transaction", PoolMode::Transaction),
        ("statement", PoolMode::Statement),
    ];
}

impl Keywords for AuthType {
    const ALL: &'static [(&'static str, Self)] = &[
        ("trust", AuthType::Trust),
        ("plain", AuthType::Plain),
        ("md5", AuthType::Md5),
        ("scram-sha-256", AuthType::ScramSha256),
        ("cert", AuthType::Cert),
        ("hba", AuthType::Hba),
    ];
}

impl Keywords for SslMode {
    const ALL: &'static [(&'static str, Self)] = &[
        ("disable", SslMode::Disable),
        ("allow", SslMode::Allow),
        ("prefer", SslMode::Prefer),
        ("require", SslMode::Require),
        ("verify-ca", SslMode::VerifyCa),
        ("verify-full", SslMode::VerifyFull),
    ];
}

impl Keywords for LogFormat {
    const ALL: &'static [(&'static str, Self)] =
        &[("plain", LogFormat::Plain), ("json", LogFormat::Json)];
}

macro_rules! keyword_traits {
    ($($ty:ty),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.keyword())
            }
        }

        impl FromStr for $ty {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, String> {
                Self::from_keyword(s)
            }
        }
    )*};
}

keyword_traits!(PoolMode, AuthType, LogFormat, SslMode);

impl AuthType {
    /// Whether clients must present a password, and so an auth_file is needed.
    pub fn needs_password(self) -> bool {
        !matches!(self, AuthType::Trust | AuthType::Cert)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_round_trip() {
        for mode in [
            PoolMode::Session,
            PoolMode::Transaction,
            PoolMode::Statement,
        ] {
            assert_eq!(mode.to_string().parse::<PoolMode>(), Ok(mode));
        }
        for auth in [
            AuthType::Trust,
            AuthType::Plain,
            AuthType::Md5,
            AuthType::ScramSha256,
            AuthType::Cert,
        ] {
            assert_eq!(auth.to_string().parse::<AuthType>(), Ok(auth));
        }
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!(AuthType::ScramSha256.to_string(), "scram-sha-256");
        assert_eq!(PoolMode::Transaction.to_string(), "transaction");
        assert_eq!("verify-full".parse::<SslMode>(), Ok(SslMode::VerifyFull));
        assert_eq!(SslMode::VerifyCa.to_string(), "verify-ca");
        assert!(SslMode::Prefer < SslMode::Require && SslMode::Require < SslMode::VerifyCa);
    }

    #[test]
    fn parsing_ignores_case_and_lists_choices_on_error() {
        assert_eq!("Transaction".parse::<PoolMode>(), Ok(PoolMode::Transaction));
        let err = "transactional".parse::<PoolMode>().unwrap_err();
        assert_eq!(
            err,
            r#""transactional" is not one of "session", "transaction", "statement""#
        );
        assert!("scram".parse::<AuthType>().is_err());
    }

    #[test]
    fn only_trust_skips_passwords() {
        assert!(!AuthType::Trust.needs_password());
        assert!(!AuthType::Cert.needs_password());
        assert!(AuthType::Md5.needs_password());
    }
}

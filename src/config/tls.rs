//! The TLS keys of [pooler]: PgBouncer's client_tls_* and server_tls_* names, meanings and
//! defaults (PgBouncer docs, "TLS settings"). Read by `PoolerSettings::read`, shown by SHOW
//! CONFIG, checked across keys here (a mode that needs a file without it). Only paths are
//! read here; the files themselves are loaded, and their problems reported under the same
//! key names, by the `tls` module at startup, `--check` and RELOAD.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::error::ConfigProblem;
use super::kinds::{AuthType, SslMode};
use super::reader::{self, Section};

/// The TLS keys, in pooler.toml.example order.
#[rustfmt::skip]
pub const TLS_KEYS: &[&str] = &[
    "client_tls_sslmode", "client_tls_cert_file", "client_tls_key_file", "client_tls_ca_file",
    "client_tls_protocols",
    "server_tls_sslmode", "server_tls_ca_file", "server_tls_cert_file", "server_tls_key_file",
    "server_tls_protocols",
];

/// TLS versions allowed on one side. rustls implements TLS 1.2 and 1.3 only, so PgBouncer's
/// `tlsv1.0`/`tlsv1.1` (and the `all`/`legacy` shortcuts that include them) allow nothing more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsProtocols {
    /// The value as written, shown back by SHOW CONFIG.
    pub spec: String,
    pub tls12: bool,
    pub tls13: bool,
}

impl Default for TlsProtocols {
    fn default() -> Self {
        TlsProtocols {
            spec: "secure".to_string(),
            tls12: true,
            tls13: true,
        }
    }
}

impl fmt::Display for TlsProtocols {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec)
    }
}

impl FromStr for TlsProtocols {
    type Err = String;

    /// libtls's grammar, which PgBouncer uses: words separated by `,` or `:`, each optionally
    /// negated with `!`: tlsv1.0 … tlsv1.3, tlsv1 (= tlsv1.0), all, legacy, secure, default.
    fn from_str(s: &str) -> Result<Self, String> {
        // Versions 1.0, 1.1, 1.2, 1.3 as bits 0..=3.
        let mut allowed = 0u8;
        for word in s.split([',', ':']).map(str::trim).filter(|w| !w.is_empty()) {
            let (negate, name) = match word.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, word),
            };
            let bits = match name.to_ascii_lowercase().as_str() {
                "tlsv1" | "tlsv1.0" => 0b0001,
                "tlsv1.1" => 0b0010,
                "tlsv1.2" => 0b0100,
                "tlsv1.3" => 0b1000,
                "all" | "legacy" => 0b1111,
                "secure" | "default" => 0b1100,
                _ => {
                    return Err(format!(
                        "{name:?} is not a TLS protocol; use \"secure\" (tlsv1.2,tlsv1.3), \
                         \"tlsv1.2\", \"tlsv1.3\" or a comma-separated list of them"
                    ))
                }
            };
            if negate {
                allowed &= !bits;
            } else {
                allowed |= bits;
            }
        }
        let (tls12, tls13) = (allowed & 0b0100 != 0, allowed & 0b1000 != 0);
        if !tls12 && !tls13 {
            return Err(format!(
                "{s:?} allows no TLS version pgsluice supports (rustls implements TLS 1.2 and \
                 1.3 only); use \"secure\""
            ));
        }
        Ok(TlsProtocols {
            spec: s.trim().to_string(),
            tls12,
            tls13,
        })
    }
}

/// The TLS part of [pooler]. Paths are resolved against the config file's directory.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsSettings {
    /// TLS towards clients; PgBouncer's default is disable.
    pub client_tls_sslmode: SslMode,
    /// Certificate (chain, PEM) pgsluice presents to clients.
    pub client_tls_cert_file: Option<PathBuf>,
    /// Private key (PEM) of that certificate.
    pub client_tls_key_file: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates must chain to.
    pub client_tls_ca_file: Option<PathBuf>,
    pub client_tls_protocols: TlsProtocols,
    /// TLS towards Postgres; PgBouncer's default is prefer.
    pub server_tls_sslmode: SslMode,
    /// CA certificates (PEM) that Postgres's certificate must chain to (verify-ca/full).
    pub server_tls_ca_file: Option<PathBuf>,
    /// Client certificate (PEM) pgsluice presents to Postgres; None = none.
    pub server_tls_cert_file: Option<PathBuf>,
    pub server_tls_key_file: Option<PathBuf>,
    pub server_tls_protocols: TlsProtocols,
}

impl Default for TlsSettings {
    /// PgBouncer's defaults: no TLS towards clients, TLS towards servers when offered.
    fn default() -> Self {
        TlsSettings {
            client_tls_sslmode: SslMode::Disable,
            client_tls_cert_file: None,
            client_tls_key_file: None,
            client_tls_ca_file: None,
            client_tls_protocols: TlsProtocols::default(),
            server_tls_sslmode: SslMode::Prefer,
            server_tls_ca_file: None,
            server_tls_cert_file: None,
            server_tls_key_file: None,
            server_tls_protocols: TlsProtocols::default(),
        }
    }
}

impl TlsSettings {
    /// Reads the TLS keys of [pooler] over `self`.
    pub(super) fn read(&mut self, sec: &mut Section, base_dir: &Path) {
        sec.set(
            "client_tls_sslmode",
            &mut self.client_tls_sslmode,
            reader::keyword,
        );
        sec.set(
            "server_tls_sslmode",
            &mut self.server_tls_sslmode,
            reader::keyword,
        );
        sec.set(
            "client_tls_protocols",
            &mut self.client_tls_protocols,
            reader::keyword,
        );
        sec.set(
            "server_tls_protocols",
            &mut self.server_tls_protocols,
            reader::keyword,
        );
        let files: [(&str, &mut Option<PathBuf>); 6] = [
            ("client_tls_cert_file", &mut self.client_tls_cert_file),
            ("client_tls_key_file", &mut self.client_tls_key_file),
            ("client_tls_ca_file", &mut self.client_tls_ca_file),
            ("server_tls_ca_file", &mut self.server_tls_ca_file),
            ("server_tls_cert_file", &mut self.server_tls_cert_file),
            ("server_tls_key_file", &mut self.server_tls_key_file),
        ];
        for (key, target) in files {
            if let Some(file) = sec.read(key, reader::string) {
                let file = file.trim();
                *target = (!file.is_empty()).then(|| base_dir.join(file));
            }
        }
    }

    /// SHOW CONFIG values, in TLS_KEYS order.
    pub(super) fn show_values(&self) -> Vec<(&'static str, String)> {
        let path = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        vec![
            ("client_tls_sslmode", self.client_tls_sslmode.to_string()),
            ("client_tls_cert_file", path(&self.client_tls_cert_file)),
            ("client_tls_key_file", path(&self.client_tls_key_file)),
            ("client_tls_ca_file", path(&self.client_tls_ca_file)),
            (
                "client_tls_protocols",
                self.client_tls_protocols.to_string(),
            ),
            ("server_tls_sslmode", self.server_tls_sslmode.to_string()),
            ("server_tls_ca_file", path(&self.server_tls_ca_file)),
            ("server_tls_cert_file", path(&self.server_tls_cert_file)),
            ("server_tls_key_file", path(&self.server_tls_key_file)),
            (
                "server_tls_protocols",
                self.server_tls_protocols.to_string(),
            ),
        ]
    }

    /// Combinations that cannot work: a mode without the files it needs, half a key pair,
    /// `cert` authentication without a way to verify certificates.
    pub(super) fn check(&self, auth_type: AuthType, problems: &mut Vec<ConfigProblem>) {
        let mut problem = |key: &str, message: String| {
            problems.push(ConfigProblem::new(format!("pooler.{key}"), message));
        };
        let client = self.client_tls_sslmode;
        if client != SslMode::Disable {
            for (key, file) in [
                ("client_tls_cert_file", &self.client_tls_cert_file),
                ("client_tls_key_file", &self.client_tls_key_file),
            ] {
                if file.is_none() {
                    problem(
                        key,
                        format!("must be set when client_tls_sslmode = \"{client}\""),
                    );
                }
            }
        }
        if client >= SslMode::VerifyCa && self.client_tls_ca_file.is_none() {
            problem(
                "client_tls_ca_file",
                format!("must be set when client_tls_sslmode = \"{client}\" (client certificates are checked against it)"),
            );
        }
        if auth_type == AuthType::Cert {
            if client == SslMode::Disable {
                problem(
                    "client_tls_sslmode",
                    "auth_type = \"cert\" needs TLS towards clients; set client_tls_sslmode = \"verify-full\"".to_string(),
                );
            } else if self.client_tls_ca_file.is_none() && client < SslMode::VerifyCa {
                problem(
                    "client_tls_ca_file",
                    "must be set when auth_type = \"cert\" (client certificates are checked against it)".to_string(),
                );
            }
        }
        let server = self.server_tls_sslmode;
        if server >= SslMode::VerifyCa && self.server_tls_ca_file.is_none() {
            problem(
                "server_tls_ca_file",
                format!("must be set when server_tls_sslmode = \"{server}\" (the server certificate is checked against it)"),
            );
        }
        match (&self.server_tls_cert_file, &self.server_tls_key_file) {
            (Some(_), None) => problem(
                "server_tls_key_file",
                "must be set when server_tls_cert_file is".to_string(),
            ),
            (None, Some(_)) => problem(
                "server_tls_cert_file",
                "must be set when server_tls_key_file is".to_string(),
            ),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protocols(s: &str) -> Result<(bool, bool), String> {
        s.parse::<TlsProtocols>().map(|p| (p.tls12, p.tls13))
    }

    #[test]
    fn the_tls_keys_close_the_pooler_keys() {
        let pooler = super::super::POOLER_KEYS;
        assert_eq!(&pooler[pooler.len() - TLS_KEYS.len()..], TLS_KEYS);
        let shown: Vec<&str> = TlsSettings::default()
            .show_values()
            .iter()
            .map(|(k, _)| *k)
            .collect();
        assert_eq!(shown, TLS_KEYS);
    }

    #[test]
    fn pgbouncer_protocol_words() {
        assert_eq!(protocols("secure"), Ok((true, true)));
        assert_eq!(protocols("all"), Ok((true, true)));
        assert_eq!(protocols("legacy"), Ok((true, true)));
        assert_eq!(protocols("tlsv1.3"), Ok((false, true)));
        assert_eq!(protocols("tlsv1.1, tlsv1.2"), Ok((true, false)));
        assert_eq!(protocols("tlsv1.2:tlsv1.3"), Ok((true, true)));
        assert_eq!(protocols("all,!tlsv1.2"), Ok((false, true)));
        let old = protocols("tlsv1.0,tlsv1.1").unwrap_err();
        assert!(old.contains("TLS 1.2 and 1.3 only"), "{old}");
        assert!(protocols("sslv3")
            .unwrap_err()
            .contains("not a TLS protocol"));
        assert_eq!(
            "tlsv1.3".parse::<TlsProtocols>().unwrap().to_string(),
            "tlsv1.3"
        );
    }

    fn problems(settings: &TlsSettings, auth: AuthType) -> Vec<String> {
        let mut out = Vec::new();
        settings.check(auth, &mut out);
        out.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn defaults_follow_pgbouncer_and_are_valid() {
        let d = TlsSettings::default();
        assert_eq!(d.client_tls_sslmode, SslMode::Disable);
        assert_eq!(d.server_tls_sslmode, SslMode::Prefer);
        assert_eq!(d.client_tls_protocols.to_string(), "secure");
        assert!(problems(&d, AuthType::Md5).is_empty());
    }

    #[test]
    fn modes_name_the_files_they_need() {
        let s = TlsSettings {
            client_tls_sslmode: SslMode::VerifyFull,
            server_tls_sslmode: SslMode::VerifyCa,
            server_tls_cert_file: Some("c.pem".into()),
            ..TlsSettings::default()
        };
        assert_eq!(
            problems(&s, AuthType::Md5),
            [
                "pooler.client_tls_cert_file: must be set when client_tls_sslmode = \"verify-full\"",
                "pooler.client_tls_key_file: must be set when client_tls_sslmode = \"verify-full\"",
                "pooler.client_tls_ca_file: must be set when client_tls_sslmode = \"verify-full\" (client certificates are checked against it)",
                "pooler.server_tls_ca_file: must be set when server_tls_sslmode = \"verify-ca\" (the server certificate is checked against it)",
                "pooler.server_tls_key_file: must be set when server_tls_cert_file is",
            ]
        );
    }

    #[test]
    fn cert_auth_needs_tls_and_a_ca() {
        let s = TlsSettings::default();
        let shown = problems(&s, AuthType::Cert);
        assert_eq!(shown.len(), 1);
        assert!(shown[0].starts_with("pooler.client_tls_sslmode: auth_type = \"cert\" needs TLS"));
        let s = TlsSettings {
            client_tls_sslmode: SslMode::Require,
            client_tls_cert_file: Some("s.crt".into()),
            client_tls_key_file: Some("s.key".into()),
            ..TlsSettings::default()
        };
        let shown = problems(&s, AuthType::Cert);
        assert_eq!(shown.len(), 1);
        assert!(shown[0].starts_with("pooler.client_tls_ca_file: must be set when auth_type"));
        let ok = TlsSettings {
            client_tls_ca_file: Some("ca.crt".into()),
            ..s
        };
        assert!(problems(&ok, AuthType::Cert).is_empty());
    }
}

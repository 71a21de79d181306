//! A user's stored credential, as found in the auth_file or returned by auth_query: a plain
//! password, an md5 hash or a SCRAM-SHA-256 secret, recognised by the same rules PostgreSQL
//! applies to pg_authid.rolpassword. Used by `userlist`, `md5` and `scram_server`.
//! Invariant: `Debug` never prints the secret itself.

use std::fmt;

use super::scram_common::{
    b64_decode, b64_decode_32, b64_encode, client_key, normalize_password, salted_password,
    server_key, sha256,
};

/// A stored credential for one user.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// A cleartext password (PgBouncer allows them in the auth_file).
    Plain(String),
    /// `"md5"` followed by 32 lowercase hex digits: md5(password || user name).
    Md5(String),
    /// A SCRAM-SHA-256 secret in PostgreSQL's format.
    Scram(ScramSecret),
}

impl Secret {
    /// Classifies a stored secret the way PostgreSQL does (`get_password_type`): exactly
    /// `md5` + 32 lowercase hex digits is an md5 hash, a parsable `SCRAM-SHA-256$...` is a SCRAM
    /// secret, anything else is taken as a cleartext password.
    pub fn parse(s: &str) -> Secret {
        if is_md5_hash(s) {
            Secret::Md5(s.to_owned())
        } else if let Some(scram) = ScramSecret::parse(s) {
            Secret::Scram(scram)
        } else {
            Secret::Plain(s.to_owned())
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Secret::Plain(_) => "Plain",
            Secret::Md5(_) => "Md5",
            Secret::Scram(_) => "Scram",
        };
        write!(f, "Secret::{kind}(<redacted>)")
    }
}

fn is_md5_hash(s: &str) -> bool {
    s.len() == 35
        && s.starts_with("md5")
        && s[3..]
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A SCRAM-SHA-256 secret: what PostgreSQL stores instead of a password (PostgreSQL docs,
/// "Password Authentication"; RFC 5802 section 3). Knowing it lets us verify a client, but
/// not log in as that client: logging in needs the ClientKey, which only a proof reveals.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramSecret {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

impl ScramSecret {
    /// Parses `SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>`,
    /// the format of pg_authid.rolpassword. Returns `None` for anything else, so that
    /// `Secret::parse` can fall back to a cleartext password as PostgreSQL does.
    pub fn parse(s: &str) -> Option<ScramSecret> {
        let rest = s.strip_prefix("SCRAM-SHA-256$")?;
        let (params, keys) = rest.split_once('$')?;
        let (iterations, salt) = params.split_once(':')?;
        let (stored_key, server_key) = keys.split_once(':')?;
        // Digits only: u32::from_str would also accept a leading '+'.
        if !iterations.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let iterations: u32 = iterations.parse().ok().filter(|&i| i > 0)?;
        let salt = b64_decode(salt).filter(|salt| !salt.is_empty())?;
        Some(ScramSecret {
            iterations,
            salt,
            stored_key: b64_decode_32(stored_key)?,
            server_key: b64_decode_32(server_key)?,
        })
    }

    /// Derives the secret PostgreSQL would store for `password` with this salt and iteration
    /// count (SASLprep, then PBKDF2). CPU heavy by design: run it on a blocking thread.
    pub fn from_password(password: &str, salt: &[u8], iterations: u32) -> ScramSecret {
        let salted = salted_password(&normalize_password(password), salt, iterations);
        ScramSecret {
            iterations,
            salt: salt.to_vec(),
            stored_key: sha256(&client_key(&salted)),
            server_key: server_key(&salted),
        }
    }
}

/// Writes the secret in pg_authid's format (the inverse of `parse`), e.g. to show the
/// `auth_query` a DBA should expect, or to write a test auth_file.
impl fmt::Display for ScramSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            b64_encode(&self.salt),
            b64_encode(&self.stored_key),
            b64_encode(&self.server_key)
        )
    }
}

impl fmt::Debug for ScramSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramSecret")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_like_postgres() {
        let md5 = "md5".to_owned() + &"0123456789abcdef".repeat(2);
        assert_eq!(Secret::parse(&md5), Secret::Md5(md5.clone()));
        // Uppercase hex, wrong length or wrong prefix: PostgreSQL takes these as passwords.
        let upper = md5.to_uppercase().replacen("MD5", "md5", 1);
        assert_eq!(Secret::parse(&upper), Secret::Plain(upper.clone()));
        assert_eq!(Secret::parse(&md5[..34]), Secret::Plain(md5[..34].into()));
        assert_eq!(Secret::parse("hunter2"), Secret::Plain("hunter2".into()));
        assert_eq!(
            Secret::parse("SCRAM-SHA-256$x"),
            Secret::Plain("SCRAM-SHA-256$x".into())
        );
        let scram = postgres_protocol::password::scram_sha_256(b"pw");
        assert!(matches!(Secret::parse(&scram), Secret::Scram(s) if s.iterations == 4096));
    }

    #[test]
    fn from_password_matches_postgres_protocol_and_round_trips() {
        // postgres-protocol salts randomly: read its salt back, re-derive, and compare.
        for password in ["pencil", "p\u{e4}ssw\u{f6}rd", "a\u{a0}b"] {
            let theirs = postgres_protocol::password::scram_sha_256(password.as_bytes());
            let parsed = ScramSecret::parse(&theirs).expect("postgres-protocol format");
            let ours = ScramSecret::from_password(password, &parsed.salt, parsed.iterations);
            assert_eq!(ours, parsed, "password {password:?}");
            assert_eq!(ours.to_string(), theirs);
        }
    }

    #[test]
    fn rejects_bad_scram_secrets() {
        let good = ScramSecret::from_password("pw", b"salt", 2).to_string();
        assert!(ScramSecret::parse(&good).is_some());
        let (head, keys) = good.split_once("$2:").unwrap();
        for bad in [
            format!("{head}$0:{keys}"),
            format!("{head}$+2:{keys}"),
            format!("{head}$x:{keys}"),
            good.replace("SCRAM-SHA-256", "SCRAM-SHA-1"),
            good.rsplit_once(':').unwrap().0.to_owned(),
            good.replace(&b64_encode(b"salt"), ""),
            format!("{good}AAAA"),
        ] {
            assert!(ScramSecret::parse(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn debug_redacts() {
        let s = Secret::Plain("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
        let scram = ScramSecret::from_password("pw", b"salt", 2);
        let key = b64_encode(&scram.stored_key);
        assert!(!format!("{:?}", Secret::Scram(scram)).contains(&key));
    }
}

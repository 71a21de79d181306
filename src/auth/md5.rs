//! PostgreSQL's md5 password authentication (PostgreSQL docs, "Password Authentication" and
//! AuthenticationMD5Password in "Message Formats"): the stored hash is
//! `"md5" + md5hex(password || user)`, and the answer to a 4-byte salt is
//! `"md5" + md5hex(md5hex(password || user) || salt)`. Called by `client` to check a client's
//! PasswordMessage; the response is compared in constant time.

use md5::{Digest, Md5};

use super::scram_common::ct_eq;
use super::secret::Secret;

fn md5_hex(parts: &[&[u8]]) -> String {
    let mut hasher = Md5::new();
    for part in parts {
        hasher.update(part);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The md5 hash PostgreSQL stores for `user` with `password`: `"md5" + md5hex(password || user)`.
pub fn md5_secret(user: &str, password: &str) -> String {
    format!("md5{}", md5_hex(&[password.as_bytes(), user.as_bytes()]))
}

/// The expected client response to `salt` given a stored `"md5<32 hex>"` hash. The salted
/// round hashes the hex digits (without the "md5" prefix), as libpq does.
pub fn md5_response_from_secret(md5_secret: &str, salt: [u8; 4]) -> String {
    let hex = md5_secret.strip_prefix("md5").unwrap_or(md5_secret);
    format!("md5{}", md5_hex(&[hex.as_bytes(), &salt]))
}

/// The response a client that knows the password must send, or `None` when the stored secret
/// is SCRAM: an md5 response cannot be checked against a SCRAM secret (PostgreSQL then
/// switches the client to SCRAM instead, as should the caller).
pub fn md5_expected(secret: &Secret, user: &str, salt: [u8; 4]) -> Option<String> {
    match secret {
        Secret::Plain(password) => {
            Some(md5_response_from_secret(&md5_secret(user, password), salt))
        }
        Secret::Md5(hash) => Some(md5_response_from_secret(hash, salt)),
        Secret::Scram(_) => None,
    }
}

/// Checks a client's PasswordMessage payload (without its trailing NUL) in constant time.
/// False for SCRAM secrets, see `md5_expected`.
pub fn verify_md5(secret: &Secret, user: &str, salt: [u8; 4], response: &[u8]) -> bool {
    match md5_expected(secret, user, salt) {
        Some(expected) => ct_eq(expected.as_bytes(), response),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::ScramSecret;

    const SALT: [u8; 4] = [0x01, 0x02, 0x03, 0x04];

    #[test]
    fn secret_matches_known_values_and_postgres_protocol() {
        // md5("password" || "user"), as `SELECT md5('passworduser')` prints it.
        assert_eq!(
            md5_secret("user", "password"),
            "md54d45974e13472b5a0be3533de4666414"
        );
        for (user, password) in [("postgres", "secret"), ("b\u{f6}b", "p\u{e4}ss"), ("u", "")] {
            assert_eq!(
                md5_secret(user, password),
                postgres_protocol::password::md5(password.as_bytes(), user)
            );
        }
    }

    #[test]
    fn response_matches_the_libpq_construction() {
        let secret = md5_secret("user", "password");
        // libpq: md5hex(hex-of-secret || salt), prefixed with "md5".
        let mut hasher = Md5::new();
        hasher.update(&secret.as_bytes()[3..]);
        hasher.update(SALT);
        let manual: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            md5_response_from_secret(&secret, SALT),
            format!("md5{manual}")
        );
        assert_eq!(md5_response_from_secret(&secret, SALT).len(), 35);
    }

    #[test]
    fn verify_accepts_right_and_rejects_wrong() {
        let plain = Secret::Plain("password".into());
        let hashed = Secret::Md5(md5_secret("user", "password"));
        let good = md5_expected(&plain, "user", SALT).unwrap();
        assert_eq!(Some(good.clone()), md5_expected(&hashed, "user", SALT));
        for secret in [&plain, &hashed] {
            assert!(verify_md5(secret, "user", SALT, good.as_bytes()));
            assert!(!verify_md5(secret, "user", [9, 9, 9, 9], good.as_bytes()));
            assert!(!verify_md5(secret, "user", SALT, &good.as_bytes()[..34]));
            assert!(!verify_md5(secret, "user", SALT, b""));
        }
        // The user name is part of the hash: the same password for another user fails.
        assert!(!verify_md5(&plain, "other", SALT, good.as_bytes()));
    }

    #[test]
    fn scram_secrets_cannot_answer_md5() {
        let scram = Secret::Scram(ScramSecret::from_password("password", b"salt", 2));
        assert_eq!(md5_expected(&scram, "user", SALT), None);
        assert!(!verify_md5(&scram, "user", SALT, b"md5"));
    }
}

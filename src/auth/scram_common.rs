//! Primitives shared by the SCRAM server and the pass-through client: RFC 5802's H, HMAC, Hi
//! and XOR over SHA-256, base64, constant-time comparison, and parsing of the `a=value`
//! attribute lists SCRAM messages are made of. Pure functions; no state, no I/O.
//! Invariant: every comparison of secret-derived bytes goes through `ct_eq`.

use std::borrow::Cow;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::AuthError;

/// Compares two byte strings in time that depends only on their lengths (which are public: a
/// proof, a signature or an md5 response has a fixed size), so a client cannot learn how many
/// leading bytes of its guess were right.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the optimiser from turning the fold back into an early-exit loop.
    std::hint::black_box(diff) == 0
}

/// RFC 5802 `H()`: SHA-256 for SCRAM-SHA-256 (RFC 7677).
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// RFC 5802 `HMAC(key, str)` over SHA-256; `parts` are concatenated, which avoids building the
/// AuthMessage twice.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of every length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

pub(crate) fn xor32(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

/// RFC 5802 `Hi()`, which is PBKDF2 with HMAC-SHA-256 and a 32-byte output. Deliberately slow
/// (one HMAC per iteration): callers on an async runtime must run it on a blocking thread.
pub(crate) fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations)
}

/// RFC 5802: `ClientKey := HMAC(SaltedPassword, "Client Key")`.
pub(crate) fn client_key(salted: &[u8; 32]) -> [u8; 32] {
    hmac_sha256(salted, &[b"Client Key"])
}

/// RFC 5802: `ServerKey := HMAC(SaltedPassword, "Server Key")`.
pub(crate) fn server_key(salted: &[u8; 32]) -> [u8; 32] {
    hmac_sha256(salted, &[b"Server Key"])
}

/// PostgreSQL runs SASLprep (RFC 4013) over passwords before hashing, but falls back to the raw
/// bytes when the password is not valid for SASLprep (PostgreSQL docs, "SCRAM-SHA-256
/// Authentication"). Clients do the same, so we must too or non-ASCII passwords would not match.
pub(crate) fn normalize_password(password: &str) -> Cow<'_, [u8]> {
    match stringprep::saslprep(password) {
        Ok(Cow::Borrowed(p)) => Cow::Borrowed(p.as_bytes()),
        Ok(Cow::Owned(p)) => Cow::Owned(p.into_bytes()),
        Err(_) => Cow::Borrowed(password.as_bytes()),
    }
}

pub(crate) fn b64_encode(data: &[u8]) -> String {
    STANDARD.encode(data)
}

pub(crate) fn b64_decode(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}

pub(crate) fn b64_decode_32(text: &str) -> Option<[u8; 32]> {
    b64_decode(text)?.try_into().ok()
}

/// RFC 5802 `printable` (used for nonces): ASCII 0x21..=0x7E except ','.
pub(crate) fn is_printable(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// SCRAM messages travel as bytes in SASL messages; their grammar is ASCII-based (the user name
/// may be UTF-8), so anything that is not UTF-8 is malformed.
pub(crate) fn as_text<'a>(msg: &'a [u8], what: &str) -> Result<&'a str, AuthError> {
    std::str::from_utf8(msg).map_err(|_| AuthError::Malformed(format!("{what} is not UTF-8")))
}

/// Splits one `attr-val` (RFC 5802 section 7: `ALPHA "=" value`) into its name and value.
pub(crate) fn split_attr(part: &str) -> Result<(u8, &str), AuthError> {
    match part.as_bytes() {
        [name, b'=', ..] if name.is_ascii_alphabetic() => Ok((*name, &part[2..])),
        _ => Err(AuthError::Malformed(
            "expected an attribute of the form x=value".into(),
        )),
    }
}

/// Takes the next comma-separated part and requires it to be attribute `name`.
pub(crate) fn expect_attr<'a>(
    part: Option<&'a str>,
    name: u8,
    what: &str,
) -> Result<&'a str, AuthError> {
    let part = part.ok_or_else(|| AuthError::Malformed(format!("missing {what}")))?;
    match split_attr(part)? {
        (found, value) if found == name => Ok(value),
        _ => Err(AuthError::Malformed(format!(
            "expected {what} (attribute '{}')",
            char::from(name)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ct_eq_compares_content_and_length() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(ct_eq(b"", b""));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }

    #[test]
    fn hi_is_pbkdf2_hmac_sha256() {
        // RFC 5802: Hi(str, salt, 1) = HMAC(str, salt || INT(1)). Higher counts are covered by
        // the RFC 7677 vector in scram_server's tests.
        let salt = b64_decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let one = salted_password(b"pencil", &salt, 1);
        let mut block = salt.clone();
        block.extend_from_slice(&[0, 0, 0, 1]);
        assert_eq!(one, hmac_sha256(b"pencil", &[&block]));
    }

    #[test]
    fn printable_excludes_comma_and_controls() {
        assert!(is_printable(
            "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
        ));
        assert!(!is_printable("a,b"));
        assert!(!is_printable("a b"));
        assert!(!is_printable(""));
    }

    #[test]
    fn attributes_parse() {
        assert_eq!(split_attr("r=abc").unwrap(), (b'r', "abc"));
        assert_eq!(split_attr("n=").unwrap(), (b'n', ""));
        assert!(split_attr("r").is_err());
        assert!(split_attr("=x").is_err());
        assert!(split_attr("1=x").is_err());
        assert_eq!(
            expect_attr(Some("i=4096"), b'i', "iterations").unwrap(),
            "4096"
        );
        assert!(expect_attr(Some("s=abc"), b'i', "iterations").is_err());
        assert!(expect_attr(None, b'i', "iterations").is_err());
    }

    #[test]
    fn saslprep_maps_non_ascii_space_and_keeps_invalid_input() {
        // U+00A0 (no-break space) is mapped to a plain space by SASLprep.
        assert_eq!(&*normalize_password("a\u{a0}b"), b"a b");
        // A prohibited control character makes SASLprep fail: keep the raw bytes.
        assert_eq!(&*normalize_password("a\u{7}b"), "a\u{7}b".as_bytes());
        assert_eq!(&*normalize_password("pencil"), b"pencil");
    }
}

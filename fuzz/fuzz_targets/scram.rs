//! Fuzzes the SCRAM-SHA-256 exchange as the server (`auth::ScramServer`, fed the client's
//! client-first and client-final messages) and the pass-through client's reading of Postgres's
//! replies (`auth::ScramPassthroughClient`), with the RFC 7677 user (password "pencil").
//! Checks: no panic; no authentication bypass — a raw client-final is accepted only if it
//! carries the one valid proof (the recovered ClientKey is the real one), a correct proof is
//! accepted whatever the client-first looked like once the server took it, a proof with one bit
//! flipped is refused with 28P01, and a mock (unknown-user) server never accepts.
//!
//! Input: byte 0 picks the mode, the rest is client-first, a NUL, then client-final (raw mode)
//! or extra client-final attributes (computed-proof mode).
#![no_main]

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use pgsluice::auth::{AuthError, ScramKeys, ScramPassthroughClient, ScramSecret, ScramServer};
use sha2::{Digest, Sha256};

/// RFC 7677's example user: password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations.
const SECRET: &str = "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$\
    WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
/// HMAC(SaltedPassword, "Client Key") for the same user.
const CLIENT_KEY: &str = "pg/JI9Z+hkSpLRa5btpe9GVrDHJcSEN0viVTVXaZbos=";
const SERVER_NONCE: [u8; 18] = [7; 18];

fn key32(b64: &str) -> [u8; 32] {
    STANDARD.decode(b64).unwrap().try_into().unwrap()
}

fn secret() -> ScramSecret {
    ScramSecret::parse(SECRET).expect("the RFC 7677 secret parses")
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Raw mode: whatever the client sends, success must mean the proof was the real one.
fn raw(first: &[u8], fin: &[u8]) {
    let mut server = ScramServer::new(secret(), SERVER_NONCE);
    let Ok(server_first) = server.client_first(first) else {
        // One attempt per exchange: after an error the server accepts nothing more.
        assert!(server.client_final(fin).is_err());
        return;
    };
    assert!(server_first.starts_with(b"r="));
    if let Ok(outcome) = server.client_final(fin) {
        assert_eq!(
            outcome.client_key,
            key32(CLIENT_KEY),
            "accepted a wrong proof"
        );
    }
    // The exchange is over either way.
    assert!(server.client_final(fin).is_err());
    assert!(server.client_first(first).is_err());
}

/// Computed mode: the harness answers the server-first with the correct proof for "pencil".
fn computed(first: &[u8], extensions: &[u8]) {
    let mut server = ScramServer::new(secret(), SERVER_NONCE);
    let Ok(server_first) = server.client_first(first) else {
        return;
    };
    // The server took it, so it is UTF-8 with a three-part GS2 header.
    let first = std::str::from_utf8(first).unwrap();
    let header_len = first.match_indices(',').nth(1).unwrap().0 + 1;
    let (gs2_header, bare) = first.split_at(header_len);
    let server_first = String::from_utf8(server_first).unwrap();
    let nonce = server_first
        .strip_prefix("r=")
        .and_then(|rest| rest.split(',').next())
        .unwrap();
    let mut without_proof = format!("c={},r={nonce}", STANDARD.encode(gs2_header));
    let extensions = String::from_utf8_lossy(extensions);
    if !extensions.is_empty() {
        without_proof.push(',');
        without_proof.push_str(&extensions);
    }
    let auth_message = [
        bare.as_bytes(),
        b",",
        server_first.as_bytes(),
        b",",
        without_proof.as_bytes(),
    ];
    let client_key = key32(CLIENT_KEY);
    let stored_key: [u8; 32] = Sha256::digest(client_key).into();
    let signature = hmac(&stored_key, &auth_message);
    let mut proof: [u8; 32] = std::array::from_fn(|i| client_key[i] ^ signature[i]);
    let good = format!("{without_proof},p={}", STANDARD.encode(proof));

    // A mock server for an unknown user refuses even the right proof, like a wrong password.
    let mut mock = ScramServer::new_dummy_keyed(b"mock key", "nobody", SERVER_NONCE);
    if mock.client_first(first.as_bytes()).is_ok() {
        match mock.client_final(good.as_bytes()) {
            Ok(_) => panic!("the mock server accepted a proof"),
            Err(AuthError::PasswordMismatch) => {}
            // Malformed extensions are refused before the proof is looked at.
            Err(e) => assert!(!extensions.is_empty(), "mock refused with {e}"),
        }
    }

    proof[usize::from(extensions.len() as u8) % 32] ^= 1 << (extensions.len() % 8);
    let bad = format!("{without_proof},p={}", STANDARD.encode(proof));
    let mut twin = ScramServer::new(secret(), SERVER_NONCE);
    twin.client_first(first.as_bytes()).unwrap();

    match server.client_final(good.as_bytes()) {
        Ok(outcome) => {
            assert_eq!(outcome.client_key, client_key);
            let server_key = key32(SECRET.rsplit(':').next().unwrap());
            let expected = hmac(&server_key, &auth_message);
            assert_eq!(
                outcome.server_final,
                format!("v={}", STANDARD.encode(expected)).as_bytes()
            );
            // Same message with a wrong proof: refused as a wrong password.
            assert!(matches!(
                twin.client_final(bad.as_bytes()),
                Err(AuthError::PasswordMismatch)
            ));
        }
        Err(e) => {
            // Only malformed extensions may spoil a correct proof.
            assert!(!extensions.is_empty(), "correct proof refused: {e}");
            assert!(matches!(e, AuthError::Malformed(_)), "{e}");
        }
    }
}

/// The pass-through client reading what a (possibly hostile) server sends.
fn passthrough(server_first: &[u8], server_final: &[u8]) {
    let keys = ScramKeys {
        client_key: key32(CLIENT_KEY),
        server_key: key32(SECRET.rsplit(':').next().unwrap()),
    };
    let mut client = ScramPassthroughClient::new(keys.clone(), [3; 18]);
    assert!(
        client.server_final(server_final).is_err(),
        "final before first"
    );
    if client.server_first(server_first).is_ok() {
        let _ = client.server_final(server_final);
    }

    // And against our own server: the pass-through client always logs in.
    let mut client = ScramPassthroughClient::new(keys, [3; 18]);
    let mut server = ScramServer::new(secret(), SERVER_NONCE);
    let first = server.client_first(&client.client_first()).unwrap();
    let fin = client.server_first(&first).unwrap();
    let outcome = server.client_final(&fin).unwrap();
    client.server_final(&outcome.server_final).unwrap();
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (first, second) = match rest.iter().position(|&b| b == 0) {
        Some(nul) => (&rest[..nul], &rest[nul + 1..]),
        None => (rest, &[][..]),
    };
    match mode % 3 {
        0 => raw(first, second),
        1 => computed(first, second),
        _ => passthrough(first, second),
    }
});

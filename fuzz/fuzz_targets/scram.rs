//! Fuzzes the SCRAM-SHA-256(-PLUS) exchange as the server (`auth::ScramServer`, fed the
//! client's client-first and client-final messages) and the pass-through client's reading of
//! Postgres's replies (`auth::ScramPassthroughClient`), with the RFC 7677 user ("pencil").
//! Checks: no panic; no authentication bypass — a raw client-final is accepted only if it
//! carries the one valid proof (the recovered ClientKey is the real one), a correct proof is
//! accepted whatever the client-first looked like once the server took it, a proof with one bit
//! flipped is refused with 28P01, a correct proof over another certificate's channel-binding
//! data (a man in the middle) is refused, a mock (unknown-user) server never accepts; the
//! channel-binding flag the server takes agrees with the mechanism and what was offered
//! (RFC 5802 section 6: no downgrade).
//!
//! Input: byte 0 picks the mode (bits 0-1), whether the connection is TLS (bit 2: the server
//! offers SCRAM-SHA-256-PLUS) and the mechanism the client names (bits 3-4); the rest is
//! message 1, a NUL, then message 2 (raw mode) or extra client-final attributes (computed mode).
#![no_main]

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use pgsluice::auth::{
    AuthError, Binding, ScramKeys, ScramPassthroughClient, ScramSecret, ScramServer, SCRAM_SHA_256,
    SCRAM_SHA_256_PLUS,
};
use sha2::{Digest, Sha256};

/// RFC 7677's example user: password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations.
const SECRET: &str = "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$\
    WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
/// HMAC(SaltedPassword, "Client Key") for the same user.
const CLIENT_KEY: &str = "pg/JI9Z+hkSpLRa5btpe9GVrDHJcSEN0viVTVXaZbos=";
const SERVER_NONCE: [u8; 18] = [7; 18];
/// tls-server-end-point data of "our" certificate, and of a man in the middle's.
const CB_DATA: [u8; 32] = [0x5c; 32];
const OTHER_CB_DATA: [u8; 32] = [0x5d; 32];

fn key32(b64: &str) -> [u8; 32] {
    STANDARD.decode(b64).unwrap().try_into().unwrap()
}

fn secret() -> ScramSecret {
    ScramSecret::parse(SECRET).expect("the RFC 7677 secret parses")
}

fn server_key() -> [u8; 32] {
    key32(SECRET.rsplit(':').next().unwrap())
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The connection the exchange runs on, from bits 2-4 of the mode byte.
#[derive(Clone, Copy)]
struct Setup {
    /// TLS: the server offers SCRAM-SHA-256-PLUS bound to CB_DATA.
    tls: bool,
    /// The mechanism named in SASLInitialResponse; `None` leaves the default (SCRAM-SHA-256).
    mechanism: Option<&'static str>,
}

impl Setup {
    fn from_mode(mode: u8) -> Setup {
        let mechanism = match (mode >> 3) % 3 {
            0 => None,
            1 => Some(SCRAM_SHA_256),
            _ => Some(SCRAM_SHA_256_PLUS),
        };
        Setup {
            tls: mode & 4 != 0,
            mechanism,
        }
    }

    fn plus(self) -> bool {
        self.mechanism == Some(SCRAM_SHA_256_PLUS)
    }

    /// A server for the real user (or the mock one), with the mechanism selected; `None` when
    /// the mechanism is refused, which must happen exactly for -PLUS without TLS.
    fn server(self, mock: bool) -> Option<ScramServer> {
        let mut server = if mock {
            ScramServer::new_dummy_keyed(b"mock key", "nobody", SERVER_NONCE)
        } else {
            ScramServer::new(secret(), SERVER_NONCE)
        };
        if self.tls {
            server = server.with_channel_binding(CB_DATA.to_vec());
        }
        if let Some(mechanism) = self.mechanism {
            let refused = server.select_mechanism(mechanism).is_err();
            assert_eq!(refused, self.plus() && !self.tls, "{mechanism}");
            if refused {
                return None;
            }
        }
        Some(server)
    }
}

/// Raw mode: whatever the client sends, success must mean the proof was the real one.
fn raw(setup: Setup, first: &[u8], fin: &[u8]) {
    let Some(mut server) = setup.server(false) else {
        return;
    };
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

/// client-final without its proof, and the proof ClientKey gives for it.
fn client_final(
    bare: &str,
    server_first: &str,
    cbind_input: &[u8],
    nonce: &str,
    extensions: &str,
) -> (String, [u8; 32], [u8; 32]) {
    let mut without_proof = format!("c={},r={nonce}", STANDARD.encode(cbind_input));
    if !extensions.is_empty() {
        without_proof.push(',');
        without_proof.push_str(extensions);
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
    let proof = std::array::from_fn(|i| client_key[i] ^ signature[i]);
    let server_signature = hmac(&server_key(), &auth_message);
    (without_proof, proof, server_signature)
}

fn with_proof(without_proof: &str, proof: &[u8; 32]) -> String {
    format!("{without_proof},p={}", STANDARD.encode(proof))
}

/// Computed mode: the harness answers the server-first with the correct proof for "pencil".
fn computed(setup: Setup, first: &[u8], extensions: &[u8]) {
    let Some(mut server) = setup.server(false) else {
        return;
    };
    let Ok(server_first) = server.client_first(first) else {
        return;
    };
    // The server took it, so it is UTF-8 with a three-part GS2 header.
    let first = std::str::from_utf8(first).unwrap();
    let header_len = first.match_indices(',').nth(1).unwrap().0 + 1;
    let (gs2_header, bare) = first.split_at(header_len);
    // The flag agrees with the mechanism and with what was offered (RFC 5802 section 6).
    if setup.plus() {
        assert!(
            gs2_header.starts_with("p=tls-server-end-point,"),
            "{gs2_header}"
        );
    } else {
        assert!(!gs2_header.starts_with('p'), "{gs2_header}");
    }
    if setup.tls {
        assert!(
            !gs2_header.starts_with('y'),
            "downgrade accepted: {gs2_header}"
        );
    }
    let bound = |cb: &[u8]| {
        let mut input = gs2_header.as_bytes().to_vec();
        if setup.plus() {
            input.extend_from_slice(cb);
        }
        input
    };
    let server_first = String::from_utf8(server_first).unwrap();
    let nonce = server_first
        .strip_prefix("r=")
        .and_then(|rest| rest.split(',').next())
        .unwrap();
    let extensions = String::from_utf8_lossy(extensions);
    let (without_proof, mut proof, server_signature) =
        client_final(bare, &server_first, &bound(&CB_DATA), nonce, &extensions);
    let good = with_proof(&without_proof, &proof);

    // A mock server for an unknown user refuses even the right proof, like a wrong password.
    let mut mock = setup.server(true).expect("same setup as the real server");
    if mock.client_first(first.as_bytes()).is_ok() {
        match mock.client_final(good.as_bytes()) {
            Ok(_) => panic!("the mock server accepted a proof"),
            Err(AuthError::PasswordMismatch) => {}
            // Malformed extensions are refused before the proof is looked at.
            Err(e) => assert!(!extensions.is_empty(), "mock refused with {e}"),
        }
    }

    let twin = || {
        let mut twin = setup.server(false).unwrap();
        twin.client_first(first.as_bytes()).unwrap();
        twin
    };
    match server.client_final(good.as_bytes()) {
        Ok(outcome) => {
            assert_eq!(outcome.client_key, key32(CLIENT_KEY));
            let expected = format!("v={}", STANDARD.encode(server_signature));
            assert_eq!(outcome.server_final, expected.as_bytes());
            // Same message with a wrong proof: refused as a wrong password.
            proof[extensions.len() % 32] ^= 1 << (extensions.len() % 8);
            let bad = with_proof(&without_proof, &proof);
            let refused = twin().client_final(bad.as_bytes());
            assert!(matches!(refused, Err(AuthError::PasswordMismatch)));
            // A valid proof over another certificate's binding data: a man in the middle.
            if setup.plus() {
                let cb = bound(&OTHER_CB_DATA);
                let (other, proof, _) = client_final(bare, &server_first, &cb, nonce, &extensions);
                let refused = twin().client_final(with_proof(&other, &proof).as_bytes());
                assert!(matches!(refused, Err(AuthError::Malformed(_))));
            }
        }
        Err(e) => {
            // Only malformed extensions may spoil a correct proof.
            assert!(!extensions.is_empty(), "correct proof refused: {e}");
            assert!(matches!(e, AuthError::Malformed(_)), "{e}");
        }
    }
}

/// The pass-through client reading what a (possibly hostile) server sends, and logging in to
/// our own server with every kind of channel binding.
fn passthrough(mode: u8, server_first: &[u8], server_final: &[u8]) {
    let keys = ScramKeys {
        client_key: key32(CLIENT_KEY),
        server_key: server_key(),
    };
    let (binding, tls) = match (mode >> 3) % 3 {
        0 => (Binding::Unsupported, mode & 4 != 0),
        1 => (Binding::NotOffered, false),
        _ => (Binding::TlsServerEndPoint(CB_DATA.to_vec()), true),
    };
    let client = || ScramPassthroughClient::new(keys.clone(), [3; 18]);
    let mut hostile = client().with_channel_binding(binding.clone());
    assert!(
        hostile.server_final(server_final).is_err(),
        "final before first"
    );
    if hostile.server_first(server_first).is_ok() {
        let _ = hostile.server_final(server_final);
    }

    let login = |client_binding: Binding| -> Result<(), AuthError> {
        let mut client = client().with_channel_binding(client_binding);
        let mut server = ScramServer::new(secret(), SERVER_NONCE);
        if tls {
            server = server.with_channel_binding(CB_DATA.to_vec());
        }
        server.select_mechanism(client.mechanism())?;
        let first = server.client_first(&client.client_first())?;
        let fin = client.server_first(&first)?;
        let outcome = server.client_final(&fin)?;
        client.server_final(&outcome.server_final)
    };
    login(binding.clone()).expect("pass-through login");
    if let Binding::TlsServerEndPoint(_) = binding {
        let mitm = login(Binding::TlsServerEndPoint(OTHER_CB_DATA.to_vec()));
        assert!(matches!(mitm, Err(AuthError::Malformed(_))));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (first, second) = match rest.iter().position(|&b| b == 0) {
        Some(nul) => (&rest[..nul], &rest[nul + 1..]),
        None => (rest, &[][..]),
    };
    let setup = Setup::from_mode(mode);
    match mode % 4 {
        1 => computed(setup, first, second),
        2 => passthrough(mode, first, second),
        _ => raw(setup, first, second),
    }
});

//! The client side of SCRAM-SHA-256 towards Postgres when we hold a user's keys but not their
//! password ("SCRAM pass-through"): the ClientKey recovered by `ScramServer` from the client's
//! own proof, and the ServerKey from the stored secret. Driven by `server` login with the
//! payloads of AuthenticationSASLContinue/Final. Only works when Postgres stores the same
//! secret (salt and iterations) as the one the client proved against; for cleartext passwords
//! use postgres-protocol's `ScramSha256` instead. Over TLS it binds to the channel
//! (SCRAM-SHA-256-PLUS, tls-server-end-point) when Postgres offers that.

use super::scram_common::{
    as_text, b64_decode, b64_encode, ct_eq, expect_attr, hmac_sha256, is_printable, sha256,
    split_attr, xor32,
};
use super::{AuthError, SCRAM_SHA_256, SCRAM_SHA_256_PLUS};

/// What the client says about channel binding in its gs2-header (RFC 5802 section 7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Binding {
    /// 'n': no channel to bind to (plain connection).
    Unsupported,
    /// 'y': we could bind, but the server offered no -PLUS mechanism.
    NotOffered,
    /// 'p=tls-server-end-point': bind to the server certificate's hash (RFC 5929).
    TlsServerEndPoint(Vec<u8>),
}

impl Binding {
    fn gs2_header(&self) -> &'static str {
        match self {
            Binding::Unsupported => "n,,",
            Binding::NotOffered => "y,,",
            Binding::TlsServerEndPoint(_) => "p=tls-server-end-point,,",
        }
    }
}

/// The two keys that stand in for a password: ClientKey to build the proof, ServerKey to check
/// the server's signature (RFC 5802 section 3).
#[derive(Clone, PartialEq, Eq)]
pub struct ScramKeys {
    pub client_key: [u8; 32],
    pub server_key: [u8; 32],
}

impl std::fmt::Debug for ScramKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScramKeys { .. }")
    }
}

/// One SCRAM-SHA-256 login to Postgres with known keys.
pub struct ScramPassthroughClient {
    keys: ScramKeys,
    /// Base64 of the caller's random bytes.
    client_nonce: String,
    /// The ServerSignature Postgres must send back, known once server-first has been handled.
    expected_server_signature: Option<[u8; 32]>,
    binding: Binding,
}

impl ScramPassthroughClient {
    /// `client_nonce` must come from a cryptographically secure random source.
    pub fn new(keys: ScramKeys, client_nonce: [u8; 18]) -> Self {
        ScramPassthroughClient {
            keys,
            client_nonce: b64_encode(&client_nonce),
            expected_server_signature: None,
            binding: Binding::Unsupported,
        }
    }

    /// Sets what the gs2-header says about channel binding ('n' unless called).
    pub fn with_channel_binding(mut self, binding: Binding) -> Self {
        self.binding = binding;
        self
    }

    /// The mechanism to name in SASLInitialResponse.
    pub fn mechanism(&self) -> &'static str {
        match self.binding {
            Binding::TlsServerEndPoint(_) => SCRAM_SHA_256_PLUS,
            _ => SCRAM_SHA_256,
        }
    }

    /// client-first-message for SASLInitialResponse: the gs2-header and an empty user name,
    /// which Postgres ignores in favour of the StartupMessage's.
    pub fn client_first(&self) -> Vec<u8> {
        format!("{}{}", self.binding.gs2_header(), self.client_first_bare()).into_bytes()
    }

    fn client_first_bare(&self) -> String {
        format!("n=,r={}", self.client_nonce)
    }

    /// Handles server-first-message (AuthenticationSASLContinue) and returns
    /// client-final-message for SASLResponse.
    pub fn server_first(&mut self, msg: &[u8]) -> Result<Vec<u8>, AuthError> {
        let text = as_text(msg, "server-first-message")?;
        let mut parts = text.split(',');
        if parts.clone().next().is_some_and(|p| p.starts_with("m=")) {
            return Err(AuthError::Unsupported("mandatory extension".into()));
        }
        let nonce = expect_attr(parts.next(), b'r', "nonce")?;
        // The combined nonce must extend ours (RFC 5802 section 5.1), or this reply belongs to
        // another exchange.
        if !is_printable(nonce)
            || nonce.len() <= self.client_nonce.len()
            || !nonce.starts_with(&self.client_nonce)
        {
            return Err(AuthError::Malformed(
                "server nonce does not extend ours".into(),
            ));
        }
        let salt = expect_attr(parts.next(), b's', "salt")?;
        if !matches!(b64_decode(salt), Some(salt) if !salt.is_empty()) {
            return Err(AuthError::Malformed("invalid salt".into()));
        }
        let iterations = expect_attr(parts.next(), b'i', "iteration count")?;
        let digits_only = iterations.bytes().all(|b| b.is_ascii_digit());
        if !digits_only || !matches!(iterations.parse::<u32>(), Ok(i) if i > 0) {
            return Err(AuthError::Malformed("invalid iteration count".into()));
        }
        for extension in parts {
            split_attr(extension)?;
        }

        // Salt and iterations are not needed: our keys already are the PBKDF2 outputs.
        // c= carries the gs2-header, then the channel-binding data when binding.
        let mut cbind_input = self.binding.gs2_header().as_bytes().to_vec();
        if let Binding::TlsServerEndPoint(data) = &self.binding {
            cbind_input.extend_from_slice(data);
        }
        let without_proof = format!("c={},r={nonce}", b64_encode(&cbind_input));
        let bare = self.client_first_bare();
        let auth_message = [bare.as_bytes(), b",", msg, b",", without_proof.as_bytes()];
        let stored_key = sha256(&self.keys.client_key);
        let client_signature = hmac_sha256(&stored_key, &auth_message);
        let proof = xor32(&self.keys.client_key, &client_signature);
        self.expected_server_signature = Some(hmac_sha256(&self.keys.server_key, &auth_message));
        Ok(format!("{without_proof},p={}", b64_encode(&proof)).into_bytes())
    }

    /// Checks server-final-message (AuthenticationSASLFinal): Postgres proves it knows the
    /// ServerKey, so we know we reached the server holding this user's secret.
    pub fn server_final(&self, msg: &[u8]) -> Result<(), AuthError> {
        let expected = self
            .expected_server_signature
            .ok_or_else(|| AuthError::Malformed("server-final-message came too early".into()))?;
        let text = as_text(msg, "server-final-message")?;
        if text.starts_with("e=") {
            // RFC 5802 server-error (e.g. "e=invalid-proof"): the server refused our proof.
            // PostgreSQL sends an ErrorResponse instead, but a standard server may do this.
            return Err(AuthError::PasswordMismatch);
        }
        let signature = expect_attr(text.split(',').next(), b'v', "server signature")?;
        let signature = b64_decode(signature)
            .ok_or_else(|| AuthError::Malformed("invalid signature".into()))?;
        if ct_eq(&signature, &expected) {
            Ok(())
        } else {
            Err(AuthError::ServerSignatureMismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{ScramSecret, ScramServer};
    use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};

    const SALT: &[u8] = b"pass-through salt";

    /// What the pooler does for real: a client logs in to our ScramServer with its password,
    /// and we keep the recovered ClientKey plus the secret's ServerKey.
    fn keys_from_client_login(password: &str, secret: &ScramSecret) -> ScramKeys {
        let mut server = ScramServer::new(secret.clone(), [1; 18]);
        let mut client = ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
        client
            .update(&server.client_first(client.message()).unwrap())
            .unwrap();
        let outcome = server.client_final(client.message()).unwrap();
        ScramKeys {
            client_key: outcome.client_key,
            server_key: secret.server_key,
        }
    }

    /// Runs the pass-through client against `server` (standing in for Postgres).
    fn login(keys: ScramKeys, server: &mut ScramServer) -> Result<(), AuthError> {
        let mut client = ScramPassthroughClient::new(keys, [2; 18]);
        let server_first = server.client_first(&client.client_first())?;
        let client_final = client.server_first(&server_first)?;
        let outcome = server.client_final(&client_final)?;
        client.server_final(&outcome.server_final)
    }

    #[test]
    fn client_first_has_no_binding_and_empty_user() {
        let client = ScramPassthroughClient::new(
            ScramKeys {
                client_key: [0; 32],
                server_key: [0; 32],
            },
            [7; 18],
        );
        assert_eq!(client.client_first(), b"n,,n=,r=BwcHBwcHBwcHBwcHBwcHBwcH");
    }

    #[test]
    fn recovered_keys_log_in_to_a_server_with_the_same_secret() {
        let secret = ScramSecret::from_password("s3cret", SALT, 64);
        let keys = keys_from_client_login("s3cret", &secret);
        // A fresh exchange with new nonces: the keys, not a replayed proof, do the work.
        let mut postgres = ScramServer::new(secret, [3; 18]);
        login(keys, &mut postgres).unwrap();
    }

    #[test]
    fn channel_bound_pass_through_logs_in_and_a_wrong_binding_does_not() {
        let secret = ScramSecret::from_password("s3cret", SALT, 64);
        let keys = keys_from_client_login("s3cret", &secret);
        let cb = vec![4u8; 48];
        let login_plus = |data: Vec<u8>| {
            let mut postgres =
                ScramServer::new(secret.clone(), [3; 18]).with_channel_binding(cb.clone());
            let mut client = ScramPassthroughClient::new(keys.clone(), [2; 18])
                .with_channel_binding(Binding::TlsServerEndPoint(data));
            postgres.select_mechanism(client.mechanism())?;
            let server_first = postgres.client_first(&client.client_first())?;
            let client_final = client.server_first(&server_first)?;
            let outcome = postgres.client_final(&client_final)?;
            client.server_final(&outcome.server_final)
        };
        login_plus(cb.clone()).unwrap();
        assert!(matches!(
            login_plus(vec![5; 48]),
            Err(AuthError::Malformed(_))
        ));
        let y =
            ScramPassthroughClient::new(keys, [7; 18]).with_channel_binding(Binding::NotOffered);
        assert_eq!(y.mechanism(), SCRAM_SHA_256);
        assert!(y.client_first().starts_with(b"y,,n=,r="));
    }

    #[test]
    fn wrong_client_key_is_refused_by_the_server() {
        let secret = ScramSecret::from_password("s3cret", SALT, 64);
        let mut keys = keys_from_client_login("s3cret", &secret);
        keys.client_key[0] ^= 1;
        let err = login(keys, &mut ScramServer::new(secret, [3; 18])).unwrap_err();
        assert!(matches!(err, AuthError::PasswordMismatch), "{err:?}");
    }

    #[test]
    fn server_without_our_server_key_is_detected() {
        let secret = ScramSecret::from_password("s3cret", SALT, 64);
        let mut keys = keys_from_client_login("s3cret", &secret);
        keys.server_key[0] ^= 1;
        let err = login(keys, &mut ScramServer::new(secret, [3; 18])).unwrap_err();
        assert!(matches!(err, AuthError::ServerSignatureMismatch), "{err:?}");
    }

    fn client_after_server_first() -> ScramPassthroughClient {
        let keys = ScramKeys {
            client_key: [5; 32],
            server_key: [6; 32],
        };
        let mut client = ScramPassthroughClient::new(keys, [7; 18]);
        client
            .server_first(b"r=BwcHBwcHBwcHBwcHBwcHBwcHxyz,s=c2FsdA==,i=4096")
            .unwrap();
        client
    }

    #[test]
    fn server_final_variants() {
        let client = client_after_server_first();
        let err = |msg: &[u8]| client.server_final(msg).unwrap_err();
        assert!(matches!(
            err(b"e=invalid-proof"),
            AuthError::PasswordMismatch
        ));
        assert!(matches!(err(b"v=AAAA"), AuthError::ServerSignatureMismatch));
        assert!(matches!(err(b"v=!!"), AuthError::Malformed(_)));
        assert!(matches!(err(b"x=1"), AuthError::Malformed(_)));
        let early = ScramPassthroughClient::new(
            ScramKeys {
                client_key: [5; 32],
                server_key: [6; 32],
            },
            [7; 18],
        );
        assert!(matches!(
            early.server_final(b"v=AAAA"),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn bad_server_first_messages() {
        let ours = "BwcHBwcHBwcHBwcHBwcHBwcH";
        let cases = [
            format!("r={ours},s=c2FsdA==,i=4096"), // nonce not extended
            "r=someoneelse123,s=c2FsdA==,i=4096".to_owned(), // not our nonce
            format!("r={ours}x,s=!!,i=4096"),
            format!("r={ours}x,s=,i=4096"),
            format!("r={ours}x,s=c2FsdA==,i=0"),
            format!("r={ours}x,s=c2FsdA==,i=+5"),
            format!("r={ours}x,s=c2FsdA=="),
            format!("s=c2FsdA==,r={ours}x,i=4096"),
        ];
        for msg in cases {
            let keys = ScramKeys {
                client_key: [5; 32],
                server_key: [6; 32],
            };
            let mut client = ScramPassthroughClient::new(keys, [7; 18]);
            let err = client.server_first(msg.as_bytes()).unwrap_err();
            assert!(matches!(err, AuthError::Malformed(_)), "{msg}: {err:?}");
        }
        let keys = ScramKeys {
            client_key: [5; 32],
            server_key: [6; 32],
        };
        let mut client = ScramPassthroughClient::new(keys, [7; 18]);
        let err = client.server_first(b"m=x,r=a,s=b,i=1").unwrap_err();
        assert!(matches!(err, AuthError::Unsupported(_)));
    }
}

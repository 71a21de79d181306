//! The server side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it to clients
//! (PostgreSQL docs, "SCRAM-SHA-256 Authentication"): the user name in client-first-message is
//! ignored (the StartupMessage's `user` counts). Over TLS it also offers SCRAM-SHA-256-PLUS
//! with `tls-server-end-point` channel binding (RFC 5929). Driven by `client` with the payloads
//! of SASLInitialResponse and SASLResponse. One attempt per instance: any error ends the
//! exchange, and a dummy instance (unknown user) fails exactly like a wrong password.

use super::scram_common::{
    as_text, b64_decode, b64_decode_32, b64_encode, ct_eq, expect_attr, hmac_sha256, is_printable,
    sha256, split_attr, xor32,
};
use super::secret::ScramSecret;
use super::{AuthError, SCRAM_SHA_256, SCRAM_SHA_256_PLUS};

/// Iteration count of the fake secrets served for unknown users: PostgreSQL's default
/// `scram_iterations`, so that they look like most real secrets.
const DUMMY_ITERATIONS: u32 = 4096;

/// What a successful exchange yields.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramOutcome {
    /// The server-final-message (`v=<ServerSignature>`), for AuthenticationSASLFinal.
    pub server_final: Vec<u8>,
    /// The client's ClientKey, recovered as ClientProof XOR ClientSignature. With the secret's
    /// ServerKey it lets `ScramPassthroughClient` log in to Postgres as this client.
    pub client_key: [u8; 32],
}

impl std::fmt::Debug for ScramOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScramOutcome { .. }")
    }
}

enum State {
    AwaitingClientFirst,
    AwaitingClientFinal {
        /// The gs2-header exactly as the client sent it, followed by the channel-binding data
        /// when the client bound to the channel: client-final's `c=` must carry exactly this.
        binding: Vec<u8>,
        client_first_bare: String,
        server_first: String,
        /// Client nonce followed by ours; client-final's `r=` must repeat it.
        nonce: String,
    },
    Finished,
}

/// One SCRAM-SHA-256 exchange with one client.
pub struct ScramServer {
    secret: ScramSecret,
    /// Base64 of the caller's random bytes: always `printable` in RFC 5802's sense.
    server_nonce: String,
    /// Set for unknown users: every step runs as for a real user, and the proof never verifies.
    dummy: bool,
    /// tls-server-end-point data of our certificate when SCRAM-SHA-256-PLUS is offered.
    channel_binding: Option<Vec<u8>>,
    /// The client chose SCRAM-SHA-256-PLUS.
    plus: bool,
    state: State,
}

impl ScramServer {
    /// Starts an exchange for a user whose stored secret is `secret`. `server_nonce` must come
    /// from a cryptographically secure random source.
    pub fn new(secret: ScramSecret, server_nonce: [u8; 18]) -> ScramServer {
        ScramServer::with_nonce_text(secret, b64_encode(&server_nonce), false)
    }

    /// Starts an exchange for an unknown user (PostgreSQL's "mock authentication"): the client
    /// gets a salt and iteration count stable across attempts, so it cannot be told apart from a
    /// real user's, and `client_final` always answers `PasswordMismatch`. The fake secret is
    /// HMAC(`mock_key`, user name) with a key random per process, as PostgreSQL's
    /// `mock_auth_nonce`, so nobody can recompute it.
    pub fn new_dummy_keyed(mock_key: &[u8], user: &str, server_nonce: [u8; 18]) -> ScramServer {
        let digest = hmac_sha256(
            mock_key,
            &[b"pgsluice mock SCRAM secret\0", user.as_bytes()],
        );
        ScramServer::dummy_from_digest(digest, server_nonce)
    }

    fn dummy_from_digest(digest: [u8; 32], server_nonce: [u8; 18]) -> ScramServer {
        let secret = ScramSecret {
            iterations: DUMMY_ITERATIONS,
            // 16 bytes, the salt length PostgreSQL generates.
            salt: digest[..16].to_vec(),
            stored_key: sha256(&[&digest[..], b"stored"].concat()),
            server_key: sha256(&[&digest[..], b"server"].concat()),
        };
        ScramServer::with_nonce_text(secret, b64_encode(&server_nonce), true)
    }

    fn with_nonce_text(secret: ScramSecret, server_nonce: String, dummy: bool) -> ScramServer {
        ScramServer {
            secret,
            server_nonce,
            dummy,
            channel_binding: None,
            plus: false,
            state: State::AwaitingClientFirst,
        }
    }

    /// Offers SCRAM-SHA-256-PLUS, binding to `cb_data`: the tls-server-end-point hash of the
    /// certificate this connection's TLS presented (RFC 5929 section 4.1).
    pub fn with_channel_binding(mut self, cb_data: Vec<u8>) -> ScramServer {
        self.channel_binding = Some(cb_data);
        self
    }

    /// The mechanisms to list in AuthenticationSASL, as PostgreSQL lists them over TLS.
    pub fn mechanisms(&self) -> &'static [&'static str] {
        if self.channel_binding.is_some() {
            &[SCRAM_SHA_256_PLUS, SCRAM_SHA_256]
        } else {
            &[SCRAM_SHA_256]
        }
    }

    /// Records the mechanism named in SASLInitialResponse; call it before `client_first`
    /// (SCRAM-SHA-256 is assumed otherwise). A mechanism not offered is refused.
    pub fn select_mechanism(&mut self, mechanism: &str) -> Result<(), AuthError> {
        if !self.mechanisms().contains(&mechanism) {
            self.state = State::Finished;
            return Err(AuthError::Unsupported(format!(
                "SASL mechanism \"{mechanism}\""
            )));
        }
        self.plus = mechanism == SCRAM_SHA_256_PLUS;
        Ok(())
    }

    /// Handles client-first-message (the SASLInitialResponse data) and returns
    /// server-first-message for AuthenticationSASLContinue.
    pub fn client_first(&mut self, client_first: &[u8]) -> Result<Vec<u8>, AuthError> {
        if !matches!(self.state, State::AwaitingClientFirst) {
            self.state = State::Finished;
            return Err(AuthError::Malformed(
                "unexpected client-first-message".into(),
            ));
        }
        self.state = State::Finished;
        let text = as_text(client_first, "client-first-message")?;
        let (gs2_header, bare) = split_gs2_header(text)?;
        let binding = self.binding_for(gs2_header)?;
        let client_nonce = parse_client_first_bare(bare)?;
        let nonce = format!("{client_nonce}{}", self.server_nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            b64_encode(&self.secret.salt),
            self.secret.iterations
        );
        let reply = server_first.clone().into_bytes();
        self.state = State::AwaitingClientFinal {
            binding,
            client_first_bare: bare.to_owned(),
            server_first,
            nonce,
        };
        Ok(reply)
    }

    /// What client-final's `c=` must carry for this gs2-header, after checking the header's
    /// channel-binding flag against what was offered and chosen (RFC 5802 section 6, and
    /// PostgreSQL's checks in read_client_first_message).
    fn binding_for(&self, gs2_header: &str) -> Result<Vec<u8>, AuthError> {
        let mut binding = gs2_header.as_bytes().to_vec();
        match (gs2_header.as_bytes()[0], &self.channel_binding) {
            (b'p', None) => Err(AuthError::Unsupported(
                "channel binding is not supported (no TLS)".into(),
            )),
            (b'p', Some(cb_data)) => {
                if !self.plus {
                    return Err(AuthError::Malformed(
                        "the client selected SCRAM-SHA-256 without channel binding, but the \
                         SCRAM message includes channel binding data"
                            .into(),
                    ));
                }
                if !gs2_header.starts_with("p=tls-server-end-point,") {
                    return Err(AuthError::Unsupported(
                        "channel-binding type (only tls-server-end-point is)".into(),
                    ));
                }
                binding.extend_from_slice(cb_data);
                Ok(binding)
            }
            _ if self.plus => Err(AuthError::Malformed(
                "the client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not \
                 include channel binding data"
                    .into(),
            )),
            // 'y': the client could bind but believes we cannot. We offered PLUS, so someone
            // removed it on the way: a downgrade, which RFC 5802 section 6 says to refuse.
            (b'y', Some(_)) => Err(AuthError::Malformed(
                "SCRAM channel binding negotiation error: the client supports channel \
                 binding but thinks the server does not, and this server does"
                    .into(),
            )),
            _ => Ok(binding),
        }
    }

    /// Handles client-final-message (the SASLResponse data): checks the channel-binding echo,
    /// the nonce and the proof. On success, returns server-final-message for
    /// AuthenticationSASLFinal and the recovered ClientKey.
    pub fn client_final(&mut self, client_final: &[u8]) -> Result<ScramOutcome, AuthError> {
        let State::AwaitingClientFinal {
            binding: expected_binding,
            client_first_bare,
            server_first,
            nonce,
        } = std::mem::replace(&mut self.state, State::Finished)
        else {
            return Err(AuthError::Malformed(
                "unexpected client-final-message".into(),
            ));
        };
        let text = as_text(client_final, "client-final-message")?;
        // RFC 5802 section 7: the proof is the last attribute, and the AuthMessage covers
        // everything before it.
        let (without_proof, proof) = text
            .rsplit_once(',')
            .ok_or_else(|| AuthError::Malformed("missing proof".into()))?;
        let proof = expect_attr(Some(proof), b'p', "proof")?;
        let mut parts = without_proof.split(',');
        let binding = expect_attr(parts.next(), b'c', "channel binding")?;
        if !b64_decode(binding).is_some_and(|b| ct_eq(&b, &expected_binding)) {
            return Err(AuthError::Malformed("channel binding check failed".into()));
        }
        if expect_attr(parts.next(), b'r', "nonce")? != nonce {
            return Err(AuthError::Malformed("nonce does not match".into()));
        }
        for extension in parts {
            split_attr(extension)?;
        }
        let proof =
            b64_decode_32(proof).ok_or_else(|| AuthError::Malformed("invalid proof".into()))?;

        let auth_message = [
            client_first_bare.as_bytes(),
            b",",
            server_first.as_bytes(),
            b",",
            without_proof.as_bytes(),
        ];
        let client_signature = hmac_sha256(&self.secret.stored_key, &auth_message);
        let client_key = xor32(&proof, &client_signature);
        let verified = ct_eq(&sha256(&client_key), &self.secret.stored_key);
        if !verified || self.dummy {
            return Err(AuthError::PasswordMismatch);
        }
        let server_signature = hmac_sha256(&self.secret.server_key, &auth_message);
        Ok(ScramOutcome {
            server_final: format!("v={}", b64_encode(&server_signature)).into_bytes(),
            client_key,
        })
    }
}

/// Splits `gs2-header client-first-message-bare` (RFC 5802 section 7) and vets the header.
fn split_gs2_header(text: &str) -> Result<(&str, &str), AuthError> {
    let mut fields = text.splitn(3, ',');
    let (Some(flag), Some(authzid), Some(bare)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(AuthError::Malformed("missing GS2 header".into()));
    };
    if !(flag == "n" || flag == "y" || flag.starts_with("p=")) {
        return Err(AuthError::Malformed("invalid channel binding flag".into()));
    }
    if authzid.starts_with("a=") {
        // PostgreSQL refuses an authorization identity too: the role comes from the startup packet.
        return Err(AuthError::Unsupported("authorization identity".into()));
    } else if !authzid.is_empty() {
        return Err(AuthError::Malformed("invalid GS2 header".into()));
    }
    Ok((&text[..text.len() - bare.len()], bare))
}

/// Parses client-first-message-bare and returns the client nonce.
fn parse_client_first_bare(bare: &str) -> Result<&str, AuthError> {
    let mut parts = bare.split(',');
    if parts.clone().next().is_some_and(|p| p.starts_with("m=")) {
        return Err(AuthError::Unsupported("mandatory extension".into()));
    }
    // The SCRAM user name is ignored, as PostgreSQL does; clients usually send it empty.
    expect_attr(parts.next(), b'n', "user name")?;
    let nonce = expect_attr(parts.next(), b'r', "nonce")?;
    if !is_printable(nonce) {
        return Err(AuthError::Malformed("invalid nonce".into()));
    }
    for extension in parts {
        split_attr(extension)?;
    }
    Ok(nonce)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::scram_common::{client_key, salted_password};
    use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};

    const NONCE: [u8; 18] = [7; 18];

    fn secret(password: &str) -> ScramSecret {
        ScramSecret::from_password(password, b"a salt of sorts", 64)
    }

    /// Runs postgres-protocol's client (with `password`) against `server`.
    fn exchange(
        server: &mut ScramServer,
        password: &str,
        binding: ChannelBinding,
    ) -> Result<ScramOutcome, AuthError> {
        let mut client = ScramSha256::new(password.as_bytes(), binding);
        let server_first = server.client_first(client.message())?;
        client.update(&server_first).expect("valid server-first");
        let outcome = server.client_final(client.message())?;
        client
            .finish(&outcome.server_final)
            .expect("server signature verifies");
        Ok(outcome)
    }

    #[test]
    fn rfc7677_test_vector() {
        let salt = b64_decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let secret = ScramSecret::from_password("pencil", &salt, 4096);
        let mut server =
            ScramServer::with_nonce_text(secret, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into(), false);
        let server_first = server
            .client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
            .unwrap();
        assert_eq!(
            server_first,
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
              s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let outcome = server
            .client_final(
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                  p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            )
            .unwrap();
        assert_eq!(
            outcome.server_final,
            b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        let salted = salted_password(b"pencil", &salt, 4096);
        assert_eq!(outcome.client_key, client_key(&salted));
    }

    #[test]
    fn postgres_protocol_client_logs_in_and_reveals_its_client_key() {
        for binding in [ChannelBinding::unsupported(), ChannelBinding::unrequested()] {
            let mut server = ScramServer::new(secret("correct horse"), NONCE);
            let outcome = exchange(&mut server, "correct horse", binding).unwrap();
            let salted = salted_password(b"correct horse", b"a salt of sorts", 64);
            assert_eq!(outcome.client_key, client_key(&salted));
        }
    }

    #[test]
    fn non_ascii_password_is_saslprepped_on_both_sides() {
        let mut server = ScramServer::new(secret("p\u{e4}ss\u{a0}word"), NONCE);
        exchange(
            &mut server,
            "p\u{e4}ss\u{a0}word",
            ChannelBinding::unsupported(),
        )
        .unwrap();
    }

    #[test]
    fn wrong_password_is_a_mismatch_and_ends_the_exchange() {
        let mut server = ScramServer::new(secret("right"), NONCE);
        let err = exchange(&mut server, "wrong", ChannelBinding::unsupported()).unwrap_err();
        assert!(matches!(err, AuthError::PasswordMismatch), "{err:?}");
        assert!(server.client_final(b"c=biws,r=x,p=AAAA").is_err());
        assert!(server.client_first(b"n,,n=,r=abc").is_err());
    }

    /// Drives a real client to client-final, lets `tamper` edit it, and returns the result.
    fn tampered(tamper: impl Fn(&str) -> String) -> Result<ScramOutcome, AuthError> {
        let mut server = ScramServer::new(secret("pw"), NONCE);
        let mut client = ScramSha256::new(b"pw", ChannelBinding::unsupported());
        let server_first = server.client_first(client.message()).unwrap();
        client.update(&server_first).unwrap();
        let original = std::str::from_utf8(client.message()).unwrap();
        server.client_final(tamper(original).as_bytes())
    }

    #[test]
    fn untampered_final_passes_and_tampering_fails() {
        assert!(tampered(str::to_owned).is_ok());
        let nonce = tampered(|m| m.replacen(",r=", ",r=X", 1)).unwrap_err();
        assert!(
            matches!(nonce, AuthError::Malformed(ref m) if m.contains("nonce")),
            "{nonce:?}"
        );
        // The echoed GS2 header must be the one sent: "y,," (eSws) instead of "n,," (biws).
        let binding = tampered(|m| m.replacen("c=biws", "c=eSws", 1)).unwrap_err();
        assert!(matches!(binding, AuthError::Malformed(ref m) if m.contains("channel")));
        // Flip one proof character: a valid-looking proof that does not verify.
        let proof = tampered(|m| {
            let (head, p) = m.rsplit_once("p=").unwrap();
            let flipped = if p.starts_with('A') { "B" } else { "A" };
            format!("{head}p={flipped}{}", &p[1..])
        })
        .unwrap_err();
        assert!(matches!(proof, AuthError::PasswordMismatch), "{proof:?}");
        // An extension inserted before the proof changes the AuthMessage: mismatch too.
        let extension = tampered(|m| m.replacen(",p=", ",x=1,p=", 1)).unwrap_err();
        assert!(
            matches!(extension, AuthError::PasswordMismatch),
            "{extension:?}"
        );
        for broken in [
            |m: &str| m.rsplit_once(",p=").unwrap().0.to_owned(),
            |m: &str| m.replacen(",p=", ",p=!!", 1),
            |_: &str| "garbage".to_owned(),
        ] {
            assert!(matches!(tampered(broken), Err(AuthError::Malformed(_))));
        }
    }

    #[test]
    fn channel_binding_p_is_refused_as_unsupported() {
        let mut server = ScramServer::new(secret("pw"), NONCE);
        let client = ScramSha256::new(b"pw", ChannelBinding::tls_server_end_point(vec![1; 32]));
        let err = server.client_first(client.message()).unwrap_err();
        assert!(matches!(err, AuthError::Unsupported(ref m) if m.contains("channel binding")));
    }

    #[test]
    fn scram_sha_256_plus_binds_to_the_tls_certificate() {
        let cb = vec![9u8; 32];
        let plus = |server: ScramServer| {
            let mut server = server;
            server.select_mechanism(SCRAM_SHA_256_PLUS).map(|_| server)
        };
        // A PLUS login with the right channel-binding data succeeds.
        let mut server =
            plus(ScramServer::new(secret("pw"), NONCE).with_channel_binding(cb.clone())).unwrap();
        assert_eq!(server.mechanisms(), [SCRAM_SHA_256_PLUS, SCRAM_SHA_256]);
        exchange(
            &mut server,
            "pw",
            ChannelBinding::tls_server_end_point(cb.clone()),
        )
        .unwrap();
        // Another certificate's hash (a man in the middle) fails the binding check.
        let mut server =
            plus(ScramServer::new(secret("pw"), NONCE).with_channel_binding(cb.clone())).unwrap();
        let err = exchange(
            &mut server,
            "pw",
            ChannelBinding::tls_server_end_point(vec![8; 32]),
        )
        .unwrap_err();
        assert!(
            matches!(err, AuthError::Malformed(ref m) if m.contains("channel binding check")),
            "{err:?}"
        );
        // 'y' while PLUS was offered: a downgrade, refused (RFC 5802 section 6).
        let mut server = ScramServer::new(secret("pw"), NONCE).with_channel_binding(cb.clone());
        let err = exchange(&mut server, "pw", ChannelBinding::unrequested()).unwrap_err();
        assert!(
            matches!(err, AuthError::Malformed(ref m) if m.contains("negotiation")),
            "{err:?}"
        );
        // 'n' with plain SCRAM-SHA-256 is still fine over TLS.
        let mut server = ScramServer::new(secret("pw"), NONCE).with_channel_binding(cb.clone());
        exchange(&mut server, "pw", ChannelBinding::unsupported()).unwrap();
        // The flag must agree with the mechanism both ways.
        let mut server =
            plus(ScramServer::new(secret("pw"), NONCE).with_channel_binding(cb.clone())).unwrap();
        assert!(exchange(&mut server, "pw", ChannelBinding::unsupported()).is_err());
        let mut server = ScramServer::new(secret("pw"), NONCE).with_channel_binding(cb.clone());
        let err =
            exchange(&mut server, "pw", ChannelBinding::tls_server_end_point(cb)).unwrap_err();
        assert!(
            matches!(err, AuthError::Malformed(ref m) if m.contains("without channel binding"))
        );
        // PLUS cannot be chosen where it was not offered (no TLS).
        let err = plus(ScramServer::new(secret("pw"), NONCE)).err().unwrap();
        assert!(matches!(err, AuthError::Unsupported(_)), "{err:?}");
    }

    #[test]
    fn malformed_client_first_messages() {
        let cases: [(&[u8], bool); 9] = [
            (b"n,a=admin,n=,r=abc", true),
            (b"n,,m=ext,n=,r=abc", true),
            (b"x,,n=,r=abc", false),
            (b"n,,n=", false),
            (b"n,,r=abc", false),
            (b"n,,n=,r=", false),
            (b"n,,n=,r=a b", false),
            (b"n,n=,r=abc", false),
            (b"n,,n=,r=\xff", false),
        ];
        for (msg, unsupported) in cases {
            let err = ScramServer::new(secret("pw"), NONCE)
                .client_first(msg)
                .unwrap_err();
            match err {
                AuthError::Unsupported(_) => assert!(unsupported, "{msg:?}"),
                AuthError::Malformed(_) => assert!(!unsupported, "{msg:?}"),
                other => panic!("{msg:?}: {other:?}"),
            }
        }
        // Extensions after the nonce are allowed and ignored; the user name is ignored too.
        let mut server = ScramServer::new(secret("pw"), NONCE);
        let reply = server.client_first(b"y,,n=someone,r=abc,x=ext").unwrap();
        assert!(
            reply.starts_with(b"r=abcBwcH"),
            "{:?}",
            String::from_utf8_lossy(&reply)
        );
    }

    #[test]
    fn client_final_before_client_first_is_refused() {
        let mut server = ScramServer::new(secret("pw"), NONCE);
        assert!(matches!(
            server.client_final(b"c=biws,r=a,p=b"),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn dummy_is_deterministic_per_user_and_always_fails() {
        let first = |mut s: ScramServer| s.client_first(b"n,,n=,r=abc").unwrap();
        let a1 = first(ScramServer::new_dummy_keyed(
            b"test mock key",
            "alice",
            NONCE,
        ));
        let a2 = first(ScramServer::new_dummy_keyed(
            b"test mock key",
            "alice",
            NONCE,
        ));
        let b = first(ScramServer::new_dummy_keyed(b"test mock key", "bob", NONCE));
        assert_eq!(a1, a2);
        assert_ne!(a1, b);
        assert!(String::from_utf8(a1).unwrap().ends_with(",i=4096"));
        let k1 = first(ScramServer::new_dummy_keyed(b"key one", "alice", NONCE));
        let k2 = first(ScramServer::new_dummy_keyed(b"key two", "alice", NONCE));
        assert_ne!(k1, k2);

        // A real client, whatever its password, gets through client-first and is refused at
        // client-final with the very error a wrong password gives.
        let mut server = ScramServer::new_dummy_keyed(b"test mock key", "alice", NONCE);
        let mut client = ScramSha256::new(b"anything", ChannelBinding::unsupported());
        client
            .update(&server.client_first(client.message()).unwrap())
            .unwrap();
        let err = server.client_final(client.message()).unwrap_err();
        assert!(matches!(err, AuthError::PasswordMismatch), "{err:?}");
        let mut keyed = ScramServer::new_dummy_keyed(b"k", "alice", NONCE);
        let err = exchange(&mut keyed, "anything", ChannelBinding::unrequested()).unwrap_err();
        assert!(matches!(err, AuthError::PasswordMismatch));
    }

    #[test]
    fn dummy_cannot_be_passed_even_with_its_own_keys() {
        let mut server = ScramServer::new_dummy_keyed(b"test mock key", "carol", NONCE);
        server.client_first(b"n,,n=,r=abc").unwrap();
        let State::AwaitingClientFinal {
            nonce,
            client_first_bare,
            server_first,
            ..
        } = &server.state
        else {
            unreachable!()
        };
        // Give the dummy a StoredKey whose ClientKey we know, and send the proof that would
        // pass for a real user: the dummy flag alone must still refuse it.
        let client_key = [42u8; 32];
        server.secret.stored_key = sha256(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = hmac_sha256(&server.secret.stored_key, &[auth.as_bytes()]);
        let proof = b64_encode(&xor32(&client_key, &signature));
        let client_final = format!("{without_proof},p={proof}");
        // The same secret and nonce without the dummy flag accept this very message...
        let mut real =
            ScramServer::with_nonce_text(server.secret.clone(), server.server_nonce.clone(), false);
        real.client_first(b"n,,n=,r=abc").unwrap();
        assert!(real.client_final(client_final.as_bytes()).is_ok());
        // ...the dummy does not.
        let err = server.client_final(client_final.as_bytes());
        assert!(matches!(err, Err(AuthError::PasswordMismatch)));
    }
}

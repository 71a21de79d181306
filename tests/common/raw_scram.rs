//! A hand-driven SCRAM-SHA-256 client login over a raw connection, for the security tests that
//! must send client-final messages no driver would: replayed from another connection, with an
//! altered nonce or a wrong proof (RFC 5802 §5; PostgreSQL docs, "SASL Authentication").
//! The client math is postgres-protocol's; only the messages sent are chosen by the test.

use base64::Engine;
use bytes::{Buf, BytesMut};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::frontend;

use super::pgsetup::TEST_DB;
use super::raw::{Backend, RawClient};

const AUTH_SASL: i32 = 10;
const AUTH_SASL_CONTINUE: i32 = 11;
const AUTH_SASL_FINAL: i32 = 12;
const AUTH_OK: i32 = 0;

/// A SCRAM login stopped after server-first-message: the client-final the real client would
/// send is ready in `scram.message()`, and the test decides what to send instead.
pub struct ScramInProgress {
    pub conn: RawClient,
    pub scram: ScramSha256,
    /// The full nonce server-first announced (client nonce followed by the server's).
    pub nonce: String,
}

/// How a login attempt ended.
#[derive(Debug)]
pub enum ScramEnd {
    /// AuthenticationSASLFinal, AuthenticationOk and the rest, through ReadyForQuery.
    LoggedIn(Vec<Backend>),
    /// Everything received until the server closed the connection (an ErrorResponse).
    Refused(Vec<Backend>),
}

impl ScramEnd {
    /// The SQLSTATE of the refusal; panics if the login succeeded.
    pub fn refusal_code(&self) -> String {
        match self {
            ScramEnd::Refused(msgs) => {
                assert!(
                    !msgs
                        .iter()
                        .any(|m| m.tag == b'R' && auth_code(m) == AUTH_OK),
                    "a refused login got AuthenticationOk: {msgs:?}"
                );
                let errors: Vec<&Backend> = msgs.iter().filter(|m| m.tag == b'E').collect();
                assert_eq!(errors.len(), 1, "one ErrorResponse: {msgs:?}");
                assert_eq!(errors[0].field(b'S').as_deref(), Some("FATAL"));
                errors[0].sqlstate().unwrap_or_default()
            }
            ScramEnd::LoggedIn(msgs) => panic!("the login succeeded: {msgs:?}"),
        }
    }
}

fn auth_code(m: &Backend) -> i32 {
    (&m.body[..]).get_i32()
}

/// Opens `host:port`, sends a StartupMessage for `user` and runs SCRAM up to server-first.
pub async fn scram_begin(host: &str, port: u16, user: &str, password: &str) -> ScramInProgress {
    let mut conn = RawClient::open(host, port).await;
    let mut out = BytesMut::new();
    frontend::startup_message([("user", user), ("database", TEST_DB)], &mut out).unwrap();
    conn.send_bytes(&out).await;
    let offer = conn.recv().await;
    assert!(
        offer.tag == b'R' && auth_code(&offer) == AUTH_SASL,
        "expected AuthenticationSASL: {offer:?}"
    );
    assert!(offer
        .cstrings()
        .iter()
        .any(|m| m.ends_with("SCRAM-SHA-256")));
    // No TLS here, so no channel binding: the GS2 header is "n,,".
    let mut scram = ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
    out.clear();
    frontend::sasl_initial_response("SCRAM-SHA-256", scram.message(), &mut out).unwrap();
    conn.send_bytes(&out).await;
    let first = conn.recv().await;
    assert!(
        first.tag == b'R' && auth_code(&first) == AUTH_SASL_CONTINUE,
        "expected AuthenticationSASLContinue: {first:?}"
    );
    let server_first = first.body[4..].to_vec();
    scram
        .update(&server_first)
        .expect("a well-formed server-first");
    let text = String::from_utf8(server_first).expect("server-first is text");
    let nonce = attribute(&text, 'r')
        .expect("server-first has r=")
        .to_owned();
    ScramInProgress { conn, scram, nonce }
}

impl ScramInProgress {
    /// The client-final message the honest client would send now.
    pub fn honest_final(&self) -> Vec<u8> {
        self.scram.message().to_vec()
    }

    /// Sends `client_final` as the SASLResponse and reads how the login ends.
    pub async fn finish_with(mut self, client_final: &[u8]) -> ScramEnd {
        let mut out = BytesMut::new();
        frontend::sasl_response(client_final, &mut out).unwrap();
        self.conn.send_bytes(&out).await;
        let first = self.conn.recv_until_closed_or_ready().await;
        let logged_in = first
            .iter()
            .any(|m| m.tag == b'R' && auth_code(m) == AUTH_SASL_FINAL)
            && first.last().is_some_and(|m| m.tag == b'Z');
        if logged_in {
            ScramEnd::LoggedIn(first)
        } else {
            ScramEnd::Refused(first)
        }
    }
}

/// The value of attribute `name` in a SCRAM message ("r=...,s=...").
pub fn attribute(message: &str, name: char) -> Option<&str> {
    message
        .split(',')
        .find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
}

/// `client_final` with attribute `name` replaced by `value` (the other attributes kept).
pub fn with_attribute(client_final: &[u8], name: char, value: &str) -> Vec<u8> {
    let text = std::str::from_utf8(client_final).expect("client-final is text");
    let parts: Vec<String> = text
        .split(',')
        .map(|part| match part.strip_prefix(name) {
            Some(rest) if rest.starts_with('=') => format!("{name}={value}"),
            _ => part.to_owned(),
        })
        .collect();
    parts.join(",").into_bytes()
}

/// `client_final` with one bit of its ClientProof flipped.
pub fn with_flipped_proof(client_final: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let text = std::str::from_utf8(client_final).expect("client-final is text");
    let mut proof = b64
        .decode(attribute(text, 'p').expect("client-final has p="))
        .expect("proof is base64");
    proof[7] ^= 0x20;
    with_attribute(client_final, 'p', &b64.encode(proof))
}

impl RawClient {
    /// Messages until ReadyForQuery or until the peer closes, whichever comes first.
    pub async fn recv_until_closed_or_ready(&mut self) -> Vec<Backend> {
        let mut msgs = Vec::new();
        while let Some(m) = self.try_recv().await {
            let ready = m.tag == b'Z';
            msgs.push(m);
            if ready {
                break;
            }
        }
        msgs
    }
}

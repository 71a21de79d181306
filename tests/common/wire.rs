//! Raw-socket client for tests that must send bytes no well-behaved driver would (malformed
//! startup packets, half packets, oversized messages) and read the backend messages exactly.
//! Called by tests/startup.rs. Invariant: every read is bounded by a generous deadline and
//! panics when it passes, so a pooler that never answers fails the test instead of hanging it.

use std::collections::HashMap;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long any single read may wait for the pooler: long, because the machine is shared.
pub const READ_DEADLINE: Duration = Duration::from_secs(30);

/// One backend message: its tag and body (without the length word).
#[derive(Debug, Clone)]
pub struct Message {
    pub tag: u8,
    pub body: Vec<u8>,
}

impl Message {
    /// The fields of an ErrorResponse or NoticeResponse, by field code ('S', 'V', 'C', 'M'...).
    pub fn fields(&self) -> HashMap<u8, String> {
        let mut fields = HashMap::new();
        let mut rest = &self.body[..];
        while let Some((&code, after)) = rest.split_first() {
            if code == 0 {
                break;
            }
            let end = after.iter().position(|&b| b == 0).expect("field ends");
            fields.insert(code, String::from_utf8_lossy(&after[..end]).into_owned());
            rest = &after[end + 1..];
        }
        fields
    }
}

/// A plain TCP connection to the pooler plus the bytes received but not yet parsed.
pub struct Wire {
    pub stream: TcpStream,
    buf: BytesMut,
}

impl Wire {
    pub async fn connect(host: &str, port: u16) -> Wire {
        let stream = TcpStream::connect((host, port))
            .await
            .expect("connect to the pooler");
        Wire {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// Writes bytes; a write error is ignored, since the pooler may already have closed a
    /// connection it refused — what it sent before closing is still there to read.
    pub async fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// Sends a protocol 3.0 StartupMessage built by postgres-protocol.
    pub async fn send_startup(&mut self, params: &[(&str, &str)]) {
        let mut out = BytesMut::new();
        frontend::startup_message(params.iter().copied(), &mut out).expect("encode startup");
        self.send(&out).await;
    }

    /// Reads more bytes; false on EOF or a reset (the pooler closed the connection).
    async fn fill(&mut self) -> bool {
        let read = tokio::time::timeout(READ_DEADLINE, self.stream.read_buf(&mut self.buf))
            .await
            .unwrap_or_else(|_| panic!("the pooler sent nothing within {READ_DEADLINE:?}"));
        matches!(read, Ok(n) if n > 0)
    }

    /// Exactly `n` raw bytes (for the one-byte answer to SSLRequest); None if closed first.
    pub async fn read_bytes(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill().await {
                return None;
            }
        }
        Some(self.buf.split_to(n).to_vec())
    }

    /// The next whole backend message; None once the connection is closed.
    pub async fn read_message(&mut self) -> Option<Message> {
        loop {
            if self.buf.len() >= 5 {
                let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]);
                let total = 1 + len as usize;
                if self.buf.len() >= total {
                    let tag = self.buf[0];
                    self.buf.advance(5);
                    let body = self.buf.split_to(total - 5).to_vec();
                    return Some(Message { tag, body });
                }
            }
            if !self.fill().await {
                assert!(
                    self.buf.is_empty(),
                    "connection closed inside a message: {:?}",
                    &self.buf[..]
                );
                return None;
            }
        }
    }

    /// Every message until the pooler closes the connection.
    pub async fn read_until_closed(&mut self) -> Vec<Message> {
        let mut messages = Vec::new();
        while let Some(message) = self.read_message().await {
            messages.push(message);
        }
        messages
    }

    /// Messages up to and including ReadyForQuery; panics if the connection closes first.
    pub async fn read_until_ready(&mut self) -> Vec<Message> {
        let mut messages = Vec::new();
        loop {
            let message = self.read_message().await.unwrap_or_else(|| {
                panic!("connection closed before ReadyForQuery; got {messages:?}")
            });
            let ready = message.tag == b'Z';
            messages.push(message);
            if ready {
                return messages;
            }
        }
    }

    /// Sends a simple Query and returns the messages up to ReadyForQuery.
    pub async fn query(&mut self, sql: &str) -> Vec<Message> {
        let mut out = BytesMut::new();
        frontend::query(sql, &mut out).expect("encode query");
        self.send(&out).await;
        self.read_until_ready().await
    }
}

/// Asserts the messages are exactly one FATAL ErrorResponse with `sqlstate` (the connection
/// being closed after it is implied: the caller read until EOF). Returns its message text.
pub fn assert_single_fatal(messages: &[Message], sqlstate: &str, what: &str) -> String {
    assert_eq!(
        messages.len(),
        1,
        "{what}: expected one ErrorResponse then EOF, got {messages:?}"
    );
    let error = &messages[0];
    assert_eq!(error.tag, b'E', "{what}: not an ErrorResponse: {error:?}");
    let fields = error.fields();
    assert_eq!(
        fields.get(&b'S').map(String::as_str),
        Some("FATAL"),
        "{what}: {fields:?}"
    );
    assert_eq!(
        fields.get(&b'V').map(String::as_str),
        Some("FATAL"),
        "{what}: {fields:?}"
    );
    assert_eq!(
        fields.get(&b'C').map(String::as_str),
        Some(sqlstate),
        "{what}: {fields:?}"
    );
    fields.get(&b'M').cloned().unwrap_or_default()
}

/// A startup-shaped packet by hand: length, the 32-bit code or version, then `body` as is.
pub fn raw_startup(version: u32, body: &[u8]) -> Vec<u8> {
    let mut out = ((8 + body.len()) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// The tags of a message list, as a string ("RSSKZ") for readable assertions.
pub fn tags(messages: &[Message]) -> String {
    messages.iter().map(|m| m.tag as char).collect()
}

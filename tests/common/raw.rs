//! The raw wire-protocol client, for tests that must see the exact backend messages a client
//! gets (tags, order, bodies) — what tokio-postgres hides — or send bytes no driver would
//! (malformed startup packets, half packets). Used by relay_protocol.rs, relay.rs, copy.rs and
//! startup.rs. Backend messages are split by tag + length only, so whatever pgsluice forwards
//! is what the test sees, byte for byte. Invariant: every read has one generous deadline and
//! panics when it passes, so a pooler that never answers fails the test instead of hanging it.

use std::future::Future;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::pgsetup::TEST_DB;
use super::pooler::Pooler;
// Re-exported so tests import the whole client from `raw`; not every test binary sends raw bytes.
#[allow(unused_imports)]
pub use super::raw_frontend::{raw_startup, Frontend};

/// How long any single read may wait: long, because the machine is shared; never asserted on.
pub const READ_DEADLINE: Duration = Duration::from_secs(30);

/// One backend message: its tag and the body after the length word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    pub tag: u8,
    pub body: Vec<u8>,
}

impl Backend {
    /// Fields of an ErrorResponse/NoticeResponse: (field code, value).
    pub fn fields(&self) -> Vec<(u8, String)> {
        let mut out = Vec::new();
        let mut rest = &self.body[..];
        while let Some((&code, tail)) = rest.split_first() {
            if code == 0 {
                break;
            }
            let end = tail.iter().position(|b| *b == 0).unwrap_or(tail.len());
            out.push((code, String::from_utf8_lossy(&tail[..end]).into_owned()));
            rest = &tail[(end + 1).min(tail.len())..];
        }
        out
    }

    /// One field of an ErrorResponse/NoticeResponse by code ('S', 'V', 'C', 'M'...).
    pub fn field(&self, code: u8) -> Option<String> {
        self.fields()
            .into_iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v)
    }

    /// SQLSTATE of an ErrorResponse/NoticeResponse.
    pub fn sqlstate(&self) -> Option<String> {
        self.field(b'C')
    }

    /// The NUL-terminated strings of the body (ParameterStatus, CommandComplete...).
    pub fn cstrings(&self) -> Vec<String> {
        let body = self.body.strip_suffix(&[0]).unwrap_or(&self.body);
        body.split(|b| *b == 0)
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    }

    /// Columns of a DataRow as text (None for NULL).
    pub fn columns(&self) -> Vec<Option<String>> {
        assert_eq!(self.tag, b'D', "not a DataRow: {self:?}");
        let mut b = &self.body[..];
        let n = b.get_i16();
        (0..n)
            .map(|_| {
                let len = b.get_i32();
                (len >= 0).then(|| {
                    let v = String::from_utf8_lossy(&b[..len as usize]).into_owned();
                    b.advance(len as usize);
                    v
                })
            })
            .collect()
    }

    /// The first column of a DataRow, which must not be NULL.
    pub fn value(&self) -> String {
        self.columns()[0].clone().expect("non-NULL column")
    }
}

/// The tags of `msgs` as a string ("RSSKZ"), for readable order assertions.
pub fn tags(msgs: &[Backend]) -> String {
    msgs.iter().map(|m| m.tag as char).collect()
}

/// Asserts the messages are exactly one FATAL ErrorResponse with `sqlstate` (the connection
/// being closed after it is implied: the caller read until EOF). Returns its message text.
pub fn assert_single_fatal(msgs: &[Backend], sqlstate: &str, what: &str) -> String {
    assert_eq!(
        msgs.len(),
        1,
        "{what}: expected one ErrorResponse then EOF, got {msgs:?}"
    );
    let error = &msgs[0];
    assert_eq!(error.tag, b'E', "{what}: not an ErrorResponse: {error:?}");
    let fields = error.fields();
    for (code, expected) in [(b'S', "FATAL"), (b'V', "FATAL"), (b'C', sqlstate)] {
        let value = error.field(code);
        assert_eq!(value.as_deref(), Some(expected), "{what}: {fields:?}");
    }
    error.field(b'M').unwrap_or_default()
}

/// Awaits one read, panicking with `what` after READ_DEADLINE.
async fn with_deadline<T>(what: &str, read: impl Future<Output = T>) -> T {
    match tokio::time::timeout(READ_DEADLINE, read).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: nothing within {READ_DEADLINE:?}"),
    }
}

/// A TCP connection to the pooler (or to Postgres, for a reference run), logged in or not,
/// plus the bytes received but not yet split into messages.
pub struct RawClient {
    stream: TcpStream,
    buf: BytesMut,
    /// Every message of the login, the first Authentication request through ReadyForQuery.
    pub startup: Vec<Backend>,
    /// The BackendKeyData the client was given: (process id, secret key).
    pub key: (i32, i32),
}

impl RawClient {
    /// A bare connection to `host:port`: nothing sent yet.
    pub async fn open(host: &str, port: u16) -> Self {
        let stream = TcpStream::connect((host, port))
            .await
            .expect("connect to server");
        stream.set_nodelay(true).unwrap();
        RawClient {
            stream,
            buf: BytesMut::new(),
            startup: Vec::new(),
            key: (0, 0),
        }
    }

    /// Opens a connection to `p` and logs in as `user` on testdb with extra startup `params`;
    /// panics on refusal.
    pub async fn connect(p: &Pooler, user: &str, password: &str, params: &[(&str, &str)]) -> Self {
        let mut c = Self::open(p.host(), p.port()).await;
        if let Err(e) = c.login(user, password, params).await {
            panic!("raw login refused: {:?}\n{}", e.fields(), p.log());
        }
        c
    }

    /// Sends a StartupMessage for `user` on testdb and answers trust, cleartext and md5
    /// password requests until ReadyForQuery; Err is the ErrorResponse sent instead.
    pub async fn login(
        &mut self,
        user: &str,
        password: &str,
        params: &[(&str, &str)],
    ) -> Result<(), Backend> {
        let mut all = vec![("user", user), ("database", TEST_DB)];
        all.extend_from_slice(params);
        let mut out = BytesMut::new();
        frontend::startup_message(all, &mut out).unwrap();
        self.send_bytes(&out).await;
        loop {
            let m = self.recv().await;
            match m.tag {
                b'R' => self.answer_auth(&m, user, password).await,
                b'E' => return Err(m),
                b'K' => {
                    let mut b = &m.body[..];
                    self.key = (b.get_i32(), b.get_i32());
                }
                _ => {}
            }
            let ready = m.tag == b'Z';
            self.startup.push(m);
            if ready {
                return Ok(());
            }
        }
    }

    async fn answer_auth(&mut self, m: &Backend, user: &str, password: &str) {
        let mut b = &m.body[..];
        let mut out = BytesMut::new();
        match b.get_i32() {
            0 => return,
            3 => frontend::password_message(password.as_bytes(), &mut out).unwrap(),
            5 => {
                let salt = [b[0], b[1], b[2], b[3]];
                let hash = postgres_protocol::authentication::md5_hash(
                    user.as_bytes(),
                    password.as_bytes(),
                    salt,
                );
                frontend::password_message(hash.as_bytes(), &mut out).unwrap();
            }
            other => panic!("raw client: unsupported authentication request {other}"),
        }
        self.send_bytes(&out).await;
    }

    /// The value of a ParameterStatus received at login.
    pub fn startup_parameter(&self, name: &str) -> Option<String> {
        self.startup
            .iter()
            .filter(|m| m.tag == b'S')
            .map(Backend::cstrings)
            .find(|s| s[0] == name)
            .map(|s| s[1].clone())
    }

    pub async fn send(&mut self, batch: Frontend) {
        self.send_bytes(batch.bytes()).await;
    }

    /// Writes bytes; a write error is ignored, since the peer may already have closed a
    /// connection it refused — what it sent before closing is still there to read, and a
    /// connection that is really gone fails the next read.
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// Reads more bytes; false at end of stream or on a reset (the peer closed).
    async fn fill(&mut self) -> bool {
        matches!(self.stream.read_buf(&mut self.buf).await, Ok(n) if n > 0)
    }

    /// Exactly `n` raw bytes (for the one-byte answer to SSLRequest); None if closed first.
    pub async fn recv_bytes(&mut self, n: usize) -> Option<Vec<u8>> {
        with_deadline("raw bytes", async {
            while self.buf.len() < n {
                if !self.fill().await {
                    return None;
                }
            }
            Some(self.buf.split_to(n).to_vec())
        })
        .await
    }

    /// The next whole backend message; None at end of stream, leaving the bytes of an
    /// unfinished message in `buf` (`unfinished` says how many). This is the one place
    /// messages are split.
    pub async fn next_message(&mut self) -> Option<Backend> {
        with_deadline("backend message", async {
            loop {
                if self.buf.len() >= 5 {
                    let len = i32::from_be_bytes(self.buf[1..5].try_into().unwrap()) as usize;
                    if self.buf.len() > len {
                        let tag = self.buf[0];
                        self.buf.advance(5);
                        let body = self.buf.split_to(len - 4).to_vec();
                        return Some(Backend { tag, body });
                    }
                }
                if !self.fill().await {
                    return None;
                }
            }
        })
        .await
    }

    /// The next backend message, or None once the peer has closed the connection.
    pub async fn try_recv(&mut self) -> Option<Backend> {
        self.next_message().await
    }

    /// Every byte until the peer closes, unsplit (what follows a message cut short).
    pub async fn recv_to_end(&mut self) -> Vec<u8> {
        with_deadline("end of stream", async { while self.fill().await {} }).await;
        self.buf.split().to_vec()
    }

    /// Bytes received after the last whole message (a message cut short by a closed peer).
    pub fn unfinished(&self) -> usize {
        self.buf.len()
    }

    /// The next backend message; panics on end of stream.
    pub async fn recv(&mut self) -> Backend {
        match self.next_message().await {
            Some(m) => m,
            None => panic!("the peer closed the connection while a message was expected"),
        }
    }

    /// Messages up to and including the next ReadyForQuery.
    pub async fn recv_until_ready(&mut self) -> Vec<Backend> {
        let mut msgs = Vec::new();
        loop {
            let m = self.recv().await;
            let done = m.tag == b'Z';
            msgs.push(m);
            if done {
                return msgs;
            }
        }
    }

    /// `n` messages exactly.
    pub async fn recv_n(&mut self, n: usize) -> Vec<Backend> {
        let mut msgs = Vec::with_capacity(n);
        for _ in 0..n {
            msgs.push(self.recv().await);
        }
        msgs
    }

    /// Every message until the peer closes the connection, which must not be mid-message.
    pub async fn recv_until_closed(&mut self) -> Vec<Backend> {
        let mut msgs = Vec::new();
        while let Some(m) = self.next_message().await {
            msgs.push(m);
        }
        assert!(
            self.buf.is_empty(),
            "connection closed inside a message: {:?}",
            &self.buf[..]
        );
        msgs
    }

    /// Waits for the peer to close the connection; true if it did so with no bytes left.
    pub async fn closed_cleanly(&mut self) -> bool {
        match self.next_message().await {
            None => self.buf.is_empty(),
            Some(m) => panic!("expected end of stream, got {m:?}"),
        }
    }

    /// A simple Query and its replies through ReadyForQuery.
    pub async fn query(&mut self, sql: &str) -> Vec<Backend> {
        self.send(Frontend::new().query(sql)).await;
        self.recv_until_ready().await
    }

    /// The first value of the first DataRow of a simple query.
    pub async fn query_value(&mut self, sql: &str) -> String {
        let msgs = self.query(sql).await;
        match msgs.iter().find(|m| m.tag == b'D') {
            Some(row) => row.value(),
            None => panic!("{sql}: no row in {:?}", tags(&msgs)),
        }
    }
}

/// Sends a 16-byte CancelRequest to the pooler on a fresh connection and waits until the
/// pooler closes it (it has then done whatever it will do with the request).
pub async fn send_cancel_request(p: &Pooler, process_id: i32, secret: i32) {
    let mut c = RawClient::open(p.host(), p.port()).await;
    let mut out = BytesMut::new();
    frontend::cancel_request(process_id, secret, &mut out);
    c.send_bytes(&out).await;
    let reply = c.recv_until_closed().await;
    assert!(reply.is_empty(), "a CancelRequest gets no reply: {reply:?}");
}

/// One step of a scripted conversation (`play`): the same script can be played straight to
/// Postgres and through pgsluice, and the replies compared with `assert_same_replies`.
pub enum Step {
    Send(Frontend),
    /// Read exactly this many messages: proves they came without anything more being sent.
    Expect(usize),
    /// Read through the next ReadyForQuery.
    UntilReady,
}

/// Plays `script` on `c`; returns every message read, in order.
pub async fn play(c: &mut RawClient, script: &[Step]) -> Vec<Backend> {
    let mut got = Vec::new();
    for step in script {
        match step {
            Step::Send(batch) => c.send(batch.clone()).await,
            Step::Expect(n) => got.extend(c.recv_n(*n).await),
            Step::UntilReady => got.extend(c.recv_until_ready().await),
        }
    }
    got
}

impl RawClient {
    /// Logs in straight to Postgres (no pooler), for the reference run of a script.
    pub async fn connect_direct(
        pg: &super::pg::PgCluster,
        user: &str,
        password: &str,
        params: &[(&str, &str)],
    ) -> Self {
        let mut c = Self::open(pg.host(), pg.port()).await;
        if let Err(e) = c.login(user, password, params).await {
            panic!("direct raw login refused: {:?}", e.fields());
        }
        c
    }
}

/// Asserts that `got` (through pgsluice) is `expected` (straight from Postgres): the same
/// messages in the same order, byte for byte. `context` goes into the panic (a pooler log).
pub fn assert_same_replies(got: &[Backend], expected: &[Backend], context: &str) {
    assert_eq!(
        tags(got),
        tags(expected),
        "message order differs\ngot:      {got:?}\nexpected: {expected:?}\n{context}"
    );
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert_eq!(g, e, "message {i} differs\n{context}");
    }
}

//! A raw wire-protocol client for tests that must see the exact backend messages a client gets
//! (tags, order, bodies) — what tokio-postgres hides. Frontend messages are encoded with
//! postgres-protocol (`Frontend` batches them into one write); backend messages are split by
//! tag + length only, so whatever pgsluice forwards is what the test sees, byte for byte.
//! Invariant: every read has a generous deadline and panics naming what it waited for.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::pgsetup::TEST_DB;
use super::pooler::Pooler;

/// How long any single backend message may take; generous, never asserted on.
const READ_DEADLINE: Duration = Duration::from_secs(30);

/// One backend message: its tag and the body after the length word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    pub tag: u8,
    pub body: Bytes,
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

/// The tags of `msgs` as a string ("12DCZ"), for readable order assertions.
pub fn tags(msgs: &[Backend]) -> String {
    msgs.iter().map(|m| m.tag as char).collect()
}

/// Frontend messages batched into one write, in the order they are added.
#[derive(Clone, Default)]
pub struct Frontend(BytesMut);

impl Frontend {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn query(mut self, sql: &str) -> Self {
        frontend::query(sql, &mut self.0).unwrap();
        self
    }
    pub fn parse(mut self, name: &str, sql: &str) -> Self {
        frontend::parse(name, sql, [], &mut self.0).unwrap();
        self
    }
    /// Bind with parameters in text format (None = NULL) and text results.
    pub fn bind(mut self, portal: &str, statement: &str, params: &[Option<&str>]) -> Self {
        let values = params.iter().copied();
        let serializer = |v: Option<&str>, buf: &mut BytesMut| match v {
            Some(s) => {
                buf.put_slice(s.as_bytes());
                Ok(postgres_protocol::IsNull::No)
            }
            None => Ok(postgres_protocol::IsNull::Yes),
        };
        if frontend::bind(portal, statement, [0], values, serializer, [0], &mut self.0).is_err() {
            panic!("encode Bind");
        }
        self
    }
    pub fn describe_portal(mut self, name: &str) -> Self {
        frontend::describe(b'P', name, &mut self.0).unwrap();
        self
    }
    pub fn close_statement(mut self, name: &str) -> Self {
        frontend::close(b'S', name, &mut self.0).unwrap();
        self
    }
    pub fn close_portal(mut self, name: &str) -> Self {
        frontend::close(b'P', name, &mut self.0).unwrap();
        self
    }
    pub fn describe_statement(mut self, name: &str) -> Self {
        frontend::describe(b'S', name, &mut self.0).unwrap();
        self
    }
    pub fn execute(mut self, portal: &str, max_rows: i32) -> Self {
        frontend::execute(portal, max_rows, &mut self.0).unwrap();
        self
    }
    pub fn flush(mut self) -> Self {
        frontend::flush(&mut self.0);
        self
    }
    pub fn sync(mut self) -> Self {
        frontend::sync(&mut self.0);
        self
    }
    pub fn copy_data(mut self, data: &[u8]) -> Self {
        frontend::CopyData::new(data).unwrap().write(&mut self.0);
        self
    }
    pub fn copy_done(mut self) -> Self {
        frontend::copy_done(&mut self.0);
        self
    }
    pub fn copy_fail(mut self, message: &str) -> Self {
        frontend::copy_fail(message, &mut self.0).unwrap();
        self
    }
    pub fn terminate(mut self) -> Self {
        frontend::terminate(&mut self.0);
        self
    }
    /// FunctionCall ('F', PostgreSQL docs "Function Call" sub-protocol) with int4 arguments
    /// and result, all in binary format; postgres-protocol has no encoder for it.
    pub fn function_call_int4(mut self, function_oid: u32, args: &[i32]) -> Self {
        let mut body = BytesMut::new();
        body.put_u32(function_oid);
        body.put_i16(1); // one format code for all arguments: binary
        body.put_i16(1);
        body.put_i16(args.len() as i16);
        for arg in args {
            body.put_i32(4);
            body.put_i32(*arg);
        }
        body.put_i16(1); // result format: binary
        self.0.put_u8(b'F');
        self.0.put_i32(body.len() as i32 + 4);
        self.0.put_slice(&body);
        self
    }
}

/// A logged-in raw connection.
pub struct RawClient {
    stream: TcpStream,
    buf: BytesMut,
    /// Everything between AuthenticationOk and the first ReadyForQuery (ParameterStatus...).
    pub startup: Vec<Backend>,
    /// The BackendKeyData the client was given: (process id, secret key).
    pub key: (i32, i32),
}

impl RawClient {
    /// Logs in to `p` as `user` on testdb with extra startup `params`; panics on refusal.
    pub async fn connect(p: &Pooler, user: &str, password: &str, params: &[(&str, &str)]) -> Self {
        match Self::try_connect(p.host(), p.port(), user, password, params).await {
            Ok(c) => c,
            Err(e) => panic!("raw login refused: {:?}\n{}", e.fields(), p.log()),
        }
    }

    /// Logs in to whatever listens on `host:port` (the pooler, or Postgres itself for a
    /// reference run); Err is the ErrorResponse sent instead. Trust, cleartext and md5
    /// password requests are answered.
    pub async fn try_connect(
        host: &str,
        port: u16,
        user: &str,
        password: &str,
        params: &[(&str, &str)],
    ) -> Result<Self, Backend> {
        let stream = TcpStream::connect((host, port))
            .await
            .expect("connect to server");
        stream.set_nodelay(true).unwrap();
        let mut c = RawClient {
            stream,
            buf: BytesMut::new(),
            startup: Vec::new(),
            key: (0, 0),
        };
        let mut all = vec![("user", user), ("database", TEST_DB)];
        all.extend_from_slice(params);
        let mut out = BytesMut::new();
        frontend::startup_message(all, &mut out).unwrap();
        c.send_bytes(&out).await;
        loop {
            let m = c.recv().await;
            match m.tag {
                b'R' => c.answer_auth(&m, user, password).await,
                b'E' => return Err(m),
                b'K' => {
                    let mut b = &m.body[..];
                    c.key = (b.get_i32(), b.get_i32());
                }
                b'Z' => return Ok(c),
                _ => c.startup.push(m),
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
        self.send_bytes(&batch.0).await;
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write to pooler");
    }

    /// The next backend message; panics on end of stream or after the deadline.
    pub async fn recv(&mut self) -> Backend {
        match tokio::time::timeout(READ_DEADLINE, self.next()).await {
            Ok(Some(m)) => m,
            Ok(None) => panic!("pooler closed the connection while a message was expected"),
            Err(_) => panic!("no backend message within {READ_DEADLINE:?}"),
        }
    }

    /// Next message, None at end of stream.
    async fn next(&mut self) -> Option<Backend> {
        loop {
            if self.buf.len() >= 5 {
                let len = i32::from_be_bytes(self.buf[1..5].try_into().unwrap()) as usize;
                if self.buf.len() > len {
                    let mut frame = self.buf.split_to(len + 1);
                    let tag = frame[0];
                    frame.advance(5);
                    return Some(Backend {
                        tag,
                        body: frame.freeze(),
                    });
                }
            }
            if self.stream.read_buf(&mut self.buf).await.ok()? == 0 {
                return None;
            }
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

    /// Waits for the pooler to close the connection; true if it did so with no bytes left.
    pub async fn closed_cleanly(&mut self) -> bool {
        match tokio::time::timeout(READ_DEADLINE, self.next()).await {
            Ok(None) => self.buf.is_empty(),
            Ok(Some(m)) => panic!("expected end of stream, got {m:?}"),
            Err(_) => panic!("connection still open after {READ_DEADLINE:?}"),
        }
    }
}

/// Sends a 16-byte CancelRequest to the pooler on a fresh connection and waits until the
/// pooler closes it (it has then done whatever it will do with the request).
pub async fn send_cancel_request(p: &Pooler, process_id: i32, secret: i32) {
    let mut stream = TcpStream::connect((p.host(), p.port()))
        .await
        .expect("connect to pooler");
    let mut out = BytesMut::new();
    frontend::cancel_request(process_id, secret, &mut out);
    stream.write_all(&out).await.expect("write CancelRequest");
    let mut sink = Vec::new();
    let read = tokio::time::timeout(READ_DEADLINE, stream.read_to_end(&mut sink)).await;
    assert!(read.is_ok(), "pooler kept the cancel connection open");
    assert!(sink.is_empty(), "a CancelRequest gets no reply: {sink:?}");
}

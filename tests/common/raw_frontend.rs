//! The frontend half of the raw wire-protocol client (`raw.rs`): messages a test sends, either
//! well-formed and batched (`Frontend`, encoded with postgres-protocol) or startup-shaped bytes
//! no driver would write (`raw_startup`). Re-exported by `raw.rs`; tests import from there.
//! Invariant: nothing here validates — tests that probe the pooler's edges rely on that.

use bytes::{BufMut, BytesMut};
use postgres_protocol::message::frontend;

/// Frontend messages batched into one write, in the order they are added.
#[derive(Clone, Default)]
pub struct Frontend(BytesMut);

impl Frontend {
    pub fn new() -> Self {
        Self::default()
    }
    /// The encoded batch, as `RawClient::send_bytes` takes it.
    pub fn bytes(&self) -> &[u8] {
        &self.0
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

/// A startup-shaped packet by hand: length, the 32-bit code or version, then `body` as is
/// (PostgreSQL docs "StartupMessage", "SSLRequest", "CancelRequest" share this layout).
pub fn raw_startup(version: u32, body: &[u8]) -> Vec<u8> {
    let mut out = ((8 + body.len()) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(body);
    out
}

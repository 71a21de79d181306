//! The relay loop for one attached client and server: both directions polled in one future
//! (like copy_bidirectional, so a large request and a large reply never deadlock on full
//! buffers), messages forwarded byte-exact, the tracker updated from tags alone, and the
//! server's ParameterStatus values remembered. All state lives in the pumps and tracker, so
//! the future can be dropped and started again (on a shutdown notice) without losing bytes.

use std::task::Poll;

use crate::net::pump::{Paused, Pump, PumpError, Verdict};
use crate::net::BoxStream;
use crate::protocol::tracker::{backend_must_buffer, frontend_must_buffer, Tracker};
use crate::protocol::ProtocolError;
use crate::server::{parse_parameter_status, ServerConn};

/// Why the relay returned.
#[derive(Debug)]
pub(crate) enum RelayEnd {
    /// The client sent Terminate.
    ClientTerminated,
    /// The client closed its socket or it failed.
    ClientGone,
    /// The client broke the protocol (e.g. a message over max_packet_size).
    ClientProtocol(ProtocolError),
    /// The server closed or failed; it cannot be reused.
    ServerGone(String),
    /// `stop_at_idle` was asked and the server reached an idle point.
    Idle,
}

/// Relays until something ends it. With `stop_at_idle`, returns `Idle` as soon as Postgres
/// owes nothing and no transaction is open (now, or after the reply in flight).
pub(crate) async fn relay(
    client: &mut BoxStream,
    client_pump: &mut Pump,
    server: &mut ServerConn,
    tracker: &mut Tracker,
    stop_at_idle: bool,
) -> RelayEnd {
    if stop_at_idle && tracker.is_idle() && client_pump.is_empty() && server.inbound.is_empty() {
        return RelayEnd::Idle;
    }
    let ServerConn {
        stream: server_stream,
        inbound: server_pump,
        params,
        ..
    } = server;
    std::future::poll_fn(|cx| {
        let mut frontend = |tag: u8, _body: Option<&[u8]>| {
            if tag == b'X' {
                return Verdict::StopBefore;
            }
            tracker.frontend(tag);
            Verdict::Forward
        };
        match client_pump.poll_pump(
            cx,
            client,
            server_stream,
            frontend_must_buffer,
            &mut frontend,
        ) {
            Poll::Ready(Ok(Paused::Stopped)) => return Poll::Ready(RelayEnd::ClientTerminated),
            Poll::Ready(Ok(Paused::Eof)) | Poll::Ready(Err(PumpError::Read(_))) => {
                return Poll::Ready(RelayEnd::ClientGone)
            }
            Poll::Ready(Err(PumpError::Write(e))) => {
                return Poll::Ready(RelayEnd::ServerGone(e.to_string()))
            }
            Poll::Ready(Err(PumpError::Protocol(e))) => {
                return Poll::Ready(RelayEnd::ClientProtocol(e))
            }
            Poll::Pending => {}
        }
        let mut backend = |tag: u8, body: Option<&[u8]>| {
            if let (b'S', Some(b)) = (tag, body) {
                if let Some((name, value)) = parse_parameter_status(b) {
                    params.insert(name.to_string(), value.to_string());
                }
            }
            tracker.backend(tag, body);
            if stop_at_idle && tag == b'Z' && tracker.is_idle() {
                Verdict::ForwardThenStop
            } else {
                Verdict::Forward
            }
        };
        match server_pump.poll_pump(cx, server_stream, client, backend_must_buffer, &mut backend) {
            Poll::Ready(Ok(Paused::Stopped)) => Poll::Ready(RelayEnd::Idle),
            Poll::Ready(Ok(Paused::Eof)) => {
                Poll::Ready(RelayEnd::ServerGone("server closed the connection".into()))
            }
            Poll::Ready(Err(PumpError::Read(e))) => {
                Poll::Ready(RelayEnd::ServerGone(e.to_string()))
            }
            Poll::Ready(Err(PumpError::Write(_))) => Poll::Ready(RelayEnd::ClientGone),
            Poll::Ready(Err(PumpError::Protocol(e))) => {
                Poll::Ready(RelayEnd::ServerGone(e.to_string()))
            }
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

//! Asking Postgres for TLS before the StartupMessage (PostgreSQL docs, "SSL Session
//! Encryption"): an SSLRequest per server_tls_sslmode, then the handshake on 'S'; on 'N' plain
//! text goes on only below require. Unix sockets never use TLS, as with PgBouncer. Called by
//! `login` inside server_connect_timeout.

use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::ServerError;
use crate::net::{Address, BoxStream};
use crate::protocol::tags::ssl_answer;
use crate::tls::{ServerTls, ServerTlsInfo};

/// Returns the stream to log in over (encrypted or not) and its TLS facts.
pub(super) async fn negotiate(
    mut stream: BoxStream,
    address: &Address,
    tls: &ServerTls,
) -> Result<(BoxStream, Option<ServerTlsInfo>), ServerError> {
    let Address::Tcp { host, .. } = address else {
        return Ok((stream, None));
    };
    if !tls.requests_tls() {
        return Ok((stream, None));
    }
    let mut out = bytes::BytesMut::new();
    frontend::ssl_request(&mut out);
    stream.write_all(&out).await?;
    // Exactly one byte: anything the server sent after it, before the handshake, would be a
    // man-in-the-middle's injection (CVE-2021-23222), and the handshake would refuse it.
    let answer = match stream.read_u8().await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(ServerError::Closed),
        Err(e) => return Err(e.into()),
    };
    match answer {
        ssl_answer::WILLING => {
            let (stream, info) = tls.connect(stream, host).await.map_err(ServerError::Tls)?;
            Ok((stream, Some(info)))
        }
        ssl_answer::UNWILLING if tls.required() => {
            Err(ServerError::TlsRefused(tls.mode.to_string()))
        }
        ssl_answer::UNWILLING => Ok((stream, None)),
        other => Err(ServerError::Unexpected(format!(
            "unexpected reply to SSLRequest: byte 0x{other:02x}"
        ))),
    }
}

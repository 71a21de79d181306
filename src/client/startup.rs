//! The first packets of a client connection: an SSLRequest is answered 'S' and the TLS
//! handshake run on the same socket when client_tls_sslmode allows TLS, 'N' otherwise (and
//! always over Unix sockets, as PgBouncer); a TLS ClientHello as the very first bytes is
//! PostgreSQL 17's direct TLS negotiation (ALPN "postgresql" required). GSSENCRequest gets 'N'.
//! A CancelRequest is handed back to the caller, a StartupMessage yields the parameters, and
//! under require or stricter a StartupMessage without TLS is refused with FATAL 28000.
//! Bad lengths are refused from the 4-byte header, before anything large is buffered.

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::ClientError;
use crate::config::SslMode;
use crate::net::prefixed::Prefixed;
use crate::net::BoxStream;
use crate::protocol::sqlstate;
use crate::protocol::startup::{parse_startup, StartupPacket};
use crate::tls::{ClientTls, TlsPeer};

/// The first byte of a TLS record carrying a handshake message (RFC 8446 section 5.1). No
/// startup packet can begin with it: its length would exceed 10000 bytes by far.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What a new connection asked for.
pub(crate) enum FirstPacket {
    Startup {
        minor: u16,
        params: Vec<(String, String)>,
    },
    Cancel {
        process_id: u32,
        secret_key: u32,
    },
}

/// How the connection arrived, for the TLS decisions.
pub(crate) struct ClientTransport<'a> {
    pub(crate) tls: &'a ClientTls,
    /// Unix-socket connections never use TLS and are not refused for lacking it.
    pub(crate) unix: bool,
}

/// Reads packets until a StartupMessage or CancelRequest; leftover bytes stay in `buf`. When
/// TLS is negotiated, `stream` is replaced by the encrypted stream and its facts returned.
pub(crate) async fn read_opening(
    stream: &mut BoxStream,
    buf: &mut BytesMut,
    arrival: &ClientTransport<'_>,
) -> Result<(FirstPacket, Option<TlsPeer>), ClientError> {
    let mut peer: Option<TlsPeer> = None;
    loop {
        if peer.is_none() && buf.first() == Some(&TLS_HANDSHAKE_RECORD) {
            peer = Some(direct_tls(stream, buf, arrival).await?);
            continue;
        }
        match parse_startup(buf)? {
            Some((packet, used)) => {
                let _ = buf.split_to(used);
                match packet {
                    StartupPacket::SslRequest | StartupPacket::GssEncRequest => {
                        // Anything sent before our answer would be a man-in-the-middle's
                        // injection (CVE-2021-23222 class): refuse it.
                        if !buf.is_empty() {
                            return Err(ClientError::Violation(
                                "unexpected data after SSL or GSS encryption request".into(),
                            ));
                        }
                        if peer.is_some() {
                            return Err(ClientError::Violation(
                                "SSL or GSS encryption request on an encrypted connection".into(),
                            ));
                        }
                        let tls_now = matches!(packet, StartupPacket::SslRequest)
                            && !arrival.unix
                            && arrival.tls.enabled();
                        if !tls_now {
                            stream.write_all(b"N").await?;
                            continue;
                        }
                        stream.write_all(b"S").await?;
                        peer = Some(handshake(stream, None, arrival.tls).await?);
                    }
                    StartupPacket::CancelRequest {
                        process_id,
                        secret_key,
                    } => {
                        let opening = FirstPacket::Cancel {
                            process_id,
                            secret_key,
                        };
                        return Ok((opening, peer));
                    }
                    StartupPacket::Startup { minor, params, .. } => {
                        if peer.is_none() && !arrival.unix && arrival.tls.mode >= SslMode::Require {
                            return Err(ssl_required(arrival.tls.mode));
                        }
                        return Ok((FirstPacket::Startup { minor, params }, peer));
                    }
                }
            }
            None => {
                if stream.read_buf(buf).await? == 0 {
                    return Err(ClientError::Gone);
                }
            }
        }
    }
}

/// PostgreSQL 17 direct TLS: the ClientHello came first. Only over TCP with TLS enabled, and
/// the client must have asked for ALPN "postgresql" (PostgreSQL docs, "Direct SSL"), which
/// keeps a TLS client of some other protocol from being taken for a PostgreSQL client.
async fn direct_tls(
    stream: &mut BoxStream,
    buf: &mut BytesMut,
    arrival: &ClientTransport<'_>,
) -> Result<TlsPeer, ClientError> {
    if arrival.unix || !arrival.tls.enabled() {
        return Err(ClientError::DirectTlsRefused {
            mode: arrival.tls.mode.to_string(),
            unix: arrival.unix,
        });
    }
    let seen = buf.split().freeze();
    let peer = handshake(stream, Some(seen), arrival.tls).await?;
    if !peer.alpn_postgresql {
        // The stream is encrypted now, so this FATAL reaches the client readably.
        return Err(ClientError::Violation(
            "direct TLS connection without ALPN protocol \"postgresql\"".into(),
        ));
    }
    Ok(peer)
}

/// Runs the TLS handshake on `stream` (replaying `seen` first) and puts the encrypted stream
/// in its place.
async fn handshake(
    stream: &mut BoxStream,
    seen: Option<bytes::Bytes>,
    tls: &ClientTls,
) -> Result<TlsPeer, ClientError> {
    // A placeholder while the socket is lent to the handshake; never read or written.
    let plain = std::mem::replace(stream, Box::new(tokio::io::empty()));
    let result = match seen {
        Some(seen) => tls.accept(Prefixed::new(seen, plain)).await,
        None => tls.accept(plain).await,
    };
    let (encrypted, peer) = result.map_err(ClientError::Tls)?;
    *stream = encrypted;
    Ok(peer)
}

/// PgBouncer answers "SSL required"; PostgreSQL's hostssl refusal is 28000 too.
fn ssl_required(mode: SslMode) -> ClientError {
    ClientError::Rejected {
        code: sqlstate::INVALID_AUTHORIZATION_SPECIFICATION.into(),
        message: format!(
            "SSL required: client_tls_sslmode = \"{mode}\" refuses unencrypted connections; \
             connect with sslmode=require or stricter"
        ),
    }
}

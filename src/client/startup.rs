//! The first packets of a client connection: SSLRequest and GSSENCRequest are declined with
//! 'N' (PostgreSQL docs "SSL Session Encryption": the client may then go on in plain text),
//! a CancelRequest is handed back to the caller, and a StartupMessage yields the parameters.
//! Bad lengths are refused from the 4-byte header, before anything large is buffered.

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::ClientError;
use crate::net::BoxStream;
use crate::protocol::startup::{parse_startup, StartupPacket};

/// What a new connection asked for.
pub(crate) enum Opening {
    Startup {
        minor: u16,
        params: Vec<(String, String)>,
    },
    Cancel {
        process_id: u32,
        secret_key: u32,
    },
}

/// Reads packets until a StartupMessage or CancelRequest; leftover bytes stay in `buf`.
pub(crate) async fn read_opening(
    stream: &mut BoxStream,
    buf: &mut BytesMut,
) -> Result<Opening, ClientError> {
    loop {
        match parse_startup(buf)? {
            Some((packet, used)) => {
                let _ = buf.split_to(used);
                match packet {
                    StartupPacket::SslRequest | StartupPacket::GssEncRequest => {
                        // Anything sent before our answer would be a man-in-the-middle's
                        // injection (CVE-2021-23222 class): refuse it.
                        if !buf.is_empty() {
                            return Err(ClientError::Protocol(
                                "unexpected data after SSL or GSS encryption request".into(),
                            ));
                        }
                        stream.write_all(b"N").await?;
                    }
                    StartupPacket::CancelRequest {
                        process_id,
                        secret_key,
                    } => {
                        return Ok(Opening::Cancel {
                            process_id,
                            secret_key,
                        })
                    }
                    StartupPacket::Startup { minor, params, .. } => {
                        return Ok(Opening::Startup { minor, params })
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

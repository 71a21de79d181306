//! Frontend (client → server) messages that pgsluice reads during login: the bodies of the
//! 'p' messages (PasswordMessage, SASLInitialResponse, SASLResponse; "Message Formats").
//! Called by auth/ with a body framed by codec::FrameCodec. Parsers borrow from the body and
//! reject trailing bytes, as PostgreSQL does (pq_getmsgend).
//!
//! Messages pgsluice sends towards Postgres itself (StartupMessage, PasswordMessage,
//! SASLInitialResponse, SASLResponse, Query, Sync, Terminate, CancelRequest) are written with
//! `postgres_protocol::message::frontend`; no encoder here duplicates that crate.
//!
//! SASLResponse has no parser: its body is the raw SASL data (client-final-message for SCRAM),
//! so the caller uses `Frame::body` as is.

use super::tags::frontend_tag;
use super::ProtocolError;

/// The tag shared by PasswordMessage, SASLInitialResponse and SASLResponse; which one it is
/// follows from the authentication request the client is answering.
pub const PASSWORD_MESSAGE_TAG: u8 = frontend_tag::PASSWORD_MESSAGE;

/// PasswordMessage body: the password (cleartext, or `md5` + hex digest) as a String.
/// Returns it without the NUL. PostgreSQL requires the NUL to be the last byte
/// ("invalid password packet size").
pub fn password_message(body: &[u8]) -> Result<&[u8], ProtocolError> {
    match body.split_last() {
        Some((0, password)) if !password.contains(&0) => Ok(password),
        _ => Err(ProtocolError::malformed("invalid password packet size")),
    }
}

/// SASLInitialResponse body, borrowed from the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaslInitialResponse<'a> {
    /// The mechanism the client chose, e.g. `SCRAM-SHA-256`.
    pub mechanism: &'a str,
    /// The initial response (client-first-message); empty when the client sent length -1.
    pub data: &'a [u8],
}

/// Parses a SASLInitialResponse body: String mechanism, Int32 length of the data (-1 for
/// none), then the data, which must end the message.
pub fn sasl_initial_response(body: &[u8]) -> Result<SaslInitialResponse<'_>, ProtocolError> {
    let nul = body
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| ProtocolError::malformed("SASL mechanism name is not terminated"))?;
    let mechanism = std::str::from_utf8(&body[..nul])
        .map_err(|_| ProtocolError::malformed("SASL mechanism name is not valid UTF-8"))?;
    let rest = &body[nul + 1..];
    let (len_bytes, data) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| ProtocolError::malformed("SASLInitialResponse is truncated"))?;
    let len = i32::from_be_bytes(*len_bytes);
    let expected = match len {
        -1 => 0,
        n => usize::try_from(n)
            .map_err(|_| ProtocolError::malformed("invalid SASL initial response length"))?,
    };
    if data.len() != expected {
        return Err(ProtocolError::malformed(
            "SASL initial response length does not match the message length",
        ));
    }
    Ok(SaslInitialResponse { mechanism, data })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use postgres_protocol::message::frontend;

    /// Encodes with postgres-protocol (a real client encoder) and strips tag and length.
    fn body_of(write: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
        let mut buf = BytesMut::new();
        write(&mut buf);
        assert_eq!(buf[0], PASSWORD_MESSAGE_TAG);
        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        assert_eq!(len + 1, buf.len());
        buf[5..].to_vec()
    }

    #[test]
    fn password_from_real_encoder() {
        let body = body_of(|b| frontend::password_message(b"s3cret", b).unwrap());
        assert_eq!(password_message(&body).unwrap(), b"s3cret");
        assert_eq!(password_message(b"\0").unwrap(), b"");
    }

    #[test]
    fn password_must_end_with_its_only_nul() {
        for bad in [&b""[..], b"abc", b"ab\0c\0", b"abc\0\0"] {
            let err = password_message(bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                "invalid message format: invalid password packet size"
            );
        }
    }

    #[test]
    fn sasl_initial_response_from_real_encoder() {
        let data = b"n,,n=,r=rOprNGfwEbeRWgbNEkqO";
        let body = body_of(|b| frontend::sasl_initial_response("SCRAM-SHA-256", data, b).unwrap());
        let parsed = sasl_initial_response(&body).unwrap();
        assert_eq!(parsed.mechanism, "SCRAM-SHA-256");
        assert_eq!(parsed.data, data);
    }

    #[test]
    fn sasl_initial_response_without_data() {
        let parsed = sasl_initial_response(b"SCRAM-SHA-256\0\xff\xff\xff\xff").unwrap();
        assert_eq!(parsed.mechanism, "SCRAM-SHA-256");
        assert!(parsed.data.is_empty());
        let parsed = sasl_initial_response(b"M\0\0\0\0\0").unwrap();
        assert!(parsed.data.is_empty());
    }

    #[test]
    fn sasl_initial_response_rejects_bad_layouts() {
        let cases: [&[u8]; 7] = [
            b"",
            b"SCRAM-SHA-256",                    // no NUL
            b"SCRAM-SHA-256\0\0\0",              // truncated length
            b"SCRAM-SHA-256\0\0\0\0\x05abc",     // data shorter than length
            b"SCRAM-SHA-256\0\0\0\0\x01ab",      // trailing bytes
            b"SCRAM-SHA-256\0\xff\xff\xff\xfex", // length below -1
            b"\xff\0\0\0\0\0",                   // mechanism not UTF-8
        ];
        for body in cases {
            assert!(
                matches!(
                    sasl_initial_response(body),
                    Err(ProtocolError::Malformed { .. })
                ),
                "accepted {body:?}"
            );
        }
        let trailing_after_none = b"M\0\xff\xff\xff\xffx";
        assert!(sasl_initial_response(trailing_after_none).is_err());
    }
}

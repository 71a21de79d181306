//! NotificationResponse ('A'): what LISTEN delivers (PostgreSQL docs, "Message Formats"),
//! read for its channel so pgsluice can fan one server's notifications out to the clients
//! listening, and written back byte for byte, so sender pid, channel and payload reach each
//! client exactly as Postgres sent them. Also the WARNING notice that tells a client
//! notifications may have been lost.

use bytes::{BufMut, Bytes, BytesMut};

use super::tags::{backend_tag, error_field};

/// The fields of a NotificationResponse body (after tag and length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notification<'a> {
    /// Process id of the notifying backend.
    pub pid: u32,
    pub channel: &'a str,
    /// In the client encoding, which need not be UTF-8 (SQL_ASCII): bytes, passed on as sent.
    pub payload: &'a [u8],
}

/// Reads a NotificationResponse body; None when it is malformed or its channel name is not
/// UTF-8 (a SQL_ASCII database can have such names; pgsluice cannot match them with the names
/// pg_listening_channels() reports, so it does not route them).
pub fn parse(body: &[u8]) -> Option<Notification<'_>> {
    let pid = u32::from_be_bytes(body.get(..4)?.try_into().ok()?);
    let rest = &body[4..];
    let nul = rest.iter().position(|b| *b == 0)?;
    let channel = std::str::from_utf8(&rest[..nul]).ok()?;
    let rest = &rest[nul + 1..];
    let nul = rest.iter().position(|b| *b == 0)?;
    let payload = &rest[..nul];
    Some(Notification {
        pid,
        channel,
        payload,
    })
}

/// The whole message again around a body the pump handed over: the frame the client gets.
pub fn frame(body: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(body.len() + 5);
    buf.put_u8(backend_tag::NOTIFICATION_RESPONSE);
    buf.put_u32(u32::try_from(body.len() + 4).expect("notification over 4 GiB"));
    buf.put_slice(body);
    buf.freeze()
}

/// A NotificationResponse as Postgres writes it (for tests and the fuzz target).
pub fn encode(pid: u32, channel: &str, payload: &str) -> Bytes {
    let mut body = BytesMut::new();
    body.put_u32(pid);
    body.put_slice(channel.as_bytes());
    body.put_u8(0);
    body.put_slice(payload.as_bytes());
    body.put_u8(0);
    frame(&body)
}

/// A NoticeResponse with severity WARNING, SQLSTATE `code`, `message` and `detail`: how a
/// client hears of something it could not otherwise see, such as lost notifications.
pub fn warning(code: &str, message: &str, detail: &str) -> Bytes {
    let mut body = BytesMut::new();
    for (kind, value) in [
        (error_field::SEVERITY_LOCALIZED, "WARNING"),
        (error_field::SEVERITY, "WARNING"),
        (error_field::CODE, code),
        (error_field::MESSAGE, message),
        (error_field::DETAIL, detail),
    ] {
        body.put_u8(kind);
        body.extend(value.bytes().filter(|b| *b != 0));
        body.put_u8(0);
    }
    body.put_u8(0);
    let mut buf = BytesMut::with_capacity(body.len() + 5);
    buf.put_u8(backend_tag::NOTICE_RESPONSE);
    buf.put_u32(u32::try_from(body.len() + 4).expect("notice over 4 GiB"));
    buf.put_slice(&body);
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::backend::error_fields;

    #[test]
    fn a_notification_reads_back_as_written() {
        let frame = encode(4242, "orders", "{\"id\": 1}");
        assert_eq!(frame[0], backend_tag::NOTIFICATION_RESPONSE);
        assert_eq!(
            u32::from_be_bytes(frame[1..5].try_into().unwrap()) as usize,
            frame.len() - 1
        );
        let n = parse(&frame[5..]).unwrap();
        assert_eq!(
            (n.pid, n.channel, n.payload),
            (4242, "orders", &b"{\"id\": 1}"[..])
        );
        assert_eq!(super::frame(&frame[5..]), frame);
    }

    #[test]
    fn malformed_bodies_are_refused() {
        assert_eq!(parse(b""), None);
        assert_eq!(parse(b"\0\0\0\x01chan"), None);
        assert_eq!(parse(b"\0\0\0\x01chan\0payload"), None);
        assert!(parse(b"\0\0\0\x01chan\0\0").is_some());
        assert_eq!(parse(b"\0\0\0\x01chan\0\xff\0").unwrap().payload, b"\xff");
        assert_eq!(parse(b"\0\0\0\x01\xffchan\0\0"), None);
    }

    #[test]
    fn the_warning_carries_its_code() {
        let notice = warning("08006", "lost", "why");
        assert_eq!(notice[0], backend_tag::NOTICE_RESPONSE);
        let f = error_fields(&notice[5..]);
        assert_eq!(f.code.as_deref(), Some("08006"));
        assert_eq!(f.severity.as_deref(), Some("WARNING"));
        assert_eq!(f.message.as_deref(), Some("lost"));
    }
}

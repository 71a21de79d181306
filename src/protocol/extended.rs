//! Extended-query messages the relay must understand to give each client its own prepared
//! statement names in transaction mode: the bodies of Parse, Bind, Describe and Close
//! (PostgreSQL docs "Message Formats"), and the messages written in their place.
//! Called by relay/ on whole frames from the scanner. Parsers borrow from the body, never panic
//! and refuse what PostgreSQL refuses (missing NUL, trailing bytes); encoders append whole,
//! well-framed messages.

use bytes::{BufMut, BytesMut};
use postgres_protocol::message::frontend;

use super::tags::{error_field, frontend_tag};
use super::ProtocolError;

pub use super::session_sql::{session_command, SessionCommand};

/// Parse ('P') body, borrowed from the frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseBody<'a> {
    /// Prepared statement name; empty for the unnamed statement.
    pub name: &'a str,
    pub query: &'a str,
    /// Parameter type OIDs as sent; 0 leaves a type for the server to infer.
    pub param_types: Vec<u32>,
}

/// Parses a Parse body: String name, String query, Int16 count, Int32 type OID per parameter.
///
/// PostgreSQL reads the count as an unsigned 16-bit integer (up to 65535), and so do we.
/// Names and query text must be UTF-8 (true with `client_encoding` UTF8, which drivers that
/// prepare statements use); anything else is refused as malformed.
pub fn parse_body(body: &[u8]) -> Result<ParseBody<'_>, ProtocolError> {
    let (name, at) = cstr(body, 0, "Parse statement name")?;
    let (query, at) = cstr(body, at, "Parse query string")?;
    let (count, types) = body[at..]
        .split_first_chunk::<2>()
        .ok_or_else(|| ProtocolError::malformed("Parse message is truncated"))?;
    let count = usize::from(u16::from_be_bytes(*count));
    if types.len() != count * 4 {
        return Err(ProtocolError::malformed(
            "Parse parameter type count does not match the message length",
        ));
    }
    let param_types = types
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok(ParseBody {
        name,
        query,
        param_types,
    })
}

/// The names a Bind ('B') refers to; the parameters after them are left unread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindTarget<'a> {
    /// Destination portal; empty for the unnamed portal.
    pub portal: &'a str,
    /// Source prepared statement; empty for the unnamed statement.
    pub statement: &'a str,
    /// Offset in the body where the parameter format codes start.
    pub rest_offset: usize,
}

/// Reads the portal and statement names at the front of a Bind body. The rest (formats,
/// values, result formats) is not checked: it is forwarded as is and PostgreSQL validates it.
pub fn bind_target(body: &[u8]) -> Result<BindTarget<'_>, ProtocolError> {
    let (portal, at) = cstr(body, 0, "Bind portal name")?;
    let (statement, rest_offset) = cstr(body, at, "Bind statement name")?;
    Ok(BindTarget {
        portal,
        statement,
        rest_offset,
    })
}

/// Describe ('D') and Close ('C') bodies: Byte1 `S` (statement) or `P` (portal), String name.
pub fn describe_or_close(body: &[u8]) -> Result<(u8, &str), ProtocolError> {
    let (&kind, _) = body
        .split_first()
        .ok_or_else(|| ProtocolError::malformed("Describe/Close message is empty"))?;
    if kind != frontend_tag::TARGET_STATEMENT && kind != frontend_tag::TARGET_PORTAL {
        // PostgreSQL: "invalid DESCRIBE message subtype" / "invalid CLOSE message subtype".
        return Err(ProtocolError::malformed(format!(
            "invalid Describe/Close message subtype {kind}"
        )));
    }
    let (name, end) = cstr(body, 1, "Describe/Close name")?;
    if end != body.len() {
        return Err(ProtocolError::malformed(
            "Describe/Close message has trailing bytes",
        ));
    }
    Ok((kind, name))
}

/// Appends a Parse message.
///
/// # Panics
/// If a string holds a NUL or there are more than 65535 types: impossible for values read by
/// `parse_body` or for names pgsluice makes.
pub fn write_parse(out: &mut BytesMut, name: &str, query: &str, param_types: &[u32]) {
    frontend::parse(name, query, param_types.iter().copied(), out)
        .expect("Parse fields come from a parsed Parse or from pgsluice");
}

/// Appends the Bind whose body is `body` with its statement name replaced by `statement`;
/// portal, formats, values and result formats are copied byte for byte.
///
/// # Panics
/// If `target` was not read from `body` by `bind_target`, or `statement` holds a NUL.
pub fn write_bind_renamed(
    out: &mut BytesMut,
    body: &[u8],
    target: &BindTarget<'_>,
    statement: &str,
) {
    assert!(!statement.contains('\0'), "statement name holds a NUL");
    let rest = &body[target.rest_offset..];
    let len = 4 + target.portal.len() + 1 + statement.len() + 1 + rest.len();
    out.reserve(1 + len);
    out.put_u8(frontend_tag::BIND);
    out.put_u32(u32::try_from(len).expect("Bind over 4 GiB"));
    out.put_slice(target.portal.as_bytes());
    out.put_u8(0);
    out.put_slice(statement.as_bytes());
    out.put_u8(0);
    out.put_slice(rest);
}

/// Appends a Describe of a statement (`b'S'`) or portal (`b'P'`).
///
/// # Panics
/// If `name` holds a NUL.
pub fn write_describe(out: &mut BytesMut, kind: u8, name: &str) {
    frontend::describe(kind, name, out).expect("Describe name holds no NUL");
}

/// Appends a Close of a statement (`b'S'`) or portal (`b'P'`).
///
/// # Panics
/// If `name` holds a NUL.
pub fn write_close(out: &mut BytesMut, kind: u8, name: &str) {
    frontend::close(kind, name, out).expect("Close name holds no NUL");
}

/// Appends a simple Query.
///
/// # Panics
/// If `sql` holds a NUL.
pub fn write_query(out: &mut BytesMut, sql: &str) {
    frontend::query(sql, out).expect("query text holds no NUL");
}

/// Appends ParseComplete ('1'), the reply to a Parse.
pub fn parse_complete(out: &mut BytesMut) {
    out.put_slice(b"1\0\0\0\x04");
}

/// Appends CloseComplete ('3'), the reply to a Close.
pub fn close_complete(out: &mut BytesMut) {
    out.put_slice(b"3\0\0\0\x04");
}

/// Appends the ErrorResponse or NoticeResponse (`tag`) whose body is `body`, with `from`
/// replaced by `to` in its Message ('M') and Detail ('D') fields, so a client reads its own
/// statement name ("prepared statement \"s1\" does not exist") instead of pgsluice's.
///
/// An occurrence counts only as a whole name (no letter, digit, `_` or `$` on either side), so
/// `pgsluice_1` is not replaced inside `pgsluice_12`. Other fields are copied byte for byte.
/// On error (malformed body, NUL in `from` or `to`) `out` is left as it was: forward the
/// original message instead.
pub fn write_error_renamed(
    out: &mut BytesMut,
    tag: u8,
    body: &[u8],
    from: &str,
    to: &str,
) -> Result<(), ProtocolError> {
    if from.contains('\0') || to.contains('\0') {
        return Err(ProtocolError::malformed("statement name holds a NUL"));
    }
    let start = out.len();
    let result = put_error_fields(out, tag, body, from.as_bytes(), to.as_bytes());
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn put_error_fields(
    out: &mut BytesMut,
    tag: u8,
    body: &[u8],
    from: &[u8],
    to: &[u8],
) -> Result<(), ProtocolError> {
    let start = out.len();
    out.reserve(5 + body.len());
    out.put_u8(tag);
    out.put_u32(0);
    let mut rest = body;
    loop {
        let (&kind, after) = rest
            .split_first()
            .ok_or_else(|| ProtocolError::malformed("error fields are not terminated"))?;
        if kind == 0 {
            if !after.is_empty() {
                return Err(ProtocolError::malformed("bytes after the error fields"));
            }
            out.put_u8(0);
            break;
        }
        let nul = after
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| ProtocolError::malformed("error field is not terminated"))?;
        out.put_u8(kind);
        if kind == error_field::MESSAGE || kind == error_field::DETAIL {
            put_renamed(out, &after[..nul], from, to);
        } else {
            out.put_slice(&after[..nul]);
        }
        out.put_u8(0);
        rest = &after[nul + 1..];
    }
    let len = u32::try_from(out.len() - start - 1)
        .map_err(|_| ProtocolError::malformed("error message over 4 GiB"))?;
    out[start + 1..start + 5].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Copies `text`, replacing whole-name occurrences of `from` by `to`.
fn put_renamed(out: &mut BytesMut, text: &[u8], from: &[u8], to: &[u8]) {
    let is_name_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$';
    let mut copied = 0;
    let mut at = 0;
    while !from.is_empty() && at + from.len() <= text.len() {
        let Some(pos) = text[at..].windows(from.len()).position(|w| w == from) else {
            break;
        };
        let (s, e) = (at + pos, at + pos + from.len());
        let whole =
            (s == 0 || !is_name_byte(text[s - 1])) && (e == text.len() || !is_name_byte(text[e]));
        if whole {
            out.put_slice(&text[copied..s]);
            out.put_slice(to);
            copied = e;
            at = e;
        } else {
            at = s + 1;
        }
    }
    out.put_slice(&text[copied..]);
}

/// Reads the NUL-terminated UTF-8 String starting at `at`; returns it and the offset after
/// its NUL.
fn cstr<'a>(body: &'a [u8], at: usize, what: &str) -> Result<(&'a str, usize), ProtocolError> {
    let tail = body.get(at..).unwrap_or_default();
    let nul = tail
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| ProtocolError::malformed(format!("{what} is not terminated")))?;
    let text = std::str::from_utf8(&tail[..nul])
        .map_err(|_| ProtocolError::malformed(format!("{what} is not valid UTF-8")))?;
    Ok((text, at + nul + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use postgres_protocol::message::backend::{ErrorFields, Message};
    use postgres_protocol::IsNull;

    /// Splits one whole frontend message into (tag, body), checking its length word.
    fn split(msg: &[u8]) -> (u8, &[u8]) {
        let len = u32::from_be_bytes([msg[1], msg[2], msg[3], msg[4]]) as usize;
        assert_eq!(len + 1, msg.len(), "length word does not match");
        (msg[0], &msg[5..])
    }

    /// A Bind built by postgres-protocol with text and binary formats, a NULL and results.
    fn real_bind(portal: &str, statement: &str) -> BytesMut {
        let mut buf = BytesMut::new();
        let values: [Option<&[u8]>; 3] = [Some(b"42"), None, Some(b"\0\x01\xff")];
        frontend::bind(
            portal,
            statement,
            [0, 1],
            values,
            |v, buf| match v {
                Some(bytes) => {
                    buf.put_slice(bytes);
                    Ok(IsNull::No)
                }
                None => Ok(IsNull::Yes),
            },
            [1],
            &mut buf,
        )
        .map_err(|_| "bind")
        .unwrap();
        buf
    }

    #[test]
    fn parse_round_trip() {
        let mut out = BytesMut::new();
        write_parse(
            &mut out,
            "s1",
            "select $1::int, $2",
            &[23, 0, 4_000_000_000],
        );
        let (tag, body) = split(&out);
        assert_eq!(tag, b'P');
        let parsed = parse_body(body).unwrap();
        assert_eq!(parsed.name, "s1");
        assert_eq!(parsed.query, "select $1::int, $2");
        assert_eq!(parsed.param_types, vec![23, 0, 4_000_000_000]);

        let mut out = BytesMut::new();
        write_parse(&mut out, "", "", &[]);
        assert_eq!(&out[..], b"P\0\0\0\x08\0\0\0\0");
        let parsed = parse_body(&out[5..]).unwrap();
        assert_eq!((parsed.name, parsed.query), ("", ""));
        assert!(parsed.param_types.is_empty());
    }

    #[test]
    fn parse_refuses_bad_layouts() {
        let cases: [&[u8]; 7] = [
            b"",
            b"s1",                       // name not terminated
            b"s1\0select 1",             // query not terminated
            b"s1\0select 1\0",           // no count
            b"s1\0select 1\0\0\x01\0\0", // count 1, only 2 type bytes
            b"s1\0select 1\0\0\0x",      // trailing byte
            b"\xff\0select 1\0\0\0",     // name not UTF-8
        ];
        for body in cases {
            assert!(
                matches!(parse_body(body), Err(ProtocolError::Malformed { .. })),
                "accepted {body:?}"
            );
        }
        // The count is unsigned 16-bit, as in PostgreSQL's pq_getmsgint(msg, 2).
        let mut body = b"\0q\0\x80\x00".to_vec();
        body.extend(std::iter::repeat_n(0u8, 0x8000 * 4));
        assert_eq!(parse_body(&body).unwrap().param_types.len(), 0x8000);
    }

    #[test]
    fn bind_target_and_renaming_keep_parameters() {
        let original = real_bind("p1", "s1");
        let (tag, body) = split(&original);
        assert_eq!(tag, b'B');
        let target = bind_target(body).unwrap();
        assert_eq!((target.portal, target.statement), ("p1", "s1"));
        assert_eq!(target.rest_offset, 6);

        let mut renamed = BytesMut::from(&b"keep"[..]);
        write_bind_renamed(&mut renamed, body, &target, "pgsluice_12345");
        assert_eq!(&renamed[..4], b"keep");
        assert_eq!(&renamed[4..], &real_bind("p1", "pgsluice_12345")[..]);

        // Renaming to a shorter name (and the unnamed portal) frames correctly too.
        let original = real_bind("", "a_rather_long_client_name");
        let body = split(&original).1;
        let target = bind_target(body).unwrap();
        let mut renamed = BytesMut::new();
        write_bind_renamed(&mut renamed, body, &target, "x");
        assert_eq!(&renamed[..], &real_bind("", "x")[..]);
    }

    #[test]
    fn bind_target_refuses_bad_names() {
        for body in [&b""[..], b"p1", b"p1\0s1", b"p1\0\xc3\0rest"] {
            assert!(bind_target(body).is_err(), "accepted {body:?}");
        }
        let target = bind_target(b"\0\0").unwrap();
        assert_eq!(
            (target.portal, target.statement, target.rest_offset),
            ("", "", 2)
        );
    }

    #[test]
    fn describe_and_close_round_trip() {
        for kind in [b'S', b'P'] {
            let mut out = BytesMut::new();
            write_describe(&mut out, kind, "s1");
            let (tag, body) = split(&out);
            assert_eq!(tag, b'D');
            assert_eq!(describe_or_close(body).unwrap(), (kind, "s1"));

            let mut out = BytesMut::new();
            write_close(&mut out, kind, "");
            let (tag, body) = split(&out);
            assert_eq!(tag, b'C');
            assert_eq!(describe_or_close(body).unwrap(), (kind, ""));
        }
        for body in [&b""[..], b"S", b"Ss1", b"Xs1\0", b"Ss1\0x", b"S\xff\0"] {
            assert!(describe_or_close(body).is_err(), "accepted {body:?}");
        }
    }

    #[test]
    fn query_and_completions_exact_bytes() {
        let mut out = BytesMut::new();
        write_query(&mut out, "DEALLOCATE ALL");
        assert_eq!(&out[..], b"Q\0\0\0\x13DEALLOCATE ALL\0");
        let mut out = BytesMut::new();
        parse_complete(&mut out);
        close_complete(&mut out);
        assert_eq!(&out[..], b"1\0\0\0\x043\0\0\0\x04");
        let mut copy = out.clone();
        assert!(matches!(
            Message::parse(&mut copy).unwrap(),
            Some(Message::ParseComplete)
        ));
        assert!(matches!(
            Message::parse(&mut copy).unwrap(),
            Some(Message::CloseComplete)
        ));
        assert!(copy.is_empty());
    }

    fn fields_of(msg: &BytesMut) -> Vec<(u8, String)> {
        let mut copy = msg.clone();
        let mut out = Vec::new();
        let (error, notice);
        let mut fields: ErrorFields<'_> = match Message::parse(&mut copy).unwrap().unwrap() {
            Message::ErrorResponse(b) => {
                error = b;
                error.fields()
            }
            Message::NoticeResponse(b) => {
                notice = b;
                notice.fields()
            }
            _ => panic!("not an error or notice"),
        };
        assert!(copy.is_empty());
        while let Some(f) = fallible_iterator::FallibleIterator::next(&mut fields).unwrap() {
            out.push((
                f.type_(),
                String::from_utf8(f.value_bytes().to_vec()).unwrap(),
            ));
        }
        out
    }

    #[test]
    fn error_renaming_touches_message_and_detail_only() {
        let body = b"SERROR\0VERROR\0C26000\0Mprepared statement \"pgsluice_1\" does not exist\0\
                     Dpgsluice_1 and pgsluice_12 and xpgsluice_1\0Wpgsluice_1\0\0";
        let mut out = BytesMut::from(&b"ab"[..]);
        write_error_renamed(&mut out, b'E', body, "pgsluice_1", "my stmt").unwrap();
        assert_eq!(&out[..2], b"ab");
        let out = BytesMut::from(&out[2..]);
        assert_eq!(
            fields_of(&out),
            vec![
                (b'S', "ERROR".into()),
                (b'V', "ERROR".into()),
                (b'C', "26000".into()),
                (b'M', "prepared statement \"my stmt\" does not exist".into()),
                (b'D', "my stmt and pgsluice_12 and xpgsluice_1".into()),
                (b'W', "pgsluice_1".into()),
            ]
        );

        // Nothing to replace: byte-identical, for notices too.
        let body = b"SNOTICE\0C00000\0Mhello\0\0";
        let mut out = BytesMut::new();
        write_error_renamed(&mut out, b'N', body, "pgsluice_1", "s").unwrap();
        assert_eq!(&out[5..], &body[..]);
        assert_eq!(fields_of(&out)[2], (b'M', "hello".into()));
    }

    #[test]
    fn error_renaming_refuses_malformed_and_leaves_out_alone() {
        for body in [&b""[..], b"Mx", b"Mx\0", b"Mx\0\0junk"] {
            let mut out = BytesMut::from(&b"xyz"[..]);
            assert!(write_error_renamed(&mut out, b'E', body, "a", "b").is_err());
            assert_eq!(&out[..], b"xyz");
        }
        let mut out = BytesMut::new();
        assert!(write_error_renamed(&mut out, b'E', b"Ma\0\0", "a", "b\0").is_err());
        assert!(out.is_empty());
        write_error_renamed(&mut out, b'E', b"Ma\0\0", "", "b").unwrap();
        assert_eq!(&out[..], b"E\0\0\0\x08Ma\0\0");
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let _ = parse_body(&body);
            let _ = describe_or_close(&body);
            let _ = session_command(&body);
            if let Ok(target) = bind_target(&body) {
                let mut out = BytesMut::new();
                write_bind_renamed(&mut out, &body, &target, "pgsluice_1");
                proptest::prop_assert_eq!(&out[out.len() - (body.len() - target.rest_offset)..], &body[target.rest_offset..]);
            }
            let mut out = BytesMut::new();
            if write_error_renamed(&mut out, b'E', &body, "a", "bb").is_ok() {
                proptest::prop_assert!(Message::parse(&mut out).unwrap().is_some());
                proptest::prop_assert!(out.is_empty());
            }
        }
    }
}

//! Backend (server → client) messages that pgsluice writes as if it were PostgreSQL, appended
//! to a caller's `BytesMut` (PostgreSQL docs, "Message Formats"); plus a tolerant reader of
//! ErrorResponse/NoticeResponse fields for logging what Postgres reports.
//! Called by client/ (login, errors), auth/ (authentication requests) and admin/ (result sets).
//! Invariant: every message written is well framed; a NUL inside a string is dropped, since it
//! would end the C string early and desynchronise the client's parser.

use super::tags::{backend_tag, error_field, tx_status};
use bytes::{BufMut, BytesMut};

/// The column types pgsluice declares in a RowDescription, with their pg_type.dat OIDs and
/// lengths. The admin console mirrors PgBouncer's choice per column, so typed clients
/// (psycopg, pgx) decode numbers as numbers; every value is still sent in text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// `text`, OID 25, variable length.
    Text,
    /// `int4`, OID 23, 4 bytes.
    Int4,
    /// `int8`, OID 20, 8 bytes.
    Int8,
    /// `numeric`, OID 1700, variable length: PgBouncer's type for 64-bit unsigned counters.
    Numeric,
}

impl ColumnType {
    /// The type's OID in pg_type.
    pub fn oid(self) -> u32 {
        match self {
            ColumnType::Text => 25,
            ColumnType::Int4 => 23,
            ColumnType::Int8 => 20,
            ColumnType::Numeric => 1700,
        }
    }

    /// pg_type.typlen: the fixed size in bytes, or -1 for variable-length types.
    pub fn typlen(self) -> i16 {
        match self {
            ColumnType::Int4 => 4,
            ColumnType::Int8 => 8,
            ColumnType::Text | ColumnType::Numeric => -1,
        }
    }
}

/// ErrorResponse severities pgsluice uses: ERROR keeps the session, FATAL ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Fatal,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
        }
    }
}

/// ErrorResponse ('E'). Writes both `S` (localised) and `V` (never localised, since 9.6)
/// severities, as PostgreSQL does, so every client version finds the one it reads.
pub fn error_response(
    buf: &mut BytesMut,
    severity: Severity,
    sqlstate: &str,
    message: &str,
    detail: Option<&str>,
    hint: Option<&str>,
) {
    write_message(buf, backend_tag::ERROR_RESPONSE, |buf| {
        put_field(buf, error_field::SEVERITY_LOCALIZED, severity.as_str());
        put_field(buf, error_field::SEVERITY, severity.as_str());
        put_field(buf, error_field::CODE, sqlstate);
        put_field(buf, error_field::MESSAGE, message);
        if let Some(detail) = detail {
            put_field(buf, error_field::DETAIL, detail);
        }
        if let Some(hint) = hint {
            put_field(buf, error_field::HINT, hint);
        }
        buf.put_u8(0);
    });
}

/// NoticeResponse ('N') with severity NOTICE.
pub fn notice_response(buf: &mut BytesMut, sqlstate: &str, message: &str) {
    notice_response_with_detail(buf, sqlstate, message, None);
}

/// NoticeResponse ('N') with severity NOTICE and an optional `D` (detail) field, which psql
/// prints on its own `DETAIL:` line (the admin console's SHOW HELP uses it).
pub fn notice_response_with_detail(
    buf: &mut BytesMut,
    sqlstate: &str,
    message: &str,
    detail: Option<&str>,
) {
    write_message(buf, backend_tag::NOTICE_RESPONSE, |buf| {
        put_field(buf, error_field::SEVERITY_LOCALIZED, "NOTICE");
        put_field(buf, error_field::SEVERITY, "NOTICE");
        put_field(buf, error_field::CODE, sqlstate);
        put_field(buf, error_field::MESSAGE, message);
        if let Some(detail) = detail {
            put_field(buf, error_field::DETAIL, detail);
        }
        buf.put_u8(0);
    });
}

/// AuthenticationOk: 'R', Int32(0).
pub fn authentication_ok(buf: &mut BytesMut) {
    authentication(buf, 0, &[]);
}

/// AuthenticationCleartextPassword: 'R', Int32(3).
pub fn authentication_cleartext_password(buf: &mut BytesMut) {
    authentication(buf, 3, &[]);
}

/// AuthenticationMD5Password: 'R', Int32(5), Byte4 salt.
pub fn authentication_md5_password(buf: &mut BytesMut, salt: [u8; 4]) {
    authentication(buf, 5, &salt);
}

/// AuthenticationSASL: 'R', Int32(10), then each mechanism name as a String, then a NUL.
pub fn authentication_sasl(buf: &mut BytesMut, mechanisms: &[&str]) {
    write_message(buf, backend_tag::AUTHENTICATION, |buf| {
        buf.put_u32(10);
        for mechanism in mechanisms {
            put_cstr(buf, mechanism);
        }
        buf.put_u8(0);
    });
}

/// AuthenticationSASLContinue: 'R', Int32(11), SASL data (server-first-message for SCRAM).
pub fn authentication_sasl_continue(buf: &mut BytesMut, data: &[u8]) {
    authentication(buf, 11, data);
}

/// AuthenticationSASLFinal: 'R', Int32(12), SASL outcome data (server-final-message).
pub fn authentication_sasl_final(buf: &mut BytesMut, data: &[u8]) {
    authentication(buf, 12, data);
}

fn authentication(buf: &mut BytesMut, code: u32, data: &[u8]) {
    write_message(buf, backend_tag::AUTHENTICATION, |buf| {
        buf.put_u32(code);
        buf.put_slice(data);
    });
}

/// ParameterStatus ('S'): name and current value of a run-time parameter.
pub fn parameter_status(buf: &mut BytesMut, name: &str, value: &str) {
    write_message(buf, backend_tag::PARAMETER_STATUS, |buf| {
        put_cstr(buf, name);
        put_cstr(buf, value);
    });
}

/// BackendKeyData ('K'): the protocol 3.0 form, a 4-byte secret key (we answer minor 0).
pub fn backend_key_data(buf: &mut BytesMut, process_id: u32, secret_key: u32) {
    write_message(buf, backend_tag::BACKEND_KEY_DATA, |buf| {
        buf.put_u32(process_id);
        buf.put_u32(secret_key);
    });
}

/// ReadyForQuery ('Z'): transaction status `I` idle, `T` in a block, `E` failed block.
pub fn ready_for_query(buf: &mut BytesMut, status: u8) {
    debug_assert!(
        matches!(
            status,
            tx_status::IDLE | tx_status::IN_TRANSACTION | tx_status::FAILED
        ),
        "bad status {status}"
    );
    write_message(buf, backend_tag::READY_FOR_QUERY, |buf| buf.put_u8(status));
}

/// NegotiateProtocolVersion ('v'): the newest protocol version we support, as the whole
/// version number Postgres sends (3.0 is 196608, although the docs speak of a minor version),
/// then the protocol options we do not recognise.
pub fn negotiate_protocol_version(buf: &mut BytesMut, newest_version: u32, unrecognized: &[&str]) {
    write_message(buf, backend_tag::NEGOTIATE_PROTOCOL_VERSION, |buf| {
        buf.put_u32(newest_version);
        buf.put_u32(count_u32(unrecognized.len()));
        for option in unrecognized {
            put_cstr(buf, option);
        }
    });
}

/// EmptyQueryResponse ('I'): answer to an empty query string.
pub fn empty_query_response(buf: &mut BytesMut) {
    write_message(buf, backend_tag::EMPTY_QUERY_RESPONSE, |_| {});
}

/// CommandComplete ('C') with its command tag, e.g. `SHOW`.
pub fn command_complete(buf: &mut BytesMut, tag: &str) {
    write_message(buf, backend_tag::COMMAND_COMPLETE, |buf| put_cstr(buf, tag));
}

/// RowDescription ('T') for text columns not taken from a table: table OID 0, attribute 0,
/// type `text`, variable length (-1), no type modifier (-1), text format (0).
///
/// Panics when given more than 32767 columns (Int16 count); columns come from our own code.
pub fn row_description(buf: &mut BytesMut, columns: &[&str]) {
    write_message(buf, backend_tag::ROW_DESCRIPTION, |buf| {
        buf.put_i16(count_i16(columns.len()));
        for name in columns {
            put_column(buf, name, ColumnType::Text);
        }
    });
}

/// RowDescription ('T') with a declared type per column; otherwise as [`row_description`]
/// (no table, no type modifier, text format).
///
/// Panics when given more than 32767 columns (Int16 count); columns come from our own code.
pub fn row_description_typed(buf: &mut BytesMut, columns: &[(&str, ColumnType)]) {
    write_message(buf, backend_tag::ROW_DESCRIPTION, |buf| {
        buf.put_i16(count_i16(columns.len()));
        for (name, kind) in columns {
            put_column(buf, name, *kind);
        }
    });
}

/// One RowDescription field: name, table OID, attribute number, type OID, type length, type
/// modifier, format code ("Message Formats", RowDescription).
fn put_column(buf: &mut BytesMut, name: &str, kind: ColumnType) {
    put_cstr(buf, name);
    buf.put_u32(0);
    buf.put_i16(0);
    buf.put_u32(kind.oid());
    buf.put_i16(kind.typlen());
    buf.put_i32(-1);
    buf.put_i16(0);
}

/// DataRow ('D'): each value as Int32 length then its bytes, or length -1 for NULL.
///
/// Panics when given more than 32767 values (Int16 count).
pub fn data_row(buf: &mut BytesMut, values: &[Option<&str>]) {
    write_message(buf, backend_tag::DATA_ROW, |buf| {
        buf.put_i16(count_i16(values.len()));
        for value in values {
            match value {
                Some(text) => {
                    buf.put_i32(i32::try_from(text.len()).expect("value over 2 GiB"));
                    buf.put_slice(text.as_bytes());
                }
                None => buf.put_i32(-1),
            }
        }
    });
}

/// The fields of an ErrorResponse or NoticeResponse that pgsluice acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorFields {
    /// Non-localised `V` when present, else the possibly localised `S`.
    pub severity: Option<String>,
    pub code: Option<String>,
    pub message: Option<String>,
}

/// Reads an ErrorResponse/NoticeResponse body (after tag and length): pairs of a field type
/// byte and a String, ended by a zero byte ("Error and Notice Message Fields").
///
/// Tolerant by design, since it only feeds logs and FATAL detection: it stops at the first
/// truncated field and replaces invalid UTF-8.
pub fn error_fields(body: &[u8]) -> ErrorFields {
    let mut fields = ErrorFields::default();
    let mut localized_severity = None;
    let mut rest = body;
    while let Some((&kind, after)) = rest.split_first() {
        if kind == 0 {
            break;
        }
        let Some(nul) = after.iter().position(|&b| b == 0) else {
            break;
        };
        let value = String::from_utf8_lossy(&after[..nul]).into_owned();
        match kind {
            error_field::SEVERITY => fields.severity = Some(value),
            error_field::SEVERITY_LOCALIZED => localized_severity = Some(value),
            error_field::CODE => fields.code = Some(value),
            error_field::MESSAGE => fields.message = Some(value),
            _ => {}
        }
        rest = &after[nul + 1..];
    }
    if fields.severity.is_none() {
        fields.severity = localized_severity;
    }
    fields
}

/// Writes tag, a length placeholder, the body, then the length (which counts itself).
fn write_message(buf: &mut BytesMut, tag: u8, body: impl FnOnce(&mut BytesMut)) {
    buf.put_u8(tag);
    let length_at = buf.len();
    buf.put_u32(0);
    body(buf);
    let len = u32::try_from(buf.len() - length_at).expect("message over 4 GiB");
    buf[length_at..length_at + 4].copy_from_slice(&len.to_be_bytes());
}

fn put_field(buf: &mut BytesMut, kind: u8, value: &str) {
    buf.put_u8(kind);
    put_cstr(buf, value);
}

fn put_cstr(buf: &mut BytesMut, s: &str) {
    if s.as_bytes().contains(&0) {
        buf.extend(s.bytes().filter(|&b| b != 0));
    } else {
        buf.put_slice(s.as_bytes());
    }
    buf.put_u8(0);
}

fn count_i16(n: usize) -> i16 {
    i16::try_from(n).expect("more than 32767 columns")
}

fn count_u32(n: usize) -> u32 {
    u32::try_from(n).expect("count over u32")
}

#[cfg(test)]
mod tests {
    use super::*;
    use postgres_protocol::message::backend::Message;

    /// Parses one message with postgres-protocol (a real client's parser), which also checks
    /// that the length matches the body it read exactly.
    fn parse_one(buf: &BytesMut) -> Message {
        let mut copy = buf.clone();
        let msg = Message::parse(&mut copy).unwrap().expect("whole message");
        assert!(copy.is_empty(), "trailing bytes after message");
        msg
    }

    fn bytes_of(write: impl FnOnce(&mut BytesMut)) -> BytesMut {
        let mut buf = BytesMut::new();
        write(&mut buf);
        buf
    }

    #[test]
    fn authentication_requests_exact_bytes() {
        assert_eq!(&bytes_of(authentication_ok)[..], b"R\0\0\0\x08\0\0\0\0");
        assert_eq!(
            &bytes_of(authentication_cleartext_password)[..],
            b"R\0\0\0\x08\0\0\0\x03"
        );
        let md5 = bytes_of(|b| authentication_md5_password(b, [1, 2, 3, 4]));
        assert_eq!(&md5[..], b"R\0\0\0\x0c\0\0\0\x05\x01\x02\x03\x04");
        match parse_one(&md5) {
            Message::AuthenticationMd5Password(body) => assert_eq!(body.salt(), [1, 2, 3, 4]),
            _ => panic!("not md5"),
        }
        let sasl = bytes_of(|b| authentication_sasl(b, &["SCRAM-SHA-256"]));
        assert_eq!(&sasl[..], b"R\0\0\0\x17\0\0\0\x0aSCRAM-SHA-256\0\0");
        assert!(matches!(parse_one(&sasl), Message::AuthenticationSasl(_)));
        let cont = bytes_of(|b| authentication_sasl_continue(b, b"r=abc"));
        assert_eq!(&cont[..], b"R\0\0\0\x0d\0\0\0\x0br=abc");
        match parse_one(&cont) {
            Message::AuthenticationSaslContinue(body) => assert_eq!(body.data(), b"r=abc"),
            _ => panic!("not SASLContinue"),
        }
        let fin = bytes_of(|b| authentication_sasl_final(b, b"v=xyz"));
        match parse_one(&fin) {
            Message::AuthenticationSaslFinal(body) => assert_eq!(body.data(), b"v=xyz"),
            _ => panic!("not SASLFinal"),
        }
    }

    #[test]
    fn error_response_fields_and_bytes() {
        let buf = bytes_of(|b| error_response(b, Severity::Fatal, "08P01", "bad", None, Some("h")));
        let body = b"SFATAL\0VFATAL\0C08P01\0Mbad\0Hh\0\0";
        let mut expected = vec![b'E'];
        expected.extend_from_slice(&(4 + body.len() as u32).to_be_bytes());
        expected.extend_from_slice(body);
        assert_eq!(&buf[..], &expected[..]);
        assert!(matches!(parse_one(&buf), Message::ErrorResponse(_)));

        let buf =
            bytes_of(|b| error_response(b, Severity::Error, "53300", "too many", Some("d"), None));
        assert!(matches!(parse_one(&buf), Message::ErrorResponse(_)));
        let fields = error_fields(&buf[5..]);
        assert_eq!(fields.severity.as_deref(), Some("ERROR"));
        assert_eq!(fields.code.as_deref(), Some("53300"));
        assert_eq!(fields.message.as_deref(), Some("too many"));
        assert!(buf.windows(3).any(|w| w == b"Dd\0"));
    }

    #[test]
    fn notice_response_parses() {
        let buf = bytes_of(|b| notice_response(b, "01000", "pool is busy"));
        assert!(matches!(parse_one(&buf), Message::NoticeResponse(_)));
        let fields = error_fields(&buf[5..]);
        assert_eq!(fields.severity.as_deref(), Some("NOTICE"));
        assert_eq!(fields.message.as_deref(), Some("pool is busy"));
    }

    #[test]
    fn nul_inside_a_string_is_dropped_to_keep_framing() {
        let buf = bytes_of(|b| error_response(b, Severity::Error, "08P01", "a\0b", None, None));
        assert!(matches!(parse_one(&buf), Message::ErrorResponse(_)));
        assert_eq!(error_fields(&buf[5..]).message.as_deref(), Some("ab"));
    }

    #[test]
    fn session_messages_exact_bytes() {
        let ps = bytes_of(|b| parameter_status(b, "TimeZone", "UTC"));
        assert_eq!(&ps[..], b"S\0\0\0\x11TimeZone\0UTC\0");
        match parse_one(&ps) {
            Message::ParameterStatus(body) => {
                assert_eq!(body.name().unwrap(), "TimeZone");
                assert_eq!(body.value().unwrap(), "UTC");
            }
            _ => panic!("not ParameterStatus"),
        }
        let key = bytes_of(|b| backend_key_data(b, 7, 0xdead_beef));
        assert_eq!(&key[..], b"K\0\0\0\x0c\0\0\0\x07\xde\xad\xbe\xef");
        match parse_one(&key) {
            Message::BackendKeyData(body) => {
                assert_eq!(body.process_id(), 7);
                assert_eq!(body.secret_key() as u32, 0xdead_beef);
            }
            _ => panic!("not BackendKeyData"),
        }
        let rfq = bytes_of(|b| ready_for_query(b, b'T'));
        assert_eq!(&rfq[..], b"Z\0\0\0\x05T");
        match parse_one(&rfq) {
            Message::ReadyForQuery(body) => assert_eq!(body.status(), b'T'),
            _ => panic!("not ReadyForQuery"),
        }
    }

    #[test]
    fn negotiate_protocol_version_exact_bytes() {
        let buf = bytes_of(|b| negotiate_protocol_version(b, 3 << 16, &["_pq_.a", "_pq_.bc"]));
        let body = b"\0\x03\0\0\0\0\0\x02_pq_.a\0_pq_.bc\0";
        let mut expected = vec![b'v'];
        expected.extend_from_slice(&(4 + body.len() as u32).to_be_bytes());
        expected.extend_from_slice(body);
        assert_eq!(&buf[..], &expected[..]);
        let none = bytes_of(|b| negotiate_protocol_version(b, 3 << 16, &[]));
        assert_eq!(&none[..], b"v\0\0\0\x0c\0\x03\0\0\0\0\0\0");
    }

    #[test]
    fn admin_result_messages() {
        assert_eq!(&bytes_of(empty_query_response)[..], b"I\0\0\0\x04");
        let cc = bytes_of(|b| command_complete(b, "SHOW"));
        assert_eq!(&cc[..], b"C\0\0\0\x09SHOW\0");
        match parse_one(&cc) {
            Message::CommandComplete(body) => assert_eq!(body.tag().unwrap(), "SHOW"),
            _ => panic!("not CommandComplete"),
        }
        let rd = bytes_of(|b| row_description(b, &["db"]));
        let expected: &[u8] =
            b"T\0\0\0\x1b\0\x01db\0\0\0\0\0\0\0\0\0\0\x19\xff\xff\xff\xff\xff\xff\0\0";
        assert_eq!(&rd[..], expected);
        assert!(matches!(parse_one(&rd), Message::RowDescription(_)));
        let dr = bytes_of(|b| data_row(b, &[Some("ab"), None, Some("")]));
        let expected: &[u8] = b"D\0\0\0\x14\0\x03\0\0\0\x02ab\xff\xff\xff\xff\0\0\0\0";
        assert_eq!(&dr[..], expected);
        match parse_one(&dr) {
            Message::DataRow(body) => {
                assert_eq!(body.buffer(), b"\0\0\0\x02ab\xff\xff\xff\xff\0\0\0\0")
            }
            _ => panic!("not DataRow"),
        }
    }

    #[test]
    fn typed_row_description_and_detailed_notice() {
        let typed = bytes_of(|b| row_description_typed(b, &[("db", ColumnType::Text)]));
        assert_eq!(typed, bytes_of(|b| row_description(b, &["db"])));
        let rd = bytes_of(|b| {
            row_description_typed(b, &[("n", ColumnType::Int4), ("m", ColumnType::Numeric)])
        });
        match parse_one(&rd) {
            Message::RowDescription(body) => {
                use fallible_iterator::FallibleIterator;
                let fields: Vec<_> = body.fields().collect().unwrap();
                assert_eq!(fields[0].name(), "n");
                assert_eq!((fields[0].type_oid(), fields[0].type_size()), (23, 4));
                assert_eq!((fields[1].type_oid(), fields[1].type_size()), (1700, -1));
                assert_eq!(fields[1].format(), 0);
            }
            _ => panic!("not RowDescription"),
        }
        let notice = bytes_of(|b| notice_response_with_detail(b, "00000", "usage", Some("x")));
        assert!(matches!(parse_one(&notice), Message::NoticeResponse(_)));
        assert!(notice.windows(3).any(|w| w == b"Dx\0"));
        assert_eq!(ColumnType::Int8.oid(), 20);
    }

    #[test]
    fn messages_append_to_existing_buffer() {
        let mut buf = BytesMut::from(&b"xyz"[..]);
        ready_for_query(&mut buf, b'I');
        assert_eq!(&buf[..], b"xyzZ\0\0\0\x05I");
    }

    #[test]
    fn error_fields_prefers_v_and_tolerates_garbage() {
        let body = b"SFEHLER\0VERROR\0C42P01\0Mno such table\0\0";
        let fields = error_fields(body);
        assert_eq!(fields.severity.as_deref(), Some("ERROR"));
        assert_eq!(fields.code.as_deref(), Some("42P01"));
        // Old servers send S only.
        assert_eq!(
            error_fields(b"SFATAL\0\0").severity.as_deref(),
            Some("FATAL")
        );
        // Truncated, non-UTF-8, and empty bodies do not panic.
        let fields = error_fields(b"SFATAL\0M\xffoops\0Ctrunc");
        assert_eq!(fields.severity.as_deref(), Some("FATAL"));
        assert_eq!(fields.message.as_deref(), Some("\u{fffd}oops"));
        assert_eq!(fields.code, None);
        assert_eq!(error_fields(b""), ErrorFields::default());
        assert_eq!(error_fields(b"\0SFATAL\0"), ErrorFields::default());
    }
}

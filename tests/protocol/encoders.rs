//! Property tests for the wire encoders (no PostgreSQL needed): every backend message pgsluice
//! writes (`protocol::backend`) parses back with postgres-protocol — the parser real clients
//! are built on — to the values it was written from, even when many are written back to back;
//! and the extended-protocol writers (`protocol::extended`) and their parsers invert each other.
//! The fuzz targets (fuzz/, docs/fuzzing.md) cover the opposite direction: arbitrary bytes in.

use bytes::{BufMut, BytesMut};
use fallible_iterator::FallibleIterator;
use pgsluice::protocol::backend::{self, ColumnType, Severity};
use pgsluice::protocol::extended;
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use postgres_protocol::IsNull;
use proptest::prelude::*;

/// One backend message and the values it carries.
#[derive(Debug, Clone)]
enum Written {
    Error {
        fatal: bool,
        sqlstate: String,
        message: String,
        detail: Option<String>,
        hint: Option<String>,
    },
    Notice {
        sqlstate: String,
        message: String,
        detail: Option<String>,
    },
    ParameterStatus(String, String),
    BackendKeyData(u32, u32),
    ReadyForQuery(u8),
    CommandComplete(String),
    RowDescription(Vec<(String, ColumnType)>),
    DataRow(Vec<Option<String>>),
    Md5Password([u8; 4]),
    Sasl(Vec<String>),
    SaslContinue(Vec<u8>),
    SaslFinal(Vec<u8>),
    AuthenticationOk,
    EmptyQueryResponse,
}

/// Any text, NULs included: the writers drop NULs, so the reader must see it without them.
fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..24).prop_map(|c| c.into_iter().collect())
}

fn column_type() -> impl Strategy<Value = ColumnType> {
    prop_oneof![
        Just(ColumnType::Text),
        Just(ColumnType::Int4),
        Just(ColumnType::Int8),
        Just(ColumnType::Numeric),
    ]
}

fn backend_message() -> impl Strategy<Value = Written> {
    let bytes = || proptest::collection::vec(any::<u8>(), 0..40);
    prop_oneof![
        (
            any::<bool>(),
            "[0-9A-Z]{5}",
            text(),
            proptest::option::of(text()),
            proptest::option::of(text())
        )
            .prop_map(|(fatal, sqlstate, message, detail, hint)| Written::Error {
                fatal,
                sqlstate,
                message,
                detail,
                hint
            }),
        ("[0-9A-Z]{5}", text(), proptest::option::of(text())).prop_map(
            |(sqlstate, message, detail)| Written::Notice {
                sqlstate,
                message,
                detail
            }
        ),
        (text(), text()).prop_map(|(n, v)| Written::ParameterStatus(n, v)),
        (any::<u32>(), any::<u32>()).prop_map(|(p, k)| Written::BackendKeyData(p, k)),
        prop::sample::select(vec![b'I', b'T', b'E']).prop_map(Written::ReadyForQuery),
        text().prop_map(Written::CommandComplete),
        proptest::collection::vec((text(), column_type()), 0..6).prop_map(Written::RowDescription),
        proptest::collection::vec(proptest::option::of(text()), 0..6).prop_map(Written::DataRow),
        any::<[u8; 4]>().prop_map(Written::Md5Password),
        // Mechanism names are never empty: an empty one would read as the list's end.
        proptest::collection::vec("[A-Z0-9-]{1,20}", 0..3).prop_map(Written::Sasl),
        bytes().prop_map(Written::SaslContinue),
        bytes().prop_map(Written::SaslFinal),
        Just(Written::AuthenticationOk),
        Just(Written::EmptyQueryResponse),
    ]
}

fn write(buf: &mut BytesMut, msg: &Written) {
    match msg {
        Written::Error {
            fatal,
            sqlstate,
            message,
            detail,
            hint,
        } => {
            let severity = if *fatal {
                Severity::Fatal
            } else {
                Severity::Error
            };
            backend::error_response(
                buf,
                severity,
                sqlstate,
                message,
                detail.as_deref(),
                hint.as_deref(),
            )
        }
        Written::Notice {
            sqlstate,
            message,
            detail,
        } => backend::notice_response_with_detail(buf, sqlstate, message, detail.as_deref()),
        Written::ParameterStatus(n, v) => backend::parameter_status(buf, n, v),
        Written::BackendKeyData(p, k) => backend::backend_key_data(buf, *p, *k),
        Written::ReadyForQuery(s) => backend::ready_for_query(buf, *s),
        Written::CommandComplete(tag) => backend::command_complete(buf, tag),
        Written::RowDescription(cols) => {
            let cols: Vec<(&str, ColumnType)> =
                cols.iter().map(|(n, t)| (n.as_str(), *t)).collect();
            backend::row_description_typed(buf, &cols)
        }
        Written::DataRow(values) => {
            let values: Vec<Option<&str>> = values.iter().map(Option::as_deref).collect();
            backend::data_row(buf, &values)
        }
        Written::Md5Password(salt) => backend::authentication_md5_password(buf, *salt),
        Written::Sasl(mechs) => {
            let mechs: Vec<&str> = mechs.iter().map(String::as_str).collect();
            backend::authentication_sasl(buf, &mechs)
        }
        Written::SaslContinue(data) => backend::authentication_sasl_continue(buf, data),
        Written::SaslFinal(data) => backend::authentication_sasl_final(buf, data),
        Written::AuthenticationOk => backend::authentication_ok(buf),
        Written::EmptyQueryResponse => backend::empty_query_response(buf),
    }
}

fn no_nul(s: &str) -> String {
    s.replace('\0', "")
}

/// The (type, value) pairs of an ErrorResponse/NoticeResponse.
fn fields(mut it: postgres_protocol::message::backend::ErrorFields<'_>) -> Vec<(u8, String)> {
    let mut out = Vec::new();
    while let Some(f) = it.next().unwrap() {
        out.push((
            f.type_(),
            String::from_utf8(f.value_bytes().to_vec()).unwrap(),
        ));
    }
    out
}

fn expected_fields(
    severity: &str,
    sqlstate: &str,
    message: &str,
    detail: Option<&str>,
    hint: Option<&str>,
) -> Vec<(u8, String)> {
    let mut out = vec![
        (b'S', severity.to_owned()),
        (b'V', severity.to_owned()),
        (b'C', sqlstate.to_owned()),
        (b'M', no_nul(message)),
    ];
    out.extend(detail.map(|d| (b'D', no_nul(d))));
    out.extend(hint.map(|h| (b'H', no_nul(h))));
    out
}

/// Asserts that `parsed` carries exactly the values of `msg`.
fn assert_matches(msg: &Written, parsed: Message) {
    match (msg, parsed) {
        (
            Written::Error {
                fatal,
                sqlstate,
                message,
                detail,
                hint,
            },
            Message::ErrorResponse(body),
        ) => {
            let severity = if *fatal { "FATAL" } else { "ERROR" };
            let want = expected_fields(
                severity,
                sqlstate,
                message,
                detail.as_deref(),
                hint.as_deref(),
            );
            assert_eq!(fields(body.fields()), want);
        }
        (
            Written::Notice {
                sqlstate,
                message,
                detail,
            },
            Message::NoticeResponse(body),
        ) => {
            let want = expected_fields("NOTICE", sqlstate, message, detail.as_deref(), None);
            assert_eq!(fields(body.fields()), want);
        }
        (Written::ParameterStatus(n, v), Message::ParameterStatus(body)) => {
            assert_eq!(body.name().unwrap(), no_nul(n));
            assert_eq!(body.value().unwrap(), no_nul(v));
        }
        (Written::BackendKeyData(p, k), Message::BackendKeyData(body)) => {
            assert_eq!(
                (body.process_id() as u32, body.secret_key() as u32),
                (*p, *k)
            );
        }
        (Written::ReadyForQuery(s), Message::ReadyForQuery(body)) => assert_eq!(body.status(), *s),
        (Written::CommandComplete(tag), Message::CommandComplete(body)) => {
            assert_eq!(body.tag().unwrap(), no_nul(tag));
        }
        (Written::RowDescription(cols), Message::RowDescription(body)) => {
            let got: Vec<_> = body.fields().collect().unwrap();
            assert_eq!(got.len(), cols.len());
            for (field, (name, kind)) in got.iter().zip(cols) {
                assert_eq!(field.name(), no_nul(name));
                assert_eq!(
                    (field.type_oid(), field.type_size()),
                    (kind.oid(), kind.typlen())
                );
                assert_eq!((field.type_modifier(), field.format()), (-1, 0));
                assert_eq!((field.table_oid(), field.column_id()), (0, 0));
            }
        }
        (Written::DataRow(values), Message::DataRow(body)) => {
            let ranges: Vec<_> = body.ranges().collect().unwrap();
            let got: Vec<Option<&[u8]>> = ranges
                .into_iter()
                .map(|r| r.map(|r| &body.buffer()[r]))
                .collect();
            let want: Vec<Option<&[u8]>> = values
                .iter()
                .map(|v| v.as_deref().map(str::as_bytes))
                .collect();
            assert_eq!(got, want);
        }
        (Written::Md5Password(salt), Message::AuthenticationMd5Password(body)) => {
            assert_eq!(body.salt(), *salt);
        }
        (Written::Sasl(mechs), Message::AuthenticationSasl(body)) => {
            let got: Vec<String> = body
                .mechanisms()
                .map(|m| Ok(m.to_owned()))
                .collect()
                .unwrap();
            assert_eq!(&got, mechs);
        }
        (Written::SaslContinue(data), Message::AuthenticationSaslContinue(body)) => {
            assert_eq!(body.data(), &data[..]);
        }
        (Written::SaslFinal(data), Message::AuthenticationSaslFinal(body)) => {
            assert_eq!(body.data(), &data[..]);
        }
        (Written::AuthenticationOk, Message::AuthenticationOk) => {}
        (Written::EmptyQueryResponse, Message::EmptyQueryResponse) => {}
        (msg, _) => panic!("{msg:?} parsed as another message"),
    }
}

/// Builds a Bind with postgres-protocol: text values (None = NULL), formats as given.
fn bind(portal: &str, statement: &str, formats: &[i16], values: &[Option<Vec<u8>>]) -> BytesMut {
    let mut buf = BytesMut::new();
    frontend::bind(
        portal,
        statement,
        formats.iter().copied(),
        values.iter(),
        |v, buf| match v {
            Some(bytes) => {
                buf.put_slice(bytes);
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        },
        formats.iter().copied(),
        &mut buf,
    )
    .map_err(|_| "bind")
    .unwrap();
    buf
}

/// A name without NUL, the way frontend messages carry them.
fn name() -> impl Strategy<Value = String> {
    "[^\0]{0,20}"
}

proptest! {
    /// Messages written back to back parse back in order, each to the values it was written
    /// from, with nothing left over: the framing of every writer is exact.
    #[test]
    fn backend_messages_parse_back(msgs in proptest::collection::vec(backend_message(), 1..8)) {
        let mut buf = BytesMut::from(&b"already queued"[..]);
        for msg in &msgs {
            write(&mut buf, msg);
        }
        let mut rest = buf.split_off(14);
        prop_assert_eq!(&buf[..], b"already queued");
        for msg in &msgs {
            let parsed = Message::parse(&mut rest).unwrap().expect("a whole message");
            assert_matches(msg, parsed);
        }
        prop_assert!(rest.is_empty());
    }

    /// `error_fields`, which reads what Postgres sends, reads our own errors back too.
    #[test]
    fn error_fields_reads_error_response(message in text(), sqlstate in "[0-9A-Z]{5}") {
        let mut buf = BytesMut::new();
        backend::error_response(&mut buf, Severity::Fatal, &sqlstate, &message, None, None);
        let fields = backend::error_fields(&buf[5..]);
        prop_assert_eq!(fields.severity.as_deref(), Some("FATAL"));
        prop_assert_eq!(fields.code.as_deref(), Some(sqlstate.as_str()));
        prop_assert_eq!(fields.message, Some(no_nul(&message)));
    }

    /// NegotiateProtocolVersion, which postgres-protocol does not parse: read it by hand.
    #[test]
    fn negotiate_protocol_version_layout(
        minor in any::<u32>(),
        options in proptest::collection::vec("_pq_\\.[a-z_]{1,12}", 0..4),
    ) {
        let refs: Vec<&str> = options.iter().map(String::as_str).collect();
        let mut buf = BytesMut::new();
        backend::negotiate_protocol_version(&mut buf, minor, &refs);
        prop_assert_eq!(buf[0], b'v');
        let len = u32::from_be_bytes(buf[1..5].try_into().unwrap()) as usize;
        prop_assert_eq!(len + 1, buf.len());
        prop_assert_eq!(u32::from_be_bytes(buf[5..9].try_into().unwrap()), minor);
        let count = u32::from_be_bytes(buf[9..13].try_into().unwrap()) as usize;
        prop_assert_eq!(count, options.len());
        let names: Vec<&[u8]> = buf[13..].split(|&b| b == 0).collect();
        prop_assert_eq!(names.len(), count + 1);
        for (got, want) in names.iter().zip(&options) {
            prop_assert_eq!(*got, want.as_bytes());
        }
    }

    /// write_parse ∘ parse_body is the identity, and so is parse_body ∘ write_parse.
    #[test]
    fn parse_writer_and_parser_invert(
        stmt in name(),
        query in name(),
        types in proptest::collection::vec(any::<u32>(), 0..20),
    ) {
        let mut buf = BytesMut::new();
        extended::write_parse(&mut buf, &stmt, &query, &types);
        prop_assert_eq!(buf[0], b'P');
        let parsed = extended::parse_body(&buf[5..]).unwrap();
        prop_assert_eq!((parsed.name, parsed.query), (stmt.as_str(), query.as_str()));
        prop_assert_eq!(&parsed.param_types, &types);
        let mut again = BytesMut::new();
        extended::write_parse(&mut again, parsed.name, parsed.query, &parsed.param_types);
        prop_assert_eq!(again, buf);
    }

    #[test]
    fn describe_and_close_writers_and_parser_invert(
        kind in prop::sample::select(vec![b'S', b'P']),
        target in name(),
    ) {
        let mut buf = BytesMut::new();
        extended::write_describe(&mut buf, kind, &target);
        prop_assert_eq!(buf[0], b'D');
        prop_assert_eq!(extended::describe_or_close(&buf[5..]).unwrap(), (kind, target.as_str()));
        buf.clear();
        extended::write_close(&mut buf, kind, &target);
        prop_assert_eq!(buf[0], b'C');
        prop_assert_eq!(extended::describe_or_close(&buf[5..]).unwrap(), (kind, target.as_str()));
    }

    /// bind_target reads the names of any Bind a client builds, and renaming the statement
    /// gives exactly the Bind the client would have built with the new name.
    #[test]
    fn bind_renaming_matches_a_freshly_built_bind(
        portal in name(),
        statement in name(),
        renamed in name(),
        formats in proptest::collection::vec(0i16..2, 0..4),
        values in proptest::collection::vec(
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)), 0..5),
    ) {
        let original = bind(&portal, &statement, &formats, &values);
        let body = &original[5..];
        let target = extended::bind_target(body).unwrap();
        prop_assert_eq!((target.portal, target.statement), (portal.as_str(), statement.as_str()));
        let mut out = BytesMut::new();
        extended::write_bind_renamed(&mut out, body, &target, &renamed);
        prop_assert_eq!(out, bind(&portal, &renamed, &formats, &values));
    }

    /// Renaming a statement in an ErrorResponse and back restores it byte for byte, provided
    /// the new name did not already occur in the message.
    #[test]
    fn error_renaming_round_trips(
        from in "[a-z_][a-z0-9_$]{0,8}",
        around in proptest::collection::vec((text(), any::<bool>()), 0..4),
        detail in text(),
    ) {
        let to = "zq_renamed_1";
        let message: String = around
            .iter()
            .map(|(t, with_name)| if *with_name { format!("{t} \"{from}\" ") } else { t.clone() })
            .collect();
        prop_assume!(!message.contains(to) && !detail.contains(to));
        let mut original = BytesMut::new();
        backend::error_response(&mut original, Severity::Error, "26000", &message, Some(&detail), None);
        let mut renamed = BytesMut::new();
        extended::write_error_renamed(&mut renamed, b'E', &original[5..], &from, to).unwrap();
        let mut back = BytesMut::new();
        extended::write_error_renamed(&mut back, b'E', &renamed[5..], to, &from).unwrap();
        prop_assert_eq!(&back, &original);
        let mut copy = renamed.clone();
        prop_assert!(matches!(Message::parse(&mut copy).unwrap(), Some(Message::ErrorResponse(_))));
        prop_assert!(copy.is_empty());
    }
}

//! Fuzzes the client message bodies pgsluice reads after framing: Parse, Bind, Describe, Close
//! (`protocol::extended`), the DEALLOCATE/DISCARD recogniser (`extended::session_command`),
//! the scanner that tells whether SQL may change the session (`protocol::session_effects`), the
//! login messages PasswordMessage and SASLInitialResponse (`protocol::frontend`), and the
//! rewriting of ErrorResponse names (`extended::write_error_renamed`) and its tolerant reader
//! (`backend::error_fields`), and the NotificationResponse reader of the LISTEN connection
//! (`protocol::notification`). The whole input is one message body.
//! Checks: no panic; whatever a parser accepts, the matching writer turns back into the very
//! same bytes (the parsers are strict, so parse∘write is the identity), and renamed messages
//! stay well framed for postgres-protocol's own parser.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use pgsluice::protocol::{backend, extended, frontend, notification, session_effects};
use postgres_protocol::message::backend::Message;

/// Tag, length word (counting itself), body.
fn framed(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn check_parse(body: &[u8]) {
    let Ok(parse) = extended::parse_body(body) else {
        return;
    };
    let mut out = BytesMut::new();
    extended::write_parse(&mut out, parse.name, parse.query, &parse.param_types);
    assert_eq!(&out[..], framed(b'P', body), "Parse does not round-trip");
}

fn check_bind(body: &[u8]) {
    let Ok(target) = extended::bind_target(body) else {
        return;
    };
    let mut same = BytesMut::new();
    extended::write_bind_renamed(&mut same, body, &target, target.statement);
    assert_eq!(&same[..], framed(b'B', body), "Bind does not round-trip");

    let mut renamed = BytesMut::new();
    extended::write_bind_renamed(&mut renamed, body, &target, "pgsluice_42");
    let again = extended::bind_target(&renamed[5..]).expect("renamed Bind parses");
    assert_eq!(again.portal, target.portal);
    assert_eq!(again.statement, "pgsluice_42");
    assert_eq!(
        &renamed[5 + again.rest_offset..],
        &body[target.rest_offset..]
    );
    assert_eq!(framed(b'B', &renamed[5..]), &renamed[..]);
}

fn check_describe_close(body: &[u8]) {
    let Ok((kind, name)) = extended::describe_or_close(body) else {
        return;
    };
    let mut out = BytesMut::new();
    extended::write_describe(&mut out, kind, name);
    assert_eq!(&out[..], framed(b'D', body), "Describe does not round-trip");
    out.clear();
    extended::write_close(&mut out, kind, name);
    assert_eq!(&out[..], framed(b'C', body), "Close does not round-trip");
}

fn check_session_command(body: &[u8]) {
    if let Some(extended::SessionCommand::Deallocate(name)) = extended::session_command(body) {
        // PostgreSQL truncates identifiers to 63 bytes; a name never holds a NUL.
        assert!(name.len() <= 63 && !name.contains('\0'), "{name:?}");
    }
}

fn check_login_messages(body: &[u8]) {
    if let Ok(password) = frontend::password_message(body) {
        let mut again = password.to_vec();
        again.push(0);
        assert_eq!(again, body);
    }
    if let Ok(sasl) = frontend::sasl_initial_response(body) {
        let mut again = sasl.mechanism.as_bytes().to_vec();
        again.push(0);
        let len = if sasl.data.is_empty() && body.ends_with(&[0xff; 4]) {
            -1
        } else {
            sasl.data.len() as i32
        };
        again.extend_from_slice(&len.to_be_bytes());
        again.extend_from_slice(sasl.data);
        assert_eq!(again, body, "SASLInitialResponse does not round-trip");
    }
}

fn check_error_renaming(body: &[u8]) {
    let _ = backend::error_fields(body);
    // Renaming a name to itself must reproduce the message byte for byte.
    let mut same = BytesMut::new();
    if extended::write_error_renamed(&mut same, b'E', body, "pgsluice_1", "pgsluice_1").is_ok() {
        assert_eq!(&same[..], framed(b'E', body));
    } else {
        assert!(same.is_empty(), "a refused rename left bytes behind");
    }
    let mut out = BytesMut::new();
    if extended::write_error_renamed(&mut out, b'E', body, "pgsluice_1", "a \"quoted\" name")
        .is_ok()
    {
        let mut copy = out.clone();
        match Message::parse(&mut copy) {
            Ok(Some(Message::ErrorResponse(_))) => assert!(copy.is_empty()),
            _ => panic!("renamed ErrorResponse does not parse"),
        }
    }
}

/// Query text from a client: the scanner must not panic, and every name it reports is a
/// well-formed dotted custom setting name taken from the text.
fn check_session_effects(body: &[u8]) {
    let _ = session_effects::may_change_session(body);
    let mut names = Vec::new();
    session_effects::custom_setting_names(body, &mut names);
    for name in names {
        assert!(name.contains('.') && name.len() <= 127, "{name:?}");
        assert!(name.bytes().all(|b| b.is_ascii_lowercase()
            || b.is_ascii_digit()
            || matches!(b, b'_' | b'$' | b'.')));
    }
}

fuzz_target!(|body: &[u8]| {
    check_session_effects(body);
    check_parse(body);
    check_bind(body);
    check_describe_close(body);
    check_session_command(body);
    check_login_messages(body);
    check_error_renaming(body);
    check_notification(body);
});

/// A NotificationResponse body that parses is framed back to the same body, and the frame
/// parses to the same fields (the LISTEN connection passes such frames on byte for byte).
fn check_notification(body: &[u8]) {
    let Some(n) = notification::parse(body) else {
        return;
    };
    let frame = notification::frame(body);
    assert_eq!(&frame[5..], body);
    assert_eq!(notification::parse(&frame[5..]), Some(n));
    if let Ok(payload) = std::str::from_utf8(n.payload) {
        let again = notification::encode(n.pid, n.channel, payload);
        assert_eq!(notification::parse(&again[5..]), Some(n));
    }
}

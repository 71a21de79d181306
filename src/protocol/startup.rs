//! The untagged first packet of a client connection: SSLRequest, GSSENCRequest, CancelRequest
//! or StartupMessage (PostgreSQL docs, "Message Formats" and "Message Flow: Start-up").
//! Called by client::startup with the bytes read so far; sans-io, so it reports "need more"
//! instead of reading. Invariant: the declared length is checked against
//! MAX_STARTUP_PACKET_LENGTH before any body byte is looked at, so a caller never buffers more.

use super::ProtocolError;

/// The largest startup packet accepted, as PostgreSQL's postmaster (`MAX_STARTUP_PACKET_LENGTH`).
pub const MAX_STARTUP_PACKET_LENGTH: usize = 10_000;
/// The smallest: the length word and the request code or protocol version.
pub const MIN_STARTUP_PACKET_LENGTH: usize = 8;
/// Request codes sit where the protocol version would, chosen so they never collide with one
/// (major 1234, minors 5679 / 5680 / 5678).
pub const SSL_REQUEST_CODE: u32 = 80_877_103;
pub const GSSENC_REQUEST_CODE: u32 = 80_877_104;
pub const CANCEL_REQUEST_CODE: u32 = 80_877_102;
/// The only protocol major version in use since PostgreSQL 7.4.
pub const PROTOCOL_MAJOR: u16 = 3;
/// The protocol version pgsluice speaks, 3.0, as the 32-bit number a StartupMessage carries.
pub const PROTOCOL_3_0: u32 = (PROTOCOL_MAJOR as u32) << 16;
/// Prefix of protocol-extension parameters, answered with NegotiateProtocolVersion.
pub const PROTOCOL_OPTION_PREFIX: &str = "_pq_.";

const CANCEL_REQUEST_LENGTH: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupPacket {
    SslRequest,
    GssEncRequest,
    CancelRequest {
        process_id: u32,
        secret_key: u32,
    },
    /// Params are kept raw and in order, `_pq_.` options included: the caller answers those
    /// with NegotiateProtocolVersion when `minor > 0` or any is present.
    Startup {
        major: u16,
        minor: u16,
        params: Vec<(String, String)>,
    },
}

/// Parses the first packet from the bytes received so far.
///
/// Returns `Ok(None)` while more bytes are needed, or the packet and the number of bytes it
/// used (anything after belongs to the next packet, e.g. a StartupMessage after SSLRequest
/// was refused with 'N').
pub fn parse_startup(buf: &[u8]) -> Result<Option<(StartupPacket, usize)>, ProtocolError> {
    let Some(len_bytes) = buf.get(..4) else {
        return Ok(None);
    };
    let len = read_u32(len_bytes) as usize;
    if len < MIN_STARTUP_PACKET_LENGTH {
        return Err(ProtocolError::StartupTooShort { len });
    }
    if len > MAX_STARTUP_PACKET_LENGTH {
        return Err(ProtocolError::StartupTooLong {
            len,
            max: MAX_STARTUP_PACKET_LENGTH,
        });
    }
    let Some(packet) = buf.get(..len) else {
        return Ok(None);
    };
    let code = read_u32(&packet[4..8]);
    let parsed = match code {
        SSL_REQUEST_CODE => {
            expect_length(len, MIN_STARTUP_PACKET_LENGTH, "SSLRequest")?;
            StartupPacket::SslRequest
        }
        GSSENC_REQUEST_CODE => {
            expect_length(len, MIN_STARTUP_PACKET_LENGTH, "GSSENCRequest")?;
            StartupPacket::GssEncRequest
        }
        CANCEL_REQUEST_CODE => {
            expect_length(len, CANCEL_REQUEST_LENGTH, "CancelRequest")?;
            StartupPacket::CancelRequest {
                process_id: read_u32(&packet[8..12]),
                secret_key: read_u32(&packet[12..16]),
            }
        }
        version => {
            let (major, minor) = ((version >> 16) as u16, version as u16);
            // Any minor of 3 is fine: the caller negotiates it down ("Protocol versioning").
            if major != PROTOCOL_MAJOR {
                return Err(ProtocolError::UnsupportedProtocol { major, minor });
            }
            let params = parse_params(&packet[8..])?;
            if user(&params).is_none() {
                return Err(ProtocolError::MissingUser);
            }
            StartupPacket::Startup {
                major,
                minor,
                params,
            }
        }
    };
    Ok(Some((parsed, len)))
}

/// The `user` parameter; PostgreSQL treats an empty one as absent. The last occurrence wins,
/// as in the postmaster, which assigns each pair in order.
pub fn user(params: &[(String, String)]) -> Option<&str> {
    lookup(params, "user").filter(|u| !u.is_empty())
}

/// The `database` parameter, defaulting to the user name when absent or empty (as PostgreSQL
/// does); empty only when there is no user either.
pub fn database(params: &[(String, String)]) -> &str {
    match lookup(params, "database") {
        Some(db) if !db.is_empty() => db,
        _ => user(params).unwrap_or(""),
    }
}

/// Names of the `_pq_.` protocol options the client asked for. pgsluice supports none, so all
/// of them go into NegotiateProtocolVersion's list of unrecognised options.
pub fn protocol_options(params: &[(String, String)]) -> Vec<&str> {
    params
        .iter()
        .filter(|(name, _)| name.starts_with(PROTOCOL_OPTION_PREFIX))
        .map(|(name, _)| name.as_str())
        .collect()
}

/// Parses the libpq `options` startup parameter into `(name, value)` settings.
///
/// Splits like PostgreSQL's pg_split_opts: on whitespace, a backslash makes the next character
/// literal (so `\ ` is a space inside a word). Each word is then read like the backend's
/// command line: `-c name=value`, `-cname=value` or `--name=value`; as in ParseLongOption,
/// dashes in the name become underscores (`--work-mem=64MB` sets `work_mem`). Other
/// command-line switches are refused: they configure a backend, not a session.
pub fn parse_options(options: &str) -> Result<Vec<(String, String)>, ProtocolError> {
    let mut words = split_options(options).into_iter();
    let mut settings = Vec::new();
    while let Some(word) = words.next() {
        let (setting, flag) = if let Some(long) = word.strip_prefix("--") {
            (long.to_owned(), "--")
        } else if word == "-c" {
            let next = words
                .next()
                .ok_or_else(|| bad_option("-c requires an argument".to_owned()))?;
            (next, "-c ")
        } else if let Some(short) = word.strip_prefix("-c") {
            (short.to_owned(), "-c ")
        } else if word.starts_with('-') {
            return Err(bad_option(format!(
                "unsupported switch \"{word}\" in options, only -c name=value and \
                 --name=value are accepted"
            )));
        } else {
            return Err(bad_option(format!(
                "invalid command-line argument \"{word}\" in options"
            )));
        };
        let Some((name, value)) = setting.split_once('=') else {
            return Err(bad_option(format!("{flag}{setting} requires a value")));
        };
        if name.is_empty() {
            return Err(bad_option(format!("{flag}{setting} has an empty name")));
        }
        settings.push((name.replace('-', "_"), value.to_owned()));
    }
    Ok(settings)
}

fn split_options(options: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut escaped = false;
    for c in options.chars() {
        if escaped {
            word.push(c);
            escaped = false;
        } else if c == '\\' {
            // A trailing backslash escapes nothing and is dropped, as pg_split_opts does.
            escaped = true;
            in_word = true;
        } else if is_c_space(c) {
            if in_word {
                words.push(std::mem::take(&mut word));
                in_word = false;
            }
        } else {
            word.push(c);
            in_word = true;
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// C isspace() in the C locale, which PostgreSQL uses here; includes vertical tab, which
/// `char::is_ascii_whitespace` does not.
fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

fn bad_option(what: String) -> ProtocolError {
    ProtocolError::MalformedStartup(what)
}

fn lookup<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Name/value pairs of NUL-terminated strings, then one more NUL that must be the last byte
/// (PostgreSQL: "invalid startup packet layout: expected terminator as last byte").
fn parse_params(mut rest: &[u8]) -> Result<Vec<(String, String)>, ProtocolError> {
    let mut params = Vec::new();
    loop {
        let (name, after) =
            split_cstr(rest).ok_or_else(|| malformed("expected terminator as last byte"))?;
        if name.is_empty() {
            if !after.is_empty() {
                return Err(malformed("empty parameter name"));
            }
            return Ok(params);
        }
        let (value, after) =
            split_cstr(after).ok_or_else(|| malformed("missing value for a parameter"))?;
        params.push((utf8(name)?, utf8(value)?));
        rest = after;
    }
}

fn split_cstr(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let nul = buf.iter().position(|&b| b == 0)?;
    Some((&buf[..nul], &buf[nul + 1..]))
}

fn utf8(bytes: &[u8]) -> Result<String, ProtocolError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| malformed("parameter is not valid UTF-8"))
}

fn malformed(what: &str) -> ProtocolError {
    ProtocolError::MalformedStartup(what.to_owned())
}

fn expect_length(len: usize, want: usize, what: &str) -> Result<(), ProtocolError> {
    if len == want {
        Ok(())
    } else {
        Err(ProtocolError::MalformedStartup(format!(
            "invalid length of {what} packet: {len} bytes, expected {want}"
        )))
    }
}

fn read_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use postgres_protocol::message::frontend;

    fn startup_bytes(params: &[(&str, &str)]) -> BytesMut {
        let mut buf = BytesMut::new();
        frontend::startup_message(params.iter().copied(), &mut buf).unwrap();
        buf
    }

    fn raw_packet(version: u32, body: &[u8]) -> Vec<u8> {
        let len = (8 + body.len()) as u32;
        let mut out = len.to_be_bytes().to_vec();
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn startup_message_from_a_real_client_encoder() {
        let buf = startup_bytes(&[("user", "alice"), ("database", "shop")]);
        let (packet, used) = parse_startup(&buf).unwrap().unwrap();
        assert_eq!(used, buf.len());
        assert_eq!(
            packet,
            StartupPacket::Startup {
                major: 3,
                minor: 0,
                params: owned(&[("user", "alice"), ("database", "shop")]),
            }
        );
    }

    #[test]
    fn ssl_gssenc_and_cancel_requests() {
        let mut buf = BytesMut::new();
        frontend::ssl_request(&mut buf);
        assert_eq!(
            parse_startup(&buf).unwrap(),
            Some((StartupPacket::SslRequest, 8))
        );
        let gss = raw_packet(GSSENC_REQUEST_CODE, b"");
        assert_eq!(
            parse_startup(&gss).unwrap(),
            Some((StartupPacket::GssEncRequest, 8))
        );
        let mut buf = BytesMut::new();
        frontend::cancel_request(4242, -7, &mut buf);
        let expected = StartupPacket::CancelRequest {
            process_id: 4242,
            secret_key: (-7i32) as u32,
        };
        assert_eq!(parse_startup(&buf).unwrap(), Some((expected, 16)));
    }

    #[test]
    fn request_with_wrong_length_is_rejected() {
        let ssl = raw_packet(SSL_REQUEST_CODE, &[0, 0, 0, 0]);
        assert!(matches!(
            parse_startup(&ssl),
            Err(ProtocolError::MalformedStartup(_))
        ));
        let cancel = raw_packet(CANCEL_REQUEST_CODE, &[0; 4]);
        assert!(matches!(
            parse_startup(&cancel),
            Err(ProtocolError::MalformedStartup(_))
        ));
    }

    #[test]
    fn bytes_after_the_packet_are_left_for_the_next_one() {
        let mut buf = BytesMut::new();
        frontend::ssl_request(&mut buf);
        buf.extend_from_slice(&startup_bytes(&[("user", "bob")]));
        let (packet, used) = parse_startup(&buf).unwrap().unwrap();
        assert_eq!((packet, used), (StartupPacket::SslRequest, 8));
        let (packet, _) = parse_startup(&buf[used..]).unwrap().unwrap();
        assert!(matches!(packet, StartupPacket::Startup { .. }));
    }

    #[test]
    fn partial_input_needs_more() {
        let buf = startup_bytes(&[("user", "alice")]);
        for cut in 0..buf.len() {
            assert_eq!(parse_startup(&buf[..cut]).unwrap(), None, "cut at {cut}");
        }
    }

    #[test]
    fn bad_lengths_rejected_from_the_header_alone() {
        assert!(matches!(
            parse_startup(&7u32.to_be_bytes()),
            Err(ProtocolError::StartupTooShort { len: 7 })
        ));
        assert!(matches!(
            parse_startup(&10_001u32.to_be_bytes()),
            Err(ProtocolError::StartupTooLong {
                len: 10_001,
                max: 10_000
            })
        ));
        // A negative int32 length is just a huge one.
        assert!(matches!(
            parse_startup(&(-1i32).to_be_bytes()),
            Err(ProtocolError::StartupTooLong { .. })
        ));
        // The limit itself is fine: only the header is here, so we wait for the rest.
        assert_eq!(parse_startup(&10_000u32.to_be_bytes()).unwrap(), None);
    }

    #[test]
    fn newer_minor_version_is_accepted_with_protocol_options() {
        let body = b"user\0u\0_pq_.compression\0on\0\0";
        let buf = raw_packet(3 << 16 | 2, body);
        let (packet, _) = parse_startup(&buf).unwrap().unwrap();
        let StartupPacket::Startup {
            major,
            minor,
            params,
        } = packet
        else {
            panic!("not a startup message");
        };
        assert_eq!((major, minor), (3, 2));
        assert_eq!(protocol_options(&params), vec!["_pq_.compression"]);
    }

    #[test]
    fn other_major_versions_are_unsupported() {
        let buf = raw_packet(2 << 16, b"user\0u\0\0");
        let err = parse_startup(&buf).unwrap_err();
        assert!(matches!(
            err,
            ProtocolError::UnsupportedProtocol { major: 2, minor: 0 }
        ));
        assert_eq!(err.sqlstate(), "0A000");
        // An unknown request code (major 1234) is an unsupported version too.
        let buf = raw_packet(80_877_199, b"");
        assert!(matches!(
            parse_startup(&buf),
            Err(ProtocolError::UnsupportedProtocol { major: 1234, .. })
        ));
    }

    #[test]
    fn malformed_params_are_rejected() {
        let cases: [&[u8]; 6] = [
            b"",                         // no terminator at all
            b"user\0alice\0",            // missing final NUL
            b"user\0alice\0database\0",  // name without value
            b"user\0alice",              // value not terminated
            b"user\0\xff\xfe\0\0",       // not UTF-8
            b"user\0alice\0\0extra\0\0", // bytes after the terminator
        ];
        for body in cases {
            let buf = raw_packet(3 << 16, body);
            assert!(
                matches!(parse_startup(&buf), Err(ProtocolError::MalformedStartup(_))),
                "accepted {body:?}"
            );
        }
    }

    #[test]
    fn user_is_required_and_database_defaults_to_it() {
        let buf = startup_bytes(&[("database", "shop")]);
        let err = parse_startup(&buf).unwrap_err();
        assert!(matches!(err, ProtocolError::MissingUser));
        assert_eq!(err.sqlstate(), "28000");
        let buf = startup_bytes(&[("user", "")]);
        assert!(matches!(
            parse_startup(&buf),
            Err(ProtocolError::MissingUser)
        ));

        let params = owned(&[("user", "alice")]);
        assert_eq!(user(&params), Some("alice"));
        assert_eq!(database(&params), "alice");
        let params = owned(&[("user", "alice"), ("database", "")]);
        assert_eq!(database(&params), "alice");
        let params = owned(&[("database", "a"), ("user", "u"), ("database", "b")]);
        assert_eq!(database(&params), "b");
        assert_eq!(database(&[]), "");
    }

    fn settings(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        owned(pairs)
    }

    #[test]
    fn options_with_dash_c() {
        let got = parse_options("-c search_path=a,b -c statement_timeout=5s").unwrap();
        assert_eq!(
            got,
            settings(&[("search_path", "a,b"), ("statement_timeout", "5s")])
        );
        let got = parse_options("  -capplication_name=pos\t-c x.y=1=2 ").unwrap();
        assert_eq!(
            got,
            settings(&[("application_name", "pos"), ("x.y", "1=2")])
        );
        assert_eq!(parse_options("").unwrap(), vec![]);
        assert_eq!(parse_options(" \t\n").unwrap(), vec![]);
    }

    #[test]
    fn options_with_escapes() {
        let got = parse_options(r"-c search_path=my\ schema,public").unwrap();
        assert_eq!(got, settings(&[("search_path", "my schema,public")]));
        let got = parse_options(r"-c a=back\\slash -c b=x\y").unwrap();
        assert_eq!(got, settings(&[("a", r"back\slash"), ("b", "xy")]));
        let got = parse_options(r"-c a=end\").unwrap();
        assert_eq!(got, settings(&[("a", "end")]));
    }

    #[test]
    fn options_long_form_maps_dashes() {
        let got = parse_options("--work-mem=64MB --search_path=a-b").unwrap();
        assert_eq!(
            got,
            settings(&[("work_mem", "64MB"), ("search_path", "a-b")])
        );
        let got = parse_options("-c lock-timeout=1s").unwrap();
        assert_eq!(got, settings(&[("lock_timeout", "1s")]));
    }

    #[test]
    fn options_errors() {
        for bad in [
            "-c",
            "-c work_mem",
            "--work_mem",
            "-c =1",
            "-B 100",
            "work_mem=1",
            "-c a=1 stray",
        ] {
            assert!(
                matches!(parse_options(bad), Err(ProtocolError::MalformedStartup(_))),
                "accepted {bad:?}"
            );
        }
    }

    proptest::proptest! {
        /// Whatever a client sends first, the parser answers without panicking, and never
        /// claims more bytes than it was given.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            if let Ok(Some((_, used))) = parse_startup(&bytes) {
                proptest::prop_assert!(used <= bytes.len());
            }
        }
    }
}

//! Fuzzes the first packet of a client connection (`protocol::startup::parse_startup`): the
//! bytes a client sends before it has authenticated, so anyone who can reach the port controls
//! them. Checks: no panic; a packet is never longer than MAX_STARTUP_PACKET_LENGTH nor than the
//! input; "need more" only while the declared packet is incomplete; a parsed packet re-encodes to
//! exactly the bytes it was read from; the helpers on its parameters never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgsluice::protocol::startup::{
    self, StartupPacket, CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE, MAX_STARTUP_PACKET_LENGTH,
    MIN_STARTUP_PACKET_LENGTH, SSL_REQUEST_CODE,
};

/// Writes `packet` the way a client would: Int32 length (counting itself), then the body.
fn encode(packet: &StartupPacket) -> Vec<u8> {
    let mut body = Vec::new();
    match packet {
        StartupPacket::SslRequest => body.extend_from_slice(&SSL_REQUEST_CODE.to_be_bytes()),
        StartupPacket::GssEncRequest => body.extend_from_slice(&GSSENC_REQUEST_CODE.to_be_bytes()),
        StartupPacket::CancelRequest {
            process_id,
            secret_key,
        } => {
            body.extend_from_slice(&CANCEL_REQUEST_CODE.to_be_bytes());
            body.extend_from_slice(&process_id.to_be_bytes());
            body.extend_from_slice(&secret_key.to_be_bytes());
        }
        StartupPacket::Startup {
            major,
            minor,
            params,
        } => {
            body.extend_from_slice(&major.to_be_bytes());
            body.extend_from_slice(&minor.to_be_bytes());
            for (name, value) in params {
                body.extend_from_slice(name.as_bytes());
                body.push(0);
                body.extend_from_slice(value.as_bytes());
                body.push(0);
            }
            body.push(0);
        }
    }
    let mut out = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

fuzz_target!(|data: &[u8]| {
    match startup::parse_startup(data) {
        Ok(None) => {
            // Waiting is only right while the declared packet has not fully arrived.
            if let Some(len) = data.first_chunk::<4>() {
                let len = u32::from_be_bytes(*len) as usize;
                assert!(
                    len > data.len(),
                    "need more with {len} of {} bytes",
                    data.len()
                );
                assert!(len <= MAX_STARTUP_PACKET_LENGTH);
            }
        }
        Ok(Some((packet, used))) => {
            assert!((MIN_STARTUP_PACKET_LENGTH..=MAX_STARTUP_PACKET_LENGTH).contains(&used));
            assert!(used <= data.len());
            // What follows the packet never changes how it is read.
            let alone = startup::parse_startup(&data[..used]).expect("same packet alone");
            assert_eq!(alone, Some((packet.clone(), used)));
            assert_eq!(encode(&packet), &data[..used], "re-encoding differs");
            if let StartupPacket::Startup { params, .. } = &packet {
                let user = startup::user(params).expect("a parsed StartupMessage has a user");
                assert!(!user.is_empty());
                assert!(!startup::database(params).is_empty());
                for option in startup::protocol_options(params) {
                    assert!(option.starts_with(startup::PROTOCOL_OPTION_PREFIX));
                }
                for (name, value) in params {
                    if name == "options" {
                        check_options(value);
                    }
                }
            }
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            assert!(e.sqlstate().len() == 5);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        check_options(text);
    }
});

/// The libpq `options` parameter: every setting read has a non-empty name with no dash.
fn check_options(text: &str) {
    if let Ok(settings) = startup::parse_options(text) {
        for (name, _) in settings {
            assert!(!name.is_empty() && !name.contains('-'), "bad name {name:?}");
        }
    }
}

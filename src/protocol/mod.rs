//! Sans-io PostgreSQL wire protocol code: startup packets, tagged-message framing, the client
//! messages read during login and the server messages pgsluice emits. No sockets here, so every
//! parser can be unit-tested, property-tested and fuzzed on plain byte slices.
//! Called by client/, server/, auth/ and admin/. Parsers never panic on any input and never
//! buffer more than the length limit they were given.

pub mod backend;
pub mod codec;
pub mod extended;
pub mod frontend;
pub mod notification;
pub mod params;
pub mod scanner;
pub mod session_effects;
mod session_sql;
pub mod sqlstate;
pub mod startup;
pub mod tags;
pub mod tracker;

/// Everything that can be wrong with bytes received from a peer.
///
/// Messages are safe to show to the client (they go out in a FATAL ErrorResponse): they name
/// the rule broken and the limit, never the content of the packet (which could hold a password).
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("invalid length of startup packet: {len} bytes, the minimum is 8")]
    StartupTooShort { len: usize },
    #[error("invalid length of startup packet: {len} bytes, the maximum is {max}")]
    StartupTooLong { len: usize, max: usize },
    #[error("unsupported frontend protocol {major}.{minor}: server supports 3.0")]
    UnsupportedProtocol { major: u16, minor: u16 },
    #[error("invalid startup packet: {0}")]
    MalformedStartup(String),
    #[error("no PostgreSQL user name specified in startup packet")]
    MissingUser,
    #[error(
        "message of type {} is {len} bytes long, over the limit of {max} bytes \
         (max_packet_size)",
        tag_name(*tag)
    )]
    MessageTooLong { tag: u8, len: usize, max: usize },
    #[error("invalid message length {len} for message of type {}", tag_name(*tag))]
    InvalidLength { tag: u8, len: usize },
    #[error("invalid message format: {what}")]
    Malformed { what: String },
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
}

impl ProtocolError {
    /// The SQLSTATE to put in the FATAL ErrorResponse sent to the client.
    ///
    /// Mirrors what PostgreSQL's postmaster reports for the same fault (ProcessStartupPacket):
    /// `0A000` for an unsupported protocol version, `28000` for a missing user name, `08P01`
    /// for every framing or layout fault.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            ProtocolError::UnsupportedProtocol { .. } => sqlstate::FEATURE_NOT_SUPPORTED,
            ProtocolError::MissingUser => sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
            ProtocolError::Io(_) => sqlstate::CONNECTION_FAILURE,
            _ => sqlstate::PROTOCOL_VIOLATION,
        }
    }

    pub(crate) fn malformed(what: impl Into<String>) -> Self {
        ProtocolError::Malformed { what: what.into() }
    }
}

/// A message tag as a person reads it in the docs: `'Q'`, or `0x00` when not printable.
fn tag_name(tag: u8) -> String {
    if tag.is_ascii_graphic() {
        format!("'{}'", tag as char)
    } else {
        format!("0x{tag:02x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_follow_postgres() {
        let unsupported = ProtocolError::UnsupportedProtocol { major: 2, minor: 0 };
        assert_eq!(unsupported.sqlstate(), "0A000");
        assert_eq!(ProtocolError::MissingUser.sqlstate(), "28000");
        assert_eq!(
            ProtocolError::StartupTooShort { len: 3 }.sqlstate(),
            "08P01"
        );
        assert_eq!(ProtocolError::malformed("x").sqlstate(), "08P01");
        let io = ProtocolError::from(std::io::Error::other("reset"));
        assert_eq!(io.sqlstate(), "08006");
    }

    #[test]
    fn messages_name_tag_and_limit() {
        let err = ProtocolError::MessageTooLong {
            tag: b'Q',
            len: 2_000_000,
            max: 1_000_000,
        };
        assert_eq!(
            err.to_string(),
            "message of type 'Q' is 2000000 bytes long, over the limit of 1000000 bytes \
             (max_packet_size)"
        );
        let err = ProtocolError::InvalidLength { tag: 0, len: 2 };
        assert_eq!(
            err.to_string(),
            "invalid message length 2 for message of type 0x00"
        );
    }
}

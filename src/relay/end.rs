//! How a relay ends: `RelayEnd` says which side stopped it and why, for `client::settle` to
//! decide what becomes of the server and what the client is told; `ServerLost` keeps the
//! cause when it was the server connection that failed.

use crate::prepared::LimitError;
use crate::protocol::ProtocolError;

/// Why the relay returned.
#[derive(Debug)]
pub(crate) enum RelayEnd {
    /// The client sent Terminate.
    ClientTerminated,
    /// The client sent Terminate inside COPY FROM STDIN; Postgres's answer was relayed and
    /// the server closed, as it does on a direct connection.
    TerminatedInCopy,
    /// The client closed its socket or it failed.
    ClientGone,
    /// The client broke the protocol (e.g. a message over max_packet_size).
    ClientProtocol(ProtocolError),
    /// The server closed or failed; it cannot be reused.
    ServerGone(ServerLost),
    /// A stop at the next idle point was asked for and the server reached one.
    Idle,
    /// Statement pooling, and the client opened a transaction block. The ReadyForQuery that
    /// says so has not been forwarded.
    TransactionBlock,
    /// The client went past its prepared-statement limits; that Parse was not forwarded.
    StatementLimit(LimitError),
}

/// How the server connection was lost in the middle of a relay.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServerLost {
    #[error("server closed the connection")]
    Closed,
    /// Reading from or writing to the server failed.
    #[error(transparent)]
    Io(std::io::Error),
    /// The server sent bytes that are not a valid message.
    #[error(transparent)]
    Protocol(ProtocolError),
}

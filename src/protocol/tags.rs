//! Message type bytes by name (PostgreSQL docs "Message Formats"). The same byte means
//! different messages in the two directions — 'D' is Describe from the client and DataRow from
//! the server, 'S' Sync and ParameterStatus — so each direction has a module of its own.

/// Messages a client (frontend) sends.
pub mod frontend_tag {
    pub const BIND: u8 = b'B';
    pub const CLOSE: u8 = b'C';
    pub const DESCRIBE: u8 = b'D';
    pub const EXECUTE: u8 = b'E';
    pub const FLUSH: u8 = b'H';
    pub const FUNCTION_CALL: u8 = b'F';
    pub const PARSE: u8 = b'P';
    pub const QUERY: u8 = b'Q';
    pub const SYNC: u8 = b'S';
    pub const TERMINATE: u8 = b'X';
    /// Describe and Close: the kind byte naming a prepared statement (`P` names a portal).
    pub const TARGET_STATEMENT: u8 = b'S';
}

/// Messages a server (backend) sends.
pub mod backend_tag {
    pub const COMMAND_COMPLETE: u8 = b'C';
    pub const COPY_BOTH_RESPONSE: u8 = b'W';
    pub const COPY_IN_RESPONSE: u8 = b'G';
    pub const DATA_ROW: u8 = b'D';
    pub const ERROR_RESPONSE: u8 = b'E';
    pub const NO_DATA: u8 = b'n';
    pub const PARAMETER_STATUS: u8 = b'S';
    pub const READY_FOR_QUERY: u8 = b'Z';
    pub const ROW_DESCRIPTION: u8 = b'T';
}

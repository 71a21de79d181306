//! Message type bytes by name (PostgreSQL docs "Message Formats"). The same byte means
//! different messages in the two directions — 'D' is Describe from the client and DataRow from
//! the server, 'S' Sync and ParameterStatus — so each direction has a module of its own.

/// Messages a client (frontend) sends.
pub mod frontend_tag {
    pub const BIND: u8 = b'B';
    pub const CLOSE: u8 = b'C';
    pub const COPY_DATA: u8 = b'd';
    pub const COPY_DONE: u8 = b'c';
    pub const COPY_FAIL: u8 = b'f';
    pub const DESCRIBE: u8 = b'D';
    pub const EXECUTE: u8 = b'E';
    pub const FLUSH: u8 = b'H';
    pub const FUNCTION_CALL: u8 = b'F';
    pub const PARSE: u8 = b'P';
    /// PasswordMessage, SASLInitialResponse and SASLResponse share it.
    pub const PASSWORD_MESSAGE: u8 = b'p';
    pub const QUERY: u8 = b'Q';
    pub const SYNC: u8 = b'S';
    pub const TERMINATE: u8 = b'X';
    /// Describe and Close: the kind byte naming a prepared statement.
    pub const TARGET_STATEMENT: u8 = b'S';
    /// Describe and Close: the kind byte naming a portal.
    pub const TARGET_PORTAL: u8 = b'P';
}

/// Messages a server (backend) sends.
pub mod backend_tag {
    /// Every Authentication* message; the first Int32 of the body says which.
    pub const AUTHENTICATION: u8 = b'R';
    pub const BACKEND_KEY_DATA: u8 = b'K';
    pub const BIND_COMPLETE: u8 = b'2';
    pub const CLOSE_COMPLETE: u8 = b'3';
    pub const COMMAND_COMPLETE: u8 = b'C';
    pub const COPY_BOTH_RESPONSE: u8 = b'W';
    pub const COPY_DATA: u8 = b'd';
    pub const COPY_DONE: u8 = b'c';
    pub const COPY_IN_RESPONSE: u8 = b'G';
    pub const COPY_OUT_RESPONSE: u8 = b'H';
    pub const DATA_ROW: u8 = b'D';
    pub const EMPTY_QUERY_RESPONSE: u8 = b'I';
    pub const ERROR_RESPONSE: u8 = b'E';
    pub const FUNCTION_CALL_RESPONSE: u8 = b'V';
    pub const NEGOTIATE_PROTOCOL_VERSION: u8 = b'v';
    pub const NO_DATA: u8 = b'n';
    pub const NOTICE_RESPONSE: u8 = b'N';
    pub const NOTIFICATION_RESPONSE: u8 = b'A';
    pub const PARAMETER_DESCRIPTION: u8 = b't';
    pub const PARAMETER_STATUS: u8 = b'S';
    pub const PARSE_COMPLETE: u8 = b'1';
    pub const PORTAL_SUSPENDED: u8 = b's';
    pub const READY_FOR_QUERY: u8 = b'Z';
    pub const ROW_DESCRIPTION: u8 = b'T';
}

/// The transaction status byte of ReadyForQuery.
pub mod tx_status {
    /// Idle: not in a transaction block.
    pub const IDLE: u8 = b'I';
    /// In a transaction block.
    pub const IN_TRANSACTION: u8 = b'T';
    /// In a failed transaction block: queries are rejected until it ends.
    pub const FAILED: u8 = b'E';
}

/// Field types inside ErrorResponse and NoticeResponse (docs "Error and Notice Message Fields").
pub mod error_field {
    /// Severity, possibly localized.
    pub const SEVERITY_LOCALIZED: u8 = b'S';
    /// Severity, never localized (PostgreSQL 9.6 and later).
    pub const SEVERITY: u8 = b'V';
    pub const CODE: u8 = b'C';
    pub const MESSAGE: u8 = b'M';
    pub const DETAIL: u8 = b'D';
    pub const HINT: u8 = b'H';
}

/// The one-byte answer to an SSLRequest (docs "SSL Session Encryption").
pub mod ssl_answer {
    pub const WILLING: u8 = b'S';
    pub const UNWILLING: u8 = b'N';
}

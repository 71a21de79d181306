//! The SQLSTATEs pgsluice sends or looks for, named as in PostgreSQL's errcodes (PostgreSQL
//! docs, Appendix A "PostgreSQL Error Codes"), so code says which condition it means. The
//! values are what clients and drivers match on; never change one.

/// `00000` successful_completion: the code of an informational NOTICE.
pub const SUCCESSFUL_COMPLETION: &str = "00000";
/// `01000` warning.
pub const WARNING: &str = "01000";
/// `08006` connection_failure.
pub const CONNECTION_FAILURE: &str = "08006";
/// `08P01` protocol_violation.
pub const PROTOCOL_VIOLATION: &str = "08P01";
/// `0A000` feature_not_supported.
pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
/// `22023` invalid_parameter_value.
pub const INVALID_PARAMETER_VALUE: &str = "22023";
/// `25P03` idle_in_transaction_session_timeout.
pub const IDLE_IN_TRANSACTION_SESSION_TIMEOUT: &str = "25P03";
/// `25P04` transaction_timeout.
pub const TRANSACTION_TIMEOUT: &str = "25P04";
/// `26000` invalid_sql_statement_name: no prepared statement of that name.
pub const INVALID_SQL_STATEMENT_NAME: &str = "26000";
/// `28000` invalid_authorization_specification.
pub const INVALID_AUTHORIZATION_SPECIFICATION: &str = "28000";
/// `28P01` invalid_password.
pub const INVALID_PASSWORD: &str = "28P01";
/// `3D000` invalid_catalog_name: no such database.
pub const INVALID_CATALOG_NAME: &str = "3D000";
/// `42501` insufficient_privilege.
pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
/// `42601` syntax_error.
pub const SYNTAX_ERROR: &str = "42601";
/// `42704` undefined_object.
pub const UNDEFINED_OBJECT: &str = "42704";
/// `42P01` undefined_table.
pub const UNDEFINED_TABLE: &str = "42P01";
/// `53300` too_many_connections.
pub const TOO_MANY_CONNECTIONS: &str = "53300";
/// `53400` configuration_limit_exceeded.
pub const CONFIGURATION_LIMIT_EXCEEDED: &str = "53400";
/// `55P02` cant_change_runtime_param.
pub const CANT_CHANGE_RUNTIME_PARAM: &str = "55P02";
/// `57014` query_canceled.
pub const QUERY_CANCELED: &str = "57014";
/// `57P01` admin_shutdown.
pub const ADMIN_SHUTDOWN: &str = "57P01";
/// `57P02` crash_shutdown.
pub const CRASH_SHUTDOWN: &str = "57P02";
/// `57P03` cannot_connect_now.
pub const CANNOT_CONNECT_NOW: &str = "57P03";
/// `57P05` idle_session_timeout.
pub const IDLE_SESSION_TIMEOUT: &str = "57P05";
/// `F0000` config_file_error.
pub const CONFIG_FILE_ERROR: &str = "F0000";
/// `XX000` internal_error.
pub const INTERNAL_ERROR: &str = "XX000";

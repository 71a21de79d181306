//! The roles, database and pg_hba.conf every throwaway cluster gets, one per login method.
//! Called by `pg.rs` once initdb has run. Invariant: each role's stored secret kind matches its
//! name (md5_user really stores an md5 hash, scram_user a SCRAM verifier), because the pooler's
//! server-side login must be tested against the real thing, not against trust.

/// Superuser created by `initdb -U postgres`; trusted locally and on 127.0.0.1.
pub const SUPERUSER: &str = "postgres";
/// The database tests work in (all roles may connect and create in `public`).
pub const TEST_DB: &str = "testdb";

/// Logs in without a password (hba `trust`).
pub const TRUST_USER: &str = "trust_user";
/// What the pooler's userlist holds for `trust_user`; Postgres itself never asks for it.
pub const TRUST_PASS: &str = "trustpass";
/// Stored as an md5 hash; hba method `md5`.
pub const MD5_USER: &str = "md5_user";
pub const MD5_PASS: &str = "md5pass";
/// Stored as a SCRAM-SHA-256 verifier; hba method `scram-sha-256`.
pub const SCRAM_USER: &str = "scram_user";
pub const SCRAM_PASS: &str = "scrampass";
/// Stored as SCRAM; hba method `password` (cleartext over the wire).
pub const PLAIN_USER: &str = "plain_user";
pub const PLAIN_PASS: &str = "plainpass";
/// pgsluice's admin console user (exists only in the pooler's userlist, not in Postgres).
pub const ADMIN_USER: &str = "admin";
pub const ADMIN_PASS: &str = "adminpass";

/// Every login role with the password a client should present (trust_user: the userlist one).
pub const ROLES: [(&str, &str); 4] = [
    (TRUST_USER, TRUST_PASS),
    (MD5_USER, MD5_PASS),
    (SCRAM_USER, SCRAM_PASS),
    (PLAIN_USER, PLAIN_PASS),
];

/// pg_hba.conf, first match wins (PostgreSQL docs, "The pg_hba.conf File"). Written before the
/// server first starts, so no connection can ever see initdb's all-trust file.
pub const PG_HBA: &str = "\
# written by the pgsluice test harness
local all postgres                 trust
local replication postgres         trust
host  all postgres   127.0.0.1/32  trust
host  all trust_user 127.0.0.1/32  trust
host  all md5_user   127.0.0.1/32  md5
host  all scram_user 127.0.0.1/32  scram-sha-256
host  all plain_user 127.0.0.1/32  password
local all all                      trust
";

/// Run by the superuser over the Unix socket. `password_encryption` decides how CREATE ROLE
/// stores a password (docs: runtime-config-connection, "password_encryption"), so it is set
/// per role right before each one.
pub const SETUP_SQL: &str = "\
SET password_encryption = 'md5';
CREATE ROLE md5_user LOGIN PASSWORD 'md5pass';
SET password_encryption = 'scram-sha-256';
CREATE ROLE scram_user LOGIN PASSWORD 'scrampass';
CREATE ROLE plain_user LOGIN PASSWORD 'plainpass';
CREATE ROLE trust_user LOGIN;
CREATE DATABASE testdb OWNER postgres;
GRANT CONNECT, TEMPORARY ON DATABASE testdb TO PUBLIC;
\\connect testdb
GRANT CREATE, USAGE ON SCHEMA public TO PUBLIC;
";

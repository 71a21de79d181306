//! Authentication, TLS on both sides, secrets kept out of logs, and login storms that must not
//! stall other clients.

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod auth_query;
mod hba;
mod login_storm;
mod secrets;
mod tls_clients;
mod tls_servers;

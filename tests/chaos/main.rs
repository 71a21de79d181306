//! The long chaos checks: faulty clients, a fault-injecting network between pgsluice and
//! Postgres, Postgres restarts under load, and isolation under random server kills.

#[path = "../common/mod.rs"]
mod common;

mod clients;
mod isolation;
mod network;
mod server;

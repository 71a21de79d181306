//! LISTEN/NOTIFY through pgsluice in transaction and statement pooling: notifications reach
//! idle subscribers and subscribers between their transactions, in Postgres's order, once,
//! from one listening connection per pool; UNLISTEN, DISCARD ALL, a rolled-back LISTEN and
//! pg_listening_channels() behave as on a direct connection; a slow reader is cut off alone;
//! a lost listening connection is reported to its subscribers and replaced.

#[path = "../common/mod.rs"]
mod common;

mod delivery;
mod example;
mod failures;
mod semantics;
mod subscriber;

//! Protocol-level named prepared statements in transaction pooling: with real drivers, at the
//! wire level, in the protocol's corners, and against the pooler's bounds.

#[path = "../common/mod.rs"]
mod common;

mod fidelity;
mod limits;
mod names;
mod wire;

//! The relay, byte for byte: a real client's view in session mode, raw message scripts, COPY
//! both ways, and property tests of the message encoders.

#[path = "../common/mod.rs"]
mod common;

mod copy;
mod encoders;
mod relay;
mod wire;

//! The admin console: every SHOW, the control commands by their effect on real clients, and
//! live reconfiguration.

#[path = "../common/mod.rs"]
mod common;

mod control;
mod exporter;
mod reload;
mod show;

//! Prometheus metrics through a real scrape, and the shipped alert rules and dashboard against
//! it.

#[path = "../common/mod.rs"]
mod common;

mod scrape;
mod shipped_files;

//! Fuzzes the pooler.toml loader (`config::Config::parse`): TOML parsing, the schema
//! (unknown keys, wrong types, suggestions), and validation. The file is written by an operator,
//! but RELOAD and SET reach the same code, and a bad file must give errors, never a crash.
//! Checks: no panic; a file that loads still loads after its text is parsed again (parsing is
//! deterministic); problems come back as a non-empty list, each with a message.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pgsluice::config::Config;

fuzz_target!(|data: &[u8]| {
    // Config::load reads with read_to_string: only UTF-8 reaches the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(text, Path::new("/etc/pgsluice")) {
        Ok(config) => {
            let again = Config::parse(text, Path::new("/etc/pgsluice")).expect("parses twice");
            assert_eq!(again, config);
            // Lookups on any name work on a valid config.
            let _ = config.pool_mode_for("db", "user");
            let _ = config.pool_size_for("db", "user");
            let _ = config.timeouts_for("user");
        }
        Err(errors) => {
            assert!(!errors.0.is_empty());
            for problem in &errors.0 {
                assert!(!problem.to_string().is_empty());
            }
        }
    }
});

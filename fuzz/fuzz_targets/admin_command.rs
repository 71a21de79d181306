//! Fuzzes the admin console's command parser (reached through the hidden
//! `pgsluice::fuzz_admin_command`, which decodes a Query body exactly as a console session
//! does). Anyone who can log in to the console as a stats user controls these bytes.
//! Checks: no panic; errors are the parser's own (syntax 42601 or not supported 0A000) with a
//! message; a command that parses gives the same command with one `;` appended.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match pgsluice::fuzz_admin_command(data) {
        Ok(tag) => {
            let text = String::from_utf8_lossy(data);
            let ends_open = !text.trim_end().ends_with(';') && data.last() != Some(&0);
            if ends_open {
                let mut with_semicolon = data.to_vec();
                with_semicolon.push(b';');
                assert_eq!(pgsluice::fuzz_admin_command(&with_semicolon), Ok(tag));
            }
        }
        Err((sqlstate, message)) => {
            assert!(
                matches!(sqlstate, "42601" | "0A000"),
                "{sqlstate}: {message}"
            );
            assert!(!message.is_empty());
        }
    }
});

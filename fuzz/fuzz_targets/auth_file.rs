//! Fuzzes the auth_file loader (`auth::Userlist::parse`, PgBouncer's `"user" "secret"` format)
//! and the stored-secret readers behind it (`auth::Secret::parse`, `auth::ScramSecret::parse`),
//! plus the md5 check that compares a client's response with a stored secret.
//! Checks: no panic; every user read can be looked up; an error names a line that exists and
//! never quotes the file; a parsed SCRAM secret prints back to a string that parses to the same
//! secret; Debug output never shows a secret.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgsluice::auth::{verify_md5, AuthError, ScramSecret, Secret, Userlist};

fn check_userlist(text: &str) {
    match Userlist::parse(text) {
        Ok(list) => {
            assert_eq!(list.users().count(), list.len());
            for user in list.users() {
                assert!(!user.is_empty());
                assert!(list.get(user).is_some());
            }
            assert_eq!(
                format!("{list:?}"),
                format!("Userlist({} users)", list.len())
            );
        }
        Err(AuthError::Userlist { line, message }) => {
            assert!(line >= 1 && line <= text.lines().count(), "line {line}");
            // The messages are fixed texts that never include the line itself.
            assert!(message.starts_with("expected") || message.starts_with("empty"));
        }
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

fn check_secret(text: &str) {
    if let Some(scram) = ScramSecret::parse(text) {
        assert!(scram.iterations > 0 && !scram.salt.is_empty());
        let printed = scram.to_string();
        assert_eq!(ScramSecret::parse(&printed).as_ref(), Some(&scram));
        assert!(!format!("{scram:?}").contains(&printed[14..]));
    }
    let secret = Secret::parse(text);
    let shown = format!("{secret:?}");
    assert!(shown.ends_with("(<redacted>)"), "{shown}");
    // A client's md5 response is compared against any kind of stored secret without panicking;
    // a SCRAM secret can never be satisfied by an md5 response.
    let accepted = verify_md5(&secret, "alice", [1, 2, 3, 4], text.as_bytes());
    if matches!(secret, Secret::Scram(_)) {
        assert!(!accepted);
    }
}

fuzz_target!(|data: &[u8]| {
    // Both are read with read_to_string, so only UTF-8 ever reaches the parsers.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check_userlist(text);
    check_secret(text);
});

//! Unit tests of the admin command parser (kept apart so command.rs stays readable).

use super::*;

fn ok(query: &str) -> Command {
    parse(query).unwrap_or_else(|e| panic!("{query:?} failed: {e}"))
}

fn err(query: &str) -> AdminError {
    match parse(query) {
        Ok(c) => panic!("{query:?} parsed as {c:?}"),
        Err(e) => e,
    }
}

#[test]
fn every_show_subject_in_any_case_with_or_without_semicolon() {
    for (name, what) in SHOW_SUBJECTS {
        let lower = name.to_ascii_lowercase();
        for query in [
            format!("SHOW {name}"),
            format!("show {lower};"),
            format!("  Show\t{lower} ; \n"),
            format!("SHOW \"{lower}\""),
        ] {
            assert_eq!(ok(&query), Command::Show(*what), "{query}");
            assert!(ok(&query).is_show());
        }
    }
}

#[test]
fn control_commands_with_and_without_database() {
    assert_eq!(ok("PAUSE"), Command::Pause(None));
    assert_eq!(ok("pause app;"), Command::Pause(Some("app".into())));
    // Bare names keep their case, as PgBouncer matches them as written.
    assert_eq!(ok("RESUME MyDb"), Command::Resume(Some("MyDb".into())));
    assert_eq!(ok("resume"), Command::Resume(None));
    assert_eq!(
        ok("kill \"Odd \"\"Name\"\"\""),
        Command::Kill(Some("Odd \"Name\"".into()))
    );
    assert_eq!(ok("KILL;"), Command::Kill(None));
    assert_eq!(
        ok("Reconnect shop"),
        Command::Reconnect(Some("shop".into()))
    );
    assert_eq!(ok("RECONNECT"), Command::Reconnect(None));
    assert_eq!(ok("wait_close"), Command::WaitClose(None));
    assert_eq!(
        ok("WAIT_CLOSE db1;"),
        Command::WaitClose(Some("db1".into()))
    );
    assert_eq!(ok("DISABLE shop"), Command::Disable("shop".into()));
    assert_eq!(ok("enable \"shop\";"), Command::Enable("shop".into()));
    assert_eq!(ok("KILL_CLIENT 1234"), Command::KillClient(1234));
    assert_eq!(ok("kill_client 7;"), Command::KillClient(7));
    assert_eq!(ok("RELOAD"), Command::Reload);
    assert_eq!(ok("reload ;"), Command::Reload);
    assert_eq!(ok("SHUTDOWN"), Command::Shutdown(ShutdownMode::Immediate));
    assert_eq!(
        ok("shutdown wait_for_servers"),
        Command::Shutdown(ShutdownMode::WaitForServers)
    );
    assert_eq!(
        ok("SHUTDOWN WAIT_FOR_CLIENTS;"),
        Command::Shutdown(ShutdownMode::WaitForClients)
    );
    for c in [
        ok("PAUSE"),
        ok("RELOAD"),
        ok("KILL_CLIENT 1"),
        ok("SET a=1"),
    ] {
        assert!(!c.is_show(), "{c:?}");
    }
}

#[test]
fn set_forms() {
    let set = |key: &str, value: &str| Command::Set {
        key: key.into(),
        value: value.into(),
    };
    assert_eq!(
        ok("SET default_pool_size = 20"),
        set("default_pool_size", "20")
    );
    assert_eq!(
        ok("set Default_Pool_Size=20;"),
        set("default_pool_size", "20")
    );
    assert_eq!(
        ok("SET server_check_query TO 'select 2'"),
        set("server_check_query", "select 2")
    );
    assert_eq!(ok("set x to 'it''s'"), set("x", "it's"));
    assert_eq!(
        ok("SET query_wait_timeout = 1.5s"),
        set("query_wait_timeout", "1.5s")
    );
    assert_eq!(ok("SET \"Odd\" = \"v\""), set("Odd", "v"));
    assert_eq!(ok("SET admin_users = ''"), set("admin_users", ""));
    assert_eq!(ok("SET a = 1").tag(), "SET a=1");
}

#[test]
fn driver_parameter_probes_are_faked() {
    assert_eq!(
        ok("SHOW client_encoding"),
        Command::Show(ShowWhat::Parameter {
            name: "client_encoding",
            value: "UTF-8"
        })
    );
    assert_eq!(
        ok("show TimeZone;"),
        Command::Show(ShowWhat::Parameter {
            name: "timezone",
            value: "GMT"
        })
    );
    let ignored = ok("SET extra_float_digits = 3");
    assert_eq!(
        ignored,
        Command::IgnoredSet {
            key: "extra_float_digits".into()
        }
    );
    assert!(ignored.is_show(), "stats users may send what drivers send");
    assert_eq!(ignored.tag(), "SET");
}

#[test]
fn empty_queries() {
    assert_eq!(ok(""), Command::Empty);
    assert_eq!(ok("  ;  "), Command::Empty);
    assert_eq!(ok("").tag(), "");
}

#[test]
fn tags_match_pgbouncer() {
    assert_eq!(ok("SHOW POOLS").tag(), "SHOW");
    assert_eq!(ok("PAUSE x").tag(), "PAUSE");
    assert_eq!(ok("KILL_CLIENT 3").tag(), "KILL_CLIENT");
    assert_eq!(ok("WAIT_CLOSE").tag(), "WAIT_CLOSE");
    assert_eq!(ok("SHUTDOWN WAIT_FOR_CLIENTS").tag(), "SHUTDOWN");
}

#[test]
fn unknown_commands_name_only_their_keywords() {
    let e = err("ALTER USER bob PASSWORD 'secret'");
    assert_eq!(e, AdminError::UnknownCommand("ALTER".into()));
    assert!(!e.to_string().contains("secret"));
    assert_eq!(e.hint(), Some("See SHOW HELP; for the console's commands."));
    assert_eq!(
        err("SHOW POOOLS"),
        AdminError::UnknownCommand("SHOW POOOLS".into())
    );
    assert_eq!(err("select 1"), AdminError::UnknownCommand("select".into()));
    assert_eq!(
        err("\"PAUSE\""),
        AdminError::UnknownCommand("\"PAUSE\"".into())
    );
    assert_eq!(err("'x'"), AdminError::UnknownCommand("'x'".into()));
    assert_eq!(err("= 1").sqlstate(), "42601");
    assert_eq!(
        err("SHOW 'pools'"),
        AdminError::UnknownCommand("SHOW 'pools'".into())
    );
}

#[test]
fn unsupported_pgbouncer_commands_say_so() {
    assert_eq!(err("SUSPEND"), AdminError::NotSupported("SUSPEND".into()));
    assert_eq!(err("show fds"), AdminError::NotSupported("SHOW FDS".into()));
    assert_eq!(err("SHOW mem;").sqlstate(), "0A000");
}

#[test]
fn malformed_arguments_are_syntax_errors() {
    for (query, needle) in [
        ("SHOW", "SHOW needs a subject"),
        ("SHOW POOLS CLIENTS", "unexpected CLIENTS after SHOW POOLS"),
        ("PAUSE a b", "unexpected b after PAUSE"),
        ("DISABLE", "DISABLE needs a database name"),
        ("ENABLE 'shop'", "expects a database name, not 'shop'"),
        ("KILL_CLIENT", "KILL_CLIENT needs a client id"),
        ("KILL_CLIENT abc", "\"abc\" is not an id"),
        ("KILL_CLIENT -1", "is not an id"),
        ("KILL_CLIENT 1 2", "unexpected 2 after KILL_CLIENT"),
        ("RELOAD now", "unexpected now after RELOAD"),
        ("SHUTDOWN later", "WAIT_FOR_SERVERS or WAIT_FOR_CLIENTS"),
        (
            "SHUTDOWN WAIT_FOR_CLIENTS now",
            "unexpected now after SHUTDOWN",
        ),
        ("SET", "expected SET key = value"),
        ("SET a", "expected SET key = value"),
        ("SET a b c", "expected SET key = value"),
        ("SET 'a' = 1", "expected SET key = value"),
        ("SET a = ;", "expected SET key = value"),
        ("SET a = 1 2", "unexpected 2 after SET a"),
        ("SHOW POOLS; SHOW CLIENTS", "one command per query"),
        ("PAUSE;;", "one command per query"),
        ("SHOW pools, clients", "unexpected character ','"),
        ("PAUSE \"db", "unterminated quoted identifier"),
    ] {
        let e = err(query);
        assert!(matches!(e, AdminError::Syntax(_)), "{query}: {e:?}");
        assert!(e.to_string().contains(needle), "{query}: {e}");
        assert_eq!(e.sqlstate(), "42601");
    }
}

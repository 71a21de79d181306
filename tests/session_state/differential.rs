//! Transaction pooling a client cannot tell from a direct connection: every scenario is played
//! straight to PostgreSQL and through pgsluice with the client moved to another server between
//! its transactions (`common::differential`), and the replies must be the same. Grouped by
//! what they exercise: the login, session settings, transactions, the extended protocol, COPY
//! and FunctionCall, cancel, and leaving at every point of an exchange.

mod random;

use crate::common::differential::{Differential, Scenario};
use crate::common::raw::Frontend;

fn f() -> Frontend {
    Frontend::new()
}

/// The settings every session scenario looks at. A custom setting is read with coalesce: once
/// any client has set it on a server, Postgres keeps a placeholder there that reads as ''
/// after RESET where a fresh connection reads NULL, and nothing can remove it.
const SHOW_SETTINGS: &str = "SELECT current_setting('application_name'), \
    current_setting('TimeZone'), current_setting('DateStyle'), \
    current_setting('IntervalStyle'), current_setting('statement_timeout'), \
    current_setting('work_mem'), current_setting('search_path'), \
    coalesce(current_setting('app.tenant_id', true), ''), current_user, session_user";

/// A second client after one that set everything: it sees only its own startup's values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_startup_parameters() {
    let d = Differential::start();
    d.run_all(&[
        Scenario::new("login_plain")
            .q(SHOW_SETTINGS)
            .q_moving(&[SHOW_SETTINGS]),
        Scenario::new("login_sets_everything")
            .startup("application_name", "a")
            .startup("TimeZone", "Asia/Kolkata")
            .startup("DateStyle", "SQL, DMY")
            .q("SET IntervalStyle = 'sql_standard'")
            .q_moving(&[SHOW_SETTINGS, SHOW_SETTINGS]),
        Scenario::new("login_after_one_that_set_everything")
            .q(SHOW_SETTINGS)
            .q_moving(&[SHOW_SETTINGS, SHOW_SETTINGS]),
        Scenario::new("login_options")
            .startup(
                "options",
                "-c statement_timeout=5s -c search_path=pg_catalog,public",
            )
            .q(SHOW_SETTINGS)
            .q_moving(&[SHOW_SETTINGS]),
        Scenario::new("login_after_options").q_moving(&[SHOW_SETTINGS, SHOW_SETTINGS]),
        Scenario::new("login_options_escaped_space")
            .startup("options", "-c application_name=two\\ words")
            .q_moving(&["SHOW application_name"]),
        Scenario::new("login_client_encoding")
            .startup("client_encoding", "LATIN1")
            .q("SHOW client_encoding")
            .q_moving(&["SELECT 'é'", "SHOW client_encoding"]),
        Scenario::new("login_bad_guc_value").startup("options", "-c work_mem=bogus"),
        Scenario::new("login_unknown_guc").startup("no_such_parameter", "1"),
        Scenario::new("login_custom_guc")
            .startup("app.tenant_id", "7")
            .q_moving(&[SHOW_SETTINGS]),
        Scenario::new("login_after_custom_guc").q_moving(&[SHOW_SETTINGS]),
    ])
    .await;
}

/// Every form of changing a setting for the session follows the client; none reaches another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_settings_follow_the_client() {
    let d = Differential::start();
    d.run_all(&[
        Scenario::new("set_reported")
            .q("SET TimeZone = 'America/Lima'")
            .q_moving(&["SHOW TimeZone", "SELECT now()::date = now()::date"]),
        Scenario::new("set_unreported")
            .q("SET statement_timeout = '123s'")
            .q("SET work_mem = '5MB'")
            .q_moving(&[SHOW_SETTINGS, SHOW_SETTINGS]),
        Scenario::new("after_set_unreported").q_moving(&[SHOW_SETTINGS]),
        Scenario::new("set_search_path")
            .q("SET search_path = pg_catalog")
            .q_moving(&["SHOW search_path", SHOW_SETTINGS]),
        Scenario::new("set_custom")
            .q("SET app.tenant_id = '42'")
            .q_moving(&[SHOW_SETTINGS]),
        Scenario::new("after_set_custom").q_moving(&[SHOW_SETTINGS]),
        Scenario::new("set_config_session")
            .q("SELECT set_config('app.tenant_id', '9', false)")
            .q_moving(&[SHOW_SETTINGS]),
        Scenario::new("set_config_local")
            .q("BEGIN")
            .q("SELECT set_config('app.tenant_id', '9', true)")
            .q(SHOW_SETTINGS)
            .q("COMMIT")
            .q_moving(&[SHOW_SETTINGS]),
        Scenario::new("set_local")
            .q("BEGIN; SET LOCAL work_mem = '7MB'; SHOW work_mem")
            .q("COMMIT")
            .q_moving(&["SHOW work_mem"]),
        Scenario::new("set_in_rolled_back_transaction")
            .q("BEGIN; SET work_mem = '9MB'")
            .q("ROLLBACK")
            .q_moving(&["SHOW work_mem"]),
        Scenario::new("set_in_committed_transaction")
            .q("BEGIN; SET work_mem = '9MB'")
            .q("COMMIT")
            .q_moving(&["SHOW work_mem"]),
        Scenario::new("set_in_savepoint_rolled_back")
            .q("BEGIN; SET work_mem = '2MB'; SAVEPOINT a; SET work_mem = '3MB'")
            .q("ROLLBACK TO a")
            .q("COMMIT")
            .q_moving(&["SHOW work_mem"]),
        Scenario::new("set_multi_statement")
            .q("SET work_mem = '6MB'; SELECT 1; SET statement_timeout = 4000")
            .q_moving(&[SHOW_SETTINGS]),
        Scenario::new("set_extended")
            .x("SET statement_timeout = 1234", &[])
            .mv()
            .x("SHOW statement_timeout", &[]),
        Scenario::new("set_config_extended")
            .x(
                "SELECT set_config('app.tenant_id', $1, false)",
                &[Some("17")],
            )
            .mv()
            .x(
                "SELECT coalesce(current_setting('app.tenant_id', true), '')",
                &[],
            ),
        Scenario::new("set_session_characteristics")
            .q("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .q_moving(&["SHOW default_transaction_isolation"]),
        Scenario::new("set_failing")
            .q("SET work_mem = 'lots'")
            .q_moving(&["SHOW work_mem"]),
        Scenario::new("reset_one")
            .q("SET work_mem = '11MB'")
            .q_moving(&["RESET work_mem", "SHOW work_mem"]),
        Scenario::new("reset_startup_value")
            .startup("application_name", "wire_start")
            .q("SET application_name = 'changed'")
            .q_moving(&["RESET application_name", "SHOW application_name"]),
        Scenario::new("reset_startup_option")
            .startup("options", "-c statement_timeout=5s")
            .q("SET statement_timeout = '9s'")
            .q_moving(&["RESET statement_timeout", "SHOW statement_timeout"]),
        Scenario::new("reset_all_in_failed_transaction")
            .startup("application_name", "wire_start")
            .q("BEGIN")
            .q("SELECT 1/0")
            .q("RESET ALL")
            .q("ROLLBACK")
            .q_moving(&["SHOW application_name"]),
        Scenario::new("reset_all_rolled_back")
            .startup("application_name", "wire_start")
            .q("SET application_name = 'kept'")
            .q("BEGIN")
            .q("RESET ALL")
            .q("ROLLBACK")
            .q_moving(&["SHOW application_name"]),
        Scenario::new("reset_all")
            .startup("application_name", "wire_start")
            .q("SET work_mem = '12MB'; SET app.tenant_id = '5'")
            .q_moving(&["RESET ALL", SHOW_SETTINGS]),
        Scenario::new("discard_all")
            .startup("TimeZone", "Asia/Tokyo")
            .q("SET work_mem = '13MB'")
            .q_moving(&["DISCARD ALL", SHOW_SETTINGS]),
        Scenario::new("discard_all_in_transaction")
            .startup("TimeZone", "Asia/Tokyo")
            .q("BEGIN")
            .q("DISCARD ALL")
            .q("ROLLBACK")
            .q_moving(&["SHOW TimeZone"]),
        Scenario::new("discard_all_startup_equal_to_default")
            .startup("TimeZone", "Etc/UTC")
            .q("SET TimeZone = 'America/Lima'")
            .q_moving(&["DISCARD ALL", "SHOW TimeZone"]),
        Scenario::new("discard_all_keeps_startup_values")
            .startup("TimeZone", "Asia/Tokyo")
            .q("SET work_mem = '13MB'")
            .q("DISCARD ALL")
            .q_moving(&[SHOW_SETTINGS]),
        Scenario::new("after_resets").q_moving(&[SHOW_SETTINGS]),
    ])
    .await;
}

/// Functions that change the session inside their body, where no client's SQL shows it: a
/// custom setting no client names, a reported and an unreported setting, an advisory lock.
/// With `session_read_back_always` and the custom setting listed in `custom_settings`, they
/// follow their client (or pin it) like the same statements sent by the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_that_change_the_session() {
    let d = Differential::start_with(|cfg| {
        cfg.pooler("session_read_back_always = true")
            .pooler("custom_settings = [\"fn.tenant\"]")
    });
    // The custom setting's name appears only inside function bodies, so only the
    // configuration can tell pgsluice of it.
    let functions = "\
        CREATE OR REPLACE FUNCTION d_set_tenant(v text) RETURNS text LANGUAGE sql \
          AS $$ SELECT set_config('fn' || '.tenant', v, false) $$; \
        CREATE OR REPLACE FUNCTION d_tenant() RETURNS text LANGUAGE sql \
          AS $$ SELECT coalesce(current_setting('fn' || '.tenant', true), '') $$; \
        CREATE OR REPLACE FUNCTION d_tune() RETURNS void LANGUAGE plpgsql \
          AS $$ BEGIN PERFORM set_config('work_mem', '17MB', false); \
          PERFORM set_config('application_name', 'from_function', false); END $$; \
        CREATE OR REPLACE FUNCTION d_lock() RETURNS void LANGUAGE sql \
          AS $$ SELECT pg_advisory_lock(4242) $$; \
        CREATE OR REPLACE FUNCTION d_unlock() RETURNS boolean LANGUAGE sql \
          AS $$ SELECT pg_advisory_unlock(4242) $$";
    let advisory = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242";
    d.run_all(&[
        Scenario::new("function_sets_custom_setting")
            .setup(functions)
            .q("SELECT d_set_tenant('42')")
            .q_moving(&["SELECT d_tenant()", "SELECT d_tenant()"]),
        Scenario::new("after_function_set_custom_setting")
            .q_moving(&["SELECT d_tenant()", "SELECT d_tenant()"]),
        Scenario::new("function_sets_settings")
            .q("SELECT d_tune()")
            .q_moving(&["SHOW work_mem", "SHOW application_name"]),
        Scenario::new("after_function_set_settings")
            .q_moving(&["SHOW work_mem", "SHOW application_name"]),
        Scenario::new("function_takes_advisory_lock")
            .q("SELECT d_lock()")
            .q_moving(&["SELECT d_unlock()", "SELECT d_unlock()"])
            .check(advisory),
        Scenario::new("function_lock_held_at_leave")
            .q("SELECT d_lock()")
            .q_moving(&["SELECT 1"])
            .check(advisory),
    ])
    .await;
}

/// SET ROLE and SET SESSION AUTHORIZATION stay with their client and end with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_follow_the_client() {
    let d = Differential::start();
    let grant = "DO $$ BEGIN CREATE ROLE d_member NOLOGIN; EXCEPTION WHEN duplicate_object \
                 THEN NULL; END $$; GRANT d_member TO md5_user";
    d.run_all(&[
        Scenario::new("set_role")
            .setup(grant)
            .q("SET ROLE d_member")
            .q_moving(&["SELECT current_user, session_user", "SHOW role"]),
        Scenario::new("after_set_role").q_moving(&["SELECT current_user, session_user"]),
        Scenario::new("reset_role")
            .setup(grant)
            .q("SET ROLE d_member")
            .q_moving(&["RESET ROLE", "SELECT current_user"]),
        Scenario::new("set_session_authorization_self")
            .q("SET SESSION AUTHORIZATION md5_user")
            .q_moving(&["SELECT current_user, session_user"]),
        Scenario::new("set_session_authorization_refused")
            .q("SET SESSION AUTHORIZATION postgres")
            .q_moving(&["SELECT current_user, session_user"]),
    ])
    .await;
}

/// LISTEN state follows the client from server to server (the pool's LISTEN connection
/// holds it between transactions): what pg_listening_channels() shows after LISTEN,
/// UNLISTEN, rollbacks, savepoints and DISCARD ALL, by both protocols.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_state_follows_the_client() {
    let d = Differential::start();
    let channels =
        "SELECT coalesce(string_agg(c, ',' ORDER BY c), '') FROM pg_listening_channels() c";
    d.run_all(&[
        Scenario::new("listen_moves")
            .q("LISTEN diff_a")
            .q_moving(&[channels, channels]),
        Scenario::new("listen_rolled_back")
            .q("LISTEN diff_a")
            .q("BEGIN; LISTEN diff_b; UNLISTEN diff_a")
            .q("ROLLBACK")
            .q_moving(&[channels]),
        Scenario::new("listen_in_savepoint_rolled_back")
            .q("BEGIN; LISTEN diff_a; SAVEPOINT s; LISTEN diff_b")
            .q("ROLLBACK TO s")
            .q("COMMIT")
            .q_moving(&[channels]),
        Scenario::new("unlisten_and_discard_all")
            .q("LISTEN diff_a; LISTEN diff_b")
            .q_moving(&["UNLISTEN diff_a", channels, "DISCARD ALL", channels]),
        Scenario::new("listen_extended")
            .x("LISTEN diff_c", &[])
            .mv()
            .x(channels, &[])
            .mv()
            .x("UNLISTEN *", &[])
            .mv()
            .x(channels, &[]),
    ])
    .await;
}

/// Transactions, savepoints and errors inside and outside them, across moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions() {
    let d = Differential::start();
    let s = Scenario::with_table("tx_commit", "v int");
    let t = s.t();
    let commit = s
        .q("BEGIN")
        .q(&format!("INSERT INTO {t} VALUES (1)"))
        .q("COMMIT")
        .q_moving(&[&format!("SELECT count(*) FROM {t}")])
        .check(&format!("SELECT count(*) FROM {t}"));
    let s = Scenario::with_table("tx_rollback", "v int");
    let t = s.t();
    let rollback = s
        .q(&format!("BEGIN; INSERT INTO {t} VALUES (1)"))
        .q("ROLLBACK")
        .q_moving(&[&format!("SELECT count(*) FROM {t}")]);
    let s = Scenario::with_table("tx_error", "v int primary key");
    let t = s.t();
    let error = s
        .q(&format!("BEGIN; INSERT INTO {t} VALUES (1)"))
        .q(&format!("INSERT INTO {t} VALUES (1)"))
        .q("SELECT 1")
        .q("COMMIT")
        .q_moving(&[&format!("SELECT count(*) FROM {t}")]);
    let s = Scenario::with_table("tx_savepoints", "v int");
    let t = s.t();
    let savepoints = s
        .q(&format!("BEGIN; INSERT INTO {t} VALUES (1); SAVEPOINT a"))
        .q(&format!("INSERT INTO {t} VALUES (2)"))
        .q("SELECT 1/0")
        .q("ROLLBACK TO SAVEPOINT a")
        .q("RELEASE a")
        .q("COMMIT")
        .q_moving(&[&format!("SELECT array_agg(v ORDER BY v) FROM {t}")]);
    let s = Scenario::with_table("tx_implicit_multi", "v int");
    let t = s.t();
    let implicit = s
        .q(&format!(
            "INSERT INTO {t} VALUES (1); SELECT 1/0; INSERT INTO {t} VALUES (2)"
        ))
        .q_moving(&[&format!("SELECT count(*) FROM {t}")]);
    d.run_all(&[
        commit,
        rollback,
        error,
        savepoints,
        implicit,
        Scenario::new("tx_commit_without_begin").q_moving(&["COMMIT", "ROLLBACK"]),
        Scenario::new("tx_begin_twice")
            .q("BEGIN")
            .q("BEGIN")
            .q("COMMIT"),
        Scenario::new("tx_read_only")
            .q("BEGIN READ ONLY")
            .q("CREATE TEMP TABLE nope (v int)")
            .q("ROLLBACK"),
        Scenario::new("tx_chain")
            .q("BEGIN ISOLATION LEVEL SERIALIZABLE")
            .q("COMMIT AND CHAIN")
            .q("SHOW transaction_isolation")
            .q("COMMIT")
            .q_moving(&["SHOW transaction_isolation"]),
        Scenario::new("multi_statement_results")
            .q("SELECT 1; SELECT 'a', 'b'; VALUES (1), (2)")
            .q_moving(&["", ";", "SELECT 1; SELEC 2; SELECT 3"]),
        Scenario::new("notice_and_warning")
            .q("ROLLBACK")
            .q("DO $$ BEGIN RAISE NOTICE 'hello'; RAISE WARNING 'careful'; END $$"),
        Scenario::new("syntax_error").q_moving(&["SELEC 1", "SELECT * FROM no_such_table"]),
    ])
    .await;
}

/// The extended protocol: pipelines, Describe, row limits, Flush, errors mid-pipeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_protocol() {
    let d = Differential::start();
    let s = Scenario::with_table("ext_pipeline", "v int");
    let t = s.t();
    let insert = format!("INSERT INTO {t} VALUES ($1)");
    let pipeline = s
        .send(
            f().parse("", &insert)
                .bind("", "", &[Some("1")])
                .execute("", 0)
                .sync()
                .bind("", "", &[Some("2")])
                .execute("", 0)
                .sync(),
        )
        .ready(2)
        .mv()
        .x(&format!("SELECT count(*) FROM {t}"), &[]);
    let s = Scenario::with_table("ext_error_mid_pipeline", "v int");
    let t = s.t();
    let insert = format!("INSERT INTO {t} VALUES ($1::int)");
    let error_mid = s
        .send(
            f().parse("", &insert)
                .bind("", "", &[Some("1")])
                .execute("", 0)
                .bind("", "", &[Some("x")])
                .execute("", 0)
                .bind("", "", &[Some("3")])
                .execute("", 0)
                .sync()
                .bind("", "", &[Some("4")])
                .execute("", 0)
                .sync(),
        )
        .ready(2)
        .mv()
        .x(&format!("SELECT array_agg(v) FROM {t}"), &[]);
    d.run_all(&[
        pipeline,
        error_mid,
        Scenario::new("ext_unnamed").x("SELECT $1::int + 1", &[Some("41")]),
        Scenario::new("ext_null_param").x("SELECT $1::text IS NULL", &[None]),
        Scenario::new("ext_describe_statement")
            .send(
                f().parse("", "SELECT $1::int AS a, 'x'::text AS b")
                    .describe_statement("")
                    .sync(),
            )
            .ready(1),
        Scenario::new("ext_describe_no_data")
            .send(
                f().parse("", "SET work_mem = '1MB'")
                    .describe_statement("")
                    .sync(),
            )
            .ready(1),
        Scenario::new("ext_row_limit")
            .q("BEGIN")
            .send(
                f().parse("", "SELECT generate_series(1, 5)")
                    .bind("c", "", &[])
                    .execute("c", 2)
                    .execute("c", 2)
                    .execute("c", 2)
                    .sync(),
            )
            .ready(1)
            .q("COMMIT"),
        Scenario::new("ext_row_limit_autocommit")
            .send(
                f().parse("", "SELECT generate_series(1, 3)")
                    .bind("", "", &[])
                    .execute("", 1)
                    .sync(),
            )
            .ready(1)
            .mv()
            .x("SELECT 1", &[]),
        Scenario::new("ext_flush")
            .send(f().parse("", "SELECT 1").bind("", "", &[]).flush())
            .expect(2)
            .send(f().execute("", 0).flush())
            .expect(2)
            .send(f().sync())
            .ready(1)
            .mv()
            .x("SELECT 2", &[]),
        Scenario::new("ext_parse_error_then_query")
            .send(f().parse("", "SELEC 1").flush())
            .expect(1)
            .send(f().query("SELECT 'x'").sync())
            .ready(1)
            .mv()
            .q("SELECT 'after'"),
        Scenario::new("ext_query_in_pipeline")
            .send(f().parse("", "SELECT 1").bind("", "", &[]).execute("", 0))
            .send(f().query("SELECT 2").sync())
            .ready(2)
            .mv()
            .q("SELECT 3"),
        Scenario::new("ext_bind_wrong_param_count")
            .send(
                f().parse("", "SELECT $1::int")
                    .bind("", "", &[])
                    .execute("", 0)
                    .sync(),
            )
            .ready(1),
        Scenario::new("ext_execute_missing_portal")
            .send(f().execute("nope", 0).sync())
            .ready(1),
        Scenario::new("ext_sync_alone").send(f().sync()).ready(1),
        Scenario::new("ext_empty_query")
            .send(f().parse("", "").bind("", "", &[]).execute("", 0).sync())
            .ready(1),
        Scenario::new("ext_close_portal")
            .q("BEGIN")
            .send(
                f().parse("", "SELECT 1")
                    .bind("p", "", &[])
                    .close_portal("p")
                    .execute("p", 0)
                    .sync(),
            )
            .ready(1)
            .q("ROLLBACK"),
        Scenario::new("ext_in_failed_transaction")
            .q("BEGIN")
            .q("SELECT 1/0")
            .x("SELECT 1", &[])
            .q("ROLLBACK"),
    ])
    .await;
}

/// Protocol-level and SQL-level prepared statements: names across servers, Close, DEALLOCATE,
/// DISCARD, and the name space the two share in Postgres.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements() {
    let d = Differential::start();
    let run = |name: &str| f().bind("", name, &[]).execute("", 0).sync();
    d.run_all(&[
        Scenario::new("named_across_servers")
            .send(f().parse("s1", "SELECT 1").sync())
            .ready(1)
            .mv()
            .send(run("s1"))
            .ready(1)
            .mv()
            .send(run("s1"))
            .ready(1),
        Scenario::new("named_duplicate")
            .send(f().parse("s2", "SELECT 1").sync())
            .ready(1)
            .mv()
            .send(f().parse("s2", "SELECT 2").sync())
            .ready(1),
        Scenario::new("named_close_then_reuse")
            .send(f().parse("s3", "SELECT 1").sync())
            .ready(1)
            .mv()
            .send(f().close_statement("s3").sync())
            .ready(1)
            .mv()
            .send(
                f().parse("s3", "SELECT 3")
                    .bind("", "s3", &[])
                    .execute("", 0)
                    .sync(),
            )
            .ready(1),
        Scenario::new("named_missing").send(run("never")).ready(1),
        Scenario::new("named_describe_across")
            .send(f().parse("s4", "SELECT $1::int AS n").sync())
            .ready(1)
            .mv()
            .send(f().describe_statement("s4").sync())
            .ready(1),
        Scenario::new("deallocate_simple")
            .send(f().parse("s5", "SELECT 5").sync())
            .ready(1)
            .q_moving(&["DEALLOCATE s5"])
            .send(run("s5"))
            .ready(1),
        Scenario::new("deallocate_all_simple")
            .send(f().parse("s6", "SELECT 6").sync())
            .ready(1)
            .q_moving(&["DEALLOCATE ALL"])
            .send(run("s6"))
            .ready(1),
        Scenario::new("deallocate_extended")
            .send(f().parse("s7", "SELECT 7").sync())
            .ready(1)
            .mv()
            .x("DEALLOCATE s7", &[])
            .send(run("s7"))
            .ready(1),
        Scenario::new("deallocate_extended_unknown").x("DEALLOCATE nothing_here", &[]),
        Scenario::new("reparse_in_one_batch_after_failed_parse")
            .send(
                f().parse("s9", "SELEC 9")
                    .parse("s9", "SELECT 9")
                    .bind("", "s9", &[])
                    .execute("", 0)
                    .sync()
                    .parse("s9", "SELECT 9")
                    .bind("", "s9", &[])
                    .execute("", 0)
                    .sync(),
            )
            .ready(2),
        Scenario::new("reparse_after_successful_parse_in_one_batch")
            .send(
                f().parse("s10", "SELECT 10")
                    .parse("s10", "SELECT 11")
                    .sync()
                    .bind("", "s10", &[])
                    .execute("", 0)
                    .sync(),
            )
            .ready(2),
        Scenario::new("reparse_after_failed_parse")
            .send(
                f().parse("s8", "SELEC 8")
                    .sync()
                    .parse("s8", "SELECT 8")
                    .bind("", "s8", &[])
                    .execute("", 0)
                    .sync(),
            )
            .ready(2),
        Scenario::new("sql_prepare_in_transaction")
            .q("BEGIN")
            .q("PREPARE p1(int) AS SELECT $1 + 1")
            .q("EXECUTE p1(41)")
            .q("DEALLOCATE p1")
            .q("COMMIT"),
        Scenario::new("sql_prepare_then_bind")
            .q("BEGIN")
            .q("PREPARE p2 AS SELECT 'sql'")
            .send(run("p2"))
            .ready(1)
            .q("COMMIT"),
        Scenario::new("parse_then_sql_execute")
            .q("BEGIN")
            .send(f().parse("p3", "SELECT 'proto'").sync())
            .ready(1)
            .q("EXECUTE p3")
            .q("COMMIT"),
        Scenario::new("sql_prepare_session")
            .q("PREPARE p4 AS SELECT 4")
            .q_moving(&["EXECUTE p4", "DEALLOCATE p4", "EXECUTE p4"]),
    ])
    .await;
}

/// After DDL a statement parsed before must not return rows of another shape: Postgres
/// answers 0A000 "cached plan must not change result type" until it is parsed again, on the
/// server it was parsed on and on one that prepares it afresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statement_after_ddl() {
    let d = Differential::start();
    let s = Scenario::with_table("cached_plan", "a int");
    let t = s.t();
    let s = s
        .setup(&format!("ALTER TABLE {t} OWNER TO md5_user"))
        .q(&format!("INSERT INTO {t} VALUES (1)"))
        .send(
            f().parse("cp", &format!("SELECT * FROM {t}"))
                .describe_statement("cp")
                .sync(),
        )
        .ready(1)
        .q(&format!("ALTER TABLE {t} ADD COLUMN b int"));
    let s = s
        .mv()
        .send(f().bind("", "cp", &[]).execute("", 0).sync())
        .ready(1)
        .mv()
        .send(f().bind("", "cp", &[]).execute("", 0).sync())
        .ready(1);
    let mut all = vec![s];
    let run = |name: &str| f().bind("", name, &[]).execute("", 0).sync();
    for (case, moving) in [("same_server", false), ("moving", true)] {
        let s = Scenario::with_table(&format!("ddl_{case}"), "a int");
        let t = s.t();
        let mv = |s: Scenario| if moving { s.mv() } else { s };
        let s = s
            .setup(&format!("ALTER TABLE {t} OWNER TO md5_user"))
            .q(&format!("INSERT INTO {t} VALUES (1)"))
            .send(f().parse("p1", &format!("SELECT * FROM {t}")).sync())
            .ready(1)
            .send(run("p1"))
            .ready(1)
            .q(&format!("ALTER TABLE {t} ADD COLUMN b int DEFAULT 2"));
        let s = mv(s).send(run("p1")).ready(1);
        let s = mv(s).send(run("p1")).ready(1);
        // Parsed again under another name, or closed and parsed again: the new shape.
        let s = mv(s)
            .send(f().parse("p2", &format!("SELECT * FROM {t}")).sync())
            .ready(1)
            .send(run("p2"))
            .ready(1)
            .send(f().close_statement("p1").sync())
            .ready(1)
            .send(f().parse("p1", &format!("SELECT * FROM {t}")).sync())
            .ready(1);
        all.push(mv(s).send(run("p1")).ready(1));
    }
    let s = Scenario::with_table("ddl_same_shape", "a int");
    let t = s.t();
    all.push(
        s.setup(&format!("ALTER TABLE {t} OWNER TO md5_user"))
            .send(f().parse("p3", &format!("SELECT a FROM {t}")).sync())
            .ready(1)
            .q(&format!("CREATE INDEX ON {t} (a)"))
            .mv()
            .send(run("p3"))
            .ready(1),
    );
    d.run_all(&all).await;
}

/// With statement mapping off (max_prepared_statements = 0), the protocol still passes
/// through as on Postgres: pipelines, errors mid-pipeline, a Query skipped after an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_protocol_without_statement_mapping() {
    let d = Differential::start_with(|cfg| cfg.pooler("max_prepared_statements = 0"));
    d.run_all(&[
        Scenario::new("unmapped_parse_error_then_query")
            .send(f().parse("", "SELEC 1").flush())
            .expect(1)
            .send(f().query("SELECT 'x'").sync())
            .ready(1)
            .mv()
            .q("SELECT 'after'"),
        Scenario::new("unmapped_describe_and_pipeline")
            .send(
                f().parse("", "SELECT $1::int AS a")
                    .describe_statement("")
                    .bind("", "", &[Some("1")])
                    .describe_portal("")
                    .execute("", 0)
                    .sync()
                    .bind("", "", &[Some("x")])
                    .execute("", 0)
                    .sync(),
            )
            .ready(2)
            .mv()
            .x("SELECT 2", &[]),
        Scenario::new("unmapped_set_follows")
            .q("SET work_mem = '3MB'")
            .q_moving(&["SHOW work_mem"]),
    ])
    .await;
}

/// COPY in both directions, and its failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_and_function_call() {
    let d = Differential::start();
    let s = Scenario::with_table("copy_in", "v int, w text");
    let t = s.t();
    let copy_in = s
        .send(f().query(&format!("COPY {t} FROM STDIN")))
        .expect(1)
        .send(f().copy_data(b"1\tone\n2\ttwo\n").copy_done())
        .ready(1)
        .q_moving(&[&format!("COPY {t} TO STDOUT")]);
    let s = Scenario::with_table("copy_fail", "v int");
    let t = s.t();
    let copy_fail = s
        .send(f().query(&format!("COPY {t} FROM STDIN")))
        .expect(1)
        .send(f().copy_data(b"1\n").copy_fail("changed my mind"))
        .ready(1)
        .q_moving(&[&format!("SELECT count(*) FROM {t}")]);
    let s = Scenario::with_table("copy_bad_data", "v int");
    let t = s.t();
    let copy_bad = s
        .send(f().query(&format!("COPY {t} FROM STDIN")))
        .expect(1)
        .send(f().copy_data(b"1\nnot a number\n").copy_done())
        .ready(1)
        .q_moving(&[&format!("SELECT count(*) FROM {t}")]);
    let s = Scenario::with_table("copy_in_extended", "v int");
    let t = s.t();
    let copy_ext = s
        .send(
            f().parse("", &format!("COPY {t} FROM STDIN"))
                .bind("", "", &[])
                .execute("", 0)
                .sync(),
        )
        .expect(3)
        .send(f().copy_data(b"5\n").copy_done().sync())
        .ready(1)
        .q_moving(&[&format!("SELECT count(*) FROM {t}")]);
    d.run_all(&[
        copy_in,
        copy_fail,
        copy_bad,
        copy_ext,
        Scenario::new("copy_out_query")
            .q_moving(&["COPY (SELECT generate_series(1, 3)) TO STDOUT"]),
        Scenario::new("function_call")
            .send(f().function_call_int4(177, &[40, 2]))
            .ready(1)
            .mv()
            .send(f().function_call_int4(177, &[2147483647, 1]))
            .ready(1),
    ])
    .await;
}

/// A cancel reaches the client's own query, and the session goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel() {
    let d = Differential::start();
    d.run_all(&[
        Scenario::new("cancel_running_query")
            .send(f().query("SELECT pg_sleep(30)"))
            .cancel()
            .ready(1)
            .q_moving(&["SELECT 'still here'"]),
        Scenario::new("cancel_in_transaction")
            .q("BEGIN")
            .send(f().query("SELECT pg_sleep(30)"))
            .cancel()
            .ready(1)
            .q("ROLLBACK")
            .q_moving(&["SELECT 1"]),
    ])
    .await;
}

/// Leaving at every point of an exchange: nothing the client did not commit is committed,
/// and no lock outlives it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_commits_nothing() {
    let d = Differential::start();
    let mut all = Vec::new();
    for (how, vanish) in [("terminate", false), ("vanish", true)] {
        let leave = |s: Scenario| if vanish { s.vanish() } else { s.terminate() };
        let s = Scenario::with_table(&format!("leave_{how}_pipeline_flush"), "v int");
        let t = s.t();
        let sql = format!("INSERT INTO {t} VALUES (2)");
        all.push(
            leave(
                s.send(f().parse("", &sql).bind("", "", &[]).execute("", 0).flush())
                    .expect(3),
            )
            .check(&format!("SELECT count(*) FROM {t}")),
        );
        let s = Scenario::with_table(&format!("leave_{how}_pipeline_unread"), "v int");
        let t = s.t();
        let sql = format!("INSERT INTO {t} VALUES (3)");
        all.push(
            leave(s.send(f().parse("", &sql).bind("", "", &[]).execute("", 0)))
                .check(&format!("SELECT count(*) FROM {t}")),
        );
        let s = Scenario::with_table(&format!("leave_{how}_transaction"), "v int");
        let t = s.t();
        all.push(
            leave(s.q(&format!("BEGIN; INSERT INTO {t} VALUES (4)")))
                .check(&format!("SELECT count(*) FROM {t}")),
        );
        let s = Scenario::with_table(&format!("leave_{how}_failed_transaction"), "v int");
        let t = s.t();
        all.push(
            leave(
                s.q(&format!("BEGIN; INSERT INTO {t} VALUES (5)"))
                    .q("SELECT 1/0"),
            )
            .check(&format!("SELECT count(*) FROM {t}")),
        );
        if vanish {
            all.push(copy_in_then(&format!("leave_{how}_copy_in"), leave));
        }
        let s = Scenario::with_table(&format!("leave_{how}_commit_unsynced"), "v int");
        let t = s.t();
        all.push(
            leave(
                s.q(&format!("BEGIN; INSERT INTO {t} VALUES (6)"))
                    .send(f().parse("", "COMMIT").bind("", "", &[]).execute("", 0)),
            )
            .check(&format!("SELECT count(*) FROM {t}")),
        );
        all.push(
            leave(
                Scenario::new(&format!("leave_{how}_advisory_lock"))
                    .q("SELECT pg_advisory_lock(4242)"),
            )
            .check("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242"),
        );
        all.push(
            leave(
                Scenario::new(&format!("leave_{how}_running_query"))
                    .send(f().query("SELECT pg_sleep(2)")),
            )
            .check("SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(2)' AND state = 'active'"),
        );
    }
    d.run_all(&all).await;
}

/// COPY FROM STDIN with rows sent, then the client leaves.
fn copy_in_then(name: &str, leave: impl Fn(Scenario) -> Scenario) -> Scenario {
    let s = Scenario::with_table(name, "v int");
    let t = s.t();
    leave(
        s.send(f().query(&format!("COPY {t} FROM STDIN")))
            .expect(1)
            .send(f().copy_data(b"1\n2\n")),
    )
    .check(&format!("SELECT count(*) FROM {t}"))
}

/// A Terminate in the middle of COPY FROM STDIN: Postgres answers it with ERROR and FATAL
/// 08P01 before closing and rolls the COPY back; through pgsluice the client reads the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_during_copy_in() {
    let d = Differential::start();
    d.run(&copy_in_then(
        "leave_terminate_copy_in",
        Scenario::terminate,
    ))
    .await;
}

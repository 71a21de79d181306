//! Admin console, read side: every SHOW answers with PgBouncer's column names in PgBouncer's
//! order (pgbouncer_exporter and runbooks depend on them), the numbers move with real traffic
//! (exact transaction counts, a queued client, the client-server link, the backend pid), and
//! access follows admin_users / stats_users, over tokio-postgres's simple query and psql.

use std::time::Duration;

use crate::common::console::*;
use crate::common::*;

const DEADLINE: Duration = Duration::from_secs(30);

fn tx_config(extra: &str) -> PoolerConfig {
    PoolerConfig::new(shared_cluster())
        .pooler("pool_mode = \"transaction\"")
        .pooler(extra)
}

fn tx_pooler(extra: &str) -> Pooler {
    Pooler::start(tx_config(extra))
}

const CONN_COLUMNS: [&str; 21] = [
    "type",
    "user",
    "database",
    "state",
    "addr",
    "port",
    "local_addr",
    "local_port",
    "connect_time",
    "request_time",
    "wait",
    "wait_us",
    "close_needed",
    "ptr",
    "link",
    "remote_pid",
    "tls",
    "application_name",
    "prepared_statements",
    "id",
    "pinned",
];

const STATS_SUBSET: [&str; 8] = [
    "database",
    "xact_count",
    "query_count",
    "bytes_received",
    "bytes_sent",
    "xact_time",
    "query_time",
    "wait_time",
];

/// Each SHOW subject and the columns PgBouncer's console documents for it (usage.md).
fn documented_columns() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        (
            "POOLS",
            vec![
                "database",
                "user",
                "cl_active",
                "cl_waiting",
                "cl_active_cancel_req",
                "cl_waiting_cancel_req",
                "sv_active",
                "sv_active_cancel",
                "sv_being_canceled",
                "sv_idle",
                "sv_used",
                "sv_tested",
                "sv_login",
                "maxwait",
                "maxwait_us",
                "pool_mode",
            ],
        ),
        ("CLIENTS", CONN_COLUMNS.to_vec()),
        ("SERVERS", CONN_COLUMNS.to_vec()),
        (
            "STATS",
            vec![
                "database",
                "total_xact_count",
                "total_query_count",
                "total_received",
                "total_sent",
                "total_xact_time",
                "total_query_time",
                "total_wait_time",
                "avg_xact_count",
                "avg_query_count",
                "avg_recv",
                "avg_sent",
                "avg_xact_time",
                "avg_query_time",
                "avg_wait_time",
            ],
        ),
        ("STATS_TOTALS", STATS_SUBSET.to_vec()),
        ("STATS_AVERAGES", STATS_SUBSET.to_vec()),
        ("TOTALS", vec!["name", "value"]),
        (
            "DATABASES",
            vec![
                "name",
                "host",
                "port",
                "database",
                "force_user",
                "pool_size",
                "min_pool_size",
                "reserve_pool",
                "pool_mode",
                "max_connections",
                "current_connections",
                "max_client_connections",
                "current_client_connections",
                "paused",
                "disabled",
            ],
        ),
        ("USERS", vec!["name", "pool_mode"]),
        ("CONFIG", vec!["key", "value", "default", "changeable"]),
        ("LISTS", vec!["list", "items"]),
        ("STATE", vec!["key", "value"]),
        ("VERSION", vec!["version"]),
    ]
}

#[tokio::test]
async fn every_show_returns_the_documented_columns_in_order() {
    let p = Pooler::start(tx_config("").user(SCRAM_USER, "pool_mode = \"session\""));
    let c = pooled(&p, TEST_DB).await;
    backend_pid(&c).await;
    let admin = console(&p).await;
    for (subject, expected) in documented_columns() {
        let set = show(&admin, &format!("SHOW {subject}")).await;
        assert_eq!(set.columns, expected, "SHOW {subject}");
    }
    // Lower case and a trailing semicolon work as in PgBouncer.
    let pools = show(&admin, "show pools;").await;
    let row = pools.row_where("database", TEST_DB);
    assert_eq!(pools.get(row, "user"), MD5_USER);
    assert_eq!(pools.get(row, "pool_mode"), "transaction");
    // SHOW HELP is a notice, no result set, and no error.
    let help = show(&admin, "SHOW HELP").await;
    assert!(help.columns.is_empty() && help.rows.is_empty(), "{help:?}");

    let lists = show(&admin, "SHOW LISTS").await;
    let names: Vec<&str> = (0..lists.rows.len())
        .map(|r| lists.get(r, "list"))
        .collect();
    for name in [
        "databases",
        "users",
        "pools",
        "used_clients",
        "used_servers",
    ] {
        assert!(names.contains(&name), "SHOW LISTS {names:?} lacks {name}");
    }
    assert_eq!(lists.lookup("list", "used_clients", "items"), "1");
    let state = show(&admin, "SHOW STATE").await;
    assert_eq!(state.lookup("key", "paused", "value"), "no");
    let totals = show(&admin, "SHOW TOTALS").await;
    assert!(!totals.rows_where("name", "total_xact_count").is_empty());
    let version = show(&admin, "SHOW VERSION").await;
    assert!(
        version.get(0, "version").contains("pgsluice"),
        "{version:?}"
    );
    let config = show(&admin, "SHOW CONFIG").await;
    assert_eq!(config.lookup("key", "pool_mode", "value"), "transaction");
    assert_eq!(config.lookup("key", "listen_port", "changeable"), "no");
    assert_eq!(
        config.lookup("key", "default_pool_size", "changeable"),
        "yes"
    );
    let users = show(&admin, "SHOW USERS").await;
    assert_eq!(users.lookup("name", SCRAM_USER, "pool_mode"), "session");
    // An unknown subject is an error, and the session goes on.
    let (code, _) = admin_error(&admin, "SHOW NOTHING").await;
    assert_eq!(code, "42601");
    show(&admin, "SHOW POOLS").await;
}

#[tokio::test]
async fn psql_drives_the_console_on_both_database_names() {
    let p = tx_pooler("");
    for db in ["pgsluice", "pgbouncer"] {
        let out = p.psql(ADMIN_USER, ADMIN_PASS, db, &["--csv", "-c", "SHOW POOLS"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{db}: {stderr}\n{}", p.log());
        assert_eq!(
            stdout.lines().next(),
            Some(
                "database,user,cl_active,cl_waiting,cl_active_cancel_req,cl_waiting_cancel_req,\
                 sv_active,sv_active_cancel,sv_being_canceled,sv_idle,sv_used,sv_tested,\
                 sv_login,maxwait,maxwait_us,pool_mode"
            ),
            "{stdout}"
        );
    }
    let out = p.psql(ADMIN_USER, ADMIN_PASS, CONSOLE_DB, &["-c", "SHOW HELP"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("NOTICE:  Console usage"), "{stderr}");
    for line in ["SHOW HELP|CONFIG|DATABASES|POOLS", "KILL_CLIENT", "RELOAD"] {
        assert!(stderr.contains(line), "SHOW HELP lacks {line}: {stderr}");
    }
    let out = p.psql(ADMIN_USER, ADMIN_PASS, CONSOLE_DB, &["-c", "FROBNICATE"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("invalid command"), "{stderr}");
}

#[tokio::test]
async fn show_stats_counts_exactly_the_transactions_run() {
    let db = unique_name("adm_stats");
    shared_cluster().create_database(&db);
    let p = Pooler::start(tx_config("").database(&db, ""));
    let c = pooled(&p, &db).await;
    // 10 autocommit statements and 5 explicit blocks of three statements: 15 transactions.
    for i in 0..10 {
        c.simple_query(&format!("select {i}")).await.unwrap();
    }
    for _ in 0..5 {
        for sql in ["begin", "select 1", "commit"] {
            c.simple_query(sql).await.unwrap();
        }
    }
    let admin = console(&p).await;
    let stats = show(&admin, "SHOW STATS").await;
    let row = stats.row_where("database", &db);
    assert_eq!(stats.number(row, "total_xact_count"), 15, "{stats:?}");
    assert!(stats.number(row, "total_query_count") >= 15, "{stats:?}");
    assert!(stats.number(row, "total_received") > 0, "{stats:?}");
    assert!(stats.number(row, "total_sent") > 0, "{stats:?}");
    let totals = show(&admin, "SHOW STATS_TOTALS").await;
    let row = totals.row_where("database", &db);
    assert_eq!(totals.number(row, "xact_count"), 15, "{totals:?}");
    // One more transaction moves the count by exactly one.
    c.simple_query("select 2").await.unwrap();
    let stats = show(&admin, "SHOW STATS").await;
    let row = stats.row_where("database", &db);
    assert_eq!(stats.number(row, "total_xact_count"), 16, "{stats:?}");
    let all = show(&admin, "SHOW TOTALS").await;
    let xacts: i64 = all
        .lookup("name", "total_xact_count", "value")
        .parse()
        .unwrap();
    assert!(xacts >= 16, "{all:?}");
}

#[tokio::test]
async fn a_queued_client_and_the_client_server_link_are_visible() {
    let db = unique_name("adm_wait");
    shared_cluster().create_database(&db);
    let p = Pooler::start(tx_config("default_pool_size = 1").database(&db, ""));
    let holder = pooled_named(&p, &db, "holder").await;
    let waiter = pooled_named(&p, &db, "waiter").await;
    holder.simple_query("begin").await.unwrap();
    let pid = backend_pid(&holder).await;
    let queued = tokio::spawn(async move { backend_pid(&waiter).await });
    let admin = console(&p).await;
    wait_until("cl_waiting = 1 in SHOW POOLS", DEADLINE, || async {
        let pools = show(&admin, "SHOW POOLS").await;
        let r = pools.row_where("database", &db);
        pools.get(r, "cl_waiting") == "1"
    })
    .await;
    let pools = show(&admin, "SHOW POOLS").await;
    let r = pools.row_where("database", &db);
    assert_eq!(pools.get(r, "sv_active"), "1", "{pools:?}");
    assert_eq!(pools.get(r, "cl_active"), "1", "{pools:?}");

    let clients = show(&admin, "SHOW CLIENTS").await;
    let w = clients.row_where("application_name", "waiter");
    assert_eq!(clients.get(w, "state"), "waiting", "{clients:?}");
    assert_eq!(clients.get(w, "link"), "", "{clients:?}");
    let h = clients.row_where("application_name", "holder");
    assert_eq!(clients.get(h, "state"), "active", "{clients:?}");
    assert_eq!(clients.get(h, "type"), "C");
    assert_eq!(clients.get(h, "database"), db);
    assert_eq!(clients.get(h, "addr"), "127.0.0.1");
    let servers = show(&admin, "SHOW SERVERS").await;
    let s = servers.row_where("ptr", clients.get(h, "link"));
    assert_eq!(servers.get(s, "type"), "S");
    assert_eq!(servers.get(s, "state"), "active", "{servers:?}");
    assert_eq!(servers.get(s, "remote_pid"), pid, "{servers:?}");
    assert_eq!(servers.get(s, "link"), clients.get(h, "ptr"), "{servers:?}");
    assert_ne!(clients.get(h, "id"), clients.get(w, "id"));

    holder.simple_query("commit").await.unwrap();
    let waiter_pid = tokio::time::timeout(DEADLINE, queued)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(waiter_pid, pid, "the one server went to the waiter");
    wait_until("no client waiting", DEADLINE, || async {
        let pools = show(&admin, "SHOW POOLS").await;
        let r = pools.row_where("database", &db);
        pools.get(r, "cl_waiting") == "0" && pools.get(r, "sv_idle") == "1"
    })
    .await;
}

#[tokio::test]
async fn a_stats_user_may_show_but_not_control() {
    let p = tx_pooler("stats_users = [\"md5_user\"]");
    let stats = console_as(&p, MD5_USER, MD5_PASS).await;
    show(&stats, "SHOW POOLS").await;
    for command in [
        "PAUSE",
        "RESUME",
        "KILL testdb",
        "RELOAD",
        "SHUTDOWN",
        "SET verbose = 1",
    ] {
        let (code, message) = admin_error(&stats, command).await;
        assert_eq!(code, "42501", "{command}: {message}");
        assert!(message.contains("admin_users"), "{message}");
    }
    // The session goes on, and nothing was paused or shut down.
    let state = show(&stats, "SHOW STATE").await;
    assert_eq!(state.lookup("key", "paused", "value"), "no");
    pooled(&p, TEST_DB)
        .await
        .simple_query("select 1")
        .await
        .unwrap();
}

#[tokio::test]
async fn an_ordinary_user_is_refused_the_console() {
    let p = tx_pooler("stats_users = [\"md5_user\"]");
    for db in ["pgsluice", "pgbouncer"] {
        let err = p.connect(SCRAM_USER, SCRAM_PASS, db).await.unwrap_err();
        assert_eq!(sqlstate(&err), Some("28000"), "{err:?}");
        let db_err = err.as_db_error().unwrap();
        assert_eq!(db_err.severity(), "FATAL");
        assert!(db_err.message().contains("admin_users"), "{db_err:?}");
    }
    // A wrong password is still a wrong password, for the admin too.
    let err = p
        .connect(ADMIN_USER, "wrong", CONSOLE_DB)
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), Some("28P01"), "{err:?}");
    // The same user still reaches its pools.
    let (c, _t) = p.connect(SCRAM_USER, SCRAM_PASS, TEST_DB).await.unwrap();
    c.simple_query("select 1").await.unwrap();
}

#[tokio::test]
async fn the_extended_protocol_gets_an_error_never_a_hang() {
    let p = tx_pooler("");
    let admin = console(&p).await;
    let result = tokio::time::timeout(DEADLINE, admin.query("SHOW POOLS", &[]))
        .await
        .expect("an answer, not a hang");
    let err = result.expect_err("the console speaks only the simple query protocol");
    assert_eq!(sqlstate(&err), Some("08P01"), "{err:?}");
    // A fresh console session works.
    show(&console(&p).await, "SHOW POOLS").await;
}

//! Live reconfiguration: RELOAD and SIGHUP re-read pooler.toml (a new database is reachable
//! at once, a changed pool size shows in SHOW CONFIG / SHOW DATABASES, connected clients
//! stay), a broken file changes nothing and says why (F0000 to the console, the log for
//! SIGHUP), settings that need a restart say so, SET changes a setting live and refuses what
//! it cannot change; SIGUSR1/SIGUSR2 pause and resume as in PgBouncer.

use std::time::Duration;

use crate::common::console::*;
use crate::common::*;
use tokio_postgres::Client;

const DEADLINE: Duration = Duration::from_secs(30);

fn tx_config(extra: &str) -> PoolerConfig {
    PoolerConfig::new(shared_cluster())
        .pooler("pool_mode = \"transaction\"")
        .pooler(extra)
}

async fn config_value(admin: &Client, key: &str) -> String {
    show(admin, "SHOW CONFIG")
        .await
        .lookup("key", key, "value")
        .to_string()
}

async fn pool_size(admin: &Client, db: &str) -> String {
    show(admin, "SHOW DATABASES")
        .await
        .lookup("name", db, "pool_size")
        .to_string()
}

#[tokio::test]
async fn reload_adds_a_database_and_changes_the_pool_size_without_dropping_clients() {
    let added = unique_name("adm_reload_new");
    shared_cluster().create_database(&added);
    let base = tx_config("default_pool_size = 4");
    let mut p = Pooler::start(base.clone());
    let admin = console(&p).await;
    let existing = pooled(&p, TEST_DB).await;
    existing.simple_query("begin").await.unwrap();
    let err = p.connect(MD5_USER, MD5_PASS, &added).await.unwrap_err();
    assert_eq!(sqlstate(&err), Some("3D000"), "{err:?}");
    assert_eq!(pool_size(&admin, TEST_DB).await, "4");

    p.rewrite_config(base.pooler("default_pool_size = 7").database(&added, ""));
    exec(&admin, "RELOAD").await;
    pooled(&p, &added)
        .await
        .simple_query("select 1")
        .await
        .unwrap();
    assert_eq!(config_value(&admin, "default_pool_size").await, "7");
    assert_eq!(pool_size(&admin, TEST_DB).await, "7");
    assert_eq!(pool_size(&admin, &added).await, "7");
    // The client connected before the reload kept its session and its transaction.
    existing.simple_query("select 1").await.unwrap();
    existing.simple_query("commit").await.unwrap();
}

#[tokio::test]
async fn a_broken_file_is_refused_and_the_old_configuration_stays() {
    let base = tx_config("default_pool_size = 4");
    let mut p = Pooler::start(base.clone());
    let admin = console(&p).await;
    p.rewrite_config(
        base.clone()
            .pooler("default_pool_size = 9\nno_such_setting = 1"),
    );
    let (code, message) = admin_error(&admin, "RELOAD").await;
    assert_eq!(code, "F0000", "{message}");
    assert!(
        message.contains("no_such_setting"),
        "names the problem: {message}"
    );
    assert_eq!(config_value(&admin, "default_pool_size").await, "4");
    pooled(&p, TEST_DB)
        .await
        .simple_query("select 1")
        .await
        .unwrap();
    // A bad value is refused the same way.
    p.rewrite_config(base.clone().pooler("query_wait_timeout = \"soon\""));
    let (code, message) = admin_error(&admin, "RELOAD").await;
    assert_eq!(code, "F0000", "{message}");
    assert!(message.contains("query_wait_timeout"), "{message}");
    // Once fixed, RELOAD applies it.
    p.rewrite_config(base.pooler("default_pool_size = 9"));
    exec(&admin, "RELOAD").await;
    assert_eq!(config_value(&admin, "default_pool_size").await, "9");
}

#[tokio::test]
async fn a_larger_pool_size_serves_a_waiting_client_after_reload() {
    let db = unique_name("adm_grow");
    shared_cluster().create_database(&db);
    let base = tx_config("").database(&db, "pool_size = 1");
    let mut p = Pooler::start(base.clone());
    let admin = console(&p).await;
    // Both log in first: in transaction mode the login itself borrows a server.
    let holder = pooled(&p, &db).await;
    let waiter = pooled(&p, &db).await;
    holder.simple_query("begin").await.unwrap();
    let holder_pid = backend_pid(&holder).await;
    let queued = tokio::spawn(async move { backend_pid(&waiter).await });
    assert!(
        still_pending(&queued).await,
        "pool_size = 1 and it is taken"
    );
    p.rewrite_config(base.database(&db, "pool_size = 2"));
    exec(&admin, "RELOAD").await;
    let pid = tokio::time::timeout(DEADLINE, queued)
        .await
        .expect("the waiter gets the second server")
        .unwrap();
    assert_ne!(pid, holder_pid);
    assert_eq!(pool_size(&admin, &db).await, "2");
    holder.simple_query("commit").await.unwrap();
}

#[tokio::test]
async fn a_removed_database_refuses_new_clients_and_lets_connected_ones_finish() {
    let db = unique_name("adm_remove");
    shared_cluster().create_database(&db);
    let base = tx_config("");
    let mut p = Pooler::start(base.clone().database(&db, ""));
    let admin = console(&p).await;
    let connected = pooled(&p, &db).await;
    connected.simple_query("begin").await.unwrap();
    p.rewrite_config(base);
    exec(&admin, "RELOAD").await;
    let err = p.connect(MD5_USER, MD5_PASS, &db).await.unwrap_err();
    assert_eq!(sqlstate(&err), Some("3D000"), "{err:?}");
    let databases = show(&admin, "SHOW DATABASES").await;
    assert!(
        databases.rows_where("name", &db).is_empty(),
        "{databases:?}"
    );
    connected.simple_query("select 1").await.unwrap();
    connected.simple_query("commit").await.unwrap();
}

#[tokio::test]
async fn a_changed_server_database_replaces_the_pooled_servers() {
    let (first, second) = (unique_name("adm_target_a"), unique_name("adm_target_b"));
    shared_cluster().create_database(&first);
    shared_cluster().create_database(&second);
    let base = tx_config("");
    let mut p = Pooler::start(
        base.clone()
            .database("alias", &format!("dbname = \"{first}\"")),
    );
    let admin = console(&p).await;
    let c = pooled(&p, "alias").await;
    let db_of = |rows: Vec<tokio_postgres::SimpleQueryMessage>| {
        rows.into_iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .unwrap()
    };
    let q = "select current_database()";
    assert_eq!(db_of(c.simple_query(q).await.unwrap()), first);
    let old_pid = backend_pid(&c).await;
    p.rewrite_config(base.database("alias", &format!("dbname = \"{second}\"")));
    exec(&admin, "RELOAD").await;
    // The same client, without reconnecting, now reaches the new server database.
    assert_eq!(db_of(c.simple_query(q).await.unwrap()), second);
    assert_ne!(backend_pid(&c).await, old_pid);
}

#[tokio::test]
async fn sighup_reloads_and_logs_a_broken_file() {
    let added = unique_name("adm_hup");
    shared_cluster().create_database(&added);
    let base = tx_config("default_pool_size = 4");
    let mut p = Pooler::start(base.clone());
    let admin = console(&p).await;
    let with_db = base.database(&added, "");
    p.rewrite_config(with_db.clone().pooler("default_pool_size = 6"));
    p.signal("HUP");
    wait_until("the added database to accept clients", DEADLINE, || async {
        p.connect(MD5_USER, MD5_PASS, &added).await.is_ok()
    })
    .await;
    assert_eq!(config_value(&admin, "default_pool_size").await, "6");

    // A broken file that would also drop the database changes nothing.
    p.rewrite_config(tx_config("default_pool_size = 8\nno_such_setting = 1"));
    p.signal("HUP");
    wait_until_blocking("the refused reload in the log", DEADLINE, || {
        p.log().contains("no_such_setting")
    });
    assert_eq!(config_value(&admin, "default_pool_size").await, "6");
    pooled(&p, &added)
        .await
        .simple_query("select 1")
        .await
        .unwrap();
    // The console and the process are still alive and well.
    show(&admin, "SHOW POOLS").await;
}

#[tokio::test]
async fn sigusr1_pauses_and_sigusr2_resumes() {
    let p = Pooler::start(tx_config(""));
    let admin = console(&p).await;
    let c = pooled(&p, TEST_DB).await;
    p.signal("USR1");
    wait_until("SHOW STATE paused = yes", DEADLINE, || async {
        show(&admin, "SHOW STATE")
            .await
            .lookup("key", "paused", "value")
            == "yes"
    })
    .await;
    let held = tokio::spawn(async move {
        c.simple_query("select 1").await.expect("held query");
        c
    });
    assert!(still_pending(&held).await, "paused by SIGUSR1");
    p.signal("USR2");
    tokio::time::timeout(DEADLINE, held).await.unwrap().unwrap();
    assert_eq!(
        show(&admin, "SHOW STATE")
            .await
            .lookup("key", "paused", "value"),
        "no"
    );
}

#[tokio::test]
async fn a_listen_port_change_is_reported_as_needing_a_restart() {
    let base = tx_config("");
    let mut p = Pooler::start(base.clone());
    let moved = free_port();
    p.rewrite_config(base.pooler(&format!("listen_port = {moved}")));
    let out = p.psql(ADMIN_USER, ADMIN_PASS, CONSOLE_DB, &["-c", "RELOAD"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}\n{}", p.log());
    assert!(stderr.contains("NOTICE:"), "{stderr}");
    assert!(
        stderr.contains("listen_port") && stderr.contains("restart"),
        "{stderr}"
    );
    // Still serving on the port it listens on.
    pooled(&p, TEST_DB)
        .await
        .simple_query("select 1")
        .await
        .unwrap();
}

#[tokio::test]
async fn set_changes_a_setting_live_and_refuses_what_it_cannot() {
    let p = Pooler::start(tx_config(""));
    let admin = console(&p).await;
    exec(&admin, "SET query_wait_timeout = 3").await;
    assert_eq!(config_value(&admin, "query_wait_timeout").await, "3s");
    exec(&admin, "SET default_pool_size TO '11'").await;
    assert_eq!(config_value(&admin, "default_pool_size").await, "11");
    assert_eq!(pool_size(&admin, TEST_DB).await, "11");

    let (code, message) = admin_error(&admin, "SET listen_port = 7000").await;
    assert_eq!(code, "55P02", "{message}");
    assert!(message.contains("restart"), "{message}");
    for bad in [
        "SET default_pool_size = lots",
        "SET query_wait_timeout = 'soon'",
        "SET no_such_setting = 1",
    ] {
        let (code, message) = admin_error(&admin, bad).await;
        assert_eq!(code, "22023", "{bad}: {message}");
    }
    // Refused SETs changed nothing, and SET survives a RELOAD of the unchanged file.
    exec(&admin, "RELOAD").await;
    assert_eq!(config_value(&admin, "query_wait_timeout").await, "3s");
    assert_eq!(config_value(&admin, "default_pool_size").await, "11");
    pooled(&p, TEST_DB)
        .await
        .simple_query("select 1")
        .await
        .unwrap();
}

#[tokio::test]
async fn an_open_console_does_not_hold_sigterm_shutdown() {
    // pgbouncer_exporter keeps a console connection open for good.
    let mut p = Pooler::start(tx_config("shutdown_timeout = 600"));
    let admin = console(&p).await;
    show(&admin, "SHOW STATS").await;
    p.signal("TERM");
    let status = p.wait_exit(Duration::from_secs(60));
    assert!(status.is_some(), "pgsluice still running\n{}", p.log());
}

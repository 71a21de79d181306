//! Admin console control commands, each by its observable effect on real clients: PAUSE waits
//! for servers to be released and then holds new queries until RESUME (all databases or
//! one), DISABLE refuses new clients until ENABLE, KILL and KILL_CLIENT disconnect exactly
//! whom they name, RECONNECT replaces servers (new backend pids, old ones gone from
//! pg_stat_activity) with WAIT_CLOSE waiting for that, and SHUTDOWN ends the process.

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

/// A query run in the background, to see whether it is held.
fn spawn_query(c: Client, sql: &'static str) -> tokio::task::JoinHandle<Client> {
    tokio::spawn(async move {
        c.simple_query(sql).await.expect("the held query succeeds");
        c
    })
}

/// The `value` of SHOW STATE's `paused` row.
async fn paused_state(admin: &Client) -> String {
    show(admin, "SHOW STATE")
        .await
        .lookup("key", "paused", "value")
        .to_string()
}

async fn databases_flag(admin: &Client, db: &str, column: &str) -> String {
    show(admin, "SHOW DATABASES")
        .await
        .lookup("name", db, column)
        .to_string()
}

#[tokio::test]
async fn pause_waits_for_the_open_transaction_then_holds_queries_until_resume() {
    let p = Pooler::start(tx_config(""));
    let admin = console(&p).await;
    let busy = pooled(&p, TEST_DB).await;
    let idle = pooled(&p, TEST_DB).await;
    busy.simple_query("begin").await.unwrap();
    // PAUSE returns only once the server held by the open transaction is released.
    let pause = tokio::spawn(async move {
        admin.simple_query("PAUSE").await.expect("PAUSE");
        admin
    });
    assert!(
        still_pending(&pause).await,
        "PAUSE waits for the transaction"
    );
    busy.simple_query("commit").await.unwrap();
    let admin = tokio::time::timeout(DEADLINE, pause)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(paused_state(&admin).await, "yes");
    assert_eq!(databases_flag(&admin, TEST_DB, "paused").await, "1");

    let held = spawn_query(idle, "select 1");
    assert!(still_pending(&held).await, "a query is held while paused");
    wait_until("the held client to show as waiting", DEADLINE, || async {
        let clients = show(&admin, "SHOW CLIENTS").await;
        clients.rows_where("state", "waiting").len() == 1
    })
    .await;
    exec(&admin, "RESUME").await;
    tokio::time::timeout(DEADLINE, held).await.unwrap().unwrap();
    assert_eq!(paused_state(&admin).await, "no");
    assert_eq!(databases_flag(&admin, TEST_DB, "paused").await, "0");
    busy.simple_query("select 1").await.unwrap();
}

#[tokio::test]
async fn pause_of_one_database_leaves_the_others_running() {
    let other = unique_name("adm_pause");
    shared_cluster().create_database(&other);
    let p = Pooler::start(tx_config("").database(&other, ""));
    let admin = console(&p).await;
    let paused_client = pooled(&p, TEST_DB).await;
    let running = pooled(&p, &other).await;
    exec(&admin, &format!("PAUSE {TEST_DB}")).await;
    assert_eq!(databases_flag(&admin, TEST_DB, "paused").await, "1");
    assert_eq!(databases_flag(&admin, &other, "paused").await, "0");
    assert_eq!(paused_state(&admin).await, "yes");
    let held = spawn_query(paused_client, "select 1");
    assert!(still_pending(&held).await, "{TEST_DB} is paused");
    running.simple_query("select 1").await.unwrap();
    // RESUME of another database does not release it; RESUME of its own does.
    exec(&admin, &format!("RESUME {other}")).await;
    assert!(still_pending(&held).await, "{TEST_DB} is still paused");
    exec(&admin, &format!("RESUME {TEST_DB}")).await;
    tokio::time::timeout(DEADLINE, held).await.unwrap().unwrap();
    assert_eq!(databases_flag(&admin, TEST_DB, "paused").await, "0");
    let (code, _) = admin_error(&admin, "PAUSE no_such_db").await;
    assert_eq!(code, "3D000");
}

#[tokio::test]
async fn disable_refuses_new_clients_until_enable() {
    let p = Pooler::start(tx_config(""));
    let admin = console(&p).await;
    let existing = pooled(&p, TEST_DB).await;
    exec(&admin, &format!("DISABLE {TEST_DB}")).await;
    assert_eq!(databases_flag(&admin, TEST_DB, "disabled").await, "1");
    let err = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap_err();
    assert_eq!(sqlstate(&err), Some("57P03"), "{err:?}");
    // Clients already connected keep working.
    existing.simple_query("select 1").await.unwrap();
    exec(&admin, &format!("ENABLE {TEST_DB}")).await;
    assert_eq!(databases_flag(&admin, TEST_DB, "disabled").await, "0");
    pooled(&p, TEST_DB)
        .await
        .simple_query("select 1")
        .await
        .unwrap();
    let (code, _) = admin_error(&admin, "DISABLE").await;
    assert_eq!(code, "42601", "DISABLE needs a database");
}

#[tokio::test]
async fn kill_disconnects_the_clients_of_that_database_only() {
    let other = unique_name("adm_kill");
    shared_cluster().create_database(&other);
    let p = Pooler::start(tx_config("").database(&other, ""));
    let admin = console(&p).await;
    let victim = pooled(&p, TEST_DB).await;
    let in_tx = pooled(&p, TEST_DB).await;
    let survivor = pooled(&p, &other).await;
    in_tx.simple_query("begin").await.unwrap();
    exec(&admin, &format!("KILL {TEST_DB}")).await;
    wait_until(
        "the killed clients to leave SHOW CLIENTS",
        DEADLINE,
        || async {
            show(&admin, "SHOW CLIENTS")
                .await
                .rows_where("database", TEST_DB)
                .is_empty()
        },
    )
    .await;
    for c in [&victim, &in_tx] {
        assert!(c.simple_query("select 1").await.is_err(), "killed");
    }
    survivor.simple_query("select 1").await.unwrap();
    // KILL does not disable: new clients are welcome.
    pooled(&p, TEST_DB)
        .await
        .simple_query("select 1")
        .await
        .unwrap();
}

#[tokio::test]
async fn kill_client_disconnects_exactly_that_client() {
    let p = Pooler::start(tx_config(""));
    let admin = console(&p).await;
    let target = pooled_named(&p, TEST_DB, "target").await;
    let bystander = pooled_named(&p, TEST_DB, "bystander").await;
    let clients = show(&admin, "SHOW CLIENTS").await;
    let id = clients
        .lookup("application_name", "target", "id")
        .to_string();
    exec(&admin, &format!("KILL_CLIENT {id}")).await;
    wait_until("the target's connection to close", DEADLINE, || async {
        target.is_closed() || target.simple_query("select 1").await.is_err()
    })
    .await;
    assert!(target.simple_query("select 1").await.is_err());
    bystander.simple_query("select 1").await.unwrap();
    let clients = show(&admin, "SHOW CLIENTS").await;
    assert!(clients.rows_where("id", &id).is_empty(), "{clients:?}");
    clients.row_where("application_name", "bystander");
    let (code, message) = admin_error(&admin, "KILL_CLIENT 987654321").await;
    assert_eq!(code, "42704", "{message}");
    let (code, _) = admin_error(&admin, "KILL_CLIENT abc").await;
    assert_eq!(code, "42601");
}

async fn pid_is_gone(pid: &str) -> bool {
    let superuser = shared_cluster().superuser_client("postgres").await;
    let pid: i32 = pid.parse().unwrap();
    superuser
        .query("select 1 from pg_stat_activity where pid = $1", &[&pid])
        .await
        .unwrap()
        .is_empty()
}

#[tokio::test]
async fn reconnect_replaces_idle_servers_and_wait_close_returns() {
    let db = unique_name("adm_reconnect");
    shared_cluster().create_database(&db);
    let p = Pooler::start(tx_config("default_pool_size = 1").database(&db, ""));
    let admin = console(&p).await;
    let c = pooled(&p, &db).await;
    let before = backend_pid(&c).await;
    assert_eq!(backend_pid(&c).await, before, "one pooled server, reused");
    exec(&admin, &format!("RECONNECT {db}")).await;
    tokio::time::timeout(DEADLINE, admin.simple_query(&format!("WAIT_CLOSE {db}")))
        .await
        .expect("WAIT_CLOSE returns")
        .unwrap();
    let after = backend_pid(&c).await;
    assert_ne!(after, before, "RECONNECT replaced the server");
    wait_until(
        "the old backend to leave pg_stat_activity",
        DEADLINE,
        || pid_is_gone(&before),
    )
    .await;
    // RECONNECT of all databases, the same way.
    exec(&admin, "RECONNECT").await;
    tokio::time::timeout(DEADLINE, admin.simple_query("WAIT_CLOSE"))
        .await
        .expect("WAIT_CLOSE returns")
        .unwrap();
    assert_ne!(backend_pid(&c).await, after);
}

#[tokio::test]
async fn reconnect_of_a_busy_server_waits_for_its_release() {
    let db = unique_name("adm_reconnect_busy");
    shared_cluster().create_database(&db);
    let p = Pooler::start(tx_config("default_pool_size = 1").database(&db, ""));
    let admin = console(&p).await;
    let c = pooled(&p, &db).await;
    c.simple_query("begin").await.unwrap();
    let before = backend_pid(&c).await;
    exec(&admin, "RECONNECT").await;
    let servers = show(&admin, "SHOW SERVERS").await;
    let s = servers.row_where("remote_pid", &before);
    assert_eq!(servers.get(s, "close_needed"), "1", "{servers:?}");
    // The open transaction keeps its server; WAIT_CLOSE waits for it.
    let wait_close = tokio::spawn(async move {
        admin.simple_query("WAIT_CLOSE").await.expect("WAIT_CLOSE");
        admin
    });
    assert!(still_pending(&wait_close).await, "WAIT_CLOSE waits");
    assert_eq!(backend_pid(&c).await, before, "inside the transaction");
    c.simple_query("commit").await.unwrap();
    tokio::time::timeout(DEADLINE, wait_close)
        .await
        .expect("WAIT_CLOSE returns once the server is released")
        .unwrap();
    assert_ne!(backend_pid(&c).await, before);
    wait_until(
        "the old backend to leave pg_stat_activity",
        DEADLINE,
        || pid_is_gone(&before),
    )
    .await;
}

#[tokio::test]
async fn shutdown_from_the_console_ends_the_process() {
    // A long shutdown_timeout: the process must exit because SHUTDOWN says so, not because
    // the timeout ran out while the console that sent it was still connected.
    let mut p = Pooler::start(tx_config("shutdown_timeout = 600"));
    let idle = pooled(&p, TEST_DB).await;
    idle.simple_query("select 1").await.unwrap();
    let admin = console(&p).await;
    exec(&admin, "SHUTDOWN").await;
    wait_until("the console to be closed", DEADLINE, || async {
        admin.is_closed()
    })
    .await;
    let status = p.wait_exit(Duration::from_secs(60));
    assert!(status.is_some(), "pgsluice still running\n{}", p.log());
    assert!(status.unwrap().success(), "{}", p.log());
}

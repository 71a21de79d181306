//! Transaction and statement pooling: many clients share a few servers, a server is held
//! only for a transaction, each client's session parameters follow it from server to
//! server, and the timeouts fail clearly (SQLSTATE, and the pooler keeps serving).

use std::time::Duration;

use crate::common::*;
use tokio_postgres::Client;

fn tx_pooler(extra: &str) -> Pooler {
    Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler("pool_mode = \"transaction\"")
            .pooler(extra),
    )
}

async fn login(p: &Pooler) -> Client {
    let (client, _task) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    client
}

async fn backend_pid(c: &Client) -> i32 {
    c.query_one("select pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn two_hundred_clients_share_five_servers_with_correct_results() {
    // Its own database, so the backend count below is this test's alone.
    let db = unique_name("share");
    shared_cluster().create_database(&db);
    let p = Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler("pool_mode = \"transaction\"\ndefault_pool_size = 5\nmax_client_conn = 1000")
            .database(&db, ""),
    );
    let table = unique_name("own_rows");
    let admin = shared_cluster().superuser_client(&db).await;
    admin
        .batch_execute(&format!(
            "create table {table}(client int, n int); grant all on {table} to public"
        ))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for id in 0..200i32 {
        let mut cfg = md5_login(p.connect_config());
        cfg.dbname(&db);
        let table = table.clone();
        tasks.push(tokio::spawn(async move {
            let (mut c, _task) = connect_with(&cfg).await.unwrap();
            for n in 0..3i32 {
                let tx = c.transaction().await.unwrap();
                tx.execute(&format!("insert into {table} values ($1, $2)"), &[&id, &n])
                    .await
                    .unwrap();
                let mine: i64 = tx
                    .query_one(
                        &format!("select count(*) from {table} where client = $1"),
                        &[&id],
                    )
                    .await
                    .unwrap()
                    .get(0);
                assert_eq!(
                    mine,
                    i64::from(n) + 1,
                    "client {id} sees exactly its own rows"
                );
                tx.commit().await.unwrap();
                // Outside a transaction each statement may land on another server; named
                // named statements are tested on their own, so this one is simple.
                let echo = c.simple_query(&format!("select {id}")).await.unwrap();
                let tokio_postgres::SimpleQueryMessage::Row(row) = &echo[1] else {
                    panic!("a row: {echo:?}")
                };
                assert_eq!(row.get(0), Some(id.to_string().as_str()));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let servers: i64 = admin
        .query_one(
            "select count(*) from pg_stat_activity where usename = $1",
            &[&MD5_USER],
        )
        .await
        .unwrap()
        .get(0);
    assert!(servers <= 5, "at most pool_size servers: {servers}");
    let rows: i64 = admin
        .query_one(&format!("select count(*) from {table}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 600);
}

#[tokio::test]
async fn a_server_is_held_for_the_whole_transaction_and_released_after_it() {
    let p = tx_pooler("default_pool_size = 1");
    let a = login(&p).await;
    let b = login(&p).await;
    a.batch_execute("begin").await.unwrap();
    let pid_a = backend_pid(&a).await;
    // B needs the only server, which A holds until COMMIT.
    let b_query = tokio::spawn(async move {
        let pid = backend_pid(&b).await;
        (b, pid)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !b_query.is_finished(),
        "B must wait while A's transaction is open"
    );
    assert_eq!(
        backend_pid(&a).await,
        pid_a,
        "A keeps its server inside the transaction"
    );
    a.batch_execute("commit").await.unwrap();
    let (b, pid_b) = tokio::time::timeout(Duration::from_secs(60), b_query)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pid_b, pid_a, "the released server went to B");
    // Outside transactions both take turns on the one server.
    for _ in 0..5 {
        assert_eq!(backend_pid(&a).await, pid_a);
        assert_eq!(backend_pid(&b).await, pid_a);
    }
}

#[tokio::test]
async fn session_parameters_follow_each_client_across_a_shared_server() {
    let p = tx_pooler("default_pool_size = 1");
    let mut cfg_a = md5_login(p.connect_config());
    cfg_a
        .application_name("client_a")
        .options("-c search_path=a_schema,public");
    let mut cfg_b = md5_login(p.connect_config());
    cfg_b.application_name("client_b");
    let (a, _ta) = connect_with(&cfg_a).await.unwrap();
    let (b, _tb) = connect_with(&cfg_b).await.unwrap();
    a.batch_execute("set DateStyle = 'German'; set TimeZone = 'Asia/Tokyo'")
        .await
        .unwrap();
    for _ in 0..3 {
        let row = a
            .query_one("select current_setting('application_name'), current_setting('DateStyle'), current_setting('TimeZone'), current_setting('search_path'), pg_backend_pid()", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "client_a");
        assert_eq!(row.get::<_, String>(1), "German, DMY");
        assert_eq!(row.get::<_, String>(2), "Asia/Tokyo");
        assert_eq!(row.get::<_, String>(3), "a_schema,public");
        let pid: i32 = row.get(4);
        let row = b
            .query_one("select current_setting('application_name'), current_setting('DateStyle'), current_setting('TimeZone'), current_setting('search_path'), pg_backend_pid()", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, i32>(4), pid, "same server for both clients");
        assert_eq!(row.get::<_, String>(0), "client_b");
        assert_ne!(
            row.get::<_, String>(1),
            "German, DMY",
            "B never sees A's DateStyle"
        );
        assert_ne!(
            row.get::<_, String>(2),
            "Asia/Tokyo",
            "B never sees A's TimeZone"
        );
        assert_eq!(
            row.get::<_, String>(3),
            "\"$user\", public",
            "A's startup search_path is reset for B"
        );
    }
}

#[tokio::test]
async fn statement_mode_refuses_transaction_blocks() {
    let p = Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler("pool_mode = \"statement\"\ndefault_pool_size = 2"),
    );
    let c = login(&p).await;
    assert_eq!(
        c.query_one("select 7", &[]).await.unwrap().get::<_, i32>(0),
        7
    );
    let err = c.batch_execute("begin; select 1").await.unwrap_err();
    assert_eq!(sqlstate(&err), Some("0A000"), "{err:?}");
    assert!(err
        .as_db_error()
        .unwrap()
        .message()
        .contains("statement pooling"));
    // Others keep working, and the refused transaction left nothing open.
    let d = login(&p).await;
    assert_eq!(
        d.query_one("select 8", &[]).await.unwrap().get::<_, i32>(0),
        8
    );
}

#[tokio::test]
async fn query_wait_timeout_is_an_error_the_client_can_retry_after() {
    let p = tx_pooler("default_pool_size = 1\nquery_wait_timeout = \"500ms\"");
    let a = login(&p).await;
    let b = login(&p).await;
    a.batch_execute("begin").await.unwrap();
    let err = b.simple_query("select 1").await.unwrap_err();
    let db = err.as_db_error().expect("an ErrorResponse");
    assert_eq!(db.code().code(), "53300");
    assert!(
        db.message().contains("query_wait_timeout"),
        "{}",
        db.message()
    );
    // Extended protocol too: the whole request is refused, then the connection works again.
    let err = b.query_one("select $1::int", &[&1i32]).await.unwrap_err();
    assert_eq!(sqlstate(&err), Some("53300"));
    a.batch_execute("commit").await.unwrap();
    assert_eq!(
        b.query_one("select $1::int", &[&5i32])
            .await
            .unwrap()
            .get::<_, i32>(0),
        5
    );
}

#[tokio::test]
async fn a_login_needs_no_server_while_every_server_is_busy() {
    let p = tx_pooler("default_pool_size = 1\nquery_wait_timeout = \"500ms\"");
    // The first logins teach the pool what its servers report, startup values included.
    let mut cfg = md5_login(p.connect_config());
    cfg.dbname(TEST_DB)
        .application_name("surge")
        .options("-c TimeZone=asia/kolkata");
    let (first, _t) = connect_with(&cfg).await.unwrap();
    first.simple_query("select 1").await.unwrap();
    let holder = login(&p).await;
    holder.batch_execute("begin").await.unwrap();
    // Every server is busy: both kinds of login still complete, with Postgres's values.
    let plain = login(&p).await;
    let (same, _t) = tokio::time::timeout(Duration::from_secs(10), connect_with(&cfg))
        .await
        .expect("logged in without a server")
        .unwrap();
    // The first request is what waits, and gets the error the client can retry after.
    let err = same.simple_query("show timezone").await.unwrap_err();
    assert_eq!(sqlstate(&err), Some("53300"), "{err:?}");
    holder.batch_execute("commit").await.unwrap();
    let zone = same.query_one("show timezone", &[]).await.unwrap();
    assert_eq!(zone.get::<_, String>(0), "Asia/Kolkata");
    let name = same.query_one("show application_name", &[]).await.unwrap();
    assert_eq!(name.get::<_, String>(0), "surge");
    let zone = plain.query_one("show timezone", &[]).await.unwrap();
    assert_ne!(
        zone.get::<_, String>(0),
        "Asia/Kolkata",
        "defaults for a plain login"
    );
}

#[tokio::test]
async fn state_that_cannot_move_pins_the_client_visibly_until_it_is_gone() {
    let p = tx_pooler("default_pool_size = 2");
    let a = console::pooled_named(&p, TEST_DB, "pinned_a").await;
    let b = login(&p).await;
    let admin = console::console(&p).await;
    let pinned = |clients: &console::ResultSet| {
        clients
            .lookup("application_name", "pinned_a", "pinned")
            .to_string()
    };
    a.batch_execute("listen orders; select pg_advisory_lock(4711)")
        .await
        .unwrap();
    // Recorded once pgsluice has read the session back, right after the reply.
    wait_until(
        "SHOW CLIENTS to say why A is pinned",
        Duration::from_secs(30),
        || async {
            // LISTEN follows the client instead of pinning it.
            pinned(&console::show(&admin, "SHOW CLIENTS").await) == "advisory lock"
        },
    )
    .await;
    // A keeps its server: B's transaction gets the other one, A goes on meanwhile on its own.
    b.batch_execute("begin").await.unwrap();
    let own = backend_pid(&a).await;
    assert_eq!(backend_pid(&a).await, own, "the same server every time");
    b.batch_execute("commit").await.unwrap();
    a.batch_execute("unlisten *; select pg_advisory_unlock(4711)")
        .await
        .unwrap();
    wait_until(
        "A unpinned in SHOW CLIENTS",
        Duration::from_secs(30),
        || async { pinned(&console::show(&admin, "SHOW CLIENTS").await).is_empty() },
    )
    .await;
    let log = p.log();
    assert!(log.contains("client pinned to its server"), "{log}");
    assert!(log.contains("client unpinned"), "{log}");
    // Nothing of A's lock is left for anyone: another session can take it.
    let su = shared_cluster().superuser_client(TEST_DB).await;
    let got: bool = su
        .query_one("select pg_try_advisory_lock(4711)", &[])
        .await
        .unwrap()
        .get(0);
    assert!(got);
}

#[tokio::test]
async fn pin_session_state_off_returns_the_server_with_its_state_as_pgbouncer_does() {
    let p = Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler("pool_mode = \"transaction\"\ndefault_pool_size = 1")
            .user(MD5_USER, "pin_session_state = false"),
    );
    let a = login(&p).await;
    a.batch_execute("select pg_advisory_lock(4713)")
        .await
        .unwrap();
    // One server, and A does not keep it: B gets it, lock and all.
    let b = login(&p).await;
    let held: i64 = b
        .query_one(
            "select count(*) from pg_locks where locktype = 'advisory' and objid = 4713 \
             and pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(held, 1);
    let admin = console::console(&p).await;
    let clients = console::show(&admin, "SHOW CLIENTS").await;
    for row in 0..clients.rows.len() {
        assert_eq!(clients.get(row, "pinned"), "", "{clients:?}");
    }
    b.batch_execute("select pg_advisory_unlock_all()")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_pinned_client_that_leaves_leaves_nothing_behind() {
    let p = tx_pooler("default_pool_size = 1");
    let a = login(&p).await;
    a.batch_execute("select pg_advisory_lock(4712); create temp table mine (v int)")
        .await
        .unwrap();
    drop(a);
    // The next client gets a server with no lock and no temporary table of A's.
    let b = login(&p).await;
    let rows = b
        .query_one(
            "select (select count(*) from pg_locks where locktype = 'advisory' and objid = 4712), \
             (select count(*) from pg_class where relnamespace = pg_my_temp_schema())",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((rows.get::<_, i64>(0), rows.get::<_, i64>(1)), (0, 0));
}

#[tokio::test]
async fn idle_transaction_timeout_frees_the_server() {
    let p = tx_pooler("default_pool_size = 1\nidle_transaction_timeout = \"300ms\"");
    let a = login(&p).await;
    a.batch_execute("begin").await.unwrap();
    // A never finishes; B still gets the server once the timeout rolls A back.
    let b = login(&p).await;
    let one: i32 = tokio::time::timeout(Duration::from_secs(60), b.query_one("select 1", &[]))
        .await
        .unwrap()
        .unwrap()
        .get(0);
    assert_eq!(one, 1);
    let err = a.simple_query("select 1").await.unwrap_err();
    assert!(a.is_closed() || sqlstate(&err) == Some("25P03"), "{err:?}");
}

#[tokio::test]
async fn query_timeout_cancels_the_query() {
    let p = tx_pooler("default_pool_size = 1\nquery_timeout = \"300ms\"");
    let a = login(&p).await;
    let err = a.simple_query("select pg_sleep(60)").await.unwrap_err();
    assert!(sqlstate(&err) == Some("57014") || a.is_closed(), "{err:?}");
    let b = login(&p).await;
    assert_eq!(
        b.query_one("select 2", &[]).await.unwrap().get::<_, i32>(0),
        2
    );
}

#[tokio::test]
async fn client_idle_timeout_closes_idle_clients() {
    let p = tx_pooler("client_idle_timeout = \"300ms\"");
    let a = login(&p).await;
    wait_until(
        "the idle client to be closed",
        Duration::from_secs(30),
        || async { a.is_closed() },
    )
    .await;
    let b = login(&p).await;
    assert_eq!(
        b.query_one("select 3", &[]).await.unwrap().get::<_, i32>(0),
        3
    );
}

#[test]
fn pgbench_surge_of_500_clients_on_20_servers_has_no_failures() {
    let cluster = PgCluster::start_with(PgOptions {
        max_connections: 100,
        ..PgOptions::default()
    });
    let db = unique_name("surge");
    cluster.create_database(&db);
    let p = Pooler::start(
        PoolerConfig::new(&cluster)
            .pooler("pool_mode = \"transaction\"\ndefault_pool_size = 20\nmax_client_conn = 1000")
            .database(&db, ""),
    );
    assert!(p.pgbench_select_only(&db, 500, 5, &[]) > 0);
}

#[tokio::test]
async fn transaction_timeout_closes_a_transaction_kept_busy_too_long() {
    let p = tx_pooler("default_pool_size = 1\ntransaction_timeout = \"500ms\"");
    let a = login(&p).await;
    a.batch_execute("begin").await.unwrap();
    // Busy, never idle: only transaction_timeout can end this.
    let mut ended = None;
    for _ in 0..600 {
        match a.simple_query("select 1").await {
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => {
                ended = Some(e);
                break;
            }
        }
    }
    let err = ended.expect("the transaction is ended by transaction_timeout");
    assert!(sqlstate(&err) == Some("25P04") || a.is_closed(), "{err:?}");
    let b = login(&p).await;
    assert_eq!(
        b.query_one("select 4", &[]).await.unwrap().get::<_, i32>(0),
        4
    );
}

#[tokio::test]
async fn a_users_section_overrides_the_timeouts_for_that_user_only() {
    let p = Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler("pool_mode = \"transaction\"")
            .user(MD5_USER, "query_timeout = \"300ms\""),
    );
    let a = login(&p).await;
    let err = a.simple_query("select pg_sleep(60)").await.unwrap_err();
    assert!(sqlstate(&err) == Some("57014") || a.is_closed(), "{err:?}");
    // scram_user has no override: its sleep runs to the end.
    let (b, _task) = p.connect(SCRAM_USER, SCRAM_PASS, TEST_DB).await.unwrap();
    b.simple_query("select pg_sleep(1)").await.unwrap();
}

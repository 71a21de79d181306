//! The relay seen from a real client (tokio-postgres) in session mode: multi-statement simple
//! queries, startup parameters taking effect on the server (and Postgres's own error when one
//! is bad), pipelined extended-protocol queries, LISTEN/NOTIFY delivered to an idle client,
//! and cancel requests — forwarded with the right key, ignored with a wrong one.
//! Wire-level details (exact messages, startup ParameterStatus) are in `relay_protocol.rs`.

use std::time::Duration;

use crate::common::raw::{send_cancel_request, tags, Frontend, RawClient};
use crate::common::*;
use futures_util::future::join_all;
use tokio_postgres::{AsyncMessage, SimpleQueryMessage};

const DEADLINE: Duration = Duration::from_secs(30);

/// The text of every row's first column, and the number of CommandCompletes.
fn rows_and_completions(msgs: &[SimpleQueryMessage]) -> (Vec<String>, usize) {
    let mut rows = Vec::new();
    let mut done = 0;
    for m in msgs {
        match m {
            SimpleQueryMessage::Row(r) => rows.push(r.get(0).unwrap_or("NULL").to_owned()),
            SimpleQueryMessage::CommandComplete(_) => done += 1,
            _ => {}
        }
    }
    (rows, done)
}

/// (severity, SQLSTATE, message) of a server error.
fn db_error(err: &tokio_postgres::Error) -> (String, String, String) {
    let db = err
        .as_db_error()
        .unwrap_or_else(|| panic!("not a server error: {err:?}"));
    let code = db.code().code().to_owned();
    (db.severity().to_owned(), code, db.message().to_owned())
}

#[tokio::test]
async fn multi_statement_simple_query_returns_every_result_in_order() {
    let p = Pooler::start(PoolerConfig::new(shared_cluster()));
    let (client, _task) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    let msgs = client
        .simple_query("select 1; select 'two'; select 3 union all select 4; select 5")
        .await
        .unwrap();
    let (rows, done) = rows_and_completions(&msgs);
    assert_eq!(rows, ["1", "two", "3", "4", "5"]);
    assert_eq!(done, 4, "one CommandComplete per statement");
}

#[tokio::test]
async fn error_inside_multi_statement_query_is_reported_and_session_goes_on() {
    let p = Pooler::start(PoolerConfig::new(shared_cluster()));
    let (client, _task) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    let table = unique_name("relay_multi");
    let sql = format!(
        "create table {table} (n int); insert into {table} values (1); \
         select 1/0; insert into {table} values (2)"
    );
    let err = client.simple_query(&sql).await.unwrap_err();
    assert_eq!(sqlstate(&err), Some("22012"), "{:?}", db_error(&err));
    // The statements of one Query string form one implicit transaction (PostgreSQL docs
    // "Multiple Statements in a Simple Query"): the error rolled back the create as well.
    let exists = client
        .query_one("select to_regclass($1) is not null", &[&table])
        .await
        .unwrap();
    assert!(!exists.get::<_, bool>(0), "the failed batch left {table}");
    let msgs = client.simple_query("select 41 + 1").await.unwrap();
    assert_eq!(rows_and_completions(&msgs).0, ["42"]);
}

#[tokio::test]
async fn application_name_reaches_the_server() {
    let p = Pooler::start(PoolerConfig::new(shared_cluster()));
    let app = unique_name("relay_app");
    let (client, _task) = connect_with(md5_login(p.connect_config()).application_name(&app))
        .await
        .unwrap();
    let row = client
        .query_one(
            "select current_setting('application_name'), \
             (select application_name from pg_stat_activity where pid = pg_backend_pid())",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), app);
    assert_eq!(row.get::<_, String>(1), app);
    let shown = client.simple_query("show application_name").await.unwrap();
    assert_eq!(rows_and_completions(&shown).0, [app]);
}

#[tokio::test]
async fn startup_options_take_effect_and_do_not_outlive_the_client() {
    let pg = shared_cluster();
    let schema = unique_name("relay_schema");
    let su = pg.superuser_client(TEST_DB).await;
    su.batch_execute(&format!(
        "create schema {schema}; grant usage, create on schema {schema} to public"
    ))
    .await
    .unwrap();
    let p = Pooler::start(PoolerConfig::new(pg));
    let mut cfg = md5_login(p.connect_config());
    cfg.options(format!(
        r"-c search_path={schema},public -c statement_timeout=1234 -c DateStyle=SQL,\ DMY --TimeZone=Asia/Tokyo"
    ));
    let (client, task) = connect_with(&cfg).await.unwrap();
    let show = |name: &'static str| {
        let client = &client;
        async move {
            let msgs = client.simple_query(&format!("show {name}")).await.unwrap();
            rows_and_completions(&msgs).0.remove(0)
        }
    };
    assert_eq!(
        show("search_path").await.replace(' ', ""),
        format!("{schema},public")
    );
    assert_eq!(show("statement_timeout").await, "1234ms");
    assert_eq!(show("DateStyle").await, "SQL, DMY");
    assert_eq!(show("TimeZone").await, "Asia/Tokyo");

    // Each setting changes what the server does, not only what SHOW says.
    let table = unique_name("relay_in_schema");
    client
        .batch_execute(&format!("create table {table} (n int)"))
        .await
        .unwrap();
    let row = client
        .query_one(
            "select (select table_schema::text from information_schema.tables \
                     where table_name = $1), \
                    (date '2024-01-02')::text, \
                    to_char(timestamptz '2024-01-01 00:00:00+00', 'HH24')",
            &[&table],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), schema);
    assert_eq!(row.get::<_, String>(1), "02/01/2024");
    assert_eq!(row.get::<_, String>(2), "09");
    let err = client
        .simple_query("select pg_sleep(10)")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), Some("57014"), "{:?}", db_error(&err));

    // Session state never crosses clients: the next one starts from the server defaults.
    drop(client);
    let _ = task.await;
    let (other, _task) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    let row = other
        .query_one(
            "select current_setting('statement_timeout'), current_setting('TimeZone') <> 'Asia/Tokyo', \
                    current_setting('DateStyle')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "0");
    assert!(row.get::<_, bool>(1), "TimeZone leaked to the next client");
    assert_eq!(row.get::<_, String>(2), "ISO, MDY");
}

#[tokio::test]
async fn bad_startup_parameter_gets_postgres_error_and_pooler_keeps_serving() {
    let pg = shared_cluster();
    let p = Pooler::start(PoolerConfig::new(pg));
    for options in ["-c work_mem=notanumber", "-c no_such_param=1"] {
        let direct = connect_with(md5_login(pg.config()).options(options)).await;
        let expected = db_error(&direct.map(|_| ()).unwrap_err());
        let got = match connect_with(md5_login(p.connect_config()).options(options)).await {
            Ok(_) => panic!("{options}: pooler accepted the login\n{}", p.log()),
            Err(e) => db_error(&e),
        };
        assert_eq!(got, expected, "{options}");
        let (client, _task) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
        let row = client.query_one("select 7", &[]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), 7);
    }
}

#[tokio::test]
async fn fifty_pipelined_queries_each_get_their_own_answer() {
    let p = Pooler::start(PoolerConfig::new(shared_cluster()));
    let (client, _task) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    let client = &client;
    // All 50 are written before the first reply is read; one in the middle fails.
    let queries = (0..50i32).map(|i| async move {
        if i == 25 {
            let err = client
                .query_one("select 1 / $1::int4", &[&0i32])
                .await
                .unwrap_err();
            return Err(sqlstate(&err).map(str::to_owned));
        }
        let label = format!("q{i}");
        let row = client
            .query_one("select $1::int4 * 2, $2::text || '!'", &[&i, &label])
            .await
            .unwrap();
        Ok((row.get::<_, i32>(0), row.get::<_, String>(1)))
    });
    let results = join_all(queries).await;
    for (i, result) in (0..50i32).zip(results) {
        if i == 25 {
            assert_eq!(result, Err(Some("22012".to_owned())));
        } else {
            assert_eq!(result, Ok((i * 2, format!("q{i}!"))));
        }
    }
}

#[tokio::test]
async fn listen_notify_reaches_an_idle_listener() {
    let p = Pooler::start(PoolerConfig::new(shared_cluster()));
    let cfg = md5_login(p.connect_config());
    let (listener, mut connection) = cfg.connect(tokio_postgres::NoTls).await.unwrap();
    // Drive the connection ourselves to see its asynchronous messages.
    let (tx, mut notifications) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(message)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            if let AsyncMessage::Notification(n) = message {
                let _ = tx.send(n);
            }
        }
    });
    let channel = unique_name("relay_chan");
    listener
        .batch_execute(&format!("listen {channel}"))
        .await
        .unwrap();

    let (notifier, _task) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    let notifier_pid: i32 = notifier
        .query_one("select pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    notifier
        .execute(
            "select pg_notify($1, $2)",
            &[&channel, &"payload with spaces ✓"],
        )
        .await
        .unwrap();
    let n = tokio::time::timeout(DEADLINE, notifications.recv())
        .await
        .expect("no NotificationResponse reached the idle listener")
        .expect("listener connection ended");
    assert_eq!(n.channel(), channel);
    assert_eq!(n.payload(), "payload with spaces ✓");
    // The relay passes the body untouched: the pid is the notifying server process's.
    assert_eq!(n.process_id(), notifier_pid);
    // And the listener's own session still works.
    let row = listener.query_one("select 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
}

/// Rows in pg_stat_activity running `select pg_sleep(...)` for `app`.
async fn sleeping(su: &tokio_postgres::Client, app: &str) -> i64 {
    su.query_one(
        "select count(*) from pg_stat_activity where application_name = $1 \
         and state = 'active' and query like 'select pg_sleep%'",
        &[&app],
    )
    .await
    .unwrap()
    .get(0)
}

/// Waits until `app`'s `select pg_sleep(...)` is running on the server.
async fn wait_until_sleeping(su: &tokio_postgres::Client, app: &str) {
    wait_until(
        "the query runs on the server",
        DEADLINE,
        move || async move { sleeping(su, app).await == 1 },
    )
    .await;
}

#[tokio::test]
async fn cancel_through_the_pooler_stops_the_running_query() {
    let pg = shared_cluster();
    let p = Pooler::start(PoolerConfig::new(pg));
    let su = pg.superuser_client(TEST_DB).await;
    let app = unique_name("relay_cancel");
    let (client, _task) = connect_with(md5_login(p.connect_config()).application_name(&app))
        .await
        .unwrap();
    let token = client.cancel_token();
    let running = tokio::spawn(async move {
        let result = client.simple_query("select pg_sleep(60)").await;
        (client, result.map(|_| ()))
    });
    wait_until_sleeping(&su, &app).await;
    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let (client, result) = tokio::time::timeout(DEADLINE, running)
        .await
        .expect("the cancelled query did not end")
        .unwrap();
    let err = result.unwrap_err();
    assert_eq!(
        sqlstate(&err),
        Some("57014"),
        "{:?}\n{}",
        db_error(&err),
        p.log()
    );
    let row = client.query_one("select 'still here'", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "still here");
}

#[tokio::test]
async fn cancel_with_a_wrong_key_does_nothing() {
    let pg = shared_cluster();
    let p = Pooler::start(PoolerConfig::new(pg));
    let su = pg.superuser_client(TEST_DB).await;
    let app = unique_name("relay_badcancel");
    let mut c = RawClient::connect(&p, MD5_USER, MD5_PASS, &[("application_name", &app)]).await;
    let (pid, secret) = c.key;
    c.send(Frontend::new().query("select pg_sleep(60)")).await;
    wait_until_sleeping(&su, &app).await;
    // The pooler closes a cancel connection only after it has dealt with the request.
    send_cancel_request(&p, pid, secret ^ 0x0101_0101).await;
    send_cancel_request(&p, pid ^ 0x0000_0100, secret).await;
    send_cancel_request(&p, rand::random(), rand::random()).await;
    assert_eq!(
        sleeping(&su, &app).await,
        1,
        "a wrong key cancelled the query"
    );

    send_cancel_request(&p, pid, secret).await;
    let msgs = c.recv_until_ready().await;
    // RowDescription went out when the query started; then the error, then ReadyForQuery.
    assert_eq!(tags(&msgs), "TEZ", "{msgs:?}");
    assert_eq!(msgs[1].sqlstate().as_deref(), Some("57014"));
    assert_eq!(c.query_value("select 'usable'").await, "usable");
}

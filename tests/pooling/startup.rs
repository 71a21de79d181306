//! The edges of a client connection's first moments, byte by byte over raw TCP: malformed
//! startup packets get one FATAL ErrorResponse and a closed socket (PostgreSQL docs, "Message
//! Flow: Start-up"), SSL/GSS encryption requests are declined with 'N', newer protocol minors
//! are negotiated down, and the limits (max_client_conn, max_packet_size, client_login_timeout)
//! refuse only the offending client while the pooler keeps serving everyone else.

use std::time::{Duration, Instant};

use crate::common::raw::{assert_single_fatal, raw_startup, tags, Backend, Frontend, RawClient};
use crate::common::*;
use bytes::BytesMut;
use postgres_protocol::message::frontend;

const DEADLINE: Duration = Duration::from_secs(30);
const SSL_REQUEST_CODE: u32 = 80_877_103;
const GSSENC_REQUEST_CODE: u32 = 80_877_104;

/// `select 1` through a fresh tokio-postgres login: the pooler still serves normal clients.
async fn normal_login_works(p: &Pooler) {
    let (client, _task) = p
        .connect(MD5_USER, MD5_PASS, TEST_DB)
        .await
        .unwrap_or_else(|e| panic!("normal login failed: {e:?}\n{}", p.log()));
    let row = client.query_one("select 1::int4", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
}

/// Logs in over raw TCP as trust_user (the pooler must run with auth_type = "trust").
async fn raw_login(p: &Pooler) -> RawClient {
    let wire = RawClient::connect(p, TRUST_USER, "", &[]).await;
    let login = &wire.startup;
    assert_eq!(login[0].tag, b'R', "{login:?}");
    assert_eq!(login[0].body, [0, 0, 0, 0], "AuthenticationOk expected");
    wire
}

/// The rows of a simple query's reply, as DataRow count, and the final transaction status.
fn rows_and_status(reply: &[Backend]) -> (usize, u8) {
    let rows = reply.iter().filter(|m| m.tag == b'D').count();
    let last = reply.last().expect("a reply");
    assert_eq!(last.tag, b'Z', "{reply:?}");
    (rows, last.body[0])
}

#[tokio::test]
async fn malformed_startup_packets_get_one_fatal_and_a_closed_socket() {
    let p = Pooler::start(PoolerConfig::new(shared_cluster()));
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("length 4", 4u32.to_be_bytes().to_vec(), "08P01"),
        // Only the header: the pooler must refuse from it, not wait for 2 GiB of body.
        (
            "length 0x7fffffff",
            0x7fff_ffffu32.to_be_bytes().to_vec(),
            "08P01",
        ),
        (
            "protocol 2.0",
            raw_startup(2 << 16, b"user\0md5_user\0\0"),
            "0A000",
        ),
        (
            "parameters without terminator",
            raw_startup(3 << 16, b"user\0md5_user\0database"),
            "08P01",
        ),
        (
            "no user",
            raw_startup(3 << 16, b"database\0testdb\0\0"),
            "28000",
        ),
    ];
    for (what, bytes, sqlstate) in cases {
        let mut wire = RawClient::open(p.host(), p.port()).await;
        wire.send_bytes(&bytes).await;
        let messages = wire.recv_until_closed().await;
        let message = assert_single_fatal(&messages, sqlstate, what);
        assert!(!message.is_empty(), "{what}: the error says what was wrong");
        normal_login_works(&p).await;
    }
}

#[tokio::test]
async fn ssl_and_gssenc_requests_are_declined_then_plain_login_works() {
    let p = Pooler::start(PoolerConfig::new(shared_cluster()).pooler("auth_type = \"trust\""));
    for (what, code) in [
        ("SSLRequest", SSL_REQUEST_CODE),
        ("GSSENCRequest", GSSENC_REQUEST_CODE),
    ] {
        let mut wire = RawClient::open(p.host(), p.port()).await;
        wire.send_bytes(&raw_startup(code, b"")).await;
        assert_eq!(wire.recv_bytes(1).await, Some(b"N".to_vec()), "{what}");
        // The same socket goes on in plain text.
        if let Err(e) = wire.login(TRUST_USER, "", &[]).await {
            panic!("{what}: login refused: {e:?}");
        }
        let login = &wire.startup;
        let tags = tags(login);
        assert!(
            tags.starts_with('R') && tags.contains('K'),
            "{what}: {tags}"
        );
        assert_eq!(login[0].body, [0, 0, 0, 0], "{what}: AuthenticationOk");
        assert_eq!(login.last().unwrap().body, b"I", "{what}: idle after login");
        let reply = wire.query("select 1").await;
        assert_eq!(rows_and_status(&reply), (1, b'I'), "{what}: {reply:?}");
    }
}

#[tokio::test]
async fn protocol_3_1_with_an_option_is_negotiated_down_to_3_0() {
    let p = Pooler::start(PoolerConfig::new(shared_cluster()).pooler("auth_type = \"trust\""));
    let body = b"user\0trust_user\0database\0testdb\0_pq_.foo\0bar\0\0";
    // PostgreSQL is the oracle: the same packet straight to it.
    let pg = shared_cluster();
    let mut direct = RawClient::open(pg.host(), pg.port()).await;
    direct.send_bytes(&raw_startup(3 << 16 | 1, body)).await;
    let expected = direct.recv_until_ready().await;
    let mut wire = RawClient::open(p.host(), p.port()).await;
    wire.send_bytes(&raw_startup(3 << 16 | 1, body)).await;
    let login = wire.recv_until_ready().await;
    let negotiate = &login[0];
    assert_eq!(
        negotiate.tag, b'v',
        "NegotiateProtocolVersion first: {login:?}"
    );
    assert_eq!(negotiate, &expected[0], "as PostgreSQL sends it");
    // Int32 newest version supported (3.0 = 196608), Int32 count of unrecognised options,
    // then their names.
    let mut layout = Vec::new();
    layout.extend_from_slice(&196608u32.to_be_bytes());
    layout.extend_from_slice(&1u32.to_be_bytes());
    layout.extend_from_slice(b"_pq_.foo\0");
    assert_eq!(negotiate.body, layout);
    assert_eq!(login[1].tag, b'R', "{login:?}");
    assert_eq!(login[1].body, [0, 0, 0, 0], "AuthenticationOk");
    let reply = wire.query("select 1").await;
    assert_eq!(rows_and_status(&reply), (1, b'I'), "{reply:?}");
}

/// Connects, retrying while the pooler says 53300: the readiness probe of `Pooler::start` is
/// still counted as a client until the pooler notices it closed.
async fn connect_when_admitted(p: &Pooler) -> (tokio_postgres::Client, ConnTask) {
    let end = Instant::now() + DEADLINE;
    loop {
        match p.connect(MD5_USER, MD5_PASS, TEST_DB).await {
            Ok(connected) => return connected,
            Err(e) if sqlstate(&e) == Some("53300") && Instant::now() < end => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("login failed: {e:?}\n{}", p.log()),
        }
    }
}

#[tokio::test]
async fn max_client_conn_refuses_the_extra_client_until_one_leaves() {
    let p = Pooler::start(PoolerConfig::new(shared_cluster()).pooler("max_client_conn = 3"));
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_when_admitted(&p).await);
    }
    let err = p
        .connect(MD5_USER, MD5_PASS, TEST_DB)
        .await
        .expect_err("a 4th client was admitted past max_client_conn = 3");
    assert_eq!(sqlstate(&err), Some("53300"), "{err:?}");
    let db = err.as_db_error().unwrap();
    assert!(db.message().contains("max_client_conn"), "{}", db.message());
    for (client, _) in &held {
        client.simple_query("select 1").await.unwrap();
    }

    drop(held.pop());
    wait_until(
        "a new client is admitted after one left",
        DEADLINE,
        || async {
            match p.connect(MD5_USER, MD5_PASS, TEST_DB).await {
                Ok((client, _task)) => client.simple_query("select 1").await.is_ok(),
                Err(_) => false,
            }
        },
    )
    .await;
}

#[tokio::test]
async fn message_over_max_packet_size_is_fatal_for_that_client_only() {
    let p = Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler("auth_type = \"trust\"")
            .pooler("max_packet_size = 1024"),
    );
    let (bystander, _task) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    let mut wire = raw_login(&p).await;
    // 'Q', Int32 length, the SQL, its NUL: 5000 bytes on the wire.
    let sql = format!("select 1 -- {}", "x".repeat(5000 - 6 - 12));
    let query = Frontend::new().query(&sql);
    assert_eq!(query.bytes().len(), 5000);
    wire.send(query).await;
    let messages = wire.recv_until_closed().await;
    let message = assert_single_fatal(&messages, "08P01", "oversized Query");
    assert!(message.contains("max_packet_size"), "{message}");

    bystander.simple_query("select 1").await.unwrap();
    normal_login_works(&p).await;
}

#[tokio::test]
async fn client_stalled_in_startup_is_closed_at_client_login_timeout() {
    let p = Pooler::start(
        PoolerConfig::new(shared_cluster()).pooler("client_login_timeout = \"500ms\""),
    );
    let mut out = BytesMut::new();
    frontend::startup_message([("user", MD5_USER), ("database", TEST_DB)], &mut out).unwrap();
    let mut stalled = RawClient::open(p.host(), p.port()).await;
    stalled.send_bytes(&out[..out.len() / 2]).await;
    let (bystander, _task) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();

    // The read deadline inside `RawClient` is far longer than the timeout: EOF must come first.
    let messages = stalled.recv_until_closed().await;
    if !messages.is_empty() {
        assert_single_fatal(&messages, "08P01", "login timeout");
    }
    bystander.simple_query("select 1").await.unwrap();
    normal_login_works(&p).await;
}

#[tokio::test]
async fn unix_socket_login_and_query() {
    let p = Pooler::start(PoolerConfig::new(shared_cluster()));
    let mut cfg = p.connect_config_unix();
    cfg.user(MD5_USER).password(MD5_PASS).dbname(TEST_DB);
    let (client, _task) = connect_with(&cfg)
        .await
        .unwrap_or_else(|e| panic!("unix socket login: {e:?}\n{}", p.log()));
    let row = client
        .query_one("select current_user::text", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), MD5_USER);
}

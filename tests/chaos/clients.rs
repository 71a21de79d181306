//! Chaos from the client side: clients that send half a message and stall (they hold no
//! server, and client_login_timeout / client_idle_timeout close them while others are
//! served; one that stalls while holding a server is closed by idle_transaction_timeout or
//! client_idle_timeout), a client reading a 1 GB result slowly (memory stays flat: backpressure,
//! not buffering; every byte arrives), and a flood of clients far beyond max_client_conn
//! (53300 for the extra ones, the admitted ones served, every count back to zero afterwards).

use std::time::{Duration, Instant};

use crate::common::chaos::{no_idle_in_transaction, pool_settles, SETTLE};
use crate::common::raw::{assert_single_fatal, RawClient};
use crate::common::*;
use bytes::{Buf, BytesMut};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_messages_hold_no_server_and_their_timeouts_close_them() {
    let p = Pooler::start(PoolerConfig::new(shared_cluster()).pooler(
        "pool_mode = \"transaction\"\ndefault_pool_size = 1\n\
         client_login_timeout = \"1s\"\nclient_idle_timeout = \"5s\"",
    ));
    // (a) Half a startup packet.
    let mut startup = BytesMut::new();
    frontend::startup_message([("user", MD5_USER), ("database", TEST_DB)], &mut startup).unwrap();
    let mut half_startup = RawClient::open(p.host(), p.port()).await;
    half_startup.send_bytes(&startup[..startup.len() / 2]).await;
    // (b) Logged in, then a Query whose header promises 100 bytes, of which 10 come.
    let mut half_query = RawClient::connect(&p, MD5_USER, MD5_PASS, &[]).await;
    half_query.send_bytes(&partial_query(96, 10)).await;

    // The one server of the pool is not theirs to hold: others are served meanwhile.
    let served = tokio::time::timeout(Duration::from_secs(4), async {
        let (c, _t) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await?;
        let row = c.query_one("select 'served'::text", &[]).await?;
        Ok::<String, tokio_postgres::Error>(row.get(0))
    })
    .await;
    match served {
        Ok(Ok(v)) => assert_eq!(v, "served"),
        Ok(Err(e)) => panic!("bystander failed: {e:?}\n{}", p.log()),
        Err(_) => panic!("a half-sent Query held the pool's only server\n{}", p.log()),
    }

    let closed = half_startup.recv_until_closed().await;
    if !closed.is_empty() {
        assert_single_fatal(&closed, "08P01", "client_login_timeout");
    }
    // Stalled after login, with no transaction open: idle as far as pooling goes.
    let closed = half_query.recv_until_closed().await;
    let message = assert_single_fatal(&closed, "57P05", "client_idle_timeout");
    assert!(message.contains("client_idle_timeout"), "{message}");

    let (c, _t) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    assert_eq!(
        c.query_one("select 2", &[]).await.unwrap().get::<_, i32>(0),
        2
    );
    pool_settles(&p, TEST_DB, MD5_USER, 1).await;
    drop(c);
    pool_settles(&p, TEST_DB, MD5_USER, 0).await;
    no_idle_in_transaction(shared_cluster(), TEST_DB).await;
}

/// A Query header promising `len` bytes of SQL, and the first `sent` of them.
fn partial_query(len: usize, sent: usize) -> Vec<u8> {
    let mut partial = vec![b'Q'];
    partial.extend_from_slice(&(len as i32 + 4).to_be_bytes());
    partial.extend_from_slice(b"select 1 --");
    partial.resize(5 + sent, b'-');
    partial
}

/// A client stalled mid-message while it holds the server (inside a transaction, or in a
/// message too long to hold back before checkout) is closed by idle_transaction_timeout or
/// client_idle_timeout; its server is closed (Postgres is inside that message) and the
/// client queued behind it is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_stalled_mid_message_on_a_server_is_closed_by_its_timeout() {
    let p = Pooler::start(PoolerConfig::new(shared_cluster()).pooler(
        "pool_mode = \"transaction\"\ndefault_pool_size = 1\n\
         idle_transaction_timeout = \"2s\"\nclient_idle_timeout = \"3s\"",
    ));
    let cases = [
        ("in a transaction", "begin", partial_query(100, 10), "25P03"),
        (
            "a long message",
            "",
            partial_query(200_000, 70_000),
            "57P05",
        ),
    ];
    for (what, first, partial, code) in cases {
        let mut stalled = RawClient::connect(&p, MD5_USER, MD5_PASS, &[]).await;
        if !first.is_empty() {
            let reply = stalled.query(first).await;
            assert_eq!(reply.last().unwrap().body, b"T", "{what}: {reply:?}");
        }
        stalled.send_bytes(&partial).await;
        // Queued behind the stalled client for the pool's one server.
        let cfg = md5_login(p.connect_config());
        let bystander = tokio::spawn(async move {
            let (c, _t) = connect_with(&cfg).await?;
            let row = c.query_one("select 'served'::text", &[]).await?;
            Ok::<String, tokio_postgres::Error>(row.get(0))
        });
        let closed = stalled.recv_until_closed().await;
        assert_single_fatal(&closed, code, what);
        match tokio::time::timeout(SETTLE, bystander).await {
            Ok(Ok(Ok(v))) => assert_eq!(v, "served", "{what}"),
            other => panic!("{what}: bystander not served: {other:?}\n{}", p.log()),
        }
    }
    pool_settles(&p, TEST_DB, MD5_USER, 0).await;
    no_idle_in_transaction(shared_cluster(), TEST_DB).await;
}

/// Resident memory of a process in KiB, from /proc/<pid>/status.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// A TCP connection with a small receive buffer, so the kernel holds little on our side and
/// pgsluice meets the backpressure early.
async fn small_window_socket(port: u16) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(32 * 1024).unwrap();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    sock.connect(&addr.into()).unwrap();
    sock.set_nonblocking(true).unwrap();
    TcpStream::from_std(sock.into()).unwrap()
}

/// Splits whole backend messages off `buf`: (tag, body) of each, reading more as needed.
async fn next_message(stream: &mut TcpStream, buf: &mut BytesMut) -> (u8, BytesMut) {
    loop {
        if buf.len() >= 5 {
            let len = u32::from_be_bytes(buf[1..5].try_into().unwrap()) as usize;
            if buf.len() > len {
                let tag = buf[0];
                buf.advance(5);
                return (tag, buf.split_to(len - 4));
            }
        }
        buf.reserve(64 * 1024);
        let n = stream.read_buf(buf).await.expect("read");
        assert!(n > 0, "pgsluice closed the connection mid-result");
    }
}

const ROWS: usize = 1_000_000;
const WIDTH: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_of_a_1gb_result_keeps_pgsluice_memory_flat() {
    let p = Pooler::start(PoolerConfig::new(shared_cluster()).pooler("auth_type = \"trust\""));
    let mut s = small_window_socket(p.port()).await;
    let mut buf = BytesMut::new();
    let mut out = BytesMut::new();
    frontend::startup_message([("user", TRUST_USER), ("database", TEST_DB)], &mut out).unwrap();
    s.write_all(&out).await.unwrap();
    while next_message(&mut s, &mut buf).await.0 != b'Z' {}
    let baseline = rss_kib(p.pid());

    out.clear();
    let sql = format!("select repeat('x', {WIDTH}) from generate_series(1, {ROWS})");
    frontend::query(&sql, &mut out).unwrap();
    s.write_all(&out).await.unwrap();
    let xs = vec![b'x'; WIDTH];
    let (mut rows, mut bytes, mut peak) = (0usize, 0u64, baseline);
    let mut sampled = Instant::now();
    let read = tokio::time::timeout(Duration::from_secs(400), async {
        loop {
            let (tag, body) = next_message(&mut s, &mut buf).await;
            match tag {
                b'T' => {}
                b'D' => {
                    assert_eq!(&body[..6], &[0, 1, 0, 0, 0x03, 0xe8], "one column of 1000");
                    assert!(body[6..] == xs[..], "row {rows} is exactly {WIDTH} x");
                    rows += 1;
                    bytes += body.len() as u64 + 5;
                }
                b'C' => assert_eq!(&body[..], format!("SELECT {ROWS}\0").as_bytes()),
                b'Z' => return,
                other => panic!("unexpected {:?}: {body:?}", other as char),
            }
            // Slow for the first 64 MiB (small reads with pauses), then as fast as we can.
            if bytes < 64 << 20 && rows % 16 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            if sampled.elapsed() > Duration::from_millis(100) {
                peak = peak.max(rss_kib(p.pid()));
                sampled = Instant::now();
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the result was not read within the deadline");
    assert_eq!(rows, ROWS);
    assert_eq!(
        bytes,
        (ROWS * (WIDTH + 11)) as u64,
        "every byte of the result"
    );
    let grown = peak.saturating_sub(baseline);
    assert!(
        grown < 64 * 1024,
        "pgsluice grew by {grown} KiB while relaying a 1 GB result (baseline {baseline} KiB)"
    );
    eprintln!("pgsluice RSS baseline {baseline} KiB, peak {peak} KiB");
    drop(s);
    pool_settles(&p, TEST_DB, TRUST_USER, 0).await;
    no_idle_in_transaction(shared_cluster(), TEST_DB).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_beyond_max_client_conn_is_refused_and_counts_return_to_zero() {
    const FLOOD: usize = 1000;
    let p = Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler("max_client_conn = 100\npool_mode = \"transaction\"\ndefault_pool_size = 10"),
    );
    let cfg = md5_login(p.connect_config());
    let (release_tx, release) = tokio::sync::watch::channel(false);
    let (report_tx, mut reports) = tokio::sync::mpsc::unbounded_channel();
    let tasks: Vec<_> = (0..FLOOD)
        .map(|id| {
            let (cfg, report, mut release) = (cfg.clone(), report_tx.clone(), release.clone());
            tokio::spawn(async move {
                match connect_with(&cfg).await {
                    Ok((c, _t)) => {
                        let row = c.query_one(&format!("select {id}"), &[]).await;
                        let got: i32 = row.expect("an admitted client is served").get(0);
                        assert_eq!(got as usize, id);
                        let _ = report.send(Ok(()));
                        // Stay until every other client has been admitted or refused.
                        let _ = release.wait_for(|r| *r).await;
                    }
                    Err(e) => {
                        let _ = report.send(Err(sqlstate(&e).map(str::to_owned)));
                    }
                }
            })
        })
        .collect();
    drop(report_tx);
    let (mut admitted, mut refused) = (0, 0);
    for _ in 0..FLOOD {
        match tokio::time::timeout(SETTLE, reports.recv()).await {
            Ok(Some(Ok(()))) => admitted += 1,
            Ok(Some(Err(Some(code)))) if code == "53300" => refused += 1,
            other => panic!(
                "neither admitted nor refused with 53300: {other:?}\n{}",
                p.log()
            ),
        }
    }
    assert!((1..=100).contains(&admitted), "{admitted} admitted");
    eprintln!("{admitted} admitted, {refused} refused with 53300");
    assert_eq!(admitted + refused, FLOOD);
    release_tx.send_replace(true);
    for t in tasks {
        t.await.unwrap();
    }
    pool_settles(&p, TEST_DB, MD5_USER, 0).await;
    let (c, _t) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    assert_eq!(
        c.query_one("select 3", &[]).await.unwrap().get::<_, i32>(0),
        3
    );
    no_idle_in_transaction(shared_cluster(), TEST_DB).await;
}

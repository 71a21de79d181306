//! CPU-heavy login work never stalls other clients (docs/architecture.md, "Speed"): while a storm
//! of logins makes pgsluice run PBKDF2 (a plain-text auth_file password under scram-sha-256
//! costs 4096 HMAC rounds per login) or TLS handshakes, a client that is already connected
//! keeps completing queries. Counted, not timed: the assertion is that queries complete while
//! the storm is still running, never how fast.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::certs::TestCa;
use crate::common::tls::{client_config, connect_tls};
use crate::common::*;
use tokio_postgres::config::SslMode;

const SCRAM_LOGINS: usize = 50;
const TLS_LOGINS: usize = 20;
/// Each concurrent TLS client logs in this many times in a row, so the storm lasts a while.
const TLS_ROUNDS: usize = 5;
/// Queries the bystander must complete while logins are still being worked on.
const MIN_QUERIES_DURING_STORM: u64 = 10;

/// Runs `logins` on its own threads and runtime: the test's clients do the same PBKDF2 and
/// TLS work on their side, which must not starve the bystander of the test's own runtime.
fn storm<F, Fut>(logins: usize, login: F) -> std::thread::JoinHandle<usize>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("storm runtime");
        rt.block_on(async {
            let tasks: Vec<_> = (0..logins).map(|i| tokio::spawn(login(i))).collect();
            let mut ok = 0;
            for t in tasks {
                ok += usize::from(t.await.expect("login task"));
            }
            ok
        })
    })
}

/// Queries on `bystander` until `storm` ends; returns how many completed before it ended.
async fn queries_during(
    bystander: &tokio_postgres::Client,
    storm: std::thread::JoinHandle<usize>,
) -> (u64, usize) {
    let done = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let waiter = {
        let done = done.clone();
        tokio::task::spawn_blocking(move || {
            let ok = storm.join().expect("storm thread");
            done.store(true, Ordering::SeqCst);
            ok
        })
    };
    while !done.load(Ordering::SeqCst) {
        let row = bystander.query_one("select 6 * 7", &[]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), 42);
        if !done.load(Ordering::SeqCst) {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }
    let ok = waiter.await.expect("storm waiter");
    (count.load(Ordering::Relaxed), ok)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pbkdf2_for_a_login_storm_never_blocks_a_connected_client() {
    // plain_user's auth_file entry is its plain-text password: each SCRAM login derives a
    // fresh verifier with PBKDF2 (4096 iterations) inside pgsluice.
    let p =
        Pooler::start(PoolerConfig::new(shared_cluster()).pooler("auth_type = \"scram-sha-256\""));
    let (bystander, _t) = p.connect(PLAIN_USER, PLAIN_PASS, TEST_DB).await.unwrap();
    bystander.simple_query("select 1").await.unwrap();
    let cfg = p.connect_config();
    let logins = storm(SCRAM_LOGINS, move |_| {
        let cfg = cfg.clone();
        async move {
            let result = connect_as(cfg, PLAIN_USER, Some(PLAIN_PASS), TEST_DB).await;
            result.is_ok()
        }
    });
    let (queries, ok) = queries_during(&bystander, logins).await;
    println!("{queries} bystander queries during {SCRAM_LOGINS} SCRAM logins");
    assert_eq!(ok, SCRAM_LOGINS, "every storm login succeeded\n{}", p.log());
    assert!(
        queries >= MIN_QUERIES_DURING_STORM,
        "the bystander completed only {queries} queries during the PBKDF2 storm"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_handshakes_of_a_login_storm_never_block_a_connected_client() {
    let ca = TestCa::new("storm CA");
    let server = ca.server_cert("localhost", 3);
    let p = Pooler::start(
        PoolerConfig::new(shared_cluster())
            .file("server.crt", &server.cert_pem)
            .file("server.key", &server.key_pem)
            .pooler(
                "client_tls_sslmode = \"require\"\nclient_tls_cert_file = \"server.crt\"\n\
                 client_tls_key_file = \"server.key\"",
            ),
    );
    let mut cfg = tokio_postgres::Config::new();
    cfg.host("localhost")
        .hostaddr(std::net::Ipv4Addr::LOCALHOST.into())
        .port(p.port())
        .connect_timeout(Duration::from_secs(30))
        .user(MD5_USER)
        .password(MD5_PASS)
        .dbname(TEST_DB)
        .ssl_mode(SslMode::Require);
    let (bystander, _t) = connect_tls(&cfg, client_config(&ca.cert_pem, None, false))
        .await
        .unwrap_or_else(|e| panic!("TLS login: {e:?}\n{}", p.log()));
    bystander.simple_query("select 1").await.unwrap();
    let ca_pem = ca.cert_pem.clone();
    let logins = storm(TLS_LOGINS, move |_| {
        let (cfg, ca_pem) = (cfg.clone(), ca_pem.clone());
        async move {
            for _ in 0..TLS_ROUNDS {
                let tls = client_config(&ca_pem, None, false);
                if connect_tls(&cfg, tls).await.is_err() {
                    return false;
                }
            }
            true
        }
    });
    let (queries, ok) = queries_during(&bystander, logins).await;
    println!("{queries} bystander queries during {TLS_LOGINS}x{TLS_ROUNDS} TLS logins");
    assert_eq!(ok, TLS_LOGINS, "every TLS login succeeded\n{}", p.log());
    // TLS handshakes are cheap next to PBKDF2: the storm may end before many queries fit, so
    // one completed query while it ran is the claim here.
    assert!(
        queries >= 1,
        "no bystander query completed during the TLS storm"
    );
}

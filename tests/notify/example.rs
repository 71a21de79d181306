//! Real drivers: the README's point-of-sale example, run as written with psycopg (a till
//! commits orders, an INSERT and a pg_notify in one transaction, through pgsluice in
//! transaction pooling; two services LISTEN through it, one idle in psycopg's notifies()
//! loop, one running transactions of its own all the while, and both get every order, in
//! order), and asyncpg's add_listener/remove_listener beside its prepared statements.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::*;

/// psycopg's virtualenv, as scripts/test.sh makes it.
fn python() -> PathBuf {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/py-drivers/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run the tests with ./scripts/test.sh, which installs psycopg there",
        python.display()
    );
    python
}

fn example(script: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples/point_of_sale")
        .join(script)
}

/// Starts a subscriber service and waits for its "listening" line.
fn subscriber(
    dsn: &str,
    name: &str,
    extra: &[&str],
) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new(python())
        .arg(example("subscriber.py"))
        .args([dsn, "--name", name, "--count", "20"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start subscriber.py");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert_eq!(first.trim(), format!("{name}: listening"));
    (child, out)
}

#[test]
fn orders_committed_by_the_till_reach_both_services() {
    let db = unique_name("pos");
    shared_cluster().create_database(&db);
    let p = Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler("pool_mode = \"transaction\"\ndefault_pool_size = 2")
            .database(&db, ""),
    );
    let dsn = format!(
        "host={} port={} dbname={db} user={MD5_USER} password={MD5_PASS}",
        p.host(),
        p.port()
    );
    let (mut engagement, engagement_out) = subscriber(&dsn, "engagement", &[]);
    let (mut stock, stock_out) = subscriber(&dsn, "stock", &["--busy"]);
    let till = Command::new(python())
        .arg(example("till.py"))
        .args([dsn.as_str(), "--orders", "20"])
        .output()
        .expect("run till.py");
    assert!(
        till.status.success(),
        "till: {}\n{}",
        String::from_utf8_lossy(&till.stderr),
        log_tail(&p.log(), 20)
    );
    for (name, child, out) in [
        ("engagement", &mut engagement, engagement_out),
        ("stock", &mut stock, stock_out),
    ] {
        wait_until_blocking(
            &format!("{name} to get 20 orders"),
            Duration::from_secs(60),
            || child.try_wait().unwrap().is_some(),
        );
        assert!(child.wait().unwrap().success(), "{name} failed");
        let lines: Vec<String> = out.lines().map(Result::unwrap).collect();
        let expected: Vec<String> = (1..=20)
            .map(|i| format!("{name}: order {i} for table {}", i % 12 + 1))
            .collect();
        assert_eq!(lines, expected, "{name}");
    }
    // The subscribers held no server between their transactions: two pool servers at most,
    // plus the LISTEN connection.
    let held = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let su = shared_cluster().superuser_client(&db).await;
        backends_of(&su, &db, MD5_USER, "%").await
    });
    assert!(held <= 3, "{held} server connections");
}

#[test]
fn asyncpg_add_listener_gets_every_notification_while_it_runs_prepared_statements() {
    let p = Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler("pool_mode = \"transaction\"\ndefault_pool_size = 2"),
    );
    let dsn = format!(
        "postgresql://{MD5_USER}:{MD5_PASS}@{}:{}/{TEST_DB}",
        p.host(),
        p.port()
    );
    let channel = unique_name("asyncpg");
    let ready = p.dir().join("asyncpg.ready");
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/notify/drivers/asyncpg_listener.py");
    let mut child = Command::new(python())
        .arg(script)
        .args([dsn.as_str(), channel.as_str(), "50"])
        .arg(&ready)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the asyncpg listener");
    wait_until_blocking("asyncpg to LISTEN", Duration::from_secs(30), || {
        ready.exists()
    });
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let (n, _task) = shared_cluster()
            .connect(MD5_USER, MD5_PASS, TEST_DB)
            .await
            .unwrap();
        for i in 0..50 {
            n.execute("select pg_notify($1, $2)", &[&channel, &i.to_string()])
                .await
                .unwrap();
        }
    });
    wait_until_blocking("asyncpg to get 50", Duration::from_secs(60), || {
        child.try_wait().unwrap().is_some()
    });
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "asyncpg listener failed\n{}",
        log_tail(&p.log(), 20)
    );
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let expected: Vec<String> = (0..50).map(|i| i.to_string()).collect();
    assert_eq!(lines[..50], expected[..]);
    assert!(
        lines[50].starts_with("done after") && lines[50].ends_with("listening on 0"),
        "{}",
        lines[50]
    );
}

//! Three instances behind a real HAProxy (Debian's package), health-checked on /readyz:
//! cancels sent through the balancer reach the instance holding the query however the
//! balancer routes them, and a rolling restart of every instance under pgbench -C and a
//! reconnecting client loses no transaction and commits nothing twice. Skipped, saying so,
//! only where HAProxy is not installed (scripts/test.sh installs it).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use crate::instances::*;

const DEADLINE: Duration = Duration::from_secs(30);

fn haproxy_binary() -> Option<PathBuf> {
    [
        "/usr/sbin/haproxy",
        "/usr/local/sbin/haproxy",
        "/usr/bin/haproxy",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

/// HAProxy in the foreground, killed on drop.
struct Haproxy {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    fn start(binary: &PathBuf, slots: &[Slot]) -> Haproxy {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let servers: String = slots
            .iter()
            .map(|s| {
                format!(
                    "    server pgsluice{} 127.0.0.1:{} check port {}\n",
                    s.peer_id, s.port, s.metrics_port
                )
            })
            .collect();
        let example = include_str!("../../deploy/haproxy/haproxy.cfg");
        // The shipped example, with this test's ports and a faster health check.
        let cfg = example
            .replace("bind *:6432", &format!("bind 127.0.0.1:{port}"))
            .replace("inter 2s", "inter 200ms")
            .split("    server pgsluice1")
            .next()
            .unwrap()
            .to_string()
            + &servers;
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, cfg).unwrap();
        let log_path = dir.path().join("haproxy.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(binary)
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start haproxy");
        let h = Haproxy {
            child,
            port,
            _dir: dir,
        };
        let deadline = std::time::Instant::now() + DEADLINE;
        while !accepts(port) {
            assert!(
                std::time::Instant::now() < deadline,
                "haproxy did not start:\n{}",
                read_log(&log_path)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        h
    }

    fn config(&self) -> tokio_postgres::Config {
        md5_login(tcp_config("127.0.0.1", self.port))
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Three instances that know each other, each draining gently on SIGTERM.
fn fleet() -> (Vec<Slot>, Vec<PoolerConfig>) {
    let slots: Vec<Slot> = (1..=3).map(Slot::new).collect();
    let configs = slots
        .iter()
        .map(|s| {
            with_peers(
                s.config(
                    "shutdown_accept_delay = \"1s\"\nshutdown_idle_grace = \"1s\"\n\
                     shutdown_timeout = \"20s\"\ndefault_pool_size = 4",
                ),
                &slots,
            )
        })
        .collect();
    (slots, configs)
}

async fn all_ready(slots: &[Slot]) {
    for s in slots {
        wait_until("every instance ready", DEADLINE, || async {
            matches!(http_get(s.metrics_port, "/readyz").await, Some((200, _)))
        })
        .await;
    }
    // Two health checks in a row mark a server up again (`rise 2`).
    tokio::time::sleep(Duration::from_millis(600)).await;
}

#[tokio::test]
async fn cancels_through_haproxy_reach_the_right_instance() {
    let Some(binary) = haproxy_binary() else {
        eprintln!("SKIPPED: HAProxy is not installed (apt-get install haproxy)");
        return;
    };
    let (slots, configs) = fleet();
    let poolers: Vec<Pooler> = configs.into_iter().map(Pooler::start).collect();
    all_ready(&slots).await;
    let lb = Haproxy::start(&binary, &slots);
    // Least connections: the cancel's connection goes to another instance than its query's.
    for attempt in 0..9 {
        let (client, _task) = connect_with(&lb.config()).await.unwrap();
        let token = client.cancel_token();
        let running = tokio::spawn(async move { client.simple_query("select pg_sleep(60)").await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel_query(tokio_postgres::NoTls).await.unwrap();
        let result = tokio::time::timeout(DEADLINE, running)
            .await
            .unwrap_or_else(|_| {
                let logs: Vec<String> = poolers.iter().map(|p| p.log()).collect();
                panic!(
                    "attempt {attempt}: the query was not cancelled\n{}",
                    logs.join("\n")
                )
            })
            .unwrap();
        let err = result.expect_err("cancelled");
        assert_eq!(sqlstate(&err), Some("57014"), "attempt {attempt}: {err:?}");
    }
    let mut forwarded = 0.0;
    for s in &slots {
        let (_, body) = http_get(s.metrics_port, "/metrics").await.unwrap();
        forwarded += body
            .lines()
            .find_map(|l| l.strip_prefix("pgsluice_cancel_requests_total{route=\"peer\"} "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
    }
    assert!(
        forwarded >= 1.0,
        "no cancel needed forwarding: the test proved nothing"
    );
}

/// A client of an application pool: inserts rows one per transaction, reconnecting and
/// retrying when its connection is closed; records the ids Postgres acknowledged.
async fn writer(
    config: tokio_postgres::Config,
    table: String,
    next_id: Arc<AtomicU64>,
    acknowledged: Arc<Mutex<Vec<u64>>>,
    retries: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> Result<(), String> {
    let mut conn: Option<tokio_postgres::Client> = None;
    let insert = format!("insert into {table}(id) values ($1)");
    while !stop.load(Ordering::Relaxed) {
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        loop {
            let client = match &conn {
                Some(c) if !c.is_closed() => c,
                _ => match connect_with(&config).await {
                    Ok((c, _task)) => conn.insert(c),
                    Err(_) => {
                        retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                },
            };
            match client.execute(&insert, &[&(id as i64)]).await {
                Ok(_) => {
                    acknowledged.lock().unwrap().push(id);
                    break;
                }
                // The drain closes a connection only between transactions: the insert was not
                // run, and running it again on a new connection is safe.
                Err(e) if sqlstate(&e) == Some("57P01") || e.is_closed() || client.is_closed() => {
                    retries.fetch_add(1, Ordering::Relaxed);
                    conn = None;
                }
                Err(e) => return Err(format!("id {id}: {e:?}")),
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_rolling_restart_behind_haproxy_loses_nothing() {
    let Some(binary) = haproxy_binary() else {
        eprintln!("SKIPPED: HAProxy is not installed (apt-get install haproxy)");
        return;
    };
    let pg = shared_cluster();
    let su = pg.superuser_client(TEST_DB).await;
    let table = unique_name("fleet_rows");
    su.batch_execute(&format!(
        "create table {table}(id bigint primary key); grant all on {table} to {MD5_USER}; \
         create table if not exists pgbench_fleet(x int); grant select on pgbench_fleet to {MD5_USER}"
    ))
    .await
    .unwrap();
    let (slots, configs) = fleet();
    let mut poolers: Vec<Pooler> = configs.iter().cloned().map(Pooler::start).collect();
    all_ready(&slots).await;
    let lb = Haproxy::start(&binary, &slots);

    let script = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(script.path(), "select count(*) from pgbench_fleet;\n").unwrap();
    let pgbench = Command::new(pg_tool("pgbench"))
        .args(["-n", "-C", "-c", "4", "-j", "2", "-T", "25", "-f"])
        .arg(script.path())
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", lb.port.to_string())
        .env("PGUSER", MD5_USER)
        .env("PGPASSWORD", MD5_PASS)
        .env("PGDATABASE", TEST_DB)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pgbench");

    let (next_id, acknowledged) = (
        Arc::new(AtomicU64::new(1)),
        Arc::new(Mutex::new(Vec::new())),
    );
    let (retries, stop) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let writers: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(writer(
                lb.config(),
                table.clone(),
                next_id.clone(),
                acknowledged.clone(),
                retries.clone(),
                stop.clone(),
            ))
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(2)).await;
    for (i, config) in configs.iter().enumerate() {
        poolers[i].signal("TERM");
        let status = poolers[i].wait_exit(DEADLINE);
        assert!(
            status.is_some_and(|s| s.success()),
            "instance {i}\n{}",
            poolers[i].log()
        );
        poolers[i] = Pooler::start(config.clone());
        all_ready(&slots).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await
            .unwrap()
            .unwrap_or_else(|e| panic!("a writer failed: {e}"));
    }
    let out = tokio::task::spawn_blocking(move || pgbench.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pgbench: {stdout}\n{stderr}");
    assert!(
        stdout.contains("number of failed transactions: 0"),
        "{stdout}\n{stderr}"
    );

    let mut acked = acknowledged.lock().unwrap().clone();
    acked.sort_unstable();
    let stored: Vec<u64> = su
        .query(&format!("select id from {table} order by id"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, i64>(0) as u64)
        .collect();
    assert!(!acked.is_empty());
    assert_eq!(stored, acked, "rows stored differ from rows acknowledged");
    eprintln!(
        "rolling restart: {} rows, {} reconnects, pgbench: {}",
        acked.len(),
        retries.load(Ordering::Relaxed),
        stdout
            .lines()
            .filter(|l| l.contains("transactions"))
            .collect::<Vec<_>>()
            .join("; ")
    );
}

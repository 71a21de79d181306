//! The shipped alert rules and dashboard against a real scrape: every `pgsluice_*`
//! name deploy/prometheus/alerts.yml and deploy/grafana/pgsluice.json use must be exported by
//! GET /metrics after traffic, so the files can never refer to a metric that does not exist
//! (a rule over a missing series never fires, silently). Also: metrics_addr empty (the default)
//! means no listener at all.

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::time::Duration;

use crate::common::console::console;
use crate::common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LONG: Duration = Duration::from_secs(30);
/// The files whose metric references must all be exported, relative to the crate root.
const SHIPPED: [&str; 2] = [
    "deploy/prometheus/alerts.yml",
    "deploy/grafana/pgsluice.json",
];
const PREFIX: &str = "pgsluice_";

/// Every `pgsluice_[a-z_]+` token in `text` that is a name on its own (not the tail of a longer
/// identifier); `pgsluice_*` in prose has no name part and is skipped.
fn metric_refs(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut out = BTreeSet::new();
    for (at, _) in text.match_indices(PREFIX) {
        let glued = at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        let tail = &text[at + PREFIX.len()..];
        let len = tail
            .bytes()
            .take_while(|b| b.is_ascii_lowercase() || *b == b'_')
            .count();
        if !glued && len > 0 {
            out.insert(format!("{PREFIX}{}", &tail[..len]));
        }
    }
    out
}

/// The metric names of the shipped files, each with the file(s) that use it.
fn shipped_refs() -> BTreeMap<String, Vec<&'static str>> {
    let mut refs: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    for file in SHIPPED {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        for name in metric_refs(&text) {
            refs.entry(name).or_default().push(file);
        }
    }
    refs
}

/// `# TYPE <name> <kind>` lines of a Prometheus text exposition: name → kind.
fn exported_types(exposition: &str) -> BTreeMap<String, String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
        })
        .collect()
}

/// Whether a name a query uses exists in the scrape: itself, or as the `_bucket` series of a
/// histogram, or the `_sum`/`_count` series of a histogram or summary.
fn is_exported(name: &str, types: &BTreeMap<String, String>) -> bool {
    if types.contains_key(name) {
        return true;
    }
    let kind_of = |suffix: &str| {
        name.strip_suffix(suffix)
            .and_then(|base| types.get(base))
            .map(String::as_str)
    };
    kind_of("_bucket") == Some("histogram")
        || matches!(kind_of("_sum"), Some("histogram" | "summary"))
        || matches!(kind_of("_count"), Some("histogram" | "summary"))
}

/// The value of the first sample of `name` carrying all `labels` (`key="value"`), if any.
fn sample(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let (label_part, value) = match rest.strip_prefix('{') {
            Some(r) => r.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        let all = labels
            .iter()
            .all(|(k, v)| label_part.contains(&format!("{k}=\"{v}\"")));
        all.then(|| value.split_whitespace().next()?.parse().ok())
            .flatten()
    })
}

/// One HTTP/1.0 GET to 127.0.0.1:`port`; the raw response (head and body).
async fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await?;
        Ok(String::from_utf8_lossy(&reply).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .unwrap_or_else(|_| Err(ErrorKind::TimedOut.into()))
}

/// GET /metrics; panics unless it is a 200 with a text/plain body (the exposition format).
async fn scrape(port: u16) -> String {
    let reply = http_get(port, "/metrics")
        .await
        .unwrap_or_else(|e| panic!("GET /metrics on port {port}: {e}"));
    let (head, body) = reply.split_once("\r\n\r\n").expect("an HTTP head");
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default();
    assert!(
        status.starts_with("HTTP/1.") && status.split(' ').nth(1) == Some("200"),
        "{status}"
    );
    let content_type = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    body.to_owned()
}

/// Scrapes once the endpoint answers: it may bind a moment after the client port accepts.
async fn first_scrape(p: &Pooler, port: u16) -> String {
    let what = format!("pgsluice metrics endpoint on port {port}\n{}", p.log());
    wait_until(&what, LONG, || async {
        http_get(port, "/metrics").await.is_ok()
    })
    .await;
    scrape(port).await
}

/// TCP ports process `pid` listens on: its socket inodes (/proc/<pid>/fd) matched against
/// the LISTEN (state 0A) rows of /proc/<pid>/net/tcp{,6} (proc(5)).
fn listening_tcp_ports(pid: u32) -> BTreeSet<u16> {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("list the pooler's fds")
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let mut ports = BTreeSet::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for row in text.lines().skip(1) {
            let f: Vec<&str> = row.split_whitespace().collect();
            if f.len() > 9 && f[3] == "0A" && inodes.contains(f[9]) {
                let port = f[1].rsplit(':').next().expect("addr:port");
                ports.insert(u16::from_str_radix(port, 16).expect("hex port"));
            }
        }
    }
    ports
}

/// Traffic that makes every kind of series exist: a client waiting for the only server (the
/// wait histogram), transactions and prepared statements, an error, failed client and server
/// logins, closed servers.
async fn run_traffic(p: &Pooler, metrics_port: u16) {
    let (holder, _h) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    holder.batch_execute("begin; select 1").await.unwrap();
    let cfg = md5_login(p.connect_config());
    let waiter = tokio::spawn(async move {
        let (c, _t) = connect_with(&cfg).await.expect("login through the pooler");
        let n: i32 = c.query_one("select 7", &[]).await.unwrap().get(0);
        n
    });
    let waiting = [
        ("database", TEST_DB),
        ("user", MD5_USER),
        ("state", "waiting"),
    ];
    let what = "a client shown waiting for the pool's only server";
    wait_until(what, LONG, || async {
        let exposition = scrape(metrics_port).await;
        sample(&exposition, "pgsluice_clients", &waiting).is_some_and(|n| n >= 1.0)
    })
    .await;
    holder.batch_execute("commit").await.unwrap();
    assert_eq!(waiter.await.unwrap(), 7);

    // Distinct texts over tokio-postgres's named statements, beyond max_prepared_statements.
    for i in 0..3i32 {
        let sql = format!("select $1::int4 + {i}");
        let n: i32 = holder.query_one(&sql, &[&i]).await.unwrap().get(0);
        assert_eq!(n, 2 * i);
    }
    let err = holder.simple_query("select 1/0").await.unwrap_err();
    assert_eq!(sqlstate(&err), Some("22012"));
    // A LISTEN gives the pool its LISTEN connection and its metrics.
    holder.batch_execute("listen shipped_files").await.unwrap();
    let pool = [("database", TEST_DB), ("user", MD5_USER)];
    wait_until("the pool's LISTEN connection up", LONG, || async {
        let exposition = scrape(metrics_port).await;
        sample(&exposition, "pgsluice_listen_connection_up", &pool) == Some(1.0)
    })
    .await;
    let err = p.connect(MD5_USER, "wrong", TEST_DB).await.unwrap_err();
    assert_eq!(sqlstate(&err), Some("28P01"));
    // Postgres refuses the server login: the database behind "nowhere" does not exist.
    p.connect(MD5_USER, MD5_PASS, "nowhere").await.unwrap_err();
    // RECONNECT closes the pooled servers (a close with a reason); WAIT_CLOSE returns after.
    let admin = console(p).await;
    admin.simple_query("RECONNECT").await.unwrap();
    tokio::time::timeout(LONG, admin.simple_query("WAIT_CLOSE"))
        .await
        .expect("WAIT_CLOSE returns")
        .unwrap();
}

#[tokio::test]
async fn rules_and_dashboard_reference_only_exported_metrics() {
    let refs = shipped_refs();
    let metrics_port = free_port();
    let p = Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler("pool_mode = \"transaction\"\ndefault_pool_size = 1")
            .pooler("max_prepared_statements = 1")
            .pooler(&format!("metrics_addr = \"127.0.0.1:{metrics_port}\""))
            .database("nowhere", "dbname = \"no_such_database\""),
    );
    first_scrape(&p, metrics_port).await;
    assert!(
        listening_tcp_ports(p.pid()).contains(&metrics_port),
        "the metrics listener belongs to the pooler"
    );
    run_traffic(&p, metrics_port).await;
    let exposition = scrape(metrics_port).await;
    let types = exported_types(&exposition);
    let missing: Vec<String> = refs
        .iter()
        .filter(|(name, _)| !is_exported(name, &types))
        .map(|(name, files)| format!("{name} (used in {})", files.join(", ")))
        .collect();
    assert!(
        missing.is_empty(),
        "referenced but not exported:\n  {}\nexported: {:?}\n--- scrape ---\n{exposition}",
        missing.join("\n  "),
        types
    );
    let waited = [("database", TEST_DB), ("user", MD5_USER)];
    let observed = sample(&exposition, "pgsluice_client_wait_seconds_count", &waited);
    assert!(observed.unwrap_or(0.0) >= 1.0, "{exposition}");
    // Every family says what it means, as docs/metrics.md does.
    let unexplained: Vec<&String> = types
        .keys()
        .filter(|name| {
            let help = format!("# HELP {name} ");
            !exposition
                .lines()
                .any(|l| l.starts_with(&help) && l.len() > help.len())
        })
        .collect();
    assert!(
        unexplained.is_empty(),
        "no HELP for {unexplained:?}\n{exposition}"
    );
}

#[tokio::test]
async fn empty_metrics_addr_means_no_listener() {
    let unused = free_port();
    let p = Pooler::start(PoolerConfig::new(shared_cluster()));
    let (c, _t) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    c.simple_query("select 1").await.unwrap();
    let err = TcpStream::connect(("127.0.0.1", unused)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    // Not just that port: the pooler's only TCP listener is its client port.
    assert_eq!(
        listening_tcp_ports(p.pid()),
        BTreeSet::from([p.port()]),
        "{}",
        p.log()
    );
}

#[test]
fn shipped_files_reference_the_metrics_the_alerts_need() {
    let refs = shipped_refs();
    for name in [
        "pgsluice_servers",
        "pgsluice_pool_size",
        "pgsluice_client_max_wait_seconds",
        "pgsluice_query_wait_timeouts_total",
        "pgsluice_server_login_failures_total",
        "pgsluice_client_connections",
        "pgsluice_max_client_conn",
        "pgsluice_client_wait_seconds_bucket",
    ] {
        assert!(refs.contains_key(name), "{name} not found in {SHIPPED:?}");
    }
}

#[test]
fn reference_scanner_takes_whole_names_only() {
    let text = "rate(pgsluice_queries_total[5m]) / pgsluice_pool_size{user=~\"$user\"} \
                up{job=\"pgsluice\"} every pgsluice_* name; my_pgsluice_thing";
    let got: Vec<String> = metric_refs(text).into_iter().collect();
    assert_eq!(got, ["pgsluice_pool_size", "pgsluice_queries_total"]);
    let types = exported_types("# TYPE pgsluice_x_seconds histogram\n# TYPE pgsluice_y gauge\n");
    assert!(is_exported("pgsluice_x_seconds_bucket", &types));
    assert!(is_exported("pgsluice_x_seconds_count", &types));
    assert!(is_exported("pgsluice_y", &types));
    assert!(!is_exported("pgsluice_y_bucket", &types));
    assert!(!is_exported("pgsluice_z", &types));
}

/// A transaction-pooling client pinned by an advisory lock is counted by reason while the lock
/// lives, and no longer once it is released.
#[tokio::test]
async fn pinned_clients_are_counted_by_reason() {
    let metrics_port = free_port();
    let p = Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler("pool_mode = \"transaction\"\ndefault_pool_size = 2")
            .pooler(&format!("metrics_addr = \"127.0.0.1:{metrics_port}\"")),
    );
    first_scrape(&p, metrics_port).await;
    let (a, _t) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    let pinned = |exposition: &str, reason: &str| {
        let labels = [
            ("database", TEST_DB),
            ("user", MD5_USER),
            ("reason", reason),
        ];
        sample(exposition, "pgsluice_clients_pinned", &labels)
    };
    assert_eq!(
        pinned(&scrape(metrics_port).await, "advisory lock"),
        Some(0.0)
    );
    a.simple_query("select pg_advisory_lock(8642)")
        .await
        .unwrap();
    // The pin is recorded once pgsluice has read the session back, right after the reply.
    wait_until("the client counted as pinned", LONG, || async {
        pinned(&scrape(metrics_port).await, "advisory lock") == Some(1.0)
    })
    .await;
    assert_eq!(
        pinned(&scrape(metrics_port).await, "temporary table"),
        Some(0.0)
    );
    a.simple_query("select pg_advisory_unlock(8642)")
        .await
        .unwrap();
    wait_until("the client counted as unpinned", LONG, || async {
        pinned(&scrape(metrics_port).await, "advisory lock") == Some(0.0)
    })
    .await;
}

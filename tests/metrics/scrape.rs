//! Prometheus metrics through a real scrape: values move by exactly what the traffic did
//! (transactions counted, a waiting client visible while its pool is saturated, a
//! query_wait_timeout counted), and the HTTP endpoint answers only GET /metrics.

use std::time::Duration;

use crate::common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// GET `path` over plain HTTP/1.0; returns (status line, body).
async fn http_get(port: u16, path: &str) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).await.unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    (
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    )
}

/// The value of the sample whose name and labels start with `series` (e.g.
/// `pgsluice_transactions_total{database="x"`).
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .filter(|l| !l.starts_with('#') && l.starts_with(series))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

fn metrics_pooler(db: &str, extra: &str) -> (Pooler, u16) {
    let port = free_port();
    let p = Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler(&format!(
                "metrics_addr = \"127.0.0.1:{port}\"\npool_mode = \"transaction\""
            ))
            .pooler(extra)
            .database(db, ""),
    );
    (p, port)
}

#[tokio::test]
async fn transactions_are_counted_exactly() {
    let db = unique_name("mx");
    shared_cluster().create_database(&db);
    let (p, port) = metrics_pooler(&db, "default_pool_size = 2");
    let (c, _t) = p.connect(MD5_USER, MD5_PASS, &db).await.unwrap();
    for _ in 0..12 {
        c.simple_query("select 1").await.unwrap();
    }
    c.batch_execute("begin; select 1; select 2; commit")
        .await
        .unwrap();
    let series = format!("pgsluice_transactions_total{{database=\"{db}\",user=\"{MD5_USER}\"}}");
    let (status, body) = http_get(port, "/metrics").await;
    assert!(status.contains("200"), "{status}");
    assert_eq!(sample(&body, &series), Some(13.0), "{body}");
    let queries = format!("pgsluice_queries_total{{database=\"{db}\",user=\"{MD5_USER}\"}}");
    assert!(sample(&body, &queries).unwrap() >= 13.0);
    let received = format!("pgsluice_received_bytes_total{{database=\"{db}\"");
    assert!(sample(&body, &received).unwrap() > 0.0);
    assert!(
        body.contains("pgsluice_transaction_duration_seconds_bucket"),
        "{body}"
    );
}

#[tokio::test]
async fn a_saturated_pool_shows_its_waiting_client_and_counts_the_timeout() {
    let db = unique_name("mw");
    shared_cluster().create_database(&db);
    let (p, port) = metrics_pooler(&db, "default_pool_size = 1\nquery_wait_timeout = \"3s\"");
    let (a, _ta) = p.connect(MD5_USER, MD5_PASS, &db).await.unwrap();
    let (b, _tb) = p.connect(MD5_USER, MD5_PASS, &db).await.unwrap();
    a.batch_execute("begin").await.unwrap();
    let waiting = tokio::spawn(async move { b.simple_query("select 1").await });
    let series =
        format!("pgsluice_clients{{database=\"{db}\",user=\"{MD5_USER}\",state=\"waiting\"}}");
    let active =
        format!("pgsluice_servers{{database=\"{db}\",user=\"{MD5_USER}\",state=\"active\"}}");
    wait_until(
        "the waiting client in /metrics",
        Duration::from_secs(30),
        || async {
            let (_, body) = http_get(port, "/metrics").await;
            sample(&body, &series) == Some(1.0) && sample(&body, &active) == Some(1.0)
        },
    )
    .await;
    let err = waiting.await.unwrap().unwrap_err();
    assert_eq!(sqlstate(&err), Some("53300"));
    let (_, body) = http_get(port, "/metrics").await;
    let timeouts =
        format!("pgsluice_query_wait_timeouts_total{{database=\"{db}\",user=\"{MD5_USER}\"}}");
    assert_eq!(sample(&body, &timeouts), Some(1.0), "{body}");
    assert!(sample(&body, "pgsluice_errors_total{class=\"53\"}").unwrap() >= 1.0);
    assert_eq!(
        sample(&body, &format!("pgsluice_pool_size{{database=\"{db}\"")),
        Some(1.0)
    );
    a.batch_execute("commit").await.unwrap();
}

#[tokio::test]
async fn only_get_metrics_is_served() {
    let db = unique_name("mh");
    shared_cluster().create_database(&db);
    let (_p, port) = metrics_pooler(&db, "");
    let (status, _) = http_get(port, "/secret").await;
    assert!(status.contains("404"), "{status}");
    let (status, body) = http_get(port, "/metrics").await;
    assert!(status.contains("200"));
    assert!(
        body.contains("# TYPE pgsluice_max_client_conn gauge"),
        "{body}"
    );
}

/// A client that ends in an error is counted by the same kind its log line names.
#[tokio::test]
async fn client_errors_are_counted_by_kind() {
    let db = unique_name("mk");
    shared_cluster().create_database(&db);
    let (p, port) = metrics_pooler(&db, "");
    let err = p
        .connect(MD5_USER, "wrong password", &db)
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), Some("28P01"));
    let series = "pgsluice_client_errors_total{kind=\"authentication\"}";
    wait_until(
        "the failed login in /metrics",
        Duration::from_secs(30),
        || async {
            let (_, body) = http_get(port, "/metrics").await;
            sample(&body, series) == Some(1.0)
        },
    )
    .await;
    wait_until(
        "the failed login's log line",
        Duration::from_secs(30),
        || async {
            p.log()
                .contains("kind=\"authentication\" sqlstate=\"28P01\"")
                || p.log().contains("kind=authentication sqlstate=\"28P01\"")
        },
    )
    .await;
}

//! The metrics listener: a deliberately small HTTP/1.x responder (GET /metrics → 200 with the
//! Prometheus text format; GET /healthz and /readyz → 200 or 503 for probes; anything else →
//! 404), one short-lived task per request, request heads bounded in size and time so a bad
//! client cannot hold memory or a task. It keeps answering while the pooler drains, so that
//! /readyz can say so.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::health::Reachability;
use super::{scrape, Exporter};
use crate::state::Shared;

const MAX_HEAD: usize = 8192;

/// Accepts scrapes until the task is dropped.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>, exporter: Arc<Exporter>) {
    let reachability = Arc::new(Reachability::default());
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let (shared, exporter) = (shared.clone(), exporter.clone());
                let reachability = reachability.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(10),
                        answer(stream, &shared, &exporter, &reachability),
                    )
                    .await;
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn answer(
    mut stream: TcpStream,
    shared: &Shared,
    exporter: &Exporter,
    reachability: &Reachability,
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let mut parts = line.split(|b| *b == b' ');
    let (method, path) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let path = path.split(|b| *b == b'?').next().unwrap_or_default();
    let get = method == b"GET" || method == b"HEAD";
    let (status, body) = if get && path == b"/healthz" {
        ("200 OK", "ok\n".to_string())
    } else if get && path == b"/readyz" {
        let r = reachability.readiness(shared).await;
        let status = if r.ready {
            "200 OK"
        } else {
            "503 Service Unavailable"
        };
        (status, format!("{}\n", r.reason))
    } else if method == b"GET" && (path == b"/metrics" || path == b"/") {
        scrape::refresh(shared, exporter);
        let mut body = exporter.render();
        let pools = shared.pools.all();
        scrape::render_histograms(
            &mut body,
            pools.iter().map(|p| {
                (
                    p.key.database.as_str(),
                    p.key.user.as_str(),
                    &p.stats.histograms,
                )
            }),
        );
        ("200 OK", body)
    } else {
        (
            "404 Not Found",
            "only GET /metrics, /healthz and /readyz are served here\n".to_string(),
        )
    };
    // A HEAD request gets the head alone, with the length the body would have.
    let shown = if method == b"HEAD" { "" } else { body.as_str() };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{shown}",
        body.len()
    );
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}

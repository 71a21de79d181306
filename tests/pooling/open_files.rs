//! The open-files limit at the edge: pgsluice started with a login shell's low soft limit
//! raises it to the hard limit and serves more clients than the soft limit allowed; started
//! where even the hard limit cannot hold max_client_conn beside its servers, it says so (at
//! start and in `--check`), refuses the clients past what fits at once with 53300, and keeps
//! serving the others, whose servers still find descriptors.

use std::process::Command;
use std::time::Duration;

use crate::common::*;

/// Opens `n` connections at once; returns the clients that got in and the SQLSTATEs of
/// those refused.
async fn connect_many(p: &Pooler, n: usize) -> (Vec<tokio_postgres::Client>, Vec<String>) {
    let cfg = md5_login(p.connect_config());
    let attempts: Vec<_> = (0..n)
        .map(|_| {
            let cfg = cfg.clone();
            tokio::spawn(async move {
                tokio::time::timeout(Duration::from_secs(60), connect_with(&cfg)).await
            })
        })
        .collect();
    let (mut admitted, mut refused) = (Vec::new(), Vec::new());
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(Ok((client, _task))) => admitted.push(client),
            Ok(Err(e)) => refused.push(sqlstate(&e).unwrap_or("none").to_string()),
            Err(_) => panic!(
                "a connection neither admitted nor refused within 60 s\n{}",
                p.log()
            ),
        }
    }
    (admitted, refused)
}

fn pooler(soft: u64, hard: u64, max_client_conn: usize) -> Pooler {
    Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler("pool_mode = \"transaction\"")
            .pooler("default_pool_size = 4")
            .pooler(&format!("max_client_conn = {max_client_conn}"))
            .open_files(soft, hard),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_soft_limit_is_raised_to_the_hard_limit() {
    let p = pooler(200, 4000, 1000);
    let (admitted, refused) = connect_many(&p, 300).await;
    assert!(refused.is_empty(), "refused: {refused:?}\n{}", p.log());
    for c in &admitted {
        c.simple_query("select 1").await.unwrap();
    }
    let log = p.log();
    assert!(
        log.contains("open files limit raised to the hard limit from=200 to=4000"),
        "{log}"
    );
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", p.pid())).unwrap();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    assert!(open_files.contains("4000"), "{open_files}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_past_what_the_limit_holds_are_refused_at_once() {
    let p = pooler(250, 250, 1000);
    let log = p.log();
    let room: usize = log
        .split("clients past ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no open files warning at start\n{log}"));
    assert!(room > 20 && room < 200, "{room}\n{log}");
    let extra = 40;
    let (admitted, refused) = connect_many(&p, room + extra).await;
    assert!(admitted.len() <= room, "{} admitted", admitted.len());
    assert!(refused.len() >= extra, "{refused:?}");
    assert!(refused.iter().all(|code| code == "53300"), "{refused:?}");
    // The admitted clients are served: their servers still find descriptors.
    for c in &admitted {
        c.simple_query("select 1").await.unwrap();
    }
    assert!(!p.log().contains("Too many open files"), "{}", p.log());
    // --check says the same before a DBA starts it.
    let check = Command::new("prlimit")
        .arg("--nofile=250:250")
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_pgsluice"))
        .arg("--check")
        .arg("-c")
        .arg(p.config_path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: open files limit 250 cannot hold max_client_conn = 1000"),
        "{stderr}"
    );
}

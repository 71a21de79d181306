//! Reads on the standby, writes on the primary, and a switchover that clients between
//! transactions do not see: the primary stops, new transactions are held (pgbench started
//! during the hold included), the standby is promoted, and everything runs there with none
//! failed; then the old primary comes back as a standby of the new one.

use std::time::Duration;

use crate::common::console::{console, show};
use crate::common::*;
use crate::{pooler_over, replicated_pair, server_port};

const DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_switchover_holds_new_transactions_and_resumes_on_the_new_primary() {
    let (primary, standby) = replicated_pair();
    let table = unique_name("fo_rows");
    primary.sql(
        TEST_DB,
        &format!("create table {table}(id int primary key); grant all on {table} to {MD5_USER}"),
    );
    let metrics = free_port();
    let p = pooler_over(
        &primary,
        &standby,
        &format!(
            "failover_hold_timeout = \"60s\"\nquery_wait_timeout = \"90s\"\n\
             metrics_addr = \"127.0.0.1:{metrics}\""
        ),
    );

    // Writes go to the primary, reads to the standby.
    let writers: Vec<tokio_postgres::Client> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            let (c, _t) = p.connect(MD5_USER, MD5_PASS, "rw").await.unwrap();
            v.push(c);
        }
        v
    };
    for (i, w) in writers.iter().enumerate() {
        w.execute(&format!("insert into {table} values ($1)"), &[&(i as i32)])
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", p.log()));
        assert_eq!(server_port(w).await, primary.port());
    }
    let (reader, _t) = p.connect(MD5_USER, MD5_PASS, "ro").await.unwrap();
    wait_until("the standby to have the table", DEADLINE, || async {
        standby.sql(TEST_DB, &format!("select count(*) from {table}")) == "4"
    })
    .await;
    assert_eq!(server_port(&reader).await, standby.port());
    let err = reader
        .batch_execute(&format!("insert into {table} values (100)"))
        .await
        .expect_err("a read-only pool writes nowhere");
    assert_eq!(sqlstate(&err), Some("25006"), "{err:?}");
    let init = p.pgbench(MD5_USER, MD5_PASS, "rw", &["-i", "-s", "1", "-q"]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );

    // The primary goes away; clients between transactions go on sending.
    primary.stop("fast");
    let mut held = Vec::new();
    for (i, w) in writers.into_iter().enumerate() {
        let table = table.clone();
        held.push(tokio::spawn(async move {
            let id = 10 + i as i32;
            let r = w
                .execute(&format!("insert into {table} values ($1)"), &[&id])
                .await;
            (w, r)
        }));
    }
    // pgbench starts while there is no primary: its transactions wait, then run.
    let cmd = pgbench_command(&p, &["-S", "-c", "4", "-j", "2", "-T", "10", "-n"]);
    let pgbench = tokio::task::spawn_blocking(move || run_command(cmd));
    tokio::time::sleep(Duration::from_secs(3)).await;
    for h in &held {
        assert!(
            !h.is_finished(),
            "a transaction ran without a primary\n{}",
            p.log()
        );
    }
    standby.promote();

    for h in held {
        let (w, r) = tokio::time::timeout(DEADLINE, h)
            .await
            .expect("held too long")
            .unwrap();
        r.unwrap_or_else(|e| panic!("a held transaction failed: {e:?}\n{}", p.log()));
        assert_eq!(server_port(&w).await, standby.port());
    }
    let (ok, stdout, stderr) = pgbench.await.unwrap();
    assert!(ok, "pgbench: {stdout}\n{stderr}\n{}", p.log());
    assert!(
        stdout.contains("number of failed transactions: 0"),
        "{stdout}"
    );
    let processed: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("number of transactions actually processed: "))
        .and_then(|n| n.split('/').next()?.trim().parse().ok())
        .unwrap_or(0);
    assert!(processed > 0, "{stdout}");
    assert_eq!(
        standby.sql(TEST_DB, &format!("select count(*) from {table}")),
        "8"
    );
    let log = p.log();
    assert!(
        log.contains(&format!(
            "switchover: the primary is now 127.0.0.1:{}",
            standby.port()
        )),
        "{log}"
    );

    // The hold is reported: a counter and how long new transactions waited (3 s and more).
    let body = scrape(metrics).await;
    let sample = |series: &str| -> f64 {
        body.lines()
            .find_map(|l| l.strip_prefix(series))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{body}"))
    };
    assert_eq!(sample("pgsluice_switchovers_total{database=\"rw\"} "), 1.0);
    assert!(sample("pgsluice_failover_hold_seconds{database=\"rw\"} ") >= 2.5);

    let admin = console(&p).await;
    let hosts = show(&admin, "SHOW HOSTS").await;
    let new = format!("127.0.0.1:{}", standby.port());
    assert_eq!(hosts.lookup("host", &new, "role"), "primary", "{hosts:?}");

    // The old primary comes back as a standby of the new one, and serves the reads.
    primary.rejoin_as_standby_of(&standby);
    let old = format!("127.0.0.1:{}", primary.port());
    wait_until("the old primary seen as a standby", DEADLINE, || async {
        let hosts = show(&admin, "SHOW HOSTS").await;
        hosts.rows_where("host", &old).len() == 1
            && hosts.lookup("host", &old, "role") == "standby"
            && hosts.lookup("host", &old, "healthy") == "yes"
    })
    .await;
    wait_until(
        "reads on the old primary, now a standby",
        DEADLINE,
        || async {
            match p.connect(MD5_USER, MD5_PASS, "ro").await {
                Ok((c, _t)) => c
                    .query_one("select inet_server_port()", &[])
                    .await
                    .is_ok_and(|r| r.get::<_, i32>(0) as u16 == primary.port()),
                Err(_) => false,
            }
        },
    )
    .await;
}

async fn scrape(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").await.unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    body
}

fn pgbench_command(p: &Pooler, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(pg_tool("pgbench"));
    cmd.args(args)
        .env("PGHOST", p.host())
        .env("PGPORT", p.port().to_string())
        .env("PGUSER", MD5_USER)
        .env("PGPASSWORD", MD5_PASS)
        .env("PGDATABASE", "rw");
    cmd
}

fn run_command(mut cmd: std::process::Command) -> (bool, String, String) {
    let out = cmd.output().expect("spawn pgbench");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

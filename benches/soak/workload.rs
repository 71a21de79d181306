//! One soak client: connects through pgsluice and loops over a mix of operations with a think
//! time between them until the run ends, reconnecting after a lost connection (a PostgreSQL
//! restart ends in-flight queries; README "Behaviour"). The mix: short transactions, a
//! statement prepared once per connection and executed on whatever server (transaction mode),
//! small COPY in and out, and a query cancelled through the client's cancel token.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use tokio_postgres::{Client, NoTls, Statement};

use crate::window::{error_kind, Recorder};

/// Rows of the table short transactions update.
pub const ACCOUNTS: i32 = 1000;
/// Created by `main` before the clients start.
pub const SCHEMA: &str = "\
CREATE TABLE soak_accounts (id int PRIMARY KEY, balance bigint NOT NULL);
INSERT INTO soak_accounts SELECT g, 0 FROM generate_series(1, 1000) g;
CREATE TABLE soak_copy (client int, n int, note text);
GRANT ALL ON soak_accounts, soak_copy TO PUBLIC;";
/// How often a cancel is re-sent while its query is still running: a cancel that arrives while
/// the client still waits for a server finds nothing to cancel and is dropped.
const CANCEL_EVERY: Duration = Duration::from_millis(50);

pub struct Shared {
    pub recorder: Recorder,
    /// Clients logged in right now.
    pub connected: AtomicI64,
    pub end: Instant,
}

/// The operations, chosen per iteration: weights out of 100.
#[derive(Clone, Copy, Debug)]
enum Op {
    Transaction,
    Prepared,
    CopyIn,
    CopyOut,
    Cancel,
}

fn pick(rng: &mut impl Rng) -> Op {
    match rng.gen_range(0..100) {
        0..=49 => Op::Transaction,
        50..=79 => Op::Prepared,
        80..=88 => Op::CopyIn,
        89..=97 => Op::CopyOut,
        _ => Op::Cancel,
    }
}

pub async fn run_client(
    id: i32,
    cfg: tokio_postgres::Config,
    think: Duration,
    shared: Arc<Shared>,
) {
    let mut session: Option<(Client, Option<Statement>)> = None;
    while Instant::now() < shared.end {
        let pause = think.mul_f64(rand::thread_rng().gen_range(0.5..1.5));
        tokio::time::sleep(pause).await;
        if session.as_ref().is_some_and(|(c, _)| c.is_closed()) {
            session = None;
            shared.connected.fetch_sub(1, Ordering::Relaxed);
        }
        let Some((client, prepared)) = session.as_mut() else {
            match cfg.connect(NoTls).await {
                Ok((client, conn)) => {
                    let watch = shared.clone();
                    tokio::spawn(async move {
                        // A connection torn down by the client side itself (a message out of
                        // step, garbage) is a pooler bug even if no operation was running.
                        if let Err(e) = conn.await {
                            let kind = error_kind(&e);
                            if kind.starts_with("other") {
                                watch.recorder.error(format!("connection {kind}"));
                            }
                        }
                    });
                    shared.connected.fetch_add(1, Ordering::Relaxed);
                    session = Some((client, None));
                }
                Err(e) => shared.recorder.error(error_kind(&e)),
            }
            continue;
        };
        let op = pick(&mut rand::thread_rng());
        let started = Instant::now();
        let result = match op {
            Op::Transaction => transaction(client).await,
            Op::Prepared => execute_prepared(client, prepared).await,
            Op::CopyIn => copy_in(client, id).await,
            Op::CopyOut => copy_out(client).await,
            Op::Cancel => cancel(client, &shared.recorder).await,
        };
        match result {
            Ok(()) if matches!(op, Op::Cancel) => {}
            Ok(()) => shared.recorder.ok(started.elapsed()),
            Err(e) => shared.recorder.error(error_kind(&e)),
        }
    }
    if session.is_some() {
        shared.connected.fetch_sub(1, Ordering::Relaxed);
    }
}

fn account() -> i32 {
    rand::thread_rng().gen_range(1..=ACCOUNTS)
}

async fn transaction(c: &mut Client) -> Result<(), tokio_postgres::Error> {
    let id = account();
    let tx = c.transaction().await?;
    tx.execute(
        "UPDATE soak_accounts SET balance = balance + 1 WHERE id = $1",
        &[&id],
    )
    .await?;
    tx.query_one("SELECT balance FROM soak_accounts WHERE id = $1", &[&id])
        .await?;
    tx.commit().await
}

/// Prepared once per connection, executed many times: in transaction mode each execution may
/// land on a server that never saw the Parse, which pgsluice must handle.
async fn execute_prepared(
    c: &Client,
    prepared: &mut Option<Statement>,
) -> Result<(), tokio_postgres::Error> {
    let statement = match prepared {
        Some(s) => s.clone(),
        None => {
            let s = c
                .prepare("SELECT id, balance FROM soak_accounts WHERE id = $1")
                .await?;
            prepared.insert(s).clone()
        }
    };
    c.query_one(&statement, &[&account()]).await.map(|_| ())
}

async fn copy_in(c: &Client, id: i32) -> Result<(), tokio_postgres::Error> {
    let sink = c
        .copy_in("COPY soak_copy (client, n, note) FROM STDIN")
        .await?;
    futures_util::pin_mut!(sink);
    let rows: String = (0..10).map(|n| format!("{id}\t{n}\tsoak row\n")).collect();
    sink.send(Bytes::from(rows)).await?;
    sink.finish().await.map(|_| ())
}

async fn copy_out(c: &Client) -> Result<(), tokio_postgres::Error> {
    let first = account().min(ACCOUNTS - 20);
    let sql = format!(
        "COPY (SELECT id, balance FROM soak_accounts WHERE id BETWEEN {first} AND {}) TO STDOUT",
        first + 19
    );
    let stream = c.copy_out(sql.as_str()).await?;
    futures_util::pin_mut!(stream);
    while let Some(chunk) = stream.next().await {
        chunk?;
    }
    Ok(())
}

/// Starts a 2 s sleep and cancels it through pgsluice until it ends; 57014 is the expected
/// outcome and is not an error.
async fn cancel(c: &Client, recorder: &Recorder) -> Result<(), tokio_postgres::Error> {
    let token = c.cancel_token();
    let query = c.simple_query("SELECT pg_sleep(2)");
    futures_util::pin_mut!(query);
    let result = loop {
        tokio::select! {
            result = &mut query => break result,
            _ = tokio::time::sleep(CANCEL_EVERY) => {
                // The cancel's own connection failing (e.g. during a restart) is not the
                // query's outcome; the query's result below is what counts.
                let _ = token.cancel_query(NoTls).await;
            }
        }
    };
    match result {
        Err(e) if e.code().map(|c| c.code()) == Some("57014") => {
            recorder.cancel(true);
            Ok(())
        }
        Err(e) => Err(e),
        Ok(_) => {
            recorder.cancel(false);
            Ok(())
        }
    }
}

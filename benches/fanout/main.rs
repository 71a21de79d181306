//! `cargo bench --bench fanout`: LISTEN/NOTIFY at scale through pgsluice in transaction
//! pooling. FANOUT_SUBSCRIBERS clients (10,000) LISTEN on one channel; a direct connection
//! sends FANOUT_ROUNDS (20) notifications, one at a time, and the bench times how long until
//! every subscriber has each one. It reports the server connections Postgres then holds for
//! them (pg_stat_activity), pgsluice's memory per subscriber, and the same fan-out straight
//! to Postgres with as many subscribers as its max_connections allows, beside pgsluice with
//! that many, as a ratio. (PgBouncer is not in the table: in transaction pooling it does not
//! carry LISTEN at all.) Invariant: it only runs under `cargo bench`.

#[path = "../../tests/common/mod.rs"]
mod common;
// Only the RSS and open-files readers are used here.
#[allow(dead_code)]
#[path = "../compare/procstat.rs"]
mod procstat;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    backends_of, PgCluster, PgOptions, Pooler, PoolerConfig, TEST_DB, TRUST_PASS, TRUST_USER,
};
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;

const CHANNEL: &str = "fanout_bench";
/// Direct to Postgres: subscribers that fit under max_connections beside the notifier.
const DIRECT_SUBSCRIBERS: usize = 90;
const MAX_CONNECTIONS: u32 = 100;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("fanout: not run by `cargo bench`; skipping (run `cargo bench --bench fanout`)");
        return;
    }
    let subscribers = env_usize("FANOUT_SUBSCRIBERS", 10_000);
    let rounds = env_usize("FANOUT_ROUNDS", 20);
    let nofile = procstat::raise_nofile();
    eprintln!("fanout: {subscribers} subscribers, {rounds} rounds, open-files limit {nofile}");
    let pg = PgCluster::start_with(PgOptions {
        max_connections: MAX_CONNECTIONS,
        ..PgOptions::default()
    });
    let pooler = Pooler::start(PoolerConfig::new(&pg).pooler(&format!(
        "pool_mode = \"transaction\"\ndefault_pool_size = 20\nmax_client_conn = {}",
        subscribers + 100
    )));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(&pg, &pooler, subscribers, rounds));
}

async fn run(pg: &PgCluster, pooler: &Pooler, subscribers: usize, rounds: usize) {
    let (notifier, _task) = pg.connect(TRUST_USER, "", TEST_DB).await.unwrap();
    let su = pg.superuser_client(TEST_DB).await;

    // The same small fan-out straight to Postgres and through pgsluice.
    let direct = Fanout::subscribe(&pg.config(), DIRECT_SUBSCRIBERS).await;
    let direct_times = direct.time_rounds(&notifier, rounds).await;
    let small = Fanout::subscribe(&pooler.connect_config(), DIRECT_SUBSCRIBERS).await;
    let small_times = small.time_rounds(&notifier, rounds).await;

    // What LISTEN costs a client's own transactions: the hand-over to its server and back.
    let plain = transactions_per_second(&pooler.connect_config(), false).await;
    let listening = transactions_per_second(&pooler.connect_config(), true).await;

    let rss_before = procstat::rss_kib(pooler.pid()).unwrap_or(0);
    let opened = Instant::now();
    let all = Fanout::subscribe(&pooler.connect_config(), subscribers).await;
    let opening = opened.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = procstat::rss_kib(pooler.pid()).unwrap_or(0);
    // The notifier is a direct connection of the same user: not the subscribers'.
    let servers = backends_of(&su, TEST_DB, TRUST_USER, "%").await - 1;
    let big_times = all.time_rounds(&notifier, rounds).await;

    let per_sub = (rss_after.saturating_sub(rss_before)) as f64 / subscribers as f64;
    println!("## LISTEN fan-out (cargo bench --bench fanout)\n");
    println!(
        "{subscribers} subscribers through pgsluice (transaction pooling, pool_size 20) logged in \
         and LISTENed in {:.1} s; Postgres then held **{servers}** connections of their user \
         (the pool's servers and one LISTEN connection); pgsluice grew by {:.1} KiB per \
         subscriber.\n",
        opening.as_secs_f64(),
        per_sub
    );
    println!(
        "| Fan-out of one NOTIFY | subscribers | p50 until all have it | max | notifications/s |"
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (what, n, times) in [
        ("direct PostgreSQL", DIRECT_SUBSCRIBERS, &direct_times),
        ("pgsluice", DIRECT_SUBSCRIBERS, &small_times),
        ("pgsluice", subscribers, &big_times),
    ] {
        let p50 = percentile(times, 0.5);
        println!(
            "| {what} | {n} | {:.2} ms | {:.2} ms | {:.0} |",
            p50.as_secs_f64() * 1e3,
            percentile(times, 1.0).as_secs_f64() * 1e3,
            n as f64 / p50.as_secs_f64()
        );
    }
    println!(
        "\nRatio pgsluice / direct, {DIRECT_SUBSCRIBERS} subscribers, p50: {:.2}x",
        percentile(&small_times, 0.5).as_secs_f64() / percentile(&direct_times, 0.5).as_secs_f64()
    );
    println!(
        "\nOne client's own `SELECT 1` transactions, one after another: {plain:.0}/s when it \
         does not listen, {listening:.0}/s when it listens on one channel ({:.2}x).",
        listening / plain
    );
}

/// `SELECT 1` transactions per second of one client, for 5 s, listening on a channel or not.
async fn transactions_per_second(cfg: &tokio_postgres::Config, listen: bool) -> f64 {
    let mut cfg = cfg.clone();
    cfg.user(TRUST_USER).password(TRUST_PASS).dbname(TEST_DB);
    let (client, connection) = cfg.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    if listen {
        client.batch_execute("LISTEN fanout_cost").await.unwrap();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(5) {
        client.simple_query("SELECT 1").await.unwrap();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Subscribers and the one channel their notifications arrive on: (round, arrival).
struct Fanout {
    count: usize,
    arrivals: mpsc::UnboundedReceiver<(usize, Instant)>,
    _clients: Vec<tokio_postgres::Client>,
}

impl Fanout {
    async fn subscribe(cfg: &tokio_postgres::Config, count: usize) -> Fanout {
        let (tx, arrivals) = mpsc::unbounded_channel();
        let cfg = Arc::new(cfg.clone());
        let mut clients = Vec::with_capacity(count);
        for chunk in (0..count).collect::<Vec<_>>().chunks(100) {
            let opened = futures_util::future::join_all(chunk.iter().map(|_| {
                let (cfg, tx) = (cfg.clone(), tx.clone());
                async move { subscriber(&cfg, tx).await }
            }))
            .await;
            clients.extend(opened);
        }
        Fanout {
            count,
            arrivals,
            _clients: clients,
        }
    }

    /// Sends `rounds` notifications one after another; for each, the time until every
    /// subscriber has it.
    async fn time_rounds(
        mut self,
        notifier: &tokio_postgres::Client,
        rounds: usize,
    ) -> Vec<Duration> {
        let mut times = Vec::with_capacity(rounds);
        for round in 0..rounds {
            let sent = Instant::now();
            notifier
                .execute("select pg_notify($1, $2)", &[&CHANNEL, &round.to_string()])
                .await
                .unwrap();
            let mut got = 0;
            let mut last = sent;
            while got < self.count {
                let (r, at) = tokio::time::timeout(Duration::from_secs(60), self.arrivals.recv())
                    .await
                    .expect("every subscriber gets the notification within 60 s")
                    .expect("subscribers alive");
                if r == round {
                    got += 1;
                    last = last.max(at);
                }
            }
            times.push(last - sent);
        }
        times
    }
}

async fn subscriber(
    cfg: &tokio_postgres::Config,
    arrivals: mpsc::UnboundedSender<(usize, Instant)>,
) -> tokio_postgres::Client {
    let mut cfg = cfg.clone();
    cfg.user(TRUST_USER).password(TRUST_PASS).dbname(TEST_DB);
    let (client, mut connection) = cfg.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(async move {
        while let Some(Ok(message)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            if let AsyncMessage::Notification(n) = message {
                if let Ok(round) = n.payload().parse() {
                    let _ = arrivals.send((round, Instant::now()));
                }
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .unwrap();
    client
}

fn percentile(times: &[Duration], q: f64) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i]
}

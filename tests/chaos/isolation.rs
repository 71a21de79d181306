//! Isolation under load: 200 clients in transaction mode share ten servers for a
//! minute while a killer terminates a random pgsluice backend every 100–300 ms. Each client
//! writes and reads back its own rows and checks its own session settings on every iteration;
//! the one thing that must never happen is a client seeing another client's rows or settings
//! (docs/architecture.md, invariants 1 and 3). Errors a killed server makes unavoidable (README,
//! "Behaviour": the error Postgres sent, 08006, or a closed connection) only make it reconnect.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::console::{console, show};
use crate::common::*;
use rand::Rng;
use tokio_postgres::{Client, SimpleQueryMessage};

/// A minute under kills is the requirement; not a tuning knob.
const RUN_FOR: Duration = Duration::from_secs(60);
const CLIENTS: i32 = 200;
const POOL_SIZE: i64 = 10;
const DEADLINE: Duration = Duration::from_secs(60);
/// A client picks new settings every this many iterations, so stale state would show.
const SETTINGS_EVERY: u64 = 7;
const ZONES: [&str; 8] = [
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Etc/GMT+5",
    "Asia/Kolkata",
    "America/Sao_Paulo",
];
/// DateStyle values already in the form SHOW prints them.
const DATESTYLES: [&str; 4] = ["ISO, MDY", "ISO, DMY", "SQL, DMY", "Postgres, MDY"];

/// What one client has set and must read back: application_name is unique per client and
/// generation, the rest varies with both.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Settings {
    application_name: String,
    time_zone: String,
    date_style: String,
}

impl Settings {
    fn of(id: i32, generation: u64) -> Settings {
        let k = id as usize + generation as usize;
        Settings {
            application_name: format!("iso_{id}_g{generation}"),
            time_zone: ZONES[k % ZONES.len()].to_owned(),
            date_style: DATESTYLES[(k / ZONES.len()) % DATESTYLES.len()].to_owned(),
        }
    }

    fn set_sql(&self) -> String {
        format!(
            "SET application_name = '{}'; SET TimeZone = '{}'; SET DateStyle = '{}'",
            self.application_name, self.time_zone, self.date_style
        )
    }
}

/// Shared results: successes, unavoidable failures by SQLSTATE, and anything that must not be.
#[derive(Default)]
struct Tally {
    iterations: HashMap<i32, u64>,
    failures: BTreeMap<String, u64>,
    violations: Vec<String>,
    /// (client, token) of every transaction whose COMMIT Postgres acknowledged.
    committed: Vec<(i32, String)>,
}

type Shared = Arc<Mutex<Tally>>;

/// The failure kind of an error a terminated server explains, or None if it is not one.
fn unavoidable(err: &tokio_postgres::Error) -> Option<String> {
    match sqlstate(err) {
        // Postgres's "terminating connection due to administrator command", relayed.
        Some("57P01") => Some("57P01".into()),
        // pgsluice: the server was lost mid-request.
        Some("08006") => Some("08006".into()),
        Some(_) => None,
        None if err.is_closed() => Some("connection closed".into()),
        None if err
            .to_string()
            .starts_with("error communicating with the server") =>
        {
            Some("I/O error".into())
        }
        None => None,
    }
}

async fn settings_in_use(c: &Client) -> Result<Settings, tokio_postgres::Error> {
    let msgs = c
        .simple_query("SHOW application_name; SHOW TimeZone; SHOW DateStyle")
        .await?;
    let values: Vec<String> = msgs
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("").to_owned()),
            _ => None,
        })
        .collect();
    Ok(Settings {
        application_name: values.first().cloned().unwrap_or_default(),
        time_zone: values.get(1).cloned().unwrap_or_default(),
        date_style: values.get(2).cloned().unwrap_or_default(),
    })
}

/// One iteration: a transaction that inserts three rows under a fresh token and reads back
/// exactly those, with the settings checked inside it and again outside it (where the next
/// statement may run on another server). Returns what was wrong, or the committed token.
async fn iteration(
    c: &mut Client,
    id: i32,
    want: &Settings,
    table: &str,
) -> Result<Result<String, String>, tokio_postgres::Error> {
    let token = format!("{:016x}", rand::thread_rng().gen::<u64>());
    let tx = c.transaction().await?;
    tx.execute(
        &format!("insert into {table} select $1, $2, g from generate_series(1, 3) g"),
        &[&id, &token],
    )
    .await?;
    let rows = tx
        .query(
            &format!("select client, token, n from {table} where token = $1 order by n"),
            &[&token],
        )
        .await?;
    let seen: Vec<(i32, String, i32)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let expected: Vec<(i32, String, i32)> = (1..=3).map(|n| (id, token.clone(), n)).collect();
    if seen != expected {
        return Ok(Err(format!(
            "client {id} read rows {seen:?}, wrote {expected:?}"
        )));
    }
    let inside = tx
        .query_one(
            "select current_setting('application_name'), current_setting('TimeZone'), \
             current_setting('DateStyle')",
            &[],
        )
        .await?;
    let inside = Settings {
        application_name: inside.get(0),
        time_zone: inside.get(1),
        date_style: inside.get(2),
    };
    if &inside != want {
        return Ok(Err(format!(
            "client {id} in a transaction saw {inside:?}, set {want:?}"
        )));
    }
    tx.commit().await?;
    let outside = settings_in_use(c).await?;
    if &outside != want {
        return Ok(Err(format!(
            "client {id} outside a transaction saw {outside:?}, set {want:?}"
        )));
    }
    Ok(Ok(token))
}

/// Counts an error: unavoidable ones by kind (true: reconnect), others as violations.
fn record_error(tally: &Shared, id: i32, err: &tokio_postgres::Error) {
    let mut t = tally.lock().unwrap();
    match unavoidable(err) {
        Some(kind) => *t.failures.entry(kind).or_default() += 1,
        None => t
            .violations
            .push(format!("client {id}: unexpected error {err:?}")),
    }
}

async fn run_client(
    id: i32,
    cfg: tokio_postgres::Config,
    table: String,
    end: Instant,
    tally: Shared,
) {
    let mut session: Option<Client> = None;
    let mut generation = 0u64;
    let mut want = Settings::of(id, generation);
    let mut iterations = 0u64;
    while Instant::now() < end {
        let mut fresh = false;
        if session.is_none() {
            match connect_with(&cfg).await {
                Ok((c, _task)) => session = Some(c),
                Err(e) => {
                    record_error(&tally, id, &e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
            fresh = true;
        }
        let c = session.as_mut().expect("connected above");
        if fresh || iterations % SETTINGS_EVERY == 0 {
            generation += 1;
            want = Settings::of(id, generation);
            if let Err(e) = c.batch_execute(&want.set_sql()).await {
                record_error(&tally, id, &e);
                session = None;
                continue;
            }
        }
        match iteration(c, id, &want, &table).await {
            Ok(Ok(token)) => {
                iterations += 1;
                let mut t = tally.lock().unwrap();
                *t.iterations.entry(id).or_default() += 1;
                t.committed.push((id, token));
            }
            Ok(Err(violation)) => tally.lock().unwrap().violations.push(violation),
            Err(e) => {
                record_error(&tally, id, &e);
                session = None;
            }
        }
    }
}

/// Terminates a random pgsluice backend of `db` every 100–300 ms until `end`; returns how many.
async fn killer(db: String, end: Instant) -> u64 {
    let su = shared_cluster().superuser_client("postgres").await;
    let mut kills = 0;
    while Instant::now() < end {
        let pause = rand::thread_rng().gen_range(100..=300);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let killed: Option<bool> = su
            .query_opt(
                "select pg_terminate_backend(pid) from pg_stat_activity \
                 where datname = $1 and usename = $2 order by random() limit 1",
                &[&db, &MD5_USER],
            )
            .await
            .expect("superuser pg_terminate_backend")
            .map(|r| r.get(0));
        kills += u64::from(killed == Some(true));
    }
    kills
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_never_see_each_others_rows_or_settings_under_server_kills() {
    let db = unique_name("isolation");
    shared_cluster().create_database(&db);
    let p = Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler(&format!(
                "pool_mode = \"transaction\"\ndefault_pool_size = {POOL_SIZE}\n\
                 max_client_conn = 1000"
            ))
            .database(&db, ""),
    );
    let su = shared_cluster().superuser_client(&db).await;
    let table = unique_name("own_rows");
    su.batch_execute(&format!(
        "create table {table}(client int, token text, n int); \
         create index on {table}(token); grant all on {table} to public"
    ))
    .await
    .unwrap();

    let end = Instant::now() + RUN_FOR;
    let tally = Shared::default();
    let kill_task = tokio::spawn(killer(db.clone(), end));
    let mut clients = Vec::new();
    for id in 0..CLIENTS {
        let mut cfg = md5_login(p.connect_config());
        cfg.dbname(&db).application_name(format!("iso_{id}"));
        clients.push(tokio::spawn(run_client(
            id,
            cfg,
            table.clone(),
            end,
            tally.clone(),
        )));
    }
    for c in clients {
        c.await.expect("client task");
    }
    let kills = kill_task.await.expect("killer task");

    let t = std::mem::take(&mut *tally.lock().unwrap());
    let total: u64 = t.iterations.values().sum();
    println!(
        "isolation: {total} clean iterations by {} clients, {kills} servers killed, \
         failures by SQLSTATE: {:?}",
        t.iterations.len(),
        t.failures
    );
    assert!(
        t.violations.is_empty(),
        "{} violations, first: {:#?}",
        t.violations.len(),
        &t.violations[..t.violations.len().min(10)]
    );
    assert!(
        kills >= 50,
        "the killer must really have been at work: {kills} kills"
    );
    assert_eq!(
        t.iterations.len(),
        CLIENTS as usize,
        "every client completed an iteration"
    );
    assert!(
        total >= 1000,
        "enough iterations to mean something: {total}"
    );
    assert!(
        !t.failures.is_empty(),
        "kills of busy servers must have failed some requests"
    );
    check_committed_rows(&su, &table, &t.committed).await;
    check_pool_back_to_normal(&p, &su, &db).await;
}

/// Every acknowledged COMMIT left its three rows under its own client, and no transaction left
/// a partial set of rows (a killed transaction rolled back whole).
async fn check_committed_rows(su: &Client, table: &str, committed: &[(i32, String)]) {
    let rows = su
        .query(
            &format!(
                "select token, min(client), max(client), count(*) from {table} group by token"
            ),
            &[],
        )
        .await
        .unwrap();
    let stored: HashMap<String, (i32, i32, i64)> = rows
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
        .collect();
    for (token, (low, high, count)) in &stored {
        assert!(
            low == high && *count == 3,
            "token {token}: clients {low}..{high}, {count} rows"
        );
    }
    for (id, token) in committed {
        assert_eq!(
            stored.get(token).map(|s| s.0),
            Some(*id),
            "committed token {token} of {id}"
        );
    }
}

/// Once every client has gone: no client or active server left in the pool, at most
/// pool_size servers, none idle in a transaction.
async fn check_pool_back_to_normal(p: &Pooler, su: &Client, db: &str) {
    let admin = console(p).await;
    wait_until("the pool to settle with no clients", DEADLINE, || async {
        let pools = show(&admin, "SHOW POOLS").await;
        let r = pools.row_where("database", db);
        ["cl_active", "cl_waiting", "sv_active"]
            .iter()
            .all(|col| pools.get(r, col) == "0")
    })
    .await;
    wait_until("no server idle in a transaction", DEADLINE, || async {
        backends_of(su, db, MD5_USER, "idle in transaction%").await == 0
    })
    .await;
    let servers = backends_of(su, db, MD5_USER, "%").await;
    assert!(servers <= POOL_SIZE, "at most pool_size servers: {servers}");
    let clients = show(&admin, "SHOW CLIENTS").await;
    assert!(clients.rows_where("database", db).is_empty(), "{clients:?}");
}

//! Random exchanges from a grammar of valid ones: each block is a whole exchange that leaves
//! the session idle (so the client may move to another server after any of them); proptest
//! strings blocks together, plays them both ways, and shrinks a difference to the shortest
//! script that still shows it.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::common::differential::{Differential, Scenario};
use crate::common::raw::Frontend;

/// One exchange; every variant ends with the session idle and nothing owed.
#[derive(Debug, Clone)]
enum Block {
    Select(u8),
    Error,
    Set(usize, usize),
    SetConfig(usize),
    Reset(usize),
    ResetAll,
    DiscardAll,
    Show,
    CommitWithSet(usize, usize),
    RollbackWithSet(usize, usize),
    SavepointRollback,
    Extended(u8),
    ExtendedError,
    ParseNamed(usize),
    BindNamed(usize),
    CloseNamed(usize),
    Insert(u8),
    Move,
}

const SETTINGS: [(&str, [&str; 3]); 4] = [
    ("work_mem", ["1MB", "2MB", "64kB"]),
    ("statement_timeout", ["0", "5s", "1min"]),
    ("TimeZone", ["UTC", "Asia/Kolkata", "America/Lima"]),
    ("application_name", ["a", "b", ""]),
];

const STATEMENTS: [&str; 3] = ["SELECT 1", "SELECT 'two'", "SELECT $1::int"];

fn block() -> impl Strategy<Value = Block> {
    prop_oneof![
        any::<u8>().prop_map(Block::Select),
        Just(Block::Error),
        (0..SETTINGS.len(), 0..3usize).prop_map(|(s, v)| Block::Set(s, v)),
        (0..3usize).prop_map(Block::SetConfig),
        (0..SETTINGS.len()).prop_map(Block::Reset),
        Just(Block::ResetAll),
        Just(Block::DiscardAll),
        Just(Block::Show),
        (0..SETTINGS.len(), 0..3usize).prop_map(|(s, v)| Block::CommitWithSet(s, v)),
        (0..SETTINGS.len(), 0..3usize).prop_map(|(s, v)| Block::RollbackWithSet(s, v)),
        Just(Block::SavepointRollback),
        any::<u8>().prop_map(Block::Extended),
        Just(Block::ExtendedError),
        (0..STATEMENTS.len()).prop_map(Block::ParseNamed),
        (0..STATEMENTS.len()).prop_map(Block::BindNamed),
        (0..STATEMENTS.len()).prop_map(Block::CloseNamed),
        any::<u8>().prop_map(Block::Insert),
        Just(Block::Move),
        Just(Block::Move),
    ]
}

const SHOW: &str = "SELECT current_setting('work_mem'), current_setting('statement_timeout'), \
    current_setting('TimeZone'), current_setting('application_name'), \
    coalesce(current_setting('app.k', true), '')";

fn scenario(name: &str, blocks: &[Block]) -> Scenario {
    let mut s = Scenario::with_table(name, "v int").startup("application_name", "start");
    let t = s.t();
    for block in blocks {
        let f = Frontend::new;
        s = match block {
            Block::Select(n) => s.q(&format!("SELECT {n}")),
            Block::Error => s.q("SELECT 1/0"),
            Block::Set(i, v) => s.q(&format!(
                "SET {} = '{}'",
                SETTINGS[*i].0, SETTINGS[*i].1[*v]
            )),
            Block::SetConfig(v) => s.q(&format!("SELECT set_config('app.k', '{v}', false)")),
            Block::Reset(i) => s.q(&format!("RESET {}", SETTINGS[*i].0)),
            Block::ResetAll => s.q("RESET ALL"),
            Block::DiscardAll => s.q("DISCARD ALL"),
            Block::Show => s.q(SHOW),
            Block::CommitWithSet(i, v) => s
                .q(&format!(
                    "BEGIN; SET {} = '{}'",
                    SETTINGS[*i].0, SETTINGS[*i].1[*v]
                ))
                .q("COMMIT"),
            Block::RollbackWithSet(i, v) => s
                .q(&format!(
                    "BEGIN; SET {} = '{}'",
                    SETTINGS[*i].0, SETTINGS[*i].1[*v]
                ))
                .q("ROLLBACK"),
            Block::SavepointRollback => s
                .q(&format!("BEGIN; INSERT INTO {t} VALUES (1); SAVEPOINT a"))
                .q("SELECT 1/0")
                .q("ROLLBACK TO a")
                .q("COMMIT"),
            Block::Extended(n) => s.x("SELECT $1::int", &[Some(&n.to_string())]),
            Block::ExtendedError => s.x("SELECT 1/$1::int", &[Some("0")]),
            Block::ParseNamed(k) => s
                .send(f().parse(&format!("s{k}"), STATEMENTS[*k]).sync())
                .ready(1),
            Block::BindNamed(k) => s
                .send(
                    f().bind("", &format!("s{k}"), &[Some("7")][..usize::from(*k == 2)])
                        .execute("", 0)
                        .sync(),
                )
                .ready(1),
            Block::CloseNamed(k) => s
                .send(f().close_statement(&format!("s{k}")).sync())
                .ready(1),
            Block::Insert(n) => s.x(
                &format!("INSERT INTO {t} VALUES ($1)"),
                &[Some(&n.to_string())],
            ),
            Block::Move => s.mv(),
        };
    }
    s.q(SHOW)
        .check(&format!("SELECT count(*), sum(v) FROM {t}"))
}

/// Random scripts of whole exchanges, with moves between them, give the same replies.
#[test]
fn random_exchanges_match_postgres() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let d = Differential::start();
    let cases = std::env::var("DIFFERENTIAL_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(24);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let n = std::sync::atomic::AtomicU32::new(0);
    let result = runner.run(&proptest::collection::vec(block(), 1..14), |blocks| {
        let case = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        runtime.block_on(d.run(&scenario(&format!("random_{case}"), &blocks)));
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

//! The `pgsluice` command as a DBA meets it: --version/--help, `--check` reporting every
//! config problem at once, refusing to start on a broken file, and the signals (SIGTERM and
//! SIGINT close each client at its transaction's end, SHUTDOWN WAIT_FOR_CLIENTS lets clients
//! leave on their own, a second signal exits at once, SIGHUP never kills). Shutdown tests set a long shutdown_timeout so that an exit can
//! only come from the behaviour under test.

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const DEADLINE: Duration = Duration::from_secs(30);
/// Far beyond any deadline here: the pooler must not exit because of it.
const LONG_SHUTDOWN: &str = "shutdown_timeout = \"1h\"";

/// What a finished `pgsluice` run printed, and how it ended.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs pgsluice with `args` to completion; panics (after killing it) if it is still running
/// at DEADLINE, e.g. because it started serving when it should have refused.
fn pgsluice(args: &[&str]) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgsluice"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("spawn pgsluice");
    let end = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pgsluice {args:?} still running after {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Run {
        status,
        stdout: std::fs::read_to_string(out_path).unwrap(),
        stderr: std::fs::read_to_string(err_path).unwrap(),
    }
}

/// A valid pooler.toml and its userlist in `dir` (the server address is never contacted).
fn write_valid_config(dir: &Path) -> String {
    let cfg = PoolerConfig::for_server("127.0.0.1", 5432);
    std::fs::write(dir.join("userlist.txt"), cfg.render_userlist()).unwrap();
    let path = dir.join("pooler.toml");
    std::fs::write(&path, cfg.render_toml(free_port(), dir)).unwrap();
    path.to_string_lossy().into_owned()
}

/// A pooler.toml with four independent problems, one per kind of mistake.
const BROKEN_CONFIG: &str = "\
[pooler]
listen_addr = \"127.0.0.1\"
listen_prot = 6432
default_pool_size = \"x\"
pool_mode = \"bogus\"
auth_type = \"trust\"

[databases.x]
host = \"127.0.0.1\"
port = 70000
";

/// The problems BROKEN_CONFIG must be reported with, each naming its key.
const BROKEN_KEYS: [&str; 4] = [
    "pooler.listen_prot",
    "pooler.default_pool_size",
    "pooler.pool_mode",
    "databases.x.port",
];

fn assert_reports_every_problem(run: &Run, what: &str) {
    assert!(!run.status.success(), "{what}: exited 0\n{}", run.stderr);
    for key in BROKEN_KEYS {
        assert!(
            run.stderr.contains(key),
            "{what}: {key} missing:\n{}",
            run.stderr
        );
    }
    assert!(
        run.stderr.contains("did you mean \"listen_port\""),
        "{what}: no suggestion for the typo:\n{}",
        run.stderr
    );
}

#[test]
fn version_help_and_missing_config() {
    let run = pgsluice(&["--version"]);
    assert!(run.status.success(), "{}", run.stderr);
    assert!(
        run.stdout.contains(env!("CARGO_PKG_VERSION")),
        "{}",
        run.stdout
    );

    let run = pgsluice(&["--help"]);
    assert!(run.status.success(), "{}", run.stderr);
    assert!(run.stdout.contains("--check"), "{}", run.stdout);

    let run = pgsluice(&[]);
    assert!(!run.status.success());
    let lower = run.stderr.to_ascii_lowercase();
    assert!(
        lower.contains("usage") && lower.contains("-c"),
        "{}",
        run.stderr
    );
}

#[test]
fn check_accepts_a_valid_config_and_reports_every_problem_of_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let valid = write_valid_config(dir.path());
    for args in [["--check", "-c", &valid].as_slice(), &["--check", &valid]] {
        let run = pgsluice(args);
        assert!(
            run.status.success(),
            "{args:?}: {}{}",
            run.stdout,
            run.stderr
        );
    }

    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, BROKEN_CONFIG).unwrap();
    let broken = broken.to_string_lossy().into_owned();
    assert_reports_every_problem(&pgsluice(&["--check", "-c", &broken]), "-c");
    assert_reports_every_problem(&pgsluice(&["--check", &broken]), "positional");
}

#[test]
fn starting_with_a_broken_config_fails_with_the_problems_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, BROKEN_CONFIG).unwrap();
    let run = pgsluice(&["-c", &broken.to_string_lossy()]);
    assert_reports_every_problem(&run, "start");
}

/// Whether a new login is refused as a shutting-down pooler should: 57P01, or no connection
/// at all (the listener is closed). Any other SQLSTATE is a bug.
async fn new_login_refused(p: &Pooler) -> bool {
    match p.connect(MD5_USER, MD5_PASS, TEST_DB).await {
        Ok(_) => false,
        Err(e) => match sqlstate(&e) {
            None | Some("57P01") => true,
            Some(other) => panic!("login refused with {other}: {e:?}"),
        },
    }
}

async fn wait_refusing(p: &Pooler) {
    wait_until("new logins refused", DEADLINE, || new_login_refused(p)).await;
}

fn still_running(p: &mut Pooler) -> bool {
    p.wait_exit(Duration::ZERO).is_none()
}

/// Waits for the pooler to exit without blocking the test's runtime, so that the client
/// connection tasks on it can still send Terminate and close their sockets meanwhile.
async fn exit_status(p: &mut Pooler, what: &str) -> ExitStatus {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = p.wait_exit(Duration::ZERO) {
            return status;
        }
        assert!(
            Instant::now() < end,
            "{what}: still running after {DEADLINE:?}\n{}",
            p.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How a client's connection task ended; it must end within DEADLINE.
async fn connection_end(task: ConnTask) -> Result<(), tokio_postgres::Error> {
    tokio::time::timeout(DEADLINE, task)
        .await
        .expect("client connection still open")
        .expect("connection task panicked")
}

#[tokio::test]
async fn shutdown_wait_for_clients_lets_clients_finish_then_exits_0() {
    let mut p = Pooler::start(PoolerConfig::new(shared_cluster()).pooler(LONG_SHUTDOWN));
    let (client, task) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    client.simple_query("select 1").await.unwrap();

    let admin = crate::common::console::console(&p).await;
    crate::common::console::exec(&admin, "SHUTDOWN WAIT_FOR_CLIENTS").await;
    wait_refusing(&p).await;
    for _ in 0..3 {
        client
            .simple_query("select 1")
            .await
            .unwrap_or_else(|e| panic!("connected client cut off: {e:?}\n{}", p.log()));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(still_running(&mut p), "exited while a client was connected");

    drop(client);
    connection_end(task).await.unwrap();
    let status = exit_status(&mut p, "after the last client left").await;
    assert!(status.success(), "{status}\n{}", p.log());
}

#[tokio::test]
async fn sigterm_and_sigint_close_idle_clients_and_others_after_their_transaction() {
    for signal in ["TERM", "INT"] {
        close_at_transaction_ends(signal).await;
    }
}

async fn close_at_transaction_ends(signal: &str) {
    let mut p = Pooler::start(PoolerConfig::new(shared_cluster()).pooler(LONG_SHUTDOWN));
    let (in_tx, in_tx_task) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    let (idle, idle_task) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    in_tx.simple_query("begin").await.unwrap();
    in_tx.simple_query("select 1").await.unwrap();
    idle.simple_query("select 1").await.unwrap();

    p.signal(signal);
    wait_refusing(&p).await;
    let end = connection_end(idle_task)
        .await
        .expect_err("idle client not told why");
    assert_eq!(sqlstate(&end), Some("57P01"), "{end:?}");
    assert!(idle.is_closed());

    in_tx
        .simple_query("select 2")
        .await
        .unwrap_or_else(|e| panic!("transaction cut off by SIG{signal}: {e:?}\n{}", p.log()));
    in_tx
        .simple_query("commit")
        .await
        .unwrap_or_else(|e| panic!("COMMIT after SIG{signal} failed: {e:?}\n{}", p.log()));
    let err = in_tx
        .simple_query("select 3")
        .await
        .expect_err("session went on after its transaction ended");
    assert!(matches!(sqlstate(&err), None | Some("57P01")), "{err:?}");
    let _ = connection_end(in_tx_task).await;

    let status = exit_status(&mut p, "after the clients were closed").await;
    assert!(status.success(), "{status}\n{}", p.log());
}

#[tokio::test]
async fn a_second_signal_exits_at_once_with_a_client_connected() {
    for second in ["TERM", "INT"] {
        let mut p = Pooler::start(PoolerConfig::new(shared_cluster()).pooler(LONG_SHUTDOWN));
        let (client, task) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
        // Inside a transaction: TERM alone waits for it to end.
        client.simple_query("begin").await.unwrap();

        p.signal("TERM");
        wait_refusing(&p).await;
        assert!(
            still_running(&mut p),
            "TERM alone must wait for the transaction"
        );
        p.signal(second);
        let status = exit_status(&mut p, &format!("TERM then {second}")).await;
        assert!(
            status.success(),
            "TERM then {second}: {status}\n{}",
            p.log()
        );
        let _ = connection_end(task).await;
        assert!(client.simple_query("select 1").await.is_err());
    }
}

#[tokio::test]
async fn sighup_keeps_the_pooler_serving() {
    let mut p = Pooler::start(PoolerConfig::new(shared_cluster()));
    let (client, _task) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();

    p.signal("HUP");
    client.simple_query("select 1").await.unwrap();
    wait_until("a new login works after SIGHUP", DEADLINE, || async {
        match p.connect(MD5_USER, MD5_PASS, TEST_DB).await {
            Ok((fresh, _task)) => fresh.simple_query("select 1").await.is_ok(),
            Err(_) => false,
        }
    })
    .await;
    assert!(still_running(&mut p), "SIGHUP killed pgsluice\n{}", p.log());

    // Pending signals are delivered lowest number first, so had SIGHUP's default action
    // (terminate) applied, the exit status would name SIGHUP instead of a clean 0.
    drop(client);
    p.signal("TERM");
    let status = exit_status(&mut p, "after SIGTERM").await;
    assert!(status.success(), "{status}\n{}", p.log());
}

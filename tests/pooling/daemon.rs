//! PgBouncer's process habits: `-d` starts pgsluice in the background once its pidfile names
//! it, logs go to `logfile` and follow a logrotate-style rename, SIGTERM ends it and removes
//! the pidfile; `-d` without a pidfile and a pidfile of a running process are refused; `-u`
//! runs it as another user.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::*;

const DEADLINE: Duration = Duration::from_secs(30);

/// pooler.toml and userlist.txt in `dir`, listening on `port`, with `extra` [pooler] lines.
fn write_config(dir: &Path, port: u16, extra: &str) -> std::path::PathBuf {
    let cfg = PoolerConfig::new(shared_cluster()).pooler(extra);
    std::fs::write(dir.join("userlist.txt"), cfg.render_userlist()).unwrap();
    let path = dir.join("pooler.toml");
    std::fs::write(&path, cfg.render_toml(port, dir)).unwrap();
    path
}

fn pgsluice(args: &[&str], config: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pgsluice"))
        .args(args)
        .arg("-c")
        .arg(config)
        .output()
        .unwrap()
}

#[tokio::test]
async fn dash_d_runs_in_the_background_with_pidfile_and_logfile() {
    let dir = tempfile::tempdir().unwrap();
    let port = fixed_port();
    let config = write_config(
        dir.path(),
        port,
        "pidfile = \"pgsluice.pid\"\nlogfile = \"pgsluice-file.log\"",
    );
    let out = pgsluice(&["-d"], &config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid: u32 = std::fs::read_to_string(dir.path().join("pgsluice.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let log_path = dir.path().join("pgsluice-file.log");
    wait_until("the background pgsluice to accept", DEADLINE, || async {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .await;
    let mut config_for_clients = tcp_config("127.0.0.1", port);
    config_for_clients
        .user(MD5_USER)
        .password(MD5_PASS)
        .dbname(TEST_DB);
    let (client, _t) = connect_with(&config_for_clients).await.unwrap();
    client.simple_query("select 1").await.unwrap();
    assert!(
        read_log(&log_path).contains("client logged in"),
        "{}",
        read_log(&log_path)
    );

    // logrotate renames the file; the next lines go to a new one at the same path.
    std::fs::rename(&log_path, dir.path().join("pgsluice-file.log.1")).unwrap();
    wait_until("a new log file after the rename", DEADLINE, || async {
        if let Ok((c, _t)) = connect_with(&config_for_clients).await {
            let _ = c.simple_query("select 1").await;
        }
        read_log(&log_path).contains("client logged in")
    })
    .await;

    // A second start with the same pidfile is refused while the first runs.
    let again = pgsluice(&[], &config);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("is pgsluice already running?"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    drop(client);
    assert!(Command::new("kill")
        .args(["-s", "TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    wait_until(
        "the background pgsluice to exit and remove its pidfile",
        DEADLINE,
        || async {
            !dir.path().join("pgsluice.pid").exists()
                && !Path::new(&format!("/proc/{pid}")).exists()
        },
    )
    .await;
}

#[tokio::test]
async fn dash_d_without_a_pidfile_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), fixed_port(), "");
    let out = pgsluice(&["-d"], &config);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("-d needs pidfile"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn dash_u_runs_as_that_user() {
    if current_uid() != 0 {
        eprintln!("SKIPPED: -u needs root");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("pgsluice-u-")
        .tempdir_in("/tmp")
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let port = fixed_port();
    let config = write_config(dir.path(), port, "unix_socket_dir = \"\"");
    for file in ["pooler.toml", "userlist.txt"] {
        std::fs::set_permissions(
            dir.path().join(file),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgsluice"))
        .args(["-u", "postgres", "-c"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until(
        "pgsluice running as postgres to accept",
        DEADLINE,
        || async { std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() },
    )
    .await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let uid_line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap()
        .to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let postgres_uid = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .and_then(|l| l.split(':').nth(2))
        .unwrap()
        .to_string();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        uid_line.split_whitespace().nth(1) == Some(postgres_uid.as_str()),
        "{uid_line} (postgres is {postgres_uid})"
    );
}

fn current_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|u| u.parse().ok())
        .unwrap_or(u32::MAX)
}

#[tokio::test]
async fn syslog_gets_every_line_with_ident_facility_and_severity() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("log.sock");
    let log = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    log.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let p = Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler("syslog = true\nsyslog_ident = \"pos_pooler\"\nsyslog_facility = \"local3\"")
            .env("PGSLUICE_SYSLOG_SOCKET", &socket_path.to_string_lossy()),
    );
    let (client, _t) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    client.simple_query("select 1").await.unwrap();
    let mut lines = Vec::new();
    let mut buf = [0u8; 4096];
    let end = std::time::Instant::now() + DEADLINE;
    while std::time::Instant::now() < end
        && !lines
            .iter()
            .any(|l: &String| l.contains("client logged in"))
    {
        if let Ok(n) = log.recv(&mut buf) {
            lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    // local3 is facility 19; info is severity 6: priority 19 * 8 + 6 = 158.
    let login = lines
        .iter()
        .find(|l| l.contains("client logged in"))
        .unwrap_or_else(|| panic!("no login line in {lines:#?}"));
    let prefix = format!("<158>pos_pooler[{}]: ", p.pid());
    assert!(login.starts_with(&prefix), "{login}");
    // The lines still reach stderr as well.
    assert!(p.log().contains("client logged in"));
}

//! TLS between clients and pgsluice, with certificates made at test time: psql with
//! sslmode=require and verify-full (and channel_binding=require, which needs
//! SCRAM-SHA-256-PLUS), tokio-postgres over rustls, a plain-text client refused under require,
//! PostgreSQL 17's direct TLS negotiation, `cert` authentication by CommonName, SHOW CLIENTS'
//! tls column, the TLS gauge, and certificate files re-read on RELOAD (bad ones refused).

use std::process::Command;

use crate::common::certs::{CertAndKey, TestCa};
use crate::common::console::{admin_error, exec, show};
use crate::common::tls::{
    client_config, connect_tls, handshake, peer_certificate, subject_and_serial,
};
use crate::common::*;
use tokio_postgres::config::{ChannelBinding, SslMode};

/// A pooler config serving TLS to clients with `mode`, certificate `server` signed by `ca`.
fn tls_config(mode: &str, ca: &TestCa, server: &CertAndKey) -> PoolerConfig {
    PoolerConfig::new(shared_cluster())
        .file("ca.crt", &ca.cert_pem)
        .file("server.crt", &server.cert_pem)
        .file("server.key", &server.key_pem)
        .pooler(&format!(
            "client_tls_sslmode = \"{mode}\"\nclient_tls_cert_file = \"server.crt\"\n\
             client_tls_key_file = \"server.key\"\nclient_tls_ca_file = \"ca.crt\""
        ))
}

/// tokio-postgres settings for a TLS login to `p`: the name "localhost" (what the certificate
/// says) at 127.0.0.1 (where pgsluice listens); `password` None sends none.
fn tls_login(p: &Pooler, user: &str, password: Option<&str>) -> tokio_postgres::Config {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host("localhost")
        .hostaddr(std::net::Ipv4Addr::LOCALHOST.into())
        .port(p.port())
        .connect_timeout(std::time::Duration::from_secs(10))
        .user(user)
        .dbname(TEST_DB)
        .ssl_mode(SslMode::Require);
    if let Some(password) = password {
        cfg.password(password);
    }
    cfg
}

/// The message of a server-reported error (or the whole error when there is none).
fn message(err: &tokio_postgres::Error) -> String {
    err.as_db_error()
        .map(|e| e.message().to_string())
        .unwrap_or_else(|| format!("{err:?}"))
}

#[test]
fn psql_connects_with_sslmode_require_and_verify_full_and_channel_binding() {
    let ca = TestCa::new("psql test CA");
    let server = ca.server_cert("pgsluice", 1);
    let cfg = tls_config("require", &ca, &server).pooler("auth_type = \"scram-sha-256\"");
    let p = Pooler::start(cfg);
    let ca_path = p.dir().join("ca.crt");
    let cases = [
        ("require", None),
        ("verify-full", Some(ca_path.to_string_lossy().into_owned())),
    ];
    for (mode, root) in cases {
        let mut cmd = Command::new(pg_tool("psql"));
        cmd.args([
            "-X",
            "-w",
            "-At",
            "-h",
            "127.0.0.1",
            "-p",
            &p.port().to_string(),
        ])
        .args(["-U", SCRAM_USER, "-d", TEST_DB])
        .args(["-c", "\\conninfo", "-c", "select 40 + 2"])
        .env("PGPASSWORD", SCRAM_PASS)
        .env("PGSSLMODE", mode)
        // Needs SCRAM-SHA-256-PLUS: libpq refuses to log in without channel binding.
        .env("PGCHANNELBINDING", "require");
        if let Some(root) = &root {
            cmd.env("PGSSLROOTCERT", root);
        }
        let out = cmd.output().expect("spawn psql");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "psql sslmode={mode}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            p.log()
        );
        assert!(
            stdout.contains("SSL connection (protocol: TLSv1.3"),
            "{stdout}"
        );
        assert!(stdout.trim_end().ends_with("42"), "{stdout}");
    }
    // verify-full against another CA fails on the client side: the chain is checked.
    let other = TestCa::new("someone else");
    let other_path = p.dir().join("other-ca.crt");
    std::fs::write(&other_path, &other.cert_pem).unwrap();
    let out = Command::new(pg_tool("psql"))
        .args(["-X", "-w", "-h", "127.0.0.1", "-p", &p.port().to_string()])
        .args(["-U", SCRAM_USER, "-d", TEST_DB, "-c", "select 1"])
        .env("PGPASSWORD", SCRAM_PASS)
        .env("PGSSLMODE", "verify-full")
        .env("PGSSLROOTCERT", &other_path)
        .output()
        .expect("spawn psql");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("certificate verify failed"), "{stderr}");
}

#[tokio::test]
async fn tokio_postgres_over_rustls_with_channel_binding_and_show_clients_tls() {
    let ca = TestCa::new("tokio test CA");
    let server = ca.server_cert("pgsluice", 2);
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let cfg = tls_config("require", &ca, &server).pooler(&format!(
        "auth_type = \"scram-sha-256\"\nmetrics_addr = \"{metrics_addr}\""
    ));
    let p = Pooler::start(cfg);
    let mut login = tls_login(&p, SCRAM_USER, Some(SCRAM_PASS));
    login.channel_binding(ChannelBinding::Require);
    let (client, _task) = connect_tls(&login, client_config(&ca.cert_pem, None, false))
        .await
        .unwrap_or_else(|e| panic!("TLS login: {e:?}\n{}", p.log()));
    let row = client.query_one("select 6 * 7", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);

    // The admin console over TLS: SHOW CLIENTS has the tls column filled for TLS clients.
    let mut admin = tls_login(&p, ADMIN_USER, Some(ADMIN_PASS));
    admin.dbname("pgsluice");
    let (console, _t) = connect_tls(&admin, client_config(&ca.cert_pem, None, false))
        .await
        .unwrap();
    let clients = show(&console, "SHOW CLIENTS").await;
    let row = clients.row_where("user", SCRAM_USER);
    let tls = clients.get(row, "tls");
    assert!(tls.starts_with("TLSv1.3/TLS_"), "tls column: {tls:?}");

    // The gauge counts TLS clients of pools (console sessions are not in SHOW CLIENTS either).
    let text = scrape(&metrics_addr).await;
    assert!(
        text.contains("pgsluice_tls_client_connections 1"),
        "{}",
        text.lines()
            .filter(|l| l.contains("tls"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

async fn scrape(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("metrics");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn plaintext_clients_are_refused_under_require_but_unix_sockets_are_not() {
    let ca = TestCa::new("require CA");
    let p = Pooler::start(tls_config("require", &ca, &ca.server_cert("pgsluice", 3)));
    let err = connect_as(p.connect_config(), MD5_USER, Some(MD5_PASS), TEST_DB)
        .await
        .map(|_| ())
        .expect_err("plain text must be refused");
    assert_eq!(sqlstate(&err), Some("28000"), "{err:?}");
    assert!(message(&err).starts_with("SSL required"), "{err:?}");
    // A Unix socket is local: no TLS there, and require does not apply (as PgBouncer).
    let (client, _t) = connect_as(p.connect_config_unix(), MD5_USER, Some(MD5_PASS), TEST_DB)
        .await
        .unwrap();
    client.simple_query("select 1").await.unwrap();
    // Under disable, an SSLRequest gets 'N' and libpq-style "prefer" goes on in plain text.
    let plain = Pooler::start(PoolerConfig::new(shared_cluster()));
    let mut cfg = md5_login(plain.connect_config());
    cfg.ssl_mode(SslMode::Prefer);
    let (client, _t) = connect_tls(&cfg, client_config(&ca.cert_pem, None, false))
        .await
        .unwrap();
    client.simple_query("select 1").await.unwrap();
}

#[tokio::test]
async fn direct_tls_negotiation_needs_alpn_postgresql() {
    let ca = TestCa::new("direct CA");
    let p = Pooler::start(tls_config("require", &ca, &ca.server_cert("pgsluice", 4)));
    // PostgreSQL 17's sslnegotiation=direct: a ClientHello first, ALPN "postgresql", then the
    // StartupMessage inside TLS (tokio-postgres's connect_raw sends it over our stream).
    let stream = handshake(p.port(), client_config(&ca.cert_pem, None, true), true)
        .await
        .expect("direct TLS handshake");
    let cfg = md5_login(tokio_postgres::Config::new());
    let (client, connection) = cfg
        .connect_raw(stream, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("login over direct TLS: {e:?}\n{}", p.log()));
    tokio::spawn(connection);
    let row = client
        .query_one("select 'direct'::text", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "direct");

    // Without ALPN the handshake completes, then pgsluice refuses the connection.
    let stream = handshake(p.port(), client_config(&ca.cert_pem, None, false), true)
        .await
        .expect("handshake");
    let err = md5_login(tokio_postgres::Config::new())
        .connect_raw(stream, tokio_postgres::NoTls)
        .await
        .map(|_| ())
        .expect_err("direct TLS without ALPN must be refused");
    assert!(message(&err).contains("ALPN"), "{err:?}");
}

#[tokio::test]
async fn cert_auth_accepts_the_matching_common_name_only() {
    let ca = TestCa::new("cert auth CA");
    let cfg = tls_config("verify-full", &ca, &ca.server_cert("pgsluice", 5))
        .pooler("auth_type = \"cert\"");
    let p = Pooler::start(cfg);
    // No password: cert auth never asks for one.
    let login = |cert: Option<&CertAndKey>| {
        let cfg = tls_login(&p, MD5_USER, None);
        (cfg, client_config(&ca.cert_pem, cert, false))
    };
    let right = ca.client_cert(MD5_USER);
    let (cfg, tls) = login(Some(&right));
    let (client, _t) = connect_tls(&cfg, tls)
        .await
        .unwrap_or_else(|e| panic!("cert login: {e:?}\n{}", p.log()));
    client.simple_query("select 1").await.unwrap();

    let wrong = ca.client_cert("somebody_else");
    let (cfg, tls) = login(Some(&wrong));
    let err = connect_tls(&cfg, tls)
        .await
        .map(|_| ())
        .expect_err("wrong CN");
    assert_eq!(sqlstate(&err), Some("28000"), "{err:?}");
    assert!(
        message(&err).starts_with("certificate authentication failed for user"),
        "{err:?}"
    );
    // verify-full demands a certificate: without one the handshake itself fails.
    let (cfg, tls) = login(None);
    assert!(connect_tls(&cfg, tls).await.is_err());
    // A certificate from another CA is not trusted, whatever its CN.
    let stranger = TestCa::new("stranger").client_cert(MD5_USER);
    let (cfg, tls) = login(Some(&stranger));
    assert!(connect_tls(&cfg, tls).await.is_err());
}

#[test]
fn a_bad_certificate_path_is_a_config_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pooler.toml");
    std::fs::write(
        &config,
        "[pooler]\nauth_type = \"trust\"\nclient_tls_sslmode = \"require\"\n\
         client_tls_cert_file = \"missing.crt\"\nclient_tls_key_file = \"missing.key\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pgsluice"))
        .args(["--check", "-c"])
        .arg(&config)
        .output()
        .expect("run pgsluice --check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("pooler.client_tls_cert_file: cannot read ")
            && stderr.contains("missing.crt"),
        "{stderr}"
    );
    assert!(
        stderr.contains("pooler.client_tls_key_file: cannot read "),
        "{stderr}"
    );
    // Starting with it fails the same way.
    let out = Command::new(env!("CARGO_BIN_EXE_pgsluice"))
        .arg("-c")
        .arg(&config)
        .output()
        .expect("run pgsluice");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("pooler.client_tls_cert_file"), "{stderr}");
}

#[tokio::test]
async fn reload_picks_up_a_new_certificate_and_refuses_a_bad_one() {
    let ca = TestCa::new("reload CA");
    let cfg = tls_config("require", &ca, &ca.server_cert("pgsluice-one", 11));
    let mut p = Pooler::start(cfg.clone());
    let seen = |port| {
        let config = client_config(&ca.cert_pem, None, false);
        async move {
            let stream = handshake(port, config, false).await.expect("handshake");
            subject_and_serial(&peer_certificate(&stream))
        }
    };
    assert_eq!(seen(p.port()).await, ("pgsluice-one".into(), "11".into()));

    let two = ca.server_cert("pgsluice-two", 12);
    p.rewrite_config(
        cfg.clone()
            .file("server.crt", &two.cert_pem)
            .file("server.key", &two.key_pem),
    );
    // Over the Unix socket: plain text is refused on TCP under require.
    let (admin, _t) = connect_as(
        p.connect_config_unix(),
        ADMIN_USER,
        Some(ADMIN_PASS),
        "pgsluice",
    )
    .await
    .unwrap();
    exec(&admin, "RELOAD").await;
    assert_eq!(seen(p.port()).await, ("pgsluice-two".into(), "12".into()));

    // A path that cannot be read: RELOAD fails naming the key, and nothing changes.
    p.rewrite_config(
        cfg.file("server.crt", &two.cert_pem)
            .file("server.key", &two.key_pem)
            .pooler("client_tls_cert_file = \"gone.crt\""),
    );
    let (code, message) = admin_error(&admin, "RELOAD").await;
    assert_eq!(code, "F0000", "{message}");
    assert!(
        message.contains("pooler.client_tls_cert_file: cannot read"),
        "{message}"
    );
    assert_eq!(seen(p.port()).await, ("pgsluice-two".into(), "12".into()));
}

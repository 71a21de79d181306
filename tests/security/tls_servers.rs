//! TLS between pgsluice and Postgres, against a cluster with ssl=on that refuses
//! plain-text TCP (`hostnossl ... reject`): pg_stat_ssl shows the server connection encrypted
//! under server_tls_sslmode = require, SHOW SERVERS fills its tls column, SCRAM-SHA-256-PLUS is
//! used towards Postgres (with a password and in SCRAM pass-through), verify-full checks the
//! chain against server_tls_ca_file, and a TLS change on RELOAD replaces idle servers.

use crate::common;

use std::sync::OnceLock;

use crate::common::certs::TestCa;
use crate::common::console::{backend_pid, exec, show};
use crate::common::*;

/// One TLS-only cluster for this binary, and the CA that signed its certificate.
fn tls_cluster() -> &'static (PgCluster, TestCa) {
    static CLUSTER: OnceLock<(PgCluster, TestCa)> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let ca = TestCa::new("postgres test CA");
        let cert = ca.server_cert("postgres", 21);
        let cluster = PgCluster::start_with(
            PgOptions::default()
                .file("server.crt", &cert.cert_pem)
                .file("server.key", &cert.key_pem)
                .setting("ssl", "on")
                .setting("ssl_cert_file", "server.crt")
                .setting("ssl_key_file", "server.key")
                .hba_first("hostnossl all all 127.0.0.1/32 reject"),
        );
        (cluster, ca)
    })
}

fn config(mode: &str) -> PoolerConfig {
    let (cluster, ca) = tls_cluster();
    PoolerConfig::new(cluster)
        .file("root.crt", &ca.cert_pem)
        .pooler(&format!(
            "server_tls_sslmode = \"{mode}\"\nserver_tls_ca_file = \"root.crt\"\n\
             pool_mode = \"transaction\""
        ))
}

async fn ssl_in_use(client: &tokio_postgres::Client) -> bool {
    let row = client
        .query_one(
            "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl");
    row.get(0)
}

#[tokio::test]
async fn require_encrypts_server_connections_as_pg_stat_ssl_and_show_servers_say() {
    let p = Pooler::start(config("require"));
    let (client, _t) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    assert!(ssl_in_use(&client).await, "{}", p.log());
    let console = common::console::console(&p).await;
    let servers = show(&console, "SHOW SERVERS").await;
    let row = servers.row_where("user", MD5_USER);
    let tls = servers.get(row, "tls");
    assert!(tls.starts_with("TLSv1.3/TLS_"), "tls column: {tls:?}");
    // The client side is plain text here: its column stays empty.
    let clients = show(&console, "SHOW CLIENTS").await;
    assert_eq!(clients.get(clients.row_where("user", MD5_USER), "tls"), "");
}

#[tokio::test]
async fn disable_sends_no_sslrequest_and_this_cluster_refuses_plain_text() {
    let p = Pooler::start(config("disable"));
    let err = p
        .connect(MD5_USER, MD5_PASS, TEST_DB)
        .await
        .map(|_| ())
        .expect_err("plain text refused by hostnossl reject");
    assert_eq!(sqlstate(&err), Some("28000"), "{err:?}");
}

#[tokio::test]
async fn scram_sha_256_plus_is_used_with_a_password_and_in_pass_through() {
    let (cluster, _) = tls_cluster();
    let secret = cluster.sql(
        "postgres",
        "select rolpassword from pg_authid where rolname = 'scram_user'",
    );
    for (what, userlist_secret) in [
        ("password", SCRAM_PASS.to_string()),
        ("pass-through", secret),
    ] {
        let p = Pooler::start(
            config("verify-full")
                .pooler("auth_type = \"scram-sha-256\"")
                .userlist_entry(SCRAM_USER, &userlist_secret)
                .env("RUST_LOG", "pgsluice=debug"),
        );
        let (client, _t) = p
            .connect(SCRAM_USER, SCRAM_PASS, TEST_DB)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e:?}\n{}", p.log()));
        assert!(ssl_in_use(&client).await);
        let log = p.log();
        assert!(
            log.lines()
                .any(|l| l.contains("server SASL login") && l.contains("SCRAM-SHA-256-PLUS")),
            "{what}: no SCRAM-SHA-256-PLUS login in\n{log}"
        );
    }
}

#[tokio::test]
async fn verify_full_checks_the_chain_against_server_tls_ca_file() {
    let p = Pooler::start(config("verify-full"));
    let (client, _t) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    assert!(ssl_in_use(&client).await);
    // Another CA: the certificate does not verify and the login fails, naming TLS.
    let other = TestCa::new("not the cluster's CA");
    let p = Pooler::start(config("verify-ca").file("root.crt", &other.cert_pem));
    let err = p
        .connect(MD5_USER, MD5_PASS, TEST_DB)
        .await
        .map(|_| ())
        .expect_err("untrusted server certificate");
    let message = err
        .as_db_error()
        .map(|e| e.message().to_string())
        .unwrap_or_default();
    assert!(message.contains("server TLS failed"), "{err:?}");
}

#[tokio::test]
async fn a_tls_change_on_reload_replaces_servers() {
    let mut p = Pooler::start(config("require"));
    let (client, _t) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    let before = backend_pid(&client).await;
    assert_eq!(
        backend_pid(&client).await,
        before,
        "one idle server is reused"
    );
    // Same settings, files unchanged: nothing to replace.
    let console = common::console::console(&p).await;
    exec(&console, "RELOAD").await;
    assert_eq!(backend_pid(&client).await, before);
    p.rewrite_config(config("require").pooler("server_tls_protocols = \"tlsv1.3\""));
    exec(&console, "RELOAD").await;
    let after = backend_pid(&client).await;
    assert_ne!(
        after, before,
        "the server must be replaced after a TLS change"
    );
    assert!(ssl_in_use(&client).await);
}

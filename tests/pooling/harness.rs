//! Proves the test harness itself: the throwaway cluster's roles log in with the method their
//! name promises, secrets are stored in the right form, and PoolerConfig renders the TOML the
//! pooler expects. Every other integration test builds on these guarantees.

use std::path::Path;
use std::time::Duration;

use crate::common::*;

#[tokio::test]
async fn each_role_logs_in_directly_with_its_password() {
    let pg = shared_cluster();
    for (user, password) in ROLES {
        let (client, _conn) = pg
            .connect(user, password, TEST_DB)
            .await
            .unwrap_or_else(|e| panic!("{user} could not log in: {e}"));
        let row = client
            .query_one("select current_user::text", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), user);
    }
}

#[tokio::test]
async fn trust_user_needs_no_password() {
    let pg = shared_cluster();
    let (client, _conn) = pg.connect(TRUST_USER, "", TEST_DB).await.unwrap();
    let row = client
        .query_one("select current_user::text", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), TRUST_USER);
}

#[tokio::test]
async fn secrets_are_stored_in_the_promised_form() {
    let pg = shared_cluster();
    let client = pg.superuser_client("postgres").await;
    let secret = |role: &'static str| {
        let client = &client;
        async move {
            let row = client
                .query_one(
                    "select rolpassword from pg_authid where rolname = $1",
                    &[&role],
                )
                .await
                .unwrap();
            row.get::<_, String>(0)
        }
    };
    assert!(secret(MD5_USER).await.starts_with("md5"));
    assert!(secret(SCRAM_USER).await.starts_with("SCRAM-SHA-256$"));
    assert!(secret(PLAIN_USER).await.starts_with("SCRAM-SHA-256$"));
}

#[tokio::test]
async fn wrong_passwords_are_refused_with_28p01() {
    let pg = shared_cluster();
    for user in [MD5_USER, SCRAM_USER, PLAIN_USER] {
        let err = match pg.connect(user, "wrong", TEST_DB).await {
            Ok(_) => panic!("{user} logged in with a wrong password"),
            Err(e) => e,
        };
        assert_eq!(sqlstate(&err), Some("28P01"), "{user}: {err}");
    }
}

#[tokio::test]
async fn roles_can_create_tables_in_a_fresh_database() {
    let pg = shared_cluster();
    let table = unique_name("harness_t");
    let db = unique_name("harness_db");
    pg.create_database(&db);
    let (client, _conn) = pg.connect(MD5_USER, MD5_PASS, &db).await.unwrap();
    client
        .batch_execute(&format!(
            "create table {table} (x int); insert into {table} values (1)"
        ))
        .await
        .unwrap();
    assert_eq!(pg.sql(&db, &format!("select count(*) from {table}")), "1");
}

#[test]
fn psql_and_pgbench_are_available() {
    let pg = shared_cluster();
    assert_eq!(pg.sql(TEST_DB, "select current_database()"), TEST_DB);
    let out = std::process::Command::new(pg_tool("pgbench"))
        .arg("--version")
        .output()
        .expect("pgbench is installed");
    assert!(out.status.success());
}

#[test]
fn owned_cluster_restarts_and_keeps_its_data() {
    let pg = PgCluster::start_with(PgOptions {
        max_connections: 20,
        ..PgOptions::default()
    });
    pg.sql(
        TEST_DB,
        "create table kept (x int); insert into kept values (42)",
    );
    pg.restart("immediate");
    assert_eq!(pg.sql(TEST_DB, "select x from kept"), "42");
    pg.restart("fast");
    assert_eq!(pg.sql("postgres", "show max_connections"), "20");
    pg.stop("fast");
    assert!(!pg.is_running());
    let dir = pg.dir().to_path_buf();
    drop(pg);
    assert!(!dir.exists(), "cluster dir {} left behind", dir.display());
}

#[tokio::test]
async fn wait_until_returns_once_the_condition_holds() {
    let mut polls = 0;
    wait_until("third poll", Duration::from_secs(5), || {
        polls += 1;
        let done = polls >= 3;
        async move { done }
    })
    .await;
    assert_eq!(polls, 3);
}

#[test]
fn unique_names_differ() {
    assert_ne!(unique_name("T"), unique_name("T"));
    assert!(unique_name("T").starts_with("t_"));
}

#[test]
fn pooler_config_renders_defaults() {
    let cfg = PoolerConfig::for_server("127.0.0.1", 5544);
    let toml_text = cfg.render_toml(6500, Path::new("/tmp/pooler-x"));
    for expected in [
        "[pooler]\n",
        "listen_addr = \"127.0.0.1\"\n",
        "listen_port = 6500\n",
        "unix_socket_dir = \"/tmp/pooler-x\"\n",
        "auth_type = \"md5\"\n",
        "auth_file = \"userlist.txt\"\n",
        "admin_users = [\"admin\"]\n",
        "[databases.testdb]\nhost = \"127.0.0.1\"\nport = 5544\n",
    ] {
        assert!(
            toml_text.contains(expected),
            "{expected:?} missing in:\n{toml_text}"
        );
    }
    toml::from_str::<toml::Table>(&toml_text).expect("valid TOML");
    let users = cfg.render_userlist();
    assert!(users.contains("\"md5_user\" \"md5pass\"\n"));
    assert!(users.contains("\"trust_user\" \"trustpass\"\n"));
    assert!(users.contains("\"admin\" \"adminpass\"\n"));
}

#[test]
fn pooler_config_overrides_replace_keys_in_place() {
    let cfg = PoolerConfig::for_server("127.0.0.1", 5544)
        .pooler("auth_type = \"scram-sha-256\"")
        .pooler("pool_mode = \"transaction\"\ndefault_pool_size = 2")
        .pooler("default_pool_size = 3")
        .database("testdb", "pool_size = 1")
        .database("alias", "dbname = \"testdb\"\nport = 1")
        .userlist_entry("md5_user", "other\"pass");
    let text = cfg.render_toml(6500, Path::new("/tmp/p"));
    let table: toml::Table = toml::from_str(&text).expect("valid TOML, no duplicate keys");
    let pooler = table["pooler"].as_table().unwrap();
    assert_eq!(pooler["auth_type"].as_str(), Some("scram-sha-256"));
    assert_eq!(pooler["pool_mode"].as_str(), Some("transaction"));
    assert_eq!(pooler["default_pool_size"].as_integer(), Some(3));
    let dbs = table["databases"].as_table().unwrap();
    assert_eq!(dbs["testdb"]["pool_size"].as_integer(), Some(1));
    assert_eq!(dbs["testdb"]["port"].as_integer(), Some(5544));
    assert_eq!(dbs["alias"]["port"].as_integer(), Some(1));
    assert_eq!(dbs["alias"]["dbname"].as_str(), Some("testdb"));
    assert_eq!(cfg.pooler_value("default_pool_size"), Some("3"));
    assert!(cfg
        .render_userlist()
        .contains("\"md5_user\" \"other\"\"pass\"\n"));
}

//! A pgbouncer.ini as PgBouncer users write it, served as it is: `pgsluice -c pgbouncer.ini`
//! reads its [databases] connection strings, [users] and [pgbouncer] keys, warns about keys it
//! does not implement (with file and line), refuses an ident map, and `pgsluice convert` prints
//! a pooler.toml that serves the same way.

use std::process::Command;

use crate::common::console::{console, show};
use crate::common::*;

/// PgBouncer's own style: comments, a quoted value, a fallback database, a pool mode per user.
fn pgbouncer_ini(pg: &PgCluster, port: u16) -> String {
    format!(
        ";; written in PgBouncer's style\n\
         [databases]\n\
         ini_alias = host={host} port={pgport} dbname={TEST_DB} pool_size=3 timezone=Asia/Tokyo connect_query='SELECT \\'connected\\''\n\
         * = host={host} port={pgport}\n\
         \n\
         [users]\n\
         {MD5_USER} = pool_mode=transaction\n\
         \n\
         [pgbouncer]\n\
         # where to listen\n\
         listen_addr = 127.0.0.1\n\
         listen_port = {port}\n\
         unix_socket_dir =\n\
         listen_backlog = 128\n\
         auth_type = md5\n\
         auth_file = userlist.txt\n\
         admin_users = admin\n\
         pool_mode = session\n\
         server_lifetime = 3600\n\
         tcp_keepalive = 1\n",
        host = pg.host(),
        pgport = pg.port(),
    )
}

/// The rest of PgBouncer's connection-string keys, a [peers] section and a [pgbouncer]
/// section opened again, appended to `pgbouncer_ini`.
fn every_key(pg: &PgCluster) -> String {
    format!(
        "\n[databases]\n\
         \"forced db\" = host={host},{host} port={pgport} dbname={TEST_DB} user={MD5_USER} \
         password={MD5_PASS} min_pool_size=1 reserve_pool=1 max_db_connections=5 \
         max_db_client_connections=50 pool_mode=statement auth_user={SUPERUSER} \
         client_encoding=UTF8 datestyle='ISO, DMY' application_name=ini_app\n\
         \n[peers]\n1 = host=127.0.0.1 port=6432\n\
         \n[pgbouncer]\npeer_id = 2\n",
        host = pg.host(),
        pgport = pg.port(),
    )
}

#[tokio::test]
async fn a_pgbouncer_ini_is_served_as_it_is() {
    let pg = shared_cluster();
    let port = fixed_port();
    let ini = pgbouncer_ini(pg, port) + &every_key(pg);
    let p = Pooler::start(
        PoolerConfig::new(pg)
            .pooler(&format!("listen_port = {port}"))
            .file("pgbouncer.ini", &ini)
            .config_file("pgbouncer.ini"),
    );
    let log = p.log();
    assert!(
        log.contains("pgbouncer.ini:14: [pgbouncer] listen_backlog is not implemented"),
        "{log}"
    );
    let (client, _t) = p.connect(MD5_USER, MD5_PASS, "ini_alias").await.unwrap();
    let row = client
        .query_one("select current_database()", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), TEST_DB);
    // timezone= in the connection string is every server's session default.
    let row = client
        .query_one("select current_setting('TimeZone')", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "Asia/Tokyo");
    let admin = console(&p).await;
    let pools = show(&admin, "SHOW POOLS").await;
    let at = pools.row_where("database", "ini_alias");
    assert_eq!(pools.get(at, "pool_mode"), "transaction", "[users] applies");
    let dbs = show(&admin, "SHOW DATABASES").await;
    assert_eq!(dbs.lookup("name", "ini_alias", "pool_size"), "3");
    // Every connection-string key of the forced-user database is in force.
    let forced = dbs.row_where("name", "forced db");
    for (column, value) in [
        ("force_user", MD5_USER),
        ("min_pool_size", "1"),
        ("reserve_pool", "1"),
        ("max_connections", "5"),
        ("max_client_connections", "50"),
        ("pool_mode", "statement"),
    ] {
        assert_eq!(dbs.get(forced, column), value, "{column}");
    }
    let (c, _t) = p
        .connect(SCRAM_USER, SCRAM_PASS, "forced db")
        .await
        .unwrap();
    let row = c
        .query_one(
            "select current_user::text, current_setting('DateStyle'), \
             current_setting('application_name')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, String>(0),
        MD5_USER,
        "user= and password= log in"
    );
    assert_eq!(row.get::<_, String>(1), "ISO, DMY");
    assert_eq!(row.get::<_, String>(2), "ini_app");
    let config = show(&admin, "SHOW CONFIG").await;
    assert_eq!(config.lookup("key", "peer_id", "value"), "2");

    // SIGHUP re-reads the ini the same way.
    let ini_path = p.dir().join("pgbouncer.ini");
    let edited = std::fs::read_to_string(&ini_path)
        .unwrap()
        .replace("pool_size=3", "pool_size=5");
    std::fs::write(&ini_path, edited).unwrap();
    p.signal("HUP");
    wait_until(
        "the edited ini to be in force",
        std::time::Duration::from_secs(30),
        || async {
            show(&admin, "SHOW DATABASES")
                .await
                .lookup("name", "ini_alias", "pool_size")
                == "5"
        },
    )
    .await;

    // `convert` prints a pooler.toml that serves the same way.
    let out = Command::new(env!("CARGO_BIN_EXE_pgsluice"))
        .arg("convert")
        .arg(p.dir().join("pgbouncer.ini"))
        .current_dir(p.dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let toml = String::from_utf8(out.stdout).unwrap();
    assert!(toml.contains("[databases.ini_alias]"), "{toml}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen_backlog is not implemented"));
    let other = fixed_port();
    let converted = toml.replace(
        &format!("listen_port = {port}"),
        &format!("listen_port = {other}"),
    );
    let q = Pooler::start(
        PoolerConfig::new(pg)
            .pooler(&format!("listen_port = {other}"))
            .file("converted.toml", &converted)
            .config_file("converted.toml"),
    );
    let (client, _t) = q.connect(MD5_USER, MD5_PASS, "ini_alias").await.unwrap();
    let row = client
        .query_one("select current_database()", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), TEST_DB);
    let admin = console(&q).await;
    let pools = show(&admin, "SHOW POOLS").await;
    let at = pools.row_where("database", "ini_alias");
    assert_eq!(pools.get(at, "pool_mode"), "transaction");
}

#[tokio::test]
async fn problems_of_an_ini_name_file_line_and_key() {
    let pg = shared_cluster();
    let dir = tempfile::tempdir().unwrap();
    let ini = dir.path().join("pgbouncer.ini");
    let text = pgbouncer_ini(pg, 6432)
        .replace("listen_port", "listen_prot")
        .replace("pool_size=3", "pool_size=many")
        + "auth_ident_file = /etc/pgbouncer/pg_ident.conf\n";
    std::fs::write(&ini, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pgsluice"))
        .args(["--check", "-c"])
        .arg(&ini)
        .output()
        .unwrap();
    assert!(!out.status.success());
    // Every problem at once, each with its file, line and key.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("has 3 problem(s)"), "{stderr}");
    assert!(
        stderr
            .contains("pgbouncer.ini:21: [pgbouncer] auth_ident_file: pgsluice does not implement"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "pgbouncer.ini:12: [pgbouncer] listen_prot: unknown key in [pgbouncer]; \
             did you mean \"listen_port\"?"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("pgbouncer.ini:3: [databases] ini_alias.pool_size: expected an integer"),
        "{stderr}"
    );
}

//! `auth_type = hba`: the auth_hba_file picks the method per connection — type (local or
//! host), database, user and address, first match wins — and `reject` or no matching record
//! refuses with PostgreSQL's 28000 words. RELOAD reads the file again.

use std::time::Duration;

use crate::common::console::{console, exec};
use crate::common::*;

const RULES: &str = "\
# the harness's clients come over the Unix socket or 127.0.0.1
local all trust_user trust
host testdb md5_user 127.0.0.1/32 md5
host testdb scram_user 127.0.0.1 255.255.255.255 scram-sha-256
host all admin 127.0.0.0/8 md5
host other_db all 127.0.0.1/32 reject
host all all 10.0.0.0/8 trust
";

fn hba_pooler(rules: &str) -> Pooler {
    Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler("auth_type = \"hba\"\nauth_hba_file = \"hba.conf\"")
            .database("other_db", &format!("dbname = \"{TEST_DB}\""))
            .file("hba.conf", rules),
    )
}

async fn refusal(p: &Pooler, user: &str, password: &str, db: &str) -> (String, String) {
    match connect_as(p.connect_config(), user, Some(password), db).await {
        Ok(_) => panic!("{user}@{db} logged in\n{}", p.log()),
        Err(e) => {
            let db_err = e.as_db_error().unwrap_or_else(|| panic!("{e:?}"));
            (
                db_err.code().code().to_string(),
                db_err.message().to_string(),
            )
        }
    }
}

#[tokio::test]
async fn each_connection_gets_the_method_of_its_first_matching_record() {
    let p = hba_pooler(RULES);
    // md5 and SCRAM per user, over TCP.
    let (c, _t) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    c.simple_query("select 1").await.unwrap();
    let (c, _t) = p.connect(SCRAM_USER, SCRAM_PASS, TEST_DB).await.unwrap();
    c.simple_query("select 1").await.unwrap();
    assert_eq!(refusal(&p, MD5_USER, "wrong", TEST_DB).await.0, "28P01");
    // trust over the Unix socket only.
    let (c, _t) = connect_as(p.connect_config_unix(), TRUST_USER, None, TEST_DB)
        .await
        .unwrap_or_else(|e| panic!("{e:?}\n{}", p.log()));
    c.simple_query("select 1").await.unwrap();
    let (code, message) = refusal(&p, TRUST_USER, TRUST_PASS, TEST_DB).await;
    assert_eq!(code, "28000");
    assert_eq!(
        message,
        format!(
            "no pg_hba.conf entry for host \"127.0.0.1\", user \"{TRUST_USER}\", database \
             \"{TEST_DB}\", no encryption"
        )
    );
    let (code, message) = refusal(&p, MD5_USER, MD5_PASS, "other_db").await;
    assert_eq!(code, "28000");
    assert!(
        message.starts_with("pg_hba.conf rejects connection for host \"127.0.0.1\""),
        "{message}"
    );
}

#[tokio::test]
async fn reload_reads_the_rules_again_and_a_broken_file_changes_nothing() {
    let mut p = hba_pooler(RULES);
    assert_eq!(refusal(&p, MD5_USER, MD5_PASS, "other_db").await.0, "28000");
    let cfg = p.config().clone();
    let opened = RULES.replace(
        "host other_db all 127.0.0.1/32 reject",
        "host other_db all 127.0.0.1/32 md5",
    );
    p.rewrite_config(cfg.clone().file("hba.conf", &opened));
    let admin = console(&p).await;
    exec(&admin, "RELOAD").await;
    let (c, _t) = p.connect(MD5_USER, MD5_PASS, "other_db").await.unwrap();
    c.simple_query("select 1").await.unwrap();

    // A file with a bad line is refused whole: the rules in force stay.
    p.rewrite_config(cfg.file(
        "hba.conf",
        &format!("{opened}host all all 10.0.0.0/8 ldap\n"),
    ));
    let err = admin
        .simple_query("RELOAD")
        .await
        .expect_err("a broken hba file");
    let shown = err
        .as_db_error()
        .map(|e| e.message().to_string())
        .unwrap_or_default();
    assert!(shown.contains("hba.conf:8"), "{shown}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (c, _t) = p.connect(MD5_USER, MD5_PASS, "other_db").await.unwrap();
    c.simple_query("select 1").await.unwrap();
}

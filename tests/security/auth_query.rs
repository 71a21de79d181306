//! auth_query: users auth_file does not list are looked up in PostgreSQL by auth_user, with
//! the name bound as a parameter. md5 and SCRAM secrets both log in (SCRAM passed through to
//! the server); an unknown user, a wrong password and a failed lookup all get the same 28P01,
//! with the cause only in the log; a name shaped like SQL injection is just a name.

use crate::common::*;

/// auth_file lists neither md5_user nor scram_user; the superuser (trusted on loopback by
/// the harness's pg_hba.conf) looks them up.
fn lookup_config(auth_type: &str, extra: &str) -> PoolerConfig {
    PoolerConfig::new(shared_cluster())
        .userlist_without(MD5_USER)
        .userlist_without(SCRAM_USER)
        .pooler(&format!(
            "auth_type = \"{auth_type}\"\nauth_user = \"{SUPERUSER}\"\npool_mode = \"transaction\""
        ))
        .pooler(extra)
}

/// `user` logs in with `password` and is that user on the server.
async fn logs_in_as(p: &Pooler, user: &str, password: &str) {
    let (client, _t) = p
        .connect(user, password, TEST_DB)
        .await
        .unwrap_or_else(|e| panic!("{e:?}\n{}", p.log()));
    let row = client
        .query_one("select current_user::text", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), user);
}

async fn refused(p: &Pooler, user: &str, password: &str) -> (String, String) {
    let err = match p.connect(user, password, TEST_DB).await {
        Ok(_) => panic!("{user} logged in\n{}", p.log()),
        Err(e) => e,
    };
    let db = err.as_db_error().unwrap_or_else(|| panic!("{err:?}"));
    (
        db.code().code().to_string(),
        db.message().replace(user, "<user>"),
    )
}

#[tokio::test]
async fn md5_secrets_are_looked_up_and_unknown_users_look_like_wrong_passwords() {
    let p = Pooler::start(lookup_config("md5", ""));
    logs_in_as(&p, MD5_USER, MD5_PASS).await;

    let wrong = refused(&p, MD5_USER, "not-the-password").await;
    let unknown = refused(&p, "nobody_at_all", "whatever").await;
    let injected = refused(&p, "x' or '1'='1", "whatever").await;
    assert_eq!(wrong.0, "28P01");
    assert_eq!(
        unknown, wrong,
        "an unknown user must look like a wrong password"
    );
    assert_eq!(injected, wrong);
    assert!(
        p.log().contains("auth_query found no such user"),
        "{}",
        p.log()
    );
}

#[tokio::test]
async fn scram_secrets_are_looked_up_and_passed_through() {
    let p = Pooler::start(lookup_config("scram-sha-256", ""));
    logs_in_as(&p, SCRAM_USER, SCRAM_PASS).await;
    assert_eq!(refused(&p, SCRAM_USER, "wrong").await.0, "28P01");
}

#[tokio::test]
async fn a_failed_lookup_refuses_as_a_wrong_password_and_logs_why() {
    let p = Pooler::start(lookup_config(
        "md5",
        "auth_query = \"SELECT usename, passwd FROM no_such_table WHERE usename=$1\"",
    ));
    let (code, _) = refused(&p, MD5_USER, MD5_PASS).await;
    assert_eq!(code, "28P01");
    let log = p.log();
    assert!(log.contains("auth_query lookup failed"), "{log}");
    assert!(log.contains("no_such_table"), "{log}");
}

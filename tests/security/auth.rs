//! Client and server authentication through pgsluice: every auth_type towards clients, every
//! method towards Postgres (trust, cleartext, md5, SCRAM with a password and SCRAM
//! pass-through), and the failures a client must see (28P01 wrong password or unknown user
//! alike, 3D000 unknown database) while the pooler keeps serving others.

use crate::common::*;

async fn current_user(
    p: &Pooler,
    user: &str,
    password: &str,
) -> Result<String, tokio_postgres::Error> {
    let (client, _task) = p.connect(user, password, TEST_DB).await?;
    let row = client.query_one("select current_user::text", &[]).await?;
    Ok(row.get(0))
}

#[tokio::test]
async fn md5_auth_type_logs_every_role_in() {
    let p = Pooler::start(PoolerConfig::new(shared_cluster()));
    for (user, pass) in [
        (MD5_USER, MD5_PASS),
        (SCRAM_USER, SCRAM_PASS),
        (PLAIN_USER, PLAIN_PASS),
        (TRUST_USER, TRUST_PASS),
    ] {
        assert_eq!(
            current_user(&p, user, pass).await.unwrap(),
            user,
            "{user}\n{}",
            p.log()
        );
    }
}

#[tokio::test]
async fn each_client_auth_type_accepts_right_and_refuses_wrong_passwords() {
    for auth_type in ["plain", "md5", "scram-sha-256"] {
        let p = Pooler::start(
            PoolerConfig::new(shared_cluster()).pooler(&format!("auth_type = \"{auth_type}\"")),
        );
        assert_eq!(
            current_user(&p, MD5_USER, MD5_PASS).await.unwrap(),
            MD5_USER,
            "{auth_type}\n{}",
            p.log()
        );
        let err = current_user(&p, MD5_USER, "wrong").await.unwrap_err();
        assert_eq!(sqlstate(&err), Some("28P01"), "{auth_type}: {err}");
        let err = current_user(&p, "nobody_here", "whatever")
            .await
            .unwrap_err();
        assert_eq!(sqlstate(&err), Some("28P01"), "{auth_type}: {err}");
        assert!(
            err.as_db_error().unwrap().message()
                == "password authentication failed for user \"nobody_here\"",
            "unknown users fail exactly like wrong passwords: {err}"
        );
        // The pooler keeps serving after the failures.
        assert_eq!(
            current_user(&p, MD5_USER, MD5_PASS).await.unwrap(),
            MD5_USER
        );
    }
}

#[tokio::test]
async fn trust_auth_type_needs_no_password() {
    let p = Pooler::start(PoolerConfig::new(shared_cluster()).pooler("auth_type = \"trust\""));
    assert_eq!(current_user(&p, TRUST_USER, "").await.unwrap(), TRUST_USER);
}

#[tokio::test]
async fn unknown_database_is_3d000_after_authentication() {
    let p = Pooler::start(PoolerConfig::new(shared_cluster()));
    let err = p
        .connect(MD5_USER, MD5_PASS, "no_such_db")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), Some("3D000"), "{err}");
    // Authentication comes first: a wrong password on an unknown database is still 28P01.
    let err = p
        .connect(MD5_USER, "wrong", "no_such_db")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), Some("28P01"), "{err}");
}

/// The secret Postgres stores for `role` (md5... or SCRAM-SHA-256$...).
fn stored_secret(role: &str) -> String {
    shared_cluster().sql(
        "postgres",
        &format!("select rolpassword from pg_authid where rolname = '{role}'"),
    )
}

#[tokio::test]
async fn scram_secret_in_auth_file_logs_in_by_pass_through() {
    // auth_file holds only Postgres's own SCRAM secret: pgsluice can log in to Postgres only
    // with the keys recovered from the client's SCRAM proof.
    let secret = stored_secret(SCRAM_USER);
    assert!(secret.starts_with("SCRAM-SHA-256$"), "{secret}");
    let p = Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler("auth_type = \"scram-sha-256\"")
            .userlist_entry(SCRAM_USER, &secret),
    );
    assert_eq!(
        current_user(&p, SCRAM_USER, SCRAM_PASS).await.unwrap(),
        SCRAM_USER,
        "{}",
        p.log()
    );
    let err = current_user(&p, SCRAM_USER, "wrong").await.unwrap_err();
    assert_eq!(sqlstate(&err), Some("28P01"));
    // md5 auth_type with a SCRAM secret uses SCRAM towards the client, as PgBouncer does.
    let p = Pooler::start(PoolerConfig::new(shared_cluster()).userlist_entry(SCRAM_USER, &secret));
    assert_eq!(
        current_user(&p, SCRAM_USER, SCRAM_PASS).await.unwrap(),
        SCRAM_USER,
        "{}",
        p.log()
    );
}

#[tokio::test]
async fn md5_secret_in_auth_file_logs_in_to_md5_server() {
    let secret = stored_secret(MD5_USER);
    assert!(secret.starts_with("md5"), "{secret}");
    let p = Pooler::start(PoolerConfig::new(shared_cluster()).userlist_entry(MD5_USER, &secret));
    assert_eq!(
        current_user(&p, MD5_USER, MD5_PASS).await.unwrap(),
        MD5_USER,
        "{}",
        p.log()
    );
    let err = current_user(&p, MD5_USER, "wrong").await.unwrap_err();
    assert_eq!(sqlstate(&err), Some("28P01"));
}

#[tokio::test]
async fn forced_database_login_is_used_for_every_client() {
    let p = Pooler::start(PoolerConfig::new(shared_cluster()).database(
        "forced",
        &format!("dbname = \"{TEST_DB}\"\nuser = \"{SCRAM_USER}\"\npassword = \"{SCRAM_PASS}\""),
    ));
    let (client, _task) = p.connect(MD5_USER, MD5_PASS, "forced").await.unwrap();
    let row = client
        .query_one("select current_user::text, current_database()::text", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), SCRAM_USER);
    assert_eq!(row.get::<_, String>(1), TEST_DB);
}

#[tokio::test]
async fn server_refusing_the_login_reaches_the_client() {
    // plain_user's secret in auth_file is wrong for Postgres: the client passes pgsluice's
    // check but Postgres refuses pgsluice, and the client is told so with Postgres's SQLSTATE.
    let p = Pooler::start(
        PoolerConfig::new(shared_cluster()).userlist_entry(PLAIN_USER, "not-the-server-password"),
    );
    let err = p
        .connect(PLAIN_USER, "not-the-server-password", TEST_DB)
        .await
        .unwrap_err();
    let db = err.as_db_error().expect("an ErrorResponse");
    assert_eq!(db.code().code(), "28P01");
    assert!(
        db.message().contains("server login failed"),
        "{}",
        db.message()
    );
    assert_eq!(
        current_user(&p, MD5_USER, MD5_PASS).await.unwrap(),
        MD5_USER
    );
}

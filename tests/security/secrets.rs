//! Security checks: no secret ever reaches the log, even at
//! the most verbose level, through a full run of every login kind, wrong passwords, admin
//! commands and a RELOAD; a SCRAM client-final replayed or altered never logs in (RFC 5802 §9:
//! the nonce makes every proof single-use). The console refusing ordinary users is in
//! admin.rs, wrong-key cancels in relay.rs, and work that must not block in security_load.rs.

use crate::common::console::{console, exec, show};
use crate::common::raw_scram::{scram_begin, with_attribute, with_flipped_proof, ScramEnd};
use crate::common::*;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Wrong passwords the run tries; they must not be logged either.
const WRONG: [&str; 3] = ["Wr0ng-md5-Guess", "Wr0ng-scram-Guess", "Wr0ng-admin-Guess"];

/// The secret Postgres stores for `role` (md5... or SCRAM-SHA-256$...).
fn stored_secret(role: &str) -> String {
    shared_cluster().sql(
        "postgres",
        &format!("select rolpassword from pg_authid where rolname = '{role}'"),
    )
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every form a SCRAM verifier's secrets could leak in: SaltedPassword, ClientKey, StoredKey
/// and ServerKey (RFC 5802 §3), each in base64 and in hex.
fn scram_secrets(password: &str, verifier: &str) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let (_, rest) = verifier.split_once('$').expect("SCRAM-SHA-256$...");
    let (iter_salt, keys) = rest.split_once('$').expect("iterations:salt$keys");
    let (iterations, salt) = iter_salt.split_once(':').expect("iterations:salt");
    let (stored_b64, server_b64) = keys.split_once(':').expect("StoredKey:ServerKey");
    let salt = b64.decode(salt).expect("salt base64");
    let mut salted = [0u8; 32];
    let iterations = iterations.parse().expect("iterations");
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, iterations, &mut salted);
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = Sha256::digest(&client_key).to_vec();
    let server_key = hmac(&salted, b"Server Key");
    assert_eq!(b64.encode(&stored_key), stored_b64, "StoredKey recomputed");
    assert_eq!(b64.encode(&server_key), server_b64, "ServerKey recomputed");
    let mut out = Vec::new();
    for key in [&salted[..], &client_key, &stored_key, &server_key] {
        out.push(b64.encode(key));
        out.push(hex(key));
    }
    out
}

/// The pooler of the log test: md5 and SCRAM secrets and a plain password in auth_file, and two
/// databases whose forced server login carries a password (SCRAM and cleartext towards Postgres).
fn log_test_config(auth_type: &str, md5_secret: &str, scram_secret: &str) -> PoolerConfig {
    PoolerConfig::new(shared_cluster())
        .pooler(&format!("auth_type = \"{auth_type}\"\nverbose = 2"))
        .env("RUST_LOG", "trace")
        .userlist_entry(MD5_USER, md5_secret)
        .userlist_entry(SCRAM_USER, scram_secret)
        .database(
            "forced_scram",
            &format!(
                "dbname = \"{TEST_DB}\"\nuser = \"{SCRAM_USER}\"\npassword = \"{SCRAM_PASS}\""
            ),
        )
        .database(
            "forced_plain",
            &format!(
                "dbname = \"{TEST_DB}\"\nuser = \"{PLAIN_USER}\"\npassword = \"{PLAIN_PASS}\""
            ),
        )
}

async fn login_and_query(p: &Pooler, user: &str, password: &str, db: &str) {
    match p.connect(user, password, db).await {
        Ok((c, _t)) => {
            c.simple_query("select 1").await.unwrap();
        }
        Err(e) => panic!("{user} on {db}: {e:?}\n{}", p.log()),
    }
}

async fn refused(p: &Pooler, user: &str, password: &str, db: &str) {
    let err = p.connect(user, password, db).await.unwrap_err();
    assert_eq!(sqlstate(&err), Some("28P01"), "{user}: {err:?}");
}

async fn admin_commands(p: &Pooler) {
    let admin = console(p).await;
    for command in [
        "SHOW USERS",
        "SHOW CONFIG",
        "SHOW DATABASES",
        "SHOW POOLS",
        "SHOW CLIENTS",
        "SHOW SERVERS",
        "SHOW STATS",
    ] {
        show(&admin, command).await;
    }
}

#[tokio::test]
async fn no_secret_reaches_the_log_of_a_full_verbose_run() {
    let md5_hash = stored_secret(MD5_USER);
    let verifier = stored_secret(SCRAM_USER);
    let mut p = Pooler::start(log_test_config("md5", &md5_hash, &verifier));
    // md5 exchange with an md5 secret, SCRAM pass-through, md5 with a plain secret then a
    // cleartext server login, trust, and forced server logins with configured passwords.
    login_and_query(&p, MD5_USER, MD5_PASS, TEST_DB).await;
    login_and_query(&p, SCRAM_USER, SCRAM_PASS, TEST_DB).await;
    login_and_query(&p, PLAIN_USER, PLAIN_PASS, TEST_DB).await;
    login_and_query(&p, TRUST_USER, TRUST_PASS, TEST_DB).await;
    login_and_query(&p, MD5_USER, MD5_PASS, "forced_scram").await;
    login_and_query(&p, MD5_USER, MD5_PASS, "forced_plain").await;
    refused(&p, MD5_USER, WRONG[0], TEST_DB).await;
    refused(&p, SCRAM_USER, WRONG[1], TEST_DB).await;
    refused(&p, ADMIN_USER, WRONG[2], "pgsluice").await;
    admin_commands(&p).await;

    // RELOAD into scram-sha-256: plain secrets now go through PBKDF2 on every login.
    p.rewrite_config(log_test_config("scram-sha-256", &md5_hash, &verifier));
    exec(&console(&p).await, "RELOAD").await;
    wait_until("RELOAD to switch auth_type", DEADLINE, || async {
        let admin = console(&p).await;
        show(&admin, "SHOW CONFIG")
            .await
            .lookup("key", "auth_type", "value")
            == "scram-sha-256"
    })
    .await;
    login_and_query(&p, PLAIN_USER, PLAIN_PASS, TEST_DB).await;
    login_and_query(&p, SCRAM_USER, SCRAM_PASS, "forced_plain").await;
    refused(&p, PLAIN_USER, WRONG[0], TEST_DB).await;
    refused(&p, SCRAM_USER, WRONG[1], TEST_DB).await;
    admin_commands(&p).await;
    p.signal("INT");
    assert!(p.wait_exit(DEADLINE).is_some(), "pgsluice exits on SIGINT");

    let log = p.log();
    assert!(
        log.contains("DEBUG"),
        "the run logged at debug level:\n{log}"
    );
    // A log file is for grep: no terminal colour codes splitting `key=value` (was a bug).
    assert!(
        !log.contains('\x1b'),
        "ANSI escape codes in a log file:\n{log}"
    );
    let mut secrets: Vec<String> = [MD5_PASS, SCRAM_PASS, PLAIN_PASS, TRUST_PASS, ADMIN_PASS]
        .iter()
        .chain(WRONG.iter())
        .map(|s| s.to_string())
        .collect();
    secrets.push(md5_hash.clone());
    secrets.push(md5_hash.trim_start_matches("md5").to_owned());
    secrets.extend(scram_secrets(SCRAM_PASS, &verifier));
    for secret in &secrets {
        if let Some(line) = log.lines().find(|l| l.contains(secret.as_str())) {
            panic!("a secret is in the log: {line}");
        }
    }
    println!(
        "{} log lines, {} secrets checked",
        log.lines().count(),
        secrets.len()
    );
}

const DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// A pooler whose auth_file holds scram_user's verifier: the salt is the same on every login,
/// so only the nonce stops a recorded proof from being accepted again.
fn scram_pooler() -> Pooler {
    Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler("auth_type = \"scram-sha-256\"")
            .userlist_entry(SCRAM_USER, &stored_secret(SCRAM_USER)),
    )
}

#[tokio::test]
async fn a_replayed_or_altered_scram_client_final_never_logs_in() {
    let p = scram_pooler();
    let (host, port) = (p.host(), p.port());
    // A login an eavesdropper recorded.
    let honest = scram_begin(host, port, SCRAM_USER, SCRAM_PASS).await;
    let recorded = honest.honest_final();
    let ScramEnd::LoggedIn(_) = honest.finish_with(&recorded).await else {
        panic!("the honest login failed\n{}", p.log())
    };

    // Replayed as is on a new connection: the server nonce differs.
    let replay = scram_begin(host, port, SCRAM_USER, SCRAM_PASS).await;
    let replayed = replay.finish_with(&recorded).await.refusal_code();
    // Replayed with r= rewritten to the new nonce: the old proof signs the old nonces.
    let replay = scram_begin(host, port, SCRAM_USER, SCRAM_PASS).await;
    let renonced = with_attribute(&recorded, 'r', &replay.nonce.clone());
    let rewritten = replay.finish_with(&renonced).await.refusal_code();
    // A nonce that does not start with this client's nonce (its first characters altered).
    let attempt = scram_begin(host, port, SCRAM_USER, SCRAM_PASS).await;
    let mut nonce = attempt.nonce.clone();
    nonce.replace_range(
        0..4,
        if nonce.starts_with("AAAA") {
            "BBBB"
        } else {
            "AAAA"
        },
    );
    let altered = with_attribute(&attempt.honest_final(), 'r', &nonce);
    let altered = attempt.finish_with(&altered).await.refusal_code();
    // The right nonce with a wrong proof.
    let attempt = scram_begin(host, port, SCRAM_USER, SCRAM_PASS).await;
    let flipped = with_flipped_proof(&attempt.honest_final());
    let wrong_proof = attempt.finish_with(&flipped).await.refusal_code();

    // PostgreSQL answers a nonce mismatch with 08P01 and a bad proof with 28P01; so must we.
    assert_eq!(replayed, "08P01", "replayed client-final");
    assert_eq!(rewritten, "28P01", "replayed proof under the new nonce");
    assert_eq!(altered, "08P01", "altered client nonce");
    assert_eq!(wrong_proof, "28P01", "flipped proof bit");
    let direct = scram_begin(
        shared_cluster().host(),
        shared_cluster().port(),
        SCRAM_USER,
        SCRAM_PASS,
    )
    .await;
    assert_eq!(
        direct.finish_with(&recorded).await.refusal_code(),
        replayed,
        "same as Postgres"
    );

    // None of that locked anything: the honest client still logs in.
    let again = scram_begin(host, port, SCRAM_USER, SCRAM_PASS).await;
    let last = again.honest_final();
    assert!(matches!(
        again.finish_with(&last).await,
        ScramEnd::LoggedIn(_)
    ));
}

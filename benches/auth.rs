//! Micro-benchmarks of a client login's CPU cost inside pgsluice: checking an md5 response, and
//! the server side of a SCRAM-SHA-256 exchange against a stored secret (no PBKDF2 for us, two
//! HMACs and a hash), next to the PBKDF2 a SCRAM client or a plaintext auth_file entry costs.
//! Drives the public sans-io `auth` API; the bytes a real client sends come from
//! postgres-protocol's SCRAM client. Run: `cargo bench --bench auth`.

use criterion::{criterion_group, criterion_main, Criterion};
use pgsluice::auth::{
    md5_response_from_secret, md5_secret, verify_md5, ScramSecret, ScramServer, Secret,
};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};

const USER: &str = "bench_user";
const PASSWORD: &str = "bench password";
const SALT: [u8; 4] = [1, 2, 3, 4];
/// PostgreSQL's default scram_iterations.
const ITERATIONS: u32 = 4096;
const SERVER_NONCE: [u8; 18] = [7; 18];

fn bench_md5(c: &mut Criterion) {
    let response = md5_response_from_secret(&md5_secret(USER, PASSWORD), SALT);
    let plain = Secret::Plain(PASSWORD.to_owned());
    let hashed = Secret::Md5(md5_secret(USER, PASSWORD));
    assert!(verify_md5(&plain, USER, SALT, response.as_bytes()));
    assert!(verify_md5(&hashed, USER, SALT, response.as_bytes()));
    let mut group = c.benchmark_group("md5");
    group.bench_function("verify_plain_secret", |b| {
        b.iter(|| {
            verify_md5(
                &plain,
                USER,
                SALT,
                std::hint::black_box(response.as_bytes()),
            )
        })
    });
    group.bench_function("verify_md5_secret", |b| {
        b.iter(|| {
            verify_md5(
                &hashed,
                USER,
                SALT,
                std::hint::black_box(response.as_bytes()),
            )
        })
    });
    group.finish();
}

/// One recorded client side of an exchange with our fixed server nonce: (client-first,
/// client-final). The client nonce is random, so the messages are made once and replayed.
fn recorded_exchange(secret: &ScramSecret) -> (Vec<u8>, Vec<u8>) {
    let mut client = ScramSha256::new(PASSWORD.as_bytes(), ChannelBinding::unsupported());
    let client_first = client.message().to_vec();
    let mut server = ScramServer::new(secret.clone(), SERVER_NONCE);
    let server_first = server.client_first(&client_first).expect("client-first");
    client.update(&server_first).expect("server-first");
    let client_final = client.message().to_vec();
    let outcome = server.client_final(&client_final).expect("proof verifies");
    client
        .finish(&outcome.server_final)
        .expect("server signature");
    (client_first, client_final)
}

fn bench_scram(c: &mut Criterion) {
    let secret = ScramSecret::from_password(PASSWORD, b"sixteen byte slt", ITERATIONS);
    let (client_first, client_final) = recorded_exchange(&secret);
    let mut group = c.benchmark_group("scram");
    group.bench_function("server_exchange_stored_secret", |b| {
        b.iter(|| {
            let mut server = ScramServer::new(secret.clone(), SERVER_NONCE);
            server.client_first(&client_first).expect("client-first");
            server.client_final(&client_final).expect("proof verifies")
        })
    });
    group.sample_size(10);
    group.bench_function("pbkdf2_4096_from_password", |b| {
        b.iter(|| {
            ScramSecret::from_password(
                std::hint::black_box(PASSWORD),
                b"sixteen byte slt",
                ITERATIONS,
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench_md5, bench_scram);
criterion_main!(benches);

//! COPY through pgsluice in both directions: ~10 MB in with tokio-postgres `copy_in` and back
//! out with `copy_out`, byte for byte (SHA-256 of the text stream) and row for row; bad data
//! mid-stream (22P02, the session goes on); CopyFail from a raw client (57014, then
//! ReadyForQuery); and psql's `\copy` round trip through the pooler.

use std::pin::pin;

use crate::common::raw::{tags, Frontend, RawClient};
use crate::common::*;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use sha2::{Digest, Sha256};

/// Rows of COPY text format for `(id int, body text, n bigint)`, deterministic and in
/// canonical form (the escapes COPY TO writes back: `\\`, `\t`, `\n`), with multi-byte UTF-8,
/// so what comes out must equal what went in byte for byte.
fn copy_text(rows: usize) -> Vec<u8> {
    const PIECES: [&str; 10] = [
        "alpha",
        "beta ",
        "é",
        "€uro",
        "😀",
        "\\\\",
        "\\t",
        "\\n",
        "Ωmega",
        "0123456789",
    ];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut out = Vec::with_capacity(rows * 110);
    for id in 1..=rows {
        let mut body = String::new();
        while body.len() < 80 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            body.push_str(PIECES[(state >> 33) as usize % PIECES.len()]);
        }
        let n = (state >> 11) as i64 - (1 << 52);
        out.extend_from_slice(format!("{id}\t{body}\t{n}\n").as_bytes());
    }
    out
}

async fn create_table(client: &tokio_postgres::Client, prefix: &str) -> String {
    let table = unique_name(prefix);
    client
        .batch_execute(&format!(
            "create table {table} (id int, body text, n bigint)"
        ))
        .await
        .unwrap();
    table
}

#[tokio::test]
async fn ten_megabytes_in_and_out_are_byte_exact() {
    let p = Pooler::start(PoolerConfig::new(shared_cluster()));
    let (client, _task) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    let table = create_table(&client, "copy_big").await;
    let rows = 100_000;
    let input = copy_text(rows);
    assert!(input.len() > 10_000_000, "payload is {} bytes", input.len());

    let mut sink = pin!(client
        .copy_in::<_, Bytes>(&format!("copy {table} from stdin"))
        .await
        .unwrap());
    // Chunk sizes that never line up with rows, one larger than any socket buffer.
    let mut rest = &input[..];
    for size in [1usize, 7, 4096, 65_537, 1 << 20].iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at((*size).min(rest.len()));
        sink.send(Bytes::copy_from_slice(chunk)).await.unwrap();
        rest = tail;
    }
    let copied = sink.as_mut().finish().await.unwrap();
    assert_eq!(copied, rows as u64, "COPY FROM count\n{}", p.log());

    let count: i64 = client
        .query_one(&format!("select count(*) from {table}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, rows as i64);

    let mut out = pin!(client
        .copy_out(&format!(
            "copy (select * from {table} order by id) to stdout"
        ))
        .await
        .unwrap());
    let (mut hasher, mut len, mut lines) = (Sha256::new(), 0usize, 0usize);
    while let Some(chunk) = out.next().await {
        let chunk = chunk.unwrap();
        hasher.update(&chunk);
        len += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    assert_eq!((len, lines), (input.len(), rows));
    assert_eq!(
        hasher.finalize()[..],
        Sha256::digest(&input)[..],
        "COPY TO returned different bytes"
    );
    let row = client.query_one("select 'after copy'", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "after copy");
}

#[tokio::test]
async fn bad_row_mid_stream_is_22p02_and_the_session_goes_on() {
    let p = Pooler::start(PoolerConfig::new(shared_cluster()));
    let (client, _task) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    let table = create_table(&client, "copy_bad").await;
    let good = copy_text(20_000);
    let lines: Vec<&[u8]> = good.split_inclusive(|b| *b == b'\n').collect();
    let bad_line = 5_000;

    let mut sink = pin!(client
        .copy_in::<_, Bytes>(&format!("copy {table} from stdin"))
        .await
        .unwrap());
    let mut failed = None;
    for (i, line) in lines.iter().enumerate() {
        let data = if i + 1 == bad_line {
            Bytes::from_static(b"notanint\tx\t1\n")
        } else {
            Bytes::copy_from_slice(line)
        };
        // Postgres reports the error as soon as it sees the line; the client may learn of it
        // while still sending or only at the end.
        if let Err(e) = sink.send(data).await {
            failed = Some(e);
            break;
        }
    }
    let err = match failed {
        Some(e) => e,
        None => sink.as_mut().finish().await.unwrap_err(),
    };
    let db = err.as_db_error().unwrap_or_else(|| panic!("{err:?}"));
    assert_eq!(db.code().code(), "22P02", "{}", db.message());
    assert!(
        db.where_()
            .unwrap_or("")
            .contains(&format!("line {bad_line}")),
        "error context names the line: {:?}",
        db.where_()
    );
    let row = client
        .query_one(&format!("select count(*) from {table}"), &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 0, "the failed COPY stored nothing");
}

#[tokio::test]
async fn copy_fail_from_the_client_ends_the_copy() {
    let p = Pooler::start(PoolerConfig::new(shared_cluster()));
    let mut c = RawClient::connect(&p, MD5_USER, MD5_PASS, &[]).await;
    let table = unique_name("copy_fail");
    let msgs = c.query(&format!("create table {table} (n int)")).await;
    assert_eq!(tags(&msgs), "CZ");

    c.send(Frontend::new().query(&format!("copy {table} from stdin")))
        .await;
    assert_eq!(c.recv().await.tag, b'G', "CopyInResponse");
    c.send(
        Frontend::new()
            .copy_data(b"1\n2\n")
            .copy_data(b"3\n")
            .copy_fail("client gave up"),
    )
    .await;
    let msgs = c.recv_until_ready().await;
    assert_eq!(tags(&msgs), "EZ", "{msgs:?}");
    assert_eq!(msgs[0].sqlstate().as_deref(), Some("57014"));
    assert_eq!(
        msgs[0].field(b'M').as_deref(),
        Some("COPY from stdin failed: client gave up")
    );
    assert_eq!(&msgs[1].body[..], b"I");
    let count = c
        .query_value(&format!("select count(*) from {table}"))
        .await;
    assert_eq!(count, "0");

    // A COPY after the failed one works on the same connection.
    c.send(Frontend::new().query(&format!("copy {table} from stdin")))
        .await;
    assert_eq!(c.recv().await.tag, b'G');
    c.send(Frontend::new().copy_data(b"4\n5\n").copy_done())
        .await;
    let msgs = c.recv_until_ready().await;
    assert_eq!(tags(&msgs), "CZ", "{msgs:?}");
    assert_eq!(msgs[0].cstrings(), ["COPY 2"]);
}

#[tokio::test]
async fn psql_backslash_copy_round_trips_a_file() {
    let p = Pooler::start(PoolerConfig::new(shared_cluster()));
    let (client, _task) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    let table = create_table(&client, "copy_psql").await;
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.txt"), dir.path().join("out.txt"));
    let data = copy_text(5_000);
    std::fs::write(&input, &data).unwrap();

    let copy_in = format!("\\copy {table} from '{}'", input.display());
    let copy_out = format!(
        "\\copy (select * from {table} order by id) to '{}'",
        output.display()
    );
    let out = p.psql(
        MD5_USER,
        MD5_PASS,
        TEST_DB,
        &["-c", &copy_in, "-c", &copy_out],
    );
    assert!(
        out.status.success(),
        "psql failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        p.log()
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "COPY 5000\nCOPY 5000\n"
    );
    assert!(
        std::fs::read(&output).unwrap() == data,
        "\\copy out differs from in"
    );
}

/// tokio-postgres sends Bind, Execute and Sync together, then the data, CopyDone and a second
/// Sync; Postgres ignores the first Sync (it arrives in copy-in mode). Counting it once made
/// pgsluice wait for a ReadyForQuery that never comes: in transaction mode the server was
/// never released, and the next reply pgsluice answers itself (CloseComplete of the dropped
/// statement) came out after a ReadyForQuery, which tokio-postgres rejects ("unexpected
/// message"). Found by the soak.
#[tokio::test]
async fn extended_copy_in_releases_the_server_in_transaction_mode() {
    let p = Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler("pool_mode = \"transaction\"\ndefault_pool_size = 1"),
    );
    let (client, task) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    let table = create_table(&client, "copy_tx").await;
    for round in 0..3 {
        let mut sink = pin!(client
            .copy_in::<_, Bytes>(&format!("copy {table} (id, body, n) from stdin"))
            .await
            .unwrap());
        sink.send(Bytes::from(format!("{round}\tx\t1\n")))
            .await
            .unwrap();
        assert_eq!(sink.as_mut().finish().await.unwrap(), 1);
    }
    // The only server must be free again: another client gets it.
    let (other, _t) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    let count = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        other.query_one(&format!("select count(*) from {table}"), &[]),
    )
    .await
    .unwrap_or_else(|_| panic!("the server was never released after COPY\n{}", p.log()))
    .unwrap();
    assert_eq!(count.get::<_, i64>(0), 3);
    // And the copying client's connection is still in step with its replies.
    let row = client.query_one("select 'in step'", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "in step");
    assert!(!task.is_finished(), "connection ended: {:?}", task.await);
}

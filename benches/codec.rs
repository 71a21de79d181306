//! Micro-benchmark of the relay's framing: how many backend messages per second the scanner
//! finds in a recorded-shape stream (RowDescription, many DataRows, CommandComplete,
//! ReadyForQuery), fed in 8 KiB reads as the pump sees them; and both directions of 1000
//! `pgbench -S -M extended` transactions (Parse/Bind/Describe/Execute/Sync and ParseComplete
//! .. ReadyForQuery), with the tags the relay reads whole. Run: `cargo bench --bench codec`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pgsluice::protocol::scanner::{Scanned, Scanner};

fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// A `select` result of `rows` rows of two short text columns, as Postgres sends it.
fn result_stream(rows: usize) -> (Vec<u8>, u64) {
    let mut s = message(b'T', &[0u8; 50]);
    let row = message(b'D', b"\x00\x02\x00\x00\x00\x05hello\x00\x00\x00\x0512345");
    for _ in 0..rows {
        s.extend_from_slice(&row);
    }
    s.extend(message(b'C', b"SELECT 1000\0"));
    s.extend(message(b'Z', b"I"));
    (s, rows as u64 + 3)
}

/// `transactions` pgbench -S extended exchanges: (frontend stream, backend stream, messages
/// in each).
fn pgbench_extended(transactions: usize) -> (Vec<u8>, Vec<u8>, u64, u64) {
    let sql = b"SELECT abalance FROM pgbench_accounts WHERE aid = $1;\0";
    let mut parse = b"\0".to_vec();
    parse.extend_from_slice(sql);
    parse.extend_from_slice(&0u16.to_be_bytes());
    let bind = b"\0\0\x00\x00\x00\x01\x00\x00\x00\x0512345\x00\x00";
    let mut request = message(b'P', &parse);
    request.extend(message(b'B', bind));
    request.extend(message(b'D', b"P\0"));
    request.extend(message(b'E', b"\0\0\0\0\0"));
    request.extend(message(b'S', b""));
    let mut reply = message(b'1', b"");
    reply.extend(message(b'2', b""));
    reply.extend(message(b'T', &[0u8; 29]));
    reply.extend(message(b'D', b"\x00\x01\x00\x00\x00\x041234"));
    reply.extend(message(b'C', b"SELECT 1\0"));
    reply.extend(message(b'Z', b"I"));
    let n = transactions as u64;
    (
        request.repeat(transactions),
        reply.repeat(transactions),
        5 * n,
        6 * n,
    )
}

/// Frontend tags the relay reads whole: statement names (prepared statements in transaction
/// pooling) and Terminate.
fn frontend_inspected(tag: u8) -> bool {
    matches!(tag, b'P' | b'B' | b'D' | b'C' | b'X')
}

/// Backend tags the relay reads whole: ReadyForQuery, ParameterStatus, ErrorResponse.
fn backend_inspected(tag: u8) -> bool {
    matches!(tag, b'Z' | b'S' | b'E')
}

fn scan_all(stream: &[u8]) -> usize {
    scan_with(stream, |t| t == b'Z')
}

fn scan_with(stream: &[u8], must_buffer: fn(u8) -> bool) -> usize {
    let mut scanner = Scanner::new(1 << 30);
    let mut seen = 0;
    // Bytes the pump would still hold: a header or a must-see message split across reads.
    let mut held: Vec<u8> = Vec::new();
    for chunk in stream.chunks(8192) {
        held.extend_from_slice(chunk);
        let mut pos = 0;
        loop {
            match scanner
                .step(&held[pos..], must_buffer)
                .expect("valid stream")
            {
                Scanned::Whole { len, .. } => {
                    pos += len;
                    seen += 1;
                }
                Scanned::Start { consumed, .. } => {
                    pos += consumed;
                    seen += 1;
                }
                Scanned::Continue { consumed } => pos += consumed,
                Scanned::NeedMore => break,
            }
        }
        held.drain(..pos);
    }
    assert!(held.is_empty() && scanner.at_boundary());
    seen
}

fn bench_scanner(c: &mut Criterion) {
    let (stream, messages) = result_stream(1000);
    assert_eq!(
        scan_all(&stream) as u64,
        messages,
        "every message found exactly once"
    );
    let mut group = c.benchmark_group("scanner");
    group.throughput(Throughput::Elements(messages));
    group.bench_function("select_1000_rows", |b| {
        b.iter(|| scan_all(std::hint::black_box(&stream)))
    });
    group.finish();
}

fn bench_pgbench_extended(c: &mut Criterion) {
    let (request, reply, request_msgs, reply_msgs) = pgbench_extended(1000);
    assert_eq!(scan_with(&request, frontend_inspected) as u64, request_msgs);
    assert_eq!(scan_with(&reply, backend_inspected) as u64, reply_msgs);
    let mut group = c.benchmark_group("scanner_pgbench_extended");
    group.throughput(Throughput::Elements(request_msgs));
    group.bench_function("frontend_1000_tx", |b| {
        b.iter(|| scan_with(std::hint::black_box(&request), frontend_inspected))
    });
    group.throughput(Throughput::Elements(reply_msgs));
    group.bench_function("backend_1000_tx", |b| {
        b.iter(|| scan_with(std::hint::black_box(&reply), backend_inspected))
    });
    group.finish();
}

criterion_group!(benches, bench_scanner, bench_pgbench_extended);
criterion_main!(benches);

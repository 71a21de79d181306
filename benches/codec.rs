//! Micro-benchmark of the relay's framing: how many backend messages per second the scanner
//! finds in a recorded-shape stream (RowDescription, many DataRows, CommandComplete,
//! ReadyForQuery), fed in 8 KiB reads as the pump sees them. Run: `cargo bench --bench codec`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pgsluice::protocol::scanner::{Scanner, Step};

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

fn scan_all(stream: &[u8]) -> usize {
    let mut scanner = Scanner::new(1 << 30);
    let mut seen = 0;
    // Bytes the pump would still hold: a header or a must-see message split across reads.
    let mut held: Vec<u8> = Vec::new();
    for chunk in stream.chunks(8192) {
        held.extend_from_slice(chunk);
        let mut pos = 0;
        loop {
            match scanner
                .step(&held[pos..], |t| t == b'Z')
                .expect("valid stream")
            {
                Step::Whole { len, .. } => {
                    pos += len;
                    seen += 1;
                }
                Step::Start { consumed, .. } => {
                    pos += consumed;
                    seen += 1;
                }
                Step::Continue { consumed } => pos += consumed,
                Step::NeedMore => break,
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

criterion_group!(benches, bench_scanner);
criterion_main!(benches);

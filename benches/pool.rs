//! Micro-benchmark of pool checkout/checkin under contention: client threads share
//! one pool's ledger (the lock every checkout and release takes), with as many clients as
//! servers (no waiting) and 10x more clients than servers (FIFO waiters and handoffs).
//! Throughput is checkout/checkin pairs per second. Run: `cargo bench --bench pool`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const ROUNDS: usize = 2_000;

fn contention(c: &mut Criterion) {
    let mut group = c.benchmark_group("pool_checkout_checkin");
    for (clients, servers) in [(1, 1), (4, 4), (20, 20), (20, 2), (100, 10)] {
        group.throughput(Throughput::Elements((clients * ROUNDS) as u64));
        group.bench_function(format!("{clients}_clients_{servers}_servers"), |b| {
            b.iter(|| pgsluice::bench_pool_contention(clients, servers, ROUNDS))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = contention
}
criterion_main!(benches);

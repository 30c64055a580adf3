//! Criterion benchmark of a ring lookup (one per routed request): the owning shard of a
//! product on a 3- and a 7-shard ring, and its 3 owners (the replica walk).
//! Run: cargo bench -p svc-client --bench ring

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use svc_client::ShardRing;

fn bench(c: &mut Criterion) {
    let three = ShardRing::new(["inv-0", "inv-1", "inv-2"]);
    let seven = ShardRing::new((0..7).map(|i| format!("inv-{i}")));
    // Cycle through ids so the branch predictor does not learn one answer.
    let mut id = 0u64;
    let mut next = move || {
        id = id % 1_000_000 + 1;
        id
    };
    c.bench_function("shard_for_product (3 shards)", |b| {
        b.iter(|| three.shard_for_product(black_box(next())).map(str::len))
    });
    c.bench_function("shard_for_product (7 shards)", |b| {
        b.iter(|| seven.shard_for_product(black_box(next())).map(str::len))
    });
    c.bench_function("owners x3 (7 shards)", |b| {
        b.iter(|| seven.owners(black_box(next()), 3).len())
    });
    c.bench_function("ShardRing::new (7 shards)", |b| {
        b.iter(|| {
            ShardRing::new(black_box([
                "inv-0", "inv-1", "inv-2", "inv-3", "inv-4", "inv-5", "inv-6",
            ]))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

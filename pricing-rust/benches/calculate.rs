//! Criterion benchmark of the price calculation: the rules alone, the rules plus the JSON
//! answer (what a request costs beyond HTTP), and a 1,000-line batch.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use pricing::pricing::{PriceInput, quote};
use pricing::routes::calculate::answer_for;
use rust_decimal::Decimal;

fn seed() -> PriceInput {
    PriceInput {
        base_price: Decimal::new(17300, 2),
        quantity_available: 223,
        quantity: 1,
        recent_demand: 0,
    }
}

fn bench(c: &mut Criterion) {
    let input = seed();
    c.bench_function("quote (rules only)", |b| {
        b.iter(|| quote(black_box(&input)))
    });
    c.bench_function("quote + JSON answer", |b| {
        b.iter(|| serde_json::to_vec(&answer_for(123, black_box(&input))).map(|v| v.len()))
    });
    let batch: Vec<PriceInput> = (0..1000u64)
        .map(|i| PriceInput {
            base_price: Decimal::new(100 + i as i64 * 37, 2),
            quantity_available: i * 3,
            quantity: (i % 150 + 1) as u32,
            recent_demand: i % 30,
        })
        .collect();
    c.bench_function("quote x 1000 (batch)", |b| {
        b.iter(|| {
            batch
                .iter()
                .map(|i| quote(black_box(i)).final_price)
                .sum::<Decimal>()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

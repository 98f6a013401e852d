//! Parse + verify speed of the ISBT 128 core (issue #2). Method and results: BENCHMARKS.md.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

use coi_agent::isbt128::message;

const DIN: &[u8] = b"=G12341765432170";
const COMPOUND: &[u8] =
    b"=+06000=/A9999XYZ100T0476=,000025=A99971712345600=>019032=}017032&,1000000000000XYZ123";

fn parse(c: &mut Criterion) {
    // Fail loudly if the vectors stop being valid: timing an error path would be meaningless.
    assert!(message::parse(DIN).is_ok());
    assert_eq!(
        message::parse(COMPOUND).map(|m| m.structures.len()).ok(),
        Some(7)
    );

    c.bench_function("parse+verify DIN (type 3 flags)", |b| {
        b.iter(|| message::parse(black_box(DIN)).map(|m| m.structures.len()))
    });
    c.bench_function("parse+verify 6-structure compound message", |b| {
        b.iter(|| message::parse(black_box(COMPOUND)).map(|m| m.structures.len()))
    });
}

criterion_group!(benches, parse);
criterion_main!(benches);

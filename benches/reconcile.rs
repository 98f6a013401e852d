//! Reconciliation of one scan against 10 000 cached orders (issue #6; target <= 50 us).
//! Results and method: BENCHMARKS.md.

use std::collections::HashSet;
use std::hint::black_box;

use coi_agent::isbt128::message;
use coi_agent::orders::OrderBook;
use coi_agent::reconcile::{Context, ScanRead, Step, reconcile};
use criterion::{Criterion, criterion_group, criterion_main};

fn orders(n: u32) -> OrderBook {
    let orders: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "coi": format!("CHA999925{i:06}"), "order_id": format!("ORD-{i}"), "status": "shipped",
                "patient": {"family_name": "Example", "given_name": "Pat", "date_of_birth": "1984-02-29", "id": "PT", "id_label": "ID"},
                "therapy": {"name": "T", "sponsor": "S", "protocol": "P"},
                "product": {"code": "S1295", "collection_type": "1", "description": "APHERESIS"},
                "collection": {"din": format!("A999925{i:06}"), "facility": {"fin": "A9999", "name": "A", "site_id": "site-apheresis-1"},
                               "scheduled_for": "2026-06-02T08:00:00-04:00", "time_zone": "America/New_York", "bags": 2},
                "manufacturing": {"facility": {"fin": "A9998", "name": "L", "site_id": "site-lab-1"}},
                "expires_at": "2030-01-01T00:00:00Z"
            })
        })
        .collect();
    let (book, refused) =
        OrderBook::from_json(&serde_json::json!({ "orders": orders }).to_string())
            .expect("a valid order list");
    assert!(refused.is_empty());
    book
}

fn bench(c: &mut Criterion) {
    let book = orders(10_000);
    let received = HashSet::new();
    let ctx = Context {
        site_id: "site-lab-1",
        step: Step::Receipt,
        role: None,
        now: "2026-06-03T12:00:00Z".parse().expect("a time"),
        expected: None,
        received: &received,
        freshness: None,
    };
    // The DataMatrix of bag 2 of order 7 345: DIN with container flags, product code, COI.
    let scan = b"]d1=+03000=A99992500734502=<S1295100&/CHA999925007345";
    let parsed = message::parse(scan).expect("a valid scan");
    assert!(reconcile(ScanRead::Parsed(&parsed), &book, &ctx).is_match());

    c.bench_function("reconcile one scan against 10 000 orders", |b| {
        b.iter(|| reconcile(ScanRead::Parsed(black_box(&parsed)), black_box(&book), &ctx))
    });
    c.bench_function("parse + reconcile one scan against 10 000 orders", |b| {
        b.iter(|| {
            let message = message::parse(black_box(scan)).expect("valid");
            reconcile(ScanRead::Parsed(&message), black_box(&book), &ctx).is_match()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

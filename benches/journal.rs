//! Journal and outbox throughput (issue #6): durable appends one per transaction and grouped,
//! and draining 10 000 events to a central service on loopback (target <= 10 s). A load script
//! (harness = false): the numbers are rates over many operations. Results and method:
//! BENCHMARKS.md. Run with `cargo bench --bench journal`.

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a measurement script: fail loudly, print

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use coi_agent::agent::{JournalOwner, drain};
use coi_agent::central::CentralClient;
use coi_agent::custody::NewEvent;
use coi_agent::isbt128::coi::CoiId;
use coi_agent::journal::{Journal, ScanRecord, utc_text};
use coi_agent::outbox::RetryPolicy;
use coi_agent::reconcile::{Outcome, Verdict};

fn main() {
    let dir = std::env::temp_dir().join(format!("coi-agent-bench-journal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut journal = Journal::open(&dir.join("journal.sqlite")).unwrap();
    let coi = CoiId::parse("CHA999925000042").unwrap();
    let verdict = Verdict {
        coi: Some(coi),
        bag: Some(1),
        bags: Some(2),
        order_id: Some("ORD-1".into()),
        ..Verdict::bare(Outcome::Match, "MATCH: bag 1 of 2".into())
    };
    let make = |i: usize| {
        let event_id = uuid::Uuid::now_v7().to_string();
        let coi = format!("CHA999925{:06}", i % 100);
        let payload = serde_json::json!({"event_id": event_id, "type": "bag_received", "coi": coi, "bag": 1, "site_id": "site-lab-1", "workstation": "bench", "at": utc_text(jiff::Timestamp::now())});
        NewEvent {
            event_id,
            kind: "bag_received".into(),
            coi,
            payload,
        }
    };
    let raw = b"]d1=+03000=A99992512345601=<S1295100&/CHA999925000042";

    // One record (scan + audit entry + event) per durable transaction.
    let n = 500;
    let start = Instant::now();
    for i in 0..n {
        let at = utc_text(jiff::Timestamp::now());
        journal
            .record_scan(&record(&at, &verdict, raw), &[make(i)])
            .unwrap();
    }
    let single = start.elapsed();
    println!(
        "durable append, one per transaction: {n} records in {single:?}: {:.0} records/s, {:.2} ms each",
        n as f64 / single.as_secs_f64(),
        single.as_secs_f64() * 1000.0 / n as f64
    );

    // Grouped: 100 records per transaction.
    let groups = 95;
    let start = Instant::now();
    for g in 0..groups {
        let at = utc_text(jiff::Timestamp::now());
        let batch: Vec<_> = (0..100)
            .map(|i| (record(&at, &verdict, raw), vec![make(n + g * 100 + i)]))
            .collect();
        journal.record_scans(&batch).unwrap();
    }
    let grouped = start.elapsed();
    let m = groups * 100;
    println!(
        "durable append, 100 per transaction: {m} records in {grouped:?}: {:.0} records/s",
        m as f64 / grouped.as_secs_f64()
    );
    let pending = journal.outbox_status().unwrap().pending;
    assert_eq!(pending as usize, n + m);

    // Drain all 10 000 events to a central service on loopback.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let received = Arc::new(AtomicUsize::new(0));
    let url = runtime.block_on(start_central(received.clone()));
    let client = CentralClient::new(&url, "bench-token".into(), Duration::from_secs(5)).unwrap();
    let owner = JournalOwner::start(
        &dir.join("journal.sqlite"),
        "site-lab-1",
        "bench",
        coi_agent::reconcile::PAIR_WINDOW,
    )
    .unwrap();
    let start = Instant::now();
    let total = runtime
        .block_on(drain(
            &owner,
            &client,
            RetryPolicy::default(),
            Some(Instant::now() + Duration::from_secs(120)),
        ))
        .unwrap();
    let drained = start.elapsed();
    assert_eq!(total.delivered, n + m);
    assert_eq!(received.load(Ordering::Relaxed), n + m);
    assert_eq!(journal.outbox_status().unwrap().pending, 0);
    println!(
        "outbox drain: {} events delivered in {drained:?} ({:.0} events/s)",
        total.delivered,
        total.delivered as f64 / drained.as_secs_f64()
    );
    assert!(journal.verify_audit().unwrap().is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

fn record<'a>(at: &'a str, verdict: &'a Verdict, raw: &'a [u8]) -> ScanRecord<'a> {
    ScanRecord {
        at,
        source: "bench",
        raw,
        parse_error: None,
        verdict,
        site_id: "site-lab-1",
        step: "receipt",
        operator: None,
    }
}

/// The smallest central service that honours the event contract: 201 naming the event.
async fn start_central(received: Arc<AtomicUsize>) -> String {
    let app = axum::Router::new().route(
        "/v1/events",
        axum::routing::post(move |headers: HeaderMap, _body: String| {
            let received = received.clone();
            async move {
                let key = headers
                    .get("idempotency-key")
                    .and_then(|k| k.to_str().ok())
                    .unwrap()
                    .to_owned();
                received.fetch_add(1, Ordering::Relaxed);
                (
                    StatusCode::CREATED,
                    axum::Json(serde_json::json!({ "event_id": key })),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

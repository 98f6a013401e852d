//! The outbox against a real HTTP test central (issue #6): every event delivered exactly once
//! in effect and in order per COI, through an outage; refusals parked for a person; a crash
//! between posting and recording only causes a repeat the central service recognises.

#![allow(clippy::unwrap_used)] // test helpers fail loudly; that is their job

mod support;

use std::time::{Duration, Instant};

use coi_agent::agent::{JournalOwner, deliver_round, drain};
use coi_agent::central::{CentralClient, CentralError};
use coi_agent::custody::NewEvent;
use coi_agent::isbt128::coi::CoiId;
use coi_agent::journal::{Journal, ScanRecord, utc_text};
use coi_agent::outbox::RetryPolicy;
use coi_agent::reconcile::{Outcome, Verdict};
use support::central::{Central, Mode, TOKEN};
use support::tempdb::TempDb;

const FAST: RetryPolicy = RetryPolicy {
    first: Duration::from_millis(20),
    cap: Duration::from_millis(200),
};

fn coi(i: usize) -> String {
    format!("CHA999925{:06}", i)
}

/// The journal's owner at the lab workstation.
fn start_owner(db: &TempDb) -> Result<JournalOwner, coi_agent::journal::JournalError> {
    JournalOwner::start(
        &db.0,
        "site-lab-1",
        "ws-1",
        coi_agent::reconcile::PAIR_WINDOW,
    )
}

/// Queues `n` events spread over `cois` COIs, each in its own scan record (as a day of receipts
/// would), and returns the event ids per COI in the order they were queued.
fn queue(
    journal: &mut Journal,
    n: usize,
    cois: usize,
) -> std::collections::HashMap<String, Vec<String>> {
    let mut queued: std::collections::HashMap<String, Vec<String>> = Default::default();
    for i in 0..n {
        let coi = coi(i % cois);
        let verdict = Verdict {
            coi: Some(CoiId::parse(&coi).unwrap()),
            bag: Some(1),
            ..Verdict::bare(Outcome::Match, "MATCH".into())
        };
        let at = utc_text(jiff::Timestamp::now());
        let event_id = uuid::Uuid::now_v7().to_string();
        let payload = serde_json::json!({
            "event_id": event_id, "type": "bag_received", "coi": coi, "bag": 1, "bags": 1,
            "site_id": "site-lab-1", "workstation": "lab-ws-1", "at": at,
        });
        let event = NewEvent {
            event_id: event_id.clone(),
            kind: "bag_received".into(),
            coi: coi.clone(),
            payload,
        };
        let scan = ScanRecord {
            at: &at,
            source: "test",
            raw: b"&/",
            parse_error: None,
            verdict: &verdict,
            site_id: "site-lab-1",
            step: "receipt",
            operator: None,
        };
        journal.record_scan(&scan, &[event]).unwrap();
        queued.entry(coi).or_default().push(event_id);
    }
    queued
}

fn client(central: &Central, token: &str) -> CentralClient {
    CentralClient::new(&central.url, token.to_owned(), Duration::from_secs(2)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_events_survive_an_outage_and_arrive_once_in_order() {
    let db = TempDb::new("outage");
    let mut journal = Journal::open(&db.0).unwrap();
    let owner = start_owner(&db).unwrap();
    let central = Central::start().await;
    let client = client(&central, TOKEN);
    central.set_mode(Mode::Down);
    let queued = queue(&mut journal, 1000, 37);

    // Down: rounds only reschedule; nothing is lost and nothing overtakes.
    for _ in 0..3 {
        drain(&owner, &client, FAST, None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(journal.outbox_status().unwrap().pending, 1000);
    assert!(central.recorded().events.is_empty());

    // Back up: everything goes, once, in order per COI.
    central.set_mode(Mode::Up);
    let total = drain(
        &owner,
        &client,
        FAST,
        Some(Instant::now() + Duration::from_secs(60)),
    )
    .await
    .unwrap();
    assert_eq!(total.delivered, 1000);
    let status = journal.outbox_status().unwrap();
    assert_eq!(
        (status.pending, status.delivered, status.parked.len()),
        (0, 1000, 0)
    );
    assert_eq!(central.recorded().events.len(), 1000);
    assert_eq!(
        central.per_coi(),
        queued,
        "every COI's events arrive in the order they were queued"
    );
    assert!(journal.verify_audit().unwrap().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_posting_and_recording_repeats_the_post_harmlessly() {
    let db = TempDb::new("repeat");
    let mut journal = Journal::open(&db.0).unwrap();
    let owner = start_owner(&db).unwrap();
    let central = Central::start().await;
    let client = client(&central, TOKEN);
    queue(&mut journal, 5, 2);
    // Post the first due events as a delivery round would, then "crash" before recording.
    let groups = journal
        .due_events(&utc_text(jiff::Timestamp::now()), 10, 10)
        .unwrap();
    for event in groups.iter().flatten() {
        client
            .post_event(&event.event_id, &event.payload)
            .await
            .unwrap();
    }
    drop(journal);
    drop(owner);
    let owner = start_owner(&db).unwrap();
    let total = drain(&owner, &client, FAST, None).await.unwrap();
    assert_eq!(total.delivered, 5);
    let recorded = central.recorded();
    assert_eq!(
        (recorded.events.len(), recorded.duplicates),
        (5, 5),
        "repeats recognised, recorded once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_event_is_parked_for_a_person_and_the_rest_go_on() {
    let db = TempDb::new("parked");
    let mut journal = Journal::open(&db.0).unwrap();
    let owner = start_owner(&db).unwrap();
    let central = Central::start().await;
    let client = client(&central, TOKEN);
    let queued = queue(&mut journal, 3, 1);
    let refused = queued[&coi(0)][1].clone();
    central.recorded().refuse.push(refused.clone());
    let total = drain(&owner, &client, FAST, None).await.unwrap();
    assert_eq!((total.delivered, total.parked), (2, 1));
    let status = journal.outbox_status().unwrap();
    assert_eq!(status.parked.len(), 1);
    assert_eq!(status.parked[0].event_id, refused);
    assert!(
        status.parked[0]
            .error
            .contains("422: unknown bag for this order"),
        "{:?}",
        status.parked[0]
    );
    let audit = journal.audit_entries(None).unwrap();
    assert!(audit.iter().any(|e| e.kind == "event_parked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_or_a_stalled_service_delays_but_never_parks() {
    let db = TempDb::new("token");
    let mut journal = Journal::open(&db.0).unwrap();
    let owner = start_owner(&db).unwrap();
    let central = Central::start().await;
    queue(&mut journal, 4, 2);
    let round = deliver_round(&owner, &client(&central, "wrong"), FAST)
        .await
        .unwrap();
    assert_eq!(
        (round.delivered, round.retried, round.parked),
        (0, 2, 0),
        "one retry per COI: later events wait"
    );
    central.set_mode(Mode::Stall(Duration::from_secs(5)));
    tokio::time::sleep(Duration::from_millis(250)).await;
    let slow =
        CentralClient::new(&central.url, TOKEN.to_owned(), Duration::from_millis(300)).unwrap();
    let round = deliver_round(&owner, &slow, FAST).await.unwrap();
    assert_eq!(
        (round.delivered, round.retried, round.parked),
        (0, 2, 0),
        "both COIs' heads were tried, timed out and kept"
    );
    central.set_mode(Mode::Up);
    let total = drain(
        &owner,
        &client(&central, TOKEN),
        FAST,
        Some(Instant::now() + Duration::from_secs(30)),
    )
    .await
    .unwrap();
    assert_eq!(total.delivered, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_unavailable_not_refused() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = CentralClient::new(
        &format!("http://127.0.0.1:{port}"),
        TOKEN.into(),
        Duration::from_secs(1),
    )
    .unwrap();
    let err = client.post_event("e", "{}").await.unwrap_err();
    assert!(matches!(err, CentralError::Unavailable(_)), "{err}");
}

/// Issue #13: a redirect (followed as a GET, it "succeeded" and lost the event), a 200 that is
/// an HTML page, and a 404 from a wrong path keep every event pending with the reason — none is
/// counted as recorded, none is parked — and all go once the service answers properly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r13_redirects_html_and_404_never_count_as_recorded() {
    let db = TempDb::new("redirects");
    let mut journal = Journal::open(&db.0).unwrap();
    let owner = start_owner(&db).unwrap();
    let central = Central::start().await;
    let client = client(&central, TOKEN);
    queue(&mut journal, 6, 3);
    for (mode, says) in [
        (Mode::Redirect(301), "301 redirected"),
        (Mode::Redirect(302), "302 redirected"),
        (Mode::Redirect(303), "303 redirected"),
        (Mode::Redirect(307), "307 redirected"),
        (Mode::Redirect(308), "308 redirected"),
        (Mode::Html, "does not name the event"),
        (Mode::NotFound, "404"),
    ] {
        central.set_mode(mode);
        journal.make_pending_due().unwrap();
        let round = deliver_round(&owner, &client, FAST).await.unwrap();
        assert_eq!((round.delivered, round.parked), (0, 0), "{mode:?}");
        let status = journal.outbox_status().unwrap();
        assert_eq!((status.pending, status.parked.len()), (6, 0), "{mode:?}");
        let reason: Option<String> = journal
            .connection()
            .query_row(
                "SELECT last_error FROM outbox WHERE state = 'pending' AND last_error IS NOT NULL ORDER BY id LIMIT 1",
                [],
                |row| row.get(0),
            )
            .unwrap();
        let reason = reason.unwrap();
        assert!(reason.contains(says), "{mode:?}: {reason}");
        assert!(central.recorded().events.is_empty(), "{mode:?}");
    }
    central.set_mode(Mode::Up);
    journal.make_pending_due().unwrap();
    let total = drain(
        &owner,
        &client,
        FAST,
        Some(Instant::now() + Duration::from_secs(30)),
    )
    .await
    .unwrap();
    assert_eq!(total.delivered, 6);
    assert_eq!(central.recorded().events.len(), 6);
}

/// Issue #13: a parked event is not stuck. Its reason is listed; once the cause is fixed it can
/// be requeued and goes; or a person closes it deliberately, with the reason, audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r13_parked_events_are_requeued_or_closed_by_a_person() {
    use coi_agent::journal::outbox::NotParked;
    let db = TempDb::new("requeue");
    let mut journal = Journal::open(&db.0).unwrap();
    let owner = start_owner(&db).unwrap();
    let central = Central::start().await;
    let client = client(&central, TOKEN);
    let queued = queue(&mut journal, 2, 1);
    let events = &queued[&coi(0)];
    central.recorded().refuse.extend(events.iter().cloned());
    let total = drain(&owner, &client, FAST, None).await.unwrap();
    assert_eq!(total.parked, 2);
    let waiting = journal.waiting_events(10).unwrap();
    assert_eq!(waiting.len(), 2);
    assert!(
        waiting
            .iter()
            .all(|e| e.state == "parked"
                && e.last_error.as_deref().is_some_and(|r| r.contains("422")))
    );

    // Fixed at central: the first goes again and is delivered.
    central.recorded().refuse.clear();
    assert_eq!(
        journal.requeue_parked(Some(&events[..1]), None).unwrap(),
        Ok(1)
    );
    let total = drain(&owner, &client, FAST, None).await.unwrap();
    assert_eq!(total.delivered, 1);
    // The second is closed by a person: never sent, no longer waiting, audited.
    assert_eq!(
        journal
            .close_parked(&events[1], "entered by hand at central", Some("it-1"))
            .unwrap(),
        Ok(())
    );
    assert_eq!(journal.outbox_status().unwrap().parked.len(), 0);
    assert!(journal.waiting_events(10).unwrap().is_empty());
    assert_eq!(
        journal.requeue_parked(Some(&events[1..]), None).unwrap(),
        Err((events[1].clone(), NotParked::State("closed".into())))
    );
    assert_eq!(
        journal.close_parked("no-such-event", "x", None).unwrap(),
        Err(NotParked::Unknown)
    );
    assert!(
        journal
            .audit_entries(None)
            .unwrap()
            .iter()
            .any(|e| e.kind == "event_closed" && e.details.contains("entered by hand"))
    );
    assert!(journal.verify_audit().unwrap().is_ok());
    assert_eq!(central.recorded().events.len(), 1);
}

/// Issue #13: 1,000 events through a central service that misbehaves at random — 500s,
/// redirects, 200 HTML pages, stalls past the timeout, answers lost after recording — for a
/// while (15 s here, `COI_CHAOS_SECS` to soak longer), then recovers: every event is recorded
/// exactly once, and every COI's events in the order they were queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r13_a_thousand_events_through_chaos_arrive_once_in_order() {
    let db = TempDb::new("chaos");
    let mut journal = Journal::open(&db.0).unwrap();
    let owner = start_owner(&db).unwrap();
    let central = Central::start().await;
    let client = client(&central, TOKEN);
    let queued = queue(&mut journal, 1000, 37);
    central.set_mode(Mode::Chaos);
    let secs = std::env::var("COI_CHAOS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let chaos = drain(
        &owner,
        &client,
        FAST,
        Some(Instant::now() + Duration::from_secs(secs)),
    )
    .await
    .unwrap();
    let during = central.recorded().events.len();
    central.set_mode(Mode::Up);
    drain(
        &owner,
        &client,
        FAST,
        Some(Instant::now() + Duration::from_secs(120)),
    )
    .await
    .unwrap();
    let status = journal.outbox_status().unwrap();
    eprintln!(
        "chaos for {secs} s: {} delivered then ({during} recorded), {} duplicate posts, {} parked",
        chaos.delivered,
        central.recorded().duplicates,
        status.parked.len()
    );
    assert_eq!(
        (status.pending, status.delivered, status.parked.len()),
        (0, 1000, 0),
        "every event delivered, none parked"
    );
    let recorded = central.recorded().events.len();
    assert_eq!(recorded, 1000, "each event recorded exactly once");
    assert_eq!(
        central.per_coi(),
        queued,
        "every COI's events arrive in the order they were queued"
    );
    assert!(
        central.recorded().duplicates > 0,
        "the chaos lost answers after recording (the test can tell a duplicate)"
    );
    assert!(journal.verify_audit().unwrap().is_ok());
}

/// Two deliverers that read the same pending events (two `outbox flush` runs, or one beside
/// `serve`) and both deliver them record each delivery once: one `event_delivered` audit entry
/// per event, one attempt counted (issue #16: 174 entries for 120 events before).
#[test]
fn two_deliverers_of_the_same_events_record_each_delivery_once() {
    use coi_agent::journal::outbox::Outcome as Delivery;
    let db = TempDb::new("two-deliverers");
    let mut first = Journal::open(&db.0).unwrap();
    let mut second = Journal::open(&db.0).unwrap();
    queue(&mut first, 6, 3);
    let now = utc_text(jiff::Timestamp::now());
    let seen_by_first: Vec<_> = first.due_events(&now, 10, 10).unwrap().concat();
    let seen_by_second: Vec<_> = second.due_events(&now, 10, 10).unwrap().concat();
    assert_eq!(seen_by_first.len(), 6);
    assert_eq!(seen_by_first, seen_by_second);
    let delivered = |events: &[coi_agent::journal::outbox::PendingEvent]| {
        events
            .iter()
            .map(|e| (e.clone(), Delivery::Delivered))
            .collect::<Vec<_>>()
    };
    first.apply_outcomes(&delivered(&seen_by_first)).unwrap();
    second.apply_outcomes(&delivered(&seen_by_second)).unwrap();
    // A late retry or park from a third view changes nothing either.
    let late: Vec<_> = seen_by_second
        .iter()
        .map(|e| {
            (
                e.clone(),
                Delivery::Parked {
                    error: "422: late".into(),
                },
            )
        })
        .collect();
    second.apply_outcomes(&late).unwrap();
    let audit = first.audit_entries(None).unwrap();
    let delivered_entries = audit.iter().filter(|e| e.kind == "event_delivered").count();
    assert_eq!(delivered_entries, 6);
    assert!(!audit.iter().any(|e| e.kind == "event_parked"));
    let status = first.outbox_status().unwrap();
    assert_eq!((status.pending, status.delivered), (0, 6), "{status:?}");
    assert!(status.parked.is_empty());
    let attempts: i64 = rusqlite::Connection::open(&db.0)
        .unwrap()
        .query_row("SELECT SUM(attempts) FROM outbox", [], |row| row.get(0))
        .unwrap();
    assert_eq!(attempts, 6);

    // One deliverer parks an event (a 4xx) while another's post of it was confirmed: central
    // has it, so the confirmation wins and it is not left parked for a person to close.
    queue(&mut first, 1, 1);
    let now = utc_text(jiff::Timestamp::now());
    let seen: Vec<_> = first.due_events(&now, 10, 10).unwrap().concat();
    assert_eq!(seen.len(), 1);
    let parked = vec![(
        seen[0].clone(),
        Delivery::Parked {
            error: "422: refused".into(),
        },
    )];
    second.apply_outcomes(&parked).unwrap();
    first.apply_outcomes(&delivered(&seen)).unwrap();
    let status = first.outbox_status().unwrap();
    assert_eq!(
        (status.delivered, status.parked.len()),
        (7, 0),
        "{status:?}"
    );
}

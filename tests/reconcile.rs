//! Reconciliation (issue #6): every reason is produced where it should be, a scan of one
//! order's bag is never taken for another's, and no single-character change to a scanned DIN
//! or COI identifier passes.

#![allow(clippy::unwrap_used)] // test helpers fail loudly; that is their job

use std::collections::HashSet;

use coi_agent::isbt128::coi::CoiId;
use coi_agent::isbt128::din::{Din, DinFlags, Donation};
use coi_agent::isbt128::message;
use coi_agent::isbt128::product::ProductCode;
use coi_agent::isbt128::structure::{Value, compound_message};
use coi_agent::orders::OrderBook;
use coi_agent::reconcile::{
    Context, Expected, Outcome, Reason, Role, ScanRead, Step, Verdict, reconcile,
};
use proptest::prelude::*;
use serde_json::json;

const APHERESIS: &str = "site-apheresis-1";
const LAB: &str = "site-lab-1";

fn order(coi: &str, din: &str, status: &str, bags: u32) -> serde_json::Value {
    json!({
        "coi": coi, "order_id": format!("ORD-{coi}"), "status": status,
        "patient": {"family_name": "Example", "given_name": "Pat", "date_of_birth": "1984-02-29", "id": "PT-1", "id_label": "Sponsor patient ID"},
        "therapy": {"name": "Example CAR-T", "sponsor": "Example", "protocol": "EX-101"},
        "product": {"code": "S1295", "collection_type": "1", "description": "APHERESIS COLLECTION"},
        "collection": {"din": din, "facility": {"fin": "A9999", "name": "Apheresis", "site_id": APHERESIS},
                       "scheduled_for": "2026-06-02T08:00:00-04:00", "time_zone": "America/New_York", "bags": bags},
        "manufacturing": {"facility": {"fin": "A9998", "name": "Cell Lab", "site_id": LAB}},
        "expires_at": "2030-01-01T00:00:00Z"
    })
}

fn book(orders: Vec<serde_json::Value>) -> OrderBook {
    let (book, refused) = OrderBook::from_json(&json!({ "orders": orders }).to_string()).unwrap();
    assert!(refused.is_empty(), "{refused:?}");
    book
}

/// The DataMatrix compound message of bag `bag` (DIN with container flags, product, COI).
fn label(coi: &str, din: &str, bag: u8) -> String {
    let din = Din::parse(din).unwrap();
    let values = [
        Value::Donation(Donation::new(din, DinFlags::container(bag).unwrap()).unwrap()),
        Value::ProductCode(ProductCode::new("S1295", '1', "00").unwrap()),
        Value::Coi(CoiId::parse(coi).unwrap()),
    ];
    format!("]d1{}", compound_message(&values).unwrap())
}

struct Case<'a> {
    site: &'a str,
    step: Step,
    role: Option<Role>,
    now: &'a str,
    expected: Option<Expected>,
    received: HashSet<(CoiId, u8)>,
}

impl Default for Case<'_> {
    fn default() -> Self {
        Case {
            site: LAB,
            step: Step::Receipt,
            role: None,
            now: "2026-06-03T12:00:00Z",
            expected: None,
            received: HashSet::new(),
        }
    }
}

/// The verdict for `data` scanned against `book` in `case`.
fn check(data: &str, book: &OrderBook, case: &Case<'_>) -> Verdict {
    let ctx = Context {
        site_id: case.site,
        step: case.step,
        role: case.role,
        now: case.now.parse().unwrap(),
        expected: case.expected,
        received: &case.received,
        freshness: None,
    };
    match message::parse(data.as_bytes()) {
        Ok(message) => reconcile(ScanRead::Parsed(&message), book, &ctx),
        Err(err) => reconcile(ScanRead::Invalid(&err), book, &ctx),
    }
}

fn reason(data: &str, book: &OrderBook, case: &Case<'_>) -> Option<&'static str> {
    match check(data, book, case).outcome {
        Outcome::Match => None,
        Outcome::Mismatch(reason) => Some(reason.code()),
        other => Some(other.as_str()),
    }
}

const COI_A: &str = "CHA999925000042";
const DIN_A: &str = "A999925123456";
const COI_B: &str = "CHA999925000043";
const DIN_B: &str = "A999925123457";

fn two_orders(status_a: &str) -> OrderBook {
    book(vec![
        order(COI_A, DIN_A, status_a, 2),
        order(COI_B, DIN_B, "shipped", 1),
    ])
}

#[test]
fn a_shipped_bag_received_at_the_lab_matches() {
    let verdict = check(
        &label(COI_A, DIN_A, 2),
        &two_orders("shipped"),
        &Case::default(),
    );
    assert_eq!(verdict.outcome, Outcome::Match, "{}", verdict.message);
    assert_eq!(verdict.bag, Some(2));
    assert_eq!(verdict.order_id.as_deref(), Some("ORD-CHA999925000042"));
    assert_eq!(
        verdict.message,
        "MATCH: bag 2 of 2 of order ORD-CHA999925000042, expected here. Receive it."
    );
    assert!(
        !verdict.message.contains("Example") && !verdict.message.contains("Pat"),
        "no patient data"
    );
}

#[test]
fn a_fresh_label_verified_at_collection_matches() {
    let case = Case {
        site: APHERESIS,
        step: Step::Verify,
        ..Case::default()
    };
    let verdict = check(&label(COI_A, DIN_A, 1), &two_orders("scheduled"), &case);
    assert!(verdict.is_match(), "{}", verdict.message);
}

#[test]
fn the_returned_drug_received_at_the_apheresis_site_matches() {
    let case = Case {
        site: APHERESIS,
        ..Case::default()
    };
    assert_eq!(
        reason(
            &label(COI_A, DIN_A, 1),
            &two_orders("shipped_to_site"),
            &case
        ),
        None
    );
    assert_eq!(
        reason(
            &label(COI_A, DIN_A, 1),
            &two_orders("received_at_site"),
            &case
        ),
        Some("already_received")
    );
}

#[test]
fn every_reason_where_it_should_be() {
    let shipped = two_orders("shipped");
    let base = Case::default();
    let data = label(COI_A, DIN_A, 1);
    let cases: Vec<(String, Option<&str>, &str)> = vec![
        (
            "=G12341765432171".to_owned(),
            Some("bad_check"),
            "Type 3 flags wrong",
        ),
        (
            "]C1=A99992212345600".to_owned(),
            Some("not_isbt128"),
            "GS1 symbology",
        ),
        ("hello".to_owned(), Some("not_isbt128"), "not ISBT 128"),
        ("=A9999\x1b22".to_owned(), Some("unreadable"), "garbled"),
        (
            "=<S1295100".to_owned(),
            Some("no_identifier"),
            "product code alone",
        ),
        (
            "=+02000=A99992512345601=A99992512345701".to_owned(),
            Some("conflicting_identifiers"),
            "two DINs",
        ),
        (
            "&/CHA999925000099".to_owned(),
            Some("unknown_coi"),
            "COI of no order",
        ),
        (
            "=A99992599999901".to_owned(),
            Some("unknown_din"),
            "DIN of no order",
        ),
        (
            format!("=+02000={DIN_B}01&/{COI_A}"),
            Some("din_coi_mismatch"),
            "DIN of B, COI of A",
        ),
        (
            format!("=+03000={DIN_A}01=<S9999100&/{COI_A}"),
            Some("wrong_product"),
            "other product",
        ),
        (
            format!("=+02000={DIN_A}03&/{COI_A}"),
            Some("bag_out_of_range"),
            "bag 3 of 2",
        ),
        (
            format!("=+02000={DIN_A}00&/{COI_A}"),
            Some("bag_not_identified"),
            "no bag flags on a 2-bag order",
        ),
        // Issue #17: one identifier alone is never a match, whatever the order's bags.
        (
            format!("&/{COI_A}"),
            Some("incomplete"),
            "COI alone for a 2-bag order",
        ),
        (
            format!("&/{COI_B}"),
            Some("incomplete"),
            "COI alone for a 1-bag order",
        ),
        (
            format!("={DIN_A}01"),
            Some("incomplete"),
            "DIN alone for a 2-bag order",
        ),
        (
            format!("={DIN_B}00"),
            Some("incomplete"),
            "DIN alone for a 1-bag order",
        ),
        (
            format!("=+02000={DIN_B}00&/{COI_B}"),
            None,
            "DIN and COI of a 1-bag order",
        ),
        // Issue #20: flags 05-14 are tubes, samples and other labels (ST-001 Table 3), never a
        // bag, even of a one-bag order; a pilot or test tube is a sample of the order.
        (
            format!("=+02000={DIN_A}06&/{COI_A}"),
            Some("sample"),
            "a pilot tube of A",
        ),
        (
            format!("=+02000={DIN_B}07&/{COI_B}"),
            Some("sample"),
            "a test tube of the 1-bag order B",
        ),
        (
            format!("=+02000={DIN_B}05&/{COI_B}"),
            Some("not_a_bag"),
            "a repeat label of B",
        ),
        (
            format!("=+02000={DIN_A}10&/{COI_A}"),
            Some("not_a_bag"),
            "a bacterial-test sample of A",
        ),
        (
            format!("=+02000={DIN_A}15&/{COI_A}"),
            Some("bag_out_of_range"),
            "container 5 of a 2-bag order",
        ),
    ];
    for (data, expected, note) in cases {
        assert_eq!(reason(&data, &shipped, &base), expected, "{note}: {data:?}");
    }
    for (status, expected) in [
        ("cancelled", "order_cancelled"),
        ("on_hold", "order_on_hold"),
        ("scheduled", "wrong_status"),
        ("collected", "wrong_status"),
        ("received", "already_received"),
        ("in_manufacture", "already_received"),
    ] {
        assert_eq!(
            reason(&data, &two_orders(status), &base),
            Some(expected),
            "status {status}"
        );
    }
    let elsewhere = Case {
        site: "site-other",
        ..Case::default()
    };
    assert_eq!(reason(&data, &shipped, &elsewhere), Some("wrong_site"));
    let as_collection = Case {
        role: Some(Role::Collection),
        ..Case::default()
    };
    assert_eq!(reason(&data, &shipped, &as_collection), Some("wrong_site"));
    let later = Case {
        now: "2030-01-02T00:00:00Z",
        ..Case::default()
    };
    assert_eq!(reason(&data, &shipped, &later), Some("expired"));
    let mut received = HashSet::new();
    received.insert((CoiId::parse(COI_A).unwrap(), 1));
    let again = Case {
        received,
        ..Case::default()
    };
    assert_eq!(reason(&data, &shipped, &again), Some("already_received"));
    assert_eq!(
        reason(&label(COI_A, DIN_A, 2), &shipped, &again),
        None,
        "bag 2 is not in yet"
    );
    let expecting_b = Case {
        expected: Some(Expected {
            coi: CoiId::parse(COI_B).unwrap(),
            din: None,
            bag: None,
            sample: false,
            collected_at: None,
        }),
        ..Case::default()
    };
    assert_eq!(reason(&data, &shipped, &expecting_b), Some("not_expected"));
    let printed_bag_2 = Case {
        site: APHERESIS,
        step: Step::Verify,
        expected: Some(Expected {
            coi: CoiId::parse(COI_A).unwrap(),
            din: Some(Din::parse(DIN_A).unwrap()),
            bag: Some(2),
            sample: false,
            collected_at: None,
        }),
        ..Case::default()
    };
    assert_eq!(
        reason(&data, &two_orders("scheduled"), &printed_bag_2),
        Some("not_expected")
    );
    let unreadable = Context {
        site_id: LAB,
        step: Step::Receipt,
        role: None,
        now: "2026-06-03T12:00:00Z".parse().unwrap(),
        expected: None,
        received: &HashSet::new(),
        freshness: None,
    };
    assert_eq!(
        reconcile(ScanRead::Unreadable, &shipped, &unreadable).reason(),
        Some(Reason::Unreadable)
    );
}

/// Issue #13: orders from central older than `max_age_secs` (or never synced) accept no
/// receipt; within it, they do.
#[test]
fn r13_orders_too_old_accept_no_receipt() {
    let shipped = two_orders("shipped");
    let data = label(COI_A, DIN_A, 1);
    let received = HashSet::new();
    let judge = |synced_at: Option<&str>, step: Step| {
        let ctx = Context {
            site_id: LAB,
            step,
            role: None,
            now: "2026-06-03T12:00:00Z".parse().unwrap(),
            expected: None,
            received: &received,
            freshness: Some(coi_agent::reconcile::Freshness {
                synced_at: synced_at.map(|t| t.parse().unwrap()),
                max_age: std::time::Duration::from_secs(3600),
            }),
        };
        let message = message::parse(data.as_bytes()).unwrap();
        reconcile(ScanRead::Parsed(&message), &shipped, &ctx)
    };
    assert!(judge(Some("2026-06-03T11:30:00Z"), Step::Receipt).is_match());
    let old = judge(Some("2026-06-03T10:30:00Z"), Step::Receipt);
    assert_eq!(old.reason().map(Reason::code), Some("order_stale"));
    assert!(old.message.contains("90 minutes ago"), "{}", old.message);
    let never = judge(None, Step::Receipt);
    assert_eq!(never.reason().map(Reason::code), Some("order_stale"));
    assert!(never.message.contains("never"), "{}", never.message);
    // Synced "tomorrow": the clock stepped back, the orders' age is unknown.
    let ahead = judge(Some("2026-06-04T12:00:00Z"), Step::Receipt);
    assert_eq!(ahead.reason().map(Reason::code), Some("order_stale"));
    assert!(
        judge(Some("2026-06-03T12:02:00Z"), Step::Receipt).is_match(),
        "minutes of skew"
    );
}

/// Issue #20: containers 1-4 are flags 01-04 and containers 5-9 are 15-19 (ST-001 Table 3),
/// read as written.
#[test]
fn r20_container_flags_follow_table_3_both_ways() {
    for (bag, flags) in [(1, "01"), (4, "04"), (5, "15"), (6, "16"), (9, "19")] {
        let made = DinFlags::container(bag).unwrap();
        assert_eq!(made.as_str(), flags, "bag {bag}");
        assert_eq!(made.container_number(), Some(bag), "flags {flags}");
    }
    assert_eq!(DinFlags::container(0), None);
    assert_eq!(
        DinFlags::container(10),
        None,
        "Table 3 numbers nine containers"
    );
    for flags in ["00", "05", "06", "07", "10", "12", "14", "20", "60"] {
        assert_eq!(
            DinFlags::parse(flags).unwrap().container_number(),
            None,
            "{flags} names no container"
        );
    }
}

/// Issue #13: a held order (its latest update refused) matches nothing, whatever is scanned.
#[test]
fn r13_a_held_order_allows_nothing() {
    let mut held = two_orders("shipped");
    let base = Case::default();
    let data = format!("=+02000={DIN_B}01&/{COI_B}");
    assert_eq!(reason(&data, &held, &base), None, "a match before");
    held.hold(
        CoiId::parse(COI_B).unwrap(),
        "order 0: status: unknown".to_owned(),
    );
    assert_eq!(reason(&data, &held, &base), Some("order_held"));
    assert_eq!(
        reason(&label(COI_B, DIN_B, 1), &held, &base),
        Some("order_held")
    );
    assert_eq!(
        reason(&label(COI_A, DIN_A, 1), &held, &base),
        None,
        "other orders are not held"
    );
}

/// A verdict about a bag the order does not have still says which bag was scanned.
#[test]
fn bag_out_of_range_names_the_scanned_bag() {
    let verdict = check(
        &format!("=+02000={DIN_A}03&/{COI_A}"),
        &two_orders("shipped"),
        &Case::default(),
    );
    assert_eq!(verdict.reason(), Some(Reason::BagOutOfRange));
    assert_eq!(verdict.bag, Some(3));
}

/// Two reasons are given by the flows around reconciliation, not by it: `already_received`
/// naming another workstation and `central_offline` come from central's arbitration
/// (tests/orders_sync.rs, r13_two_workstations_receive_a_bag_once).
#[test]
fn reasons_from_arbitration_have_their_codes() {
    assert_eq!(
        Reason::from_code("central_offline").map(Reason::code),
        Some("central_offline")
    );
}

#[test]
fn every_reason_has_a_code_and_a_test() {
    let codes: HashSet<&str> = Reason::ALL.iter().map(|r| r.code()).collect();
    assert_eq!(codes.len(), Reason::ALL.len());
    // Code only: a reason named in a comment is not a test of it.
    let tested: String = include_str!("reconcile.rs")
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    for code in codes {
        assert!(
            tested.contains(&format!("\"{code}\"")),
            "reason {code} has no test above"
        );
    }
}

/// Random orders with distinct identifiers: (COI, DIN, bags).
fn orders() -> impl Strategy<Value = Vec<(String, String, u32)>> {
    proptest::collection::hash_set(0u32..1_000_000, 2..8).prop_map(|ids| {
        ids.into_iter()
            .map(|n| {
                (
                    format!("CHA999925{n:06}"),
                    format!("A999925{n:06}"),
                    1 + n % 4,
                )
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn a_bag_of_one_order_is_never_received_as_another(orders in orders(), a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>()) {
        let a = &orders[a.index(orders.len())];
        let b = &orders[b.index(orders.len())];
        prop_assume!(a.0 != b.0);
        let book = book(orders.iter().map(|(coi, din, bags)| order(coi, din, "shipped", *bags)).collect());
        let case = Case { expected: Some(Expected { coi: CoiId::parse(&b.0).unwrap(), din: None, bag: None, sample: false, collected_at: None }), ..Case::default() };
        let verdict = check(&label(&a.0, &a.1, 1), &book, &case);
        prop_assert!(!verdict.is_match(), "{}", verdict.message);
        // The same scan at its own receipt matches: the mismatch is about the order, nothing else.
        let own = Case { expected: Some(Expected { coi: CoiId::parse(&a.0).unwrap(), din: None, bag: None, sample: false, collected_at: None }), ..Case::default() };
        prop_assert!(check(&label(&a.0, &a.1, 1), &book, &own).is_match());
    }

    #[test]
    fn no_single_character_change_to_a_scanned_din_or_coi_passes(orders in orders(), pick in any::<prop::sample::Index>(), pos in any::<prop::sample::Index>(), ch in proptest::sample::select(b"0123456789ABCDEFGHIJKLMNPQRSTUVWXYZ".to_vec())) {
        let a = &orders[pick.index(orders.len())];
        let book = book(orders.iter().map(|(coi, din, bags)| order(coi, din, "shipped", *bags)).collect());
        let case = Case { expected: Some(Expected { coi: CoiId::parse(&a.0).unwrap(), din: None, bag: None, sample: false, collected_at: None }), ..Case::default() };
        let data = label(&a.0, &a.1, 1);
        // Positions of the DIN's 13 characters and the COI's 15 inside the compound message.
        let din_at = data.find(&a.1).unwrap();
        let coi_at = data.find(&a.0).unwrap();
        let positions: Vec<usize> = (din_at..din_at + 13).chain(coi_at..coi_at + 15).collect();
        let at = positions[pos.index(positions.len())];
        prop_assume!(data.as_bytes()[at] != ch);
        let mut changed = data.into_bytes();
        changed[at] = ch;
        let changed = String::from_utf8(changed).unwrap();
        let verdict = check(&changed, &book, &case);
        prop_assert!(!verdict.is_match(), "{changed}: {}", verdict.message);
    }
}

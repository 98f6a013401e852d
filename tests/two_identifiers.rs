//! Issue #17: no single wrong character may select another patient's bag. The measurement of
//! the issue, repeated: 1,000 cached orders with sequential DINs and COI identifiers, 60 of them
//! sampled, every single-character substitution and adjacent transposition of every kind of
//! scan judged at receipt. A match for another order must never happen; typed entry must never
//! match another bag either. Then the pairing rules: the window, the source, a scan between.

#![allow(clippy::unwrap_used)] // test helpers fail loudly; that is their job

use std::collections::HashSet;

use coi_agent::isbt128::coi::CoiId;
use coi_agent::isbt128::din::Din;
use coi_agent::orders::OrderBook;
use coi_agent::receiving::judge;
use coi_agent::reconcile::{Context, Missing, Outcome, Step, Verdict};
use coi_agent::scanner::Scan;
use coi_agent::typed::{Chosen, scan_data};
use serde_json::json;

mod support;
use coi_agent::custody::Station;
use coi_agent::journal::Journal;
use coi_agent::receiving::{RecordedScan, receive};
use support::tempdb::TempDb;

const LAB: &str = "site-lab-1";
/// The characters a scan of these labels may hold, and a few it may not.
const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ=&/+ ";

fn order(n: u32, bags: u8) -> serde_json::Value {
    json!({
        "coi": coi(n), "order_id": format!("ORD-{n:06}"), "status": "shipped",
        "patient": {"family_name": "Example", "given_name": "Pat", "date_of_birth": "1984-02-29", "id": format!("PT-{n}"), "id_label": "Sponsor patient ID"},
        "therapy": {"name": "Example CAR-T", "sponsor": "Example", "protocol": "EX-101"},
        "product": {"code": "S1295", "collection_type": "1", "description": "APHERESIS COLLECTION"},
        "collection": {"din": din(n), "facility": {"fin": "A9999", "name": "Apheresis", "site_id": "site-apheresis-1"},
                       "scheduled_for": "2026-06-02T08:00:00-04:00", "time_zone": "America/New_York", "bags": bags},
        "manufacturing": {"facility": {"fin": "A9998", "name": "Cell Lab", "site_id": LAB}},
        "expires_at": "2030-01-01T00:00:00Z"
    })
}

fn coi(n: u32) -> String {
    format!("CHA999925{n:06}")
}

fn din(n: u32) -> String {
    format!("A999925{n:06}")
}

/// Bags per order: one-bag and multi-bag orders mixed.
fn bags(n: u32) -> u8 {
    [1, 1, 2, 3, 1, 4][n as usize % 6]
}

/// 1,000 orders with sequential identifiers, as the issue measured.
fn thousand() -> OrderBook {
    let orders: Vec<_> = (0..1000).map(|n| order(n, bags(n))).collect();
    let (book, refused) = OrderBook::from_json(&json!({ "orders": orders }).to_string()).unwrap();
    assert!(refused.is_empty(), "{refused:?}");
    book
}

fn flags(bag: u8, bags: u8) -> String {
    if bags == 1 {
        "00".to_owned()
    } else {
        coi_agent::isbt128::din::DinFlags::container(bag)
            .unwrap()
            .to_string()
    }
}

fn scan(data: &[u8], source: &str) -> Scan {
    Scan {
        at: "2026-06-03T12:00:00Z".parse().unwrap(),
        source: source.to_owned(),
        raw: data.to_vec(),
        problem: None,
    }
}

fn verdict(book: &OrderBook, earlier: Option<&[u8]>, data: &[u8]) -> Verdict {
    let received = HashSet::new();
    let ctx = Context {
        site_id: LAB,
        step: Step::Receipt,
        role: None,
        now: "2026-06-03T12:00:00Z".parse().unwrap(),
        expected: None,
        received: &received,
        freshness: None,
    };
    judge(&scan(data, "dock"), earlier, book, &ctx)
}

/// Every single-character substitution (from [`ALPHABET`]) and adjacent transposition of `data`.
fn variants(data: &str) -> Vec<Vec<u8>> {
    let bytes = data.as_bytes();
    let mut out = Vec::new();
    for i in 0..bytes.len() {
        for &c in ALPHABET {
            if c != bytes[i] {
                let mut v = bytes.to_vec();
                v[i] = c;
                out.push(v);
            }
        }
        if i + 1 < bytes.len() && bytes[i] != bytes[i + 1] {
            let mut v = bytes.to_vec();
            v.swap(i, i + 1);
            out.push(v);
        }
    }
    out
}

/// What a kind of scan found over all variants of the sampled orders.
#[derive(Debug, Default)]
struct Tally {
    variants: usize,
    /// A match for another order.
    wrong_patient: usize,
    /// A match for the right order, another bag.
    wrong_bag: usize,
}

impl Tally {
    fn count(&mut self, v: &Verdict, n: u32, bag: u8) {
        self.variants += 1;
        if v.is_match() {
            if v.coi != Some(CoiId::parse(&coi(n)).unwrap()) {
                self.wrong_patient += 1;
            } else if v.bag != Some(bag) {
                self.wrong_bag += 1;
            }
        }
    }
}

#[test]
fn r17_no_single_wrong_character_matches_another_patient_for_any_kind_of_scan() {
    let book = thousand();
    let sampled: Vec<u32> = (0..60).map(|i| i * 16 + 3).collect();
    let mut tallies: Vec<(&str, Tally)> = [
        "DIN alone",
        "COI alone",
        "DIN then COI",
        "COI then DIN",
        "Data Matrix",
        "concatenated read",
        "typed pair",
    ]
    .into_iter()
    .map(|kind| (kind, Tally::default()))
    .collect();
    for &n in &sampled {
        let bags = bags(n);
        let bag = bags; // the last bag: flags other than 00/01 are exercised
        let din_data = format!("={}{}", din(n), flags(bag, bags));
        let coi_data = format!("&/{}", coi(n));
        // Unmutated, every complete kind matches its own bag: the test can tell.
        for (earlier, data) in [
            (Some(din_data.as_bytes()), coi_data.as_bytes()),
            (Some(coi_data.as_bytes()), din_data.as_bytes()),
        ] {
            let v = verdict(&book, earlier, data);
            assert!(v.is_match() && v.bag == Some(bag), "{}", v.message);
        }
        for data in variants(&din_data) {
            let v = verdict(&book, None, &data);
            tallies[0].1.count(&v, n, bag);
            // And as the first half, completed by the right COI barcode.
            let v = verdict(&book, Some(&data), coi_data.as_bytes());
            tallies[2].1.count(&v, n, bag);
            // And as the second half.
            let v = verdict(&book, Some(coi_data.as_bytes()), &data);
            tallies[3].1.count(&v, n, bag);
        }
        for data in variants(&coi_data) {
            let v = verdict(&book, None, &data);
            tallies[1].1.count(&v, n, bag);
            let v = verdict(&book, Some(din_data.as_bytes()), &data);
            tallies[2].1.count(&v, n, bag);
            let v = verdict(&book, Some(&data), din_data.as_bytes());
            tallies[3].1.count(&v, n, bag);
        }
        let matrix = format!("=+02000{din_data}{coi_data}");
        assert!(verdict(&book, None, matrix.as_bytes()).is_match());
        for data in variants(&matrix) {
            tallies[4].1.count(&verdict(&book, None, &data), n, bag);
        }
        let concatenated = format!("{din_data}{coi_data}");
        assert!(verdict(&book, None, concatenated.as_bytes()).is_match());
        for data in variants(&concatenated) {
            tallies[5].1.count(&verdict(&book, None, &data), n, bag);
        }
        // Typed as printed: grouped identifiers and their boxed check characters; the bag is
        // chosen, never typed.
        let d = Din::parse(&din(n)).unwrap();
        let c = CoiId::parse(&coi(n)).unwrap();
        let typed_din = format!("{} {}", d.grouped(), d.check_character().as_char());
        let typed_coi = format!("{} {}", c.grouped(), c.check_character().as_char());
        let chosen = if bags == 1 {
            Chosen::Unchosen
        } else {
            Chosen::Bag(bag)
        };
        let right = scan_data(&typed_din, &typed_coi, chosen).unwrap();
        assert!(verdict(&book, None, right.as_bytes()).is_match());
        for (which, text) in [(0, &typed_din), (1, &typed_coi)] {
            for mutated in variants(text) {
                let Ok(mutated) = String::from_utf8(mutated) else {
                    continue;
                };
                let (din_text, coi_text) = if which == 0 {
                    (mutated.as_str(), typed_coi.as_str())
                } else {
                    (typed_din.as_str(), mutated.as_str())
                };
                match scan_data(din_text, coi_text, chosen) {
                    Ok(data) => tallies[6]
                        .1
                        .count(&verdict(&book, None, data.as_bytes()), n, bag),
                    Err(_) => tallies[6].1.variants += 1,
                }
            }
        }
    }
    for (kind, tally) in &tallies {
        eprintln!(
            "{kind}: {} variants, {} wrong-patient matches, {} wrong-bag matches",
            tally.variants, tally.wrong_patient, tally.wrong_bag
        );
        assert!(tally.variants > 1000, "{kind}: too few variants tried");
        assert_eq!(tally.wrong_patient, 0, "{kind}: {tally:?}");
    }
    let typed = &tallies[6].1;
    assert_eq!(typed.wrong_bag, 0, "typed entry never selects another bag");
    let single = tallies[0].1.wrong_patient + tallies[1].1.wrong_patient;
    assert_eq!(single, 0, "one identifier alone never matches at all");
}

/// One identifier alone is `incomplete`, saying which identifier to scan next.
#[test]
fn r17_one_identifier_alone_asks_for_the_other() {
    let book = thousand();
    let v = verdict(&book, None, format!("={}00", din(0)).as_bytes());
    assert_eq!(v.outcome, Outcome::Incomplete(Missing::Coi));
    assert!(v.message.contains("scan the COI barcode"), "{}", v.message);
    assert_eq!(v.order_id, None, "half a read names no order");
    let v = verdict(&book, None, format!("&/{}", coi(0)).as_bytes());
    assert_eq!(v.outcome, Outcome::Incomplete(Missing::Din));
    assert!(v.message.contains("scan the DIN barcode"), "{}", v.message);
    // A DIN of no order is refused at once: nothing can complete it.
    let v = verdict(&book, None, format!("={}00", din(5000)).as_bytes());
    assert_eq!(v.reason().map(|r| r.code()), Some("unknown_din"));
}

/// A receiving station on a real journal: each scan recorded, then the next judged with it.
struct Dock {
    _db: TempDb,
    journal: Journal,
    book: OrderBook,
}

impl Dock {
    fn new(name: &str) -> Dock {
        let db = TempDb::new(name);
        let journal = Journal::open(&db.0).unwrap();
        Dock {
            _db: db,
            journal,
            book: thousand(),
        }
    }

    /// The custody events waiting for central, oldest first, by type.
    fn events(&self) -> Vec<String> {
        self.journal
            .due_events("2100-01-01T00:00:00Z", 100, 100)
            .unwrap()
            .into_iter()
            .flatten()
            .map(|e| e.kind)
            .collect()
    }

    /// Scans `data` from `source`, `secs` seconds after noon, by tech-1.
    fn scan(&mut self, source: &str, secs: i64, data: &str) -> RecordedScan {
        self.scan_by("tech-1", source, secs, data)
    }

    fn scan_by(&mut self, operator: &str, source: &str, secs: i64, data: &str) -> RecordedScan {
        let station = Station {
            site_id: LAB,
            workstation: "dock-1",
            pair_window: coi_agent::reconcile::PAIR_WINDOW,
            order_max_age: None,
        };
        let mut scan = scan(data.as_bytes(), source);
        scan.at = scan
            .at
            .checked_add(jiff::SignedDuration::from_secs(secs))
            .unwrap();
        receive(
            &mut self.journal,
            &self.book,
            &scan,
            station,
            Some(operator),
            &coi_agent::receiving::ReceiptClaim::NotAsked,
        )
        .unwrap()
    }
}

fn outcome(scan: &RecordedScan) -> &'static str {
    match scan.verdict.outcome {
        Outcome::Mismatch(reason) => reason.code(),
        other => other.as_str(),
    }
}

/// The pairing window: a DIN then a COI barcode from one scanner within 15 s is one read;
/// later, from another scanner, or with a scan between, it is not.
#[test]
fn r17_two_reads_pair_within_the_window_from_one_source_with_nothing_between() {
    let mut dock = Dock::new("pairs");
    let (din1, coi1) = (format!("={}00", din(0)), format!("&/{}", coi(0)));
    // Within the window: the second completes the first; the half sent no event.
    assert_eq!(outcome(&dock.scan("dock", 0, &din1)), "incomplete");
    let pair = dock.scan("dock", 10, &coi1);
    assert_eq!(outcome(&pair), "match", "{}", pair.verdict.message);
    assert_eq!((pair.verdict.bag, pair.verdict.bags), (Some(1), Some(1)));
    assert_eq!(
        dock.events(),
        ["bag_received"],
        "one bag_received, nothing for the half"
    );

    // Past the window (16 s): the second stands alone.
    let (din6, coi6) = (format!("={}00", din(6)), format!("&/{}", coi(6)));
    assert_eq!(outcome(&dock.scan("dock", 100, &din6)), "incomplete");
    assert_eq!(outcome(&dock.scan("dock", 116, &coi6)), "incomplete");
    // ...and the COI read then waits: the DIN again completes it.
    assert_eq!(outcome(&dock.scan("dock", 120, &din6)), "match");

    // Two scanners: their halves never pair.
    let (din12, coi12) = (format!("={}00", din(12)), format!("&/{}", coi(12)));
    assert_eq!(outcome(&dock.scan("dock", 200, &din12)), "incomplete");
    assert_eq!(outcome(&dock.scan("bench", 201, &coi12)), "incomplete");

    // A scan between ends the half: the garbage, then the COI stands alone.
    let (din18, coi18) = (format!("={}00", din(18)), format!("&/{}", coi(18)));
    assert_eq!(outcome(&dock.scan("shelf", 300, &din18)), "incomplete");
    assert_eq!(outcome(&dock.scan("shelf", 301, "garbage")), "not_isbt128");
    assert_eq!(outcome(&dock.scan("shelf", 302, &coi18)), "incomplete");

    // A pair that disagrees: the DIN of one order, the COI of another, both named.
    let other = dock.scan("disagree", 400, &format!("={}00", din(24)));
    assert_eq!(outcome(&other), "incomplete");
    let crossed = dock.scan("disagree", 401, &format!("&/{}", coi(30)));
    assert_eq!(outcome(&crossed), "din_coi_mismatch");
    let d = Din::parse(&din(24)).unwrap();
    let c = CoiId::parse(&coi(30)).unwrap();
    assert!(
        crossed.verdict.message.contains(&d.grouped())
            && crossed.verdict.message.contains(&c.grouped()),
        "{}",
        crossed.verdict.message
    );
    // A half is never dropped silently: another DIN after it, or a Data Matrix of another
    // order, disagrees with it; the same DIN again is still half, and the COI completes it.
    let (din36, coi36) = (format!("={}00", din(36)), format!("&/{}", coi(36)));
    let din42 = format!("={}00", din(42));
    assert_eq!(outcome(&dock.scan("again", 500, &din42)), "incomplete");
    let replaced = dock.scan("again", 501, &din36);
    assert_eq!(outcome(&replaced), "conflicting_identifiers");
    assert!(replaced.verdict.message.contains("the one before it"));
    assert_eq!(outcome(&dock.scan("again", 502, &din36)), "incomplete");
    assert_eq!(outcome(&dock.scan("again", 503, &din36)), "incomplete");
    assert_eq!(outcome(&dock.scan("again", 504, &coi36)), "match");
    let matrix = |n: u32| format!("=+02000={}00&/{}", din(n), coi(n));
    let din48 = format!("={}00", din(48));
    assert_eq!(outcome(&dock.scan("dm", 600, &din48)), "incomplete");
    let other = dock.scan("dm", 601, &matrix(54));
    assert_eq!(outcome(&other), "conflicting_identifiers");
    let coi60 = format!("&/{}", coi(60));
    assert_eq!(outcome(&dock.scan("dm", 602, &coi60)), "incomplete");
    let same = dock.scan("dm", 603, &matrix(60));
    assert_eq!(outcome(&same), "match", "the same order agrees");
    // The label's other barcodes (product code, dates) scanned between the halves are judged
    // with the half and do not end it.
    let (din78, coi78) = (format!("={}00", din(78)), format!("&/{}", coi(78)));
    assert_eq!(outcome(&dock.scan("four", 900, &coi78)), "incomplete");
    assert_eq!(outcome(&dock.scan("four", 901, "=<S1295100")), "incomplete");
    assert_eq!(
        outcome(&dock.scan("four", 902, "&*0251530814")),
        "incomplete"
    );
    assert_eq!(outcome(&dock.scan("four", 903, &din78)), "match");
    // ...but another product is a mismatch with the half.
    assert_eq!(outcome(&dock.scan("five", 950, &coi78)), "incomplete");
    assert_eq!(
        outcome(&dock.scan("five", 951, "=<S9999100")),
        "wrong_product"
    );
    // A TCP scanner that reconnects (a new peer port) is the same scanner; another host is not.
    let (din84, coi84) = (format!("={}00", din(84)), format!("&/{}", coi(84)));
    let tcp = |peer: &str| format!("tcp-listen://0.0.0.0:7371 from {peer}");
    let half = dock.scan(&tcp("10.0.0.7:50001"), 990, &din84);
    assert_eq!(outcome(&half), "incomplete");
    let other_host = dock.scan(&tcp("10.0.0.8:50002"), 991, &coi84);
    assert_eq!(outcome(&other_host), "incomplete");
    let reconnected = dock.scan(&tcp("10.0.0.7:50003"), 992, &coi84);
    assert_eq!(outcome(&reconnected), "match");
    // Another person's half is not this person's.
    let din72 = format!("={}00", din(72));
    assert_eq!(outcome(&dock.scan("shared", 800, &din72)), "incomplete");
    let coi72 = format!("&/{}", coi(72));
    let theirs = dock.scan_by("tech-2", "shared", 801, &coi72);
    assert_eq!(outcome(&theirs), "incomplete");
    // A half stamped after the scan (a clock stepped back) is no half for it.
    let din66 = format!("={}00", din(66));
    assert_eq!(outcome(&dock.scan("clock", 700, &din66)), "incomplete");
    let coi66 = format!("&/{}", coi(66));
    assert_eq!(outcome(&dock.scan("clock", 690, &coi66)), "incomplete");
    assert!(dock.journal.verify_audit().unwrap().is_ok());
}

/// Issue #20: a sample tube (flags 07) of a bag is a sample, recorded with its own event; the
/// bag is still to be received by its own label.
#[test]
fn r20_a_sample_tube_at_receipt_is_a_sample_never_its_bag() {
    let mut dock = Dock::new("samples");
    // Order 2 has 2 bags.
    let tube = format!("=+02000={}07&/{}", din(2), coi(2));
    let sample = dock.scan("dock", 0, &tube);
    assert_eq!(outcome(&sample), "sample", "{}", sample.verdict.message);
    assert_eq!(sample.verdict.bag, None);
    assert!(
        sample.verdict.message.starts_with("SAMPLE"),
        "{}",
        sample.verdict.message
    );
    // Again: a second tube is no duplicate.
    assert_eq!(outcome(&dock.scan("dock", 1, &tube)), "sample");
    assert_eq!(dock.events(), ["sample_received", "sample_received"]);
    // The bags are received by their own labels, each once, and each receipt says where the
    // shipment stands (issue #13).
    let said = [
        "Received here: bag 1 of 2; still missing: bag 2.",
        "All 2 bags of the order received here.",
    ];
    for bag in 1..=2u8 {
        let label = format!("=+02000={}{bag:02}&/{}", din(2), coi(2));
        let received = dock.scan("dock", 2, &label);
        assert_eq!(outcome(&received), "match");
        assert!(
            received
                .verdict
                .message
                .ends_with(said[usize::from(bag) - 1]),
            "{}",
            received.verdict.message
        );
        assert_eq!(outcome(&dock.scan("dock", 3, &label)), "already_received");
    }
    // A pilot tube (06) is a sample too; other Table 3 flags are no bag.
    let pilot = format!("=+02000={}06&/{}", din(2), coi(2));
    assert_eq!(outcome(&dock.scan("dock", 4, &pilot)), "sample");
    let partial = format!("=+02000={}12&/{}", din(2), coi(2));
    assert_eq!(outcome(&dock.scan("dock", 5, &partial)), "not_a_bag");
}

/// Random order books (random identifiers, one to four bags): no single substitution or
/// transposition of an order's Data Matrix, or of either half of a DIN-then-COI pair, matches
/// another order.
mod random_books {
    use super::*;
    use proptest::prelude::*;

    fn book_of(ids: &[(u32, u8)]) -> OrderBook {
        let orders: Vec<_> = ids.iter().map(|&(n, bags)| order(n, bags)).collect();
        OrderBook::from_json(&json!({ "orders": orders }).to_string())
            .unwrap()
            .0
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn r17_no_variant_of_a_scan_matches_another_order(
            ids in proptest::collection::hash_map(0u32..1_000_000, 1u8..=4, 2..40),
            pick in any::<prop::sample::Index>(),
        ) {
            let ids: Vec<(u32, u8)> = ids.into_iter().collect();
            let book = book_of(&ids);
            let (n, bags) = ids[pick.index(ids.len())];
            let bag = bags;
            let din_data = format!("={}{}", din(n), flags(bag, bags));
            let coi_data = format!("&/{}", coi(n));
            let mine = CoiId::parse(&coi(n)).unwrap();
            let matrix = format!("=+02000{din_data}{coi_data}");
            prop_assert!(verdict(&book, None, matrix.as_bytes()).is_match());
            for data in variants(&matrix) {
                let v = verdict(&book, None, &data);
                prop_assert!(!v.is_match() || v.coi == Some(mine), "{}", v.message);
            }
            for data in variants(&din_data) {
                let v = verdict(&book, Some(&data), coi_data.as_bytes());
                prop_assert!(!v.is_match() || v.coi == Some(mine), "{}", v.message);
            }
            for data in variants(&coi_data) {
                let v = verdict(&book, Some(din_data.as_bytes()), &data);
                prop_assert!(!v.is_match() || v.coi == Some(mine), "{}", v.message);
            }
        }
    }
}

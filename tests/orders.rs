//! Order records (issue #6): the shared example orders load; a bad order is refused with the
//! field named and without its values; duplicates are refused; `coi-agent reconcile` gives one
//! verdict per scan with deliberate exit codes.

#![allow(clippy::unwrap_used)] // test helpers fail loudly; that is their job

use std::process::Command;

use coi_agent::orders::OrderBook;
use coi_agent::orders::record::OrderStatus;
use serde_json::{Value, json};

const EXAMPLES: &str = include_str!("data/example-orders.json");

fn examples() -> Value {
    serde_json::from_str(EXAMPLES).unwrap()
}

#[test]
fn the_shared_example_orders_load() {
    let (book, refused) = OrderBook::from_json(EXAMPLES).unwrap();
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(book.len(), 2);
    let order = book.by_coi(&"CHA999925000042".parse_coi()).unwrap();
    assert_eq!(order.status, OrderStatus::Scheduled);
    assert_eq!(order.collection.bags, 2);
    assert_eq!(order.patient.given_name, "Pat");
    let by_din = book
        .by_din(&coi_agent::isbt128::din::Din::parse("A999925123457").unwrap())
        .unwrap();
    assert_eq!(by_din.patient.given_name, "Zoë", "accents survive");
}

trait ParseCoi {
    fn parse_coi(&self) -> coi_agent::isbt128::coi::CoiId;
}

impl ParseCoi for str {
    fn parse_coi(&self) -> coi_agent::isbt128::coi::CoiId {
        coi_agent::isbt128::coi::CoiId::parse(self).unwrap()
    }
}

/// Refusal message for the first example order changed by `edit`.
fn refusal(edit: impl FnOnce(&mut Value)) -> String {
    let mut file = examples();
    edit(&mut file["orders"][0]);
    let (book, refused) = OrderBook::from_json(&file.to_string()).unwrap();
    assert_eq!(book.len(), 1, "the other order still loads");
    assert_eq!(refused.len(), 1);
    refused[0].to_string()
}

#[test]
fn bad_orders_are_refused_with_the_field_named_and_no_values() {
    type Edit = Box<dyn FnOnce(&mut Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (Box::new(|o| o["coi"] = json!("CHA99992500004")), "coi: "),
        (
            Box::new(|o| o["collection"]["din"] = json!("A99992512345X")),
            "collection.din: ",
        ),
        (
            Box::new(|o| {
                o.as_object_mut().unwrap().remove("coi");
            }),
            "missing field `coi`",
        ),
        (
            Box::new(|o| o["collection"]["bags"] = json!(10)),
            "collection.bags: 1-9 (ISBT 128 DIN flags number 9 containers)",
        ),
        (
            Box::new(|o| o["collection"]["bags"] = json!(0)),
            "collection.bags: 1-9",
        ),
        (
            Box::new(|o| o["status"] = json!("lost")),
            "status: unknown variant `…`",
        ),
        // Issue #13: a label or receipt without the patient's name and id identifies nobody.
        (
            Box::new(|o| o["patient"]["family_name"] = json!("  ")),
            "patient.family_name: empty",
        ),
        (
            Box::new(|o| o["patient"]["given_name"] = json!("")),
            "patient.given_name: empty",
        ),
        (
            Box::new(|o| o["patient"]["id"] = json!(" ")),
            "patient.id: empty",
        ),
        (
            Box::new(|o| o["patient"]["date_of_birth"] = json!("1983-02-29")),
            "patient.date_of_birth",
        ),
        (
            Box::new(|o| o["expires_at"] = json!("tomorrow")),
            "expires_at",
        ),
        (
            Box::new(|o| o["product"]["code"] = json!("s1295")),
            "product.code",
        ),
        (
            Box::new(|o| o["patient"]["given_name"] = json!(42)),
            "invalid type",
        ),
    ];
    for (edit, field) in cases {
        let message = refusal(edit);
        assert!(message.contains(field), "{message}");
        assert!(
            message.starts_with("order 0 (ORD-25-000042): "),
            "{message}"
        );
        for phi in ["Example", "Pat", "1984", "PT-0042", "1234567", "`lost`"] {
            assert!(!message.contains(phi), "patient data in {message}");
        }
    }
}

#[test]
fn unknown_fields_are_ignored() {
    let mut file = examples();
    file["orders"][0]["future_field"] = json!({"anything": true});
    let (book, refused) = OrderBook::from_json(&file.to_string()).unwrap();
    assert_eq!((book.len(), refused.len()), (2, 0));
}

#[test]
fn a_second_order_with_the_same_identifier_is_refused() {
    let mut file = examples();
    let copy = file["orders"][0].clone();
    file["orders"].as_array_mut().unwrap().push(copy);
    let (book, refused) = OrderBook::from_json(&file.to_string()).unwrap();
    assert_eq!(book.len(), 2);
    assert!(
        refused[0]
            .to_string()
            .contains("coi: already used by another order"),
        "{}",
        refused[0]
    );
}

#[test]
fn not_an_order_list_is_an_error() {
    assert!(
        OrderBook::from_json("[]")
            .unwrap_err()
            .to_string()
            .contains("\"orders\" array")
    );
    assert!(
        OrderBook::from_json("{")
            .unwrap_err()
            .to_string()
            .contains("not JSON")
    );
}

/// `coi-agent reconcile` on the example orders at a lab receipt, judged at a time when they were
/// current.
fn reconcile(extra: &[&str]) -> std::process::Output {
    let orders =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/example-orders.json");
    Command::new(env!("CARGO_BIN_EXE_coi-agent"))
        .args(["reconcile", "--orders"])
        .arg(&orders)
        .args([
            "--site",
            "site-lab-1",
            "--step",
            "receipt",
            "--at",
            "2025-06-02T12:00:00Z",
        ])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn reconcile_command_gives_one_verdict_per_scan() {
    let output = reconcile(&[
        "--json",
        "]d1=+03000=A99992512345701=<S1295100&/CHA999925000043",
        "&/CHA999925000042",
        "garbage",
    ]);
    assert_eq!(output.status.code(), Some(1), "not all match");
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["verdict"], "match");
    assert_eq!(lines[0]["reason"], Value::Null);
    assert_eq!(
        (&lines[0]["coi"], &lines[0]["din"]),
        (&json!("CHA999925000043"), &json!("A999925123457"))
    );
    // Issue #17: one identifier alone is never a match: half a read, completed by the next.
    assert_eq!(
        (&lines[1]["verdict"], &lines[1]["needs"]),
        (&json!("incomplete"), &json!("din"))
    );
    assert_eq!(
        (&lines[2]["reason"], &lines[2]["coi"]),
        (&json!("not_isbt128"), &Value::Null)
    );
    let alone = reconcile(&["&/CHA999925000043"]);
    assert_eq!(alone.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&alone.stdout).starts_with("INCOMPLETE: COI identifier read."));
    let pair = reconcile(&["&/CHA999925000043", "=A99992512345700"]);
    assert_eq!(
        pair.status.code(),
        Some(0),
        "the half counts with its completion"
    );
    let said = String::from_utf8_lossy(&pair.stdout);
    assert!(
        said.lines()
            .nth(1)
            .unwrap()
            .starts_with("MATCH: bag 1 of 1"),
        "{said}"
    );
    // A pair that disagrees names both identifiers.
    let crossed = reconcile(&["&/CHA999925000043", "=A99992512345601"]);
    let said = String::from_utf8_lossy(&crossed.stdout);
    assert!(
        said.contains("din_coi_mismatch")
            && said.contains("A9999 25 123456")
            && said.contains("CH A9999 25 000043"),
        "{said}"
    );
    // Typed: as printed, with the boxed check characters.
    let din = coi_agent::isbt128::din::Din::parse("A999925123457").unwrap();
    let coi = coi_agent::isbt128::coi::CoiId::parse("CHA999925000043").unwrap();
    let typed_din = format!("A9999 25 123457 {}", din.check_character().as_char());
    let typed_coi = format!("CH A9999 25 000043 {}", coi.check_character().as_char());
    let typed = reconcile(&["--typed", &typed_din, &typed_coi]);
    assert_eq!(
        typed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&typed.stdout)
    );
    let unchecked = reconcile(&["--typed", "A9999 25 123457", &typed_coi]);
    assert_eq!(unchecked.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&unchecked.stdout)
            .starts_with("MISMATCH (bad_check): Not checked, nothing recorded: the DIN was typed without its boxed check character")
    );
}

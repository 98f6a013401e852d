//! The shared ISBT 128 vectors (`tests/data/`, copied from `shared/testdata/isbt128/`) as
//! data-driven tests: published DIN check characters, and scanner payloads with their expected
//! outcome.

#![allow(clippy::unwrap_used)] // test helpers fail loudly; that is their job

use coi_agent::isbt128::din::Din;
use coi_agent::isbt128::message::{self, Message};
use coi_agent::isbt128::structure::Value;

/// Rows of a TSV file, comments and blank lines left out.
fn rows(text: &str) -> Vec<Vec<&str>> {
    text.lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|line| line.split('\t').collect())
        .collect()
}

const DIN_CHECK: &str = include_str!("data/din-check.tsv");
const SCANS: &str = include_str!("data/scans.tsv");

#[test]
fn published_din_check_characters() {
    let rows = rows(DIN_CHECK);
    assert!(rows.len() >= 5, "din-check.tsv lost its vectors");
    for row in rows {
        let [din, check, flags, source] = row[..] else {
            panic!("malformed row {row:?}")
        };
        let parsed = Din::parse(din).unwrap_or_else(|e| panic!("{din} ({source}): {e}"));
        assert_eq!(
            parsed.check_character().to_string(),
            check,
            "{din}: {source}"
        );
        assert_eq!(parsed.check_flags().as_str(), flags, "{din}: {source}");
        // The same DIN in a barcode with its Type 3 flags is accepted...
        let data = format!("={din}{flags}");
        assert!(message::parse(data.as_bytes()).is_ok(), "{data}");
        // ...and with any other Type 3 value it is refused as a check failure.
        let wrong: u8 = (flags.parse::<u8>().unwrap() - 60 + 1) % 37 + 60;
        let data = format!("={din}{wrong}");
        let err = message::parse(data.as_bytes()).unwrap_err();
        assert!(err.is_check_failure(), "{data}: {err}");
    }
}

/// The facts a message states, in the words `scans.tsv` uses for expected outcomes.
fn facts(message: &Message<'_>) -> Vec<String> {
    message
        .structures
        .iter()
        .map(|s| match s.value {
            Value::Donation(d) => format!("DIN {} flags {}", d.din(), d.flags()),
            Value::ProductCode(p) => format!(
                "Product code {} collection type {} division {}",
                p.description_code(),
                p.collection_type().unwrap_or('-'),
                p.division().unwrap_or("-")
            ),
            Value::BloodGroups(g) => {
                format!("blood group special message {}", g.group_or_message())
            }
            Value::CompoundHeader(h) => format!("compound of {} structures", h.count()),
            Value::Coi(c) => format!(
                "COI identifier issuer {} year {} sequence {}",
                c.issuer(),
                c.year(),
                c.sequence()
            ),
            _ => s.spec.to_string(),
        })
        .collect()
}

#[test]
fn scan_payloads_give_their_expected_outcomes() {
    let rows = rows(SCANS);
    assert!(rows.len() >= 9, "scans.tsv lost its vectors");
    for row in rows {
        let [payload, expected, note] = row[..] else {
            panic!("malformed row {row:?}")
        };
        let res = message::parse(payload.as_bytes());
        match expected.split_once(':') {
            Some(("ok", what)) => {
                let message = res.unwrap_or_else(|e| panic!("{payload} ({note}): {e}"));
                let facts = facts(&message);
                // "DIN + blood group special message Ma": each part starts one fact.
                let what = what.split(" (").next().unwrap_or(what);
                for part in what.split(" + ") {
                    assert!(
                        facts.iter().any(|fact| fact.starts_with(part)),
                        "{payload} ({note}): expected {part:?}, got {facts:?}"
                    );
                }
            }
            Some(("error", what)) => {
                let err = res
                    .err()
                    .unwrap_or_else(|| panic!("{payload} ({note}): accepted"));
                assert_eq!(
                    err.kind(),
                    what.replace(' ', "_"),
                    "{payload} ({note}): {err}"
                );
            }
            _ => panic!("unknown expected outcome {expected:?}"),
        }
    }
}

/// The copies in tests/data must not drift from the shared vectors when those are at hand.
#[test]
fn copies_match_the_shared_vectors() {
    let shared =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/isbt128");
    for (name, copy) in [("din-check.tsv", DIN_CHECK), ("scans.tsv", SCANS)] {
        if let Ok(original) = std::fs::read_to_string(shared.join(name)) {
            assert_eq!(
                original, copy,
                "tests/data/{name} differs from shared/testdata"
            );
        }
    }
}

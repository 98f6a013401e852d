//! Operators in the journal (issue #12): unique ids, disabled ones kept, five wrong PINs in a
//! row lock an operator out for five minutes, audited.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use coi_agent::journal::Journal;
use coi_agent::journal::operators::{OperatorProblem, PinRecorded};
use coi_agent::operators::{LOCKOUT, Role};
use support::tempdb::TempDb;

fn journal(name: &str) -> (TempDb, Journal) {
    let db = TempDb::new(name);
    let journal = Journal::open(&db.0).expect("open");
    (db, journal)
}

#[test]
fn five_wrong_pins_in_a_row_lock_out_for_five_minutes_and_are_audited() {
    let (_db, mut journal) = journal("operators-lockout");
    journal
        .add_operator("rn1", "Ana", Role::Nurse, "$hash", None)
        .expect("sqlite")
        .expect("added");
    let now: jiff::Timestamp = "2026-11-30T10:00:00Z".parse().expect("time");
    for left in (1..=4).rev() {
        assert_eq!(
            journal
                .record_pin("rn1", false, "sign_in", now)
                .expect("pin"),
            PinRecorded::Wrong { left }
        );
    }
    // A right PIN in between starts the count again.
    assert_eq!(
        journal
            .record_pin("rn1", true, "sign_in", now)
            .expect("pin"),
        PinRecorded::Accepted
    );
    for _ in 0..4 {
        journal
            .record_pin("rn1", false, "sign_in", now)
            .expect("pin");
    }
    let locked = journal
        .record_pin("rn1", false, "reprint", now)
        .expect("pin");
    let until = now.checked_add(LOCKOUT).expect("time");
    assert_eq!(locked, PinRecorded::LockedOut { until });
    let row = journal.operator("rn1").expect("sqlite").expect("row");
    assert_eq!(row.locked_at(now), Some(until));
    assert_eq!(row.locked_at(until), None, "the lockout ends");
    let kinds: Vec<String> = journal
        .audit_entries(None)
        .expect("audit")
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        ["operator_added", "operator_signed_in", "operator_locked"]
    );
    assert!(journal.verify_audit().expect("verify").is_ok());
}

#[test]
fn operators_are_unique_and_disabled_ones_stay_listed() {
    let (_db, mut journal) = journal("operators-unique");
    journal
        .add_operator("t1", "Tech One", Role::Tech, "$h", Some("admin1"))
        .expect("sqlite")
        .expect("added");
    assert_eq!(
        journal
            .add_operator("t1", "Other", Role::Admin, "$h", None)
            .expect("sqlite"),
        Err(OperatorProblem::Exists("t1".to_owned()))
    );
    assert_eq!(
        journal.disable_operator("nobody", None).expect("sqlite"),
        Err(OperatorProblem::Unknown("nobody".to_owned()))
    );
    journal
        .disable_operator("t1", None)
        .expect("sqlite")
        .expect("disabled");
    let all = journal.operators().expect("list");
    assert_eq!(all.len(), 1);
    assert!(all[0].disabled_at.is_some());
    assert_eq!(all[0].name, "Tech One");
}

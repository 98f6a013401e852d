//! The journal (issue #6): records survive SIGKILL at any moment, the audit chain names the
//! first edited, deleted, reordered or truncated entry, and a scan's audit entry and events
//! commit with it.

#![allow(clippy::unwrap_used)] // test helpers fail loudly; that is their job

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use coi_agent::custody::NewEvent;
use coi_agent::isbt128::coi::CoiId;
use coi_agent::journal::audit::{AuditEntry, BrokenLink};
use coi_agent::journal::audit_key::{self, AuditKey};
use coi_agent::journal::{Journal, JournalError, ScanRecord, utc_text};
use coi_agent::reconcile::{Outcome, Reason, Verdict};
use support::tempdb::TempDb;

fn verdict(matched: bool, bag: u8) -> Verdict {
    let outcome = if matched {
        Outcome::Match
    } else {
        Outcome::Mismatch(Reason::WrongSite)
    };
    Verdict {
        coi: Some(CoiId::parse("CHA999925000042").unwrap()),
        bag: Some(bag),
        order_id: Some("ORD-25-000042".to_owned()),
        ..Verdict::bare(outcome, "test".to_owned())
    }
}

fn record(journal: &mut Journal, verdict: &Verdict, step: &str) -> i64 {
    let at = utc_text(jiff::Timestamp::now());
    let event = NewEvent {
        event_id: uuid::Uuid::now_v7().to_string(),
        kind: "bag_received".to_owned(),
        coi: "CHA999925000042".to_owned(),
        payload: serde_json::json!({"type": "bag_received"}),
    };
    let scan = ScanRecord {
        at: &at,
        source: "test",
        raw: b"]d1=+02000=A99992512345601&/CHA999925000042",
        parse_error: None,
        verdict,
        site_id: "site-lab-1",
        step,
        operator: Some("tech-7"),
    };
    journal.record_scan(&scan, &[event]).unwrap()
}

fn tamper(db: &TempDb, sql: &str) {
    let conn = open_for_tampering(db);
    conn.execute_batch("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;")
        .unwrap();
    conn.execute_batch(sql).unwrap();
}

/// The file as SQLite opens it, past coi-agent: no migration, no key.
fn open_for_tampering(db: &TempDb) -> rusqlite::Connection {
    rusqlite::Connection::open(&db.0).unwrap()
}

/// How a rewritten trail's hashes are made.
enum Signer<'k> {
    /// Plain SHA-256, no key: entries as made before keys.
    Plain,
    /// HMAC with this key, stored under its own id.
    Key(&'k AuditKey),
    /// HMAC with this key, claiming another key's id.
    Claiming(&'k AuditKey, &'k str),
}

/// Edits every entry from the second (`tech-7` becomes `tech-8`, in its scan too) and recomputes
/// the chain and head as `signer` can, restoring the guards: an insider's rewrite.
fn rewrite(db: &TempDb, entries: &[AuditEntry], signer: Signer<'_>) {
    rechain(db, &entries[1..], entries[0].hash, |entry, prev| {
        let details = entry.details.replace("tech-7", "tech-8");
        let fields = (
            entry.at.as_str(),
            entry.kind.as_str(),
            entry.subject.as_str(),
            details.as_str(),
        );
        let (hash, key_id) = match &signer {
            Signer::Plain => (
                coi_agent::journal::audit::entry_hash(
                    entry.seq, fields.0, fields.1, fields.2, fields.3, prev,
                ),
                None,
            ),
            Signer::Key(key) => (
                coi_agent::journal::audit::keyed_entry_hash(key, entry.seq, fields, prev),
                Some(key.id().to_owned()),
            ),
            Signer::Claiming(key, id) => (
                coi_agent::journal::audit::keyed_entry_hash(key, entry.seq, fields, prev),
                Some((*id).to_owned()),
            ),
        };
        (details, hash, key_id)
    });
    open_for_tampering(db)
        .execute_batch("UPDATE scans SET operator = 'tech-8' WHERE id >= 2;")
        .unwrap();
}

/// Makes the journal at `db` as a coi-agent before audit keys wrote it: plain entries, no key
/// column, no key file.
fn unkey(db: &TempDb) {
    unkey_with(db, str::to_owned);
}

/// [`unkey`], each entry's details as `edit` makes them.
fn unkey_with(db: &TempDb, edit: impl Fn(&str) -> String) {
    let entries = Journal::open_read_only(&db.0)
        .unwrap()
        .audit_entries(None)
        .unwrap();
    rechain(
        db,
        &entries,
        coi_agent::journal::audit::GENESIS,
        |entry, prev| {
            let details = edit(&entry.details);
            let hash = coi_agent::journal::audit::entry_hash(
                entry.seq,
                &entry.at,
                &entry.kind,
                &entry.subject,
                &details,
                prev,
            );
            (details, hash, None)
        },
    );
    open_for_tampering(db)
        .execute_batch("ALTER TABLE audit DROP COLUMN key_id;")
        .unwrap();
    std::fs::remove_file(audit_key::path_for(&db.0)).unwrap();
}

/// Rewrites `entries` (details, link, hash, key id as `make` gives them, after `prev`) and the
/// head, past the guards, which are put back.
fn rechain(
    db: &TempDb,
    entries: &[AuditEntry],
    mut prev: [u8; 32],
    make: impl Fn(&AuditEntry, &[u8; 32]) -> (String, [u8; 32], Option<String>),
) {
    tamper(db, "SELECT 1");
    let conn = open_for_tampering(db);
    for entry in entries {
        let (details, hash, key_id) = make(entry, &prev);
        conn.execute(
            "UPDATE audit SET details = ?2, prev_hash = ?3, hash = ?4, key_id = ?5 WHERE seq = ?1",
            rusqlite::params![entry.seq, details, prev.as_slice(), hash.as_slice(), key_id],
        )
        .unwrap();
        conn.execute(
            "UPDATE audit_head SET seq = ?1, hash = ?2",
            rusqlite::params![entry.seq, hash.as_slice()],
        )
        .unwrap();
        prev = hash;
    }
    conn.execute_batch(
        "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
         CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;",
    )
    .unwrap();
}

fn five_entries(name: &str) -> TempDb {
    let db = TempDb::new(name);
    let mut journal = Journal::open(&db.0).unwrap();
    for bag in 1..=5 {
        record(&mut journal, &verdict(true, bag), "receipt");
    }
    assert_eq!(journal.verify_audit().unwrap(), Ok(5));
    db
}

fn verify(db: &TempDb) -> Result<i64, BrokenLink> {
    Journal::open_read_only(&db.0)
        .unwrap()
        .verify_audit()
        .unwrap()
}

#[test]
fn a_scan_its_audit_entry_and_its_events_are_recorded_together() {
    let db = TempDb::new("together");
    let mut journal = Journal::open(&db.0).unwrap();
    record(&mut journal, &verdict(true, 1), "receipt");
    record(&mut journal, &verdict(false, 2), "receipt");
    record(&mut journal, &verdict(true, 2), "verify");
    assert_eq!(journal.scan_ids().unwrap(), vec![1, 2, 3]);
    assert_eq!(journal.pending_event_ids().unwrap().len(), 3);
    assert_eq!(journal.verify_audit().unwrap(), Ok(3));
    // Only a matched receipt counts as received.
    let received = journal.received_bags("site-lab-1").unwrap();
    assert_eq!(received.len(), 1);
    assert!(received.contains(&(CoiId::parse("CHA999925000042").unwrap(), 1)));
    assert!(
        journal
            .received_bags("site-apheresis-1")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn the_audit_trail_refuses_updates_and_deletes() {
    let db = five_entries("append-only");
    let journal = Journal::open(&db.0).unwrap();
    let err = journal
        .connection()
        .execute_batch("UPDATE audit SET kind = 'x' WHERE seq = 2")
        .unwrap_err()
        .to_string();
    assert!(err.contains("append-only"), "{err}");
    let err = journal
        .connection()
        .execute_batch("DELETE FROM audit WHERE seq = 2")
        .unwrap_err()
        .to_string();
    assert!(err.contains("append-only"), "{err}");
}

#[test]
fn verify_names_an_edited_entry() {
    let db = five_entries("edited");
    tamper(
        &db,
        "UPDATE audit SET details = replace(details, 'match', 'mismatch') WHERE seq = 3",
    );
    assert_eq!(verify(&db), Err(BrokenLink::Edited { seq: 3 }));
}

#[test]
fn verify_names_a_deleted_entry() {
    let db = five_entries("deleted");
    tamper(&db, "DELETE FROM audit WHERE seq = 2");
    assert_eq!(
        verify(&db),
        Err(BrokenLink::Unlinked {
            seq: 3,
            previous: 1
        })
    );
}

#[test]
fn verify_names_reordered_entries() {
    let db = five_entries("reordered");
    // Swap the contents of entries 2 and 4, keeping their positions.
    tamper(
        &db,
        "UPDATE audit SET seq = -2 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 4; UPDATE audit SET seq = 4 WHERE seq = -2;",
    );
    assert_eq!(
        verify(&db),
        Err(BrokenLink::Unlinked {
            seq: 2,
            previous: 1
        })
    );
}

#[test]
fn verify_notices_entries_cut_from_the_end() {
    let db = five_entries("truncated");
    tamper(&db, "DELETE FROM audit WHERE seq = 5");
    assert_eq!(verify(&db), Err(BrokenLink::Truncated { last: 4, head: 5 }));
}

#[test]
fn audit_verify_command_reports_and_exits_accordingly() {
    let db = five_entries("command");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_coi-agent"))
            .args(["audit", "verify", "--db"])
            .arg(&db.0)
            .output()
            .unwrap()
    };
    let ok = run();
    assert_eq!(ok.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout),
        "audit trail intact: 5 entries\n"
    );
    tamper(
        &db,
        "UPDATE audit SET subject = 'CHA999925000043' WHERE seq = 4",
    );
    let broken = run();
    assert_eq!(broken.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&broken.stdout),
        "AUDIT TRAIL BROKEN: audit entry 4: its content was changed (hash does not match)\n"
    );
}

#[test]
fn audit_export_filters_by_time_in_both_formats() {
    let db = five_entries("export");
    let export = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_coi-agent"))
            .args(["audit", "export", "--db"])
            .arg(&db.0)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0));
        String::from_utf8(output.stdout).unwrap()
    };
    let all = export(&[]);
    let lines: Vec<serde_json::Value> = all
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["details"]["operator"], "tech-7");
    assert_eq!(lines[1]["prev_hash"], lines[0]["hash"]);
    let third_at = lines[2]["at"].as_str().unwrap();
    assert_eq!(export(&["--since", third_at]).lines().count(), 3);
    assert_eq!(
        export(&["--since", "2100-01-01T00:00:00Z"]).lines().count(),
        0
    );
    let csv = export(&["--format", "csv"]);
    assert_eq!(
        csv.lines().next(),
        Some("seq,at,kind,subject,details,prev_hash,hash")
    );
    assert_eq!(csv.lines().count(), 6);
}

#[test]
fn a_journal_from_a_newer_coi_agent_is_not_touched() {
    let db = five_entries("newer");
    tamper(&db, "PRAGMA user_version = 99");
    let err = Journal::open(&db.0).unwrap_err();
    assert!(
        matches!(err, JournalError::TooNew { found: 99, .. }),
        "{err}"
    );
}

/// SIGKILL at random moments, 200 times (`COI_AGENT_CRASH_ROUNDS` for a longer soak, see
/// scripts/soak-journal.sh): every record acknowledged before the kill is there afterwards,
/// with its event, and the audit chain is intact.
#[test]
fn acknowledged_records_survive_sigkill() {
    let db = TempDb::new("crash");
    let rounds: usize = std::env::var("COI_AGENT_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(200)
        .max(200);
    let mut acknowledged: Vec<i64> = Vec::new();
    let mut seed = std::env::var("COI_AGENT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x2545_f491_4f6c_dd1du64);
    for round in 0..rounds {
        let mut child = Command::new(env!("CARGO_BIN_EXE_coi-agent"))
            .args(["dev", "journal-writer", "--db"])
            .arg(&db.0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // xorshift: a different kill moment each round, the same sequence every run.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let acks_before_kill = (seed % 8) as usize;
        let delay = Duration::from_micros(seed % 3000);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = 0;
        let started = Instant::now();
        while seen < acks_before_kill && started.elapsed() < Duration::from_secs(10) {
            match lines.next() {
                Some(Ok(line)) => {
                    acknowledged.push(line.strip_prefix("ack ").unwrap().parse().unwrap());
                    seen += 1;
                }
                _ => break,
            }
        }
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL
        // Acks already in the pipe were acknowledged before the kill too.
        for line in lines.map_while(Result::ok) {
            acknowledged.push(line.strip_prefix("ack ").unwrap().parse().unwrap());
        }
        child.wait().unwrap();
        if round % 20 == 19 || round == rounds - 1 {
            let journal = Journal::open(&db.0).unwrap();
            let ids = journal.scan_ids().unwrap();
            for id in &acknowledged {
                assert!(
                    ids.binary_search(id).is_ok(),
                    "acknowledged record {id} lost after round {round}"
                );
            }
            assert!(
                journal.verify_audit().unwrap().is_ok(),
                "audit broken after round {round}"
            );
            assert_eq!(
                journal.pending_event_ids().unwrap().len(),
                ids.len(),
                "each scan has its event"
            );
        }
    }
    assert!(
        acknowledged.len() >= 200,
        "the writer wrote too little to test anything: {}",
        acknowledged.len()
    );
}

#[test]
fn print_jobs_keep_every_state_and_refuse_a_second_job_with_the_same_id() {
    use coi_agent::journal::print_jobs::PrintJobRecord;
    let db = TempDb::new("jobs");
    let mut journal = Journal::open(&db.0).unwrap();
    let at = utc_text(jiff::Timestamp::now());
    let job = PrintJobRecord {
        template_version: "1",
        ..bag_job(&at)
    };
    journal.record_print_job(&job, &[]).unwrap();
    journal
        .record_job_state("job-1", "sent", None, &at, &[])
        .unwrap();
    journal
        .record_job_state("job-1", "failed", Some("media_out"), &at, &[])
        .unwrap();
    let states: Vec<(String, Option<String>)> = journal
        .job_states("job-1")
        .unwrap()
        .into_iter()
        .map(|s| (s.state, s.fault))
        .collect();
    assert_eq!(
        states,
        vec![
            ("queued".into(), None),
            ("sent".into(), None),
            ("failed".into(), Some("media_out".into()))
        ]
    );
    assert!(
        journal.record_print_job(&job, &[]).is_err(),
        "the same job id twice"
    );
    assert!(
        journal
            .record_job_state("job-2", "sent", None, &at, &[])
            .is_err(),
        "no such job"
    );
    assert_eq!(journal.verify_audit().unwrap(), Ok(3));

    // A journal from before the verify step (schema 2) gains its columns and keeps its jobs.
    drop(journal);
    unkey(&db);
    tamper(
        &db,
        "DROP TABLE operators;
         DROP INDEX scans_by_source;
         ALTER TABLE scans DROP COLUMN bags;
         ALTER TABLE print_jobs DROP COLUMN label_kind;
         ALTER TABLE print_jobs DROP COLUMN verification_scan;
         ALTER TABLE print_jobs DROP COLUMN verification;
         ALTER TABLE print_jobs DROP COLUMN collected_at;
         ALTER TABLE print_jobs DROP COLUMN reprint;
         DROP INDEX print_jobs_bag;
         ALTER TABLE outbox DROP COLUMN closed_reason;
         ALTER TABLE outbox DROP COLUMN closed_at;
         ALTER TABLE orders DROP COLUMN held;
         PRAGMA user_version = 2;",
    );
    let journal = Journal::open(&db.0).unwrap();
    let version: i64 = journal
        .connection()
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(
        version, 8,
        "migrated through schema 3 (verify), 4 (closed events), 5 (held orders), 6 (label kinds, scan outcomes) and 7 (operators)"
    );
    let job = journal.print_job("job-1").unwrap().unwrap();
    assert_eq!(
        (
            job.state.as_str(),
            job.verification,
            job.label_kind.as_str()
        ),
        ("failed", None, "bag")
    );
}

/// Issues #17 and #20: a schema-5 journal gains label kinds (its sample-tube jobs become
/// samples) and scan outcomes `sample` and `incomplete`; its scans and audit trail survive.
#[test]
fn r20_a_schema_5_journal_learns_samples_and_incomplete_scans() {
    let db = TempDb::new("schema5");
    let mut journal = Journal::open(&db.0).unwrap();
    record(&mut journal, &verdict(true, 1), "receipt");
    drop(journal);
    unkey(&db);
    {
        // Back to schema 5: as a journal written before this change.
        let conn = rusqlite::Connection::open(&db.0).unwrap();
        conn.execute_batch(
            "DROP TABLE operators;
             DROP INDEX scans_by_source;
             ALTER TABLE scans DROP COLUMN bags;
             ALTER TABLE print_jobs DROP COLUMN label_kind;",
        )
        .unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "schema_version", |row| row.get(0))
            .unwrap();
        conn.pragma_update(None, "writable_schema", true).unwrap();
        conn.execute(
            "UPDATE sqlite_schema SET sql = replace(sql, ?1, ?2) WHERE name = 'scans'",
            [
                "CHECK (verdict IN ('match', 'mismatch', 'sample', 'incomplete'))",
                "CHECK (verdict IN ('match', 'mismatch'))",
            ],
        )
        .unwrap();
        conn.pragma_update(None, "schema_version", version + 1)
            .unwrap();
        conn.pragma_update(None, "writable_schema", false).unwrap();
        conn.execute_batch(
            "INSERT INTO print_jobs (job_id, coi, bag, template, template_version, printer, zpl_sha256, created_at, state)
             VALUES ('tube-1', 'CHA999925000042', 1, 'sample-tube', '1', 'p', 'ab', '2026-01-01T00:00:00Z', 'confirmed');
             PRAGMA user_version = 5;",
        )
        .unwrap();
        let refused = conn.execute(
            "INSERT INTO scans (at, source, raw, verdict, message, site_id, step) VALUES ('t', 's', x'00', 'incomplete', 'm', 'x', 'receipt')",
            [],
        );
        assert!(refused.is_err(), "schema 5 knows no incomplete scans");
    }
    let mut journal = Journal::open(&db.0).unwrap();
    let tube = journal.print_job("tube-1").unwrap().unwrap();
    assert_eq!(tube.label_kind, "sample", "a sample-tube job is a sample");
    let half = Verdict {
        coi: Some(CoiId::parse("CHA999925000042").unwrap()),
        ..Verdict::bare(
            Outcome::Incomplete(coi_agent::reconcile::Missing::Din),
            "scan the DIN too".to_owned(),
        )
    };
    record(&mut journal, &half, "receipt");
    let integrity: String = journal
        .connection()
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    // The fixture wrote its old rows by hand, without their audit entries: verify names them.
    assert!(
        matches!(
            journal.verify_audit().unwrap(),
            Err(BrokenLink::NotCovered { what }) if what.contains("print job tube-1 has no audit entry")
        ),
        "the fixture's print job has no entry"
    );
}

/// Issue #13: two syncs at once never move the resume point back to an earlier time.
#[test]
fn r13_the_order_sync_resume_point_never_moves_back() {
    let db = TempDb::new("resume");
    let mut journal = Journal::open(&db.0).unwrap();
    let sync = |as_of: &str| coi_agent::order_sync::CheckedOrders {
        as_of: Some(as_of.to_owned()),
        ..Default::default()
    };
    journal
        .store_orders(&sync("2026-11-29T12:00:00Z"), "central")
        .unwrap();
    journal
        .store_orders(&sync("2026-11-29T11:00:00Z"), "central")
        .unwrap();
    assert_eq!(
        journal
            .sync_state(coi_agent::order_sync::RESUME_KEY)
            .unwrap()
            .as_deref(),
        Some("2026-11-29T12:00:00Z")
    );
    journal
        .store_orders(&sync("2026-11-29T13:00:00Z"), "central")
        .unwrap();
    assert_eq!(
        journal
            .sync_state(coi_agent::order_sync::RESUME_KEY)
            .unwrap()
            .as_deref(),
        Some("2026-11-29T13:00:00Z")
    );
}

/// Issue #13: a job voided while its printer had not answered stays voided, and the printer's
/// late answer sends nothing (central heard label_voided).
#[test]
fn r13_a_voided_job_stays_voided_and_its_late_answer_sends_nothing() {
    use coi_agent::journal::print_jobs::PrintJobRecord;
    let db = TempDb::new("voided-late");
    let mut journal = Journal::open(&db.0).unwrap();
    let at = utc_text(jiff::Timestamp::now());
    let job = PrintJobRecord {
        job_id: "job-v",
        printer: "p",
        operator: None,
        ..bag_job(&at)
    };
    journal.record_print_job(&job, &[]).unwrap();
    journal
        .void_job("job-v", "wrong bag", Some("rn-4"), &at, &[])
        .unwrap()
        .unwrap();
    let late = NewEvent {
        event_id: uuid::Uuid::now_v7().to_string(),
        kind: "label_printed".to_owned(),
        coi: "CHA999925000042".to_owned(),
        payload: serde_json::json!({}),
    };
    journal
        .record_job_state("job-v", "confirmed", None, &at, &[late])
        .unwrap();
    let job = journal.print_job("job-v").unwrap().unwrap();
    assert_eq!(job.state, "voided");
    assert_eq!(
        journal.outbox_status().unwrap().pending,
        0,
        "no late label_printed"
    );
    assert_eq!(
        journal.void_job("job-v", "again", None, &at, &[]).unwrap(),
        Err("voided".to_owned())
    );
    // Nor does a matching scan that would confirm it (issue #16: every state change is
    // conditional on the state it leaves).
    let matched = verdict(true, 1);
    let scan = ScanRecord {
        at: &at,
        source: "test",
        raw: b"=+02000",
        parse_error: None,
        verdict: &matched,
        site_id: "site-apheresis-1",
        step: "verify",
        operator: None,
    };
    journal
        .record_verification("job-v", &scan, &[], true)
        .unwrap();
    let job = journal.print_job("job-v").unwrap().unwrap();
    assert_eq!(job.state, "voided");
    let states: Vec<String> = journal
        .job_states("job-v")
        .unwrap()
        .into_iter()
        .map(|s| s.state)
        .collect();
    assert_eq!(
        states,
        ["queued", "voided", "confirmed"],
        "the late answer is history"
    );
    assert_eq!(journal.verify_audit().unwrap().map(|_| ()), Ok(()));
}

/// The README's durability promise (issue #18): the journal runs in WAL mode with
/// `synchronous=FULL` (each commit durable before it returns), and foreign keys enforced.
#[test]
fn the_journal_is_wal_with_full_sync() {
    let db = TempDb::new("pragmas");
    let journal = Journal::open(&db.0).unwrap();
    let conn = journal.connection();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    let synchronous: i64 = conn
        .pragma_query_value(None, "synchronous", |row| row.get(0))
        .unwrap();
    let foreign_keys: i64 = conn
        .pragma_query_value(None, "foreign_keys", |row| row.get(0))
        .unwrap();
    assert_eq!(
        (mode.as_str(), synchronous, foreign_keys),
        ("wal", 2, 1),
        "WAL, FULL (2), foreign keys on"
    );
}

#[test]
fn audit_verify_reads_the_configured_journal_and_answers_in_json() {
    let db = TempDb::new("audit-config");
    let dir = config_beside(&db);
    let mut journal = Journal::open(&db.0).unwrap();
    journal
        .record_scan(
            &ScanRecord {
                at: &utc_text(jiff::Timestamp::now()),
                source: "test",
                raw: b"x",
                parse_error: None,
                verdict: &verdict(true, 1),
                site_id: "site-lab-1",
                step: "receipt",
                operator: None,
            },
            &[],
        )
        .unwrap();
    drop(journal);
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_coi-agent"))
            .args(args)
            .output()
            .unwrap()
    };
    let config = dir.join("coi-agent.toml");
    let checked = run(&[
        "audit",
        "verify",
        "--json",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(checked.status.success(), "{checked:?}");
    let report: serde_json::Value = serde_json::from_slice(&checked.stdout).unwrap();
    assert_eq!(report["intact"], true);
    assert_eq!(report["entries"], 1);
    // Broken: the same shape says so, exit 1.
    tamper(&db, "UPDATE audit SET details = '{}' WHERE seq = 1");
    let broken = run(&[
        "audit",
        "verify",
        "--json",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(broken.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&broken.stdout).unwrap();
    assert_eq!(report["intact"], false);
    assert!(
        report["broken"].as_str().unwrap().contains("entry 1"),
        "{report}"
    );
}

#[test]
fn a_backup_taken_while_a_writer_records_is_consistent_private_and_checked() {
    let db = TempDb::new("backup");
    let dir = config_beside(&db);
    drop(Journal::open(&db.0).unwrap());
    // A writer records scans (each with its audit entry) the whole time.
    let mut writer = Command::new(env!("CARGO_BIN_EXE_coi-agent"))
        .args(["dev", "journal-writer", "--db"])
        .arg(&db.0)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acks = BufReader::new(writer.stdout.take().unwrap()).lines();
    for _ in 0..20 {
        acks.next();
    }
    let config = dir.join("coi-agent.toml");
    let mut copies = Vec::new();
    for n in 0..3 {
        let to = dir.join(format!("backup-{n}.sqlite"));
        let backup = Command::new(env!("CARGO_BIN_EXE_coi-agent"))
            .args(["journal", "backup", "--json", "--config"])
            .arg(&config)
            .arg("--to")
            .arg(&to)
            .output()
            .unwrap();
        assert!(backup.status.success(), "{backup:?}");
        let report: serde_json::Value = serde_json::from_slice(&backup.stdout).unwrap();
        assert_eq!(report["audit"]["intact"], true, "{report}");
        use std::os::unix::fs::MetadataExt as _;
        assert_eq!(std::fs::metadata(&to).unwrap().mode() & 0o777, 0o600);
        copies.push((to, report["audit"]["entries"].as_i64().unwrap()));
    }
    writer.kill().unwrap();
    writer.wait().unwrap();
    // Each copy is a journal on its own: its scans all have their audit entries.
    for (copy, entries) in &copies {
        let journal = Journal::open_read_only(copy).unwrap();
        let scans: i64 = journal
            .connection()
            .query_row("SELECT COUNT(*) FROM scans", [], |r| r.get(0))
            .unwrap();
        assert!(
            scans > 0 && scans <= *entries,
            "{scans} scans, {entries} entries"
        );
    }
    // A copy never overwrites a file.
    let again = Command::new(env!("CARGO_BIN_EXE_coi-agent"))
        .args(["journal", "backup", "--config"])
        .arg(&config)
        .arg("--to")
        .arg(&copies[0].0)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("no backup"));
}

/// A configuration naming `db` as its journal, written beside it; its directory.
fn config_beside(db: &TempDb) -> std::path::PathBuf {
    let dir = db.0.parent().unwrap().to_path_buf();
    std::fs::write(
        dir.join("coi-agent.toml"),
        "[site]\nid = \"site-lab-1\"\nworkstation = \"ws\"\n[journal]\npath = \"journal.sqlite\"\n\
         [orders]\nsource = \"file\"\nfile = \"orders.json\"\n",
    )
    .unwrap();
    dir
}

/// Bag 1's label job `job-1` for the example order, queued at `at`.
fn bag_job(at: &str) -> coi_agent::journal::print_jobs::PrintJobRecord<'_> {
    coi_agent::journal::print_jobs::PrintJobRecord {
        job_id: "job-1",
        coi: Some("CHA999925000042"),
        bag: Some(1),
        template: "apheresis-bag",
        template_version: "2",
        printer: "tcp://10.0.0.9:9100",
        zpl_sha256: "ab",
        operator: Some("rn-4"),
        at,
        state: "queued",
        reprint: false,
        collected_at: Some("2025-06-02T12:14:00Z"),
        label_kind: "bag",
        reason: None,
        max_per_bag: None,
    }
}

/// Five scans and a print job, each with its audit entry.
fn scans_and_a_job(name: &str) -> TempDb {
    let db = five_entries(name);
    let mut journal = Journal::open(&db.0).unwrap();
    let at = utc_text(jiff::Timestamp::now());
    journal.record_print_job(&bag_job(&at), &[]).unwrap();
    assert_eq!(journal.verify_audit().unwrap(), Ok(6));
    db
}

/// Tampers as someone who knows the guards: drops them, changes the journal, puts them back.
fn tamper_and_restore_guards(db: &TempDb, sql: &str) {
    tamper(db, sql);
    open_for_tampering(db)
        .execute_batch(
            "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
             CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;",
        )
        .unwrap();
}

/// Issue #16: what the chain alone missed. Each tampering is reported, saying what is wrong.
#[test]
fn verify_reports_every_kind_of_tampering_beyond_the_chain() {
    let cases: &[(&str, &str, bool, &str)] = &[
        (
            "guards dropped",
            "SELECT 1",
            false,
            "the guard that keeps audit entries from being edited was removed",
        ),
        (
            "tail and head row deleted",
            "DELETE FROM audit WHERE seq >= 5; DELETE FROM audit_head;",
            true,
            "the audit trail's head row is missing",
        ),
        (
            "both audit tables dropped",
            "DROP TABLE audit; DROP TABLE audit_head;",
            false,
            "the audit table is missing",
        ),
        (
            "both tables emptied",
            "DELETE FROM audit; DELETE FROM audit_head;",
            true,
            "scan 1 has no audit entry",
        ),
        (
            "a scan's verdict edited",
            "UPDATE scans SET verdict = 'mismatch' WHERE id = 2",
            true,
            "scan 2 no longer says what audit entry 2 recorded (verdict was changed)",
        ),
        (
            "a scan deleted",
            "DELETE FROM scans WHERE id = 3",
            true,
            "audit entry 3 records scan 3, which is no longer in the journal (deleted)",
        ),
        (
            "a scan added outside coi-agent",
            "INSERT INTO scans (at, source, raw, verdict, message, site_id, step) VALUES ('t', 's', x'00', 'match', 'm', 'site-lab-1', 'receipt')",
            true,
            "scan 6 has no audit entry",
        ),
        (
            "a print job's label hash edited",
            "UPDATE print_jobs SET zpl_sha256 = 'cd' WHERE job_id = 'job-1'",
            true,
            "print job job-1 no longer says what audit entry 6 recorded (zpl_sha256 was changed)",
        ),
        (
            "a guard recreated to do nothing",
            "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit WHEN 0 BEGIN SELECT 1; END;
             CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;",
            false,
            "the guard that keeps audit entries from being edited was removed or changed",
        ),
        (
            "the head row's hash edited",
            "UPDATE audit_head SET hash = zeroblob(32)",
            true,
            "the audit trail's head row does not hold entry 6's hash",
        ),
        (
            "a scan's time edited",
            "UPDATE scans SET at = '2020-01-01T00:00:00Z' WHERE id = 4",
            true,
            "scan 4 no longer says what audit entry 4 recorded (at was changed)",
        ),
        (
            "a scan's read edited",
            "UPDATE scans SET raw = x'3d41' WHERE id = 5",
            true,
            "scan 5 no longer says what audit entry 5 recorded (raw_sha256 was changed)",
        ),
        (
            "a scan's bag stored as text",
            "UPDATE scans SET bag = '2' WHERE id = 1",
            true,
            "scan 1 no longer says what audit entry 1 recorded (bag was changed)",
        ),
        (
            "a bag label made a sample label",
            "UPDATE print_jobs SET label_kind = 'sample' WHERE job_id = 'job-1'",
            true,
            "(label_kind was changed)",
        ),
        (
            "a custody event's payload edited",
            "UPDATE outbox SET payload = replace(payload, 'bag_received', 'scan_mismatch') WHERE id = 2",
            true,
            "no longer has the content audit entry 2 recorded (its payload was changed)",
        ),
        (
            "a custody event deleted",
            "DELETE FROM outbox WHERE id = 3",
            true,
            "which is no longer in the journal (deleted)",
        ),
        (
            "a scan's message edited",
            "UPDATE scans SET message = 'MISMATCH: whatever' WHERE id = 1",
            true,
            "scan 1 no longer says what audit entry 1 recorded (message_sha256 was changed)",
        ),
        (
            "a scan's bag count edited",
            "UPDATE scans SET bags = 3 WHERE id = 2",
            true,
            "scan 2 no longer says what audit entry 2 recorded (bags was changed)",
        ),
        (
            "a custody event marked delivered outside coi-agent (never sent)",
            "UPDATE outbox SET state = 'delivered', delivered_at = '2026-01-01T00:00:00Z' WHERE id = 2",
            true,
            "no longer says what its audit entries recorded: its state is delivered where its entries say pending",
        ),
        (
            "a custody event closed outside coi-agent",
            "UPDATE outbox SET closed_at = '2026-01-01T00:00:00Z', closed_reason = 'x' WHERE id = 3",
            true,
            "it was closed or reopened outside coi-agent",
        ),
        (
            "a print job's state edited",
            "UPDATE print_jobs SET state = 'voided' WHERE job_id = 'job-1'",
            true,
            "print job job-1 no longer says what its audit entries recorded (its state was changed)",
        ),
        (
            "a printer fault written into a job",
            "UPDATE print_jobs SET fault = 'paper out' WHERE job_id = 'job-1'",
            true,
            "(its printer fault was changed)",
        ),
        (
            "a job marked verified outside coi-agent",
            "UPDATE print_jobs SET verification = 'verified' WHERE job_id = 'job-1'",
            true,
            "(its verification was changed)",
        ),
        (
            "a state added to a job's history",
            "INSERT INTO print_job_states (job_id, state, at) VALUES ('job-1', 'confirmed', '2026-01-01T00:00:00Z')",
            true,
            "(its state history was changed)",
        ),
        (
            "a print job deleted",
            "DELETE FROM print_job_states WHERE job_id = 'job-1'; DELETE FROM print_jobs WHERE job_id = 'job-1'",
            true,
            "audit entry 6 records print job job-1, which is no longer in the journal (deleted)",
        ),
    ];
    for (name, sql, restore, says) in cases {
        let db = scans_and_a_job(&format!("tamper-{}", name.replace(' ', "-")));
        if *restore {
            tamper_and_restore_guards(&db, sql);
        } else {
            tamper(&db, sql);
        }
        let found = verify(&db);
        let said = match found {
            Ok(count) => panic!("{name}: passed as intact ({count} entries)"),
            Err(broken) => broken.to_string(),
        };
        assert!(said.contains(says), "{name}: {said}");
    }
}

/// A zeroed page is found by SQLite's integrity check, on a read-only copy.
#[test]
fn verify_reports_a_damaged_file() {
    let db = TempDb::new("zeroed");
    {
        let mut journal = Journal::open(&db.0).unwrap();
        for bag in 1..=200 {
            record(&mut journal, &verdict(bag % 2 == 0, 1 + bag % 9), "receipt");
        }
        journal
            .connection()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
    }
    use std::io::{Seek as _, Write as _};
    let mut file = std::fs::OpenOptions::new().write(true).open(&db.0).unwrap();
    let page = 4096u64;
    file.seek(std::io::SeekFrom::Start(3 * page)).unwrap();
    file.write_all(&vec![0u8; page as usize]).unwrap();
    drop(file);
    let copy = db.0.with_extension("copy.sqlite");
    std::fs::copy(&db.0, &copy).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o400)).unwrap();
    let found = Journal::open_read_only(&copy).map(|j| j.verify_audit());
    let said = match found {
        Ok(Ok(Err(broken))) => broken.to_string(),
        Ok(Err(sql)) => sql.to_string(),
        Err(open) => open.to_string(),
        Ok(Ok(Ok(count))) => panic!("a zeroed page passed as intact ({count} entries)"),
    };
    assert!(
        said.contains("damaged") || said.contains("malformed") || said.contains("not a database"),
        "{said}"
    );
    let _ = std::fs::remove_file(&copy);
}

/// Each custody event carries the audit trail's head as it was recorded (its record's entry
/// included); central keeps it, and `audit verify --anchor SEQ:HASH` finds a trail rewritten
/// since, even one whose every hash was recomputed (which the chain alone cannot see).
#[test]
fn events_carry_the_head_and_an_anchor_finds_a_recomputed_trail() {
    let db = five_entries("anchor");
    let conn = rusqlite::Connection::open(&db.0).unwrap();
    let payloads: Vec<serde_json::Value> = conn
        .prepare("SELECT payload FROM outbox ORDER BY id")
        .unwrap()
        .query_map([], |row| row.get::<_, String>(0))
        .unwrap()
        .map(|p| serde_json::from_str(&p.unwrap()).unwrap())
        .collect();
    assert_eq!(payloads.len(), 5);
    let entries = Journal::open_read_only(&db.0)
        .unwrap()
        .audit_entries(None)
        .unwrap();
    for (i, payload) in payloads.iter().enumerate() {
        // The event of scan i+1 was recorded right after that scan's entry, seq i+1.
        assert_eq!(payload["audit"]["seq"], i as i64 + 1, "{payload}");
        assert_eq!(
            payload["audit"]["hash"],
            coi_agent::journal::audit::hex(&entries[i].hash),
            "{payload}"
        );
    }
    let anchor = format!(
        "{}:{}",
        payloads[3]["audit"]["seq"],
        payloads[3]["audit"]["hash"].as_str().unwrap()
    );
    let verify_with = |anchor: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_coi-agent"))
            .args(["audit", "verify", "--db"])
            .arg(&db.0)
            .args(["--anchor", anchor])
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (code, said) = verify_with(&anchor);
    assert_eq!(code, Some(0), "{said}");
    // Someone with write access and the key edits entry 2 and recomputes every hash after it,
    // and the head.
    drop(conn);
    let key = AuditKey::load(&audit_key::path_for(&db.0)).unwrap();
    rewrite(&db, &entries, Signer::Key(&key));
    assert_eq!(
        verify(&db),
        Ok(5),
        "the chain alone cannot see a recomputed trail"
    );
    let (code, said) = verify_with(&anchor);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("entry 4 does not have the hash the anchor holds: the trail was rewritten"),
        "{said}"
    );
    let (code, said) = verify_with(&format!("9:{}", "0".repeat(64)));
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("entry 9, which the anchor names, is not in the journal"),
        "{said}"
    );
    let (code, said) = verify_with("4:nothex");
    assert_eq!(code, Some(2), "{said}");
}

/// Issue #16: the chain is keyed. A trail rewritten by someone who can write the journal but
/// not read its key is found, whichever way the hashes were remade.
#[test]
fn a_trail_recomputed_without_the_key_is_found() {
    let stranger_dir = TempDb::new("stranger-key");
    let stranger = AuditKey::create(&audit_key::path_for(&stranger_dir.0), 1).unwrap();
    for (name, says) in [
        (
            "remade as plain SHA-256",
            "audit entry 2 is not keyed, yet the audit key",
        ),
        (
            "remade with a guessed key under the real key's id",
            "audit entry 2: its content was changed",
        ),
        (
            "remade with another key under that key's id",
            "audit entries 2 to 5 are keyed with audit key",
        ),
    ] {
        let db = five_entries(&format!("rekey-{}", name.len()));
        let entries = Journal::open_read_only(&db.0)
            .unwrap()
            .audit_entries(None)
            .unwrap();
        let key = AuditKey::load(&audit_key::path_for(&db.0)).unwrap();
        assert!(
            entries
                .iter()
                .all(|e| e.key_id.as_deref() == Some(key.id()))
        );
        match name {
            "remade as plain SHA-256" => rewrite(&db, &entries, Signer::Plain),
            "remade with a guessed key under the real key's id" => {
                rewrite(&db, &entries, Signer::Claiming(&stranger, key.id()));
            }
            _ => rewrite(&db, &entries, Signer::Key(&stranger)),
        }
        let said = match verify(&db) {
            Ok(count) => panic!("{name}: passed as intact ({count} entries)"),
            Err(broken) => broken.to_string(),
        };
        assert!(said.contains(says), "{name}: {said}");
    }
}

/// A lost key: the next open makes a new one and says so in the trail; the entries the lost key
/// made are reported as not checked, until a copy of it is given. A backup verifies with the
/// journal's key; the copy alone, without it, is not called intact.
#[test]
fn a_lost_key_is_recorded_and_a_copy_checks_with_the_key_given() {
    let db = five_entries("lost-key");
    let key_path = audit_key::path_for(&db.0);
    let kept = db.0.with_extension("kept-key");
    std::fs::rename(&key_path, &kept).unwrap();
    let mut journal = Journal::open(&db.0).unwrap();
    let new_key = journal.audit_key().unwrap().clone();
    assert_eq!(new_key.from(), 6, "the new key keys entries after the head");
    record(&mut journal, &verdict(true, 6), "receipt");
    let entries = journal.audit_entries(None).unwrap();
    assert_eq!(entries[5].kind, "audit_key_made");
    let old = AuditKey::load(&kept).unwrap();
    assert!(
        entries[5]
            .details
            .contains(&format!("\"replaces\":\"{}\"", old.id())),
        "{}",
        entries[5].details
    );
    drop(journal);
    match verify(&db) {
        Err(BrokenLink::NotChecked {
            key_id,
            first,
            last,
            lost,
        }) => {
            assert_eq!((key_id.as_str(), first, last), (old.id(), 1, 5));
            assert!(lost.contains("its file was lost: entry 6"), "{lost}");
        }
        other => panic!("entries of a lost key passed as {other:?}"),
    }
    let cli = |args: &[&std::ffi::OsStr]| {
        let output = Command::new(env!("CARGO_BIN_EXE_coi-agent"))
            .args(args)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (code, said) = cli(&verify_args(&db.0, &[]));
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("AUDIT TRAIL NOT WHOLLY CHECKED: audit entries 1 to 5"),
        "{said}"
    );
    let (code, said) = cli(&verify_args(&db.0, &[&kept]));
    assert_eq!(
        (code, said.trim()),
        (Some(0), "audit trail intact: 7 entries")
    );
    // A backup is checked with the live key; alone, the copy's keyed entries are not checked.
    let backup = db.0.with_extension("backup.sqlite");
    let config = config_beside(&db).join("coi-agent.toml");
    let (code, said) = cli(&[
        "journal".as_ref(),
        "backup".as_ref(),
        "--config".as_ref(),
        config.as_ref(),
        "--to".as_ref(),
        backup.as_ref(),
    ]);
    assert_eq!(
        code,
        Some(1),
        "the lost key's entries are still unchecked: {said}"
    );
    assert!(said.contains("NOT WHOLLY CHECKED"), "{said}");
    // With the copy of the lost key, a backup checks whole.
    let second = db.0.with_extension("backup2.sqlite");
    let (code, said) = cli(&[
        "journal".as_ref(),
        "backup".as_ref(),
        "--config".as_ref(),
        config.as_ref(),
        "--to".as_ref(),
        second.as_ref(),
        "--key".as_ref(),
        kept.as_ref(),
    ]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("audit trail intact: 7 entries"), "{said}");
    let (code, said) = cli(&verify_args(&backup, &[&kept]));
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("audit entries 6 to 7 are keyed with audit key"),
        "{said}"
    );
    let (code, said) = cli(&verify_args(&backup, &[&kept, &key_path]));
    assert_eq!(
        (code, said.trim()),
        (Some(0), "audit trail intact: 7 entries")
    );
    // A key file that is not one is refused by name, as a usage error.
    std::fs::write(&kept, "not a key").unwrap();
    let (code, said) = cli(&verify_args(&db.0, &[&kept]));
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("is not an audit key file"), "{said}");
    // Entries cut from the end, scans and events with them, and the head rewound: without an
    // anchor, the key's `from` (entry 6) still shows the trail once reached entry 5.
    tamper_and_restore_guards(
        &db,
        "DELETE FROM audit WHERE seq >= 5; DELETE FROM outbox WHERE id >= 5; DELETE FROM scans WHERE id >= 5;
         UPDATE audit_head SET seq = 4, hash = (SELECT hash FROM audit WHERE seq = 4);",
    );
    let (code, said) = cli(&verify_args(&db.0, &[]));
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("ends at entry 4") && said.contains("removed from the end"),
        "{said}"
    );
}

/// `audit verify --db DB` with a `--key` for each of `keys`.
fn verify_args<'a>(
    db: &'a std::path::Path,
    keys: &[&'a std::path::Path],
) -> Vec<&'a std::ffi::OsStr> {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "audit".as_ref(),
        "verify".as_ref(),
        "--db".as_ref(),
        db.as_ref(),
    ];
    for key in keys {
        args.extend([std::ffi::OsStr::new("--key"), key.as_os_str()]);
    }
    args
}

/// A command that writes the journal says so loudly when it had to make a new audit key: site IT
/// must look for a copy of the lost one now.
#[test]
fn a_new_key_made_for_a_lost_one_is_announced_on_stderr() {
    let db = five_entries("lost-key-said");
    let key = audit_key::path_for(&db.0);
    let lost = AuditKey::load(&key).unwrap();
    std::fs::remove_file(&key).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_coi-agent"))
        .args(["dev", "journal-writer", "--db"])
        .arg(&db.0)
        .args(["--count", "1"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{said}");
    assert!(
        said.contains("WARNING: the audit key")
            && said.contains("was missing")
            && said.contains(&format!("keyed with key {}", lost.id())),
        "{said}"
    );
}

/// Issue #16 (found by a site-IT trial): the order cache is what labels print from, so each
/// cached order is bound to the entry of the sync that stored it: a name edited in the cache,
/// an order added or removed outside coi-agent, is reported. A journal from before keys has its
/// orders bound once, when its key is made.
#[test]
fn the_order_cache_is_covered_by_the_trail() {
    let sync = |db: &TempDb| {
        let dir = config_beside(db);
        std::fs::write(
            dir.join("orders.json"),
            include_str!("data/example-orders.json"),
        )
        .unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_coi-agent"))
            .args(["orders", "sync", "--config"])
            .arg(dir.join("coi-agent.toml"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
    };
    let cases: &[(&str, &str, &str)] = &[
        (
            "a patient's name edited in the cache",
            "UPDATE orders SET record = replace(record, 'Example', 'Smith') WHERE coi = 'CHA999925000042'",
            "cached order CHA999925000042 no longer is what audit entry",
        ),
        (
            "a shipped order made scheduled",
            "UPDATE orders SET status = 'scheduled' WHERE coi = 'CHA999925000043'",
            "cached order CHA999925000043 no longer is what audit entry",
        ),
        (
            "an order added outside coi-agent",
            "INSERT INTO orders (coi, din, order_id, status, record, synced_at) SELECT 'CHA999925000099', 'A999925000099', order_id, status, record, synced_at FROM orders LIMIT 1",
            "cached order CHA999925000099 has no audit entry",
        ),
        (
            "an order removed from the cache",
            "DELETE FROM orders WHERE coi = 'CHA999925000042'",
            "records cached order CHA999925000042, which is no longer in the journal",
        ),
    ];
    for (name, sql, says) in cases {
        let db = TempDb::new(&format!("orders-{}", name.len()));
        sync(&db);
        assert_eq!(verify(&db).map(|_| ()), Ok(()), "{name}: before");
        tamper_and_restore_guards(&db, sql);
        match verify(&db) {
            Ok(count) => panic!("{name}: passed as intact ({count} entries)"),
            Err(broken) => assert!(broken.to_string().contains(says), "{name}: {broken}"),
        }
    }
    // A journal from before keys: its cached orders are bound when its first key is made.
    let db = TempDb::new("orders-upgrade");
    sync(&db);
    // Entries made then named no orders.
    unkey_with(&db, |details| {
        let mut value: serde_json::Value = serde_json::from_str(details).unwrap();
        value.as_object_mut().unwrap().remove("bound");
        coi_agent::journal::audit::canonical_json(&value)
    });
    open_for_tampering(&db)
        .execute_batch("PRAGMA user_version = 7;")
        .unwrap();
    drop(Journal::open(&db.0).unwrap());
    assert_eq!(
        verify(&db).map(|_| ()),
        Ok(()),
        "bound when the key was made"
    );
    let kinds: Vec<String> = Journal::open_read_only(&db.0)
        .unwrap()
        .audit_entries(None)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(
        kinds.ends_with(&["audit_key_made".to_owned(), "orders_bound".to_owned()]),
        "{kinds:?}"
    );
    tamper_and_restore_guards(&db, cases[0].1);
    assert!(verify(&db).is_err(), "an edit after binding is found");
}

/// A key file replaced while a journal is open (a command made a new key while the service ran
/// on the old one): the open handle keys its next entry with the key the file now holds, not
/// the one it read at start.
#[test]
fn an_open_journal_follows_its_key_file() {
    let db = five_entries("key-follows");
    let key_path = audit_key::path_for(&db.0);
    let mut running = Journal::open(&db.0).unwrap();
    let old = running.audit_key().unwrap().clone();
    std::fs::rename(&key_path, db.0.with_extension("moved-key")).unwrap();
    // Another process opens the journal for writing: it makes the new key.
    drop(Journal::open(&db.0).unwrap());
    let new = AuditKey::load(&key_path).unwrap();
    assert_ne!(new.id(), old.id());
    record(&mut running, &verdict(true, 6), "receipt");
    let entries = running.audit_entries(None).unwrap();
    let last = entries.last().unwrap();
    assert_eq!(last.kind, "scan");
    assert_eq!(
        last.key_id.as_deref(),
        Some(new.id()),
        "keyed with the key the file holds"
    );
    // And a key file removed under an open handle is replaced before its next entry.
    std::fs::remove_file(&key_path).unwrap();
    record(&mut running, &verdict(true, 7), "receipt");
    let newest = AuditKey::load(&key_path).unwrap();
    let entries = running.audit_entries(None).unwrap();
    let kinds: Vec<&str> = entries
        .iter()
        .rev()
        .take(2)
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(kinds, ["scan", "audit_key_made"]);
    assert_eq!(entries.last().unwrap().key_id.as_deref(), Some(newest.id()));
}

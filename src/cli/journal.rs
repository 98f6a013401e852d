//! `coi-agent audit verify|export` for site IT and inspectors, and the journal writer that the
//! crash tests kill (`coi-agent dev journal-writer`, hidden).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use serde_json::json;

use crate::custody::NewEvent;
use crate::journal::audit::hex;
use crate::journal::{Journal, ScanRecord};

use crate::reconcile::{Outcome, Reason, Verdict};

/// The journal at `db`, read-only, or `None` once why not is said on `err`.
fn open_read_only(db: &Path, err: &mut dyn Write) -> std::io::Result<Option<Journal>> {
    match Journal::open_read_only(db) {
        Ok(journal) => Ok(Some(journal)),
        Err(problem) => {
            writeln!(err, "coi-agent: {problem}")?;
            Ok(None)
        }
    }
}

/// The key files given with `--key`, or `None` once why one cannot be used is said on `err`.
fn load_keys(
    files: &[std::path::PathBuf],
    err: &mut dyn Write,
) -> std::io::Result<Option<Vec<crate::journal::audit_key::AuditKey>>> {
    let mut keys = Vec::with_capacity(files.len());
    for file in files {
        match crate::journal::audit_key::AuditKey::load(file) {
            Ok(key) => keys.push(key),
            Err(problem) => {
                writeln!(err, "coi-agent: --key: {problem}")?;
                return Ok(None);
            }
        }
    }
    Ok(Some(keys))
}

pub(super) fn verify(
    db: &Path,
    (anchors, keys): (&[String], &[std::path::PathBuf]),
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let mut parsed = Vec::with_capacity(anchors.len());
    for anchor in anchors {
        let Some((seq, hash)) = anchor
            .split_once(':')
            .and_then(|(seq, hash)| Some((seq.parse::<i64>().ok()?, hash)))
            .filter(|(_, hash)| hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        else {
            writeln!(
                err,
                "coi-agent: --anchor takes SEQ:HASH (an entry number and its 64 hex digits), as a custody event's audit field carries them"
            )?;
            return Ok(ExitCode::from(2));
        };
        parsed.push((seq, hash));
    }
    let Some(more) = load_keys(keys, err)? else {
        return Ok(ExitCode::from(2));
    };
    let Some(journal) = open_read_only(db, err)? else {
        return Ok(ExitCode::FAILURE);
    };
    let mut report = crate::report::AuditReport::new(&journal.verify_audit_with(&more)?);
    if report.intact {
        for (seq, hash) in parsed {
            if let Err(problem) = journal.check_anchor(seq, hash)? {
                report = crate::report::AuditReport {
                    intact: false,
                    entries: None,
                    message: format!("AUDIT TRAIL BROKEN: {problem}"),
                    broken: Some(problem),
                };
                break;
            }
        }
    }
    if json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
    } else {
        writeln!(out, "{}", report.message)?;
    }
    Ok(if report.intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub(super) fn backup(
    db: &Path,
    (to, older): (&Path, &[std::path::PathBuf]),
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let Some(mut keys) = load_keys(older, err)? else {
        return Ok(ExitCode::from(2));
    };
    let Some(journal) = open_read_only(db, err)? else {
        return Ok(ExitCode::FAILURE);
    };
    if let Err(problem) = journal.backup_to(to) {
        writeln!(err, "coi-agent: no backup: {problem}")?;
        return Ok(ExitCode::FAILURE);
    }
    // The copy is checked with the journal's key (a copy has none beside it; the key is kept
    // apart from backups, docs/audit.md).
    keys.extend(journal.audit_key().cloned());
    drop(journal);
    let copy = Journal::open_read_only(to)?;
    let audit = crate::report::AuditReport::new(&copy.verify_audit_with(&keys)?);
    let bytes = std::fs::metadata(to).map(|m| m.len()).unwrap_or(0);
    if json {
        writeln!(
            out,
            "{}",
            json!({"backup": to.display().to_string(), "bytes": bytes, "audit": audit})
        )?;
    } else {
        writeln!(
            out,
            "backup {} written ({bytes} bytes); the copy's {}",
            to.display(),
            audit.message
        )?;
    }
    Ok(if audit.intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub(super) fn export(
    db: &Path,
    since: Option<jiff::Timestamp>,
    csv: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let Some(journal) = open_read_only(db, err)? else {
        return Ok(ExitCode::FAILURE);
    };
    let since = since.map(crate::journal::utc_text);
    let entries = journal.audit_entries(since.as_deref())?;
    if csv {
        writeln!(out, "seq,at,kind,subject,details,prev_hash,hash")?;
    }
    for e in entries {
        if csv {
            let fields = [
                e.seq.to_string(),
                e.at,
                e.kind,
                e.subject,
                e.details,
                hex(&e.prev_hash),
                hex(&e.hash),
            ];
            let quoted: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            writeln!(out, "{}", quoted.join(","))?;
        } else {
            let details: serde_json::Value = serde_json::from_str(&e.details)
                .unwrap_or(serde_json::Value::String(e.details.clone()));
            let line = json!({
                "seq": e.seq, "at": e.at, "kind": e.kind, "subject": e.subject, "details": details,
                "prev_hash": hex(&e.prev_hash), "hash": hex(&e.hash),
            });
            writeln!(out, "{line}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// RFC 4180: quote every field, double the quotes inside.
fn csv_field(field: &str) -> String {
    format!("\"{}\"", field.replace('"', "\"\""))
}

/// Appends scan records until killed (or `count` are written), printing `ack ID` after each
/// durable commit: the crash tests check every acknowledged record survives a SIGKILL.
pub(super) fn journal_writer(
    db: &Path,
    count: Option<u64>,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let mut journal = Journal::open(db)?;
    let verdict = Verdict::bare(
        Outcome::Mismatch(Reason::UnknownCoi),
        "crash test".to_owned(),
    );
    let mut written = 0u64;
    while count.is_none_or(|n| written < n) {
        let at = crate::journal::utc_text(jiff::Timestamp::now());
        let event_id = uuid::Uuid::now_v7().to_string();
        let event = NewEvent {
            event_id: event_id.clone(),
            kind: "scan_mismatch".to_owned(),
            coi: "CHA999925000042".to_owned(),
            payload: json!({
                "event_id": event_id, "type": "scan_mismatch", "coi": "CHA999925000042",
                "site_id": "site-lab-1", "workstation": "crash-test", "at": at,
            }),
        };
        let record = ScanRecord {
            at: &at,
            source: "crash-test",
            raw: b"&/CHA999925000099",
            parse_error: None,
            verdict: &verdict,
            site_id: "site-lab-1",
            step: "receipt",
            operator: None,
        };
        let id = journal.record_scan(&record, std::slice::from_ref(&event))?;
        writeln!(out, "ack {id}")?;
        out.flush()?;
        written += 1;
    }
    Ok(ExitCode::SUCCESS)
}

//! Print jobs in the journal: what was sent to which printer, from which template version, by
//! whom, and every state it went through (`queued`, `preflight`, `sent`, `confirmed`,
//! `unconfirmed`, `failed`), each change with its time, audit entry and events.

use rusqlite::params;

use super::{Journal, JournalError, ScanRecord, audit, insert_event, insert_scan};
use crate::custody::NewEvent;
use crate::reconcile::Outcome;

/// A print job as first recorded.
#[derive(Debug, Clone)]
pub struct PrintJobRecord<'a> {
    pub job_id: &'a str,
    pub coi: Option<&'a str>,
    pub bag: Option<u8>,
    pub template: &'a str,
    pub template_version: &'a str,
    pub printer: &'a str,
    /// SHA-256 of the exact bytes sent, hex.
    pub zpl_sha256: &'a str,
    pub operator: Option<&'a str>,
    /// From [`super::utc_text`].
    pub at: &'a str,
    pub state: &'a str,
    /// A second label for a bag, asked for as such.
    pub reprint: bool,
    /// The collection time the label carries (RFC 3339, UTC, to the minute).
    pub collected_at: Option<&'a str>,
    /// `bag` (a bag's label: one per bag) or `sample` (a sample tube's: any number).
    pub label_kind: &'a str,
    /// A reprint's reason (in the audit entry).
    pub reason: Option<&'a str>,
    /// Sample labels: how many the bag may have.
    pub max_per_bag: Option<u32>,
}

/// A recorded job, as the verify step needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintJobSummary {
    pub coi: Option<String>,
    pub bag: Option<u8>,
    /// `bag` or `sample`.
    pub label_kind: String,
    /// The collection time the label carries (RFC 3339, UTC).
    pub collected_at: Option<String>,
    pub state: String,
    pub reprint: bool,
    /// `verified` or `flagged` once its label was scanned.
    pub verification: Option<String>,
}

/// Why a bag label job was not recorded, and so must not be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BagLabelConflict {
    /// The bag may already carry a label: a job for it that did not fail.
    AlreadyLabelled { job_id: String, state: String },
    /// A reprint asked for a bag never labelled.
    NothingToReprint,
    /// The collection's labels carry another collection time.
    CollectionTime { recorded: String },
    /// The bag has as many sample labels as its template allows.
    TooManySamples { max: u32 },
}

/// One state a job went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    pub state: String,
    pub fault: Option<String>,
    pub at: String,
}

/// Inserts a job, its first state and its audit entry.
fn insert_job(
    tx: &super::Writer<'_>,
    job: &PrintJobRecord<'_>,
    events: &[NewEvent],
) -> Result<(), JournalError> {
    tx.execute(
        "INSERT INTO print_jobs (job_id, coi, bag, template, template_version, printer, zpl_sha256, operator, created_at, state, reprint, collected_at, label_kind)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![job.job_id, job.coi, job.bag, job.template, job.template_version, job.printer, job.zpl_sha256, job.operator, job.at, job.state, job.reprint, job.collected_at, job.label_kind],
    )?;
    tx.execute(
        "INSERT INTO print_job_states (job_id, state, at) VALUES (?1, ?2, ?3)",
        params![job.job_id, job.state, job.at],
    )?;
    let details = serde_json::json!({
        "job_id": job.job_id, "bag": job.bag, "template": job.template, "template_version": job.template_version,
        "printer": job.printer, "zpl_sha256": job.zpl_sha256, "operator": job.operator, "state": job.state,
        "reprint": job.reprint, "collected_at": job.collected_at, "label_kind": job.label_kind,
        "reason": job.reason,
    });
    audit::append(
        tx,
        job.at,
        "print_job",
        job.coi.unwrap_or_default(),
        &audit::with_events(&details, events),
    )?;
    for event in events {
        insert_event(tx, event, job.at)?;
    }
    Ok(())
}

/// Records a job's move to `state` in its history, with its audit entry and `events`, in `tx`.
fn log_state(
    tx: &super::Writer<'_>,
    (job_id, coi): (&str, Option<&str>),
    (state, fault): (&str, Option<&str>),
    at: &str,
    details: &serde_json::Value,
    events: &[NewEvent],
) -> Result<(), JournalError> {
    tx.execute(
        "INSERT INTO print_job_states (job_id, state, fault, at) VALUES (?1, ?2, ?3, ?4)",
        params![job_id, state, fault, at],
    )?;
    audit::append(
        tx,
        at,
        "print_job_state",
        coi.unwrap_or_default(),
        &audit::with_events(details, events),
    )?;
    for event in events {
        insert_event(tx, event, at)?;
    }
    Ok(())
}

impl Journal {
    /// Records a new job and its first state.
    ///
    /// # Errors
    /// SQLite failed, or a job with this id exists (a resubmitted job id must not print twice).
    pub fn record_print_job(
        &mut self,
        job: &PrintJobRecord<'_>,
        events: &[NewEvent],
    ) -> Result<(), JournalError> {
        let tx = self.write()?;
        insert_job(&tx, job, events)?;
        tx.commit()?;
        Ok(())
    }

    /// Records a bag label's job, unless the bag may already carry a label (and this is not a
    /// reprint), a reprint has nothing to reprint, or the collection's labels carry another
    /// collection time. The check and the record are one write transaction, so two workstations
    /// or processes printing the same bag at once cannot both pass it. A sample tube's label
    /// (`label_kind` `sample`) is checked for the collection time only: a bag has any number
    /// of sample tubes, and they never count as its label.
    ///
    /// # Errors
    /// SQLite failed; nothing was recorded.
    pub fn record_bag_label_job(
        &mut self,
        coi: &str,
        bag: u8,
        job: &PrintJobRecord<'_>,
    ) -> Result<Result<(), BagLabelConflict>, JournalError> {
        let tx = self.write()?;
        if let (Some(max), "sample") = (job.max_per_bag, job.label_kind) {
            let printed: u32 = tx.query_row(
                "SELECT COUNT(*) FROM print_jobs WHERE coi = ?1 AND bag = ?2 AND label_kind = 'sample' AND state NOT IN ('failed', 'voided')",
                params![coi, bag],
                |row| row.get(0),
            )?;
            if printed >= max {
                return Ok(Err(BagLabelConflict::TooManySamples { max }));
            }
        }
        if job.label_kind == "bag" {
            let latest: Option<(String, String)> =
                rusqlite::OptionalExtension::optional(tx.query_row(
                    "SELECT job_id, state FROM print_jobs WHERE coi = ?1 AND bag = ?2 AND label_kind = 'bag' AND state NOT IN ('failed', 'voided') ORDER BY id DESC LIMIT 1",
                    params![coi, bag],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                ))?;
            match (latest, job.reprint) {
                (Some((job_id, state)), false) => {
                    return Ok(Err(BagLabelConflict::AlreadyLabelled { job_id, state }));
                }
                (None, true) => return Ok(Err(BagLabelConflict::NothingToReprint)),
                _ => {}
            }
        }
        if let Some(recorded) = collection_time(&tx, coi)?
            && job.collected_at != Some(recorded.as_str())
        {
            return Ok(Err(BagLabelConflict::CollectionTime { recorded }));
        }
        let job = PrintJobRecord {
            coi: Some(coi),
            bag: Some(bag),
            ..job.clone()
        };
        insert_job(&tx, &job, &[])?;
        tx.commit()?;
        Ok(Ok(()))
    }

    /// The collection time the labels of `coi`'s collection carry, once one was printed.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn collection_time(&self, coi: &str) -> Result<Option<String>, JournalError> {
        collection_time(&self.conn, coi)
    }

    /// Records a job's move to `state` (with the printer fault, if any).
    ///
    /// # Errors
    /// SQLite failed, or there is no such job.
    pub fn record_job_state(
        &mut self,
        job_id: &str,
        state: &str,
        fault: Option<&str>,
        at: &str,
        events: &[NewEvent],
    ) -> Result<(), JournalError> {
        let tx = self.write()?;
        let (coi, voided): (Option<String>, bool) = tx.query_row(
            "SELECT coi, state = 'voided' FROM print_jobs WHERE job_id = ?1",
            [job_id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        // A voided label stays voided, whatever its printer says later, and its events (a
        // late label_printed) are not sent: central heard label_voided.
        let events = if voided { &[][..] } else { events };
        tx.execute(
            "UPDATE print_jobs SET state = ?2, fault = ?3 WHERE job_id = ?1 AND state <> 'voided'",
            params![job_id, state, fault],
        )?;
        let details = serde_json::json!({"job_id": job_id, "state": state, "fault": fault});
        log_state(
            &tx,
            (job_id, coi.as_deref()),
            (state, fault),
            at,
            &details,
            events,
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The jobs recorded for bag `bag` of `coi` that may have put a label on paper (any state
    /// but `failed`), oldest first, as (job id, state).
    ///
    /// # Errors
    /// SQLite failed.
    pub fn bag_label_jobs(
        &self,
        coi: &str,
        bag: u8,
    ) -> Result<Vec<(String, String)>, JournalError> {
        let mut stmt = self.conn.prepare(
            "SELECT job_id, state FROM print_jobs WHERE coi = ?1 AND bag = ?2 AND label_kind = 'bag' AND state NOT IN ('failed', 'voided') ORDER BY id",
        )?;
        let jobs = stmt.query_map(params![coi, bag], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(jobs.collect::<Result<_, _>>()?)
    }

    /// Whether a bag label of bag `bag` of `coi` was voided.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn bag_label_voided(&self, coi: &str, bag: u8) -> Result<bool, JournalError> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM print_jobs WHERE coi = ?1 AND bag = ?2 AND label_kind = 'bag' AND state = 'voided')",
            params![coi, bag],
            |row| row.get(0),
        )?)
    }

    /// The bag labels of `coi` waiting for the verify step: for each bag, its latest job that
    /// may have put a label on paper, when it has not been verified or flagged yet, newest
    /// first, as (job id, bag).
    ///
    /// # Errors
    /// SQLite failed.
    pub fn unverified_jobs(&self, coi: &str) -> Result<Vec<(String, u8)>, JournalError> {
        let mut stmt = self.conn.prepare(
            "SELECT job_id, bag FROM print_jobs p WHERE coi = ?1 AND label_kind = 'bag' AND state NOT IN ('failed', 'voided') AND verification IS NULL
               AND id = (SELECT MAX(id) FROM print_jobs WHERE coi = p.coi AND bag = p.bag AND label_kind = 'bag' AND state NOT IN ('failed', 'voided'))
             ORDER BY id DESC",
        )?;
        let jobs = stmt.query_map([coi], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(jobs.collect::<Result<_, _>>()?)
    }

    /// The sample tube labels of `coi` waiting for the verify step, newest first: every job
    /// that may have put one on paper and was not verified or flagged yet.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn unverified_sample_jobs(&self, coi: &str) -> Result<Vec<String>, JournalError> {
        let mut stmt = self.conn.prepare(
            "SELECT job_id FROM print_jobs WHERE coi = ?1 AND label_kind = 'sample' AND state NOT IN ('failed', 'voided') AND verification IS NULL
             ORDER BY id DESC",
        )?;
        let jobs = stmt.query_map([coi], |row| row.get(0))?;
        Ok(jobs.collect::<Result<_, _>>()?)
    }

    /// The job `job_id`, if recorded.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn print_job(&self, job_id: &str) -> Result<Option<PrintJobSummary>, JournalError> {
        Ok(rusqlite::OptionalExtension::optional(self.conn.query_row(
            "SELECT coi, bag, state, reprint, verification, label_kind, collected_at FROM print_jobs WHERE job_id = ?1",
            [job_id],
            |row| {
                Ok(PrintJobSummary {
                    coi: row.get(0)?,
                    bag: row.get(1)?,
                    state: row.get(2)?,
                    reprint: row.get(3)?,
                    verification: row.get(4)?,
                    label_kind: row.get(5)?,
                    collected_at: row.get(6)?,
                })
            },
        ))?)
    }

    /// Records the scan of job `job_id`'s label with its verdict and events, marks the job
    /// `verified` (a match) or `flagged` — and a flagged job stays flagged: a later matching scan
    /// does not clear a mismatch — and, with `confirm`, records the job `confirmed` (a printer
    /// that never said, but the label is in hand), with an audit entry, in one durable
    /// transaction. Returns the scan's id and the job's verification.
    ///
    /// # Errors
    /// SQLite failed, or there is no such job; nothing was recorded.
    pub fn record_verification(
        &mut self,
        job_id: &str,
        scan: &ScanRecord<'_>,
        events: &[NewEvent],
        confirm: bool,
    ) -> Result<(i64, String), JournalError> {
        let tx = self.write()?;
        let (coi, label_kind, voided): (Option<String>, String, bool) = tx.query_row(
            "SELECT coi, label_kind, state = 'voided' FROM print_jobs WHERE job_id = ?1",
            [job_id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )?;
        // A voided label stays voided: its scan confirms nothing.
        let confirm = confirm && !voided;
        let id = insert_scan(&tx, scan, events)?;
        // A sample tube's label is verified by a `sample` verdict, a bag's by a match; anything
        // else flags it.
        let right = match scan.verdict.outcome {
            Outcome::Match => label_kind == "bag",
            Outcome::Sample => label_kind == "sample",
            Outcome::Incomplete(_) | Outcome::Mismatch(_) => false,
        };
        let outcome = if right { "verified" } else { "flagged" };
        tx.execute(
            "UPDATE print_jobs SET verification = CASE WHEN verification = 'flagged' THEN 'flagged' ELSE ?2 END,
               verification_scan = ?3 WHERE job_id = ?1",
            params![job_id, outcome, id],
        )?;
        if confirm {
            tx.execute(
                "UPDATE print_jobs SET state = 'confirmed', fault = NULL WHERE job_id = ?1 AND state <> 'voided'",
                [job_id],
            )?;
            tx.execute(
                "INSERT INTO print_job_states (job_id, state, at) VALUES (?1, 'confirmed', ?2)",
                params![job_id, scan.at],
            )?;
        }
        let verification: String = tx.query_row(
            "SELECT verification FROM print_jobs WHERE job_id = ?1",
            [job_id],
            |row| row.get(0),
        )?;
        let details = serde_json::json!({
            "job_id": job_id, "verification": verification, "scan_id": id, "confirmed_by_scan": confirm,
        });
        audit::append(
            &tx,
            scan.at,
            "print_job_verification",
            coi.as_deref().unwrap_or_default(),
            &details,
        )?;
        tx.commit()?;
        Ok((id, verification))
    }

    /// Voids job `job_id`: its label was destroyed (a wrong or damaged label, taken off the bag),
    /// so it no longer counts as the bag's label. Records the state `voided`, the audit entry
    /// with the reason and operator, and `events`, in one transaction. Refused for a job that
    /// failed (nothing printed) or is already voided.
    ///
    /// # Errors
    /// SQLite failed, or there is no such job; nothing was recorded.
    pub fn void_job(
        &mut self,
        job_id: &str,
        reason: &str,
        operator: Option<&str>,
        at: &str,
        events: &[NewEvent],
    ) -> Result<Result<(), String>, JournalError> {
        let tx = self.write()?;
        let (coi, state): (Option<String>, String) = tx.query_row(
            "SELECT coi, state FROM print_jobs WHERE job_id = ?1",
            [job_id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        if state == "failed" || state == "voided" {
            return Ok(Err(state));
        }
        tx.execute(
            "UPDATE print_jobs SET state = 'voided' WHERE job_id = ?1",
            [job_id],
        )?;
        let details = serde_json::json!({
            "job_id": job_id, "state": "voided", "was": state, "reason": reason, "operator": operator,
        });
        log_state(
            &tx,
            (job_id, coi.as_deref()),
            ("voided", None),
            at,
            &details,
            events,
        )?;
        tx.commit()?;
        Ok(Ok(()))
    }

    /// A job's states, oldest first.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn job_states(&self, job_id: &str) -> Result<Vec<JobState>, JournalError> {
        let mut stmt = self.conn.prepare(
            "SELECT state, fault, at FROM print_job_states WHERE job_id = ?1 ORDER BY id",
        )?;
        let states = stmt.query_map([job_id], |row| {
            Ok(JobState {
                state: row.get(0)?,
                fault: row.get(1)?,
                at: row.get(2)?,
            })
        })?;
        Ok(states.collect::<Result<_, _>>()?)
    }
}

/// The collection time of the first label of `coi` that did not fail.
fn collection_time(conn: &rusqlite::Connection, coi: &str) -> Result<Option<String>, JournalError> {
    Ok(rusqlite::OptionalExtension::optional(conn.query_row(
        "SELECT collected_at FROM print_jobs WHERE coi = ?1 AND state NOT IN ('failed', 'voided') AND collected_at IS NOT NULL ORDER BY id LIMIT 1",
        [coi],
        |row| row.get(0),
    ))?)
}

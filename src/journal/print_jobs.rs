//! Print jobs in the journal: what was sent to which printer, from which template version, by
//! whom, and every state it went through (`queued`, `preflight`, `sent`, `confirmed`,
//! `unconfirmed`, `failed`), each change with its time, audit entry and events.

use rusqlite::params;

use super::{Journal, JournalError, NewEvent, ScanRecord, audit, insert_event, insert_scan};

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
}

/// A recorded job, as the verify step needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintJobSummary {
    pub coi: Option<String>,
    pub bag: Option<u8>,
    pub state: String,
    /// `verified` or `flagged` once its label was scanned.
    pub verification: Option<String>,
}

/// One state a job went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    pub state: String,
    pub fault: Option<String>,
    pub at: String,
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
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO print_jobs (job_id, coi, bag, template, template_version, printer, zpl_sha256, operator, created_at, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![job.job_id, job.coi, job.bag, job.template, job.template_version, job.printer, job.zpl_sha256, job.operator, job.at, job.state],
        )?;
        tx.execute(
            "INSERT INTO print_job_states (job_id, state, at) VALUES (?1, ?2, ?3)",
            params![job.job_id, job.state, job.at],
        )?;
        let details = serde_json::json!({
            "job_id": job.job_id, "bag": job.bag, "template": job.template, "template_version": job.template_version,
            "printer": job.printer, "zpl_sha256": job.zpl_sha256, "operator": job.operator, "state": job.state,
        });
        audit::append(
            &tx,
            job.at,
            "print_job",
            job.coi.unwrap_or_default(),
            &details,
        )?;
        for event in events {
            insert_event(&tx, event, job.at)?;
        }
        tx.commit()?;
        Ok(())
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
        let tx = self.conn.transaction()?;
        let coi: Option<String> = tx.query_row(
            "SELECT coi FROM print_jobs WHERE job_id = ?1",
            [job_id],
            |row| row.get(0),
        )?;
        tx.execute(
            "UPDATE print_jobs SET state = ?2, fault = ?3 WHERE job_id = ?1",
            params![job_id, state, fault],
        )?;
        tx.execute(
            "INSERT INTO print_job_states (job_id, state, fault, at) VALUES (?1, ?2, ?3, ?4)",
            params![job_id, state, fault, at],
        )?;
        let details = serde_json::json!({"job_id": job_id, "state": state, "fault": fault});
        audit::append(
            &tx,
            at,
            "print_job_state",
            coi.as_deref().unwrap_or_default(),
            &details,
        )?;
        for event in events {
            insert_event(&tx, event, at)?;
        }
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
            "SELECT job_id, state FROM print_jobs WHERE coi = ?1 AND bag = ?2 AND state <> 'failed' ORDER BY id",
        )?;
        let jobs = stmt.query_map(params![coi, bag], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(jobs.collect::<Result<_, _>>()?)
    }

    /// The job `job_id`, if recorded.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn print_job(&self, job_id: &str) -> Result<Option<PrintJobSummary>, JournalError> {
        Ok(rusqlite::OptionalExtension::optional(self.conn.query_row(
            "SELECT coi, bag, state, verification FROM print_jobs WHERE job_id = ?1",
            [job_id],
            |row| {
                Ok(PrintJobSummary {
                    coi: row.get(0)?,
                    bag: row.get(1)?,
                    state: row.get(2)?,
                    verification: row.get(3)?,
                })
            },
        ))?)
    }

    /// Records the scan of job `job_id`'s label with its verdict and events, and marks the job
    /// `verified` (a match) or `flagged`, with an audit entry, in one durable transaction;
    /// returns the scan's id. A later scan of the same job's label marks it again; every scan
    /// stays in the journal.
    ///
    /// # Errors
    /// SQLite failed, or there is no such job; nothing was recorded.
    pub fn record_verification(
        &mut self,
        job_id: &str,
        scan: &ScanRecord<'_>,
        events: &[NewEvent],
    ) -> Result<i64, JournalError> {
        let tx = self.conn.transaction()?;
        let coi: Option<String> = tx.query_row(
            "SELECT coi FROM print_jobs WHERE job_id = ?1",
            [job_id],
            |row| row.get(0),
        )?;
        let id = insert_scan(&tx, scan, events)?;
        let verification = if scan.verdict.is_match() {
            "verified"
        } else {
            "flagged"
        };
        tx.execute(
            "UPDATE print_jobs SET verification = ?2, verification_scan = ?3 WHERE job_id = ?1",
            params![job_id, verification, id],
        )?;
        let details =
            serde_json::json!({"job_id": job_id, "verification": verification, "scan_id": id});
        audit::append(
            &tx,
            scan.at,
            "print_job_verification",
            coi.as_deref().unwrap_or_default(),
            &details,
        )?;
        tx.commit()?;
        Ok(id)
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

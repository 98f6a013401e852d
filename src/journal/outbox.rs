//! The outbox's storage: custody events waiting for the central service, in order per COI
//! identifier. Events enter with the record they describe (`Journal::record_scan`); delivery
//! takes the due ones, and marks each delivered, to be retried, or parked for a person.

use rusqlite::params;

use super::{Journal, JournalError, audit, utc_text};

/// An event due for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEvent {
    pub id: i64,
    pub event_id: String,
    pub coi: String,
    pub kind: String,
    pub payload: String,
    pub attempts: i64,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Try again at `next_attempt_at` (from [`utc_text`]).
    Retry {
        next_attempt_at: String,
        error: String,
    },
    /// Refused by the central service; a person must look.
    Parked {
        error: String,
    },
}

/// Counts by state, and the parked events for a person to see.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxStatus {
    pub pending: i64,
    pub delivered: i64,
    pub parked: Vec<ParkedEvent>,
    /// The oldest pending event's creation time.
    pub oldest_pending: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedEvent {
    pub event_id: String,
    pub coi: String,
    pub kind: String,
    pub error: String,
}

impl Journal {
    /// Due events, grouped by COI in the order they must go: for each COI whose oldest pending
    /// event is due at `now`, up to `per_coi` of its pending events, oldest first (an event is
    /// never sent before the ones before it for the same COI).
    ///
    /// # Errors
    /// SQLite failed.
    pub fn due_events(
        &self,
        now: &str,
        per_coi: usize,
        max_cois: usize,
    ) -> Result<Vec<Vec<PendingEvent>>, JournalError> {
        let mut heads = self.conn.prepare(
            "SELECT coi FROM outbox o WHERE state = 'pending' AND next_attempt_at <= ?1
               AND id = (SELECT MIN(id) FROM outbox WHERE state = 'pending' AND coi = o.coi)
             ORDER BY id LIMIT ?2",
        )?;
        let cois: Vec<String> = heads
            .query_map(params![now, max_cois as i64], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        let mut events = self.conn.prepare(
            "SELECT id, event_id, coi, kind, payload, attempts FROM outbox WHERE state = 'pending' AND coi = ?1 ORDER BY id LIMIT ?2",
        )?;
        let mut groups = Vec::with_capacity(cois.len());
        for coi in cois {
            let group = events
                .query_map(params![coi, per_coi as i64], |row| {
                    Ok(PendingEvent {
                        id: row.get(0)?,
                        event_id: row.get(1)?,
                        coi: row.get(2)?,
                        kind: row.get(3)?,
                        payload: row.get(4)?,
                        attempts: row.get(5)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            groups.push(group);
        }
        Ok(groups)
    }

    /// Applies delivery outcomes in one durable transaction, with an audit entry for each
    /// event delivered or parked.
    ///
    /// # Errors
    /// SQLite failed; none of the outcomes were applied, and delivered events will be sent
    /// again (the central service recognises them by their idempotency key).
    pub fn apply_outcomes(
        &mut self,
        outcomes: &[(PendingEvent, Outcome)],
    ) -> Result<(), JournalError> {
        let now = utc_text(jiff::Timestamp::now());
        let tx = self.write()?;
        for (event, outcome) in outcomes {
            match outcome {
                Outcome::Delivered => {
                    tx.execute(
                        "UPDATE outbox SET state = 'delivered', delivered_at = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
                        params![event.id, now],
                    )?;
                    let details =
                        serde_json::json!({"event_id": event.event_id, "type": event.kind});
                    audit::append(&tx, &now, "event_delivered", &event.coi, &details)?;
                }
                Outcome::Retry {
                    next_attempt_at,
                    error,
                } => {
                    tx.execute(
                        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3 WHERE id = ?1",
                        params![event.id, next_attempt_at, error],
                    )?;
                }
                Outcome::Parked { error } => {
                    tx.execute(
                        "UPDATE outbox SET state = 'parked', attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
                        params![event.id, error],
                    )?;
                    let details = serde_json::json!({"event_id": event.event_id, "type": event.kind, "error": error});
                    audit::append(&tx, &now, "event_parked", &event.coi, &details)?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Makes every pending event due now (`coi-agent outbox flush`).
    ///
    /// # Errors
    /// SQLite failed.
    pub fn make_pending_due(&mut self) -> Result<usize, JournalError> {
        Ok(self.conn.execute(
            "UPDATE outbox SET next_attempt_at = '' WHERE state = 'pending'",
            [],
        )?)
    }

    /// # Errors
    /// SQLite failed.
    pub fn outbox_status(&self) -> Result<OutboxStatus, JournalError> {
        let count = |state: &str| -> Result<i64, JournalError> {
            Ok(self.conn.query_row(
                "SELECT COUNT(*) FROM outbox WHERE state = ?1",
                [state],
                |row| row.get(0),
            )?)
        };
        let mut stmt = self.conn.prepare("SELECT event_id, coi, kind, COALESCE(last_error, '') FROM outbox WHERE state = 'parked' ORDER BY id")?;
        let parked = stmt
            .query_map([], |row| {
                Ok(ParkedEvent {
                    event_id: row.get(0)?,
                    coi: row.get(1)?,
                    kind: row.get(2)?,
                    error: row.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let oldest_pending = self.conn.query_row(
            "SELECT MIN(created_at) FROM outbox WHERE state = 'pending'",
            [],
            |row| row.get(0),
        )?;
        Ok(OutboxStatus {
            pending: count("pending")?,
            delivered: count("delivered")?,
            parked,
            oldest_pending,
        })
    }
}

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

/// An event waiting for delivery or for a person, as `outbox status` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutboxEntry {
    pub event_id: String,
    pub coi: String,
    pub kind: String,
    /// `pending` or `parked`.
    pub state: String,
    pub attempts: i64,
    /// Why the last attempt did not deliver it (the service's status and words).
    pub last_error: Option<String>,
    pub created_at: String,
    /// Pending: when it is tried next.
    pub next_attempt_at: Option<String>,
}

/// Why a parked event could not be closed or requeued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotParked {
    Unknown,
    /// Delivered, pending, or already closed.
    State(String),
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
    /// event delivered or parked. Each applies only to an event still pending: a second
    /// deliverer (two `outbox flush` runs, or one beside `serve`) that sent the same event
    /// records nothing more, so a delivery is counted and audited once. A delivery central
    /// confirmed also clears a park another deliverer made meanwhile (central has the event).
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
                    let changed = tx.execute(
                        "UPDATE outbox SET state = 'delivered', delivered_at = ?2, attempts = attempts + 1, last_error = NULL
                         WHERE id = ?1 AND (state = 'pending' OR (state = 'parked' AND closed_at IS NULL))",
                        params![event.id, now],
                    )?;
                    if changed == 0 {
                        continue;
                    }
                    let details =
                        serde_json::json!({"event_id": event.event_id, "type": event.kind});
                    audit::append(&tx, &now, "event_delivered", &event.coi, &details)?;
                }
                Outcome::Retry {
                    next_attempt_at,
                    error,
                } => {
                    tx.execute(
                        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3 WHERE id = ?1 AND state = 'pending'",
                        params![event.id, next_attempt_at, error],
                    )?;
                }
                Outcome::Parked { error } => {
                    let changed = tx.execute(
                        "UPDATE outbox SET state = 'parked', attempts = attempts + 1, last_error = ?2 WHERE id = ?1 AND state = 'pending'",
                        params![event.id, error],
                    )?;
                    if changed == 0 {
                        continue;
                    }
                    let details = serde_json::json!({"event_id": event.event_id, "type": event.kind, "error": error});
                    audit::append(&tx, &now, "event_parked", &event.coi, &details)?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Events pending or parked (not closed), oldest first, at most `limit`.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn waiting_events(&self, limit: usize) -> Result<Vec<OutboxEntry>, JournalError> {
        let mut stmt = self.conn.prepare(
            "SELECT event_id, coi, kind, state, attempts, last_error, created_at, next_attempt_at FROM outbox
             WHERE state = 'pending' OR (state = 'parked' AND closed_at IS NULL) ORDER BY id LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |row| {
            let state: String = row.get(3)?;
            let next: String = row.get(7)?;
            Ok(OutboxEntry {
                event_id: row.get(0)?,
                coi: row.get(1)?,
                kind: row.get(2)?,
                attempts: row.get(4)?,
                last_error: row.get(5)?,
                created_at: row.get(6)?,
                next_attempt_at: (state == "pending" && !next.is_empty()).then_some(next),
                state,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Puts parked events back in line (all of them, or those named), due now, with an audit
    /// entry each: after the cause (a URL, a token, the service's data) was fixed. Returns how
    /// many were requeued, or the first named event that is not parked.
    ///
    /// # Errors
    /// SQLite failed; nothing was requeued.
    pub fn requeue_parked(
        &mut self,
        event_ids: Option<&[String]>,
        by: Option<&str>,
    ) -> Result<Result<usize, (String, NotParked)>, JournalError> {
        let now = utc_text(jiff::Timestamp::now());
        let tx = self.write()?;
        let ids: Vec<(String, String)> = match event_ids {
            None => {
                let mut stmt = tx.prepare(
                    "SELECT event_id, coi FROM outbox WHERE state = 'parked' AND closed_at IS NULL ORDER BY id",
                )?;
                let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
                rows.collect::<Result<_, _>>()?
            }
            Some(named) => {
                let mut found = Vec::with_capacity(named.len());
                for event_id in named {
                    match parked_event(&tx, event_id)? {
                        Ok(coi) => found.push((event_id.clone(), coi)),
                        Err(why) => return Ok(Err((event_id.clone(), why))),
                    }
                }
                found
            }
        };
        for (event_id, coi) in &ids {
            tx.execute(
                "UPDATE outbox SET state = 'pending', next_attempt_at = '' WHERE event_id = ?1",
                [event_id],
            )?;
            audit::append(
                &tx,
                &now,
                "event_requeued",
                coi,
                &serde_json::json!({"event_id": event_id, "by": by}),
            )?;
        }
        tx.commit()?;
        Ok(Ok(ids.len()))
    }

    /// Closes a parked event deliberately (it is never sent), with the person's reason, audited.
    ///
    /// # Errors
    /// SQLite failed; nothing was changed.
    pub fn close_parked(
        &mut self,
        event_id: &str,
        reason: &str,
        operator: Option<&str>,
    ) -> Result<Result<(), NotParked>, JournalError> {
        let now = utc_text(jiff::Timestamp::now());
        let tx = self.write()?;
        let coi = match parked_event(&tx, event_id)? {
            Ok(coi) => coi,
            Err(why) => return Ok(Err(why)),
        };
        tx.execute(
            "UPDATE outbox SET closed_at = ?2, closed_reason = ?3 WHERE event_id = ?1",
            params![event_id, now, reason],
        )?;
        audit::append(
            &tx,
            &now,
            "event_closed",
            &coi,
            &serde_json::json!({"event_id": event_id, "reason": reason, "operator": operator}),
        )?;
        tx.commit()?;
        Ok(Ok(()))
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
        let mut stmt = self.conn.prepare("SELECT event_id, coi, kind, COALESCE(last_error, '') FROM outbox WHERE state = 'parked' AND closed_at IS NULL ORDER BY id")?;
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

/// The COI of parked event `event_id`, or why it is not a parked, open event.
fn parked_event(
    tx: &rusqlite::Transaction<'_>,
    event_id: &str,
) -> Result<Result<String, NotParked>, JournalError> {
    let row: Option<(String, String, Option<String>)> =
        rusqlite::OptionalExtension::optional(tx.query_row(
            "SELECT coi, state, closed_at FROM outbox WHERE event_id = ?1",
            [event_id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        ))?;
    Ok(match row {
        None => Err(NotParked::Unknown),
        Some((coi, state, None)) if state == "parked" => Ok(coi),
        Some((_, _, Some(_))) => Err(NotParked::State("closed".to_owned())),
        Some((_, state, None)) => Err(NotParked::State(state)),
    })
}

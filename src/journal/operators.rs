//! The operators table: who may sign in, with which role, their PIN's Argon2id hash and the
//! wrong-PIN count that locks them out. Every change is audited (by operator id, never a PIN
//! or its hash).

use rusqlite::{OptionalExtension as _, params};
use serde_json::json;

use super::{Journal, JournalError, audit, utc_text};
use crate::operators::{LOCKOUT, MAX_WRONG_PINS, Role};

/// An operator as the screens and `operators list` show it (no PIN hash).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OperatorRow {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at: String,
    pub disabled_at: Option<String>,
    /// Locked out after too many wrong PINs until then (RFC 3339 UTC).
    pub locked_until: Option<String>,
    #[serde(skip)]
    pub pin_hash: String,
}

impl OperatorRow {
    /// Whether the operator is locked out at `now`, and until when.
    pub fn locked_at(&self, now: jiff::Timestamp) -> Option<jiff::Timestamp> {
        self.locked_until
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .filter(|until| *until > now)
    }
}

/// Why an operator was not added or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorProblem {
    #[error("operator {0} already exists")]
    Exists(String),
    #[error("no operator {0}")]
    Unknown(String),
}

/// What a PIN attempt did to the operator's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinRecorded {
    /// The right PIN: the wrong-PIN count is back to zero.
    Accepted,
    /// A wrong PIN; so many more before the lockout.
    Wrong { left: i64 },
    /// This wrong PIN locked the operator out until then (audited).
    LockedOut { until: jiff::Timestamp },
}

const COLUMNS: &str = "id, name, role, created_at, disabled_at, locked_until, pin_hash";

fn row(row: &rusqlite::Row<'_>) -> rusqlite::Result<OperatorRow> {
    let role: String = row.get(2)?;
    Ok(OperatorRow {
        id: row.get(0)?,
        name: row.get(1)?,
        // The table's CHECK allows only these three.
        role: Role::parse(&role).unwrap_or(Role::Nurse),
        created_at: row.get(3)?,
        disabled_at: row.get(4)?,
        locked_until: row.get(5)?,
        pin_hash: row.get(6)?,
    })
}

impl Journal {
    /// Adds an operator with an already hashed PIN; audited as `operator_added`.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn add_operator(
        &mut self,
        id: &str,
        name: &str,
        role: Role,
        pin_hash: &str,
        by: Option<&str>,
    ) -> Result<Result<(), OperatorProblem>, JournalError> {
        let now = utc_text(jiff::Timestamp::now());
        let tx = self.write()?;
        let added = tx.execute(
            "INSERT INTO operators (id, name, role, pin_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(id) DO NOTHING",
            params![id, name, role.as_str(), pin_hash, now],
        )?;
        if added == 0 {
            return Ok(Err(OperatorProblem::Exists(id.to_owned())));
        }
        audit::append(
            &tx,
            &now,
            "operator_added",
            id,
            &json!({"role": role.as_str(), "by": by}),
        )?;
        tx.commit()?;
        Ok(Ok(()))
    }

    /// Every operator, by id.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn operators(&self) -> Result<Vec<OperatorRow>, JournalError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM operators ORDER BY id"))?;
        let rows = stmt.query_map([], row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One operator.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn operator(&self, id: &str) -> Result<Option<OperatorRow>, JournalError> {
        Ok(self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM operators WHERE id = ?1"))?
            .query_row([id], row)
            .optional()?)
    }

    /// Disables an operator (they can no longer sign in); audited as `operator_disabled`.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn disable_operator(
        &mut self,
        id: &str,
        by: Option<&str>,
    ) -> Result<Result<(), OperatorProblem>, JournalError> {
        let now = utc_text(jiff::Timestamp::now());
        let tx = self.write()?;
        let changed = tx.execute(
            "UPDATE operators SET disabled_at = ?2 WHERE id = ?1 AND disabled_at IS NULL",
            params![id, now],
        )?;
        let exists: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM operators WHERE id = ?1)",
            [id],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(Err(OperatorProblem::Unknown(id.to_owned())));
        }
        if changed == 1 {
            audit::append(&tx, &now, "operator_disabled", id, &json!({"by": by}))?;
            tx.commit()?;
        }
        Ok(Ok(()))
    }

    /// Enables operator `id` again and lifts a lockout (an admin vouching for them); audited
    /// as `operator_enabled` with what it lifted.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn enable_operator(
        &mut self,
        id: &str,
        by: Option<&str>,
    ) -> Result<Result<(), OperatorProblem>, JournalError> {
        let now = utc_text(jiff::Timestamp::now());
        let tx = self.write()?;
        let before: Option<(Option<String>, Option<String>)> = tx
            .query_row(
                "SELECT disabled_at, locked_until FROM operators WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((disabled, locked)) = before else {
            return Ok(Err(OperatorProblem::Unknown(id.to_owned())));
        };
        tx.execute(
            "UPDATE operators SET disabled_at = NULL, locked_until = NULL, wrong_pins = 0 WHERE id = ?1",
            [id],
        )?;
        audit::append(
            &tx,
            &now,
            "operator_enabled",
            id,
            &json!({"by": by, "was_disabled": disabled.is_some(), "was_locked_until": locked}),
        )?;
        tx.commit()?;
        Ok(Ok(()))
    }

    /// Records a PIN attempt by operator `id` at `now`: a right one clears the wrong-PIN count;
    /// the [`MAX_WRONG_PINS`]th wrong one in a row locks the operator out for [`LOCKOUT`]
    /// (audited as `operator_locked`). `purpose` (`sign_in`, `reprint`, ...) goes in the audit.
    ///
    /// # Errors
    /// SQLite failed; nothing was recorded.
    pub fn record_pin(
        &mut self,
        id: &str,
        right: bool,
        purpose: &str,
        now: jiff::Timestamp,
    ) -> Result<PinRecorded, JournalError> {
        let at = utc_text(now);
        let tx = self.write()?;
        // A lockout that began after this attempt was checked (another attempt recorded in
        // between) stands: a right PIN does not lift it.
        let locked: Option<String> = tx
            .query_row(
                "SELECT locked_until FROM operators WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        if let Some(until) = locked
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .filter(|until| *until > now)
        {
            return Ok(PinRecorded::LockedOut { until });
        }
        if right {
            tx.execute(
                "UPDATE operators SET wrong_pins = 0, locked_until = NULL WHERE id = ?1",
                [id],
            )?;
            if purpose == "sign_in" {
                audit::append(&tx, &at, "operator_signed_in", id, &json!({}))?;
            }
            tx.commit()?;
            return Ok(PinRecorded::Accepted);
        }
        let wrong: i64 = tx
            .query_row(
                "UPDATE operators SET wrong_pins = wrong_pins + 1 WHERE id = ?1 RETURNING wrong_pins",
                [id],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        let recorded = if wrong >= MAX_WRONG_PINS {
            let until = now.checked_add(LOCKOUT).unwrap_or(now);
            tx.execute(
                "UPDATE operators SET wrong_pins = 0, locked_until = ?2 WHERE id = ?1",
                params![id, utc_text(until)],
            )?;
            audit::append(
                &tx,
                &at,
                "operator_locked",
                id,
                &json!({"wrong_pins": wrong, "until": utc_text(until), "while": purpose}),
            )?;
            PinRecorded::LockedOut { until }
        } else {
            PinRecorded::Wrong {
                left: MAX_WRONG_PINS - wrong,
            }
        };
        tx.commit()?;
        Ok(recorded)
    }
}

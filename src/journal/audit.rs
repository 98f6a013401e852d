//! The audit trail: append-only entries, each holding the hash of the one before, so an
//! edited, deleted or reordered entry breaks the chain at a place `verify` can name. Entries
//! record what happened (scan verdicts, print jobs, deliveries) by identifiers, never patient
//! data. Entries are keyed (HMAC-SHA256 with the installation's audit key, `audit_key`), so
//! rewriting the chain after an edit needs the key as well as the file; entries made before
//! the key existed keep their plain SHA-256.

use rusqlite::{OptionalExtension as _, params};
use sha2::{Digest, Sha256};

use super::JournalError;
use super::audit_key::AuditKey;

type HmacSha256 = hmac::Hmac<Sha256>;

/// One audit entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub seq: i64,
    /// RFC 3339, UTC.
    pub at: String,
    /// What happened, e.g. `scan`, `print_job`, `event_delivered`.
    pub kind: String,
    /// What it happened to: a COI identifier, a job id.
    pub subject: String,
    /// Details as canonical JSON (keys sorted, no spaces).
    pub details: String,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
    /// The id of the audit key that keyed this entry; none for an entry made before the key.
    pub key_id: Option<String>,
}

/// Where the chain first breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokenLink {
    #[error("audit entry {seq}: its content was changed (hash does not match)")]
    Edited { seq: i64 },
    #[error(
        "audit entry {seq}: it does not follow entry {previous} (an entry was deleted, inserted or reordered)"
    )]
    Unlinked { seq: i64, previous: i64 },
    #[error(
        "audit trail ends at entry {last} but the journal's head says {head}: entries were removed from the end"
    )]
    Truncated { last: i64, head: i64 },
    /// SQLite's own check failed: the file is damaged (or was written past SQLite).
    #[error("the journal file is damaged (SQLite integrity check: {detail})")]
    Damaged { detail: String },
    /// A table, the head row or the append-only guards are gone.
    #[error("{what}")]
    Missing { what: String },
    /// A record with no audit entry, an audit entry whose record is gone, or a record that no
    /// longer says what its entry recorded.
    #[error("{what}")]
    NotCovered { what: String },
    /// An entry the audit key must key is plain: the trail was rewritten by someone without
    /// the key.
    #[error(
        "audit entry {seq} is not keyed, yet the audit key (id {key_id}) keys every entry from {from} on: the trail was rewritten without the key"
    )]
    Unkeyed { seq: i64, key_id: String, from: i64 },
    /// Nothing is wrong that could be seen, but entries keyed with a key not at hand could not
    /// have their hashes checked (their links were).
    #[error(
        "audit entries {first} to {last} are keyed with audit key {key_id}{lost}, which is not at hand: their links were checked, their content was not (give a copy of that key with --key FILE)"
    )]
    NotChecked {
        key_id: String,
        first: i64,
        last: i64,
        /// Where the trail recorded the key's loss, in words (empty when it did not).
        lost: String,
    },
}

/// The hash before the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// SHA-256 over a canonical encoding: a version tag, then each field length-prefixed, so no two
/// different entries encode alike.
pub fn entry_hash(
    seq: i64,
    at: &str,
    kind: &str,
    subject: &str,
    details: &str,
    prev_hash: &[u8; 32],
) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"coi-agent audit v1\0");
    hasher.update(seq.to_be_bytes());
    for field in [at, kind, subject, details] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hasher.update(prev_hash);
    hasher.finalize().into()
}

/// An entry's hash under the audit key: HMAC-SHA256 over the encoding of [`entry_hash`], with
/// its own version tag and the key's id, so a keyed and a plain entry never hash alike.
pub fn keyed_entry_hash(
    key: &AuditKey,
    seq: i64,
    (at, kind, subject, details): (&str, &str, &str, &str),
    prev_hash: &[u8; 32],
) -> [u8; 32] {
    use hmac::{KeyInit as _, Mac as _};
    let Ok(mut mac) = HmacSha256::new_from_slice(key.secret()) else {
        unreachable!("HMAC takes a key of any length")
    };
    mac.update(b"coi-agent audit v2 keyed\0");
    mac.update(&seq.to_be_bytes());
    for field in [at, kind, subject, details, key.id()] {
        mac.update(&(field.len() as u64).to_be_bytes());
        mac.update(field.as_bytes());
    }
    mac.update(prev_hash);
    mac.finalize().into_bytes().into()
}

/// The digest of a cached order as the journal holds it: its identifiers, status and record
/// (length-prefixed, so no two orders encode alike).
pub fn order_digest(coi: &str, din: &str, order_id: &str, status: &str, record: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"coi-agent order v1\0");
    for field in [coi, din, order_id, status, record] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hex(&hasher.finalize())
}

/// The SHA-256 of a stored text, as hex; `null` for none.
pub(crate) fn text_digest(text: Option<&str>) -> serde_json::Value {
    text.map_or(serde_json::Value::Null, |t| {
        hex(&Sha256::digest(t.as_bytes())).into()
    })
}

/// The digest of a custody event as built (without the `audit` head added as it is recorded):
/// what its record's audit entry holds, so an edited payload is found.
pub fn event_digest(payload: &serde_json::Value) -> String {
    let mut payload = payload.clone();
    if let Some(fields) = payload.as_object_mut() {
        fields.remove("audit");
    }
    hex(&Sha256::digest(canonical_json(&payload).as_bytes()))
}

/// `details` with the events recorded in the same transaction: each one's id and digest.
pub(crate) fn with_events(
    details: &serde_json::Value,
    events: &[crate::custody::NewEvent],
) -> serde_json::Value {
    let mut details = details.clone();
    if let (false, Some(fields)) = (events.is_empty(), details.as_object_mut()) {
        fields.insert(
            "events".to_owned(),
            events
                .iter()
                .map(|e| serde_json::json!({"event_id": e.event_id, "sha256": event_digest(&e.payload)}))
                .collect(),
        );
    }
    details
}

/// Appends an entry inside the caller's transaction, so it commits with the record it describes.
pub(crate) fn append(
    tx: &super::Writer<'_>,
    at: &str,
    kind: &str,
    subject: &str,
    details: &serde_json::Value,
) -> Result<i64, JournalError> {
    let details = canonical_json(details);
    let head: Option<(i64, Vec<u8>)> = tx
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let (seq, prev_hash) = match head {
        Some((seq, hash)) => (seq + 1, to_hash(&hash)),
        None => (1, GENESIS),
    };
    let hash = match tx.key {
        Some(key) => keyed_entry_hash(key, seq, (at, kind, subject, &details), &prev_hash),
        None => entry_hash(seq, at, kind, subject, &details, &prev_hash),
    };
    let key_id = tx.key.map(AuditKey::id);
    tx.prepare_cached(
        "INSERT INTO audit (seq, at, kind, subject, details, prev_hash, hash, key_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![seq, at, kind, subject, details, prev_hash.as_slice(), hash.as_slice(), key_id])?;
    tx.prepare_cached(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?1, ?2) ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
    )?
    .execute(params![seq, hash.as_slice()])?;
    Ok(seq)
}

/// Checks the journal as a whole, first finding first: SQLite's integrity check; the audit
/// tables are there; the chain links and hashes; the head row agrees with the last entry; the
/// append-only guards are there; every scan and print job has its audit entry and still says
/// what it recorded, and every entry's scan or job is still there. Keyed entries are checked
/// with the one of `keys` that keyed them.
pub(crate) fn verify(
    conn: &rusqlite::Connection,
    keys: &[AuditKey],
) -> Result<Result<i64, BrokenLink>, JournalError> {
    // One snapshot for every check: a journal being written meanwhile (the service runs) must
    // not look truncated or uncovered between two reads. Reads only; dropped, it rolls back.
    let snapshot = conn.unchecked_transaction()?;
    let found = verify_in(&snapshot, keys);
    drop(snapshot);
    found
}

/// The guards' exact text: one recreated to do nothing (`WHEN 0`) is not a guard.
const GUARDS: [(&str, &str, &str); 2] = [
    (
        "audit_no_update",
        "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END",
        "the guard that keeps audit entries from being edited was removed or changed",
    ),
    (
        "audit_no_delete",
        "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END",
        "the guard that keeps audit entries from being deleted was removed or changed",
    ),
];

fn verify_in(
    conn: &rusqlite::Connection,
    keys: &[AuditKey],
) -> Result<Result<i64, BrokenLink>, JournalError> {
    let integrity: Vec<String> = conn
        .prepare("PRAGMA integrity_check(5)")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    if integrity != ["ok"] {
        return Ok(Err(BrokenLink::Damaged {
            detail: integrity.join("; "),
        }));
    }
    let present = |kind: &str, name: &str| -> Result<bool, JournalError> {
        Ok(conn
            .query_row(
                "SELECT 1 FROM sqlite_schema WHERE type = ?1 AND name = ?2",
                [kind, name],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    };
    for (kind, name, what) in [
        ("table", "audit", "the audit table is missing"),
        (
            "table",
            "audit_head",
            "the audit trail's head table is missing",
        ),
    ] {
        if !present(kind, name)? {
            return Ok(Err(BrokenLink::Missing {
                what: what.to_owned(),
            }));
        }
    }
    // The chain first: a broken link names the entry, the most useful finding.
    let (chain, not_checked) = verify_chain(conn, keys)?;
    let Ok(count) = chain else {
        return Ok(chain);
    };
    // A key was made when the trail ended just before its `from`: a trail that ends earlier
    // lost entries from its end (with the head row rewound to match).
    let last: i64 = conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM audit", [], |row| {
        row.get(0)
    })?;
    if let Some(key) = keys.iter().find(|key| key.from() > last + 1) {
        return Ok(Err(BrokenLink::Truncated {
            last,
            head: key.from() - 1,
        }));
    }
    for (name, sql, what) in GUARDS {
        let found: Option<String> = conn
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND name = ?1",
                [name],
                |row| row.get(0),
            )
            .optional()?;
        if found.as_deref() != Some(sql) {
            return Ok(Err(BrokenLink::Missing {
                what: what.to_owned(),
            }));
        }
    }
    if let Some(problem) = coverage(conn)? {
        return Ok(Err(problem));
    }
    if let Some(problem) = job_histories(conn)? {
        return Ok(Err(problem));
    }
    if let Some(problem) = event_states(conn)? {
        return Ok(Err(problem));
    }
    if let Some(problem) = order_coverage(conn)? {
        return Ok(Err(problem));
    }
    // Last: every other finding is worse than entries that could not be checked.
    if let Some(BrokenLink::NotChecked {
        key_id,
        first,
        last,
        ..
    }) = not_checked
    {
        let replaced: Option<(i64, String)> = conn
            .query_row(
                "SELECT seq, at FROM audit WHERE kind = 'audit_key_made' AND json_valid(details) AND json_extract(details, '$.replaces') = ?1 ORDER BY seq LIMIT 1",
                [&key_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        return Ok(Err(BrokenLink::NotChecked {
            key_id,
            first,
            last,
            lost: replaced.map_or_else(String::new, |(seq, at)| {
                format!(
                    " (its file was lost: entry {seq}, {}, records the new key made in its place)",
                    at.get(..10).unwrap_or(&at)
                )
            }),
        }));
    }
    Ok(Ok(count))
}

/// Every scan, print job and custody event bound to its audit entry (by id, and the fields the
/// entry recorded), and every entry's record still there. Records and entries are read as two
/// streams sorted by the record's id and walked in step (SQLite sorts, spilling to disk), so a
/// journal of millions of scans is checked in little memory.
fn coverage(conn: &rusqlite::Connection) -> Result<Option<BrokenLink>, JournalError> {
    if let Some(found) = scan_coverage(conn)? {
        return Ok(Some(found));
    }
    if let Some(found) = job_coverage(conn)? {
        return Ok(Some(found));
    }
    event_coverage(conn)
}

/// One step of two id-sorted streams walked together.
enum Pairing<'a, K, R, E> {
    Both(&'a K, &'a R, &'a E),
    RecordOnly(&'a K, &'a R),
    EntryOnly(&'a K, &'a E),
}

/// Walks `records` and `entries`, both sorted by their key, in step; `pair` sees each pairing
/// and stops the walk with a finding.
fn in_step<K: Ord, R, E>(
    mut records: impl Iterator<Item = rusqlite::Result<(K, R)>>,
    mut entries: impl Iterator<Item = rusqlite::Result<(K, E)>>,
    mut pair: impl FnMut(Pairing<'_, K, R, E>) -> Option<BrokenLink>,
) -> Result<Option<BrokenLink>, JournalError> {
    let mut record = records.next().transpose()?;
    let mut entry = entries.next().transpose()?;
    loop {
        let (found, take_record, take_entry) = match (&record, &entry) {
            (None, None) => return Ok(None),
            (Some((rk, r)), Some((ek, e))) if rk == ek => {
                (pair(Pairing::Both(rk, r, e)), true, true)
            }
            (Some((rk, r)), Some((ek, _))) if rk < ek => {
                (pair(Pairing::RecordOnly(rk, r)), true, false)
            }
            (Some((rk, r)), None) => (pair(Pairing::RecordOnly(rk, r)), true, false),
            (_, Some((ek, e))) => (pair(Pairing::EntryOnly(ek, e)), false, true),
        };
        if found.is_some() {
            return Ok(found);
        }
        if take_record {
            record = records.next().transpose()?;
        }
        if take_entry {
            entry = entries.next().transpose()?;
        }
    }
}

/// The entries of `kind` that name their record at the JSON path `key` (of JSON type `of`),
/// sorted by that name: key, seq, subject, details, at.
fn entries_naming((kind, key, of): (&str, &str, &str)) -> String {
    format!(
        "SELECT json_extract(details, '{key}') AS record, seq, subject, details, at FROM audit
         WHERE kind = '{kind}' AND json_valid(details) AND json_type(details, '{key}') = '{of}'
         ORDER BY record, seq"
    )
}

/// A row of [`entries_naming`]: the record's key, and the entry's number and what it recorded.
fn entry_naming<K: rusqlite::types::FromSql>(
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<(K, (i64, serde_json::Value))> {
    Ok((
        row.get(0)?,
        (
            row.get(1)?,
            recorded(row.get(2)?, &row.get::<_, String>(3)?, row.get(4)?),
        ),
    ))
}

/// An entry's details as recorded, with its subject and time beside them (what records are
/// compared with).
fn recorded(subject: String, details: &str, at: String) -> serde_json::Value {
    let mut details: serde_json::Value = serde_json::from_str(details).unwrap_or_default();
    if !details.is_object() {
        details = serde_json::json!({});
    }
    details["subject"] = serde_json::Value::String(subject);
    details["at"] = serde_json::Value::String(at);
    details
}

/// Any stored type, as JSON: a column changed to another type is a difference, not an error
/// that stops the check.
fn cell(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<serde_json::Value> {
    use rusqlite::types::ValueRef;
    Ok(match row.get_ref(i)? {
        ValueRef::Null => serde_json::Value::Null,
        ValueRef::Integer(n) => n.into(),
        ValueRef::Real(x) => x.into(),
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
        ValueRef::Blob(b) => hex(b).into(),
    })
}

type Fields = Vec<(&'static str, serde_json::Value)>;

/// Keeps in `slot` the record named by the earliest entry seen so far.
fn earliest<K: Clone>(slot: &mut Option<(K, i64)>, id: &K, seq: i64) {
    if slot.as_ref().is_none_or(|(_, first)| seq < *first) {
        *slot = Some((id.clone(), seq));
    }
}

fn not_covered(what: String) -> Option<BrokenLink> {
    Some(BrokenLink::NotCovered { what })
}

fn scan_coverage(conn: &rusqlite::Connection) -> Result<Option<BrokenLink>, JournalError> {
    // Journals before schema 3 wrote scan entries without the scan's id: those scans can only
    // be counted.
    let without_id: i64 = conn.query_row(
        "SELECT count(*) FROM audit WHERE kind = 'scan' AND NOT (json_valid(details) AND json_type(details, '$.scan_id') = 'integer')",
        [],
        |row| row.get(0),
    )?;
    let mut records = conn.prepare(
        "SELECT id, source, verdict, reason, din, bag, site_id, step, operator, COALESCE(coi, ''), at, raw, message, parse_error, bags FROM scans ORDER BY id",
    )?;
    let records = records.query_map([], |row| {
        let raw = match row.get_ref(11)? {
            rusqlite::types::ValueRef::Blob(b) | rusqlite::types::ValueRef::Text(b) => {
                hex(&Sha256::digest(b)).into()
            }
            _ => serde_json::Value::Null,
        };
        let fields: Fields = vec![
            ("source", cell(row, 1)?),
            ("verdict", cell(row, 2)?),
            ("reason", cell(row, 3)?),
            ("din", cell(row, 4)?),
            ("bag", cell(row, 5)?),
            ("site_id", cell(row, 6)?),
            ("step", cell(row, 7)?),
            ("operator", cell(row, 8)?),
            ("subject", cell(row, 9)?),
            ("at", cell(row, 10)?),
            ("raw_sha256", raw),
            (
                "message_sha256",
                text_digest(row.get::<_, Option<String>>(12).ok().flatten().as_deref()),
            ),
            (
                "parse_error_sha256",
                text_digest(row.get::<_, Option<String>>(13).ok().flatten().as_deref()),
            ),
            ("bags", cell(row, 14)?),
        ];
        Ok((row.get::<_, i64>(0)?, fields))
    })?;
    let mut entries = conn.prepare(&entries_naming(("scan", "$.scan_id", "integer")))?;
    let entries = entries.query_map([], entry_naming::<i64>)?;
    let mut uncovered: (Option<i64>, i64) = (None, 0);
    let mut deleted: Option<(i64, i64)> = None;
    let found = in_step(records, entries, |pairing| match pairing {
        Pairing::Both(id, now, (seq, recorded)) => changed(recorded, now).and_then(|field| {
            not_covered(format!(
                "scan {id} no longer says what audit entry {seq} recorded ({field} was changed)"
            ))
        }),
        Pairing::RecordOnly(id, _) => {
            uncovered.0.get_or_insert(*id);
            uncovered.1 += 1;
            None
        }
        Pairing::EntryOnly(id, (seq, _)) => {
            earliest(&mut deleted, id, *seq);
            None
        }
    })?;
    if found.is_some() {
        return Ok(found);
    }
    if let (Some(first), count) = uncovered
        && count > without_id
    {
        return Ok(not_covered(format!(
            "scan {first} has no audit entry ({} scan(s) without one): recorded outside coi-agent, or its entry removed",
            count - without_id
        )));
    }
    Ok(deleted.and_then(|(id, seq)| {
        not_covered(format!(
            "audit entry {seq} records scan {id}, which is no longer in the journal (deleted)"
        ))
    }))
}

fn job_coverage(conn: &rusqlite::Connection) -> Result<Option<BrokenLink>, JournalError> {
    let mut records = conn.prepare(
        "SELECT job_id, bag, template, template_version, printer, zpl_sha256, operator, COALESCE(coi, ''), created_at, label_kind, collected_at, reprint FROM print_jobs ORDER BY job_id",
    )?;
    let records = records.query_map([], |row| {
        let fields: Fields = vec![
            ("bag", cell(row, 1)?),
            ("template", cell(row, 2)?),
            ("template_version", cell(row, 3)?),
            ("printer", cell(row, 4)?),
            ("zpl_sha256", cell(row, 5)?),
            ("operator", cell(row, 6)?),
            ("subject", cell(row, 7)?),
            ("at", cell(row, 8)?),
            ("label_kind", cell(row, 9)?),
            ("collected_at", cell(row, 10)?),
            (
                "reprint",
                serde_json::Value::Bool(row.get::<_, Option<bool>>(11)?.unwrap_or(false)),
            ),
        ];
        Ok((row.get::<_, String>(0)?, fields))
    })?;
    let mut entries = conn.prepare(&entries_naming(("print_job", "$.job_id", "text")))?;
    let entries = entries.query_map([], entry_naming::<String>)?;
    let mut deleted: Option<(String, i64)> = None;
    let found = in_step(records, entries, |pairing| {
        match pairing {
        Pairing::Both(id, now, (seq, recorded)) => changed(recorded, now).and_then(|field| {
            not_covered(format!(
                "print job {id} no longer says what audit entry {seq} recorded ({field} was changed)"
            ))
        }),
        Pairing::RecordOnly(id, _) => not_covered(format!(
            "print job {id} has no audit entry: recorded outside coi-agent, or its entry removed"
        )),
        Pairing::EntryOnly(id, (seq, _)) => {
            earliest(&mut deleted, id, *seq);
            None
        }
    }
    })?;
    if found.is_some() {
        return Ok(found);
    }
    Ok(deleted.and_then(|(id, seq)| {
        not_covered(format!(
            "audit entry {seq} records print job {id}, which is no longer in the journal (deleted)"
        ))
    }))
}

/// Custody events: from the first one an entry names (older journals did not name them), every
/// event is named by its record's entry and still has the payload it was built with.
fn event_coverage(conn: &rusqlite::Connection) -> Result<Option<BrokenLink>, JournalError> {
    const NAMED: &str = "SELECT json_extract(e.value, '$.event_id') AS event, a.seq, json_extract(e.value, '$.sha256')
         FROM audit a, json_each(a.details, '$.events') e
         WHERE a.details LIKE '%\"events\":%' AND json_valid(a.details) AND json_type(e.value, '$.event_id') = 'text'";
    let first_named: Option<i64> = conn.query_row(
        &format!("SELECT min(id) FROM outbox WHERE event_id IN (SELECT event FROM ({NAMED}))"),
        [],
        |row| row.get(0),
    )?;
    let mut records = conn.prepare("SELECT event_id, id, payload FROM outbox ORDER BY event_id")?;
    let records = records.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            (row.get::<_, i64>(1)?, row.get::<_, String>(2)?),
        ))
    })?;
    let mut entries = conn.prepare(&format!("{NAMED} ORDER BY event, a.seq"))?;
    let entries = entries.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            (row.get::<_, i64>(1)?, row.get::<_, Option<String>>(2)?),
        ))
    })?;
    let mut unnamed: Option<(i64, String)> = None;
    let mut deleted: Option<(String, i64)> = None;
    let found = in_step(records, entries, |pairing| match pairing {
        Pairing::Both(id, (_, payload), (seq, digest)) => {
            let payload: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
            (digest.as_deref() != Some(event_digest(&payload).as_str())).then(|| BrokenLink::NotCovered {
                what: format!(
                    "custody event {id} no longer has the content audit entry {seq} recorded (its payload was changed)"
                ),
            })
        }
        Pairing::RecordOnly(id, (row, _)) => {
            if first_named.is_some_and(|first| *row > first)
                && unnamed.as_ref().is_none_or(|(earliest, _)| row < earliest)
            {
                unnamed = Some((*row, id.clone()));
            }
            None
        }
        Pairing::EntryOnly(id, (seq, _)) => {
            earliest(&mut deleted, id, *seq);
            None
        }
    })?;
    if found.is_some() {
        return Ok(found);
    }
    if let Some((_, id)) = unnamed {
        return Ok(not_covered(format!(
            "custody event {id} has no audit entry: queued outside coi-agent, or its entry removed"
        )));
    }
    Ok(deleted.and_then(|(id, seq)| {
        not_covered(format!(
            "audit entry {seq} records custody event {id}, which is no longer in the journal (deleted)"
        ))
    }))
}

/// A print job as its audit entries made it.
#[derive(Debug, Default)]
struct Replayed {
    /// (state, fault, at), oldest first: its state history.
    history: Vec<(String, Option<String>, String)>,
    state: String,
    fault: Option<String>,
    verification: Option<String>,
    verification_scan: Option<i64>,
    /// Every entry said all this needs (entries of old journals may not).
    complete: bool,
}

/// Every print job's state, fault, verification and state history are what its entries made
/// them, replayed as the journal applies them: a voided job stays voided, a scan that confirms
/// a job clears its fault. Jobs, their entries and their history rows are read as three streams
/// sorted by job id, one job at a time.
fn job_histories(conn: &rusqlite::Connection) -> Result<Option<BrokenLink>, JournalError> {
    let mut entries = conn.prepare(
        "SELECT json_extract(details, '$.job_id') AS job, kind, details, at FROM audit
         WHERE kind IN ('print_job', 'print_job_state', 'print_job_verification')
           AND json_valid(details) AND json_type(details, '$.job_id') = 'text'
         ORDER BY job, seq",
    )?;
    let mut entries = entries
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                (
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                ),
            ))
        })?
        .peekable();
    let mut states =
        conn.prepare("SELECT job_id, state, fault, at FROM print_job_states ORDER BY job_id, id")?;
    let mut states = states
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                (
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, String>(3)?,
                ),
            ))
        })?
        .peekable();
    let mut jobs = conn.prepare(
        "SELECT job_id, state, fault, verification, verification_scan FROM print_jobs ORDER BY job_id",
    )?;
    let mut rows = jobs.query([])?;
    while let Some(row) = rows.next()? {
        let id: String = row.get(0)?;
        let job = replay(&group(&mut entries, &id)?);
        let history = group(&mut states, &id)?;
        if !job.complete {
            continue;
        }
        let changed = |what: &str| {
            Ok(Some(BrokenLink::NotCovered {
                what: format!(
                    "print job {id} no longer says what its audit entries recorded (its {what} was changed)"
                ),
            }))
        };
        let now: (String, Option<String>, Option<String>, Option<i64>) =
            (row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?);
        if now.0 != job.state {
            return changed("state");
        }
        if now.1 != job.fault {
            return changed("printer fault");
        }
        if (&now.2, now.3) != (&job.verification, job.verification_scan) {
            return changed("verification");
        }
        if history != job.history {
            return changed("state history");
        }
    }
    Ok(None)
}

/// Every cached order is the one its latest entry bound (by digest: identifiers, status, record),
/// and every order an entry bound and no later entry dropped is still cached: an order edited,
/// added or removed in the cache outside coi-agent (a patient's name changed before a label
/// prints) is found.
fn order_coverage(conn: &rusqlite::Connection) -> Result<Option<BrokenLink>, JournalError> {
    let mut entries = conn.prepare(
        "SELECT json_extract(b.value, '$[0]') AS coi, a.seq, json_extract(b.value, '$[1]')
         FROM audit a, json_each(a.details, '$.bound') b
         WHERE a.kind IN ('orders_synced', 'orders_bound') AND json_valid(a.details)
           AND json_type(b.value, '$[0]') = 'text'
         ORDER BY coi, a.seq",
    )?;
    let entries = entries.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            (row.get::<_, i64>(1)?, row.get::<_, Option<String>>(2)?),
        ))
    })?;
    // The latest binding of each order: entries come sorted by order, then entry.
    // (COI, (entry, digest or none when dropped)).
    type Binding = (String, (i64, Option<String>));
    let mut latest: Vec<rusqlite::Result<Binding>> = Vec::new();
    for entry in entries {
        match (entry, latest.last_mut()) {
            (Ok((coi, bound)), Some(Ok((last, held)))) if *last == coi => *held = bound,
            (entry, _) => latest.push(entry),
        }
    }
    let mut records =
        conn.prepare("SELECT coi, din, order_id, status, record FROM orders ORDER BY coi")?;
    let records = records.query_map([], |row| {
        let coi: String = row.get(0)?;
        let digest = order_digest(
            &coi,
            &row.get::<_, String>(1)?,
            &row.get::<_, String>(2)?,
            &row.get::<_, String>(3)?,
            &row.get::<_, String>(4)?,
        );
        Ok((coi, digest))
    })?;
    in_step(records, latest.into_iter(), |pairing| {
        match pairing {
        Pairing::Both(coi, digest, (seq, bound)) => match bound {
            Some(bound) if bound == digest => None,
            Some(_) => not_covered(format!(
                "cached order {coi} no longer is what audit entry {seq} recorded: it was changed outside coi-agent"
            )),
            None => not_covered(format!(
                "cached order {coi} was dropped by audit entry {seq} but is cached again: added outside coi-agent"
            )),
        },
        Pairing::RecordOnly(coi, _) => not_covered(format!(
            "cached order {coi} has no audit entry: added outside coi-agent"
        )),
        Pairing::EntryOnly(coi, (seq, bound)) => bound.as_ref().and_then(|_| {
            not_covered(format!(
                "audit entry {seq} records cached order {coi}, which is no longer in the journal (deleted)"
            ))
        }),
    }
    })
}

/// Every custody event's state is what its entries made it (delivered, parked, put back in
/// line, closed), replayed as the outbox applies them: an event marked delivered outside
/// coi-agent (so never sent) is found. From the first event an entry names, as for coverage.
fn event_states(conn: &rusqlite::Connection) -> Result<Option<BrokenLink>, JournalError> {
    let mut entries = conn.prepare(
        "SELECT json_extract(details, '$.event_id') AS event, kind, at FROM audit
         WHERE kind IN ('event_delivered', 'event_parked', 'event_requeued', 'event_closed')
           AND json_valid(details) AND json_type(details, '$.event_id') = 'text'
         ORDER BY event, seq",
    )?;
    let mut entries = entries
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                (row.get::<_, String>(1)?, row.get::<_, String>(2)?),
            ))
        })?
        .peekable();
    let first_named: Option<i64> = conn.query_row(
        "SELECT min(id) FROM outbox WHERE event_id IN (SELECT json_extract(e.value, '$.event_id')
           FROM audit a, json_each(a.details, '$.events') e
           WHERE a.details LIKE '%\"events\":%' AND json_valid(a.details))",
        [],
        |row| row.get(0),
    )?;
    let Some(first_named) = first_named else {
        return Ok(None);
    };
    let mut events = conn.prepare(
        "SELECT event_id, state, delivered_at, closed_at IS NOT NULL FROM outbox WHERE id >= ?1 ORDER BY event_id",
    )?;
    let mut rows = events.query([first_named])?;
    while let Some(row) = rows.next()? {
        let id: String = row.get(0)?;
        let (mut state, mut delivered_at, mut closed) = ("pending", None::<String>, false);
        for (kind, at) in group(&mut entries, &id)? {
            match kind.as_str() {
                "event_delivered" => {
                    state = "delivered";
                    delivered_at = Some(at);
                }
                "event_parked" => state = "parked",
                "event_requeued" => state = "pending",
                _ => closed = true,
            }
        }
        let now: (String, Option<String>, bool) = (row.get(1)?, row.get(2)?, row.get(3)?);
        if now.0 != state || now.1 != delivered_at || now.2 != closed {
            let what = if now.0 != state {
                format!("its state is {} where its entries say {state}", now.0)
            } else if now.1 != delivered_at {
                "its delivery time was changed".to_owned()
            } else {
                "it was closed or reopened outside coi-agent".to_owned()
            };
            return Ok(Some(BrokenLink::NotCovered {
                what: format!(
                    "custody event {id} no longer says what its audit entries recorded: {what}"
                ),
            }));
        }
    }
    Ok(None)
}

/// The items of the rows keyed `key`, from rows sorted by key (rows before it are passed).
fn group<K: Ord, T, I: Iterator<Item = rusqlite::Result<(K, T)>>>(
    rows: &mut std::iter::Peekable<I>,
    key: &K,
) -> rusqlite::Result<Vec<T>> {
    let mut found = Vec::new();
    loop {
        match rows.peek() {
            Some(Ok((k, _))) if k < key => {
                rows.next();
            }
            Some(Ok((k, _))) if k == key => {
                if let Some(Ok((_, item))) = rows.next() {
                    found.push(item);
                }
            }
            Some(Err(_)) => {
                rows.next().transpose()?;
            }
            _ => return Ok(found),
        }
    }
}

/// A job made from its entries (kind, details, at), oldest first.
fn replay(entries: &[(String, String, String)]) -> Replayed {
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    let mut job = Replayed::default();
    for (kind, details, at) in entries {
        let details: serde_json::Value = serde_json::from_str(details).unwrap_or_default();
        match kind.as_str() {
            "print_job" => {
                let state = text(&details["state"]);
                job.complete = state.is_some();
                job.state = state.unwrap_or_default();
                job.history.push((job.state.clone(), None, at.clone()));
            }
            "print_job_state" => {
                let Some(state) = text(&details["state"]) else {
                    job.complete = false;
                    continue;
                };
                let fault = text(&details["fault"]);
                job.history.push((state.clone(), fault.clone(), at.clone()));
                if details.get("was").is_some() {
                    // A void: the state only.
                    job.state = state;
                } else if job.state != "voided" {
                    job.state = state;
                    job.fault = fault;
                }
            }
            _ => {
                let Some(confirmed) = details["confirmed_by_scan"].as_bool() else {
                    job.complete = false;
                    continue;
                };
                job.verification = text(&details["verification"]);
                job.verification_scan = details["scan_id"].as_i64();
                if confirmed && job.state != "voided" {
                    job.state = "confirmed".to_owned();
                    job.fault = None;
                    job.history.push(("confirmed".to_owned(), None, at.clone()));
                }
            }
        }
    }
    job
}

/// The first field whose value differs from what the entry recorded (fields an older entry did
/// not record are not compared).
fn changed<'f>(
    recorded: &serde_json::Value,
    now: &[(&'f str, serde_json::Value)],
) -> Option<&'f str> {
    now.iter()
        .find(|(field, value)| recorded.get(field).is_some_and(|was| was != value))
        .map(|(field, _)| *field)
}

/// Checks the chain's links and hashes, and the head row; with it, the first run of entries
/// keyed with a key not among `keys` (their links checked, their hashes not).
#[allow(clippy::type_complexity)]
fn verify_chain(
    conn: &rusqlite::Connection,
    keys: &[AuditKey],
) -> Result<(Result<i64, BrokenLink>, Option<BrokenLink>), JournalError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT seq, at, kind, subject, details, prev_hash, hash, {} FROM audit ORDER BY seq",
        key_column(conn)?
    ))?;
    let mut rows = stmt.query([])?;
    let mut previous: Option<(i64, [u8; 32])> = None;
    let mut count = 0;
    let mut not_checked: Option<(String, i64, i64)> = None;
    while let Some(row) = rows.next()? {
        let entry = read_entry(row)?;
        let (expected_seq, expected_prev) = match previous {
            Some((seq, hash)) => (seq + 1, hash),
            None => (1, GENESIS),
        };
        if entry.seq != expected_seq || entry.prev_hash != expected_prev {
            return Ok((
                Err(BrokenLink::Unlinked {
                    seq: entry.seq,
                    previous: previous.map_or(0, |p| p.0),
                }),
                None,
            ));
        }
        let fields = (
            entry.at.as_str(),
            entry.kind.as_str(),
            entry.subject.as_str(),
            entry.details.as_str(),
        );
        let expected = match &entry.key_id {
            None => {
                // A key at hand keys every entry from its `from` on: a plain one there was
                // made by someone without it.
                if let Some(key) = keys.iter().find(|key| entry.seq >= key.from()) {
                    return Ok((
                        Err(BrokenLink::Unkeyed {
                            seq: entry.seq,
                            key_id: key.id().to_owned(),
                            from: key.from(),
                        }),
                        None,
                    ));
                }
                Some(entry_hash(
                    entry.seq,
                    fields.0,
                    fields.1,
                    fields.2,
                    fields.3,
                    &entry.prev_hash,
                ))
            }
            Some(id) => keys
                .iter()
                .find(|key| key.id() == id)
                .map(|key| keyed_entry_hash(key, entry.seq, fields, &entry.prev_hash)),
        };
        match (expected, &entry.key_id, &mut not_checked) {
            (Some(expected), _, _) if expected != entry.hash => {
                return Ok((Err(BrokenLink::Edited { seq: entry.seq }), None));
            }
            (Some(_), _, _) => {}
            (None, Some(id), Some((run_id, _, last))) if run_id == id && *last + 1 == entry.seq => {
                *last = entry.seq;
            }
            (None, Some(id), None) => not_checked = Some((id.clone(), entry.seq, entry.seq)),
            (None, _, _) => {}
        }
        previous = Some((entry.seq, entry.hash));
        count += 1;
    }
    let not_checked = not_checked.map(|(key_id, first, last)| BrokenLink::NotChecked {
        key_id,
        first,
        last,
        lost: String::new(),
    });
    let head: Option<(i64, Vec<u8>)> = conn
        .query_row("SELECT seq, hash FROM audit_head WHERE id = 1", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    let last = previous.map_or(0, |p| p.0);
    let chain = match head {
        Some((head, _)) if head != last => Err(BrokenLink::Truncated { last, head }),
        Some((_, hash)) if previous.is_some_and(|p| p.1.as_slice() != hash.as_slice()) => {
            Err(BrokenLink::Missing {
                what: format!(
                    "the audit trail's head row does not hold entry {last}'s hash: it was changed"
                ),
            })
        }
        // Every entry moves the head: entries without one had it deleted.
        None if last > 0 => Err(BrokenLink::Missing {
            what: format!(
                "the audit trail's head row is missing (the trail ends at entry {last}; entries after it may have been removed)"
            ),
        }),
        _ => Ok(count),
    };
    Ok((chain, not_checked))
}

/// Entries from `since` (RFC 3339, compared as text in UTC), in order.
pub(crate) fn entries(
    conn: &rusqlite::Connection,
    since: Option<&str>,
) -> Result<Vec<AuditEntry>, JournalError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT seq, at, kind, subject, details, prev_hash, hash, {} FROM audit WHERE at >= ?1 ORDER BY seq",
        key_column(conn)?
    ))?;
    let rows = stmt.query_map([since.unwrap_or("")], read_entry)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The entries' key column, or none in a journal made before keys (a copy opened read-only
/// is not migrated).
fn key_column(conn: &rusqlite::Connection) -> Result<&'static str, JournalError> {
    let has: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info('audit') WHERE name = 'key_id')",
        [],
        |row| row.get(0),
    )?;
    Ok(if has { "key_id" } else { "NULL" })
}

fn read_entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        seq: row.get(0)?,
        at: row.get(1)?,
        kind: row.get(2)?,
        subject: row.get(3)?,
        details: row.get(4)?,
        prev_hash: to_hash(&row.get::<_, Vec<u8>>(5)?),
        hash: to_hash(&row.get::<_, Vec<u8>>(6)?),
        key_id: row.get(7)?,
    })
}

/// A stored hash; a value of the wrong length (a damaged row) becomes one that can never match.
fn to_hash(bytes: &[u8]) -> [u8; 32] {
    <[u8; 32]>::try_from(bytes).unwrap_or([0xff; 32])
}

/// JSON with object keys sorted and no whitespace, so the same details always hash alike.
pub fn canonical_json(value: &serde_json::Value) -> String {
    fn sorted(value: &serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                serde_json::Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&map[k])))
                        .collect(),
                )
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(sorted).collect())
            }
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_changes_the_hash() {
        let hash = |seq, at, kind, subject, details, prev: &[u8; 32]| {
            entry_hash(seq, at, kind, subject, details, prev)
        };
        let (at, subject) = ("2026-01-01T00:00:00Z", "CHA999925000042");
        let base = hash(1, at, "scan", subject, "{}", &GENESIS);
        for changed in [
            hash(2, at, "scan", subject, "{}", &GENESIS),
            hash(1, "2026-01-01T00:00:01Z", "scan", subject, "{}", &GENESIS),
            hash(1, at, "scan2", subject, "{}", &GENESIS),
            hash(1, at, "scan", "CHA999925000043", "{}", &GENESIS),
            hash(1, at, "scan", subject, "{\"a\":1}", &GENESIS),
            hash(1, at, "scan", subject, "{}", &[1; 32]),
        ] {
            assert_ne!(base, changed);
        }
        // Length prefixes: moving a character between fields is a different entry.
        assert_ne!(
            hash(1, "a", "bc", "", "", &GENESIS),
            hash(1, "ab", "c", "", "", &GENESIS)
        );
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"b": 1, "a": {"d": 2, "c": [3, {"f": 4, "e": 5}]}}"#).unwrap();
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"c":[3,{"e":5,"f":4}],"d":2},"b":1}"#
        );
    }
}

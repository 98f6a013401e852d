//! The journal: the workstation's durable record on SQLite (bundled). Scans with their
//! verdicts, print jobs, the order cache, the hash-chained audit trail and the outbox of custody
//! events for the central service. The only module that writes SQL.
//!
//! Durability: WAL with `synchronous=FULL`, so a call that returns `Ok` has reached the disk, and
//! a record and the audit entry and events that describe it commit in one transaction. One
//! writer (this handle); readers open their own handles and never block it.

pub mod audit;
pub mod audit_key;
pub mod operators;
pub mod outbox;
pub mod print_jobs;

use std::collections::HashSet;
use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension as _, params};

use crate::custody::NewEvent;
use crate::isbt128::coi::CoiId;
use crate::reconcile::Verdict;
use audit::{AuditEntry, BrokenLink};
use audit_key::{AuditKey, KeyError};

/// The journal's one writer.
#[derive(Debug)]
pub struct Journal {
    conn: Connection,
    /// The key audit entries are made with (a journal opened for writing always has one); for
    /// a read-only handle, the key beside the file if it is there, to check entries with.
    key: Option<AuditKey>,
    /// For a journal opened for writing: the key's file and how it was when read, so a key
    /// file moved away or replaced while this handle lives (a long-running service) is seen
    /// before the next entry is made.
    key_file: Option<(std::path::PathBuf, Option<FileStamp>)>,
}

/// A file's identity and last change, to notice it was replaced.
type FileStamp = (u64, u64, i64, i64);

fn stamp_of(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino(), m.mtime(), m.mtime_nsec()))
}

/// A write transaction with the audit key its entries are made with.
#[derive(Debug)]
pub(crate) struct Writer<'j> {
    tx: rusqlite::Transaction<'j>,
    key: Option<&'j AuditKey>,
}

impl<'j> std::ops::Deref for Writer<'j> {
    type Target = rusqlite::Transaction<'j>;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl Writer<'_> {
    fn commit(self) -> Result<(), rusqlite::Error> {
        self.tx.commit()
    }
}

/// Why the journal could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(
        "journal {path}: this user cannot write it (owned by uid {owner}): run coi-agent as the user the journal belongs to (sudo -u coi-agent coi-agent ...), or give it back with chown"
    )]
    NotWritable { path: String, owner: u32 },
    #[error("journal {path}: {cause}")]
    Open {
        path: String,
        cause: rusqlite::Error,
    },
    #[error(
        "journal {path} has schema version {found}, newer than this coi-agent knows ({known}): refusing to touch it"
    )]
    TooNew {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("journal: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("{0}")]
    AuditKey(#[from] KeyError),
    /// The thread that owns the journal could not start, or has stopped.
    #[error("journal: {0}")]
    Owner(String),
}

/// A time as the journal stores it: UTC, fixed width with nanoseconds
/// (`2026-11-22T02:29:06.586899219Z`), so text order is time order in queries.
pub fn utc_text(at: jiff::Timestamp) -> String {
    let dt = at.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.subsec_nanosecond()
    )
}

/// A scan and its verdict, as recorded.
#[derive(Debug, Clone)]
pub struct ScanRecord<'a> {
    /// From [`utc_text`].
    pub at: &'a str,
    pub source: &'a str,
    pub raw: &'a [u8],
    /// Why the scan could not be parsed, if it could not.
    pub parse_error: Option<&'a str>,
    pub verdict: &'a Verdict,
    pub site_id: &'a str,
    /// `receipt` or `verify`.
    pub step: &'a str,
    pub operator: Option<&'a str>,
}

/// A recorded scan as read back (for screens and the API), without its raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRow {
    pub id: i64,
    pub at: String,
    pub step: String,
    pub source: String,
    /// `match` or `mismatch`.
    pub verdict: String,
    pub reason: Option<String>,
    pub message: String,
    pub coi: Option<String>,
    pub din: Option<String>,
    pub bag: Option<u8>,
    pub order_id: Option<String>,
    /// The order's number of bags, when an order was identified.
    pub bags: Option<u8>,
}

/// A recent scan of one source, as the pairing of halves reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestScan {
    pub verdict: String,
    /// From [`utc_text`].
    pub at: String,
    pub operator: Option<String>,
    pub raw: Vec<u8>,
}

/// A bag already received at the site: the scan must be judged again (it is a duplicate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlreadyReceived;

/// Whether a bag was received at a site: one lookup in the `scans_received` index.
const RECEIVED: &str = "SELECT EXISTS (SELECT 1 FROM scans WHERE site_id = ?1 AND coi = ?2 AND bag = ?3 AND verdict = 'match' AND step = 'receipt')";

/// The schema, one migration per version; `PRAGMA user_version` records how far a journal is.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE orders (
        coi TEXT PRIMARY KEY,
        din TEXT NOT NULL UNIQUE,
        order_id TEXT NOT NULL,
        status TEXT NOT NULL,
        record TEXT NOT NULL,
        synced_at TEXT NOT NULL
    );
    CREATE TABLE scans (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        source TEXT NOT NULL,
        raw BLOB NOT NULL,
        parse_error TEXT,
        verdict TEXT NOT NULL CHECK (verdict IN ('match', 'mismatch')),
        reason TEXT,
        message TEXT NOT NULL,
        coi TEXT,
        din TEXT,
        bag INTEGER,
        order_id TEXT,
        site_id TEXT NOT NULL,
        step TEXT NOT NULL,
        operator TEXT
    );
    CREATE INDEX scans_received ON scans (site_id, coi, bag) WHERE verdict = 'match' AND step = 'receipt';
    CREATE TABLE print_jobs (
        id INTEGER PRIMARY KEY,
        job_id TEXT NOT NULL UNIQUE,
        coi TEXT,
        bag INTEGER,
        template TEXT NOT NULL,
        template_version TEXT NOT NULL,
        printer TEXT NOT NULL,
        zpl_sha256 TEXT NOT NULL,
        operator TEXT,
        created_at TEXT NOT NULL,
        state TEXT NOT NULL,
        fault TEXT
    );
    CREATE TABLE print_job_states (
        id INTEGER PRIMARY KEY,
        job_id TEXT NOT NULL REFERENCES print_jobs (job_id),
        state TEXT NOT NULL,
        fault TEXT,
        at TEXT NOT NULL
    );
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        details TEXT NOT NULL,
        prev_hash BLOB NOT NULL,
        hash BLOB NOT NULL
    );
    CREATE TABLE audit_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq INTEGER NOT NULL,
        hash BLOB NOT NULL
    );
    -- Append-only by construction; verify still catches an edit made around these triggers.
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL UNIQUE,
        coi TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'parked')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        last_error TEXT,
        created_at TEXT NOT NULL,
        delivered_at TEXT
    );
    CREATE INDEX outbox_pending ON outbox (state, coi, id);",
    // 2: where order sync left off.
    "CREATE TABLE sync_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    // 3: the print flow: whether a job is a reprint, the collection time its label carries (one
    // per collection), and the verify step: the scan of its label and whether it matched.
    "ALTER TABLE print_jobs ADD COLUMN reprint INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE print_jobs ADD COLUMN collected_at TEXT;
     ALTER TABLE print_jobs ADD COLUMN verification TEXT CHECK (verification IN ('verified', 'flagged'));
     ALTER TABLE print_jobs ADD COLUMN verification_scan INTEGER REFERENCES scans (id);
     CREATE INDEX print_jobs_bag ON print_jobs (coi, bag);",
    // 4: a parked event closed deliberately by a person (`outbox ack`), with the reason; it
    // stays parked (never sent) and is no longer counted as waiting for someone.
    "ALTER TABLE outbox ADD COLUMN closed_at TEXT;
     ALTER TABLE outbox ADD COLUMN closed_reason TEXT;",
    // 5: an order whose latest update was refused is held (issue #13): why, until a valid
    // version replaces it.
    "ALTER TABLE orders ADD COLUMN held TEXT;",
    // 6: sample tube labels are not bag labels (issue #20): a job says which it is (jobs
    // printed from the sample-tube template before are samples); a scan may be a sample or
    // an incomplete half (issue #17; the verdict check is widened by `widen_scan_verdicts`),
    // and the latest scan of a source is one indexed lookup.
    "ALTER TABLE print_jobs ADD COLUMN label_kind TEXT NOT NULL DEFAULT 'bag' CHECK (label_kind IN ('bag', 'sample'));
     UPDATE print_jobs SET label_kind = 'sample' WHERE template = 'sample-tube';
     CREATE INDEX scans_by_source ON scans (source, site_id, step, id);
     ALTER TABLE scans ADD COLUMN bags INTEGER;",
    // 7: operators who sign in to the screens (issue #12): a PIN kept as an Argon2id hash,
    // wrong PINs counted toward a lockout.
    "CREATE TABLE operators (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('nurse', 'tech', 'admin')),
        pin_hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        disabled_at TEXT,
        wrong_pins INTEGER NOT NULL DEFAULT 0,
        locked_until TEXT
    );",
    // 8: keyed audit entries (issue #16): the id of the installation's audit key that keyed an
    // entry (HMAC-SHA256); none for entries made before.
    "ALTER TABLE audit ADD COLUMN key_id TEXT;",
];

/// The migration after which the scans' verdict check is widened.
const WIDEN_SCAN_VERDICTS: usize = 6;

/// The scans' verdict check as created by migration 1, and as it is from migration 6 on.
const VERDICTS_V1: &str = "CHECK (verdict IN ('match', 'mismatch'))";
const VERDICTS_V6: &str = "CHECK (verdict IN ('match', 'mismatch', 'sample', 'incomplete'))";

/// Widens the scans' verdict check in place, by SQLite's documented procedure for a change
/// that leaves every stored row valid (<https://sqlite.org/lang_altertable.html>, "making other
/// kinds of table schema changes"): rewrite the table's SQL and bump the schema version. A
/// table rebuild would have to drop `scans`, which `print_jobs` references.
fn widen_scan_verdicts(tx: &rusqlite::Transaction<'_>) -> Result<(), JournalError> {
    let version: i64 = tx.pragma_query_value(None, "schema_version", |row| row.get(0))?;
    tx.pragma_update(None, "writable_schema", true)?;
    let changed = tx.execute(
        "UPDATE sqlite_schema SET sql = replace(sql, ?1, ?2) WHERE type = 'table' AND name = 'scans'",
        params![VERDICTS_V1, VERDICTS_V6],
    )?;
    tx.pragma_update(None, "schema_version", version + 1)?;
    tx.pragma_update(None, "writable_schema", false)?;
    let sql: String = tx.query_row(
        "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'scans'",
        [],
        |row| row.get(0),
    )?;
    let check: String = tx.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
    if changed != 1 || !sql.contains(VERDICTS_V6) || check != "ok" {
        return Err(JournalError::Owner(
            "migration 6: the scans table's verdict check is not the one this journal was created with"
                .to_owned(),
        ));
    }
    Ok(())
}

/// Whether this user may write the journal at `path` and its `-wal` and `-shm` files, where
/// they exist (nothing is changed).
///
/// # Errors
/// `NotWritable`, naming the file and its owner.
pub fn writable(path: &Path) -> Result<(), JournalError> {
    let beside = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name)
    };
    for file in [path.to_owned(), beside("-wal"), beside("-shm")] {
        if let Err(err) = std::fs::OpenOptions::new().write(true).open(&file)
            && err.kind() == std::io::ErrorKind::PermissionDenied
        {
            use std::os::unix::fs::MetadataExt as _;
            let owner = std::fs::metadata(&file).map_or(0, |m| m.uid());
            return Err(JournalError::NotWritable {
                path: file.display().to_string(),
                owner,
            });
        }
    }
    Ok(())
}

impl Journal {
    /// Opens (creating if needed) and migrates the journal at `path`.
    ///
    /// # Errors
    /// The file cannot be opened or is not a journal, or was written by a newer coi-agent.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let shown = path.display().to_string();
        let open_err = |source| JournalError::Open {
            path: shown.clone(),
            cause: source,
        };
        // The journal holds patient names and dates of birth: a new one is readable by this
        // user only (SQLite gives its -wal and -shm files the same mode).
        // A journal made by another user (root running a command before the service first
        // started) would otherwise fail as "unable to open database file".
        writable(path)?;
        if !path.exists() {
            use std::os::unix::fs::OpenOptionsExt as _;
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path);
        }
        let conn = Connection::open(path).map_err(open_err)?;
        // WAL lets readers run beside the writer; FULL makes each commit durable before it
        // returns; the busy timeout rides out a reader's checkpoint.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        let mut journal = Journal {
            conn,
            key: None,
            key_file: None,
        };
        journal.migrate(&shown)?;
        let key_path = audit_key::path_for(path);
        journal.key = Some(journal.ensure_audit_key(&key_path)?);
        let stamp = stamp_of(&key_path);
        journal.key_file = Some((key_path, stamp));
        Ok(journal)
    }

    /// The audit key beside the journal, made if there is none: under the write lock, keying
    /// every entry after the head, so no entry is appended between reading the head and the
    /// key appearing. A key made for a journal that has entries is itself recorded in the trail
    /// (`audit_key_made`), with the key it replaces when that one was lost.
    fn ensure_audit_key(&mut self, path: &Path) -> Result<AuditKey, JournalError> {
        match AuditKey::load(path) {
            Err(KeyError::Missing(_)) => {}
            found => return Ok(found?),
        }
        let writer = self.write()?;
        let head: i64 = writer.query_row("SELECT COALESCE(MAX(seq), 0) FROM audit", [], |row| {
            row.get(0)
        })?;
        let key = AuditKey::create(path, head + 1)?;
        if key.from() == head + 1 && head > 0 {
            // The orders cached before the trail bound them (a journal from before keys): bound
            // now, once, so an order edited in the cache from here on is found.
            let unbound: Vec<serde_json::Value> = {
                let mut stmt = writer.prepare(
                    "SELECT coi, din, order_id, status, record FROM orders o WHERE NOT EXISTS (
                       SELECT 1 FROM audit a, json_each(a.details, '$.bound') b
                       WHERE a.kind IN ('orders_synced', 'orders_bound') AND json_valid(a.details)
                         AND json_extract(b.value, '$[0]') = o.coi)
                     ORDER BY coi",
                )?;
                let rows = stmt.query_map([], |row| {
                    let coi: String = row.get(0)?;
                    let digest = audit::order_digest(
                        &coi,
                        &row.get::<_, String>(1)?,
                        &row.get::<_, String>(2)?,
                        &row.get::<_, String>(3)?,
                        &row.get::<_, String>(4)?,
                    );
                    Ok(serde_json::json!([coi, digest]))
                })?;
                rows.collect::<Result<_, _>>()?
            };
            let replaces: Option<String> = writer.query_row(
                "SELECT key_id FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |row| row.get(0),
            )?;
            if let Some(lost) = &replaces {
                tracing::warn!(
                    key = %path.display(),
                    lost = %lost,
                    "the audit key was missing: a new one was made; entries keyed with the lost key can be checked only with a copy of it"
                );
                // Said on every face, not only in the service's log: site IT must look for a
                // copy of the lost key now (docs/audit.md).
                eprintln!(
                    "coi-agent: WARNING: the audit key {} was missing. A new key (id {}) keys the audit trail from entry {}; entries 1 to {head} were keyed with key {lost}, which can be checked only with a copy of it (audit verify --key FILE; docs/audit.md).",
                    path.display(),
                    key.id(),
                    key.from()
                );
            }
            let writer = Writer {
                tx: writer.tx,
                key: Some(&key),
            };
            audit::append(
                &writer,
                &utc_text(jiff::Timestamp::now()),
                "audit_key_made",
                "",
                &serde_json::json!({"key_id": key.id(), "replaces": replaces}),
            )?;
            if !unbound.is_empty() {
                audit::append(
                    &writer,
                    &utc_text(jiff::Timestamp::now()),
                    "orders_bound",
                    "",
                    &serde_json::json!({"bound": unbound}),
                )?;
            }
            writer.commit()?;
        }
        Ok(key)
    }

    /// A read-only handle (for `audit verify`, exports and the UI), which never blocks the writer.
    ///
    /// # Errors
    /// The file does not exist or is not a journal.
    pub fn open_read_only(path: &Path) -> Result<Journal, JournalError> {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(
            |source| JournalError::Open {
                path: path.display().to_string(),
                cause: source,
            },
        )?;
        // The key checks entries; a copy without one beside it is still read (what its
        // entries could not be checked with is then said by `verify_audit`).
        let key = match AuditKey::load(&audit_key::path_for(path)) {
            Err(KeyError::Missing(_)) => None,
            found => Some(found?),
        };
        Ok(Journal {
            conn,
            key,
            key_file: None,
        })
    }

    /// A write transaction that takes the write lock at once: a read-then-write transaction
    /// that started deferred could not wait for another process's writer (SQLITE_BUSY at the
    /// upgrade, whatever the busy timeout), and two processes could both read before writing.
    fn write(&mut self) -> Result<Writer<'_>, JournalError> {
        self.recheck_key()?;
        Ok(Writer {
            tx: self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?,
            key: self.key.as_ref(),
        })
    }

    /// The key file as it is now, if it changed since it was read: a key another process made
    /// in place of a lost one is used from here on, and a key lost while this handle lived is
    /// replaced (and the loss recorded) before anything more is keyed with the old one.
    fn recheck_key(&mut self) -> Result<(), JournalError> {
        let Some((path, stamp)) = &self.key_file else {
            return Ok(());
        };
        if stamp_of(path) == *stamp {
            return Ok(());
        }
        let path = path.clone();
        // Taken while the key is read again: its own writes must not check again.
        self.key_file = None;
        let key = match AuditKey::load(&path) {
            Err(KeyError::Missing(_)) => self.ensure_audit_key(&path)?,
            found => found?,
        };
        if self.key.as_ref().is_some_and(|old| old.id() != key.id()) {
            tracing::warn!(
                key = %path.display(),
                now = %key.id(),
                "the audit key file changed while the journal was open: entries are keyed with the key it now holds"
            );
        }
        self.key = Some(key);
        self.key_file = Some((path.clone(), stamp_of(&path)));
        Ok(())
    }

    fn migrate(&mut self, shown: &str) -> Result<(), JournalError> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(JournalError::TooNew {
                path: shown.to_owned(),
                found: version,
                known,
            });
        }
        if version == known {
            return Ok(());
        }
        // Each step reads the version again under the write lock: two processes opening an old
        // journal at once run each migration once.
        loop {
            let tx = self.write()?;
            let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
            let Some((index, sql)) = usize::try_from(version)
                .ok()
                .and_then(|v| MIGRATIONS.get(v).map(|sql| (v, sql)))
            else {
                break;
            };
            tx.execute_batch(sql)?;
            if index + 1 == WIDEN_SCAN_VERDICTS {
                widen_scan_verdicts(&tx)?;
            }
            tx.pragma_update(None, "user_version", index as i64 + 1)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// Records a scan with its verdict, an audit entry and the events it causes, in one
    /// durable transaction; returns the scan's id.
    ///
    /// # Errors
    /// SQLite failed (disk full, I/O error); nothing of the scan was recorded.
    pub fn record_scan(
        &mut self,
        scan: &ScanRecord<'_>,
        events: &[NewEvent],
    ) -> Result<i64, JournalError> {
        let tx = self.write()?;
        let id = insert_scan(&tx, scan, events)?;
        tx.commit()?;
        Ok(id)
    }

    /// The latest scans (newest first, at most `limit`) of `source` at `site_id` for `step`,
    /// as (verdict, at, operator, raw): where a pending half is looked for. A source whose name
    /// ends in a peer's port (`... from 10.0.0.7:51234`, a TCP scanner) matches any port of that
    /// peer: a scanner that reconnects is the same scanner.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn latest_scans_of(
        &self,
        source: &str,
        site_id: &str,
        step: &str,
        limit: usize,
    ) -> Result<Vec<LatestScan>, JournalError> {
        // `... from HOST:` — the source up to the peer's port, if it names one.
        let peer = source
            .rfind(" from ")
            .and_then(|from| {
                source[from..]
                    .rfind(':')
                    .map(|colon| &source[..=from + colon])
            })
            .filter(|prefix| !prefix.contains(['%', '_', '\\']));
        let mut stmt = self.conn.prepare_cached(
            "SELECT verdict, at, operator, raw FROM scans
             WHERE (source = ?1 OR (?5 IS NOT NULL AND source LIKE ?5 || '%'))
               AND site_id = ?2 AND step = ?3 ORDER BY id DESC LIMIT ?4",
        )?;
        let rows = stmt.query_map(params![source, site_id, step, limit as i64, peer], |row| {
            Ok(LatestScan {
                verdict: row.get(0)?,
                at: row.get(1)?,
                operator: row.get(2)?,
                raw: row.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records a receipt scan like [`Journal::record_scan`], unless it is a match for bag
    /// `received` = (COI, bag) and a matching receipt of that bag at the scan's site is already
    /// recorded: then nothing is recorded and `Ok(Err(AlreadyReceived))` says to judge the scan
    /// again. The check and the record are one write transaction, so two workstations scanning
    /// one bag at once cannot both receive it.
    ///
    /// # Errors
    /// SQLite failed; nothing was recorded.
    pub fn record_receipt(
        &mut self,
        scan: &ScanRecord<'_>,
        events: &[NewEvent],
        received: Option<(&str, u8)>,
    ) -> Result<Result<i64, AlreadyReceived>, JournalError> {
        let tx = self.write()?;
        if let Some((coi, bag)) = received {
            let already: bool = tx
                .prepare_cached(RECEIVED)?
                .query_row(params![scan.site_id, coi, bag], |row| row.get(0))?;
            if already {
                return Ok(Err(AlreadyReceived));
            }
        }
        let id = insert_scan(&tx, scan, events)?;
        tx.commit()?;
        Ok(Ok(id))
    }

    /// Records several scans in one durable transaction (a burst: one disk flush for all);
    /// all or none are recorded. Returns their ids.
    ///
    /// # Errors
    /// SQLite failed; none of the scans were recorded.
    pub fn record_scans(
        &mut self,
        scans: &[(ScanRecord<'_>, Vec<NewEvent>)],
    ) -> Result<Vec<i64>, JournalError> {
        let tx = self.write()?;
        let ids = scans
            .iter()
            .map(|(scan, events)| insert_scan(&tx, scan, events))
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit()?;
        Ok(ids)
    }

    /// Bags received (matched at receipt) at `site_id`, for reconciliation's duplicate check.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn received_bags(&self, site_id: &str) -> Result<HashSet<(CoiId, u8)>, JournalError> {
        let mut stmt = self.conn.prepare(
            "SELECT coi, bag FROM scans WHERE site_id = ?1 AND verdict = 'match' AND step = 'receipt' AND coi IS NOT NULL AND bag IS NOT NULL",
        )?;
        let rows = stmt.query_map([site_id], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?;
        let mut received = HashSet::new();
        for row in rows {
            let (coi, bag) = row?;
            // Only what this journal wrote is here; a row that does not parse is skipped, not
            // trusted.
            if let (Ok(coi), Ok(bag)) = (CoiId::parse(&coi), u8::try_from(bag)) {
                received.insert((coi, bag));
            }
        }
        Ok(received)
    }

    /// Writes a consistent copy of the journal to `to` (a file that must not exist yet), mode
    /// 0600, while other processes keep writing: one read transaction's snapshot
    /// (`VACUUM INTO`), so the copy never restarts however busy the journal is.
    ///
    /// # Errors
    /// `to` exists, or SQLite failed (nothing usable is left at `to`).
    pub fn backup_to(&self, to: &Path) -> Result<(), JournalError> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let shown = to.display().to_string();
        // Created empty and private first: the copy holds patient data.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(to)
            .map_err(|e| JournalError::Owner(format!("backup {shown}: {e}")))?;
        let target = to
            .to_str()
            .ok_or_else(|| JournalError::Owner(format!("backup {shown}: not a UTF-8 path")))?;
        if let Err(problem) = self.conn.execute("VACUUM INTO ?1", [target]) {
            let _ = std::fs::remove_file(to);
            return Err(problem.into());
        }
        Ok(())
    }

    /// The audit key this journal's entries are made (or, read-only, checked) with.
    pub fn audit_key(&self) -> Option<&AuditKey> {
        self.key.as_ref()
    }

    /// Checks the audit chain with the journal's own key: the number of entries, or the first
    /// broken link.
    ///
    /// # Errors
    /// SQLite failed (the check itself could not run).
    pub fn verify_audit(&self) -> Result<Result<i64, BrokenLink>, JournalError> {
        self.verify_audit_with(&[])
    }

    /// Checks the audit chain with the journal's own key and `more` (older keys, or the key of
    /// the journal a copy was taken from).
    ///
    /// # Errors
    /// SQLite failed (the check itself could not run).
    pub fn verify_audit_with(
        &self,
        more: &[AuditKey],
    ) -> Result<Result<i64, BrokenLink>, JournalError> {
        let keys: Vec<AuditKey> = self.key.iter().chain(more).cloned().collect();
        audit::verify(&self.conn, &keys)
    }

    /// Whether entry `seq` still has `hash` (hex), as an anchor held outside the machine says:
    /// the reason when it does not.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn check_anchor(&self, seq: i64, hash: &str) -> Result<Result<(), String>, JournalError> {
        let found: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT hash FROM audit WHERE seq = ?1", [seq], |row| {
                row.get(0)
            })
            .optional()?;
        Ok(match found {
            None => Err(format!(
                "entry {seq}, which the anchor names, is not in the journal: entries were removed"
            )),
            Some(found) if !audit::hex(&found).eq_ignore_ascii_case(hash) => Err(format!(
                "entry {seq} does not have the hash the anchor holds: the trail was rewritten"
            )),
            Some(_) => Ok(()),
        })
    }

    /// Audit entries at or after `since` (RFC 3339 UTC), in order.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn audit_entries(&self, since: Option<&str>) -> Result<Vec<AuditEntry>, JournalError> {
        audit::entries(&self.conn, since)
    }

    /// How many scans are recorded (for tests and status).
    ///
    /// # Errors
    /// SQLite failed.
    pub fn scan_ids(&self) -> Result<Vec<i64>, JournalError> {
        let mut stmt = self.conn.prepare("SELECT id FROM scans ORDER BY id")?;
        let ids = stmt.query_map([], |row| row.get(0))?;
        Ok(ids.collect::<Result<_, _>>()?)
    }

    /// The latest `limit` scans, newest first.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn recent_scans(&self, limit: usize) -> Result<Vec<ScanRow>, JournalError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, at, step, source, verdict, reason, message, coi, din, bag, order_id, bags FROM scans ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |row| {
            Ok(ScanRow {
                id: row.get(0)?,
                at: row.get(1)?,
                step: row.get(2)?,
                source: row.get(3)?,
                verdict: row.get(4)?,
                reason: row.get(5)?,
                message: row.get(6)?,
                coi: row.get(7)?,
                din: row.get(8)?,
                bag: row.get(9)?,
                order_id: row.get(10)?,
                bags: row.get(11)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Print jobs by state, as (state, count).
    ///
    /// # Errors
    /// SQLite failed.
    pub fn jobs_by_state(&self) -> Result<Vec<(String, i64)>, JournalError> {
        let mut stmt = self
            .conn
            .prepare("SELECT state, COUNT(*) FROM print_jobs GROUP BY state ORDER BY state")?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Events waiting for delivery, oldest first.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn pending_event_ids(&self) -> Result<Vec<String>, JournalError> {
        let mut stmt = self
            .conn
            .prepare("SELECT event_id FROM outbox WHERE state = 'pending' ORDER BY id")?;
        let ids = stmt.query_map([], |row| row.get(0))?;
        Ok(ids.collect::<Result<_, _>>()?)
    }

    /// The raw connection, for tests that tamper with the file as an attacker would.
    #[doc(hidden)]
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

impl Journal {
    /// Caches checked orders (their records as received), replacing older copies, with an audit
    /// entry for the sync, where the next sync resumes (`as_of`) and a new cache revision, all in
    /// one transaction. An order whose DIN another cached order already has is refused; the
    /// refusals are returned (field named, no values).
    ///
    /// # Errors
    /// SQLite failed; nothing of this sync was stored.
    pub fn store_orders(
        &mut self,
        checked: &crate::order_sync::CheckedOrders,
        source: &str,
    ) -> Result<Vec<String>, JournalError> {
        let now = utc_text(jiff::Timestamp::now());
        let tx = self.write()?;
        let mut refused = Vec::new();
        let mut bound = Vec::new();
        for (order, record) in &checked.orders {
            let coi = order.coi.as_str();
            let din = order.collection.din.as_str();
            let holder: Option<String> = rusqlite::OptionalExtension::optional(tx.query_row(
                "SELECT coi FROM orders WHERE din = ?1",
                [din],
                |row| row.get(0),
            ))?;
            if holder.is_some_and(|h| h != coi) {
                refused.push(format!(
                    "order {}: collection.din: already used by another order",
                    order.order_id
                ));
                continue;
            }
            // The order as cached, by digest, in this sync's audit entry when it is new or
            // changed: an order edited in the cache (a name, a status) is found by `verify`.
            let record_text = record.to_string();
            let digest = audit::order_digest(
                coi,
                din,
                &order.order_id,
                order.status.as_str(),
                &record_text,
            );
            let before: Option<String> = rusqlite::OptionalExtension::optional(tx.query_row(
                "SELECT din, order_id, status, record FROM orders WHERE coi = ?1",
                [coi],
                |row| {
                    Ok(audit::order_digest(
                        coi,
                        &row.get::<_, String>(0)?,
                        &row.get::<_, String>(1)?,
                        &row.get::<_, String>(2)?,
                        &row.get::<_, String>(3)?,
                    ))
                },
            ))?;
            if before.as_deref() != Some(digest.as_str()) {
                bound.push(serde_json::json!([coi, digest]));
            }
            // A hold is lifted by a sync's valid version only: one order asked for by itself
            // (before a label or a receipt) may lag behind what the sync refused.
            let held = if checked.one_order { "held" } else { "NULL" };
            tx.execute(
                &format!(
                    "INSERT INTO orders (coi, din, order_id, status, record, synced_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT(coi) DO UPDATE SET din = excluded.din, order_id = excluded.order_id, status = excluded.status,
                       record = excluded.record, synced_at = excluded.synced_at, held = {held}"
                ),
                params![coi, din, order.order_id, order.status.as_str(), record_text, now],
            )?;
        }
        let stored = checked.orders.len() - refused.len();
        let mut held = 0;
        for (coi, reason) in &checked.held {
            held += tx.execute(
                "UPDATE orders SET held = ?2 WHERE coi = ?1",
                params![coi, reason],
            )?;
        }
        // A complete answer names every order this site may act on: the others are dropped
        // from the cache (their scans are then `unknown_coi`), but never one just held.
        let mut dropped = 0;
        if checked.complete {
            let keep: std::collections::HashSet<&str> = checked
                .orders
                .iter()
                .map(|(order, _)| order.coi.as_str())
                .chain(checked.held.iter().map(|(coi, _)| coi.as_str()))
                .collect();
            let cached: Vec<String> = {
                let mut stmt = tx.prepare("SELECT coi FROM orders")?;
                let rows = stmt.query_map([], |row| row.get(0))?;
                rows.collect::<Result<_, _>>()?
            };
            for coi in cached.iter().filter(|coi| !keep.contains(coi.as_str())) {
                dropped += tx.execute("DELETE FROM orders WHERE coi = ?1", [coi])?;
                bound.push(serde_json::json!([coi, null]));
            }
        }
        let refused_total = refused.len() + checked.refused.len();
        // A sync that brought nothing leaves no audit entry (a daemon syncs every minute).
        if stored > 0 || refused_total > 0 || dropped > 0 {
            let details = serde_json::json!({
                "source": source, "orders": stored, "refused": refused_total, "dropped": dropped,
                // [COI, digest] of each order new or changed, [COI, null] of each dropped.
                "bound": bound,
            });
            audit::append(&tx, &now, "orders_synced", "", &details)?;
        }
        if let Some(as_of) = &checked.as_of {
            // Two syncs at once (serve's refresh and `orders sync`): the resume point never moves
            // back to an earlier time than one already stored.
            let stored: Option<String> = rusqlite::OptionalExtension::optional(tx.query_row(
                "SELECT value FROM sync_state WHERE key = ?1",
                [crate::order_sync::RESUME_KEY],
                |row| row.get(0),
            ))?;
            let earlier = match (
                stored
                    .as_deref()
                    .and_then(|t| t.parse::<jiff::Timestamp>().ok()),
                as_of.parse::<jiff::Timestamp>().ok(),
            ) {
                (Some(stored), Some(new)) => new < stored,
                _ => false,
            };
            if !earlier {
                set_state(&tx, crate::order_sync::RESUME_KEY, as_of)?;
            }
        }
        if !checked.one_order {
            set_state(&tx, SYNCED_AT_KEY, &now)?;
        }
        if stored > 0 || held > 0 || dropped > 0 {
            // A new revision tells every process holding the orders in memory to reload them.
            set_state(&tx, ORDERS_REVISION_KEY, &uuid::Uuid::now_v7().to_string())?;
        }
        tx.commit()?;
        Ok(refused)
    }

    /// When order `coi` was last stored from its source (by a sync, or asked for by itself).
    ///
    /// # Errors
    /// SQLite failed.
    pub fn order_synced_at(&self, coi: &str) -> Result<Option<String>, JournalError> {
        Ok(rusqlite::OptionalExtension::optional(self.conn.query_row(
            "SELECT synced_at FROM orders WHERE coi = ?1",
            [coi],
            |row| row.get(0),
        ))?)
    }

    /// Records that a sync succeeded now and found nothing new: the cached orders are current
    /// (`[orders] max_age_secs` counts from here).
    ///
    /// # Errors
    /// SQLite failed.
    pub fn mark_orders_synced(&mut self) -> Result<(), JournalError> {
        self.set_sync_state(SYNCED_AT_KEY, &utc_text(jiff::Timestamp::now()))
    }

    /// The order cache's revision: it changes whenever a sync stores an order, in this process
    /// or another, so a copy held in memory is known to be current.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn orders_revision(&self) -> Result<Option<String>, JournalError> {
        self.sync_state(ORDERS_REVISION_KEY)
    }

    /// When orders were last synced (from [`utc_text`]), if ever.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn orders_synced_at(&self) -> Result<Option<String>, JournalError> {
        self.sync_state(SYNCED_AT_KEY)
    }

    /// Whether bag `bag` of `coi` was received (matched at receipt) at `site_id`: one lookup in
    /// the receipts index, whatever the number of past receipts.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn is_received(&self, site_id: &str, coi: &str, bag: u8) -> Result<bool, JournalError> {
        Ok(self
            .conn
            .prepare_cached(RECEIVED)?
            .query_row(params![site_id, coi, bag], |row| row.get(0))?)
    }

    /// The bags of `coi` received at `site_id`, in order (the `scans_received` index).
    ///
    /// # Errors
    /// SQLite failed.
    pub fn bags_received(&self, site_id: &str, coi: &str) -> Result<Vec<u8>, JournalError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT bag FROM scans WHERE site_id = ?1 AND coi = ?2 AND bag IS NOT NULL AND verdict = 'match' AND step = 'receipt' ORDER BY bag",
        )?;
        let bags = stmt.query_map(params![site_id, coi], |row| row.get(0))?;
        Ok(bags.collect::<Result<_, _>>()?)
    }

    /// The cached orders as an order book; a cached record that no longer passes the checks is
    /// left out and reported.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn order_book(
        &self,
    ) -> Result<
        (
            crate::orders::OrderBook,
            Vec<crate::orders::record::OrderError>,
        ),
        JournalError,
    > {
        let mut stmt = self
            .conn
            .prepare("SELECT record, coi, held FROM orders ORDER BY coi")?;
        let rows: Vec<(String, String, Option<String>)> = stmt
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let mut orders = Vec::with_capacity(rows.len());
        let mut refused = Vec::new();
        let mut held = Vec::new();
        for (position, (text, coi, hold)) in rows.iter().enumerate() {
            if let (Some(reason), Ok(coi)) = (hold, CoiId::parse(coi)) {
                held.push((coi, reason.clone()));
            }
            let value: serde_json::Value =
                serde_json::from_str(text).unwrap_or(serde_json::Value::Null);
            match crate::orders::record::parse_order(&value, position) {
                Ok(order) => orders.push(order),
                Err(err) => refused.push(err),
            }
        }
        let (mut book, duplicates) = crate::orders::OrderBook::new(orders);
        for (coi, reason) in held {
            book.hold(coi, reason);
        }
        refused.extend(duplicates);
        Ok((book, refused))
    }

    /// A value remembered between runs (e.g. where order sync left off).
    ///
    /// # Errors
    /// SQLite failed.
    pub fn sync_state(&self, key: &str) -> Result<Option<String>, JournalError> {
        Ok(rusqlite::OptionalExtension::optional(
            self.conn
                .prepare_cached("SELECT value FROM sync_state WHERE key = ?1")?
                .query_row([key], |row| row.get(0)),
        )?)
    }

    /// # Errors
    /// SQLite failed.
    pub fn set_sync_state(&mut self, key: &str, value: &str) -> Result<(), JournalError> {
        let tx = self.write()?;
        set_state(&tx, key, value)?;
        tx.commit()?;
        Ok(())
    }
}

/// Where the order cache's revision is kept.
const ORDERS_REVISION_KEY: &str = "orders.revision";
/// When orders were last synced.
const SYNCED_AT_KEY: &str = "orders.synced_at";

fn set_state(tx: &rusqlite::Transaction<'_>, key: &str, value: &str) -> Result<(), JournalError> {
    tx.execute(
        "INSERT INTO sync_state (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

fn insert_scan(
    tx: &Writer<'_>,
    scan: &ScanRecord<'_>,
    events: &[NewEvent],
) -> Result<i64, JournalError> {
    let verdict = scan.verdict;
    let outcome = verdict.outcome.as_str();
    tx.prepare_cached(
        "INSERT INTO scans (at, source, raw, parse_error, verdict, reason, message, coi, din, bag, order_id, site_id, step, operator, bags)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?
    .execute(params![
            scan.at,
            scan.source,
            scan.raw,
            scan.parse_error,
            outcome,
            verdict.reason().map(|r| r.code()),
            verdict.message,
            verdict.coi.map(|c| c.as_str().to_owned()),
            verdict.din.map(|d| d.as_str().to_owned()),
            verdict.bag,
            verdict.order_id,
            scan.site_id,
            scan.step,
            scan.operator,
            verdict.bags,
        ])?;
    let id = tx.last_insert_rowid();
    let details = serde_json::json!({
        "scan_id": id,
        // What was read, by digest (it may hold patient data): an edited read is found.
        "raw_sha256": audit::hex(&<sha2::Sha256 as sha2::Digest>::digest(scan.raw)),
        "source": scan.source,
        "verdict": outcome,
        "reason": verdict.reason().map(|r| r.code()),
        "din": verdict.din.map(|d| d.as_str().to_owned()),
        "bag": verdict.bag,
        "site_id": scan.site_id,
        "step": scan.step,
        "operator": scan.operator,
        // What the screen said and why a read failed, by digest (they may quote the read), and
        // the bags a sample scan counted.
        "message_sha256": audit::text_digest(Some(&verdict.message)),
        "parse_error_sha256": audit::text_digest(scan.parse_error),
        "bags": verdict.bags,
    });
    let subject = verdict
        .coi
        .map(|c| c.as_str().to_owned())
        .unwrap_or_default();
    audit::append(
        tx,
        scan.at,
        "scan",
        &subject,
        &audit::with_events(&details, events),
    )?;
    for event in events {
        insert_event(tx, event, scan.at)?;
    }
    Ok(id)
}

fn insert_event(
    tx: &rusqlite::Transaction<'_>,
    event: &NewEvent,
    at: &str,
) -> Result<(), JournalError> {
    // The audit trail's head as this event is recorded (its record's entry included): central
    // keeps it, so a trail rewritten afterwards no longer matches what central holds
    // (`audit verify --anchor`).
    let head: Option<(i64, Vec<u8>)> = tx
        .prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1")?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let mut payload = event.payload.clone();
    if let (Some((seq, hash)), Some(fields)) = (head, payload.as_object_mut()) {
        fields.insert(
            "audit".to_owned(),
            serde_json::json!({"seq": seq, "hash": audit::hex(&hash)}),
        );
    }
    tx.prepare_cached(
        "INSERT INTO outbox (event_id, coi, kind, payload, next_attempt_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?
    .execute(params![event.event_id, event.coi, event.kind, payload.to_string(), at])?;
    Ok(())
}

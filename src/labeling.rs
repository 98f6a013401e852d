//! Printing a bag's COI label as the chain of identity requires (ARCHITECTURE.md, flow 1): the
//! order comes from the journal's cache and must allow a bag label at this site; the label is
//! made and proven; the job is recorded before a byte is sent; the printer's own verdict is
//! recorded with its audit entry and custody event in one transaction. A second label for a bag
//! that may already have one is printed only as a deliberate reprint. Then the verify step
//! (flow 2): the scan of the new label must match its job, or the job is flagged.

use serde_json::json;
use sha2::Digest as _;

pub use crate::custody::Station;
use crate::custody::{EventKind, NewEvent, custody_event};
use crate::isbt128::coi::CoiId;
use crate::journal::print_jobs::{BagLabelConflict, PrintJobRecord};
use crate::journal::{Journal, JournalError, ScanRecord, audit, utc_text};
use crate::label::data::LabelData;
use crate::label::template::{LabelKind, Template};
use crate::orders::OrderBook;
use crate::orders::record::{Order, OrderStatus};
use crate::printer::job::{Job, JobOutcome, JobPhase};
use crate::receiving::{RecordedScan, earlier_half, judge};
use crate::reconcile::{Context, Expected, Outcome, Reason, Step, Verdict};
use crate::scanner::Scan;

/// The label asked for: bag `bag` of the order with `coi`, from `template`.
#[derive(Debug, Clone, Copy)]
pub struct BagLabel<'a> {
    pub coi: &'a CoiId,
    pub bag: u8,
    pub template: &'a Template,
    pub operator: Option<&'a str>,
    /// A label for a bag that may already have one (damaged, smudged): printed only when asked
    /// for as a reprint, and reported as one (`label_reprinted`).
    pub reprint: bool,
    /// Why a reprint is printed (required for one, audited and sent with the event).
    pub reason: Option<&'a str>,
    /// Where the order was checked just before (`central`, `cache`, `file`), for the event.
    pub order_from: &'a str,
    /// The collection time printed and encoded (DS 007), to the minute: when absent, the one
    /// the collection's first label carries, else now.
    pub collected_at: Option<jiff::Timestamp>,
}

/// Why no label was sent (nothing was sent to the printer in any of these cases but
/// [`Refusal::Unrecorded`]).
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("no cached order has COI {0} (run coi-agent orders sync)")]
    UnknownCoi(String),
    #[error(
        "order {order_id}: its bag labels are printed at its collection site {site}, this workstation is at {here}"
    )]
    NotCollectionSite {
        order_id: String,
        site: String,
        here: String,
    },
    #[error(
        "order {order_id}: its latest update from the central service was refused ({reason}); no label until a valid version arrives"
    )]
    Held { order_id: String, reason: String },
    #[error("order {order_id} expired at {expired}: no label for an expired collection")]
    Expired {
        order_id: String,
        expired: jiff::Timestamp,
    },
    #[error(
        "order {order_id} is {status}: bag labels are printed only before the collection ships"
    )]
    Status {
        order_id: String,
        status: &'static str,
    },
    #[error(
        "bag {bag} of order {order_id} may already carry a label (job {job_id}, {state}): print another only as a reprint"
    )]
    AlreadyPrinted {
        order_id: String,
        bag: u8,
        job_id: String,
        state: String,
    },
    #[error(
        "order {order_id}: its labels carry the collection time {recorded}, not {asked}: every bag of one collection carries the same"
    )]
    CollectionTime {
        order_id: String,
        recorded: String,
        asked: jiff::Timestamp,
    },
    #[error("order {order_id} has no earlier label for bag {bag} to reprint")]
    NothingToReprint { order_id: String, bag: u8 },
    #[error(
        "a reprint needs its reason (damaged, smudged, ...): at most {MAX_REASON} characters, no control characters"
    )]
    NoReason,
    #[error(
        "order {order_id}: the orders here were last brought up to date from the central service {since}, too long to trust for a label (check the network; print when orders sync again)"
    )]
    OrdersStale { order_id: String, since: String },
    #[error(
        "bag {bag} of order {order_id} already has its label from workstation {workstation} (job {holder}), as the central service records it: a second label is a reprint at that workstation, or void that label there first"
    )]
    HeldElsewhere {
        order_id: String,
        bag: u8,
        holder: String,
        workstation: String,
    },
    #[error(
        "order {order_id}: the central service did not grant bag {bag}'s label ({problem}); no label until it does"
    )]
    CentralOffline {
        order_id: String,
        bag: u8,
        problem: String,
    },
    #[error("order {order_id}: the collection time {asked} is {why}")]
    CollectionTimeOutOfRange {
        order_id: String,
        asked: jiff::Timestamp,
        why: &'static str,
    },
    /// The label could not be made or proven (the message names fields, never values).
    #[error("label not made: {0}")]
    Label(String),
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
    /// The job was sent, but its outcome could not be recorded: the journal still shows it
    /// `queued`, and a label may have printed.
    #[error(
        "job {job_id} ended {state}, but the journal could not record it ({problem}): check the printer before printing again"
    )]
    Unrecorded {
        job_id: String,
        state: &'static str,
        problem: Box<JournalError>,
    },
}

/// What was printed.
#[derive(Debug, Clone)]
pub struct Printed {
    pub job_id: String,
    pub outcome: JobOutcome,
    /// The custody event written with the outcome: `label_printed`, `label_reprinted`,
    /// `print_failed`, or none while the printer has not said (`unconfirmed`).
    pub event: Option<EventKind>,
}

/// Whether a bag label for `order` may be printed at `site_id` at `now`: only at the order's
/// collection site, only while the collection is scheduled or collected (not after it shipped,
/// nor for a cancelled or held order), and never once the order has expired (the verify step
/// would refuse the label anyway).
///
/// # Errors
/// The refusal, naming the order and the rule.
pub fn may_print(order: &Order, site_id: &str, now: jiff::Timestamp) -> Result<(), Refusal> {
    let site = &order.collection.facility.site_id;
    if site != site_id {
        return Err(Refusal::NotCollectionSite {
            order_id: order.order_id.clone(),
            site: site.clone(),
            here: site_id.to_owned(),
        });
    }
    if !matches!(
        order.status,
        OrderStatus::Scheduled | OrderStatus::Collected
    ) {
        return Err(Refusal::Status {
            order_id: order.order_id.clone(),
            status: order.status.as_str(),
        });
    }
    match order.expires_at {
        Some(expired) if expired <= now => Err(Refusal::Expired {
            order_id: order.order_id.clone(),
            expired,
        }),
        _ => Ok(()),
    }
}

/// The longest reason a reprint or a void may give.
pub const MAX_REASON: usize = 200;

/// A person's reason, if it is one: not blank, at most [`MAX_REASON`] characters, no control
/// characters.
pub fn reason(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|t| {
        !t.is_empty() && t.chars().count() <= MAX_REASON && !t.chars().any(char::is_control)
    })
}

/// How far in the future a collection time may be (clocks differ; a label is printed during
/// or after the collection, never before).
const COLLECTION_FUTURE_SLACK: jiff::SignedDuration = jiff::SignedDuration::from_mins(10);

/// Whether `at` can be when `order`'s collection happened: not more than 10 minutes from now,
/// not after the order's expiry, not before the day before its scheduled day (in the
/// collection site's zone).
///
/// # Errors
/// [`Refusal::CollectionTimeOutOfRange`] with the rule.
pub fn collection_time_allowed(
    order: &Order,
    at: jiff::Timestamp,
    now: jiff::Timestamp,
) -> Result<(), Refusal> {
    let refuse = |why| Refusal::CollectionTimeOutOfRange {
        order_id: order.order_id.clone(),
        asked: at,
        why,
    };
    if now
        .checked_add(COLLECTION_FUTURE_SLACK)
        .is_ok_and(|latest| at > latest)
    {
        return Err(refuse("in the future"));
    }
    if order.expires_at.is_some_and(|expiry| at > expiry) {
        return Err(refuse("after the order's expiry"));
    }
    // The start of the day before the scheduled day, in the collection site's zone.
    let earliest = jiff::tz::TimeZone::get(&order.collection.time_zone)
        .ok()
        .and_then(|zone| {
            let day = order.collection.scheduled_for.to_zoned(zone.clone()).date();
            Some(day.yesterday().ok()?.to_zoned(zone).ok()?.timestamp())
        })
        .ok_or_else(|| refuse("not checkable: the collection site's time zone is unknown"))?;
    if at < earliest {
        return Err(refuse("before the day before the scheduled collection"));
    }
    Ok(())
}

/// A bag label made, proven and recorded `queued`, ready for its printer: the step between
/// checking-and-recording ([`prepare_bag_label`]) and recording the printer's verdict
/// ([`finish_bag_label`]). Nothing of it has been sent yet.
#[derive(Debug, Clone)]
pub struct PreparedLabel {
    /// What the printer is given (its id is the journal's job id).
    pub job: Job,
    pub order: Order,
    pub bag: u8,
    pub template: String,
    pub template_version: u32,
    /// A bag's label or a sample tube's.
    pub label_kind: LabelKind,
    /// A reprint's reason.
    pub reason: Option<String>,
    /// Where the order was checked just before (`central`, `cache`, `file`).
    pub order_from: String,
    /// Who decided this bag may take this label site-wide: `central` (granted), `offline`
    /// (central could not be asked; `[central] offline = "local"`), or `none` (no central
    /// service, or a sample label).
    pub arbitration: &'static str,
    /// The collection time the label carries.
    pub collected_at: jiff::Timestamp,
    /// The configured printer's name.
    pub printer: String,
    pub dpi: u32,
    pub reprint: bool,
    pub operator: Option<String>,
}

/// Checks that bag `request.bag`'s label may be printed here now, makes and proves it at `dpi`,
/// and records the job `queued` (with the template version and the SHA-256 of the exact bytes)
/// in one write transaction with the one-label-per-bag and collection-time checks. Sync: it
/// runs where the journal is owned, never across an await.
///
/// # Errors
/// A [`Refusal`]; nothing was sent and (but for a journal failure) nothing recorded.
pub fn prepare_bag_label(
    journal: &mut Journal,
    book: &OrderBook,
    station: Station<'_>,
    printer: &str,
    dpi: u32,
    request: BagLabel<'_>,
) -> Result<PreparedLabel, Refusal> {
    let order = book
        .by_coi(request.coi)
        .ok_or_else(|| Refusal::UnknownCoi(request.coi.as_str().to_owned()))?;
    if let Some(reason) = book.held(request.coi) {
        return Err(Refusal::Held {
            order_id: order.order_id.clone(),
            reason: reason.to_owned(),
        });
    }
    let now = jiff::Timestamp::now();
    may_print(order, station.site_id, now)?;
    // The cache's age, or this order's when it was asked for by itself since.
    let freshness = crate::receiving::freshness(journal, station)?.map(|mut f| {
        let own = journal
            .order_synced_at(order.coi.as_str())
            .ok()
            .flatten()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok());
        f.synced_at = f.synced_at.max(own);
        f
    });
    if let Some(age) = freshness.and_then(|f| f.too_old(now)) {
        return Err(Refusal::OrdersStale {
            order_id: order.order_id.clone(),
            since: match age {
                Some(age) => format!("{} minutes ago", age.as_secs() / 60),
                None => "never".to_owned(),
            },
        });
    }
    let label_kind = request.template.label_kind;
    if label_kind == LabelKind::Sample && request.reprint {
        return Err(Refusal::Label(format!(
            "order {}: a sample tube label is not reprinted; print another sample label",
            order.order_id
        )));
    }
    let coi = order.coi.as_str();
    // Every label of one collection carries one collection time (DS 007): the first label's.
    let asked = request.collected_at.map(to_minute);
    let collected_at = match (journal.collection_time(coi)?, asked) {
        (Some(recorded), Some(asked)) if recorded != asked.to_string() => {
            return Err(Refusal::CollectionTime {
                order_id: order.order_id.clone(),
                recorded,
                asked,
            });
        }
        (Some(recorded), _) => recorded.parse().map_err(|_| {
            Refusal::Label(format!(
                "order {}: the journal's collection time does not read as a time",
                order.order_id
            ))
        })?,
        (None, Some(asked)) => asked,
        (None, None) => to_minute(now),
    };
    collection_time_allowed(order, collected_at, now)?;
    let reason = reason(request.reason);
    match (request.reprint, reason, request.reason) {
        (true, None, _) => return Err(Refusal::NoReason),
        (false, _, Some(_)) => {
            return Err(Refusal::Label(
                "a reason is given for a reprint (--reprint) only".to_owned(),
            ));
        }
        _ => {}
    }
    let data = LabelData::new(order, request.bag, collected_at)
        .map_err(|e| Refusal::Label(format!("order {}: {e}", order.order_id)))?;
    let label = crate::label::render(request.template, &data, dpi)
        .map_err(|e| Refusal::Label(e.for_operator()))?;

    let job_id = uuid::Uuid::now_v7().to_string();
    let zpl = label.zpl.into_bytes();
    let version = request.template.version.to_string();
    let collected_text = collected_at.to_string();
    let recorded = journal.record_bag_label_job(
        coi,
        request.bag,
        &PrintJobRecord {
            job_id: &job_id,
            coi: Some(coi),
            bag: Some(request.bag),
            template: &request.template.name,
            template_version: &version,
            printer,
            zpl_sha256: &audit::hex(&sha2::Sha256::digest(&zpl)),
            operator: request.operator,
            at: &utc_text(now),
            state: JobPhase::Queued.as_str(),
            reprint: request.reprint,
            collected_at: Some(&collected_text),
            label_kind: label_kind.as_str(),
            reason,
            max_per_bag: request.template.max_per_bag,
        },
    )?;
    match recorded {
        Ok(()) => {}
        Err(BagLabelConflict::AlreadyLabelled { job_id, state }) => {
            return Err(Refusal::AlreadyPrinted {
                order_id: order.order_id.clone(),
                bag: request.bag,
                job_id,
                state,
            });
        }
        Err(BagLabelConflict::NothingToReprint) => {
            return Err(Refusal::NothingToReprint {
                order_id: order.order_id.clone(),
                bag: request.bag,
            });
        }
        Err(BagLabelConflict::TooManySamples { max }) => {
            return Err(Refusal::Label(format!(
                "order {}: bag {} already has {max} sample tube labels, as many as the template allows (void one that was not used)",
                order.order_id, request.bag
            )));
        }
        Err(BagLabelConflict::CollectionTime { recorded }) => {
            return Err(Refusal::CollectionTime {
                order_id: order.order_id.clone(),
                recorded,
                asked: collected_at,
            });
        }
    }
    Ok(PreparedLabel {
        job: Job {
            id: job_id,
            zpl,
            expires_at: None,
        },
        order: order.clone(),
        bag: request.bag,
        template: request.template.name.clone(),
        template_version: request.template.version,
        label_kind,
        reason: reason.map(str::to_owned),
        order_from: request.order_from.to_owned(),
        arbitration: "none",
        collected_at,
        printer: printer.to_owned(),
        dpi,
        reprint: request.reprint,
        operator: request.operator.map(str::to_owned),
    })
}

/// Records the printer's verdict on a prepared label with its custody event, in one
/// transaction: `label_printed` or `label_reprinted` when confirmed, `print_failed` when
/// refused, none while `unconfirmed`.
///
/// # Errors
/// [`Refusal::Unrecorded`]: the job was sent but its outcome could not be recorded.
pub fn finish_bag_label(
    journal: &mut Journal,
    station: Station<'_>,
    prepared: &PreparedLabel,
    outcome: JobOutcome,
) -> Result<Printed, Refusal> {
    let job_id = &prepared.job.id;
    let event = match outcome.phase {
        JobPhase::Confirmed if prepared.reprint => Some(EventKind::LabelReprinted),
        JobPhase::Confirmed => Some(EventKind::LabelPrinted),
        JobPhase::Failed => Some(EventKind::PrintFailed),
        _ => None,
    };
    let fault = outcome.fault.map(|f| f.as_str());
    let at = jiff::Timestamp::now();
    let events: Vec<NewEvent> = event
        .map(|kind| {
            let details = json!({
                "job_id": job_id,
                "template": prepared.template,
                "template_version": prepared.template_version,
                "label_kind": prepared.label_kind.as_str(),
                "collected_at": prepared.collected_at.to_string(),
                "printer": prepared.printer,
                "fault": fault,
                "reason": prepared.reason,
                "order_from": prepared.order_from,
                "arbitration": prepared.arbitration,
            });
            custody_event(
                kind,
                &prepared.order,
                Some(prepared.bag),
                station,
                prepared.operator.as_deref(),
                at,
                details,
            )
        })
        .into_iter()
        .collect();
    journal
        .record_job_state(
            job_id,
            outcome.phase.as_str(),
            fault,
            &utc_text(at),
            &events,
        )
        .map_err(|problem| Refusal::Unrecorded {
            job_id: job_id.clone(),
            state: outcome.phase.as_str(),
            problem: Box::new(problem),
        })?;
    Ok(Printed {
        job_id: job_id.clone(),
        outcome,
        event,
    })
}

/// Why a scan could not be checked against a job (nothing was recorded).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("no print job {0} in the journal")]
    UnknownJob(String),
    #[error("print job {0} failed before anything was sent: there is no label of it to verify")]
    NothingPrinted(String),
    #[error("print job {0} was voided: its label must not be used (print a new one)")]
    Voided(String),
    #[error(
        "print job {job_id} was followed by job {latest} for the same bag: verify the label of job {latest}"
    )]
    Superseded { job_id: String, latest: String },
    #[error(
        "the order of print job {0} is no longer in the journal's cache (run coi-agent orders sync)"
    )]
    OrderGone(String),
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
}

/// What the verify step found.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The scan as recorded, with its verdict.
    pub scan: RecordedScan,
    /// The job the scan was checked against (none when no label waited for it).
    pub job_id: Option<String>,
    /// The job's verification now: `verified`, or `flagged` — by this scan, or by an earlier
    /// one that did not match (a flag is never cleared by a later match).
    pub verification: Option<String>,
    /// The job had not been confirmed by the printer; the matching scan of its label confirmed
    /// it (and its `label_printed` or `label_reprinted` went to the outbox with the scan).
    pub confirmed_by_scan: bool,
}

impl Verified {
    /// The scan matched and the job is not flagged.
    pub fn is_verified(&self) -> bool {
        matches!(self.scan.verdict.outcome, Outcome::Match | Outcome::Sample)
            && self.verification.as_deref() == Some("verified")
    }
}

/// The verify step (ARCHITECTURE.md, flow 2): the scan of a label just printed must carry the
/// job's COI identifier and DIN — both, in one read (the Data Matrix) or in two paired reads
/// (docs/decisions.md, "Two identifiers") — and the job's bag (or, for a sample tube's label,
/// the sample flags), for an order this site may label. The scan and its verdict are recorded,
/// the job marked `verified` or `flagged`, and the custody event written with them:
/// `label_verified`, or `scan_mismatch` naming the reason. Only the latest job for a bag can be
/// verified. A job the printer never confirmed (`unconfirmed`, or cut off while `queued`)
/// whose label scans as a match is confirmed by that scan, with its `label_printed` (or
/// `label_reprinted`) event, since the label is in hand.
///
/// # Errors
/// See [`VerifyError`]; a scan that does not match is a verdict, not an error.
pub fn verify_label(
    journal: &mut Journal,
    book: &OrderBook,
    job_id: &str,
    scan: &Scan,
    station: Station<'_>,
    operator: Option<&str>,
) -> Result<Verified, VerifyError> {
    let earlier = earlier_half(journal, scan, station, Step::Verify, operator)?;
    verify_job(
        journal,
        book,
        job_id,
        scan,
        earlier.as_deref(),
        station,
        operator,
    )
}

fn verify_job(
    journal: &mut Journal,
    book: &OrderBook,
    job_id: &str,
    scan: &Scan,
    earlier: Option<&[u8]>,
    station: Station<'_>,
    operator: Option<&str>,
) -> Result<Verified, VerifyError> {
    let now = scan.at;
    let job = journal
        .print_job(job_id)?
        .ok_or_else(|| VerifyError::UnknownJob(job_id.to_owned()))?;
    if job.state == "failed" {
        return Err(VerifyError::NothingPrinted(job_id.to_owned()));
    }
    if job.state == "voided" {
        return Err(VerifyError::Voided(job_id.to_owned()));
    }
    let (order, bag) =
        job_order(&job, book).ok_or_else(|| VerifyError::OrderGone(job_id.to_owned()))?;
    let sample = job.label_kind == LabelKind::Sample.as_str();
    if !sample
        && let Some((latest, _)) = journal.bag_label_jobs(order.coi.as_str(), bag)?.pop()
        && latest != job_id
    {
        return Err(VerifyError::Superseded {
            job_id: job_id.to_owned(),
            latest,
        });
    }
    let received = std::collections::HashSet::new();
    let ctx = Context {
        site_id: station.site_id,
        step: Step::Verify,
        role: None,
        now,
        expected: Some(Expected {
            coi: order.coi,
            din: Some(order.collection.din),
            bag: (!sample).then_some(bag),
            sample,
            collected_at: job.collected_at.as_deref().and_then(|t| t.parse().ok()),
        }),
        received: &received,
        freshness: None,
    };
    let verdict = judge(scan, earlier, book, &ctx);
    let parse_error = scan.parse().err().map(|e| e.to_string());
    let record = ScanRecord {
        at: &utc_text(now),
        source: &scan.source,
        raw: &scan.raw,
        parse_error: parse_error.as_deref(),
        verdict: &verdict,
        site_id: station.site_id,
        step: Step::Verify.as_str(),
        operator,
    };
    // A scan that did not read (a misread, a smudge, another barcode) says nothing about the
    // label: shown as "scan again" and recorded, but the job is neither flagged nor verified
    // (issue #13). Nor does half a pair: the other identifier completes it (issue #17). Only a
    // readable scan of another COI, DIN or bag flags it.
    if matches!(
        verdict.outcome,
        Outcome::Mismatch(Reason::Unreadable | Reason::NotIsbt128 | Reason::NoIdentifier)
            | Outcome::Incomplete(_)
    ) {
        let id = journal.record_scan(&record, &[])?;
        return Ok(Verified {
            scan: RecordedScan::new(id, scan, Step::Verify, verdict),
            job_id: Some(job_id.to_owned()),
            verification: job.verification.clone(),
            confirmed_by_scan: false,
        });
    }
    let event = |kind: EventKind, details| {
        custody_event(kind, order, Some(bag), station, operator, now, details)
    };
    let mut events = Vec::new();
    // A flagged job stays flagged: a later match is no verification (its label is in doubt),
    // and central hears scan_mismatch, never label_verified (issue #13).
    let flagged = job.verification.as_deref() == Some("flagged");
    // The label in hand is the job's: a bag's label matched, or a sample tube's was a sample.
    let right = matches!(verdict.outcome, Outcome::Match | Outcome::Sample);
    let confirm = right && job.state != "confirmed" && !flagged;
    if confirm {
        let kind = if job.reprint {
            EventKind::LabelReprinted
        } else {
            EventKind::LabelPrinted
        };
        events.push(event(
            kind,
            json!({"job_id": job_id, "confirmed_by": "scan", "label_kind": job.label_kind}),
        ));
    }
    events.push(match verdict.reason() {
        None if flagged => event(
            EventKind::ScanMismatch,
            json!({"job_id": job_id, "step": "verify", "reason": "job_flagged"}),
        ),
        None => event(
            EventKind::LabelVerified,
            json!({"job_id": job_id, "label_kind": job.label_kind}),
        ),
        Some(reason) => event(
            EventKind::ScanMismatch,
            json!({"job_id": job_id, "step": "verify", "reason": reason.code(),
                   "scanned": crate::receiving::scanned(&verdict),
                   "expected": {"din": order.collection.din.as_str(), "bag": bag,
                                "label_kind": job.label_kind}}),
        ),
    });
    let (id, verification) = journal.record_verification(job_id, &record, &events, confirm)?;
    Ok(Verified {
        scan: RecordedScan::new(id, scan, Step::Verify, verdict),
        job_id: Some(job_id.to_owned()),
        verification: Some(verification),
        confirmed_by_scan: confirm,
    })
}

/// The verify step from a scanner, with no job id typed: the scan (with its earlier half, when
/// it completes one) is matched to the latest unverified label printed here for the bag it
/// names (or, when it names no bag, the only unverified bag label of its order; or, for a
/// sample tube's label, the latest unverified sample label of its order) and judged by
/// [`verify_label`]. A scan that matches no label waiting for verification is recorded as a
/// mismatch (`not_expected`) and flags nothing; half a pair is recorded as `incomplete`.
///
/// # Errors
/// See [`VerifyError`].
pub fn verify_scan(
    journal: &mut Journal,
    book: &OrderBook,
    scan: &Scan,
    station: Station<'_>,
    operator: Option<&str>,
    on_screen: Option<&CoiId>,
) -> Result<Verified, VerifyError> {
    let earlier = earlier_half(journal, scan, station, Step::Verify, operator)?;
    let received = std::collections::HashSet::new();
    let ctx = Context {
        site_id: station.site_id,
        step: Step::Verify,
        role: None,
        now: scan.at,
        expected: None,
        received: &received,
        freshness: None,
    };
    let verdict = judge(scan, earlier.as_deref(), book, &ctx);
    // Scanned at an order's screen: a label (or half of one) of another order is not this
    // bag's, whatever it is waiting for elsewhere.
    if let (Some(screen), Some(coi)) = (on_screen, verdict.coi)
        && coi != *screen
    {
        let screen_order = book
            .by_coi(screen)
            .map_or_else(|| screen.as_str().to_owned(), |o| o.order_id.clone());
        let verdict = Verdict {
            outcome: Outcome::Mismatch(Reason::NotExpected),
            message: format!(
                "WRONG ORDER: this label is of order {}, not of order {screen_order} on the screen. Do not use it on this bag; check the bag and its labels with your supervisor.",
                verdict.order_id.as_deref().unwrap_or(coi.as_str())
            ),
            ..verdict
        };
        return record_unclaimed(journal, scan, station, operator, verdict);
    }
    let job = match (verdict.outcome, verdict.coi) {
        (Outcome::Incomplete(_), _) | (_, None) => None,
        (Outcome::Sample, Some(coi)) => journal
            .unverified_sample_jobs(coi.as_str())?
            .into_iter()
            .next(),
        (_, Some(coi)) => {
            let waiting = journal.unverified_jobs(coi.as_str())?;
            match verdict.bag {
                Some(bag) => waiting.into_iter().find(|(_, b)| *b == bag),
                // A read that names no bag (a sample tube's, a bag number the order lacks,
                // flags that are not a bag's) is not the label of the one waiting: it flags
                // nothing that was not scanned.
                None => None,
            }
            .map(|(job_id, _)| job_id)
        }
    };
    if let Some(job_id) = job {
        return verify_job(
            journal,
            book,
            &job_id,
            scan,
            earlier.as_deref(),
            station,
            operator,
        );
    }
    // A bag label checked before: a flagged one is judged again (it stays flagged, and says
    // so); a verified one is said to be done, with nothing sent.
    let mut done_job = None;
    if let (Outcome::Match, Some(coi), Some(bag)) = (verdict.outcome, verdict.coi, verdict.bag)
        && let Some((latest, _)) = journal.bag_label_jobs(coi.as_str(), bag)?.pop()
    {
        let checked = journal.print_job(&latest)?.and_then(|job| job.verification);
        match checked.as_deref() {
            Some("flagged") => {
                return verify_job(
                    journal,
                    book,
                    &latest,
                    scan,
                    earlier.as_deref(),
                    station,
                    operator,
                );
            }
            // The bag's label was verified; a scan that is not that label (another
            // collection time) is judged against it and flags it.
            Some("verified") => {
                let job = journal.print_job(&latest)?;
                let expected_time = job
                    .and_then(|job| job.collected_at)
                    .and_then(|t| t.parse::<jiff::Timestamp>().ok());
                let received = std::collections::HashSet::new();
                let ctx = Context {
                    expected: Some(Expected {
                        coi,
                        din: verdict.din,
                        bag: Some(bag),
                        sample: false,
                        collected_at: expected_time,
                    }),
                    received: &received,
                    ..ctx.clone()
                };
                if judge(scan, earlier.as_deref(), book, &ctx).is_match() {
                    done_job = Some(latest);
                } else {
                    return verify_job(
                        journal,
                        book,
                        &latest,
                        scan,
                        earlier.as_deref(),
                        station,
                        operator,
                    );
                }
            }
            _ => {}
        }
    }
    if let Some(job_id) = done_job {
        let verdict = Verdict {
            message: format!(
                "{} This label was already checked (job {job_id}): nothing more to do.",
                verdict.message
            ),
            ..verdict
        };
        let parse_error = scan.parse().err().map(|e| e.to_string());
        let id = journal.record_scan(
            &ScanRecord {
                at: &utc_text(scan.at),
                source: &scan.source,
                raw: &scan.raw,
                parse_error: parse_error.as_deref(),
                verdict: &verdict,
                site_id: station.site_id,
                step: Step::Verify.as_str(),
                operator,
            },
            &[],
        )?;
        return Ok(Verified {
            scan: RecordedScan::new(id, scan, Step::Verify, verdict),
            job_id: Some(job_id),
            verification: Some("verified".to_owned()),
            confirmed_by_scan: false,
        });
    }
    // Nothing printed here waits for this label: say so, record it, flag nothing.
    let verdict = if matches!(verdict.outcome, Outcome::Match | Outcome::Sample) {
        Verdict {
            outcome: Outcome::Mismatch(Reason::NotExpected),
            message: match verdict.order_id.as_deref() {
                Some(order_id) => format!(
                    "No label printed at this workstation for this {} of order {order_id} is waiting to be checked. Print the label here first, or check the bag with your supervisor.",
                    if verdict.outcome == Outcome::Sample {
                        "sample tube"
                    } else {
                        "bag"
                    }
                ),
                None => "No label printed at this workstation is waiting to be checked.".to_owned(),
            },
            ..verdict
        }
    } else {
        verdict
    };
    record_unclaimed(journal, scan, station, operator, verdict)
}

/// Records a verify scan that checks no job, with its verdict (nothing is flagged or sent).
fn record_unclaimed(
    journal: &mut Journal,
    scan: &Scan,
    station: Station<'_>,
    operator: Option<&str>,
    verdict: Verdict,
) -> Result<Verified, VerifyError> {
    let parse_error = scan.parse().err().map(|e| e.to_string());
    let at = utc_text(scan.at);
    let id = journal.record_scan(
        &ScanRecord {
            at: &at,
            source: &scan.source,
            raw: &scan.raw,
            parse_error: parse_error.as_deref(),
            verdict: &verdict,
            site_id: station.site_id,
            step: Step::Verify.as_str(),
            operator,
        },
        &[],
    )?;
    Ok(Verified {
        scan: RecordedScan::new(id, scan, Step::Verify, verdict),
        job_id: None,
        verification: None,
        confirmed_by_scan: false,
    })
}

/// Why a label could not be voided (nothing was recorded).
#[derive(Debug, thiserror::Error)]
pub enum VoidError {
    #[error("no print job {0} in the journal")]
    UnknownJob(String),
    #[error(
        "a void needs its reason (wrong label, damaged, ...): at most {MAX_REASON} characters, no control characters"
    )]
    NoReason,
    #[error("print job {job_id} is {state}: there is no label of it to void")]
    NotVoidable { job_id: String, state: String },
    #[error(
        "the order of print job {0} is no longer in the journal's cache (run coi-agent orders sync)"
    )]
    OrderGone(String),
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
}

/// A voided label.
#[derive(Debug, Clone)]
pub struct Voided {
    pub job_id: String,
    pub bag: u8,
    pub order_id: String,
    /// A label of the bag still not voided here (a reprint), if any: the bag still carries it.
    pub still_labelled: Option<String>,
}

/// Voids a printed label (ARCHITECTURE.md, the label lifecycle; issue #13): the person took it
/// off the bag and destroyed it. The job no longer counts as the bag's label (a new first label
/// may be printed), cannot be verified, and `label_voided` goes to central with the reason, the
/// audit entry and the job's state in one transaction.
///
/// # Errors
/// See [`VoidError`]; nothing was recorded.
pub fn void_label(
    journal: &mut Journal,
    book: &OrderBook,
    job_id: &str,
    why: Option<&str>,
    station: Station<'_>,
    operator: Option<&str>,
) -> Result<Voided, VoidError> {
    let why = reason(why).ok_or(VoidError::NoReason)?;
    let job = journal
        .print_job(job_id)?
        .ok_or_else(|| VoidError::UnknownJob(job_id.to_owned()))?;
    let (order, bag) =
        job_order(&job, book).ok_or_else(|| VoidError::OrderGone(job_id.to_owned()))?;
    let now = jiff::Timestamp::now();
    let event = custody_event(
        EventKind::LabelVoided,
        order,
        Some(bag),
        station,
        operator,
        now,
        json!({"job_id": job_id, "reason": why, "label_kind": job.label_kind, "was": job.state}),
    );
    journal
        .void_job(job_id, why, operator, &utc_text(now), &[event])?
        .map_err(|state| VoidError::NotVoidable {
            job_id: job_id.to_owned(),
            state,
        })?;
    let still_labelled = if job.label_kind == LabelKind::Bag.as_str() {
        journal
            .bag_label_jobs(order.coi.as_str(), bag)?
            .pop()
            .map(|(job, _)| job)
    } else {
        None
    };
    Ok(Voided {
        job_id: job_id.to_owned(),
        bag,
        order_id: order.order_id.clone(),
        still_labelled,
    })
}

/// The cached order and bag a recorded job was printed for, if the order is still cached.
fn job_order<'b>(
    job: &crate::journal::print_jobs::PrintJobSummary,
    book: &'b OrderBook,
) -> Option<(&'b Order, u8)> {
    job.coi
        .as_deref()
        .and_then(|coi| CoiId::parse(coi).ok())
        .and_then(|coi| book.by_coi(&coi))
        .zip(job.bag)
}

/// `at` to the minute (a label's times have no seconds).
fn to_minute(at: jiff::Timestamp) -> jiff::Timestamp {
    let second = at.as_second();
    jiff::Timestamp::from_second(second - second.rem_euclid(60)).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(status: &str, site: &str) -> Order {
        let text = include_str!("../config/demo-orders.json");
        let json: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
        let mut record = json["orders"][0].clone();
        record["status"] = json!(status);
        record["collection"]["facility"]["site_id"] = json!(site);
        crate::orders::record::parse_order(&record, 0).expect("the demo order parses")
    }

    #[test]
    fn bag_labels_are_printed_at_the_collection_site_before_shipping_or_expiry() {
        // The demo order expires 2025-06-04T23:59:00-04:00.
        let now: jiff::Timestamp = "2025-06-02T12:14:00Z".parse().unwrap();
        let may_print = |order: &Order, site: &str| super::may_print(order, site, now);
        assert!(may_print(&order("scheduled", "site-a"), "site-a").is_ok());
        assert!(may_print(&order("collected", "site-a"), "site-a").is_ok());
        let later: jiff::Timestamp = "2025-06-05T03:59:00Z".parse().unwrap();
        let err = super::may_print(&order("collected", "site-a"), "site-a", later).unwrap_err();
        assert!(
            err.to_string()
                .contains("expired at 2025-06-05T03:59:00Z: no label for an expired collection"),
            "{err}"
        );
        let err = may_print(&order("collected", "site-a"), "site-lab-1").unwrap_err();
        assert!(
            err.to_string()
                .contains("collection site site-a, this workstation is at site-lab-1"),
            "{err}"
        );
        for status in ["shipped", "received", "infused", "cancelled", "on_hold"] {
            let err = may_print(&order(status, "site-a"), "site-a").unwrap_err();
            assert!(err.to_string().contains(&format!("is {status}")), "{err}");
        }
    }

    #[test]
    fn a_collection_time_must_fit_the_order() {
        // Scheduled 2025-06-02 08:00 New York; expires 2025-06-04 23:59 New York.
        let order = order("collected", "site-a");
        let now: jiff::Timestamp = "2025-06-02T14:00:00Z".parse().unwrap();
        let allowed = |at: &str| collection_time_allowed(&order, at.parse().unwrap(), now);
        assert!(allowed("2025-06-02T12:14:00Z").is_ok());
        assert!(
            allowed("2025-06-02T14:09:00Z").is_ok(),
            "within 10 minutes ahead"
        );
        assert!(
            allowed("2025-06-01T04:00:00Z").is_ok(),
            "the day before, New York"
        );
        for (at, why) in [
            ("2025-06-02T14:11:00Z", "in the future"),
            ("2025-06-01T03:59:00Z", "before the day before"),
        ] {
            let err = allowed(at).unwrap_err().to_string();
            assert!(err.contains(why), "{at}: {err}");
        }
        let late: jiff::Timestamp = "2025-06-06T00:00:00Z".parse().unwrap();
        let err = collection_time_allowed(&order, "2025-06-05T04:00:00Z".parse().unwrap(), late)
            .unwrap_err();
        assert!(
            err.to_string().contains("after the order's expiry"),
            "{err}"
        );
    }
}

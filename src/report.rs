//! What coi-agent says back, as `Serialize` types: the CLI's `--json` lines and the local API's
//! bodies are these same types, so one shape is promised everywhere (docs/local-api.md). Built
//! by hand from the flows' own types; identifiers only, never patient data, except in
//! [`PatientReport`], which is shown only when asked for.

use serde::Serialize;

use crate::labeling::{Printed, Verified};
use crate::orders::record::Order;
use crate::printer::job::{JobOutcome, JobPhase};
use crate::receiving::RecordedScan;
use crate::reconcile::{Outcome, Verdict};

/// A verdict, as `reconcile --json` prints it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VerdictReport {
    /// `match`, `sample` (a sample tube of the order, never a bag), `incomplete` (one
    /// identifier of two: not final, never a match) or `mismatch`.
    pub verdict: &'static str,
    /// The reason code of a mismatch (README: reconcile).
    pub reason: Option<&'static str>,
    /// An incomplete scan: the identifier still to scan, `din` or `coi`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needs: Option<&'static str>,
    pub message: String,
    pub coi: Option<String>,
    pub din: Option<String>,
    pub bag: Option<u8>,
    /// The order's number of bags, to say "bag 2 of 3" (absent when no order was identified).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bags: Option<u8>,
    pub order_id: Option<String>,
}

/// A recorded scan with its verdict: `receive --json`, `POST /api/v1/scans`, each entry of
/// `GET /api/v1/scans` and each `scan` event of `GET /api/v1/events`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ScanReport {
    /// The journal's scan id.
    pub id: i64,
    pub at: String,
    /// `receipt` or `verify`.
    pub step: &'static str,
    pub source: String,
    #[serde(flatten)]
    pub verdict: VerdictReport,
    /// Verify step: the print job the scan was checked against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// Verify step: `verified` or `flagged`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<String>,
    /// Verify step: the scan confirmed a job the printer had not confirmed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub confirmed_by_scan: bool,
}

/// What became of a bag label: `label print --json` and `POST .../labels`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PrintReport {
    pub job_id: String,
    /// `confirmed`, `unconfirmed` or `failed`.
    pub state: &'static str,
    /// The printer fault that decided it (`media_out`, `head_open`, ...).
    pub fault: Option<&'static str>,
    pub bytes: usize,
    /// The custody event written with the outcome, if any.
    pub event: Option<&'static str>,
    pub template: String,
    pub version: u32,
    pub bag: u8,
    pub dpi: u32,
    pub printer: String,
    /// What happened and what to do, for the person at the printer.
    pub message: String,
}

/// A voided label: `label void --json` and `POST /api/v1/jobs/{job_id}/void`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VoidReport {
    pub job_id: String,
    /// Always `voided`.
    pub state: &'static str,
    pub bag: u8,
    pub order_id: String,
    /// The custody event written with it.
    pub event: &'static str,
    /// What happened and what to do, for the person at the bag.
    pub message: String,
}

impl VoidReport {
    pub fn new(voided: &crate::labeling::Voided) -> VoidReport {
        VoidReport {
            job_id: voided.job_id.clone(),
            state: "voided",
            bag: voided.bag,
            order_id: voided.order_id.clone(),
            event: "label_voided",
            message: match &voided.still_labelled {
                None => format!(
                    "VOIDED: the label of job {} (bag {} of order {}) no longer counts. Destroy it; print the bag's label again (not a reprint) and verify it.",
                    voided.job_id, voided.bag, voided.order_id
                ),
                Some(other) => format!(
                    "VOIDED: the label of job {} (bag {} of order {}) no longer counts. Destroy it. The bag still carries the label of job {other}: void that one too before printing a new first label.",
                    voided.job_id, voided.bag, voided.order_id
                ),
            },
        }
    }
}

/// The audit chain's check: `audit verify --json` and the admin screen.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditReport {
    pub intact: bool,
    /// Entries checked, when intact.
    pub entries: Option<i64>,
    /// The first broken link, when broken.
    pub broken: Option<String>,
    /// In words.
    pub message: String,
}

impl AuditReport {
    pub fn new(checked: &Result<i64, crate::journal::audit::BrokenLink>) -> AuditReport {
        match checked {
            Ok(count) => AuditReport {
                intact: true,
                entries: Some(*count),
                broken: None,
                message: format!("audit trail intact: {count} entries"),
            },
            Err(broken @ crate::journal::audit::BrokenLink::NotChecked { .. }) => AuditReport {
                intact: false,
                entries: None,
                broken: Some(broken.to_string()),
                message: format!("AUDIT TRAIL NOT WHOLLY CHECKED: {broken}"),
            },
            Err(broken) => AuditReport {
                intact: false,
                entries: None,
                broken: Some(broken.to_string()),
                message: format!("AUDIT TRAIL BROKEN: {broken}"),
            },
        }
    }
}

/// The outbox: `outbox status --json`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OutboxReport {
    pub pending: i64,
    pub delivered: i64,
    /// Parked and not closed: waiting for a person.
    pub parked: i64,
    /// When the oldest pending event was recorded.
    pub oldest_pending: Option<String>,
    /// The pending and parked events, oldest first, each with its attempts and last error.
    pub events: Vec<crate::journal::outbox::OutboxEntry>,
}

/// A cached order without patient data: `GET /api/v1/orders`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OrderSummary {
    pub coi: String,
    pub order_id: String,
    pub status: &'static str,
    pub din: String,
    pub bags: u8,
    pub collection_site: String,
    pub manufacturing_site: String,
    pub expires_at: Option<String>,
}

/// One bag's labels as the journal has them.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BagLabelReport {
    pub bag: u8,
    /// The latest job that may have put a label on paper.
    pub job_id: Option<String>,
    /// `queued`, `confirmed`, `unconfirmed`, or `none` when no label was printed.
    pub state: String,
    pub verification: Option<String>,
    pub received: bool,
    /// The bag's label as the print station shows it: `none`, `queued`, `printed`,
    /// `unconfirmed`, `verified`, `flagged`, or `voided` (voided, none printed since).
    pub label: &'static str,
    /// The collection time the latest label carries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collected_at: Option<String>,
}

/// The patient, only when asked for (`?patient=true`, `orders show --patient`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PatientReport {
    pub family_name: String,
    pub given_name: String,
    pub date_of_birth: String,
    pub id: String,
    pub id_label: String,
}

/// One cached order with its bags: `GET /api/v1/orders/{coi}`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OrderReport {
    #[serde(flatten)]
    pub order: OrderSummary,
    pub product_code: String,
    pub product_description: String,
    pub bag_labels: Vec<BagLabelReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient: Option<PatientReport>,
}

/// A bag's label state in one word, from its latest job that may have put a label on paper
/// (`state`, `verification`) and whether one was voided.
pub fn label_state(state: &str, verification: Option<&str>, voided: bool) -> &'static str {
    match (state, verification) {
        (_, Some("verified")) => "verified",
        (_, Some(_)) => "flagged",
        ("confirmed", None) => "printed",
        ("unconfirmed", None) => "unconfirmed",
        ("queued", None) => "queued",
        _ if voided => "voided",
        _ => "none",
    }
}

impl VerdictReport {
    pub fn new(verdict: &Verdict) -> VerdictReport {
        VerdictReport {
            verdict: verdict.outcome.as_str(),
            reason: verdict.reason().map(|r| r.code()),
            needs: match verdict.outcome {
                Outcome::Incomplete(missing) => Some(missing.as_str()),
                _ => None,
            },
            message: verdict.message.clone(),
            coi: verdict.coi.map(|c| c.as_str().to_owned()),
            din: verdict.din.map(|d| d.as_str().to_owned()),
            bag: verdict.bag,
            bags: verdict.bags,
            order_id: verdict.order_id.clone(),
        }
    }
}

impl ScanReport {
    pub fn new(scan: &RecordedScan) -> ScanReport {
        ScanReport {
            id: scan.id,
            at: scan.at.to_string(),
            step: scan.step.as_str(),
            source: scan.source.clone(),
            verdict: VerdictReport::new(&scan.verdict),
            job_id: None,
            verification: None,
            confirmed_by_scan: false,
        }
    }

    pub fn verified(verified: &Verified) -> ScanReport {
        ScanReport {
            job_id: verified.job_id.clone(),
            verification: verified.verification.clone(),
            confirmed_by_scan: verified.confirmed_by_scan,
            ..ScanReport::new(&verified.scan)
        }
    }

    /// A scan as the journal has it.
    pub fn from_row(row: &crate::journal::ScanRow) -> ScanReport {
        let at = row
            .at
            .parse::<jiff::Timestamp>()
            .map_or_else(|_| row.at.clone(), |t| t.to_string());
        ScanReport {
            id: row.id,
            at,
            step: crate::reconcile::Step::parse(&row.step)
                .map_or("unknown", crate::reconcile::Step::as_str),
            source: row.source.clone(),
            verdict: VerdictReport {
                verdict: match row.verdict.as_str() {
                    "match" => "match",
                    "sample" => "sample",
                    "incomplete" => "incomplete",
                    _ => "mismatch",
                },
                // An incomplete scan carries the one identifier it read.
                needs: (row.verdict == "incomplete").then_some(if row.din.is_some() {
                    "coi"
                } else {
                    "din"
                }),
                reason: row
                    .reason
                    .as_deref()
                    .and_then(crate::reconcile::Reason::from_code)
                    .map(|r| r.code()),
                message: row.message.clone(),
                coi: row.coi.clone(),
                din: row.din.clone(),
                bag: row.bag,
                bags: row.bags,
                order_id: row.order_id.clone(),
            },
            job_id: None,
            verification: None,
            confirmed_by_scan: false,
        }
    }

    /// Whether the scan is what its step wanted: a match (and, verifying, a job not flagged).
    pub fn is_good(&self) -> bool {
        self.verdict.verdict == "match"
            && self.verification.as_deref().is_none_or(|v| v == "verified")
    }
}

impl PrintReport {
    pub fn new(
        printed: &Printed,
        prepared: &crate::labeling::PreparedLabel,
        spool: bool,
    ) -> PrintReport {
        PrintReport {
            job_id: printed.job_id.clone(),
            state: printed.outcome.phase.as_str(),
            fault: printed.outcome.fault.map(|f| f.as_str()),
            bytes: printed.outcome.bytes,
            event: printed.event.map(crate::custody::EventKind::as_str),
            template: prepared.template.clone(),
            version: prepared.template_version,
            bag: prepared.bag,
            dpi: prepared.dpi,
            printer: prepared.printer.clone(),
            message: outcome_message(&printed.outcome, spool),
        }
    }
}

/// What became of a job, as the printer told it, in words for the person at the printer.
pub fn outcome_message(outcome: &JobOutcome, spool: bool) -> String {
    match (outcome.phase, outcome.fault) {
        (JobPhase::Confirmed, _) if spool => "WRITTEN to the spool directory".to_owned(),
        (JobPhase::Confirmed, _) => "PRINTED (confirmed by the printer)".to_owned(),
        (JobPhase::Unconfirmed, Some(fault)) => format!(
            "UNCONFIRMED ({}): the label may be in the printer and print once this is fixed: {} Do not print it again before checking.",
            fault.as_str(),
            fault.advice()
        ),
        (phase, Some(fault)) => format!(
            "{} ({}): {}",
            phase.as_str().to_uppercase(),
            fault.as_str(),
            fault.advice()
        ),
        (phase, None) => format!(
            "{}: the printer did not show the label done in time; check it before printing again",
            phase.as_str().to_uppercase()
        ),
    }
}

impl OrderSummary {
    pub fn new(order: &Order) -> OrderSummary {
        OrderSummary {
            coi: order.coi.as_str().to_owned(),
            order_id: order.order_id.clone(),
            status: order.status.as_str(),
            din: order.collection.din.as_str().to_owned(),
            bags: order.collection.bags,
            collection_site: order.collection.facility.site_id.clone(),
            manufacturing_site: order.manufacturing.site_id.clone(),
            expires_at: order.expires_at.map(|t| t.to_string()),
        }
    }
}

impl PatientReport {
    pub fn new(order: &Order) -> PatientReport {
        let p = &order.patient;
        PatientReport {
            family_name: p.family_name.clone(),
            given_name: p.given_name.clone(),
            date_of_birth: p.date_of_birth.to_string(),
            id: p.id.clone(),
            id_label: p.id_label.clone(),
        }
    }
}

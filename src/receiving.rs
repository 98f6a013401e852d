//! The receipt scan (ARCHITECTURE.md, flow 3): a bag arriving at a site — the collection at the
//! cell lab, the patient's drug back at the apheresis site — is scanned, judged against the
//! journal's order cache by the reconciliation rules, and recorded with its verdict and custody
//! event (`bag_received`, or `scan_mismatch` naming the reason) in one transaction. A bag is
//! received once: a second matching scan is a duplicate, even from another workstation at the
//! same moment.

use std::collections::HashSet;

use serde_json::json;

use crate::custody::{EventKind, NewEvent, Station, custody_event};
use crate::isbt128::coi::CoiId;
use crate::journal::{Journal, JournalError, ScanRecord};
use crate::orders::OrderBook;
use crate::reconcile::{Context, Outcome, ScanRead, Step, Verdict, reconcile};
use crate::scanner::{Scan, ScanError};

/// A scan as recorded, with its verdict: what a screen, the API and the CLI show.
#[derive(Debug, Clone)]
pub struct RecordedScan {
    /// The journal's scan id.
    pub id: i64,
    pub at: jiff::Timestamp,
    pub step: Step,
    pub source: String,
    pub verdict: Verdict,
}

impl RecordedScan {
    /// `scan`, recorded as scan `id` of `step` with its verdict.
    pub fn new(id: i64, scan: &Scan, step: Step, verdict: Verdict) -> RecordedScan {
        RecordedScan {
            id,
            at: scan.at,
            step,
            source: scan.source.clone(),
            verdict,
        }
    }
}

/// How current the journal's orders are, when the station trusts them only so long (orders from
/// the central service; `None` for a file source).
///
/// # Errors
/// The journal failed.
pub fn freshness(
    journal: &Journal,
    station: Station<'_>,
) -> Result<Option<crate::reconcile::Freshness>, JournalError> {
    let Some(max_age) = station.order_max_age else {
        return Ok(None);
    };
    let synced_at = journal
        .orders_synced_at()?
        .and_then(|text| text.parse::<jiff::Timestamp>().ok());
    Ok(Some(crate::reconcile::Freshness { synced_at, max_age }))
}

/// How many recent scans of a source are looked through for a pending half.
const HALF_LOOKBACK: usize = 4;

/// The raw bytes of the earlier half that `scan` is judged with (docs/decisions.md, "Two
/// identifiers"): the latest scan from the same source by the same operator at this site for
/// `step` that carried the DIN or the COI identifier, when it was `incomplete` and read within
/// the station's pairing window before `scan`. Scans in between that carried neither (the
/// label's product code or date barcodes, judged with the half and still incomplete) are passed
/// over; any other scan in between ends the half.
///
/// # Errors
/// The journal failed.
pub fn earlier_half(
    journal: &Journal,
    scan: &Scan,
    station: Station<'_>,
    step: Step,
    operator: Option<&str>,
) -> Result<Option<Vec<u8>>, JournalError> {
    let window = jiff::SignedDuration::try_from(station.pair_window).unwrap_or_default();
    let since = crate::journal::utc_text(scan.at.checked_sub(window).unwrap_or(scan.at));
    let until = crate::journal::utc_text(scan.at);
    let recent =
        journal.latest_scans_of(&scan.source, station.site_id, step.as_str(), HALF_LOOKBACK)?;
    for earlier in recent {
        let pending = earlier.verdict == "incomplete"
            && (since.as_str()..=until.as_str()).contains(&earlier.at.as_str())
            && earlier.operator.as_deref() == operator;
        if !pending {
            return Ok(None);
        }
        if crate::isbt128::message::parse(&earlier.raw)
            .is_ok_and(|message| carries_identifier(&message))
        {
            return Ok(Some(earlier.raw));
        }
    }
    Ok(None)
}

/// "Received here: bags 1, 2 of 3; still missing: bag 3." for the bags in `received`.
fn shipment(received: &[u8], bags: u8) -> String {
    let list = |bags: &[u8]| {
        bags.iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let missing: Vec<u8> = (1..=bags).filter(|b| !received.contains(b)).collect();
    let noun = |n: usize| if n == 1 { "bag" } else { "bags" };
    match missing.len() {
        0 => format!(
            "All {bags} {} of the order received here.",
            noun(bags.into())
        ),
        _ if received.is_empty() => {
            format!("No bag of the order's {bags} received at this workstation yet.")
        }
        n => format!(
            "Received here: {} {} of {bags}; still missing: {} {}.",
            noun(received.len()),
            list(received),
            noun(n),
            list(&missing)
        ),
    }
}

/// What a scan read, for a `scan_mismatch` event: the DIN, bag and COI identifier as scanned
/// (absent when not read), next to the order's in the event itself.
pub fn scanned(verdict: &Verdict) -> serde_json::Value {
    json!({
        "din": verdict.din.map(|d| d.as_str().to_owned()),
        "bag": verdict.bag,
        "coi": verdict.coi.map(|c| c.as_str().to_owned()),
    })
}

/// Whether a read carries the DIN or the COI identifier.
fn carries_identifier(message: &crate::isbt128::message::Message<'_>) -> bool {
    use crate::isbt128::structure::Value;
    message
        .data_structures()
        .iter()
        .any(|s| matches!(s.value, Value::Donation(_) | Value::Coi(_)))
}

/// Judges `scan` together with `earlier` (an incomplete half's raw bytes, when one waits): the
/// two complete each other when they carry one identifier each; any identifier of one that
/// disagrees with the other's is a conflict (a half is never silently dropped); a scan that
/// repeats the half is still half.
pub fn judge(scan: &Scan, earlier: Option<&[u8]>, book: &OrderBook, ctx: &Context<'_>) -> Verdict {
    match scan.parse() {
        Ok(message) => match earlier.and_then(|raw| crate::isbt128::message::parse(raw).ok()) {
            Some(first) => reconcile(ScanRead::Paired(&first, &message), book, ctx),
            None => reconcile(ScanRead::Parsed(&message), book, ctx),
        },
        Err(ScanError::Isbt128(problem)) => reconcile(ScanRead::Invalid(&problem), book, ctx),
        Err(ScanError::Frame(_)) => reconcile(ScanRead::Unreadable, book, ctx),
    }
}

/// Central's word on a receipt MATCH (site-wide arbitration, docs/central-api.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptClaim {
    /// No central service: this journal decides.
    NotAsked,
    Granted,
    /// Central could not be asked and `[central] offline = "local"`: this journal decides, and
    /// the event says so.
    Offline,
    /// Another workstation received the bag first.
    Held {
        workstation: String,
    },
    /// Central could not be asked and `[central] offline = "refuse"`.
    Refused(String),
    /// Central does not know the scanned order (or its record could not be stored).
    Unknown(String),
}

impl ReceiptClaim {
    /// As the event's `arbitration` says it.
    fn arbitration(&self) -> Option<&'static str> {
        match self {
            ReceiptClaim::Granted => Some("central"),
            ReceiptClaim::Offline => Some("offline"),
            _ => None,
        }
    }
}

/// The verdict a receipt scan would get now, without recording it: what central is asked about
/// before the scan is recorded with [`receive`].
///
/// # Errors
/// The journal failed.
pub fn judge_receipt(
    journal: &Journal,
    book: &OrderBook,
    scan: &Scan,
    station: Station<'_>,
    operator: Option<&str>,
) -> Result<Verdict, JournalError> {
    let receipt = Receipt::new(journal, book, scan, station, operator)?;
    receipt.first(journal, &mut HashSet::new())
}

/// A receipt scan with what it is judged by: its pending half and the orders' freshness.
struct Receipt<'a> {
    book: &'a OrderBook,
    scan: &'a Scan,
    station: Station<'a>,
    earlier: Option<Vec<u8>>,
    freshness: Option<crate::reconcile::Freshness>,
}

impl<'a> Receipt<'a> {
    fn new(
        journal: &Journal,
        book: &'a OrderBook,
        scan: &'a Scan,
        station: Station<'a>,
        operator: Option<&str>,
    ) -> Result<Receipt<'a>, JournalError> {
        Ok(Receipt {
            book,
            scan,
            station,
            earlier: earlier_half(journal, scan, station, Step::Receipt, operator)?,
            freshness: freshness(journal, station)?,
        })
    }

    /// The verdict with the bags in `received` already received here.
    fn verdict(&self, received: &HashSet<(CoiId, u8)>) -> Verdict {
        let ctx = Context {
            site_id: self.station.site_id,
            step: Step::Receipt,
            role: None,
            now: self.scan.at,
            expected: None,
            received,
            freshness: self.freshness,
        };
        judge(self.scan, self.earlier.as_deref(), self.book, &ctx)
    }

    /// The verdict with the scanned bag's receipt looked up (one indexed lookup, whatever the
    /// history), adding it to `received` when it was received before.
    fn first(
        &self,
        journal: &Journal,
        received: &mut HashSet<(CoiId, u8)>,
    ) -> Result<Verdict, JournalError> {
        let verdict = self.verdict(received);
        if let Some((coi, bag)) = verdict.coi.zip(verdict.bag)
            && journal.is_received(self.station.site_id, coi.as_str(), bag)?
        {
            received.insert((coi, bag));
            return Ok(self.verdict(received));
        }
        Ok(verdict)
    }
}

/// Judges and records one receipt scan; returns it with its verdict (stored before it is
/// returned). A MATCH that central says another workstation received first is a duplicate
/// (`already_received`, naming it); one central could not be asked about under
/// `offline = "refuse"` is `central_offline`. `book` is the journal's order cache (held in memory by the caller); whether the
/// scanned bag was received before is one indexed lookup, so a verdict costs the same with ten
/// or a hundred thousand past receipts.
///
/// # Errors
/// The journal failed: nothing of the scan was recorded, and the verdict must not be shown as
/// if it were.
pub fn receive(
    journal: &mut Journal,
    book: &OrderBook,
    scan: &Scan,
    station: Station<'_>,
    operator: Option<&str>,
    claim: &ReceiptClaim,
) -> Result<RecordedScan, JournalError> {
    let parse_error = scan.parse().err().map(|e| e.to_string());
    let receipt = Receipt::new(journal, book, scan, station, operator)?;
    let mut received = HashSet::new();
    let mut verdict = receipt.first(journal, &mut received)?;
    // Twice at most: a match that another workstation recorded first is judged again with that
    // bag received, and is then a duplicate (never a match again).
    loop {
        // Central's word on a match (it may have been asked about an earlier judgement: only a
        // match still is one is changed).
        if verdict.is_match() {
            let of = format!(
                "Bag {} of order {}",
                verdict.bag.unwrap_or_default(),
                verdict.order_id.as_deref().unwrap_or_default()
            );
            match claim {
                ReceiptClaim::Held { workstation } => {
                    verdict.outcome = Outcome::Mismatch(crate::reconcile::Reason::AlreadyReceived);
                    verdict.message = format!(
                        "{of} was already received at workstation {workstation} (the central service's record). Check for a duplicate label; call your supervisor."
                    );
                }
                ReceiptClaim::Unknown(why) => {
                    verdict.outcome = Outcome::Mismatch(crate::reconcile::Reason::UnknownCoi);
                    verdict.message =
                        format!("{of}: {why}. Do not accept this bag; call your supervisor.");
                }
                ReceiptClaim::Refused(problem) => {
                    verdict.outcome = Outcome::Mismatch(crate::reconcile::Reason::CentralOffline);
                    verdict.message = format!(
                        "{of}: the central service could not be asked whether another workstation received it ({problem}), and this site receives only with its word. Set the bag aside; scan it again when the network is back."
                    );
                }
                _ => {}
            }
        }
        // Where the shipment stands (issue #13): which bags are in and which still missing.
        if let (Some(coi), Some(bags)) = (verdict.coi, verdict.bags) {
            let matched_bag = verdict.bag.filter(|_| verdict.is_match());
            // Only what this journal knows: not after central named another workstation.
            let here = !matches!(claim, ReceiptClaim::Held { .. });
            if verdict.is_match()
                || (here && verdict.reason() == Some(crate::reconcile::Reason::AlreadyReceived))
            {
                let mut received = journal.bags_received(station.site_id, coi.as_str())?;
                received.extend(matched_bag);
                received.sort_unstable();
                received.dedup();
                verdict.message = format!("{} {}", verdict.message, shipment(&received, bags));
            }
        }
        // An event needs an order to be about; a scan that names none stays in the journal, and
        // so does half a pair (nothing happened to any bag yet).
        // Half a read refused (a wrong product code with one identifier) names an order that one
        // possibly misread identifier chose: no event about it.
        let order = verdict
            .coi
            .filter(|_| verdict.din.is_some())
            .and_then(|coi| book.by_coi(&coi));
        let what = match verdict.outcome {
            Outcome::Match => Some((
                EventKind::BagReceived,
                json!({"source": scan.source, "arbitration": claim.arbitration()}),
            )),
            Outcome::Sample => Some((EventKind::SampleReceived, json!({"source": scan.source}))),
            Outcome::Mismatch(reason) => Some((
                EventKind::ScanMismatch,
                json!({"source": scan.source, "step": "receipt", "reason": reason.code(),
                       "scanned": scanned(&verdict)}),
            )),
            Outcome::Incomplete(_) => None,
        };
        let events: Vec<NewEvent> = order
            .zip(what)
            .map(|(order, (kind, details))| {
                custody_event(
                    kind,
                    order,
                    verdict.bag,
                    station,
                    operator,
                    scan.at,
                    details,
                )
            })
            .into_iter()
            .collect();
        let matched = verdict
            .is_match()
            .then(|| verdict.coi.zip(verdict.bag))
            .flatten();
        let record = ScanRecord {
            at: &crate::journal::utc_text(scan.at),
            source: &scan.source,
            raw: &scan.raw,
            parse_error: parse_error.as_deref(),
            verdict: &verdict,
            site_id: station.site_id,
            step: Step::Receipt.as_str(),
            operator,
        };
        let key = matched.as_ref().map(|(coi, bag)| (coi.as_str(), *bag));
        match journal.record_receipt(&record, &events, key)? {
            Ok(id) => return Ok(RecordedScan::new(id, scan, Step::Receipt, verdict)),
            Err(crate::journal::AlreadyReceived) => {
                received.extend(matched);
                verdict = receipt.verdict(&received);
            }
        }
    }
}

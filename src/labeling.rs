//! Printing a bag's COI label as the chain of identity requires (ARCHITECTURE.md, flow 1): the
//! order comes from the journal's cache and must allow a bag label at this site; the label is
//! made and proven; the job is recorded before a byte is sent; the printer's own verdict is
//! recorded with its audit entry and custody event in one transaction. A second label for a bag
//! that may already have one is printed only as a deliberate reprint.

use serde_json::json;
use sha2::Digest as _;

use crate::isbt128::coi::CoiId;
use crate::journal::print_jobs::PrintJobRecord;
use crate::journal::{Journal, JournalError, NewEvent, audit, utc_text};
use crate::label::data::LabelData;
use crate::label::template::Template;
use crate::orders::record::{Order, OrderStatus};
use crate::printer::job::{Job, JobOutcome, JobPhase, Printer};

/// Where the label is printed: this workstation.
#[derive(Debug, Clone, Copy)]
pub struct Station<'a> {
    pub site_id: &'a str,
    pub workstation: &'a str,
}

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
    /// The collection time printed and encoded (DS 007).
    pub collected_at: jiff::Timestamp,
}

/// A printer as the flow uses it.
#[derive(Debug)]
pub struct Target<'a> {
    /// The configured printer's name, recorded with the job.
    pub name: &'a str,
    pub printer: &'a mut Printer,
    /// The resolution the label is laid out at (the printer's).
    pub dpi: u32,
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
    #[error("order {order_id} has no earlier label for bag {bag} to reprint")]
    NothingToReprint { order_id: String, bag: u8 },
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
    pub event: Option<&'static str>,
}

/// Whether a bag label for `order` may be printed at `site_id`: only at the order's collection
/// site, and only while the collection is scheduled or collected (not after it shipped, nor for
/// a cancelled or held order).
///
/// # Errors
/// The refusal, naming the order and the rule.
pub fn may_print(order: &Order, site_id: &str) -> Result<(), Refusal> {
    let site = &order.collection.facility.site_id;
    if site != site_id {
        return Err(Refusal::NotCollectionSite {
            order_id: order.order_id.clone(),
            site: site.clone(),
            here: site_id.to_owned(),
        });
    }
    match order.status {
        OrderStatus::Scheduled | OrderStatus::Collected => Ok(()),
        status => Err(Refusal::Status {
            order_id: order.order_id.clone(),
            status: status.as_str(),
        }),
    }
}

/// Prints one bag label and records it: the job (`queued`, with the template version and the
/// SHA-256 of the exact bytes) before sending, then the printer's verdict with its custody event.
///
/// # Errors
/// A [`Refusal`] before anything was sent, or [`Refusal::Unrecorded`] after.
pub async fn print_bag_label(
    journal: &mut Journal,
    target: Target<'_>,
    station: Station<'_>,
    request: BagLabel<'_>,
) -> Result<Printed, Refusal> {
    let (book, _) = journal.order_book()?;
    let order = book
        .by_coi(request.coi)
        .ok_or_else(|| Refusal::UnknownCoi(request.coi.as_str().to_owned()))?;
    may_print(order, station.site_id)?;
    let earlier = journal.bag_label_jobs(order.coi.as_str(), request.bag)?;
    match (earlier.last(), request.reprint) {
        (Some((job_id, state)), false) => {
            return Err(Refusal::AlreadyPrinted {
                order_id: order.order_id.clone(),
                bag: request.bag,
                job_id: job_id.clone(),
                state: state.clone(),
            });
        }
        (None, true) => {
            return Err(Refusal::NothingToReprint {
                order_id: order.order_id.clone(),
                bag: request.bag,
            });
        }
        _ => {}
    }
    let data = LabelData::new(order, request.bag, request.collected_at)
        .map_err(|e| Refusal::Label(format!("order {}: {e}", order.order_id)))?;
    let label = crate::label::render(request.template, &data, target.dpi)
        .map_err(|e| Refusal::Label(e.to_string()))?;

    let job_id = uuid::Uuid::now_v7().to_string();
    let zpl = label.zpl.into_bytes();
    let version = request.template.version.to_string();
    journal.record_print_job(
        &PrintJobRecord {
            job_id: &job_id,
            coi: Some(order.coi.as_str()),
            bag: Some(request.bag),
            template: &request.template.name,
            template_version: &version,
            printer: target.name,
            zpl_sha256: &audit::hex(&sha2::Sha256::digest(&zpl)),
            operator: request.operator,
            at: &utc_text(jiff::Timestamp::now()),
            state: "queued",
        },
        &[],
    )?;
    let outcome = target
        .printer
        .submit(&Job {
            id: job_id.clone(),
            zpl,
            expires_at: None,
        })
        .await;

    let event = match outcome.phase {
        JobPhase::Confirmed if request.reprint => Some("label_reprinted"),
        JobPhase::Confirmed => Some("label_printed"),
        JobPhase::Failed => Some("print_failed"),
        _ => None,
    };
    let fault = outcome.fault.map(|f| f.as_str());
    let at = jiff::Timestamp::now();
    let events: Vec<NewEvent> = event
        .map(|kind| {
            let details = json!({
                "job_id": job_id,
                "template": request.template.name,
                "template_version": request.template.version,
                "printer": target.name,
                "fault": fault,
            });
            custody_event(
                kind,
                order,
                request.bag,
                station,
                request.operator,
                at,
                details,
            )
        })
        .into_iter()
        .collect();
    journal
        .record_job_state(
            &job_id,
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
        job_id,
        outcome,
        event,
    })
}

/// A custody event about bag `bag` of `order` as the central service receives it
/// (CONTRACTS.md): identifiers, site, workstation, operator and time, never patient data.
pub fn custody_event(
    kind: &str,
    order: &Order,
    bag: u8,
    station: Station<'_>,
    operator: Option<&str>,
    at: jiff::Timestamp,
    details: serde_json::Value,
) -> NewEvent {
    let event_id = uuid::Uuid::now_v7().to_string();
    let payload = json!({
        "event_id": event_id,
        "type": kind,
        "coi": order.coi.as_str(),
        "din": order.collection.din.as_str(),
        "bag": bag,
        "bags": order.collection.bags,
        "site_id": station.site_id,
        "workstation": station.workstation,
        "operator": operator,
        "at": at.to_string(),
        "local_zone": order.collection.time_zone,
        "details": details,
    });
    NewEvent {
        event_id,
        kind: kind.to_owned(),
        coi: order.coi.as_str().to_owned(),
        payload,
    }
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
    fn bag_labels_are_printed_at_the_collection_site_before_shipping() {
        assert!(may_print(&order("scheduled", "site-a"), "site-a").is_ok());
        assert!(may_print(&order("collected", "site-a"), "site-a").is_ok());
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
}

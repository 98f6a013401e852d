//! Custody events for the central service (CONTRACTS.md): what happened to which bag, where,
//! when and by whom — identifiers only, never patient data. Each is written to the journal's
//! outbox in the same transaction as the record it describes.

use serde_json::json;

use crate::orders::record::Order;

/// A custody event for the central service, written with the record it describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// The idempotency key (UUID v7).
    pub event_id: String,
    /// `label_printed`, `bag_received`, `scan_mismatch`, ...
    pub kind: String,
    pub coi: String,
    /// The whole event as the central service receives it (CONTRACTS.md).
    pub payload: serde_json::Value,
}

/// What happened to a bag, as central's event types name it (CONTRACTS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    LabelPrinted,
    LabelVerified,
    LabelReprinted,
    LabelVoided,
    PrintFailed,
    BagReceived,
    /// A sample tube of the collection received (never a bag: issue #20).
    SampleReceived,
    ScanMismatch,
}

impl EventKind {
    /// The `type` of the event as central receives it.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::LabelPrinted => "label_printed",
            EventKind::LabelVerified => "label_verified",
            EventKind::LabelReprinted => "label_reprinted",
            EventKind::LabelVoided => "label_voided",
            EventKind::PrintFailed => "print_failed",
            EventKind::BagReceived => "bag_received",
            EventKind::SampleReceived => "sample_received",
            EventKind::ScanMismatch => "scan_mismatch",
        }
    }
}

/// This workstation, as events name it.
#[derive(Debug, Clone, Copy)]
pub struct Station<'a> {
    pub site_id: &'a str,
    pub workstation: &'a str,
    /// How long a scan of one identifier waits for the other from the same source.
    pub pair_window: std::time::Duration,
    /// How old the cached orders may be for a receipt or a first label (`[orders]
    /// max_age_secs`), when they come from the central service; `None` for a file source.
    pub order_max_age: Option<std::time::Duration>,
}

/// `details` with its null fields left out (an absent fact is absent, not null).
fn without_nulls(details: serde_json::Value) -> serde_json::Value {
    match details {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        other => other,
    }
}

/// A custody event about bag `bag` of `order` (none when a scan named no bag).
pub fn custody_event(
    kind: EventKind,
    order: &Order,
    bag: Option<u8>,
    station: Station<'_>,
    operator: Option<&str>,
    at: jiff::Timestamp,
    details: serde_json::Value,
) -> NewEvent {
    let event_id = uuid::Uuid::now_v7().to_string();
    let mut payload = json!({
        "event_id": event_id,
        "type": kind.as_str(),
        "coi": order.coi.as_str(),
        "din": order.collection.din.as_str(),
        "bags": order.collection.bags,
        "site_id": station.site_id,
        "workstation": station.workstation,
        "at": at.to_string(),
        "local_zone": order.collection.time_zone,
        "details": without_nulls(details),
    });
    // The schema promises a type for each field: an unknown one is left out, never null
    // (docs/central-api.md).
    if let Some(bag) = bag {
        payload["bag"] = json!(bag);
    }
    if let Some(operator) = operator {
        payload["operator"] = json!(operator);
    }
    NewEvent {
        event_id,
        kind: kind.as_str().to_owned(),
        coi: order.coi.as_str().to_owned(),
        payload,
    }
}

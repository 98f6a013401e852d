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

/// This workstation, as events name it.
#[derive(Debug, Clone, Copy)]
pub struct Station<'a> {
    pub site_id: &'a str,
    pub workstation: &'a str,
}

/// A custody event about bag `bag` of `order` (none when a scan named no bag).
pub fn custody_event(
    kind: &str,
    order: &Order,
    bag: Option<u8>,
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

//! The order record of the central service (`../shared/design/CONTRACTS.md`), read from JSON
//! and checked into an [`Order`]: identifiers through the ISBT 128 core, times as instants,
//! statuses as a closed set. A bad order is refused with the field named and without its
//! values, since an order carries patient data.

use serde::Deserialize;

use crate::isbt128::coi::CoiId;
use crate::isbt128::date::CalendarDate;
use crate::isbt128::din::Din;
use crate::isbt128::product::ProductCode;

/// An order, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub coi: CoiId,
    pub order_id: String,
    pub status: OrderStatus,
    pub patient: Patient,
    pub therapy: Therapy,
    pub product: Product,
    pub collection: Collection,
    pub manufacturing: Facility,
    /// IANA zone of the manufacturing site, when central says it: a label shows times in UTC
    /// too unless it is the collection site's zone (ST-001 §7.4.4.2).
    pub manufacturing_time_zone: Option<String>,
    pub expires_at: Option<jiff::Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patient {
    pub family_name: String,
    pub given_name: String,
    pub date_of_birth: CalendarDate,
    pub id: String,
    pub id_label: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Therapy {
    pub name: String,
    pub sponsor: String,
    pub protocol: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// The product description code with collection type, undivided (`=<S1295100`'s content
    /// without the division is `S1295` + `1`); the division a bag carries is chosen when its
    /// label is made.
    pub code: ProductCode,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collection {
    pub din: Din,
    pub facility: Facility,
    pub scheduled_for: jiff::Timestamp,
    /// IANA zone for eye-readable times at the collection site.
    pub time_zone: String,
    /// Bags in the collection, 1-9 (container flags of ST-001 Table 3, see docs/decisions.md).
    pub bags: u8,
    /// The donor's infectious-disease testing, for the label's statement (issue #20): a bag
    /// label is refused while it is unknown.
    pub testing: Option<Testing>,
    /// The approximate volume of each bag, mL, when known at labelling (else the label has a
    /// line to write it on).
    pub volume_ml: Option<u16>,
}

/// The infectious-disease testing of an autologous collection, as its label must state it
/// (21 CFR 1271.90(c), FACT-JACIE): not tested, tested and non-reactive, or reactive for the
/// markers named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Testing {
    Untested,
    NonReactive,
    Reactive(Vec<String>),
}

/// The longest reactive marker name accepted (`HTLV-I/II`, `Anti-HBc`, `T. pallidum`).
pub const MAX_MARKER: usize = 24;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Facility {
    pub fin: String,
    pub name: String,
    pub site_id: String,
}

/// Where an order is in its life (CONTRACTS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Scheduled,
    Collected,
    Shipped,
    Received,
    InManufacture,
    Released,
    ShippedToSite,
    ReceivedAtSite,
    Infused,
    Cancelled,
    OnHold,
}

/// Why an order record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("order {position}{}: {problem}", order_id.as_deref().map(|id| format!(" ({})", printable(id))).unwrap_or_default())]
pub struct OrderError {
    /// Position in the source, from 0.
    pub position: usize,
    pub order_id: Option<String>,
    pub problem: String,
}

/// The most bags one collection may have: bag numbers travel as the container flags of ST-001
/// Table 3, which number nine containers (`01`–`04`, `15`–`19`). An order of more bags is
/// refused whole: no label could tell its tenth bag from the others.
pub const MAX_BAGS: u8 = crate::isbt128::din::MAX_CONTAINERS;

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Scheduled => "scheduled",
            OrderStatus::Collected => "collected",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Received => "received",
            OrderStatus::InManufacture => "in_manufacture",
            OrderStatus::Released => "released",
            OrderStatus::ShippedToSite => "shipped_to_site",
            OrderStatus::ReceivedAtSite => "received_at_site",
            OrderStatus::Infused => "infused",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::OnHold => "on_hold",
        }
    }
}

/// `text` with its control characters (newlines, escapes, bidirectional overrides) written as
/// `\u{..}`, so a value shown in a message or a log line cannot forge another line or recolour
/// a terminal.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let hostile = is_hostile;
    if !text.chars().any(hostile) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if hostile(c) {
                    format!("\\u{{{:x}}}", u32::from(c))
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// Checks one order given as JSON.
///
/// # Errors
/// A missing or mistyped field, or a value that fails its check (DIN, COI, product code,
/// dates, bag count), named by its path.
pub fn parse_order(value: &serde_json::Value, position: usize) -> Result<Order, OrderError> {
    let order_id = value
        .get("order_id")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let fail = |problem: String| OrderError {
        position,
        order_id: order_id.clone(),
        problem,
    };
    // The field is named with its path (`status: unknown variant ...`), never its value.
    let record: OrderRecord = serde_path_to_error::deserialize(value.clone()).map_err(|e| {
        let path = e.path().to_string();
        let problem = without_values(&e.into_inner().to_string());
        fail(if path == "." {
            problem
        } else {
            format!("{path}: {problem}")
        })
    })?;
    let order = record.check().map_err(fail)?;
    // No text the agent reads holds a control character or a bidirectional override: shown,
    // printed or logged, it could forge a line, recolour a terminal or reorder what a reader
    // sees (PT-\u{202e}2400 displays as PT-0042). Fields the agent ignores are not looked at.
    if let Some(field) = hostile_text(&order) {
        return Err(fail(format!(
            "{field}: a control character (newline, tab, escape) or a bidirectional override is not allowed"
        )));
    }
    Ok(order)
}

/// A character no displayed value may hold (the rule [`printable`] escapes by).
fn is_hostile(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}')
}

/// The first text field of `order` that holds a hostile character.
fn hostile_text(order: &Order) -> Option<&'static str> {
    let c = &order.collection;
    let m = &order.manufacturing;
    let p = &order.patient;
    let t = &order.therapy;
    let mut fields: Vec<(&'static str, &str)> = vec![
        ("order_id", &order.order_id),
        ("patient.family_name", &p.family_name),
        ("patient.given_name", &p.given_name),
        ("patient.id", &p.id),
        ("patient.id_label", &p.id_label),
        ("therapy.name", &t.name),
        ("therapy.sponsor", &t.sponsor),
        ("therapy.protocol", &t.protocol),
        ("product.description", &order.product.description),
        ("collection.facility.fin", &c.facility.fin),
        ("collection.facility.name", &c.facility.name),
        ("collection.facility.site_id", &c.facility.site_id),
        ("collection.time_zone", &c.time_zone),
        ("manufacturing.fin", &m.fin),
        ("manufacturing.name", &m.name),
        ("manufacturing.site_id", &m.site_id),
    ];
    if let Some(zone) = &order.manufacturing_time_zone {
        fields.push(("manufacturing.time_zone", zone));
    }
    if let Some(Testing::Reactive(markers)) = &c.testing {
        fields.extend(
            markers
                .iter()
                .map(|m| ("collection.testing.reactive_markers", m.as_str())),
        );
    }
    fields
        .into_iter()
        .find(|(_, text)| text.chars().any(is_hostile))
        .map(|(field, _)| field)
}

/// serde's messages quote the offending value (`invalid type: string "Pat"`, or an integer in
/// backticks); an order's values can be patient data, so values are blanked and only field
/// names, variants and expectations stay.
pub(crate) fn without_values(message: &str) -> String {
    let about_a_value = message.starts_with("invalid type") || message.starts_with("invalid value");
    // "unknown variant `x`, expected one of ...": the first quoted word is the value.
    let mut first_variant = message.starts_with("unknown variant");
    let mut out = String::with_capacity(message.len());
    let mut open: Option<char> = None;
    for c in message.chars() {
        match open {
            Some(q) if c == q => {
                open = None;
                out.push(c);
            }
            Some(_) => {}
            None if c == '`' && first_variant => {
                first_variant = false;
                open = Some(c);
                out.push(c);
                out.push('…');
            }
            None if c == '"' || (c == '`' && about_a_value) => {
                open = Some(c);
                out.push(c);
                out.push('…');
            }
            None => out.push(c),
        }
    }
    out
}

/// The record as JSON carries it; unknown fields are ignored (CONTRACTS.md).
#[derive(Debug, Deserialize)]
struct OrderRecord {
    coi: String,
    order_id: String,
    status: OrderStatus,
    patient: PatientRecord,
    therapy: Therapy,
    product: ProductRecord,
    collection: CollectionRecord,
    manufacturing: ManufacturingRecord,
    #[serde(default)]
    expires_at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PatientRecord {
    family_name: String,
    given_name: String,
    date_of_birth: String,
    id: String,
    id_label: String,
}

#[derive(Debug, Deserialize)]
struct ProductRecord {
    code: String,
    collection_type: String,
    description: String,
}

#[derive(Debug, Deserialize)]
struct CollectionRecord {
    din: String,
    facility: Facility,
    scheduled_for: String,
    time_zone: String,
    bags: u32,
    #[serde(default)]
    testing: Option<TestingRecord>,
    #[serde(default)]
    volume_ml: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestingRecord {
    status: String,
    #[serde(default)]
    reactive_markers: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct ManufacturingRecord {
    facility: Facility,
    #[serde(default)]
    time_zone: Option<String>,
}

impl TestingRecord {
    fn check(self) -> Result<Testing, String> {
        let markers_ok = self.reactive_markers.iter().all(|m| {
            !m.trim().is_empty()
                && m.len() <= MAX_MARKER
                && m.chars()
                    .all(|c| c.is_ascii_alphanumeric() || " -/.+".contains(c))
        });
        if !markers_ok {
            return Err(format!(
                "collection.testing.reactive_markers: names of at most {MAX_MARKER} letters, digits, spaces and - / . +"
            ));
        }
        match (self.status.as_str(), self.reactive_markers.is_empty()) {
            ("untested", true) => Ok(Testing::Untested),
            ("non_reactive", true) => Ok(Testing::NonReactive),
            ("reactive", false) => Ok(Testing::Reactive(self.reactive_markers)),
            ("reactive", true) => Err(
                "collection.testing.reactive_markers: a reactive result names its markers"
                    .to_owned(),
            ),
            ("untested" | "non_reactive", false) => {
                Err("collection.testing.reactive_markers: only for status reactive".to_owned())
            }
            _ => Err("collection.testing.status: untested, non_reactive or reactive".to_owned()),
        }
    }
}

impl OrderRecord {
    fn check(self) -> Result<Order, String> {
        let coi = CoiId::parse(&self.coi).map_err(|e| format!("coi: {e}"))?;
        let din = Din::parse(&self.collection.din).map_err(|e| format!("collection.din: {e}"))?;
        // A label or a receipt without the patient's name and identifier identifies nobody
        // (issue #13, FACT: two identifiers on every label).
        for (field, value) in [
            ("patient.family_name", &self.patient.family_name),
            ("patient.given_name", &self.patient.given_name),
            ("patient.id", &self.patient.id),
        ] {
            if value.trim().is_empty() {
                return Err(format!("{field}: empty"));
            }
        }
        if self.order_id.trim().is_empty() {
            return Err("order_id: empty".to_owned());
        }
        let collection_type = match self.product.collection_type.as_bytes() {
            [t] if t.is_ascii_alphanumeric() => char::from(*t),
            _ => return Err("product.collection_type: one letter or digit".to_owned()),
        };
        let code = ProductCode::new(&self.product.code, collection_type, "00")
            .map_err(|e| format!("product.code: {e}"))?;
        let bags = u8::try_from(self.collection.bags)
            .ok()
            .filter(|n| (1..=MAX_BAGS).contains(n))
            .ok_or_else(|| {
                format!(
                    "collection.bags: 1-{MAX_BAGS} (ISBT 128 DIN flags number {MAX_BAGS} containers)"
                )
            })?;
        let scheduled_for = timestamp(&self.collection.scheduled_for)
            .ok_or("collection.scheduled_for: not an RFC 3339 time with an offset")?;
        let expires_at = match &self.expires_at {
            None => None,
            Some(text) => {
                Some(timestamp(text).ok_or("expires_at: not an RFC 3339 time with an offset")?)
            }
        };
        let date_of_birth = iso_date(&self.patient.date_of_birth)
            .ok_or("patient.date_of_birth: not a YYYY-MM-DD date")?;
        for (field, facility) in [
            ("collection.facility", &self.collection.facility),
            ("manufacturing.facility", &self.manufacturing.facility),
        ] {
            if facility.site_id.trim().is_empty() {
                return Err(format!("{field}.site_id: empty"));
            }
        }
        if self.collection.time_zone.trim().is_empty() {
            return Err("collection.time_zone: empty".to_owned());
        }
        let testing = self
            .collection
            .testing
            .map(TestingRecord::check)
            .transpose()?;
        let volume_ml = match self.collection.volume_ml {
            None => None,
            Some(ml) => Some(
                u16::try_from(ml)
                    .ok()
                    .filter(|ml| (1..=5000).contains(ml))
                    .ok_or("collection.volume_ml: 1-5000")?,
            ),
        };
        Ok(Order {
            coi,
            order_id: self.order_id,
            status: self.status,
            patient: Patient {
                family_name: self.patient.family_name,
                given_name: self.patient.given_name,
                date_of_birth,
                id: self.patient.id,
                id_label: self.patient.id_label,
            },
            therapy: self.therapy,
            product: Product {
                code,
                description: self.product.description,
            },
            collection: Collection {
                din,
                facility: self.collection.facility,
                scheduled_for,
                time_zone: self.collection.time_zone,
                bags,
                testing,
                volume_ml,
            },
            manufacturing: self.manufacturing.facility,
            manufacturing_time_zone: self.manufacturing.time_zone,
            expires_at,
        })
    }
}

fn timestamp(text: &str) -> Option<jiff::Timestamp> {
    text.parse().ok()
}

fn iso_date(text: &str) -> Option<CalendarDate> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let year = text.get(..4)?.parse().ok()?;
    let month = text.get(5..7)?.parse().ok()?;
    let day = text.get(8..)?.parse().ok()?;
    CalendarDate::new(year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_blanked_in_serde_messages() {
        assert_eq!(
            without_values("invalid type: string \"Pat Example\", expected u32 at line 3"),
            "invalid type: string \"…\", expected u32 at line 3"
        );
        assert_eq!(without_values("missing field `coi`"), "missing field `coi`");
        assert_eq!(
            without_values("invalid type: integer `1234567`, expected a string"),
            "invalid type: integer `…`, expected a string"
        );
    }

    #[test]
    fn iso_dates() {
        assert_eq!(iso_date("1984-02-29"), CalendarDate::new(1984, 2, 29));
        assert_eq!(iso_date("1983-02-29"), None);
        assert_eq!(iso_date("84-02-29"), None);
        assert_eq!(iso_date("1984/02/29"), None);
    }
}

//! What one label says: the order record's fields and the ISBT 128 values computed from them by
//! issue 2's builders, for one bag of one collection at one collection time. Templates reach
//! these values only through [`KEYS`] and [`Symbol`]; nothing else of the order is printable.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::template::{Identifier, Symbol};
use crate::isbt128::date::{CalendarDate, DateRole, DateTime};
use crate::isbt128::din::{DinFlags, Donation, FlagKind, MAX_CONTAINERS};
use crate::isbt128::product::ProductCode;
use crate::isbt128::structure::{Value, compound_message};
use crate::orders::record::{Order, OrderStatus, Testing};

/// Every placeholder a text element may use.
pub const KEYS: &[&str] = &[
    "order.id",
    "coi",
    "din",
    "patient.family_name",
    "patient.given_name",
    "patient.date_of_birth",
    "patient.id",
    "patient.id_label",
    "therapy.name",
    "therapy.sponsor",
    "therapy.protocol",
    "product.code",
    "product.description",
    "collection.facility.name",
    "collection.facility.fin",
    "collection.at",
    "collection.at_utc",
    "manufacturing.facility.name",
    "manufacturing.facility.fin",
    "expiry.at",
    "expiry.at_utc",
    "bag",
    "bags",
    "collection.volume",
    "testing.statement",
    "testing.biohazard",
];

/// Why an order cannot be labelled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DataError(pub String);

/// The values of one label.
#[derive(Debug, Clone)]
pub struct LabelData<'a> {
    order: &'a Order,
    bag: u8,
    donation: Donation,
    product: ProductCode,
    collected: DateTime,
    collected_text: String,
    collected_utc: String,
    expiry: Option<(DateTime, String, String)>,
}

impl<'a> LabelData<'a> {
    /// The values for bag `bag` (1-based) of `order`, collected at `collected_at`; dates print in
    /// the collection site's time zone.
    ///
    /// # Errors
    /// A cancelled or held order, a DIN assigned by another facility than the collection
    /// facility, a bag outside 1..=bags, an unknown time zone, or a value the builders refuse. Messages
    /// name the field, never patient data.
    pub fn new(
        order: &'a Order,
        bag: u8,
        collected_at: Timestamp,
    ) -> Result<LabelData<'a>, DataError> {
        if matches!(order.status, OrderStatus::Cancelled | OrderStatus::OnHold) {
            return Err(DataError(format!(
                "the order is {}: no label is made for it",
                order.status.as_str()
            )));
        }
        // The DIN names the facility that assigned it; a label that says "collected by" one FIN
        // under a DIN of another contradicts itself.
        let din_facility = order.collection.din.facility();
        if din_facility != order.collection.facility.fin {
            return Err(DataError(format!(
                "collection.din was assigned by facility {din_facility}, but collection.facility.fin is {}",
                order.collection.facility.fin.escape_debug()
            )));
        }
        // 21 CFR 1271.90(c): the label says whether the donor was tested and what was found;
        // nothing the data does not say is printed (issue #20).
        if order.collection.testing.is_none() {
            return Err(DataError(
                "the order has no collection.testing (the donor's infectious-disease testing: untested, non_reactive or reactive), which the label must state: ask the central service to complete the order, then sync orders".to_owned(),
            ));
        }
        let bags = order.collection.bags;
        if bag == 0 || bag > bags {
            return Err(DataError(format!(
                "bag {bag} does not exist: the collection has {bags} bag(s)"
            )));
        }
        // ST-001 Table 3: containers 1–4 are 01–04, 5–9 are 15–19 (05–14 are tubes and
        // other labels); there is no flag for a tenth container.
        let flags = DinFlags::container(bag).ok_or_else(|| {
            DataError(format!(
                "bag {bag}: ISBT 128 DIN flags number containers 1 to {MAX_CONTAINERS} only (ST-001 Table 3); this collection cannot be labelled bag by bag"
            ))
        })?;
        let donation = Donation::new(order.collection.din, flags)
            .map_err(|e| DataError(format!("DIN flags for bag {bag}: {e}")))?;
        let product = order.product.code;
        let zone = TimeZone::get(&order.collection.time_zone).map_err(|_| {
            DataError("collection.time_zone: not a known IANA time zone".to_owned())
        })?;
        let (collected, collected_text, collected_utc) = local(collected_at, &zone)?;
        let expiry = order.expires_at.map(|at| local(at, &zone)).transpose()?;
        Ok(LabelData {
            order,
            bag,
            donation,
            product,
            collected,
            collected_text,
            collected_utc,
            expiry,
        })
    }

    /// The same label's values on a sample tube drawn from this bag: the DIN carries flags
    /// `07` (ST-001 Table 3, a test tube) instead of the container's, so no reader takes the
    /// tube for the bag; the text still says which bag it came from.
    pub fn sample_tube(&self) -> LabelData<'a> {
        LabelData {
            donation: Donation::sample_tube(self.donation.din()),
            ..self.clone()
        }
    }

    /// The text of placeholder `key`: `None` when the order has no such value (no expiry).
    /// Keys are checked against [`KEYS`] when a template is parsed.
    pub fn text(&self, key: &str) -> Option<String> {
        let o = self.order;
        let expiry = self.expiry.as_ref();
        Some(match key {
            "order.id" => o.order_id.clone(),
            "coi" => o.coi.grouped(),
            "din" => o.collection.din.grouped(),
            "patient.family_name" => o.patient.family_name.clone(),
            "patient.given_name" => o.patient.given_name.clone(),
            "patient.date_of_birth" => o.patient.date_of_birth.to_string(),
            "patient.id" => o.patient.id.clone(),
            "patient.id_label" => o.patient.id_label.clone(),
            "therapy.name" => o.therapy.name.clone(),
            "therapy.sponsor" => o.therapy.sponsor.clone(),
            "therapy.protocol" => o.therapy.protocol.clone(),
            "product.code" => format!(
                "{} {} {}",
                self.product.description_code(),
                self.product.collection_type().unwrap_or(' '),
                self.product.division().unwrap_or("")
            ),
            "product.description" => o.product.description.clone(),
            "collection.facility.name" => o.collection.facility.name.clone(),
            "collection.facility.fin" => o.collection.facility.fin.clone(),
            "collection.at" => self.collected_text.clone(),
            "collection.at_utc" => self.utc(&self.collected_utc)?,
            "manufacturing.facility.name" => o.manufacturing.name.clone(),
            "manufacturing.facility.fin" => o.manufacturing.fin.clone(),
            "expiry.at" => expiry?.1.clone(),
            "expiry.at_utc" => self.utc(&expiry?.2)?,
            "bag" => self.bag.to_string(),
            "bags" => o.collection.bags.to_string(),
            // A line to write on when the order does not say (FACT: volume at collection).
            "collection.volume" => match o.collection.volume_ml {
                Some(ml) => format!("{ml} mL"),
                None => "______ mL".to_owned(),
            },
            "testing.statement" => match o.collection.testing.as_ref()? {
                Testing::Untested => "NOT EVALUATED FOR INFECTIOUS SUBSTANCES".to_owned(),
                Testing::NonReactive => return None,
                // Markers as the laboratory names them (HBsAg, not HBSAG).
                Testing::Reactive(markers) => {
                    format!("WARNING: REACTIVE TEST RESULTS FOR {}", markers.join(", "))
                }
            },
            "testing.biohazard" => match o.collection.testing.as_ref()? {
                Testing::NonReactive => return None,
                Testing::Untested | Testing::Reactive(_) => "BIOHAZARD".to_owned(),
            },
            _ => return None,
        })
    }

    /// The payload of `symbol`, built by the ISBT 128 builders: `None` when the order has no
    /// such value (no expiry).
    ///
    /// # Errors
    /// A value the builders refuse.
    pub fn symbol(&self, symbol: Symbol) -> Result<Option<String>, DataError> {
        let values: Vec<Value<'_>> = match symbol {
            Symbol::Din => vec![Value::Donation(self.donation)],
            Symbol::Product => vec![Value::ProductCode(self.product)],
            Symbol::Collection => vec![Value::DateTime(DateRole::Collection, self.collected)],
            Symbol::Expiry => match &self.expiry {
                Some((at, ..)) => vec![Value::DateTime(DateRole::Expiration, *at)],
                None => return Ok(None),
            },
            Symbol::Coi => vec![Value::Coi(self.order.coi)],
            Symbol::Compound => {
                let mut values = vec![
                    Value::Donation(self.donation),
                    Value::ProductCode(self.product),
                    Value::DateTime(DateRole::Collection, self.collected),
                    Value::Coi(self.order.coi),
                ];
                if let Some((at, ..)) = &self.expiry {
                    values.push(Value::DateTime(DateRole::Expiration, *at));
                }
                return compound_message(&values)
                    .map(Some)
                    .map_err(|e| DataError(format!("{}: {e}", symbol.name())));
            }
            Symbol::Identity => {
                return compound_message(&[
                    Value::Donation(self.donation),
                    Value::Coi(self.order.coi),
                ])
                .map(Some)
                .map_err(|e| DataError(format!("{}: {e}", symbol.name())));
            }
        };
        values[0]
            .encode()
            .map(Some)
            .map_err(|e| DataError(format!("{}: {e}", symbol.name())))
    }

    /// A time in UTC, only for a product that crosses time zones (ST-001 §7.4.4.2): unless the
    /// order says the manufacturing site keeps the collection site's zone.
    fn utc(&self, text: &str) -> Option<String> {
        let o = self.order;
        let same_zone = o.manufacturing_time_zone.as_deref() == Some(&o.collection.time_zone);
        (!same_zone).then(|| text.to_owned())
    }

    /// An identifier's eye-readable parts: grouped text, the flags to print turned (none for
    /// flags `00` and check flags, which are never printed), and the check character.
    pub fn identifier(&self, of: Identifier) -> (String, Option<String>, char) {
        match of {
            Identifier::Din => {
                let din = self.donation.din();
                let flags = self.donation.flags();
                let printed = match flags.kind() {
                    FlagKind::NotUsed | FlagKind::Check => None,
                    _ => Some(flags.as_str().to_owned()),
                };
                (din.grouped(), printed, din.check_character().as_char())
            }
            Identifier::Coi => {
                let coi = self.order.coi;
                (coi.grouped(), None, coi.check_character().as_char())
            }
        }
    }
}

/// `at` as an ISBT 128 local date-time in `zone` and as eye-readable local and UTC text.
fn local(at: Timestamp, zone: &TimeZone) -> Result<(DateTime, String, String), DataError> {
    let zoned = at.to_zoned(zone.clone());
    let date = u16::try_from(zoned.year())
        .ok()
        .and_then(|year| {
            CalendarDate::new(
                year,
                u8::try_from(zoned.month()).ok()?,
                u8::try_from(zoned.day()).ok()?,
            )
        })
        .and_then(|date| {
            DateTime::new(
                date,
                u8::try_from(zoned.hour()).ok()?,
                u8::try_from(zoned.minute()).ok()?,
            )
        })
        .ok_or_else(|| DataError("a date outside the years ISBT 128 can carry".to_owned()))?;
    Ok((
        date,
        zoned.strftime("%Y-%m-%d %H:%M %Z").to_string(),
        at.to_zoned(TimeZone::UTC)
            .strftime("%Y-%m-%d %H:%M UTC")
            .to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Order {
        let text = include_str!("../../tests/data/example-orders.json");
        let json: serde_json::Value = serde_json::from_str(text).unwrap();
        crate::orders::record::parse_order(&json["orders"][0], 0).unwrap()
    }

    #[test]
    fn values_of_bag_two() {
        let order = example();
        let at: Timestamp = "2025-06-02T12:14:00Z".parse().unwrap();
        let data = LabelData::new(&order, 2, at).unwrap();
        assert_eq!(data.text("collection.at").unwrap(), "2025-06-02 08:14 EDT");
        // The manufacturing site keeps the collection site's zone: no UTC (ST-001 §7.4.4.2).
        assert_eq!(data.text("collection.at_utc"), None);
        let mut abroad = order.clone();
        abroad.manufacturing_time_zone = Some("Europe/Amsterdam".to_owned());
        let data_abroad = LabelData::new(&abroad, 2, at).unwrap();
        assert_eq!(
            data_abroad.text("collection.at_utc").unwrap(),
            "2025-06-02 12:14 UTC"
        );
        abroad.manufacturing_time_zone = None;
        let unknown = LabelData::new(&abroad, 2, at).unwrap();
        assert!(unknown.text("expiry.at_utc").is_some(), "unknown: UTC too");
        assert_eq!(data.text("expiry.at").unwrap(), "2025-06-04 23:59 EDT");
        assert_eq!(data.text("product.code").unwrap(), "S1295 1 00");
        assert_eq!(data.text("coi").unwrap(), "CH A9999 25 000042");
        assert_eq!(
            data.symbol(Symbol::Din).unwrap().unwrap(),
            "=A99992512345602"
        );
        assert_eq!(data.symbol(Symbol::Product).unwrap().unwrap(), "=<S1295100");
        assert_eq!(
            data.symbol(Symbol::Collection).unwrap().unwrap(),
            "&*0251530814"
        );
        assert_eq!(
            data.symbol(Symbol::Expiry).unwrap().unwrap(),
            "&>0251552359"
        );
        assert_eq!(
            data.symbol(Symbol::Coi).unwrap().unwrap(),
            "&/CHA999925000042"
        );
        assert_eq!(
            data.symbol(Symbol::Compound).unwrap().unwrap(),
            "=+05000=A99992512345602=<S1295100&*0251530814&/CHA999925000042&>0251552359"
        );
        assert_eq!(
            data.symbol(Symbol::Identity).unwrap().unwrap(),
            "=+02000=A99992512345602&/CHA999925000042"
        );
        let (text, flags, check) = data.identifier(Identifier::Din);
        assert_eq!(
            (text.as_str(), flags.as_deref()),
            ("A9999 25 123456", Some("02"))
        );
        assert_eq!(check, order.collection.din.check_character().as_char());
    }

    #[test]
    fn a_bag_outside_the_collection_is_refused() {
        let order = example();
        let at = Timestamp::UNIX_EPOCH;
        assert!(LabelData::new(&order, 0, at).is_err());
        let err = LabelData::new(&order, 3, at).unwrap_err();
        assert_eq!(err.0, "bag 3 does not exist: the collection has 2 bag(s)");
    }

    #[test]
    fn a_din_from_another_facility_than_the_collections_is_refused() {
        let mut order = example();
        order.collection.facility.fin = "A9998".to_owned();
        let err = LabelData::new(&order, 1, Timestamp::UNIX_EPOCH).unwrap_err();
        assert_eq!(
            err.0,
            "collection.din was assigned by facility A9999, but collection.facility.fin is A9998"
        );
    }

    #[test]
    fn a_cancelled_order_gets_no_label() {
        let mut order = example();
        order.status = OrderStatus::Cancelled;
        let err = LabelData::new(&order, 1, Timestamp::UNIX_EPOCH).unwrap_err();
        assert!(err.0.starts_with("the order is cancelled"), "{err}");
    }

    #[test]
    fn an_order_without_expiry_has_no_expiry_values() {
        let mut order = example();
        order.expires_at = None;
        let at: Timestamp = "2025-06-02T12:14:00Z".parse().unwrap();
        let data = LabelData::new(&order, 1, at).unwrap();
        assert_eq!(data.text("expiry.at"), None);
        assert_eq!(data.symbol(Symbol::Expiry).unwrap(), None);
        assert!(
            !data
                .symbol(Symbol::Compound)
                .unwrap()
                .unwrap()
                .contains("&>")
        );
    }

    #[test]
    fn every_key_has_a_value() {
        let mut order = example();
        order.manufacturing_time_zone = None;
        let data = LabelData::new(&order, 1, Timestamp::UNIX_EPOCH).unwrap();
        for key in KEYS {
            assert!(data.text(key).is_some(), "{key}");
        }
    }

    /// Issue #20: the infectious-substance statement comes from the order, and no label is made
    /// without it; the volume is the order's or a line to write on.
    #[test]
    fn the_testing_statement_and_volume_come_from_the_order() {
        let mut order = example();
        let at = Timestamp::UNIX_EPOCH;
        let says = |order: &Order, key: &str| LabelData::new(order, 1, at).unwrap().text(key);
        assert_eq!(
            says(&order, "testing.statement").as_deref(),
            Some("NOT EVALUATED FOR INFECTIOUS SUBSTANCES")
        );
        assert_eq!(
            says(&order, "testing.biohazard").as_deref(),
            Some("BIOHAZARD")
        );
        assert_eq!(
            says(&order, "collection.volume").as_deref(),
            Some("______ mL")
        );
        order.collection.testing = Some(Testing::Reactive(vec!["HBsAg".into(), "Anti-HCV".into()]));
        order.collection.volume_ml = Some(180);
        assert_eq!(
            says(&order, "testing.statement").as_deref(),
            Some("WARNING: REACTIVE TEST RESULTS FOR HBsAg, Anti-HCV")
        );
        assert_eq!(says(&order, "collection.volume").as_deref(), Some("180 mL"));
        order.collection.testing = Some(Testing::NonReactive);
        assert_eq!(says(&order, "testing.statement"), None);
        assert_eq!(says(&order, "testing.biohazard"), None);
        order.collection.testing = None;
        let err = LabelData::new(&order, 1, at).unwrap_err();
        assert!(
            err.0.starts_with("the order has no collection.testing"),
            "{err}"
        );
    }
}

//! Property tests of the ISBT 128 core: the check character catches every single substitution
//! and adjacent transposition, every builder round-trips through the parser, and no input
//! makes the parser panic.

#![allow(clippy::unwrap_used)] // test helpers fail loudly; that is their job

use proptest::prelude::*;

use coi_agent::isbt128::coi::CoiId;
use coi_agent::isbt128::date::{CalendarDate, DateRole, DateTime, FlexibleDateTime, ZoneFlag};
use coi_agent::isbt128::din::{Din, DinFlags, Donation, FlagKind};
use coi_agent::isbt128::message;
use coi_agent::isbt128::product::{ProductCode, ProductDivisions};
use coi_agent::isbt128::structure::{
    BloodGroups, ExpirationMonth, PatientDateOfBirth, PatientId, Value, compound_message,
};

const FIN_FIRST: &str = "ABCDEFGHIJKLMNPQRSTUVWXYZ123456789";
const FIN_REST: &str = "ABCDEFGHIJKLMNPQRSTUVWXYZ0123456789";
const DIGITS: &str = "0123456789";
const UPPER_DIGITS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

fn chars_from(set: &'static str, n: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(set.as_bytes().to_vec()), n)
        .prop_map(|bytes| String::from_utf8(bytes).unwrap())
}

/// The characters allowed at each of the 13 positions of a DIN.
fn din_position_set(position: usize) -> &'static str {
    match position {
        0 => FIN_FIRST,
        1 | 2 => FIN_REST,
        _ => DIGITS,
    }
}

fn din_text() -> impl Strategy<Value = String> {
    (
        chars_from(FIN_FIRST, 1),
        chars_from(FIN_REST, 2),
        chars_from(DIGITS, 10),
    )
        .prop_map(|(a, b, c)| format!("{a}{b}{c}"))
}

fn coi_text() -> impl Strategy<Value = String> {
    (
        chars_from(FIN_FIRST, 1),
        chars_from(FIN_REST, 2),
        chars_from(DIGITS, 4),
        chars_from(UPPER_DIGITS, 6),
    )
        .prop_map(|(a, b, c, d)| format!("CH{a}{b}{c}{d}"))
}

fn date() -> impl Strategy<Value = CalendarDate> {
    (2000u16..=2999, 1u16..=366).prop_filter_map("past the year's end", |(y, d)| {
        CalendarDate::from_ordinal(y, d)
    })
}

fn date_time() -> impl Strategy<Value = DateTime> {
    (date(), 0u8..24, 0u8..60).prop_map(|(d, h, m)| DateTime::new(d, h, m).unwrap())
}

fn role() -> impl Strategy<Value = DateRole> {
    prop_oneof![
        Just(DateRole::Expiration),
        Just(DateRole::Collection),
        Just(DateRole::Production)
    ]
}

fn flags() -> impl Strategy<Value = Option<DinFlags>> {
    // None: the DIN's own Type 3 check flags.
    prop_oneof![
        Just(None),
        (0u8..60).prop_map(DinFlags::from_value),
        (97u8..100).prop_map(DinFlags::from_value),
    ]
}

/// Round trip: encode, parse, and compare the single structure's value.
fn round_trip(value: Value<'_>) -> Result<(), TestCaseError> {
    let data = value
        .encode()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let message =
        message::parse(data.as_bytes()).map_err(|e| TestCaseError::fail(format!("{data}: {e}")))?;
    prop_assert_eq!(message.structures.len(), 1, "{}", data);
    prop_assert_eq!(message.structures[0].value, value, "{}", data);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_single_substitution_changes_the_check(din in din_text(), pos in 0usize..13, pick in any::<prop::sample::Index>()) {
        let original = Din::parse(&din).unwrap();
        let set = din_position_set(pos).as_bytes();
        let replacement = set[pick.index(set.len())];
        prop_assume!(replacement != din.as_bytes()[pos]);
        let mut changed = din.clone().into_bytes();
        changed[pos] = replacement;
        let changed = Din::parse(std::str::from_utf8(&changed).unwrap()).unwrap();
        prop_assert_ne!(original.check_character(), changed.check_character());
    }

    #[test]
    fn any_adjacent_transposition_changes_the_check(din in din_text(), pos in 0usize..12) {
        let bytes = din.as_bytes();
        prop_assume!(bytes[pos] != bytes[pos + 1]);
        let mut swapped = bytes.to_vec();
        swapped.swap(pos, pos + 1);
        let original = Din::parse(&din).unwrap();
        // A swap that puts a letter where only digits may stand is not a DIN at all.
        let swapped = Din::parse(std::str::from_utf8(&swapped).unwrap());
        prop_assume!(swapped.is_ok());
        let swapped = swapped.unwrap();
        prop_assert_ne!(original.check_character(), swapped.check_character());
    }

    #[test]
    fn coi_check_catches_transpositions_anywhere(coi in coi_text(), pos in 2usize..14) {
        let bytes = coi.as_bytes();
        prop_assume!(bytes[pos] != bytes[pos + 1]);
        let mut swapped = bytes.to_vec();
        swapped.swap(pos, pos + 1);
        let original = CoiId::parse(&coi).unwrap();
        let swapped = CoiId::parse(std::str::from_utf8(&swapped).unwrap());
        prop_assume!(swapped.is_ok());
        let swapped = swapped.unwrap();
        prop_assert_ne!(original.check_character(), swapped.check_character());
    }

    #[test]
    fn donation_round_trips(din in din_text(), flags in flags()) {
        let din = Din::parse(&din).unwrap();
        let donation = match flags {
            None => Donation::with_check_flags(din),
            Some(flags) => Donation::new(din, flags).unwrap(),
        };
        if flags.is_none() {
            prop_assert_eq!(donation.flags().kind(), FlagKind::Check);
        }
        round_trip(Value::Donation(donation))?;
    }

    #[test]
    fn coi_round_trips(coi in coi_text()) {
        round_trip(Value::Coi(CoiId::parse(&coi).unwrap()))?;
    }

    #[test]
    fn product_code_round_trips(
        family in proptest::sample::select(vec!['E', 'F', 'H', 'S', 'P', 'Y']),
        rest in chars_from(UPPER_DIGITS, 4),
        collection_type in proptest::sample::select(UPPER_DIGITS.chars().collect::<Vec<_>>()),
        d in chars_from(UPPER_DIGITS, 1),
        s in chars_from("abcdefghijklmnopqrstuvwxyz0123456789", 1),
    ) {
        let code = ProductCode::new(&format!("{family}{rest}"), collection_type, &format!("{d}{s}")).unwrap();
        prop_assert_eq!(code.collection_type(), Some(collection_type));
        round_trip(Value::ProductCode(code))?;
    }

    #[test]
    fn dates_round_trip(role in role(), at in date_time()) {
        round_trip(Value::Date(role, at.date))?;
        round_trip(Value::DateTime(role, at))?;
        let zone = if at.minute() % 2 == 0 { ZoneFlag::Local } else { ZoneFlag::Utc };
        round_trip(Value::FlexibleDateTime(FlexibleDateTime::new(zone, role, at)))?;
    }

    #[test]
    fn patient_structures_round_trip(location in 0u8..100, d in date(), id in "[A-Za-z0-9]{1,99}") {
        round_trip(Value::PatientDateOfBirth(PatientDateOfBirth::new(location, d).unwrap()))?;
        round_trip(Value::PatientId(PatientId::new(location, &id).unwrap()))?;
    }

    #[test]
    fn small_structures_round_trip(year in 1u16..=9999, month in 1u8..=12, divisions in chars_from(UPPER_DIGITS, 6), groups in "[A-Za-z0-9]{2}[A-Z0-9]0") {
        round_trip(Value::ExpirationMonth(ExpirationMonth::new(year, month).unwrap()))?;
        round_trip(Value::ProductDivisions(ProductDivisions::parse(&divisions).unwrap()))?;
        round_trip(Value::BloodGroups(BloodGroups::parse(&groups).unwrap()))?;
    }

    #[test]
    fn compound_messages_round_trip(din in din_text(), coi in coi_text(), at in date_time(), n in 1usize..=4) {
        let values = [
            Value::Donation(Donation::with_check_flags(Din::parse(&din).unwrap())),
            Value::ProductCode(ProductCode::new("S1295", '1', "00").unwrap()),
            Value::DateTime(DateRole::Collection, at),
            Value::Coi(CoiId::parse(&coi).unwrap()),
        ];
        let data = compound_message(&values[..n]).unwrap();
        let message = message::parse(data.as_bytes()).unwrap();
        prop_assert_eq!(message.compound_header().map(|h| h.count()), Some(n));
        let parsed: Vec<Value<'_>> = message.data_structures().iter().map(|s| s.value).collect();
        prop_assert_eq!(&parsed[..], &values[..n]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = message::parse(&data);
    }

    /// Bytes drawn from ISBT 128's own alphabet reach far deeper into the parser than noise.
    #[test]
    fn isbt_like_data_never_panics(data in "(\\]C[0-4]|\\]d[12])?([=&][A-Z0-9%<>*}(+#,/;:$\"'\\-\\]\\[\\\\{)!a-z]?[0-9A-Za-z]{0,20}){0,5}") {
        let res = message::parse(data.as_bytes());
        if let Ok(message) = res {
            // Whatever parses must cover the data exactly, structure after structure.
            let mut rebuilt = message.symbology.map(|s| s.as_str().to_owned()).unwrap_or_default();
            for s in &message.structures {
                rebuilt.push_str(s.data_identifier());
                let skip = usize::from(s.spec.number == Some("001"));
                rebuilt.push_str(&s.content()[skip..]);
            }
            prop_assert_eq!(&rebuilt, &data);
            // And every value coi-agent interprets re-encodes to exactly the bytes it was read from.
            for s in &message.structures {
                if let Ok(encoded) = s.value.encode() {
                    prop_assert_eq!(&data[s.offset..s.offset + encoded.len()], encoded.as_str());
                }
            }
        }
    }
}

#[test]
fn builders_refuse_what_cyy_cannot_express() {
    let date = CalendarDate::new(1999, 12, 31).unwrap();
    let err = Value::Date(DateRole::Expiration, date)
        .encode()
        .unwrap_err();
    assert_eq!(err.kind(), "cannot_build");
    assert!(err.to_string().contains("1999"), "{err}");
}

#[test]
fn compound_builder_refuses_empty_and_nested() {
    assert!(compound_message(&[]).is_err());
    let header = message::parse(b"=+01000&/CHA999925000042")
        .unwrap()
        .structures[0]
        .value;
    assert!(compound_message(&[header]).is_err());
}

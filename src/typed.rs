//! Typed entry (issue #17): the DIN and the COI identifier typed as a person reads them off the
//! label — grouped, each with its boxed MOD 37-2 check character (`A9999 25 123456 K`,
//! `CH A9999 25 000042 Z`, spaces optional) — checked before anything else, then turned into
//! the data a scanner would have sent for the bag the person chose from the order's list. The
//! flags are never typed: a typed flag digit is the one character no check protects. Pure: no
//! I/O.

use crate::isbt128::coi::CoiId;
use crate::isbt128::din::{Din, DinFlags, Donation, MAX_CONTAINERS};
use crate::isbt128::structure::{Value, compound_message};

/// What the typed identifiers are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chosen {
    /// Bag `n`, chosen from the order's list.
    Bag(u8),
    /// No bag chosen: right only for a one-bag order.
    Unchosen,
    /// A sample tube of the collection.
    Sample,
}

/// Why typed identifiers are refused (before any order is looked at; nothing is recorded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypedError {
    #[error("the {0} was typed without its boxed check character: type the boxed character too")]
    MissingCheck(&'static str),
    #[error(
        "the {0}'s boxed check character does not fit what was typed: check every character, and type the boxed character too"
    )]
    WrongCheck(&'static str),
    #[error("the {what} is not one as printed on a label: {problem}")]
    Malformed { what: &'static str, problem: String },
    #[error("bag {0}: choose a bag from 1 to {MAX_CONTAINERS} from the order's list")]
    NoSuchBag(u8),
}

impl TypedError {
    /// The verdict reason code the refusal stands for (`bad_check`, or `not_isbt128`).
    pub fn code(&self) -> &'static str {
        match self {
            TypedError::MissingCheck(_) | TypedError::WrongCheck(_) => "bad_check",
            TypedError::Malformed { .. } | TypedError::NoSuchBag(_) => "not_isbt128",
        }
    }
}

/// The identifier and its check character from typed text: spaces and hyphens dropped, letters
/// upper-cased, the last character the check.
fn split(text: &str, len: usize, what: &'static str) -> Result<(String, char), TypedError> {
    let packed: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if !packed.is_ascii() {
        return Err(TypedError::Malformed {
            what,
            problem: "letters A-Z and digits only".to_owned(),
        });
    }
    match packed.len() {
        n if n == len => Err(TypedError::MissingCheck(what)),
        n if n == len + 1 => {
            let check = char::from(packed.as_bytes()[len]);
            Ok((packed[..len].to_owned(), check))
        }
        n => Err(TypedError::Malformed {
            what,
            problem: format!(
                "{len} characters and the boxed check character, found {n} characters"
            ),
        }),
    }
}

/// A typed DIN (`A9999 25 123456 K`), its check character verified.
///
/// # Errors
/// No check character, a wrong one, or not a DIN.
pub fn din(text: &str) -> Result<Din, TypedError> {
    let (id, check) = split(text, 13, "DIN")?;
    let din = Din::parse(&id).map_err(|e| TypedError::Malformed {
        what: "DIN",
        problem: e.to_string(),
    })?;
    if din.check_character().as_char() != check {
        return Err(TypedError::WrongCheck("DIN"));
    }
    Ok(din)
}

/// A typed COI identifier (`CH A9999 25 000042 Z`), its check character verified.
///
/// # Errors
/// No check character, a wrong one, or not a COI identifier.
pub fn coi(text: &str) -> Result<CoiId, TypedError> {
    let (id, check) = split(text, 15, "COI identifier")?;
    let coi = CoiId::parse(&id).map_err(|e| TypedError::Malformed {
        what: "COI identifier",
        problem: e.to_string(),
    })?;
    if coi.check_character().as_char() != check {
        return Err(TypedError::WrongCheck("COI identifier"));
    }
    Ok(coi)
}

/// The data a scanner would send for the typed identifiers on `chosen`: a DS 023 compound
/// message of the DIN (with the chosen bag's container flags, `00` when none was chosen, `07`
/// for a sample) and the COI identifier, judged like any other scan.
///
/// # Errors
/// Either identifier refused (see [`din`], [`coi`]), or a bag Table 3 cannot number.
pub fn scan_data(din_text: &str, coi_text: &str, chosen: Chosen) -> Result<String, TypedError> {
    let din = din(din_text)?;
    let coi = coi(coi_text)?;
    let donation = match chosen {
        Chosen::Bag(n) => DinFlags::container(n)
            .and_then(|flags| Donation::new(din, flags).ok())
            .ok_or(TypedError::NoSuchBag(n))?,
        Chosen::Unchosen => {
            Donation::new(din, DinFlags::NOT_USED).map_err(|e| TypedError::Malformed {
                what: "DIN",
                problem: e.to_string(),
            })?
        }
        Chosen::Sample => Donation::sample_tube(din),
    };
    compound_message(&[Value::Donation(donation), Value::Coi(coi)]).map_err(|e| {
        TypedError::Malformed {
            what: "DIN and COI identifier",
            problem: e.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_identifiers_need_their_boxed_check_characters() {
        let din_text = Din::parse("A999925123456").unwrap();
        let k = din_text.check_character().as_char();
        assert_eq!(din(&format!("A9999 25 123456 {k}")), Ok(din_text));
        assert_eq!(din(&format!("a999925123456{k}")), Ok(din_text));
        assert_eq!(din("A9999 25 123456"), Err(TypedError::MissingCheck("DIN")));
        let wrong = if k == 'A' { 'B' } else { 'A' };
        assert_eq!(
            din(&format!("A9999 25 123456 {wrong}")),
            Err(TypedError::WrongCheck("DIN"))
        );
        let coi_id = CoiId::parse("CHA999925000042").unwrap();
        let z = coi_id.check_character().as_char();
        assert_eq!(coi(&format!("CH A9999 25 000042 {z}")), Ok(coi_id));
        assert_eq!(
            coi("CH A9999 25 000042"),
            Err(TypedError::MissingCheck("COI identifier"))
        );
        assert!(matches!(
            coi("CH A9999 25 00004é2 Z"),
            Err(TypedError::Malformed { .. })
        ));
        let data = scan_data(
            &format!("A9999 25 123456 {k}"),
            &format!("CH A9999 25 000042 {z}"),
            Chosen::Bag(5),
        )
        .unwrap();
        assert_eq!(data, "=+02000=A99992512345615&/CHA999925000042");
        assert_eq!(
            scan_data(
                &format!("A9999 25 123456 {k}"),
                &format!("CH A9999 25 000042 {z}"),
                Chosen::Bag(10)
            ),
            Err(TypedError::NoSuchBag(10))
        );
    }
}

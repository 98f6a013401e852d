//! Everything a scanner sends for one read, as ISBT 128: an optional AIM symbology identifier
//! (`]C0`, `]C4`, `]d1`, …), then one data structure, an ISBT concatenated pair, or a compound
//! message (`=+aabbb` and its structures). The framing itself (suffixes, timeouts) belongs to
//! the scanner adapter; this module gets the bytes of one frame.

use smallvec::SmallVec;

use super::error::Isbt128Error;
use super::field::At;
use super::spec::{self, ContentLength, Identified, Kind, Spec};
use super::structure::{CompoundHeader, Structure, Value, interpret};

/// The AIM symbology identifier that prefixed the data (ISO/IEC 15424).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Symbology([u8; 3]);

/// One read, parsed: every structure in the order it appears in the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    pub symbology: Option<Symbology>,
    /// For a compound message the header (DS 023) comes first, then the structures it counts.
    pub structures: Structures<'a>,
}

/// The structures of one read. A single structure (every linear barcode on a COI label) is
/// stored inline, so parsing such a scan does not allocate: an allocation costs as much as the
/// whole parse here, and a larger inline buffer makes every `Message` slower to return
/// (BENCHMARKS.md). Concatenated reads and compound messages allocate once.
pub type Structures<'a> = SmallVec<[Structure<'a>; 1]>;

impl Symbology {
    pub fn as_str(&self) -> &str {
        super::field::ascii(&self.0)
    }

    /// A name for the symbologies a COI workstation meets; `None` for others.
    pub fn name(&self) -> Option<&'static str> {
        Some(match &self.0 {
            b"]C0" => "Code 128",
            b"]C4" => "Code 128, ISBT 128 concatenated read",
            b"]d1" => "Data Matrix ECC 200",
            b"]Q1" => "QR Code",
            _ => return None,
        })
    }
}

impl Message<'_> {
    /// The compound message header, when the data is a compound message.
    pub fn compound_header(&self) -> Option<&CompoundHeader> {
        match self.structures.first().map(|s| &s.value) {
            Some(Value::CompoundHeader(header)) => Some(header),
            _ => None,
        }
    }

    /// The structures that carry data (a compound message's header left out).
    pub fn data_structures(&self) -> &[Structure<'_>] {
        let skip = usize::from(self.compound_header().is_some());
        &self.structures[skip..]
    }
}

/// Parses the bytes of one read.
///
/// Every structure is checked (identifier, length, characters, check flags, dates). A compound
/// message must hold exactly the number of structures its header declares; any error anywhere
/// makes the whole read an error, so no value from a bad read is ever used.
///
/// # Errors
/// The first problem found, with its offset.
pub fn parse(data: &[u8]) -> Result<Message<'_>, Isbt128Error> {
    // Every byte of valid data is checked against its field's character class, none of which
    // admits a control character, space or non-ASCII byte. So the data is parsed first, and
    // only a failed parse looks for such a byte, to report it ahead of whatever it broke.
    // A failed check stays a failed check: it says the data was read but is not what was
    // printed, which matters more than a stray byte around it.
    parse_checked(data).map_err(
        |err| match data.iter().position(|b| !b.is_ascii_graphic()) {
            Some(offset) if !err.is_check_failure() => Isbt128Error::NotPrintable {
                offset,
                byte: data[offset],
            },
            _ => err,
        },
    )
}

fn parse_checked(data: &[u8]) -> Result<Message<'_>, Isbt128Error> {
    if data.is_empty() {
        return Err(Isbt128Error::Empty);
    }
    let (symbology, start) = read_symbology(data)?;
    if start == data.len() {
        return Err(Isbt128Error::Empty);
    }
    let mut structures = Structures::new();
    let mut offset = start;
    while offset < data.len() {
        let structure = read_structure(data, offset, structures.last())?;
        offset += structure.identifier.len() + structure.content.len()
            - usize::from(structure.spec.kind == Kind::Din);
        if let Value::CompoundHeader(header) = structure.value {
            structures.reserve(header.count() + 1);
        }
        structures.push(structure);
    }
    if structures.len() > 1 || structures[0].spec.kind == Kind::CompoundMessage {
        check_compound(&structures)?;
    }
    if let Some(symbology) = symbology {
        check_symbology(symbology, &structures)?;
    }
    Ok(Message {
        symbology,
        structures,
    })
}

/// GS1 symbologies carry GS1 application identifiers, never ISBT 128 data.
const GS1: [(&[u8; 3], &str); 6] = [
    (b"]C1", "GS1-128"),
    (b"]d2", "GS1 DataMatrix"),
    (b"]Q3", "GS1 QR Code"),
    (b"]e0", "GS1 DataBar"),
    (b"]J1", "GS1 DotCode"),
    (b"]E0", "EAN/UPC"),
];

#[inline]
fn read_symbology(data: &[u8]) -> Result<(Option<Symbology>, usize), Isbt128Error> {
    if data[0] != b']' {
        return Ok((None, 0));
    }
    let Some(&[_, code, modifier]) = data.get(..3) else {
        return Err(Isbt128Error::TruncatedSymbology);
    };
    if !code.is_ascii_alphabetic() || !modifier.is_ascii_alphanumeric() {
        return Err(Isbt128Error::TruncatedSymbology);
    }
    let id = [b']', code, modifier];
    if let Some((identifier, name)) = GS1.iter().find(|(gs1, _)| **gs1 == id) {
        // The identifier is one of the literals above, so the text is exact.
        let identifier = match *identifier {
            b"]C1" => "]C1",
            b"]d2" => "]d2",
            b"]Q3" => "]Q3",
            b"]e0" => "]e0",
            b"]J1" => "]J1",
            _ => "]E0",
        };
        return Err(Isbt128Error::Gs1Symbology { identifier, name });
    }
    let symbology = Symbology(id);
    if symbology.name().is_none() {
        return Err(Isbt128Error::UnsupportedSymbology {
            identifier: symbology.as_str().to_owned(),
        });
    }
    Ok((Some(symbology), 3))
}

/// What each symbology may carry: a Code 128 symbol one structure, an ISBT concatenated read
/// two, a 2-D symbol one structure or a compound message. Anything else means the scanner is
/// misconfigured or the data is not what it claims to be.
fn check_symbology(symbology: Symbology, structures: &[Structure<'_>]) -> Result<(), Isbt128Error> {
    let compound = structures[0].spec.kind == Kind::CompoundMessage;
    let (ok, expected) = match &symbology.0 {
        b"]C0" => (structures.len() == 1 && !compound, "one data structure"),
        b"]C4" => (structures.len() == 2 && !compound, "two data structures"),
        _ => (
            structures.len() == 1 || compound,
            "one data structure or a compound message",
        ),
    };
    if ok {
        return Ok(());
    }
    Err(Isbt128Error::SymbologyMismatch {
        identifier: symbology.as_str().to_owned(),
        expected,
        found: structures.len(),
    })
}

/// Reads the structure that starts at `offset`.
#[inline]
fn read_structure<'a>(
    data: &'a [u8],
    offset: usize,
    previous: Option<&Structure<'_>>,
) -> Result<Structure<'a>, Isbt128Error> {
    let rest = &data[offset..];
    let identified = match spec::identify(rest, offset) {
        Err(Isbt128Error::NoDataIdentifier { .. }) if previous.is_some() => {
            return Err(Isbt128Error::TrailingData {
                offset,
                count: rest.len(),
                // `previous` is Some in this arm.
                after: previous.map_or(&spec::DIN, |p| p.spec),
            });
        }
        other => other?,
    };
    let Identified {
        spec,
        identifier_len,
        content_start,
    } = identified;
    let content_len = content_length(spec, &rest[content_start.min(rest.len())..], offset)?;
    // `content_length` checked that `rest` holds the content; `identify` that it holds the
    // identifier.
    let (Some(identifier), Some(content)) = (
        rest.get(..identifier_len),
        rest.get(content_start..content_start + content_len),
    ) else {
        return Err(Isbt128Error::WrongLength {
            spec,
            offset,
            expected: content_len,
            found: rest.len().saturating_sub(content_start),
        });
    };
    let value = interpret(At::new(spec, offset + content_start), content)?;
    Ok(Structure {
        spec,
        offset,
        identifier,
        content,
        value,
    })
}

/// How many content characters the structure has, checked against what is left.
#[inline]
fn content_length(spec: &'static Spec, rest: &[u8], offset: usize) -> Result<usize, Isbt128Error> {
    let wrong = |expected| Isbt128Error::WrongLength {
        spec,
        offset,
        expected,
        found: rest.len(),
    };
    let needed = match spec.length {
        ContentLength::Fixed(n) => n,
        ContentLength::Undefined => return Ok(rest.len()),
        ContentLength::PatientId => {
            let at = At::new(spec, offset + 2);
            let header = rest.get(..4).ok_or_else(|| wrong(4))?;
            at.number(&header[..2], 0, "location code")?;
            4 + at.number(&header[2..], 2, "length")? as usize
        }
        ContentLength::Repeated { count_digits, unit } => {
            let at = At::new(spec, offset + 2);
            let count = rest
                .get(..count_digits)
                .ok_or_else(|| wrong(count_digits))?;
            count_digits + at.number(count, 0, "count")? as usize * unit
        }
    };
    if rest.len() < needed {
        return Err(wrong(needed));
    }
    Ok(needed)
}

/// A compound message header must come first, count exactly what follows, and head only
/// structures defined by ICCBBA.
#[inline]
fn check_compound(structures: &[Structure<'_>]) -> Result<(), Isbt128Error> {
    if let Some(nested) = structures
        .iter()
        .skip(1)
        .find(|s| s.spec.kind == Kind::CompoundMessage)
    {
        return Err(Isbt128Error::CompoundHeaderNotFirst {
            offset: nested.offset,
        });
    }
    let Some(Value::CompoundHeader(header)) = structures.first().map(|s| s.value) else {
        return Ok(());
    };
    if let Some(national) = structures.iter().find(|s| s.spec.is_national()) {
        return Err(Isbt128Error::NotAllowedInCompound {
            spec: national.spec,
            offset: national.offset,
        });
    }
    let found = structures.len() - 1;
    if found != header.count() {
        return Err(Isbt128Error::CompoundCountMismatch {
            declared: header.count(),
            found,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `data` and returns, per structure, `number:content`, or the error message.
    fn check(data: &str) -> Result<Vec<String>, String> {
        let message = parse(data.as_bytes()).map_err(|e| e.to_string())?;
        Ok(message
            .structures
            .iter()
            .map(|s| format!("{}:{}", s.spec.number.unwrap_or("national"), s.content()))
            .collect())
    }

    fn check_err(data: &str, expected: &str) {
        match check(data) {
            Err(message) => assert!(message.contains(expected), "{data}: {message}"),
            Ok(found) => panic!("{data}: accepted as {found:?}, expected error {expected:?}"),
        }
    }

    #[test]
    fn empty_and_bare_symbology_are_errors() {
        check_err("", "no data");
        check_err("]C0", "no data");
        check_err("]C", "incomplete AIM symbology identifier");
        check_err("]1X=A99992212345600", "incomplete AIM symbology identifier");
    }

    #[test]
    fn symbologies_carry_what_they_should() {
        check_err("]A0=A99992212345600", "symbology ]A0 is not Code 128");
        check_err(
            "]C0=A99992212345600=%Ma00",
            "]C0 carries one data structure, found 2",
        );
        check_err(
            "]C4=A99992212345600",
            "]C4 carries two data structures, found 1",
        );
        check_err(
            "]C4=+01000=A99992212345600",
            "]C4 carries two data structures, found 2",
        );
        check_err(
            "]d1=A99992212345600&/CHA999925000042",
            "compound message, found 2",
        );
        assert!(check("]d1=+02000=A99992212345600&/CHA999925000042").is_ok());
        assert!(check("]d1&/CHA999925000042").is_ok());
        assert!(
            check("=A99992212345600=%Ma00").is_ok(),
            "AIM off: a concatenated read"
        );
    }

    #[test]
    fn a_check_failure_is_reported_even_with_a_stray_byte() {
        check_err("=G12341765432171\r", "DIN flags 71 do not match the check");
    }

    #[test]
    fn gs1_symbologies_are_refused_by_name() {
        check_err("]C1=A99992212345600", "symbology ]C1 is GS1 (GS1-128)");
        check_err(
            "]d2=A99992212345600",
            "symbology ]d2 is GS1 (GS1 DataMatrix)",
        );
    }

    #[test]
    fn offsets_count_the_aim_prefix() {
        check_err(
            "]C0=A999922123456",
            "at offset 3 has the wrong length: 13 content characters",
        );
        check_err(
            "]d1=A99a92212345600",
            "invalid character 'a' in the facility identification number at offset 7",
        );
        check_err(
            "]d1=A9999a212345600",
            "invalid character 'a' in the year at offset 9",
        );
    }

    #[test]
    fn unknown_and_non_isbt_data() {
        check_err("=O99992212345600", "unknown data identifier =O at offset 0");
        check_err("ABC", "no data identifier at offset 0");
        check_err("=", "data ends inside the data identifier at offset 0");
        check_err("=A99992212345600\r", "byte 0x0D at offset 16");
    }

    #[test]
    fn national_structures_are_opaque_but_not_in_compound_messages() {
        assert_eq!(
            check("&zLOCAL-123"),
            Ok(vec!["national:LOCAL-123".to_owned()])
        );
        check_err(
            "=+02000=A99992212345600&zX",
            "not allowed in a compound message",
        );
    }

    #[test]
    fn variable_length_structures_are_delimited_by_their_counts() {
        assert_eq!(
            check("&#0105PT042=A99992212345600"),
            Ok(vec![
                "025:0105PT042".to_owned(),
                "001:A99992212345600".to_owned()
            ])
        );
        check_err("&#0110PT042", "expected 14");
        assert_eq!(
            check("&$0112345678901234"),
            Ok(vec!["029:0112345678901234".to_owned()])
        );
        check_err("&%002ABCDEFGHIJ", "expected 23");
    }

    #[test]
    fn retired_and_not_interpreted_structures_are_recognised() {
        let message = parse(b"={123456789012345600").unwrap();
        assert!(message.structures[0].spec.retired);
        assert_eq!(message.structures[0].value, Value::NotInterpreted);
        // ST-001 §2.4.11: antigen codes are digits, retired or not.
        check_err(
            "={ABCDEFGHIJKLMNOP00",
            "invalid character 'A' in the antigens",
        );
    }

    #[test]
    fn compound_header_must_come_first_and_count_exactly() {
        check_err(
            "=A99992212345600=+01000&/CHA999925000042",
            "is not at the start",
        );
        check_err("=+00000", "declares 0 structures");
        check_err(
            "=+01000=A99992212345600&/CHA999925000042",
            "declares 1 structures, the message holds 2",
        );
    }

    #[test]
    fn dates_are_checked() {
        check_err("&>0253662359", "day 366 in 2025, which is not a leap year");
        assert!(check("&>0243662359").is_ok(), "2024 is a leap year");
        check_err("=>025000", "day of year 000 is not 001-365");
        check_err("&*0251002400", "time 24:00 is not 00:00-23:59");
        check_err("=(3002202406021408", "time zone flag '3'");
        check_err("=#0019840230", "the day is not a day of that month");
        check_err("&#0100", "the patient identification is empty");
        check_err("=(1004202406021408", "type of time 04");
    }

    #[test]
    fn trailing_characters_name_the_structure_before_them() {
        check_err(
            "=A9999221234560012",
            "2 unexpected characters at offset 16 after Donation Identification Number [001]",
        );
    }
}

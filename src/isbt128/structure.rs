//! One ISBT 128 data structure as read from data: what it is, where it was, its text, and its
//! typed value; and the builders that turn typed values back into barcode data (identifier
//! included), so no label assembles identifiers by string concatenation.

use std::fmt::Write as _;

use super::coi::CoiId;
use super::date::{
    self, CalendarDate, DateRole, DateTime, FlexibleDateTime, ZoneFlag, read_cyyjjj, read_hhmm,
    read_yyyymmdd,
};
use super::din::Donation;
use super::error::Isbt128Error;
use super::field::{ALPHANUMERIC, At, UPPER_OR_DIGIT, ascii, check_content};
use super::product::{ProductCode, ProductDivisions};
use super::spec::{self, Kind, Spec};

/// A data structure found in scanned data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Structure<'a> {
    pub spec: &'static Spec,
    /// Offset of the data identifier in the data as read (AIM prefix included).
    pub offset: usize,
    /// The identifier as read; see [`Structure::data_identifier`].
    pub(crate) identifier: &'a [u8],
    /// The content as read; see [`Structure::content`].
    pub(crate) content: &'a [u8],
    pub value: Value<'a>,
}

impl<'a> Structure<'a> {
    /// The identifier as read: `=A` for a DIN, `&/`, `&,1`, `&x` for a national structure.
    pub fn data_identifier(&self) -> &'a str {
        ascii(self.identifier)
    }

    /// The content after the identifier (for a DIN, all 15 characters `αppppyynnnnnnff`).
    pub fn content(&self) -> &'a str {
        ascii(self.content)
    }
}

/// The typed value of a structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Donation(Donation),
    BloodGroups(BloodGroups),
    ProductCode(ProductCode),
    /// DS 004, 006, 008: `cyyjjj`.
    Date(DateRole, CalendarDate),
    /// DS 005, 007, 009: `cyyjjjhhmm`.
    DateTime(DateRole, DateTime),
    CompoundHeader(CompoundHeader),
    PatientDateOfBirth(PatientDateOfBirth),
    PatientId(PatientId<'a>),
    ExpirationMonth(ExpirationMonth),
    FlexibleDateTime(FlexibleDateTime),
    ProductDivisions(ProductDivisions),
    Coi(CoiId),
    /// Defined by ST-001 and recognised by identifier and length; its content (letters and
    /// digits) is not interpreted by coi-agent.
    NotInterpreted,
    /// Defined by a nation, region or facility, not by ICCBBA; opaque.
    National,
}

/// DS 002 `ggre`: ABO/RhD group or special message `gg` (e.g. `Ma`, autologous collection),
/// Rh/Kell or Mia/Mur phenotype `r`, reserved `e`. Codes are shown, not translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BloodGroups([u8; 4]);

/// DS 023 `aabbb`: the number of structures that follow and a defined sequence (`000`: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CompoundHeader {
    count: u8,
    sequence: u16,
}

/// DS 024 `aayyyymmdd`: a location code and a Gregorian date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PatientDateOfBirth {
    location: u8,
    date: CalendarDate,
}

/// DS 025 `aall` + `ll` characters: a location code and an identifier of 1–99 characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PatientId<'a> {
    location: u8,
    id: &'a [u8],
}

/// DS 026 `yyyymm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExpirationMonth {
    year: u16,
    month: u8,
}

impl BloodGroups {
    /// The four characters `ggre`, e.g. `Ma00`.
    ///
    /// # Errors
    /// Not four characters, or characters outside their sets.
    pub fn parse(text: &str) -> Result<BloodGroups, Isbt128Error> {
        let at = At::new(&spec::BLOOD_GROUPS, 0);
        if text.len() != 4 {
            return Err(at.invalid("blood groups are 4 characters"));
        }
        match interpret(at, text.as_bytes())? {
            Value::BloodGroups(groups) => Ok(groups),
            _ => Err(at.invalid("not blood groups")),
        }
    }

    pub fn as_str(&self) -> &str {
        ascii(&self.0)
    }

    /// `gg`: a blood group code or a special message such as `Ma`.
    pub fn group_or_message(&self) -> &str {
        ascii(&self.0[..2])
    }

    /// `r`: the Rh, Kell or Mia/Mur phenotype code (`0`: no information).
    pub fn phenotype(&self) -> &str {
        ascii(&self.0[2..3])
    }
}

impl CompoundHeader {
    /// A header for `count` structures (1–99) with no defined sequence.
    pub fn new(count: usize) -> Result<CompoundHeader, Isbt128Error> {
        match u8::try_from(count) {
            Ok(count @ 1..=99) => Ok(CompoundHeader { count, sequence: 0 }),
            _ => Err(Isbt128Error::CannotBuild {
                spec: &spec::COMPOUND_MESSAGE,
                problem: format!("a compound message holds 1-99 structures, not {count}"),
            }),
        }
    }

    pub fn count(&self) -> usize {
        usize::from(self.count)
    }

    pub fn sequence(&self) -> u16 {
        self.sequence
    }
}

impl PatientDateOfBirth {
    /// A date of birth with a location code 0–99.
    pub fn new(location: u8, date: CalendarDate) -> Result<PatientDateOfBirth, Isbt128Error> {
        check_location(&spec::PATIENT_DATE_OF_BIRTH, location)?;
        Ok(PatientDateOfBirth { location, date })
    }

    pub fn location(&self) -> u8 {
        self.location
    }

    pub fn date(&self) -> CalendarDate {
        self.date
    }
}

impl<'a> PatientId<'a> {
    /// A patient identifier of 1–99 letters or digits (ST-001 §2.4.25: no punctuation or
    /// spaces) with a location code 0–99.
    pub fn new(location: u8, id: &'a str) -> Result<PatientId<'a>, Isbt128Error> {
        check_location(&spec::PATIENT_ID, location)?;
        if id.is_empty() || id.len() > 99 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Isbt128Error::CannotBuild {
                spec: &spec::PATIENT_ID,
                problem: "the identifier is 1-99 letters or digits".to_owned(),
            });
        }
        Ok(PatientId {
            location,
            id: id.as_bytes(),
        })
    }

    pub fn location(&self) -> u8 {
        self.location
    }

    pub fn id(&self) -> &'a str {
        ascii(self.id)
    }
}

impl ExpirationMonth {
    /// A month (1–12) of a four-digit year.
    pub fn new(year: u16, month: u8) -> Result<ExpirationMonth, Isbt128Error> {
        if !(1..=9999).contains(&year) || !(1..=12).contains(&month) {
            return Err(Isbt128Error::CannotBuild {
                spec: &spec::EXPIRATION_MONTH_YEAR,
                problem: format!("{year:04}-{month:02} is not a month of years 0001-9999"),
            });
        }
        Ok(ExpirationMonth { year, month })
    }

    pub fn year(&self) -> u16 {
        self.year
    }

    pub fn month(&self) -> u8 {
        self.month
    }
}

fn check_location(spec: &'static Spec, location: u8) -> Result<(), Isbt128Error> {
    if location > 99 {
        return Err(Isbt128Error::CannotBuild {
            spec,
            problem: format!("location code {location} is not 00-99"),
        });
    }
    Ok(())
}

impl Value<'_> {
    /// The structure this value is the content of.
    pub fn spec(&self) -> Option<&'static Spec> {
        Some(match self {
            Value::Donation(_) => &spec::DIN,
            Value::BloodGroups(_) => &spec::BLOOD_GROUPS,
            Value::ProductCode(_) => &spec::PRODUCT_CODE,
            Value::Date(role, _) => date_spec(*role),
            Value::DateTime(role, _) => date_time_spec(*role),
            Value::CompoundHeader(_) => &spec::COMPOUND_MESSAGE,
            Value::PatientDateOfBirth(_) => &spec::PATIENT_DATE_OF_BIRTH,
            Value::PatientId(_) => &spec::PATIENT_ID,
            Value::ExpirationMonth(_) => &spec::EXPIRATION_MONTH_YEAR,
            Value::FlexibleDateTime(_) => &spec::FLEXIBLE_DATE_TIME,
            Value::ProductDivisions(_) => &spec::PRODUCT_DIVISIONS,
            Value::Coi(_) => &spec::COI,
            Value::NotInterpreted | Value::National => return None,
        })
    }

    /// The barcode data for this value, data identifier included (e.g. `&/CHA999925000042`).
    ///
    /// # Errors
    /// A value that cannot be written: a date outside 2000–2999 in `cyyjjj`, or a structure
    /// coi-agent does not interpret.
    pub fn encode(&self) -> Result<String, Isbt128Error> {
        let mut out = String::with_capacity(24);
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Appends the barcode data for this value to `out`; on error `out` is unchanged.
    pub fn encode_into(&self, out: &mut String) -> Result<(), Isbt128Error> {
        let start = out.len();
        let res = self.write(out);
        if res.is_err() {
            out.truncate(start);
        }
        res
    }

    fn write(&self, out: &mut String) -> Result<(), Isbt128Error> {
        let Some(spec) = self.spec() else {
            return Err(Isbt128Error::CannotBuild {
                spec: &spec::NOT_DEFINED_BY_ICCBBA,
                problem: "coi-agent only builds the structures it interprets".to_owned(),
            });
        };
        out.push_str(spec.data_identifier);
        let year_range = |year: u16| Isbt128Error::CannotBuild {
            spec,
            problem: format!("year {year} is outside 2000-2999, which cyy cannot express"),
        };
        // Writing to a String cannot fail, so the results of `write!` are ignored.
        match self {
            Value::Donation(d) => {
                out.push_str(d.din().as_str());
                out.push_str(d.flags().as_str());
            }
            Value::BloodGroups(b) => out.push_str(b.as_str()),
            Value::ProductCode(p) => {
                out.push_str(p.description_code());
                out.push_str(p.tds());
            }
            Value::Date(_, date) => {
                date::write_cyyjjj(out, *date).ok_or_else(|| year_range(date.year()))?;
            }
            Value::DateTime(_, at) => {
                date::write_cyyjjj(out, at.date).ok_or_else(|| year_range(at.date.year()))?;
                date::write_hhmm(out, *at);
            }
            Value::CompoundHeader(h) => {
                let _ = write!(out, "{:02}{:03}", h.count, h.sequence);
            }
            Value::PatientDateOfBirth(p) => {
                let d = p.date;
                let _ = write!(
                    out,
                    "{:02}{:04}{:02}{:02}",
                    p.location,
                    d.year(),
                    d.month(),
                    d.day()
                );
            }
            Value::PatientId(p) => {
                let _ = write!(out, "{:02}{:02}{}", p.location, p.id.len(), p.id());
            }
            Value::ExpirationMonth(m) => {
                let _ = write!(out, "{:04}{:02}", m.year, m.month);
            }
            Value::FlexibleDateTime(f) => {
                let zone = match f.zone {
                    ZoneFlag::Local => 1,
                    ZoneFlag::Utc => 2,
                };
                let d = f.at.date;
                let _ = write!(
                    out,
                    "{zone}{}{:02}{:04}{:02}{:02}",
                    f.reserved,
                    f.time_type,
                    d.year(),
                    d.month(),
                    d.day()
                );
                date::write_hhmm(out, f.at);
            }
            Value::ProductDivisions(p) => out.push_str(p.as_str()),
            Value::Coi(coi) => out.push_str(coi.as_str()),
            Value::NotInterpreted | Value::National => {}
        }
        Ok(())
    }
}

/// Builds a compound message (DS 023): the header `=+aa000` followed by each structure with
/// its identifier, nothing in between — the content of a label's DataMatrix.
///
/// # Errors
/// No structures or more than 99, a nested compound header, or a value that cannot be built.
pub fn compound_message(values: &[Value<'_>]) -> Result<String, Isbt128Error> {
    let header = CompoundHeader::new(values.len())?;
    let mut out = String::with_capacity(7 + values.len() * 18);
    Value::CompoundHeader(header).encode_into(&mut out)?;
    for value in values {
        if let Value::CompoundHeader(_) = value {
            return Err(Isbt128Error::CannotBuild {
                spec: &spec::COMPOUND_MESSAGE,
                problem: "a compound message cannot contain another".to_owned(),
            });
        }
        value.encode_into(&mut out)?;
    }
    Ok(out)
}

fn date_spec(role: DateRole) -> &'static Spec {
    match role {
        DateRole::Expiration => &spec::EXPIRATION_DATE,
        DateRole::Collection => &spec::COLLECTION_DATE,
        DateRole::Production => &spec::PRODUCTION_DATE,
    }
}

fn date_time_spec(role: DateRole) -> &'static Spec {
    match role {
        DateRole::Expiration => &spec::EXPIRATION_DATE_TIME,
        DateRole::Collection => &spec::COLLECTION_DATE_TIME,
        DateRole::Production => &spec::PRODUCTION_DATE_TIME,
    }
}

/// Checks and interprets the content of a structure whose identifier and length are known.
/// `at.offset` is the offset of the first content character.
#[inline]
pub(crate) fn interpret<'a>(at: At, bytes: &'a [u8]) -> Result<Value<'a>, Isbt128Error> {
    // Every structure's characters first, by its row of the spec table; then the meaning of
    // the ones coi-agent uses.
    check_content(at, bytes)?;
    Ok(match at.spec.kind {
        Kind::Din => Value::Donation(Donation::from_content(at, bytes)?),
        Kind::BloodGroups => {
            at.check(&bytes[..2], 0, "blood group", ALPHANUMERIC)?;
            at.check(&bytes[2..], 2, "phenotype", UPPER_OR_DIGIT)?;
            let mut groups = [0u8; 4];
            groups.copy_from_slice(bytes);
            Value::BloodGroups(BloodGroups(groups))
        }
        Kind::ProductCode => Value::ProductCode(ProductCode::from_content(at, bytes)?),
        Kind::Date(role) => Value::Date(role, read_cyyjjj(at, bytes, 0)?),
        Kind::DateTime(role) => {
            let date = read_cyyjjj(at, &bytes[..6], 0)?;
            Value::DateTime(role, read_hhmm(at, date, &bytes[6..], 6)?)
        }
        Kind::CompoundMessage => {
            let count = at.number(&bytes[..2], 0, "structure count")?;
            let sequence = at.number(&bytes[2..], 2, "sequence")?;
            if count == 0 {
                return Err(at.invalid("the header declares 0 structures"));
            }
            // Two and three digits fit u8 and u16.
            Value::CompoundHeader(CompoundHeader {
                count: count as u8,
                sequence: sequence as u16,
            })
        }
        Kind::PatientDateOfBirth => {
            let location = at.number(&bytes[..2], 0, "location code")? as u8;
            let date = read_yyyymmdd(at, &bytes[2..], 2)?;
            Value::PatientDateOfBirth(PatientDateOfBirth { location, date })
        }
        Kind::PatientId => {
            // The length `ll` was checked when the structure was delimited.
            let location = at.number(&bytes[..2], 0, "location code")? as u8;
            if bytes.len() == 4 {
                return Err(at.invalid("the patient identification is empty (length 00)"));
            }
            Value::PatientId(PatientId {
                location,
                id: &bytes[4..],
            })
        }
        Kind::ExpirationMonth => {
            let year = at.number(&bytes[..4], 0, "year")? as u16;
            let month = at.number(&bytes[4..], 4, "month")? as u8;
            if year == 0 || !(1..=12).contains(&month) {
                return Err(at.invalid("the year or month is out of range"));
            }
            Value::ExpirationMonth(ExpirationMonth { year, month })
        }
        Kind::FlexibleDateTime => {
            let zone = match bytes[0] {
                b'1' => ZoneFlag::Local,
                b'2' => ZoneFlag::Utc,
                other => {
                    return Err(at.invalid(format!(
                        "time zone flag {:?} is not 1 (local) or 2 (UTC)",
                        char::from(other)
                    )));
                }
            };
            let reserved = at.number(&bytes[1..2], 1, "reserved digit")? as u8;
            let time_type = at.number(&bytes[2..4], 2, "type of time")? as u8;
            if !(1..=3).contains(&time_type) {
                return Err(at.invalid(format!(
                    "type of time {time_type:02} is not 01 (expiration), 02 (collection) or \
                     03 (production)"
                )));
            }
            let date = read_yyyymmdd(at, &bytes[4..12], 4)?;
            let at_time = read_hhmm(at, date, &bytes[12..], 12)?;
            Value::FlexibleDateTime(FlexibleDateTime {
                zone,
                reserved,
                time_type,
                at: at_time,
            })
        }
        Kind::ProductDivisions => {
            Value::ProductDivisions(ProductDivisions::from_content(at, bytes)?)
        }
        Kind::Coi => Value::Coi(CoiId::from_content(at, bytes)?),
        Kind::NotInterpreted => Value::NotInterpreted,
        Kind::National => Value::National,
    })
}

//! The index of ISBT 128 data structures (ST-001 v6.2, Table 2 [RT003]): each structure's
//! number, name, data identifier and content length, and how to tell one from another at the
//! start of a stream of structures.
//!
//! This table only says *what* a structure is and how long it is; `structure` checks the
//! characters and interprets the content of the structures coi-agent uses.

use super::date::DateRole;
use super::error::Isbt128Error;
use super::field::FIN_FIRST;

/// How long a structure's content is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentLength {
    /// Always this many characters.
    Fixed(usize),
    /// DS 025: `aall` then `ll` characters.
    PatientId,
    /// DS 029 and DS 030: a count of `count_digits` digits, then that many units.
    Repeated { count_digits: usize, unit: usize },
    /// Structures not defined by ICCBBA (national, regional or facility): their length is not
    /// standardised, so they run to the end of the data.
    Undefined,
}

/// What coi-agent does with a structure's content: the structures it interprets each have
/// their own kind; the parser dispatches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Din,
    BloodGroups,
    ProductCode,
    Date(DateRole),
    DateTime(DateRole),
    CompoundMessage,
    PatientDateOfBirth,
    PatientId,
    ExpirationMonth,
    FlexibleDateTime,
    ProductDivisions,
    Coi,
    /// Defined by ST-001, recognised by identifier and length, content not interpreted.
    NotInterpreted,
    /// Defined by a nation, region or facility; opaque.
    National,
}

/// One entry of the index.
#[derive(Debug)]
pub struct Spec {
    /// `"001"`…`"040"`; `None` for structures not defined by ICCBBA.
    pub number: Option<&'static str>,
    pub name: &'static str,
    /// The data identifier as written (for DS 001 only `=`: its second character is data).
    pub data_identifier: &'static str,
    pub length: ContentLength,
    /// Kept for reading old labels; never built.
    pub retired: bool,
    pub kind: Kind,
}

impl Spec {
    /// True for the structures whose layout a nation, region or facility defines.
    pub fn is_national(&self) -> bool {
        self.kind == Kind::National
    }
}

/// Data identifiers are unique (a test below proves it), so they are the identity of a spec.
impl PartialEq for Spec {
    fn eq(&self, other: &Spec) -> bool {
        self.data_identifier == other.data_identifier
    }
}

impl Eq for Spec {}

impl std::fmt::Display for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.number {
            Some(number) => write!(f, "{} [{number}]", self.name),
            None => f.write_str(self.name),
        }
    }
}

const fn ds(number: &'static str, name: &'static str, di: &'static str, len: usize) -> Spec {
    Spec {
        number: Some(number),
        name,
        data_identifier: di,
        length: ContentLength::Fixed(len),
        retired: false,
        kind: Kind::NotInterpreted,
    }
}

const fn interpreted(kind: Kind, spec: Spec) -> Spec {
    Spec { kind, ..spec }
}

const fn retired(number: &'static str, name: &'static str, di: &'static str, len: usize) -> Spec {
    Spec {
        retired: true,
        ..ds(number, name, di, len)
    }
}

const fn national(name: &'static str, di: &'static str) -> Spec {
    Spec {
        number: None,
        name,
        data_identifier: di,
        length: ContentLength::Undefined,
        retired: false,
        kind: Kind::National,
    }
}

pub const DIN: Spec = interpreted(
    Kind::Din,
    ds("001", "Donation Identification Number", "=", 15),
);
pub const BLOOD_GROUPS: Spec = interpreted(
    Kind::BloodGroups,
    ds("002", "Blood Groups [ABO and RhD]", "=%", 4),
);
pub const PRODUCT_CODE: Spec = interpreted(Kind::ProductCode, ds("003", "Product Code", "=<", 8));
pub const EXPIRATION_DATE: Spec = interpreted(
    Kind::Date(DateRole::Expiration),
    ds("004", "Expiration Date", "=>", 6),
);
pub const EXPIRATION_DATE_TIME: Spec = interpreted(
    Kind::DateTime(DateRole::Expiration),
    ds("005", "Expiration Date and Time", "&>", 10),
);
pub const COLLECTION_DATE: Spec = interpreted(
    Kind::Date(DateRole::Collection),
    ds("006", "Collection Date", "=*", 6),
);
pub const COLLECTION_DATE_TIME: Spec = interpreted(
    Kind::DateTime(DateRole::Collection),
    ds("007", "Collection Date and Time", "&*", 10),
);
pub const PRODUCTION_DATE: Spec = interpreted(
    Kind::Date(DateRole::Production),
    ds("008", "Production Date", "=}", 6),
);
pub const PRODUCTION_DATE_TIME: Spec = interpreted(
    Kind::DateTime(DateRole::Production),
    ds("009", "Production Date and Time", "&}", 10),
);
pub const COMPOUND_MESSAGE: Spec = interpreted(
    Kind::CompoundMessage,
    ds("023", "Compound Message", "=+", 5),
);
pub const PATIENT_DATE_OF_BIRTH: Spec = interpreted(
    Kind::PatientDateOfBirth,
    ds("024", "Patient Date of Birth", "=#", 10),
);
pub const PATIENT_ID: Spec = Spec {
    length: ContentLength::PatientId,
    kind: Kind::PatientId,
    ..ds("025", "Patient Identification Number", "&#", 0)
};
pub const EXPIRATION_MONTH_YEAR: Spec = interpreted(
    Kind::ExpirationMonth,
    ds("026", "Expiration Month and Year", "=]", 6),
);
pub const FLEXIBLE_DATE_TIME: Spec = interpreted(
    Kind::FlexibleDateTime,
    ds("031", "Flexible Date and Time", "=(", 16),
);
pub const PRODUCT_DIVISIONS: Spec = interpreted(
    Kind::ProductDivisions,
    ds("032", "Product Divisions", "=,", 6),
);
pub const COI: Spec = interpreted(
    Kind::Coi,
    ds("040", "Chain of Identity Identifier", "&/", 15),
);
pub const NOT_DEFINED_BY_ICCBBA: Spec = national("Data Structure Not Defined by ICCBBA", "&");

/// Every structure with a two-character identifier other than DS 001, in ST-001 order.
static TWO_CHARACTER: [Spec; 37] = [
    BLOOD_GROUPS,
    PRODUCT_CODE,
    EXPIRATION_DATE,
    EXPIRATION_DATE_TIME,
    COLLECTION_DATE,
    COLLECTION_DATE_TIME,
    PRODUCTION_DATE,
    PRODUCTION_DATE_TIME,
    ds("010", "Special Testing: General", "&(", 5),
    retired("011", "Special Testing: Red Blood Cell Antigens", "={", 18),
    ds(
        "012",
        "Special Testing: Red Blood Cell Antigens - General",
        "=\\",
        18,
    ),
    ds(
        "013",
        "Special Testing: Red Blood Cell Antigens - Finnish",
        "&\\",
        18,
    ),
    ds(
        "014",
        "Special Testing: Platelet HLA and Platelet Specific Antigens",
        "&{",
        18,
    ),
    retired("015", "Special Testing: HLA-A and -B Alleles", "=[", 18),
    retired("016", "Special Testing: HLA-DRB1 Alleles", "=\"", 18),
    ds("017", "Container Manufacturer and Catalog Number", "=)", 10),
    ds("018", "Container Lot Number", "&)", 10),
    ds("019", "Donor Identification Number", "=;", 21),
    ds("020", "Staff Member Identification Number", "='", 11),
    ds(
        "021",
        "Manufacturer and Catalog Number: Items Other Than Containers",
        "=-",
        10,
    ),
    ds("022", "Lot Number: Items Other Than Containers", "&-", 10),
    COMPOUND_MESSAGE,
    PATIENT_DATE_OF_BIRTH,
    PATIENT_ID,
    EXPIRATION_MONTH_YEAR,
    ds("027", "Transfusion Transmitted Infection Marker", "&\"", 18),
    ds("028", "Product Consignment", "=$", 16),
    Spec {
        length: ContentLength::Repeated {
            count_digits: 2,
            unit: 14,
        },
        ..ds("029", "Dimensions", "&$", 0)
    },
    Spec {
        length: ContentLength::Repeated {
            count_digits: 3,
            unit: 10,
        },
        ..ds("030", "Red Cell Antigens with Test History", "&%", 0)
    },
    FLEXIBLE_DATE_TIME,
    PRODUCT_DIVISIONS,
    ds("033", "Processing Facility Information Code", "&+", 11),
    ds("034", "Processor Product Identification Code", "=/", 16),
    ds("039", "Global Registration Identifier for Donors", "&:", 19),
    COI,
    national("Nationally Specified Donor Identification Number", "&;"),
    national("Confidential Unit Exclusion Status", "&!"),
];

/// The `&,` family, told apart by a third identifier character.
static THREE_CHARACTER: [Spec; 4] = [
    ds("035", "MPHO Lot Number", "&,1", 18),
    ds("036", "MPHO Supplemental Identification Number", "&,2", 18),
    retired(
        "037",
        "Global Registration Identifier for Donors",
        "&,3",
        19,
    ),
    ds("038", "Single European Code", "&,4", 40),
];

/// What starts at an offset: which structure, and where its identifier and content lie.
#[derive(Debug, Clone, Copy)]
pub struct Identified {
    pub spec: &'static Spec,
    /// Length of the identifier as it appears in the data (2 or 3).
    pub identifier_len: usize,
    /// Offset of the first content character, relative to the structure's start. For DS 001
    /// this is 1: the identifier's second character is also the first content character.
    pub content_start: usize,
}

/// Identifies the structure that starts at `data[0]`; `offset` is only used in errors.
///
/// # Errors
/// `NoDataIdentifier` when the first character is not `=` or `&`, `TruncatedDataIdentifier`
/// when the data ends inside the identifier, `UnknownDataIdentifier` when ST-001 defines no
/// structure with that identifier.
#[inline]
pub fn identify(data: &[u8], offset: usize) -> Result<Identified, Isbt128Error> {
    let first = match data.first() {
        Some(&b @ (b'=' | b'&')) => b,
        _ => return Err(Isbt128Error::NoDataIdentifier { offset }),
    };
    let Some(&second) = data.get(1) else {
        return Err(Isbt128Error::TruncatedDataIdentifier { offset });
    };
    let two = |spec: &'static Spec| Identified {
        spec,
        identifier_len: 2,
        content_start: 2,
    };
    if first == b'=' && FIN_FIRST.contains(second) {
        return Ok(Identified {
            spec: &DIN,
            identifier_len: 2,
            content_start: 1,
        });
    }
    if first == b'&' && second.is_ascii_lowercase() {
        return Ok(two(&NOT_DEFINED_BY_ICCBBA));
    }
    if first == b'&' && second == b',' {
        let Some(&third) = data.get(2) else {
            return Err(Isbt128Error::TruncatedDataIdentifier { offset });
        };
        return match THREE_CHARACTER
            .iter()
            .find(|s| s.data_identifier.as_bytes()[2] == third)
        {
            Some(spec) => Ok(Identified {
                spec,
                identifier_len: 3,
                content_start: 3,
            }),
            None => Err(Isbt128Error::UnknownDataIdentifier {
                offset,
                identifier: identifier_text(&[first, second, third]),
            }),
        };
    }
    let index = match first {
        b'=' => BY_SECOND_AFTER_EQUALS[usize::from(second)],
        _ => BY_SECOND_AFTER_AMPERSAND[usize::from(second)],
    };
    match TWO_CHARACTER.get(usize::from(index)) {
        Some(spec) => Ok(two(spec)),
        None => Err(Isbt128Error::UnknownDataIdentifier {
            offset,
            identifier: identifier_text(&[first, second]),
        }),
    }
}

/// Index into `TWO_CHARACTER` by the identifier's second character, one table per first
/// character (`NONE` where no structure has that identifier): a lookup instead of a search,
/// because identifying is the first step of every structure of every scan.
static BY_SECOND_AFTER_EQUALS: [u8; 256] = index_by_second(b'=');
static BY_SECOND_AFTER_AMPERSAND: [u8; 256] = index_by_second(b'&');
const NONE: u8 = u8::MAX;

const fn index_by_second(first: u8) -> [u8; 256] {
    let mut table = [NONE; 256];
    let mut i = 0;
    while i < TWO_CHARACTER.len() {
        let di = TWO_CHARACTER[i].data_identifier.as_bytes();
        if di[0] == first {
            table[di[1] as usize] = i as u8;
        }
        i += 1;
    }
    table
}

/// Every structure ST-001 defines (DS 001 first), for listings and tests.
pub fn all() -> impl Iterator<Item = &'static Spec> {
    std::iter::once(&DIN)
        .chain(TWO_CHARACTER.iter())
        .chain(THREE_CHARACTER.iter())
        .chain(std::iter::once(&NOT_DEFINED_BY_ICCBBA))
}

/// The identifier bytes as text for an error message; bytes that are not printable ASCII are
/// shown as `\xNN` so a message never carries control characters.
fn identifier_text(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for spec in all() {
            assert!(
                seen.insert(spec.data_identifier),
                "duplicate {}",
                spec.data_identifier
            );
        }
    }

    #[test]
    fn numbers_are_unique_and_ordered() {
        let numbers: Vec<&str> = all().filter_map(|s| s.number).collect();
        let mut sorted = numbers.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(numbers.len(), sorted.len());
    }

    #[test]
    fn din_is_told_apart_by_its_first_data_character() {
        assert_eq!(identify(b"=A9999", 0).unwrap().spec, &DIN);
        assert_eq!(identify(b"=19999", 0).unwrap().spec, &DIN);
        assert!(matches!(
            identify(b"=O9999", 0),
            Err(Isbt128Error::UnknownDataIdentifier { .. })
        ));
        assert!(matches!(
            identify(b"=09999", 0),
            Err(Isbt128Error::UnknownDataIdentifier { .. })
        ));
    }

    #[test]
    fn three_character_identifiers() {
        let found = identify(b"&,1000", 0).unwrap();
        assert_eq!(found.spec.number, Some("035"));
        assert_eq!(found.identifier_len, 3);
        assert!(matches!(
            identify(b"&,", 0),
            Err(Isbt128Error::TruncatedDataIdentifier { .. })
        ));
        assert!(matches!(
            identify(b"&,9", 0),
            Err(Isbt128Error::UnknownDataIdentifier { .. })
        ));
    }
}

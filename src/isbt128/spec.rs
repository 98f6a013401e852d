//! The index of ISBT 128 data structures (ST-001 v6.2, Table 2 [RT003]): each structure's
//! number, name, data identifier and content length, and how to tell one from another at the
//! start of a stream of structures.
//!
//! Each row also holds the structure's data content rules (ST-001 §2.4, the element table of
//! each structure): the characters each run of positions may hold, embedded facility
//! identification numbers with their own rules, and reserved positions with their one value.
//! Every structure read is checked against its row, whether or not coi-agent interprets its
//! meaning; `structure` then interprets the ones coi-agent uses. Adding a structure is one row.
//! Where ST-001 can be read two ways, docs/decisions.md ("ISBT 128 content rules") says which.

use super::date::DateRole;
use super::error::Isbt128Error;
use super::field::{
    ALPHANUMERIC, Class, DIGIT, FIN, FIN_FIRST, FLAG, GRAPHIC, NONZERO_DIGIT, UPPER, UPPER_OR_DIGIT,
};

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
    /// The data content rules, position by position.
    pub(crate) content: Content,
}

/// The characters one run of content positions may hold.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Chars {
    /// Any of a class.
    In(Class),
    /// Exactly these (a reserved position ST-001 fixes, or a literal such as `CH`).
    Exactly(&'static [u8]),
    /// Two digits: the ISO 7064 MOD 37-2 value (00–36) of the content before them.
    Mod37Check,
}

/// A run of content positions: its field name (for messages), length and characters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Run {
    pub field: &'static str,
    pub len: usize,
    pub chars: Chars,
}

/// A structure's content rules: fixed runs from its first content character, then, for the
/// structures whose length varies, one class for the rest.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Content {
    pub runs: &'static [Run],
    pub rest: Option<(&'static str, Class)>,
}

const fn run(field: &'static str, len: usize, class: Class) -> Run {
    Run {
        field,
        len,
        chars: Chars::In(class),
    }
}

const fn exactly(field: &'static str, value: &'static [u8]) -> Run {
    Run {
        field,
        len: value.len(),
        chars: Chars::Exactly(value),
    }
}

const fn runs(runs: &'static [Run]) -> Content {
    Content { runs, rest: None }
}

const FIN_FIELD: &str = "facility identification number";
/// A facility identification number `αpppp` (ST-001 §2.4.1): `α` in `A`–`N`, `P`–`Z`, `1`–`9`;
/// then two of `A`–`N`, `P`–`Z`, `0`–`9`; then two digits. Never the letter O.
const FIN_FIRST_RUN: Run = run(FIN_FIELD, 1, FIN_FIRST);
const FIN_MIDDLE_RUN: Run = run(FIN_FIELD, 2, FIN);
const FIN_LAST_RUN: Run = run(FIN_FIELD, 2, DIGIT);
/// The processing facility's FIN(P) in DS 033 and DS 034: five of `A`–`N`, `P`–`Z`, `0`–`9`
/// (ST-001 §2.4.33: its element table is looser than §2.4.1's; never the letter O).
const FIN_P_RUN: Run = run("processing facility identification number", 5, FIN);
/// An issuing organisation number (DS 037, DS 039): four digits, the first not 0.
const ION_FIRST_RUN: Run = run("issuing organisation number", 1, NONZERO_DIGIT);
const ION_REST_RUN: Run = run("issuing organisation number", 3, DIGIT);

impl Spec {
    /// True for the structures whose layout a nation, region or facility defines.
    pub fn is_national(&self) -> bool {
        self.kind == Kind::National
    }

    /// Whether the data content rules allow `byte` at content position `position` (0 = the
    /// first content character; for DS 001 its identifier's second character). `None` past
    /// the content a fixed-length structure has. What the rules allow may still be refused
    /// for its meaning (a day 366 in a non-leap year, a Type 3 flag that does not match).
    pub fn content_allows(&self, position: usize, byte: u8) -> Option<bool> {
        let mut start = 0;
        for run in self.content.runs {
            if position < start + run.len {
                return Some(match run.chars {
                    Chars::In(class) => class.contains(byte),
                    Chars::Exactly(value) => value[position - start] == byte,
                    Chars::Mod37Check => byte.is_ascii_digit(),
                });
            }
            start += run.len;
        }
        self.content.rest.map(|(_, class)| class.contains(byte))
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

const fn ds(
    number: &'static str,
    name: &'static str,
    di: &'static str,
    len: usize,
    content: Content,
) -> Spec {
    Spec {
        number: Some(number),
        name,
        data_identifier: di,
        length: ContentLength::Fixed(len),
        retired: false,
        kind: Kind::NotInterpreted,
        content,
    }
}

const fn interpreted(kind: Kind, spec: Spec) -> Spec {
    Spec { kind, ..spec }
}

const fn retired(
    number: &'static str,
    name: &'static str,
    di: &'static str,
    len: usize,
    content: Content,
) -> Spec {
    Spec {
        retired: true,
        ..ds(number, name, di, len, content)
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
        content: Content {
            runs: &[],
            rest: Some(("content", GRAPHIC)),
        },
    }
}

const DATE: Content = runs(&[run("date", 6, DIGIT)]);
const DATE_TIME: Content = runs(&[run("date", 6, DIGIT), run("time", 4, DIGIT)]);
/// The red cell antigen structures (DS 011–013): 16 antigen digits, then two.
const ANTIGENS: Content = runs(&[
    run("antigens", 16, DIGIT),
    run("antigen tested negative", 2, DIGIT),
]);
const LOT_NUMBER: Content = runs(&[run("lot number", 10, ALPHANUMERIC)]);
/// DS 035 and DS 036: eighteen upper-case letters or digits.
const MPHO_CODE: Content = runs(&[run("content", 18, UPPER_OR_DIGIT)]);

pub const DIN: Spec = interpreted(
    Kind::Din,
    ds(
        "001",
        "Donation Identification Number",
        "=",
        15,
        runs(&[
            FIN_FIRST_RUN,
            FIN_MIDDLE_RUN,
            FIN_LAST_RUN,
            run("year", 2, DIGIT),
            run("sequence number", 6, DIGIT),
            run("flags", 2, FLAG),
        ]),
    ),
);
pub const BLOOD_GROUPS: Spec = interpreted(
    Kind::BloodGroups,
    ds(
        "002",
        "Blood Groups [ABO and RhD]",
        "=%",
        4,
        // `gg` takes lower case in special messages such as `Ma`; `e` is reserved, always 0.
        runs(&[
            run("blood group", 2, ALPHANUMERIC),
            run("phenotype", 1, UPPER_OR_DIGIT),
            exactly("reserved character (always 0)", b"0"),
        ]),
    ),
);
pub const PRODUCT_CODE: Spec = interpreted(
    Kind::ProductCode,
    ds(
        "003",
        "Product Code",
        "=<",
        8,
        // `tds` depends on the product family; `structure` checks it by family.
        runs(&[
            run("product family", 1, UPPER),
            run("product description code", 4, UPPER_OR_DIGIT),
            run("product code", 3, ALPHANUMERIC),
        ]),
    ),
);
pub const EXPIRATION_DATE: Spec = interpreted(
    Kind::Date(DateRole::Expiration),
    ds("004", "Expiration Date", "=>", 6, DATE),
);
pub const EXPIRATION_DATE_TIME: Spec = interpreted(
    Kind::DateTime(DateRole::Expiration),
    ds("005", "Expiration Date and Time", "&>", 10, DATE_TIME),
);
pub const COLLECTION_DATE: Spec = interpreted(
    Kind::Date(DateRole::Collection),
    ds("006", "Collection Date", "=*", 6, DATE),
);
pub const COLLECTION_DATE_TIME: Spec = interpreted(
    Kind::DateTime(DateRole::Collection),
    ds("007", "Collection Date and Time", "&*", 10, DATE_TIME),
);
pub const PRODUCTION_DATE: Spec = interpreted(
    Kind::Date(DateRole::Production),
    ds("008", "Production Date", "=}", 6, DATE),
);
pub const PRODUCTION_DATE_TIME: Spec = interpreted(
    Kind::DateTime(DateRole::Production),
    ds("009", "Production Date and Time", "&}", 10, DATE_TIME),
);
pub const COMPOUND_MESSAGE: Spec = interpreted(
    Kind::CompoundMessage,
    ds(
        "023",
        "Compound Message",
        "=+",
        5,
        runs(&[run("structure count", 2, DIGIT), run("sequence", 3, DIGIT)]),
    ),
);
pub const PATIENT_DATE_OF_BIRTH: Spec = interpreted(
    Kind::PatientDateOfBirth,
    ds(
        "024",
        "Patient Date of Birth",
        "=#",
        10,
        runs(&[run("location code", 2, DIGIT), run("date", 8, DIGIT)]),
    ),
);
pub const PATIENT_ID: Spec = Spec {
    length: ContentLength::PatientId,
    kind: Kind::PatientId,
    ..ds(
        "025",
        "Patient Identification Number",
        "&#",
        0,
        // Letters and digits: no punctuation or spaces.
        Content {
            runs: &[run("location code", 2, DIGIT), run("length", 2, DIGIT)],
            rest: Some(("patient identification", ALPHANUMERIC)),
        },
    )
};
pub const EXPIRATION_MONTH_YEAR: Spec = interpreted(
    Kind::ExpirationMonth,
    ds(
        "026",
        "Expiration Month and Year",
        "=]",
        6,
        runs(&[run("year", 4, DIGIT), run("month", 2, DIGIT)]),
    ),
);
pub const FLEXIBLE_DATE_TIME: Spec = interpreted(
    Kind::FlexibleDateTime,
    ds(
        "031",
        "Flexible Date and Time",
        "=(",
        16,
        runs(&[
            run("time zone flag", 1, DIGIT),
            exactly("reserved digit (always 0)", b"0"),
            run("type of time", 2, DIGIT),
            run("date", 8, DIGIT),
            run("time", 4, DIGIT),
        ]),
    ),
);
pub const PRODUCT_DIVISIONS: Spec = interpreted(
    Kind::ProductDivisions,
    ds(
        "032",
        "Product Divisions",
        "=,",
        6,
        // Digits for one level of division, letter pairs for up to three: no lower case.
        runs(&[run("divisions", 6, UPPER_OR_DIGIT)]),
    ),
);
pub const COI: Spec = interpreted(
    Kind::Coi,
    ds(
        "040",
        "Chain of Identity Identifier",
        "&/",
        15,
        runs(&[
            exactly("prefix CH", b"CH"),
            FIN_FIRST_RUN,
            FIN_MIDDLE_RUN,
            FIN_LAST_RUN,
            run("year", 2, DIGIT),
            run("sequence", 6, UPPER_OR_DIGIT),
        ]),
    ),
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
    ds(
        "010",
        "Special Testing: General",
        "&(",
        5,
        runs(&[run("special testing code", 5, UPPER_OR_DIGIT)]),
    ),
    retired(
        "011",
        "Special Testing: Red Blood Cell Antigens",
        "={",
        18,
        ANTIGENS,
    ),
    ds(
        "012",
        "Special Testing: Red Blood Cell Antigens - General",
        "=\\",
        18,
        ANTIGENS,
    ),
    ds(
        "013",
        "Special Testing: Red Blood Cell Antigens - Finnish",
        "&\\",
        18,
        ANTIGENS,
    ),
    ds(
        "014",
        "Special Testing: Platelet HLA and Platelet Specific Antigens",
        "&{",
        18,
        runs(&[
            run("HLA-A and HLA-B", 8, DIGIT),
            run("platelet specific antigens", 8, DIGIT),
            exactly("reserved digit (always 0)", b"0"),
            run("anti-A/B titre", 1, DIGIT),
        ]),
    ),
    retired(
        "015",
        "Special Testing: HLA-A and -B Alleles",
        "=[",
        18,
        runs(&[
            run("alleles", 16, DIGIT),
            run("CMV antibody status", 1, DIGIT),
            exactly("reserved digit (always 9)", b"9"),
        ]),
    ),
    retired(
        "016",
        "Special Testing: HLA-DRB1 Alleles",
        "=\"",
        18,
        runs(&[
            run("alleles", 8, DIGIT),
            exactly("reserved digits (always 9999999999)", b"9999999999"),
        ]),
    ),
    ds(
        "017",
        "Container Manufacturer and Catalog Number",
        "=)",
        10,
        runs(&[
            run("container type", 1, ALPHANUMERIC),
            run("manufacturer", 2, UPPER_OR_DIGIT),
            run("catalog number", 7, ALPHANUMERIC),
        ]),
    ),
    ds("018", "Container Lot Number", "&)", 10, LOT_NUMBER),
    ds(
        "019",
        "Donor Identification Number",
        "=;",
        21,
        runs(&[
            FIN_FIRST_RUN,
            FIN_MIDDLE_RUN,
            FIN_LAST_RUN,
            run("donor number", 16, DIGIT),
        ]),
    ),
    ds(
        "020",
        "Staff Member Identification Number",
        "='",
        11,
        runs(&[
            FIN_FIRST_RUN,
            FIN_MIDDLE_RUN,
            FIN_LAST_RUN,
            run("staff number", 6, UPPER_OR_DIGIT),
        ]),
    ),
    ds(
        "021",
        "Manufacturer and Catalog Number: Items Other Than Containers",
        "=-",
        10,
        runs(&[
            run("manufacturer", 2, UPPER_OR_DIGIT),
            run("catalog number", 8, ALPHANUMERIC),
        ]),
    ),
    ds(
        "022",
        "Lot Number: Items Other Than Containers",
        "&-",
        10,
        LOT_NUMBER,
    ),
    COMPOUND_MESSAGE,
    PATIENT_DATE_OF_BIRTH,
    PATIENT_ID,
    EXPIRATION_MONTH_YEAR,
    ds(
        "027",
        "Transfusion Transmitted Infection Marker",
        "&\"",
        18,
        runs(&[
            run("markers", 10, DIGIT),
            exactly("reserved digits (always 00000000)", b"00000000"),
        ]),
    ),
    ds(
        "028",
        "Product Consignment",
        "=$",
        16,
        runs(&[
            FIN_FIRST_RUN,
            FIN_MIDDLE_RUN,
            FIN_LAST_RUN,
            run("year", 2, DIGIT),
            run("sequence number", 5, DIGIT),
            run("container number", 2, DIGIT),
            run("containers", 2, DIGIT),
        ]),
    ),
    Spec {
        length: ContentLength::Repeated {
            count_digits: 2,
            unit: 14,
        },
        ..ds(
            "029",
            "Dimensions",
            "&$",
            0,
            Content {
                runs: &[run("count", 2, DIGIT)],
                rest: Some(("dimensions", DIGIT)),
            },
        )
    },
    Spec {
        length: ContentLength::Repeated {
            count_digits: 3,
            unit: 10,
        },
        ..ds(
            "030",
            "Red Cell Antigens with Test History",
            "&%",
            0,
            Content {
                runs: &[run("count", 3, DIGIT)],
                rest: Some(("antigens", DIGIT)),
            },
        )
    },
    FLEXIBLE_DATE_TIME,
    PRODUCT_DIVISIONS,
    ds(
        "033",
        "Processing Facility Information Code",
        "&+",
        11,
        runs(&[FIN_P_RUN, run("facility product code", 6, UPPER_OR_DIGIT)]),
    ),
    ds(
        "034",
        "Processor Product Identification Code",
        "=/",
        16,
        runs(&[
            FIN_P_RUN,
            run("facility product code", 6, UPPER_OR_DIGIT),
            run("product description code", 5, UPPER_OR_DIGIT),
        ]),
    ),
    ds(
        "039",
        "Global Registration Identifier for Donors",
        "&:",
        19,
        runs(&[
            ION_FIRST_RUN,
            ION_REST_RUN,
            run("registered donor identifier", 13, UPPER_OR_DIGIT),
            Run {
                field: "check",
                len: 2,
                chars: Chars::Mod37Check,
            },
        ]),
    ),
    COI,
    national("Nationally Specified Donor Identification Number", "&;"),
    national("Confidential Unit Exclusion Status", "&!"),
];

/// The `&,` family, told apart by a third identifier character.
static THREE_CHARACTER: [Spec; 4] = [
    ds("035", "MPHO Lot Number", "&,1", 18, MPHO_CODE),
    ds(
        "036",
        "MPHO Supplemental Identification Number",
        "&,2",
        18,
        MPHO_CODE,
    ),
    retired(
        "037",
        "Global Registration Identifier for Donors",
        "&,3",
        19,
        runs(&[
            ION_FIRST_RUN,
            ION_REST_RUN,
            run("registered donor identifier", 15, UPPER_OR_DIGIT),
        ]),
    ),
    ds(
        "038",
        "Single European Code",
        "&,4",
        40,
        // ST-012 divides it; ST-001 says only 40 letters or digits (split codes take lower case).
        runs(&[run("content", 40, ALPHANUMERIC)]),
    ),
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
    fn content_rules_cover_each_structure_exactly() {
        for spec in all() {
            let fixed: usize = spec.content.runs.iter().map(|r| r.len).sum();
            match spec.length {
                ContentLength::Fixed(len) => {
                    assert_eq!(fixed, len, "{spec}");
                    assert!(spec.content.rest.is_none(), "{spec}");
                }
                ContentLength::PatientId | ContentLength::Repeated { .. } => {
                    assert!(spec.content.rest.is_some(), "{spec}");
                }
                ContentLength::Undefined => {
                    assert_eq!(fixed, 0, "{spec}");
                    assert!(spec.content.rest.is_some(), "{spec}");
                }
            }
        }
    }

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

//! ISBT 128 conformance (issue #19): every structure's data content rules (ST-001 v6.2 §2.4,
//! the spec table's rows) enforced character by character, whether or not coi-agent
//! interprets the structure.
//!
//! - A table of one valid and one invalid read per structure (every structure of the table
//!   must have a row, so a new structure cannot be added without one).
//! - Exhaustively, at every content position of every structure, every printable character
//!   the rules do not allow there makes the read invalid; for the structures coi-agent does
//!   not interpret, every character they allow keeps it valid, and a refusal names the
//!   structure and the offset.
//! - The public vectors of open ISBT 128 implementations and of ICCBBA's documents
//!   (tests/data/isbt128-public-vectors.tsv, each row citing its source).

#![allow(clippy::unwrap_used)] // test helpers fail loudly; that is their job

use coi_agent::isbt128::error::Isbt128Error;
use coi_agent::isbt128::message;
use coi_agent::isbt128::spec::{self, ContentLength, Kind};

/// (data identifier, a valid read, an invalid read, why the invalid one is refused).
const READS: &[(&str, &str, &str, &str)] = &[
    (
        "=",
        "=A99992512345700",
        "=A9O992512345700",
        "letter O in the FIN",
    ),
    ("=%", "=%Ma00", "=%5105", "reserved e is not 0"),
    (
        "=<",
        "=<S1295100",
        "=<S12951a0",
        "upper-case division in lower case",
    ),
    ("=>", "=>025365", "=>02536A", "letter in a date"),
    ("&>", "&>0253652359", "&>025365235X", "letter in a time"),
    ("=*", "=*025001", "=*0250O1", "letter O in a date"),
    ("&*", "&*0250011200", "&*025001120 ", "space in a time"),
    ("=}", "=}025001", "=}02500a", "letter in a date"),
    ("&}", "&}0250011200", "&}02500112-0", "hyphen in a time"),
    (
        "&(",
        "&(N0001",
        "&(n0001",
        "lower case in a special testing code",
    ),
    (
        "={",
        "={123456789012345600",
        "={12345678901234560A",
        "letter in antigen codes",
    ),
    (
        "=\\",
        "=\\999999999999999999",
        "=\\99999999999999999a",
        "letter in antigen codes",
    ),
    (
        "&\\",
        "&\\000000000000000099",
        "&\\00000000000000009-",
        "hyphen in antigen codes",
    ),
    (
        "&{",
        "&{123412340000000000",
        "&{123412340000000010",
        "reserved D is not 0",
    ),
    (
        "=[",
        "=[000000000000000009",
        "=[000000000000000000",
        "reserved M is not 9",
    ),
    (
        "=\"",
        "=\"123456789999999999",
        "=\"123456789999999990",
        "reserved positions are not 9",
    ),
    (
        "=)",
        "=)1FW1234567",
        "=)1fW1234567",
        "lower case in the manufacturer code",
    ),
    (
        "&)",
        "&)abc1234567",
        "&)abc123456-",
        "hyphen in a lot number",
    ),
    (
        "=;",
        "=;A99991234567890123456",
        "=;O99991234567890123456",
        "letter O first in the FIN",
    ),
    (
        "='",
        "='A9999AB1234",
        "='A9999ab1234",
        "lower case in a staff number",
    ),
    (
        "=-",
        "=-FW1234567a",
        "=-fW1234567a",
        "lower case in the manufacturer code",
    ),
    (
        "&-",
        "&-LOT1234567",
        "&-LOT123456.",
        "full stop in a lot number",
    ),
    (
        "=+",
        "=+01000=A99992512345700",
        "=+0A000=A99992512345700",
        "letter in the count",
    ),
    (
        "=#",
        "=#0119710309",
        "=#01197103O9",
        "letter O in a date of birth",
    ),
    (
        "&#",
        "&#0110PT00000042",
        "&#0110PT-0000042",
        "hyphen in a patient identification",
    ),
    ("=]", "=]202512", "=]2025l2", "letter l in a month"),
    (
        "&\"",
        "&\"123456789000000000",
        "&\"123456789000000001",
        "reserved positions are not 0",
    ),
    (
        "=$",
        "=$A999925123450102",
        "=$AO99925123450102",
        "letter O in the FIN",
    ),
    (
        "&$",
        "&$0112345678901234",
        "&$011234567890123A",
        "letter in a dimension",
    ),
    (
        "&%",
        "&%0011234567890",
        "&%001123456789O",
        "letter O in an antigen",
    ),
    (
        "=(",
        "=(1002202506011200",
        "=(1102202506011200",
        "reserved U is not 0",
    ),
    (
        "=,",
        "=,AABB12",
        "=,AAbb12",
        "lower case in product divisions",
    ),
    (
        "&+",
        "&+A9999000000",
        "&+A99O9000000",
        "letter O in the FIN(P)",
    ),
    (
        "=/",
        "=/A9997AB3456T0123",
        "=/A9997ab3456T0123",
        "lower case in the facility product code",
    ),
    (
        "&:",
        "&:3553000001234567825",
        "&:3553000001234567826",
        "check digits off by one",
    ),
    (
        "&/",
        "&/CHA999925000042",
        "&/ChA999925000042",
        "lower case in the prefix CH",
    ),
    (
        "&,1",
        "&,1LOT000000000012345",
        "&,1lot000000000012345",
        "lower case in an MPHO lot",
    ),
    (
        "&,2",
        "&,2000000000000000001",
        "&,200000000000000000a",
        "lower case in an MPHO id",
    ),
    (
        "&,3",
        "&,31234ABCDEFGHIJKLMNO",
        "&,30234ABCDEFGHIJKLMNO",
        "organisation number starts with 0",
    ),
    (
        "&,4",
        "&,4BE000123A999925123456A0S1234500a00000000",
        "&,4BE000123A999925123456A0S1234500a0000000-",
        "hyphen in a Single European Code",
    ),
    (
        "&;",
        "&;NATIONAL-ID",
        "&;NATIONAL ID",
        "space in national content",
    ),
    ("&!", "&!1", "&! ", "space in national content"),
    ("&a", "&aLOCAL", "&aLO CAL", "space in local content"),
];

fn row(di: &str) -> &'static (&'static str, &'static str, &'static str, &'static str) {
    READS.iter().find(|(d, ..)| *d == di).unwrap_or_else(|| {
        panic!("no row for {di:?}: every structure needs a valid and an invalid read")
    })
}

/// Where the first structure's content starts in a read of it.
fn content_start(read: &str) -> usize {
    let found = spec::identify(read.as_bytes(), 0).unwrap();
    found.content_start
}

#[test]
fn every_structure_has_a_valid_and_an_invalid_read() {
    for spec in spec::all() {
        let di = if spec.is_national() && spec.number.is_none() && spec.data_identifier == "&" {
            "&a"
        } else {
            spec.data_identifier
        };
        let (_, valid, invalid, why) = row(di);
        let parsed = message::parse(valid.as_bytes());
        assert!(parsed.is_ok(), "{spec}: {valid}: {parsed:?}");
        assert_eq!(parsed.unwrap().structures[0].spec, spec, "{valid}");
        let refused = message::parse(invalid.as_bytes());
        assert!(refused.is_err(), "{spec}: {invalid} ({why}) was accepted");
    }
    assert_eq!(
        READS.len(),
        spec::all().count(),
        "the table has a row per structure"
    );
}

/// Every printable character outside a position's set makes the read invalid; inside it, a
/// structure coi-agent does not interpret stays valid. 40-odd structures × their positions ×
/// 95 characters: every case, not a sample.
#[test]
fn any_character_outside_a_positions_set_makes_the_read_invalid() {
    let mut refused = 0usize;
    for (di, valid, ..) in READS {
        let found = spec::identify(valid.as_bytes(), 0).unwrap();
        let spec = found.spec;
        let start = content_start(valid);
        // The first structure's content: to the end, or for a compound header its 5 digits.
        let end = if spec.kind == Kind::CompoundMessage {
            start + 5
        } else {
            valid.len()
        };
        // Only the content: the identifier's characters decide which structure it is.
        let first_checked = if spec.data_identifier == "=" {
            1
        } else {
            start
        };
        for at in first_checked.max(start)..end {
            let position = at - start;
            for byte in 0x20u8..=0x7e {
                let mut read = valid.as_bytes().to_vec();
                read[at] = byte;
                let allowed = spec.content_allows(position, byte).unwrap();
                let res = message::parse(&read);
                if !allowed {
                    refused += 1;
                    let Err(err) = res else {
                        panic!(
                            "{spec}: {:?} at content position {position} is outside its set but {} was accepted",
                            char::from(byte),
                            String::from_utf8_lossy(&read)
                        );
                    };
                    // Where the table alone decides, the refusal names the character's offset.
                    if matches!(spec.kind, Kind::NotInterpreted | Kind::National) {
                        match err {
                            Isbt128Error::BadCharacter { offset, .. }
                            | Isbt128Error::NotPrintable { offset, .. } => {
                                assert_eq!(offset, at, "{di}: {err}");
                            }
                            other => panic!("{di} {:?}: {other}", char::from(byte)),
                        }
                    }
                } else if matches!(spec.kind, Kind::NotInterpreted | Kind::National)
                    // Check digits (over all of DS 039) and a repeat count are values too.
                    && spec.data_identifier != "&:"
                    && !matches!(spec.length, ContentLength::Repeated { count_digits, .. } if position < count_digits)
                {
                    assert!(
                        res.is_ok(),
                        "{spec}: {:?} at content position {position} is allowed but {} was refused: {res:?}",
                        char::from(byte),
                        String::from_utf8_lossy(&read)
                    );
                }
            }
        }
    }
    assert!(refused > 20_000, "only {refused} refusals tried");
}

/// The five reads the peer refused and coi-agent accepted: lower case in DS 032, 034
/// and 035, and the letter O inside an embedded FIN.
#[test]
fn the_five_reads_a_peer_refused_are_refused() {
    for (read, structure, offset) in [
        ("=,00001a", "Product Divisions [032]", 7),
        (
            "=/A9997AB3456t0123",
            "Processor Product Identification Code [034]",
            13,
        ),
        ("&,1lot000000000012345", "MPHO Lot Number [035]", 3),
        (
            "=/AO997AB3456T0123",
            "Processor Product Identification Code [034]",
            3,
        ),
        (
            "&+AO999000000",
            "Processing Facility Information Code [033]",
            3,
        ),
    ] {
        let err = message::parse(read.as_bytes()).unwrap_err();
        let said = err.to_string();
        assert!(said.starts_with(structure), "{read}: {said}");
        assert!(
            said.contains(&format!("at offset {offset}")),
            "{read}: {said}"
        );
        assert_eq!(err.kind(), "bad_character", "{read}: {said}");
    }
}

/// The public vectors: every row's verdict (valid or not) is coi-agent's.
#[test]
fn public_vectors_of_open_implementations_agree() {
    let text = include_str!("data/isbt128-public-vectors.tsv");
    let mut rows = 0;
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [input, valid, structure, why, source] = fields[..] else {
            panic!("a row has 5 fields: {line}");
        };
        assert!(!source.trim().is_empty(), "{input}: no source");
        let res = message::parse(input.as_bytes());
        assert_eq!(
            res.is_ok(),
            valid == "yes",
            "{input} ({structure}: {why}; {source}): {res:?}"
        );
        rows += 1;
    }
    assert!(rows >= 100, "{rows} vectors");
}

//! Character-class checks shared by the structure parsers: each names the structure, the
//! field and the offset of the first bad character, so every parser reports the same way.

use super::error::Isbt128Error;
use super::spec::Spec;

/// Where a field lies: the structure it belongs to and the offset of its first byte in the
/// data as read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct At {
    pub spec: &'static Spec,
    pub offset: usize,
}

impl At {
    pub fn new(spec: &'static Spec, offset: usize) -> At {
        At { spec, offset }
    }

    /// Checks that every byte of `bytes` (which starts `start` bytes into the structure's
    /// content) is in `class`.
    #[inline]
    pub fn check(
        self,
        bytes: &[u8],
        start: usize,
        field: &'static str,
        class: Class,
    ) -> Result<(), Isbt128Error> {
        for (i, &byte) in bytes.iter().enumerate() {
            if !class.contains(byte) {
                return Err(self.bad_character(start + i, field, byte));
            }
        }
        Ok(())
    }

    /// Reads `bytes` as a decimal number, every byte a digit.
    #[inline]
    pub fn number(
        self,
        bytes: &[u8],
        start: usize,
        field: &'static str,
    ) -> Result<u32, Isbt128Error> {
        self.check(bytes, start, field, DIGIT)?;
        Ok(bytes
            .iter()
            .fold(0u32, |n, &b| n * 10 + u32::from(b - b'0')))
    }

    #[cold]
    #[inline(never)]
    pub fn invalid(self, problem: impl Into<String>) -> Isbt128Error {
        Isbt128Error::InvalidValue {
            spec: self.spec,
            offset: self.offset,
            problem: problem.into(),
        }
    }

    // Errors are built out of line so the valid path stays small and fast.
    #[cold]
    #[inline(never)]
    pub(crate) fn bad_character(
        self,
        position: usize,
        field: &'static str,
        byte: u8,
    ) -> Isbt128Error {
        Isbt128Error::BadCharacter {
            spec: self.spec,
            field,
            offset: self.offset + position,
            // A byte that is not ASCII is part of a multi-byte character: show that it is not
            // ASCII rather than a misleading Latin-1 reading of one byte.
            found: if byte.is_ascii() {
                char::from(byte)
            } else {
                char::REPLACEMENT_CHARACTER
            },
        }
    }
}

/// A set of ASCII characters, tested with one table lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Class(u8);

const DIGIT_BIT: u8 = 1;
const UPPER_BIT: u8 = 2;
const LOWER_BIT: u8 = 4;
/// `A`–`N`, `P`–`Z`, `0`–`9`: letter O is never used in a facility identification number.
const FIN_BIT: u8 = 8;
/// `A`–`N`, `P`–`Z`, `1`–`9`: the first character of a DIN or facility identification number.
const FIN_FIRST_BIT: u8 = 16;
/// `0`–`9`, `A`–`H`, `J`–`N`, `P`, `R`–`Y`: DIN flag characters (ST-001 §2.4.1).
const FLAG_BIT: u8 = 32;
/// Printable ASCII other than space (`!`–`~`).
const GRAPHIC_BIT: u8 = 64;
/// `1`–`9`: a number that does not start with 0.
const NONZERO_DIGIT_BIT: u8 = 128;

pub(crate) const DIGIT: Class = Class(DIGIT_BIT);
pub(crate) const UPPER: Class = Class(UPPER_BIT);
pub(crate) const UPPER_OR_DIGIT: Class = Class(UPPER_BIT | DIGIT_BIT);
pub(crate) const LOWER_OR_DIGIT: Class = Class(LOWER_BIT | DIGIT_BIT);
pub(crate) const ALPHANUMERIC: Class = Class(UPPER_BIT | LOWER_BIT | DIGIT_BIT);
pub(crate) const FIN: Class = Class(FIN_BIT);
pub(crate) const FIN_FIRST: Class = Class(FIN_FIRST_BIT);
pub(crate) const FLAG: Class = Class(FLAG_BIT);
pub(crate) const GRAPHIC: Class = Class(GRAPHIC_BIT);
pub(crate) const NONZERO_DIGIT: Class = Class(NONZERO_DIGIT_BIT);

static CLASSES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        let mut bits = 0;
        if c.is_ascii_digit() {
            bits |= DIGIT_BIT | FIN_BIT | FLAG_BIT;
            if c != b'0' {
                bits |= FIN_FIRST_BIT | NONZERO_DIGIT_BIT;
            }
        }
        if c.is_ascii_uppercase() {
            bits |= UPPER_BIT;
            if c != b'O' {
                bits |= FIN_BIT | FIN_FIRST_BIT;
            }
            if matches!(c, b'A'..=b'H' | b'J'..=b'N' | b'P' | b'R'..=b'Y') {
                bits |= FLAG_BIT;
            }
        }
        if c.is_ascii_lowercase() {
            bits |= LOWER_BIT;
        }
        if c.is_ascii_graphic() {
            bits |= GRAPHIC_BIT;
        }
        table[b] = bits;
        b += 1;
    }
    table
};

impl Class {
    #[inline]
    pub fn contains(self, byte: u8) -> bool {
        CLASSES[usize::from(byte)] & self.0 != 0
    }
}

/// Checks a structure's content against its data content rules (its row of the spec table):
/// the first character that breaks them is named with its field and offset.
#[inline]
pub(crate) fn check_content(at: At, bytes: &[u8]) -> Result<(), Isbt128Error> {
    use super::spec::Chars;
    let mut start = 0;
    for run in at.spec.content.runs {
        // Lengths were checked when the structure was delimited; a shorter content is refused
        // by its own checks.
        let Some(part) = bytes.get(start..start + run.len) else {
            return Err(at.invalid(format!(
                "content shorter than its {} ({} characters)",
                run.field, run.len
            )));
        };
        match run.chars {
            Chars::In(class) => at.check(part, start, run.field, class)?,
            Chars::Exactly(value) => {
                if let Some(i) = part.iter().zip(value).position(|(a, b)| a != b) {
                    return Err(at.bad_character(start + i, run.field, part[i]));
                }
            }
            Chars::Mod37Check => {
                at.check(part, start, run.field, DIGIT)?;
                let found = part.iter().fold(0u32, |n, &b| n * 10 + u32::from(b - b'0'));
                let expected = super::check::CheckCharacter::compute(&bytes[..start])
                    .map(super::check::CheckCharacter::value);
                if expected.map(u32::from) != Some(found) {
                    return Err(at.invalid(match expected {
                        Some(expected) => format!(
                            "the {} {found:02} does not match the content (ISO 7064 MOD 37-2: {expected:02})",
                            run.field
                        ),
                        None => format!("the {} cannot be computed", run.field),
                    }));
                }
            }
        }
        start += run.len;
    }
    match at.spec.content.rest {
        Some((field, class)) => at.check(&bytes[start..], start, field, class),
        None if start == bytes.len() => Ok(()),
        None => Err(at.invalid("content longer than its structure")),
    }
}

/// The classes of a facility identification number `αpppp`, position by position.
pub(crate) const FIN_LAYOUT: [Class; 5] = [FIN_FIRST, FIN, FIN, DIGIT, DIGIT];

/// Turns bytes already checked to be ASCII into text.
pub(crate) fn ascii(bytes: &[u8]) -> &str {
    // Every caller passes bytes it validated as ASCII (the parsers check the whole input for
    // printable ASCII first, the builders check each field), so this never falls back.
    std::str::from_utf8(bytes).unwrap_or("")
}

/// Checks a facility identification number `αpppp` (ST-001 §2.4.1): `α` in `A`–`N`, `P`–`Z`,
/// `1`–`9`; the next two `A`–`N`, `P`–`Z`, `0`–`9`; the last two digits.
pub(crate) fn check_fin(at: At, fin: &[u8], start: usize) -> Result<(), Isbt128Error> {
    const FIELD: &str = "facility identification number";
    if fin.len() != 5 {
        return Err(at.invalid("a facility identification number is 5 characters"));
    }
    at.check(&fin[..1], start, FIELD, FIN_FIRST)?;
    at.check(&fin[1..3], start + 1, FIELD, FIN)?;
    at.check(&fin[3..], start + 3, FIELD, DIGIT)
}

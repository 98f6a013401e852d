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
    fn bad_character(self, position: usize, field: &'static str, byte: u8) -> Isbt128Error {
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
#[derive(Debug, Clone, Copy)]
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

pub(crate) const DIGIT: Class = Class(DIGIT_BIT);
pub(crate) const UPPER: Class = Class(UPPER_BIT);
pub(crate) const UPPER_OR_DIGIT: Class = Class(UPPER_BIT | DIGIT_BIT);
pub(crate) const LOWER_OR_DIGIT: Class = Class(LOWER_BIT | DIGIT_BIT);
pub(crate) const ALPHANUMERIC: Class = Class(UPPER_BIT | LOWER_BIT | DIGIT_BIT);
pub(crate) const FIN: Class = Class(FIN_BIT);
pub(crate) const FIN_FIRST: Class = Class(FIN_FIRST_BIT);
pub(crate) const FLAG: Class = Class(FLAG_BIT);
pub(crate) const GRAPHIC: Class = Class(GRAPHIC_BIT);

static CLASSES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        let mut bits = 0;
        if c.is_ascii_digit() {
            bits |= DIGIT_BIT | FIN_BIT | FLAG_BIT;
            if c != b'0' {
                bits |= FIN_FIRST_BIT;
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

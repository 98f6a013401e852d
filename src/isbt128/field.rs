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

    /// Checks that every byte of `bytes` (which starts `start` bytes into the field's
    /// structure content) satisfies `allowed`.
    pub fn check(
        self,
        bytes: &[u8],
        start: usize,
        field: &'static str,
        allowed: fn(u8) -> bool,
    ) -> Result<(), Isbt128Error> {
        match bytes.iter().position(|&b| !allowed(b)) {
            None => Ok(()),
            Some(i) => Err(Isbt128Error::BadCharacter {
                spec: self.spec,
                field,
                offset: self.offset + start + i,
                found: char::from(bytes[i]),
            }),
        }
    }

    /// Reads `bytes` as a decimal number, every byte a digit.
    pub fn number(
        self,
        bytes: &[u8],
        start: usize,
        field: &'static str,
    ) -> Result<u32, Isbt128Error> {
        self.check(bytes, start, field, is_digit)?;
        Ok(bytes
            .iter()
            .fold(0u32, |n, &b| n * 10 + u32::from(b - b'0')))
    }

    pub fn invalid(self, problem: impl Into<String>) -> Isbt128Error {
        Isbt128Error::InvalidValue {
            spec: self.spec,
            offset: self.offset,
            problem: problem.into(),
        }
    }
}

pub(crate) fn is_digit(b: u8) -> bool {
    b.is_ascii_digit()
}

pub(crate) fn is_upper_or_digit(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}

pub(crate) fn is_alphanumeric(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

pub(crate) fn is_lower_or_digit(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `A`–`N`, `P`–`Z`, `0`–`9`: letter O is never used in a facility identification number.
pub(crate) fn is_fin_character(b: u8) -> bool {
    matches!(b, b'A'..=b'N' | b'P'..=b'Z' | b'0'..=b'9')
}

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
    let [first, rest @ ..] = fin else {
        return Err(at.invalid("facility identification number is empty"));
    };
    at.check(&[*first], start, FIELD, super::spec::is_fin_first)?;
    at.check(
        rest.get(..2).unwrap_or(&[]),
        start + 1,
        FIELD,
        is_fin_character,
    )?;
    at.check(rest.get(2..).unwrap_or(&[]), start + 3, FIELD, is_digit)
}

//! The Chain of Identity identifier (DS 040, ST-028): `CH`, the issuing facility, a year and
//! six characters; it binds every bag and document of one patient's therapy together. Printed
//! with a boxed MOD 37-2 check character computed over its 15 characters.

use super::check::CheckCharacter;
use super::error::Isbt128Error;
use super::field::{At, Class, DIGIT, FIN_LAYOUT, UPPER, UPPER_OR_DIGIT, ascii, check_fin};
use super::spec;

/// The classes of `CHαppppyynnnnnn`, position by position (`CH` itself is compared apart).
const COI_LAYOUT: [Class; 15] = {
    let mut layout = [UPPER_OR_DIGIT; 15];
    layout[0] = UPPER;
    layout[1] = UPPER;
    let mut i = 0;
    while i < FIN_LAYOUT.len() {
        layout[2 + i] = FIN_LAYOUT[i];
        i += 1;
    }
    layout[7] = DIGIT;
    layout[8] = DIGIT;
    layout
};

/// The 15-character content of DS 040, `CHαppppyynnnnnn`, without its `&/` identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CoiId {
    chars: [u8; 15],
    /// Computed while the characters are checked, as for `Din`.
    check: CheckCharacter,
}

impl CoiId {
    /// Parses the 15-character content (no `&/`).
    ///
    /// # Errors
    /// The wrong length, a missing `CH`, or a character not allowed in its position.
    pub fn parse(text: &str) -> Result<CoiId, Isbt128Error> {
        if text.len() != 15 {
            return Err(Isbt128Error::InvalidValue {
                spec: &spec::COI,
                offset: 0,
                problem: if text.is_ascii() {
                    format!("a COI identifier is 15 characters, found {}", text.len())
                } else {
                    "a COI identifier is 15 ASCII letters and digits; found a character that is \
                     not ASCII"
                        .to_owned()
                },
            });
        }
        CoiId::from_content(At::new(&spec::COI, 0), text.as_bytes())
    }

    #[inline]
    pub(crate) fn from_content(at: At, bytes: &[u8]) -> Result<CoiId, Isbt128Error> {
        let Ok(coi) = <[u8; 15]>::try_from(bytes) else {
            return Err(at.invalid("a COI identifier is 15 characters"));
        };
        if coi.starts_with(b"CH")
            && let Some(check) = CheckCharacter::of_layout(&coi, &COI_LAYOUT)
        {
            return Ok(CoiId { chars: coi, check });
        }
        if let Some(i) = (0..2).find(|&i| coi[i] != b"CH"[i]) {
            return Err(Isbt128Error::BadCharacter {
                spec: at.spec,
                field: "prefix CH",
                offset: at.offset + i,
                found: char::from(coi[i]),
            });
        }
        check_fin(at, &coi[2..7], 2)?;
        at.check(&coi[7..9], 7, "year", DIGIT)?;
        at.check(&coi[9..], 9, "sequence", UPPER_OR_DIGIT)?;
        Err(at.invalid("COI identifier characters do not fit their layout"))
    }

    pub fn as_str(&self) -> &str {
        ascii(&self.chars)
    }

    /// The facility identification number of the issuer.
    pub fn issuer(&self) -> &str {
        ascii(&self.chars[2..7])
    }

    /// The two-digit year of issue.
    pub fn year(&self) -> &str {
        ascii(&self.chars[7..9])
    }

    /// The six characters that make it unique for the issuer and year.
    pub fn sequence(&self) -> &str {
        ascii(&self.chars[9..])
    }

    /// The MOD 37-2 check character printed, boxed, beside the identifier.
    pub fn check_character(&self) -> CheckCharacter {
        self.check
    }

    /// The eye-readable grouping `CH A9999 25 000042`.
    pub fn grouped(&self) -> String {
        format!("CH {} {} {}", self.issuer(), self.year(), self.sequence())
    }
}

impl std::fmt::Display for CoiId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

//! The Donation Identification Number (DS 001): the 13-character DIN that names a collection
//! worldwide for 100 years, and the two flag characters that ride with it in the barcode but
//! are not part of it.

use super::check::CheckCharacter;
use super::error::Isbt128Error;
use super::field::{At, Class, DIGIT, FIN_LAYOUT, FLAG, ascii, check_fin};
use super::spec;

/// The classes of the 13 DIN characters: facility, year, sequence.
const DIN_LAYOUT: [Class; 13] = {
    let mut layout = [DIGIT; 13];
    let mut i = 0;
    while i < FIN_LAYOUT.len() {
        layout[i] = FIN_LAYOUT[i];
        i += 1;
    }
    layout
};

/// A 13-character DIN `αppppyynnnnnn`: facility identification number, year, sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Din {
    chars: [u8; 13],
    /// Computed while the characters are checked: it is needed for every Type 3 flag and for
    /// every printed DIN, and costs nothing extra then.
    check: CheckCharacter,
}

/// The two flag characters `ff` that follow a DIN in its barcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DinFlags([u8; 2]);

/// The most containers of one set that DIN flags can number (ST-001 Table 3).
pub const MAX_CONTAINERS: u8 = 9;

/// What a flag pair means (ST-001 Table 3 [RT004]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// `00`: flags not used.
    NotUsed,
    /// Type 1 (`01`–`19`): process control defined by ICCBBA: container n of a set
    /// ([`DinFlags::container`]), or a tube, sample or other label.
    Iccbba,
    /// Type 2 (`20`–`59`): process control defined locally.
    Local,
    /// Type 3 (`60`–`96`): 60 + the DIN's MOD 37-2 check value.
    Check,
    /// Any other value: not defined; shown, never interpreted.
    Reserved,
}

/// A DIN with its flags: the content of a DS 001 barcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Donation {
    din: Din,
    flags: DinFlags,
}

impl Din {
    /// Parses a 13-character DIN (no `=`, no flags).
    ///
    /// # Errors
    /// The wrong length, or a character not allowed in its position.
    pub fn parse(text: &str) -> Result<Din, Isbt128Error> {
        let bytes = text.as_bytes();
        if bytes.len() != 13 {
            return Err(Isbt128Error::InvalidValue {
                spec: &spec::DIN,
                offset: 0,
                problem: if text.is_ascii() {
                    format!("a DIN is 13 characters, found {}", bytes.len())
                } else {
                    "a DIN is 13 ASCII letters and digits; found a character that is not ASCII"
                        .to_owned()
                },
            });
        }
        Din::from_content(At::new(&spec::DIN, 0), bytes)
    }

    /// Checks the 13 DIN characters of a DS 001 content.
    #[inline]
    pub(crate) fn from_content(at: At, bytes: &[u8]) -> Result<Din, Isbt128Error> {
        let Ok(din) = <[u8; 13]>::try_from(bytes) else {
            return Err(at.invalid("a DIN is 13 characters"));
        };
        if let Some(check) = CheckCharacter::of_layout(&din, &DIN_LAYOUT) {
            return Ok(Din { chars: din, check });
        }
        check_fin(at, &din[..5], 0)?;
        at.check(&din[5..7], 5, "year", DIGIT)?;
        at.check(&din[7..], 7, "sequence number", DIGIT)?;
        Err(at.invalid("DIN characters do not fit their layout"))
    }

    pub fn as_str(&self) -> &str {
        ascii(&self.chars)
    }

    /// The facility identification number `αpppp` of the collecting facility.
    pub fn facility(&self) -> &str {
        ascii(&self.chars[..5])
    }

    /// The two-digit nominal year.
    pub fn year(&self) -> &str {
        ascii(&self.chars[5..7])
    }

    /// The six-digit sequence number within the facility and year.
    pub fn sequence(&self) -> &str {
        ascii(&self.chars[7..])
    }

    /// The MOD 37-2 check character printed, boxed, beside the DIN.
    pub fn check_character(&self) -> CheckCharacter {
        self.check
    }

    /// The Type 3 flags (`60`–`96`) that carry this DIN's check in a barcode.
    pub fn check_flags(&self) -> DinFlags {
        let value = self.check_character().type3_flag_value();
        // 60 + a check value of 0-36 is at most 96.
        DinFlags([b'0' + value / 10, b'0' + value % 10])
    }

    /// The eye-readable grouping `A9999 22 123456` (facility, year, sequence).
    pub fn grouped(&self) -> String {
        format!("{} {} {}", self.facility(), self.year(), self.sequence())
    }
}

impl std::fmt::Display for Din {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl DinFlags {
    /// Flags `00`: not used.
    pub const NOT_USED: DinFlags = DinFlags(*b"00");
    /// Flags `07` (ST-001 Table 3): a test tube, the flags of every sample tube label
    /// coi-agent prints (docs/decisions.md).
    pub const TEST_TUBE: DinFlags = DinFlags(*b"07");

    /// A pilot tube (`06`) or a test tube (`07`): a sample of the collection, never a bag.
    pub fn is_sample_tube(&self) -> bool {
        matches!(self.value(), Some(6 | 7))
    }

    /// Parses two flag characters (`0`–`9`, `A`–`H`, `J`–`N`, `P`, `R`–`Y`).
    ///
    /// # Errors
    /// Not two characters, or a character outside that set.
    pub fn parse(text: &str) -> Result<DinFlags, Isbt128Error> {
        DinFlags::from_content(At::new(&spec::DIN, 0), text.as_bytes(), 0)
    }

    #[inline]
    fn from_content(at: At, bytes: &[u8], start: usize) -> Result<DinFlags, Isbt128Error> {
        let Ok(flags) = <[u8; 2]>::try_from(bytes) else {
            return Err(at.invalid("DIN flags are 2 characters"));
        };
        at.check(&flags, start, "flags", FLAG)?;
        Ok(DinFlags(flags))
    }

    /// Two decimal digits for a value 0–99; `None` above 99.
    pub fn from_value(value: u8) -> Option<DinFlags> {
        (value < 100).then(|| DinFlags([b'0' + value / 10, b'0' + value % 10]))
    }

    pub fn as_str(&self) -> &str {
        ascii(&self.0)
    }

    /// The flags of container `n` of a set (ST-001 Table 3): `01`–`04` for containers 1–4 and
    /// `15`–`19` for containers 5–9 (`05`–`14` mean other things: a repeat label, a pilot or
    /// test tube, a sample, a partial label). `None` for any other `n`: Table 3 numbers nine
    /// containers.
    pub fn container(n: u8) -> Option<DinFlags> {
        match n {
            1..=4 => DinFlags::from_value(n),
            5..=MAX_CONTAINERS => DinFlags::from_value(n + 10),
            _ => None,
        }
    }

    /// The container number these flags name (ST-001 Table 3), if they name one: `01`–`04` are
    /// containers 1–4, `15`–`19` containers 5–9; every other value names no container.
    pub fn container_number(&self) -> Option<u8> {
        match self.value()? {
            n @ 1..=4 => Some(n),
            n @ 15..=19 => Some(n - 10),
            _ => None,
        }
    }

    /// What a Type 1 flag that names no container means (ST-001 Table 3), for messages.
    pub fn type1_meaning(&self) -> Option<&'static str> {
        Some(match self.value()? {
            5 => "a repeat demand-printed label",
            6 => "a pilot tube",
            7 => "a test tube",
            8 => "a donor record",
            9 => "a NAT sample",
            10 => "a bacterial-test sample",
            11 => "a match-with-unit label",
            12 => "an affixed partial label",
            13 => "an attached label",
            14 => "a reserved value",
            _ => return None,
        })
    }

    /// The numeric value when both characters are digits.
    pub fn value(&self) -> Option<u8> {
        match self.0 {
            [a @ b'0'..=b'9', b @ b'0'..=b'9'] => Some((a - b'0') * 10 + (b - b'0')),
            _ => None,
        }
    }

    pub fn kind(&self) -> FlagKind {
        match self.value() {
            Some(0) => FlagKind::NotUsed,
            Some(1..=19) => FlagKind::Iccbba,
            Some(20..=59) => FlagKind::Local,
            Some(60..=96) => FlagKind::Check,
            _ => FlagKind::Reserved,
        }
    }
}

impl std::fmt::Display for DinFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FlagKind {
    /// A stable name for JSON and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            FlagKind::NotUsed => "not_used",
            FlagKind::Iccbba => "type1_iccbba",
            FlagKind::Local => "type2_local",
            FlagKind::Check => "type3_check",
            FlagKind::Reserved => "reserved",
        }
    }
}

impl Donation {
    /// A DIN with the given flags.
    ///
    /// # Errors
    /// Type 3 flags that do not match the DIN's check.
    #[inline]
    pub fn new(din: Din, flags: DinFlags) -> Result<Donation, Isbt128Error> {
        let donation = Donation { din, flags };
        donation.verify()?;
        Ok(donation)
    }

    pub fn din(&self) -> Din {
        self.din
    }

    pub fn flags(&self) -> DinFlags {
        self.flags
    }

    /// A sample tube's label of a DIN: flags `07` (a Type 1 flag, nothing to verify).
    pub fn sample_tube(din: Din) -> Donation {
        Donation {
            din,
            flags: DinFlags::TEST_TUBE,
        }
    }

    /// A DIN carrying its own check as Type 3 flags.
    pub fn with_check_flags(din: Din) -> Donation {
        Donation {
            din,
            flags: din.check_flags(),
        }
    }

    /// Parses and verifies the 15 content characters `αppppyynnnnnnff` of DS 001.
    #[inline]
    pub(crate) fn from_content(at: At, bytes: &[u8]) -> Result<Donation, Isbt128Error> {
        let (din, flags) = bytes.split_at(bytes.len().min(13));
        let din = Din::from_content(at, din)?;
        let flags = DinFlags::from_content(at, flags, 13)?;
        Donation::new(din, flags)
    }

    /// Type 3 flags must equal 60 + the check value; other flags carry no check.
    #[inline]
    fn verify(&self) -> Result<(), Isbt128Error> {
        match self.flags.value() {
            Some(flags @ 60..=96) if flags != self.din.check_character().type3_flag_value() => {
                Err(self.flag_mismatch())
            }
            _ => Ok(()),
        }
    }

    #[cold]
    #[inline(never)]
    fn flag_mismatch(&self) -> Isbt128Error {
        let check = self.din.check_character();
        Isbt128Error::FlagMismatch {
            found: self.flags.as_str().to_owned(),
            expected: check.type3_flag_value(),
            check: check.as_char(),
        }
    }
}

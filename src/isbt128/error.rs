//! The one error type of the ISBT 128 core. Every message says what is wrong and where (a byte
//! offset into the data as read, AIM prefix included), in lower case, and never repeats more
//! than a character or two of the data, so a message cannot carry patient data into a log.

use super::spec::Spec;

/// Why data is not valid ISBT 128, or why a value cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Isbt128Error {
    #[error("no data")]
    Empty,
    #[error("byte 0x{byte:02X} at offset {offset} is not ISBT 128 data (printable ASCII only)")]
    NotPrintable { offset: usize, byte: u8 },
    #[error("incomplete AIM symbology identifier at offset 0 (expected ']' and two characters)")]
    TruncatedSymbology,
    #[error("symbology {identifier} is GS1 ({name}), not ISBT 128: refused")]
    Gs1Symbology {
        identifier: &'static str,
        name: &'static str,
    },
    #[error(
        "symbology {identifier} is not Code 128, Data Matrix or QR Code, so it does not carry \
         ISBT 128"
    )]
    UnsupportedSymbology { identifier: String },
    #[error("symbology {identifier} carries {expected}, found {found} data structures")]
    SymbologyMismatch {
        identifier: String,
        expected: &'static str,
        found: usize,
    },
    #[error("no data identifier at offset {offset}: ISBT 128 data starts with '=' or '&'")]
    NoDataIdentifier { offset: usize },
    #[error("data ends inside the data identifier at offset {offset}")]
    TruncatedDataIdentifier { offset: usize },
    #[error("unknown data identifier {identifier} at offset {offset}")]
    UnknownDataIdentifier { offset: usize, identifier: String },
    #[error(
        "{spec} at offset {offset} has the wrong length: {found} content characters, \
         expected {expected}"
    )]
    WrongLength {
        spec: &'static Spec,
        offset: usize,
        expected: usize,
        found: usize,
    },
    #[error(
        "{count} unexpected characters at offset {offset} after {after}: wrong length, or not \
         ISBT 128"
    )]
    TrailingData {
        offset: usize,
        count: usize,
        after: &'static Spec,
    },
    #[error("{spec}: invalid character {found:?} in the {field} at offset {offset}")]
    BadCharacter {
        spec: &'static Spec,
        field: &'static str,
        offset: usize,
        found: char,
    },
    #[error(
        "DIN flags {found} do not match the check (expected {expected}, check character {check})"
    )]
    FlagMismatch {
        found: String,
        expected: u8,
        check: char,
    },
    #[error("{spec} at offset {offset}: {problem}")]
    InvalidValue {
        spec: &'static Spec,
        offset: usize,
        problem: String,
    },
    #[error(
        "compound message count mismatch: the header declares {declared} structures, the \
         message holds {found}"
    )]
    CompoundCountMismatch { declared: usize, found: usize },
    #[error("compound message header at offset {offset} is not at the start of the data")]
    CompoundHeaderNotFirst { offset: usize },
    #[error("{spec} at offset {offset} is not allowed in a compound message")]
    NotAllowedInCompound { spec: &'static Spec, offset: usize },
    #[error("cannot build {spec}: {problem}")]
    CannotBuild {
        spec: &'static Spec,
        problem: String,
    },
}

impl Isbt128Error {
    /// A stable, machine-readable name for the kind of problem (for JSON, reason codes and
    /// tests), independent of the message wording.
    pub fn kind(&self) -> &'static str {
        match self {
            Isbt128Error::Empty => "empty",
            Isbt128Error::NotPrintable { .. } => "not_printable",
            Isbt128Error::TruncatedSymbology => "truncated_symbology",
            Isbt128Error::Gs1Symbology { .. } => "gs1_symbology",
            Isbt128Error::UnsupportedSymbology { .. } => "unsupported_symbology",
            Isbt128Error::SymbologyMismatch { .. } => "symbology_mismatch",
            Isbt128Error::NoDataIdentifier { .. } => "no_data_identifier",
            Isbt128Error::TruncatedDataIdentifier { .. } => "truncated_data_identifier",
            Isbt128Error::UnknownDataIdentifier { .. } => "unknown_data_identifier",
            Isbt128Error::WrongLength { .. } | Isbt128Error::TrailingData { .. } => "wrong_length",
            Isbt128Error::BadCharacter { .. } => "bad_character",
            Isbt128Error::FlagMismatch { .. } => "flag_check_mismatch",
            Isbt128Error::InvalidValue { .. } => "invalid_value",
            Isbt128Error::CompoundCountMismatch { .. } => "compound_count_mismatch",
            Isbt128Error::CompoundHeaderNotFirst { .. } => "compound_header_not_first",
            Isbt128Error::NotAllowedInCompound { .. } => "not_allowed_in_compound",
            Isbt128Error::CannotBuild { .. } => "cannot_build",
        }
    }

    /// True when the data carried a check (Type 3 DIN flags) and it failed: the data was read,
    /// but it is not what was printed. Reconciliation reports this as a bad check, not as
    /// unreadable data.
    pub fn is_check_failure(&self) -> bool {
        matches!(self, Isbt128Error::FlagMismatch { .. })
    }
}

//! The ISO/IEC 7064 MOD 37-2 check character that ISBT 128 prints beside a DIN (ST-001
//! Appendix A) and beside a Chain of Identity identifier (DS 040).
//!
//! The check character never travels inside a barcode; the only way it reaches a reader is as
//! Type 3 DIN flags (60 + the check value), which `din` verifies.

/// The 37 symbols of MOD 37-2, in value order: `0`–`9` are 0–9, `A`–`Z` are 10–35, `*` is 36.
pub const ALPHABET: &[u8; 37] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*";

/// A MOD 37-2 check character (value 0–36).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CheckCharacter(u8);

impl CheckCharacter {
    /// Computes the check character over `data`, or `None` if a byte is not `0`–`9` or `A`–`Z`.
    pub fn compute(data: &[u8]) -> Option<CheckCharacter> {
        let mut sum: u32 = 0;
        for &byte in data {
            let value = match byte {
                b'0'..=b'9' => byte - b'0',
                b'A'..=b'Z' => byte - b'A' + 10,
                _ => return None,
            };
            sum = ((sum + u32::from(value)) * 2) % 37;
        }
        // (38 - sum) % 37 is in 0..=36, so the cast cannot truncate.
        Some(CheckCharacter(((38 - sum) % 37) as u8))
    }

    /// The check value, 0–36.
    pub fn value(self) -> u8 {
        self.0
    }

    /// The printed symbol: `0`–`9`, `A`–`Z` or `*`.
    pub fn as_char(self) -> char {
        char::from(ALPHABET[usize::from(self.0)])
    }

    /// The Type 3 flag value that carries this check in a DIN barcode (60–96).
    pub fn type3_flag_value(self) -> u8 {
        60 + self.0
    }
}

impl std::fmt::Display for CheckCharacter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.as_char())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appendix_a_worked_example() {
        let check = CheckCharacter::compute(b"G123417654321").unwrap();
        assert_eq!(check.as_char(), 'A');
        assert_eq!(check.type3_flag_value(), 70);
    }

    #[test]
    fn refuses_characters_outside_the_alphabet() {
        assert_eq!(CheckCharacter::compute(b"G12341765432a"), None);
        assert_eq!(CheckCharacter::compute(b"G1234*7654321"), None);
    }

    #[test]
    fn every_value_has_a_distinct_symbol() {
        let symbols: std::collections::HashSet<char> =
            (0..37).map(|v| CheckCharacter(v).as_char()).collect();
        assert_eq!(symbols.len(), 37);
    }
}

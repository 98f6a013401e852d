//! The ISO/IEC 7064 MOD 37-2 check character that ISBT 128 prints beside a DIN (ST-001
//! Appendix A) and beside a Chain of Identity identifier (DS 040).
//!
//! The check character never travels inside a barcode; the only way it reaches a reader is as
//! Type 3 DIN flags (60 + the check value), which `din` verifies.

/// The 37 symbols of MOD 37-2, in value order: `0`–`9` are 0–9, `A`–`Z` are 10–35, `*` is 36.
pub const ALPHABET: &[u8; 37] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*";

use super::field::Class;

/// `WEIGHTS[k]` = 2^(k+1) mod 37, the weight of the k-th character from the end. 2 has order
/// 36 modulo 37, so the weights repeat with period 36.
const WEIGHTS: [u8; 36] = {
    let mut table = [0u8; 36];
    let mut k = 0;
    let mut power: u16 = 2;
    while k < 36 {
        table[k] = power as u8;
        power = power * 2 % 37;
        k += 1;
    }
    table
};

/// The MOD 37-2 value of each byte; 255 for bytes outside `0`–`9`, `A`–`Z` (`*` is only ever a
/// result, never an input).
static VALUES: [u8; 256] = {
    let mut table = [255u8; 256];
    let mut v = 0;
    while v < 36 {
        table[ALPHABET[v] as usize] = v as u8;
        v += 1;
    }
    table
};

/// A MOD 37-2 check character (value 0–36).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CheckCharacter(u8);

impl CheckCharacter {
    /// Computes the check character over `data`, or `None` if a byte is not `0`–`9` or `A`–`Z`.
    pub fn compute(data: &[u8]) -> Option<CheckCharacter> {
        // The iterative form `s = ((s + v) * 2) mod 37` equals the sum of v_i * 2^(n-i+1)
        // mod 37. Summing with precomputed weights keeps the loop free of a dependency chain
        // through the modulo, which made the iterative form the slowest step of a DIN parse
        // (BENCHMARKS.md).
        let mut sum: u32 = 0;
        let mut valid = true;
        // Weights repeat every 36 characters.
        for chunk in data.rchunks(WEIGHTS.len()) {
            for (&byte, &weight) in chunk.iter().rev().zip(WEIGHTS.iter()) {
                let value = VALUES[usize::from(byte)];
                valid &= value < 36;
                sum += u32::from(value) * u32::from(weight);
            }
            sum %= 37;
        }
        // (38 - sum) % 37 is in 0..=36, so the cast cannot truncate.
        valid.then(|| CheckCharacter(((38 - sum) % 37) as u8))
    }

    /// Checks `data` against a fixed layout and computes its check character in the same pass
    /// (one loop over an identifier instead of two). `None` when a byte is outside its class;
    /// every class in `layout` must lie within `0`–`9` and `A`–`Z`.
    #[inline]
    pub(crate) fn of_layout<const N: usize>(
        data: &[u8; N],
        layout: &[Class; N],
    ) -> Option<CheckCharacter> {
        let mut sum: u32 = 0;
        let mut ok = true;
        for i in 0..N {
            let byte = data[i];
            ok &= layout[i].contains(byte);
            // For `0`–`9` and `A`–`Z` this is the MOD 37-2 value; other bytes are refused by
            // the layout, so their (wrapped) value never counts.
            let value = byte
                .wrapping_sub(b'0')
                .wrapping_sub(7 * u8::from(byte > b'9'));
            sum += u32::from(value) * u32::from(WEIGHTS[(N - 1 - i) % 36]);
        }
        // (38 - sum % 37) % 37 is in 0..=36, so the cast cannot truncate.
        ok.then(|| CheckCharacter(((38 - sum % 37) % 37) as u8))
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

    /// The definition in ST-001 Appendix A, step by step, for comparison with the fast form.
    fn iterative(data: &[u8]) -> u8 {
        let mut sum = 0u32;
        for &b in data {
            let v = ALPHABET.iter().position(|&a| a == b).unwrap() as u32;
            sum = ((sum + v) * 2) % 37;
        }
        ((38 - sum) % 37) as u8
    }

    #[test]
    fn weighted_sum_equals_the_iterative_definition() {
        let alphabet = &ALPHABET[..36];
        // Every length up to 80 (past the 36-step period of the weights), varied content.
        for len in 0..80usize {
            let data: Vec<u8> = (0..len).map(|i| alphabet[(i * 7 + len) % 36]).collect();
            assert_eq!(
                CheckCharacter::compute(&data).unwrap().value(),
                iterative(&data),
                "{len}"
            );
        }
    }

    #[test]
    fn the_fused_form_agrees_on_identifiers() {
        use crate::isbt128::field::UPPER_OR_DIGIT;
        for din in [b"G123417654321", b"A999917345628", b"ZZZZZ99999999"] {
            let fused = CheckCharacter::of_layout(din, &[UPPER_OR_DIGIT; 13]);
            assert_eq!(fused, CheckCharacter::compute(din));
        }
        let bad = CheckCharacter::of_layout(b"G12341765432a", &[UPPER_OR_DIGIT; 13]);
        assert_eq!(bad, None);
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

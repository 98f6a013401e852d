//! Code 128 for ISBT 128 symbols: which code set encodes which part of the data (set C for
//! runs of digits, set B for the rest), the symbol values that plan gives (for drawing the
//! modules ourselves), and the `^BC` field data that makes a Zebra draw exactly those symbols
//! (explicit start and shift codes, no automatic mode). One plan feeds both, so the preview and
//! the print cannot differ.

/// A Code 128 code set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Set {
    B,
    C,
}

/// The data split into runs, each in one code set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub runs: Vec<(Set, String)>,
}

/// Why data cannot be a Code 128 symbol here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Code128Error {
    #[error("Code 128 data is empty")]
    Empty,
    #[error(
        "character U+{0:04X} is not printable ASCII: ISBT 128 barcodes hold only printable ASCII"
    )]
    NotPrintable(u32),
}

const START_B: u8 = 104;
const START_C: u8 = 105;
const CODE_B: u8 = 100;
const CODE_C: u8 = 99;
/// The stop pattern's value.
pub const STOP: u8 = 106;

/// Splits `data` into code-set runs: set C for a leading run of 4 or more digits (or data that
/// is all digits, an even number of them), and for inner runs of 6 or more digits (4 or more at
/// the end); an odd run gives its first digit to set B. This is the usual minimal-length rule
/// (ISO/IEC 15417 Annex E).
///
/// # Errors
/// Empty data, or a character outside printable ASCII.
pub fn plan(data: &str) -> Result<Plan, Code128Error> {
    if data.is_empty() {
        return Err(Code128Error::Empty);
    }
    if let Some(c) = data.chars().find(|c| !(' '..='~').contains(c)) {
        return Err(Code128Error::NotPrintable(u32::from(c)));
    }
    let bytes = data.as_bytes();
    let mut runs: Vec<(Set, String)> = Vec::new();
    let mut push = |set: Set, text: &[u8]| {
        // The data is ASCII (checked above), so each byte is a char.
        let text: String = text.iter().map(|&b| char::from(b)).collect();
        match runs.last_mut() {
            Some((last, run)) if *last == set => run.push_str(&text),
            _ => runs.push((set, text)),
        }
    };
    let mut i = 0;
    while i < bytes.len() {
        let digits = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        let at_start = i == 0;
        let at_end = i + digits == bytes.len();
        let worth_c = match (at_start, at_end) {
            (true, true) => digits >= 2 && digits % 2 == 0 || digits >= 4,
            (true, false) | (false, true) => digits >= 4,
            (false, false) => digits >= 6,
        };
        if digits > 0 && worth_c {
            // An odd run: its first digit goes in set B, the rest in pairs in set C.
            let odd = digits % 2;
            if odd == 1 {
                push(Set::B, &bytes[i..i + 1]);
            }
            push(Set::C, &bytes[i + odd..i + digits]);
            i += digits;
        } else {
            let end = if digits > 0 { i + digits } else { i + 1 };
            push(Set::B, &bytes[i..end]);
            i = end;
        }
    }
    Ok(Plan { runs })
}

impl Plan {
    /// The symbol values from the start code to the check symbol (the stop is [`STOP`]).
    pub fn values(&self) -> Vec<u8> {
        let mut values = Vec::new();
        for (index, (set, text)) in self.runs.iter().enumerate() {
            values.push(match (index, set) {
                (0, Set::B) => START_B,
                (0, Set::C) => START_C,
                (_, Set::B) => CODE_B,
                (_, Set::C) => CODE_C,
            });
            match set {
                Set::B => values.extend(text.bytes().map(|b| b - 32)),
                Set::C => values.extend(
                    text.as_bytes()
                        .chunks(2)
                        .map(|pair| (pair[0] - b'0') * 10 + (pair[1] - b'0')),
                ),
            }
        }
        let check = values
            .iter()
            .enumerate()
            .fold(0u32, |sum, (position, &value)| {
                sum + u32::from(value) * (position as u32).max(1)
            })
            % 103;
        // `check` < 103, so it fits a u8.
        values.push(check as u8);
        values
    }

    /// `^BC` field data that draws exactly this plan: a start code (`>:` B, `>;` C), shift codes
    /// (`>6` to B, `>5` to C), and the characters ZPL reserves written as invocation codes
    /// (`>0` for `>`, `><` for `^`, `>=` for `~`).
    pub fn zpl_field(&self) -> String {
        let mut out = String::new();
        for (index, (set, text)) in self.runs.iter().enumerate() {
            out.push_str(match (index, set) {
                (0, Set::B) => ">:",
                (0, Set::C) => ">;",
                (_, Set::B) => ">6",
                (_, Set::C) => ">5",
            });
            match set {
                Set::C => out.push_str(text),
                Set::B => {
                    for c in text.chars() {
                        match c {
                            '>' => out.push_str(">0"),
                            '^' => out.push_str("><"),
                            '~' => out.push_str(">="),
                            c => out.push(c),
                        }
                    }
                }
            }
        }
        out
    }

    /// The data the plan encodes, as a reader decodes it.
    pub fn data(&self) -> String {
        self.runs.iter().map(|(_, text)| text.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(data: &str) -> Vec<(Set, String)> {
        plan(data).unwrap().runs
    }

    fn expected(runs: &[(Set, &str)]) -> Vec<(Set, String)> {
        runs.iter().map(|(s, t)| (*s, (*t).to_owned())).collect()
    }

    #[test]
    fn isbt_structures_use_set_c_for_their_digit_runs() {
        assert_eq!(
            runs("=A99992512345601"),
            expected(&[(Set::B, "=A"), (Set::C, "99992512345601")])
        );
        assert_eq!(
            runs("&/CHA999925000042"),
            expected(&[(Set::B, "&/CHA"), (Set::C, "999925000042")])
        );
        // An odd run gives its first digit to set B.
        assert_eq!(
            runs("=<S1295100"),
            expected(&[(Set::B, "=<S1"), (Set::C, "295100")])
        );
        assert_eq!(
            runs("&>0253652359"),
            expected(&[(Set::B, "&>"), (Set::C, "0253652359")])
        );
        assert_eq!(runs("1234"), expected(&[(Set::C, "1234")]));
        assert_eq!(runs("12"), expected(&[(Set::C, "12")]));
        assert_eq!(runs("123"), expected(&[(Set::B, "123")]));
        assert_eq!(runs("AB12CD"), expected(&[(Set::B, "AB12CD")]));
        assert_eq!(
            runs("AB123456CD"),
            expected(&[(Set::B, "AB"), (Set::C, "123456"), (Set::B, "CD")])
        );
    }

    #[test]
    fn zpl_field_data_is_explicit_and_escapes_reserved_characters() {
        assert_eq!(
            plan("=A99992512345601").unwrap().zpl_field(),
            ">:=A>599992512345601"
        );
        assert_eq!(
            plan("&>0253652359").unwrap().zpl_field(),
            ">:&>0>50253652359"
        );
        assert_eq!(plan("A^B~C").unwrap().zpl_field(), ">:A><B>=C");
    }

    #[test]
    fn check_symbol_matches_the_standard_worked_example() {
        // "PJJ123C" in set B: (104 + 48·1 + 42·2 + 42·3 + 17·4 + 18·5 + 19·6 + 35·7) mod 103 = 55.
        let plan = Plan {
            runs: vec![(Set::B, "PJJ123C".into())],
        };
        assert_eq!(plan.values(), vec![104, 48, 42, 42, 17, 18, 19, 35, 55]);
        // Set C pairs and a shift: "=A" then 12 digits as 6 pairs.
        let values = super::plan("=A999925123456").unwrap().values();
        assert_eq!(&values[..5], &[104, 29, 33, 99, 99]);
    }

    #[test]
    fn the_plan_encodes_the_data_and_refuses_what_code_128_cannot_hold_here() {
        for data in [
            "=A99992512345601",
            "&/CHA999925000042",
            "=+03000=A99992512345601=<S1295100&/CHA999925000042",
            "9",
            "A",
        ] {
            assert_eq!(plan(data).unwrap().data(), data);
        }
        assert_eq!(plan(""), Err(Code128Error::Empty));
        assert_eq!(plan("A\u{1d}B"), Err(Code128Error::NotPrintable(0x1d)));
        assert_eq!(plan("Zoë"), Err(Code128Error::NotPrintable(0xeb)));
    }
}

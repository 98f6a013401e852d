//! Code 128 plans (issue #3): for any printable ASCII data, the `^BC` field data read back by
//! ZPL's own rules, and the symbol values read back by Code 128's rules, are exactly the data.

use coi_agent::label::code128::{STOP, plan};
use proptest::prelude::*;

/// Reads `^BC` field data as a Zebra does (explicit start, shift and invocation codes).
fn read_zpl(field: &str) -> String {
    let mut out = String::new();
    let mut set_c = false;
    let mut chars = field.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '>' {
            match chars.next() {
                Some(':') | Some('6') => set_c = false,
                Some(';') | Some('5') => set_c = true,
                Some('0') => out.push('>'),
                Some('<') => out.push('^'),
                Some('=') => out.push('~'),
                other => panic!("unexpected invocation >{other:?} in {field}"),
            }
        } else if set_c {
            out.push(c);
            out.push(chars.next().expect("set C takes digit pairs"));
        } else {
            out.push(c);
        }
    }
    out
}

/// Reads symbol values as a scanner does, checking the check symbol.
fn read_values(values: &[u8]) -> String {
    let (body, check) = values.split_at(values.len() - 1);
    let sum = body
        .iter()
        .enumerate()
        .fold(0u32, |s, (i, &v)| s + u32::from(v) * (i as u32).max(1));
    assert_eq!(u32::from(check[0]), sum % 103, "check symbol");
    let mut set_c = match body[0] {
        104 => false,
        105 => true,
        other => panic!("start {other}"),
    };
    let mut out = String::new();
    for &v in &body[1..] {
        match (v, set_c) {
            (99, _) => set_c = true,
            (100, _) => set_c = false,
            (v, true) => out.push_str(&format!("{v:02}")),
            (v, false) => out.push(char::from(v + 32)),
        }
    }
    out
}

proptest! {
    #[test]
    fn field_data_and_values_both_read_back_as_the_data(data in "[ -~]{1,60}") {
        let plan = plan(&data).unwrap();
        prop_assert_eq!(read_zpl(&plan.zpl_field()), data.clone());
        let values = plan.values();
        prop_assert!(values.iter().all(|&v| v < STOP));
        prop_assert_eq!(read_values(&values), data);
    }

    #[test]
    fn digit_heavy_isbt_data_is_shorter_than_set_b_alone(prefix in "[=&][A-Z<>*/]", digits in "[0-9]{10,16}") {
        let data = format!("{prefix}{digits}");
        let values = plan(&data).unwrap().values();
        // start + data + check in set B would be len + 2 symbols.
        prop_assert!(values.len() < data.len() + 2, "{data}: {} symbols", values.len());
    }
}

//! Fuzzes the local API's JSON request bodies (print, void, scan) as the routes parse them:
//! never a panic, and a refusal (answered to the caller, and shown on screens) carries no
//! control character and echoes no string value of the body.

#![no_main]

use libfuzzer_sys::fuzz_target;

/// Every string value in `value` (not keys: an unknown key is named, printably).
fn strings(value: &serde_json::Value, into: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => into.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| strings(v, into)),
        serde_json::Value::Object(fields) => fields.values().for_each(|v| strings(v, into)),
        _ => {}
    }
}

/// Whether `value` may be part of what the routes say to any body: their own words (a value
/// equal to a phrase of a message is no echo). Digits are left out (line and column numbers).
fn vocabulary(value: &str) -> bool {
    static PHRASES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let phrases = PHRASES.get_or_init(|| {
        let mut phrases: Vec<String> = [&b"{\"zz\": 1}"[..], b"[]", b"{", b"{}", b"{\"data\": 1}"]
            .into_iter()
            .flat_map(coi_agent::api::refusals_for_fuzzing)
            .collect();
        phrases.push("the body is larger than bytes".to_owned());
        phrases.iter().map(|p| p.chars().filter(|c| !c.is_ascii_digit()).collect()).collect()
    });
    let bare: String = value.chars().filter(|c| !c.is_ascii_digit()).collect();
    bare.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        || phrases.iter().any(|p| p.contains(bare.as_str()))
}

fuzz_target!(|data: &[u8]| {
    let refusals = coi_agent::api::refusals_for_fuzzing(data);
    let mut values = Vec::new();
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        strings(&value, &mut values);
    }
    for refusal in refusals {
        assert!(!refusal.chars().any(char::is_control), "{refusal:?}");
        for value in &values {
            if value.chars().count() >= 6 && !vocabulary(value) {
                assert!(!refusal.contains(value.as_str()), "{refusal:?} echoes {value:?}");
            }
        }
    }
});

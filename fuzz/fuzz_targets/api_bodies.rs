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

fuzz_target!(|data: &[u8]| {
    let refusals = coi_agent::api::refusals_for_fuzzing(data);
    let mut values = Vec::new();
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        strings(&value, &mut values);
    }
    for refusal in refusals {
        assert!(!refusal.chars().any(char::is_control), "{refusal:?}");
        for value in &values {
            // A value that is a plain word may be one of the route's own field names.
            let word = value.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            if value.chars().count() >= 6 && !word {
                assert!(!refusal.contains(value.as_str()), "{refusal:?} echoes {value:?}");
            }
        }
    }
});

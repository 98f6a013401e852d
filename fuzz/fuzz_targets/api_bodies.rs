//! Fuzzes the local API's JSON request bodies (print, void, scan) as the routes parse them:
//! never a panic, and a refusal (answered to the caller, and shown on screens) carries no
//! control character and echoes no string value of the body.
//!
//! "Echoes" is tested by substitution, not by search (a value may happen to spell a phrase of
//! the route's own message): every string value is replaced by a marker of the same length, and
//! no refusal of the substituted body may hold a run of the marker.

#![no_main]

use libfuzzer_sys::fuzz_target;

const MARKER: char = '\u{1EA}';

/// `value` with every string value replaced by the marker, as many times as it has characters;
/// whether a key holds the marker (the key, not a value, would then be named).
fn substituted(value: &mut serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => {
            *s = std::iter::repeat_n(MARKER, s.chars().count()).collect();
            false
        }
        serde_json::Value::Array(items) => items.iter_mut().fold(false, |k, v| substituted(v) || k),
        serde_json::Value::Object(fields) => fields.iter_mut().fold(false, |k, (key, v)| {
            substituted(v) || key.contains(MARKER) || k
        }),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    for refusal in coi_agent::api::refusals_for_fuzzing(data) {
        assert!(!refusal.chars().any(char::is_control), "{refusal:?}");
    }
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if substituted(&mut value) {
        return;
    }
    let run: String = std::iter::repeat_n(MARKER, 4).collect();
    for refusal in coi_agent::api::refusals_for_fuzzing(value.to_string().as_bytes()) {
        assert!(!refusal.contains(&run), "a value is echoed: {refusal:?}");
    }
});

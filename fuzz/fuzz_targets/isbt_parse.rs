//! Fuzzes the ISBT 128 scan parser with arbitrary bytes: it must never panic, and whatever it
//! accepts must re-encode (for the structures coi-agent builds) to exactly the bytes it read.

#![no_main]

use coi_agent::isbt128::message;
use coi_agent::isbt128::structure::Value;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = message::parse(data) else {
        return;
    };
    for structure in &message.structures {
        if matches!(structure.value, Value::NotInterpreted | Value::National) {
            continue;
        }
        let encoded = structure.value.encode().expect("a parsed value re-encodes");
        let read = &data[structure.offset..structure.offset + encoded.len()];
        assert_eq!(encoded.as_bytes(), read, "re-encoding differs from the data read");
    }
});

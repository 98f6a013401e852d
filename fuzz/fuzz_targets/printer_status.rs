//! Fuzzes the printer's answers (`~HS`, `~HQES`, `~HI`): whatever a printer or an impostor on
//! port 9100 sends, parsing never panics, and a status that parses has a consistent fault list.

#![no_main]

use coi_agent::printer::status;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = status::framed_strings(data);
    let _ = status::parse_identification(data);
    let _ = status::parse_extended_status(data);
    if let Ok(parsed) = status::parse_host_status(data) {
        let faults = parsed.faults();
        if parsed.is_idle() {
            assert!(faults.is_empty(), "idle with faults {faults:?}");
        }
        // A parsed status survives the round trip through the emulator's encoding.
        let again = status::parse_host_status(&status::host_status_reply(&parsed))
            .expect("an encoded status parses");
        assert_eq!(again.faults(), faults);
    }
});

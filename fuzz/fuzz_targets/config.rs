//! Fuzzes the configuration file: never a panic, whatever site IT (or a broken editor) wrote.

#![no_main]

use std::path::Path;

use coi_agent::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A base with no printers.d or scanners.d: only the text is under test.
    if let Ok(config) = Config::parse(text, Path::new("/nonexistent/coi-agent-fuzz"), "fuzz") {
        assert!(!config.site_id.trim().is_empty());
    }
});

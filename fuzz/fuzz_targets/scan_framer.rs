//! Fuzzes the scan framer with arbitrary bytes in arbitrary chunks and pauses: it must never
//! panic, never hand on a frame longer than its maximum, and account for every byte it was
//! given (in a frame, a suffix, or an oversize report).

#![no_main]

use std::time::{Duration, Instant};

use coi_agent::scanner::framing::{FrameEnd, Framed, Framer, FramingConfig, Suffix};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&setup, mut rest)) = data.split_first() else {
        return;
    };
    let suffix = match setup % 5 {
        0 => None,
        1 => Some(Suffix::Cr),
        2 => Some(Suffix::Lf),
        3 => Some(Suffix::CrLf),
        _ => Some(Suffix::Tab),
    };
    let max = 1 + usize::from(setup / 5) * 4;
    let mut framer = Framer::new(FramingConfig {
        suffix,
        inter_char_timeout: Duration::from_millis(300),
        max_frame_len: max,
    });
    let start = Instant::now();
    let mut now = start;
    let mut out = Vec::new();
    // Each chunk: a length byte (its top bit: a pause before it), then that many bytes.
    while let Some((&head, tail)) = rest.split_first() {
        let len = usize::from(head & 0x3f).min(tail.len());
        if head & 0x80 != 0 {
            now += Duration::from_millis(400);
            framer.poll(now, &mut out);
        }
        now += Duration::from_millis(1);
        framer.push(&tail[..len], now, &mut out);
        rest = &tail[len..];
    }
    framer.end_of_stream(&mut out);
    for framed in &out {
        match framed {
            Framed::Frame { bytes, end } => {
                assert!(bytes.len() <= max, "a frame of {} > {max}", bytes.len());
                if *end == FrameEnd::Suffix {
                    assert!(suffix.is_some(), "a suffix ended a frame with none configured");
                }
            }
            Framed::Oversize { len } => assert!(*len > max),
        }
    }
});

//! Framing: cutting the byte stream of a scanner into frames, one per read.
//!
//! A frame ends at the configured suffix (CR, LF, CR LF or TAB) or, for scanners configured
//! without one, after a pause longer than the inter-character timeout. Bytes are kept exactly:
//! GS (0x1D) and other control bytes inside a frame are data. Pure and clock-free: the caller
//! passes the time, so tests and property tests drive it deterministically.

use std::time::{Duration, Instant};

/// The suffix a scanner sends after each read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suffix {
    Cr,
    Lf,
    CrLf,
    Tab,
}

/// How to cut a stream into frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramingConfig {
    /// `None`: frames end only by a pause (scanners configured without a suffix).
    pub suffix: Option<Suffix>,
    /// A pause longer than this ends a frame. With a suffix configured, a frame ended this way
    /// is incomplete and becomes an error scan.
    pub inter_char_timeout: Duration,
    /// Longer frames are dropped (an error scan says so) and reading resynchronises at the next
    /// suffix, so a babbling device cannot grow memory without bound.
    pub max_frame_len: usize,
}

/// Defaults for a scanner that sends CR: 300 ms is longer than any gap inside one read (a read
/// arrives in a burst, one character per millisecond at 9600 baud) yet short enough that a tech
/// sees an incomplete read flagged before scanning the next bag; 1024 bytes holds the largest
/// compound message a COI label carries several times over.
impl Default for FramingConfig {
    fn default() -> FramingConfig {
        FramingConfig {
            suffix: Some(Suffix::Cr),
            inter_char_timeout: Duration::from_millis(300),
            max_frame_len: 1024,
        }
    }
}

/// How a frame ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameEnd {
    /// The configured suffix (not included in the frame).
    Suffix,
    /// A pause longer than the inter-character timeout.
    Pause,
    /// The device went away or the stream ended.
    StreamEnd,
}

/// What the framer hands on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framed {
    Frame {
        bytes: Vec<u8>,
        end: FrameEnd,
    },
    /// A frame longer than the maximum was dropped; `len` bytes were seen.
    Oversize {
        len: usize,
    },
}

/// The framing state of one stream.
#[derive(Debug)]
pub struct Framer {
    config: FramingConfig,
    buf: Vec<u8>,
    /// Bytes seen in the current frame, including those dropped once it grew too long.
    seen: usize,
    last_byte_at: Option<Instant>,
    /// The last frame ended with a CR suffix: a LF right after it is the rest of a CR LF
    /// scanner's suffix, not the start of a read.
    after_cr: bool,
}

impl Suffix {
    pub fn bytes(self) -> &'static [u8] {
        match self {
            Suffix::Cr => b"\r",
            Suffix::Lf => b"\n",
            Suffix::CrLf => b"\r\n",
            Suffix::Tab => b"\t",
        }
    }

    /// `cr`, `lf`, `crlf`, `tab` (any case).
    pub fn parse(name: &str) -> Option<Suffix> {
        Some(match name.to_ascii_lowercase().as_str() {
            "cr" => Suffix::Cr,
            "lf" => Suffix::Lf,
            "crlf" => Suffix::CrLf,
            "tab" => Suffix::Tab,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Suffix::Cr => "cr",
            Suffix::Lf => "lf",
            Suffix::CrLf => "crlf",
            Suffix::Tab => "tab",
        }
    }
}

impl Framer {
    pub fn new(config: FramingConfig) -> Framer {
        Framer {
            config,
            buf: Vec::new(),
            seen: 0,
            last_byte_at: None,
            after_cr: false,
        }
    }

    pub fn config(&self) -> &FramingConfig {
        &self.config
    }

    /// Feeds bytes that arrived at `now`; complete frames are appended to `out`.
    pub fn push(&mut self, bytes: &[u8], now: Instant, out: &mut Vec<Framed>) {
        // A pause before these bytes ends the pending frame first.
        self.poll(now, out);
        let suffix_len = self.suffix_len();
        for &byte in bytes {
            // A scanner set to CR LF on a CR port (or LF on an LF port after a CR): the extra
            // byte is suffix, never data (ISBT 128 data has no CR or LF), so it makes no read.
            if std::mem::take(&mut self.after_cr) && byte == b'\n' && self.seen == 0 {
                continue;
            }
            self.seen += 1;
            self.buf.push(byte);
            if self.ends_with_suffix() {
                self.buf.truncate(self.buf.len() - suffix_len);
                self.seen -= suffix_len;
                if self.config.suffix == Some(Suffix::Lf) && self.buf.last() == Some(&b'\r') {
                    self.buf.pop();
                    self.seen -= 1;
                }
                self.after_cr = self.config.suffix == Some(Suffix::Cr);
                self.finish(FrameEnd::Suffix, out);
            } else if self.seen > self.config.max_frame_len + suffix_len {
                // Too long: keep only the bytes that could begin a suffix split across pushes,
                // so the buffer stays bounded while the frame's length is still counted.
                let keep = suffix_len.saturating_sub(1).min(self.buf.len());
                self.buf.drain(..self.buf.len() - keep);
            }
        }
        self.last_byte_at = (self.seen > 0).then_some(now);
    }

    /// When the pending frame times out, if there is one.
    pub fn deadline(&self) -> Option<Instant> {
        self.last_byte_at
            .map(|at| at + self.config.inter_char_timeout)
    }

    /// Ends the pending frame if its deadline has passed at `now`.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Framed>) {
        if self.deadline().is_some_and(|deadline| now >= deadline) {
            self.finish(FrameEnd::Pause, out);
        }
    }

    /// Ends the pending frame because the stream ended or the device went away.
    pub fn end_of_stream(&mut self, out: &mut Vec<Framed>) {
        if self.seen > 0 {
            self.finish(FrameEnd::StreamEnd, out);
        }
    }

    fn suffix_len(&self) -> usize {
        self.config.suffix.map_or(0, |s| s.bytes().len())
    }

    fn ends_with_suffix(&self) -> bool {
        match self.config.suffix {
            Some(suffix) => self.buf.ends_with(suffix.bytes()),
            None => false,
        }
    }

    fn finish(&mut self, end: FrameEnd, out: &mut Vec<Framed>) {
        let seen = std::mem::take(&mut self.seen);
        self.last_byte_at = None;
        if seen > self.config.max_frame_len {
            self.buf.clear();
            out.push(Framed::Oversize { len: seen });
        } else if !self.buf.is_empty() {
            out.push(Framed::Frame {
                bytes: std::mem::take(&mut self.buf),
                end,
            });
        }
        // An empty frame (two suffixes in a row) carries nothing and is dropped.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(suffix: Option<Suffix>) -> FramingConfig {
        FramingConfig {
            suffix,
            ..FramingConfig::default()
        }
    }

    fn frames(config: FramingConfig, chunks: &[&[u8]]) -> Vec<Framed> {
        let mut framer = Framer::new(config);
        let mut out = Vec::new();
        let now = Instant::now();
        for chunk in chunks {
            framer.push(chunk, now, &mut out);
        }
        out
    }

    fn frame(bytes: &[u8]) -> Framed {
        Framed::Frame {
            bytes: bytes.to_vec(),
            end: FrameEnd::Suffix,
        }
    }

    #[test]
    fn each_suffix_ends_a_frame_and_is_removed() {
        for suffix in [Suffix::Cr, Suffix::Lf, Suffix::CrLf, Suffix::Tab] {
            let mut data = b"=A99992212345600".to_vec();
            data.extend_from_slice(suffix.bytes());
            data.extend_from_slice(b"&/CHA999925000042");
            data.extend_from_slice(suffix.bytes());
            assert_eq!(
                frames(config(Some(suffix)), &[&data]),
                vec![frame(b"=A99992212345600"), frame(b"&/CHA999925000042")],
                "{suffix:?}"
            );
        }
    }

    /// A scanner sending CR LF on a port set to CR (or to LF) makes one read per scan, not a
    /// second unreadable one from the leftover byte.
    #[test]
    fn a_crlf_scanner_on_a_cr_or_lf_port_makes_one_read_per_scan() {
        for suffix in [Suffix::Cr, Suffix::Lf] {
            let got = frames(
                config(Some(suffix)),
                &[b"=A99992212345600\r\n&/CHA999925000042\r", b"\n"],
            );
            assert_eq!(
                got,
                vec![frame(b"=A99992212345600"), frame(b"&/CHA999925000042")],
                "{suffix:?}"
            );
        }
        // A LF that is not right after the CR is data, as before.
        let got = frames(config(Some(Suffix::Cr)), &[b"=A\r", b"X\n\r"]);
        assert_eq!(got, vec![frame(b"=A"), frame(b"X\n")]);
    }

    #[test]
    fn crlf_split_across_writes_and_lone_cr_kept() {
        let got = frames(
            config(Some(Suffix::CrLf)),
            &[b"=A\rB\r", b"\n", b"X\r", b"\n"],
        );
        assert_eq!(got, vec![frame(b"=A\rB"), frame(b"X")]);
    }

    #[test]
    fn control_bytes_are_data() {
        let got = frames(config(Some(Suffix::Cr)), &[b"]d1=+02000\x1d=A\x04\x00\r"]);
        assert_eq!(got, vec![frame(b"]d1=+02000\x1d=A\x04\x00")]);
    }

    #[test]
    fn oversize_frames_are_dropped_and_reading_resynchronises() {
        let cfg = FramingConfig {
            max_frame_len: 8,
            ..config(Some(Suffix::CrLf))
        };
        let got = frames(cfg, &[b"0123456789ABCDEF\r", b"\nOK\r\n"]);
        assert_eq!(got, vec![Framed::Oversize { len: 16 }, frame(b"OK")]);
        // Exactly the maximum is still a frame; one more is not, and the suffix still counts.
        let got = frames(cfg, &[b"01234567\r\n"]);
        assert_eq!(got, vec![frame(b"01234567")]);
        let got = frames(cfg, &[b"012345678\r", b"\nOK\r\n"]);
        assert_eq!(got, vec![Framed::Oversize { len: 9 }, frame(b"OK")]);
    }

    #[test]
    fn a_pause_ends_a_frame() {
        let cfg = config(None);
        let mut framer = Framer::new(cfg);
        let mut out = Vec::new();
        let t0 = Instant::now();
        framer.push(b"=A9999", t0, &mut out);
        framer.push(b"2212345600", t0 + Duration::from_millis(10), &mut out);
        assert!(out.is_empty());
        assert_eq!(framer.deadline(), Some(t0 + Duration::from_millis(310)));
        framer.poll(t0 + Duration::from_millis(309), &mut out);
        assert!(out.is_empty());
        framer.poll(t0 + Duration::from_millis(310), &mut out);
        let expected = Framed::Frame {
            bytes: b"=A99992212345600".to_vec(),
            end: FrameEnd::Pause,
        };
        assert_eq!(out, vec![expected]);
        assert_eq!(framer.deadline(), None);
    }

    #[test]
    fn a_pause_before_new_bytes_separates_them() {
        let mut framer = Framer::new(config(Some(Suffix::Cr)));
        let mut out = Vec::new();
        let t0 = Instant::now();
        framer.push(b"=A9999", t0, &mut out);
        framer.push(b"&/CH\r", t0 + Duration::from_secs(1), &mut out);
        let cut = Framed::Frame {
            bytes: b"=A9999".to_vec(),
            end: FrameEnd::Pause,
        };
        assert_eq!(out, vec![cut, frame(b"&/CH")]);
    }

    #[test]
    fn stream_end_flushes_a_partial_frame() {
        let mut framer = Framer::new(config(Some(Suffix::Cr)));
        let mut out = Vec::new();
        framer.push(b"=A99", Instant::now(), &mut out);
        framer.end_of_stream(&mut out);
        let cut = Framed::Frame {
            bytes: b"=A99".to_vec(),
            end: FrameEnd::StreamEnd,
        };
        assert_eq!(out, vec![cut]);
        framer.end_of_stream(&mut out);
        assert_eq!(out.len(), 1, "nothing pending, nothing flushed");
    }

    #[test]
    fn empty_frames_are_dropped() {
        assert_eq!(
            frames(config(Some(Suffix::Cr)), &[b"\r\r\rA\r"]),
            vec![frame(b"A")]
        );
    }
}

//! Keyboard-mode USB scanners through Linux evdev: the device is grabbed exclusively
//! (`EVIOCGRAB`), so a scan never types into whatever window has focus, and its key events are
//! turned back into the characters the scanner meant (US layout), control characters included:
//! Ctrl+] is GS (0x1D), which keyboard-wedge scanning otherwise loses.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use super::{Input, Stop, run_blocking};

/// `struct input_event`: a timeval (16 bytes on 64-bit Linux, 8 on 32-bit), then type, code
/// (u16) and value (i32), native endian; the last three are the last 8 bytes.
pub const EVENT_SIZE: usize = std::mem::size_of::<libc::input_event>();
const EV_KEY: u16 = 1;
/// `_IOW('E', 0x90, int)`.
const EVIOCGRAB: libc::c_ulong = 0x4004_4590;

/// Turns key events into bytes, tracking Shift and Ctrl.
#[derive(Debug, Default)]
pub struct KeyDecoder {
    shift: bool,
    ctrl: bool,
}

impl KeyDecoder {
    /// The byte a key event produces, if any. `value` 1 is a press, 0 a release; auto-repeat
    /// (2) is ignored, since a scanner never holds a key.
    pub fn key(&mut self, code: u16, value: i32) -> Option<u8> {
        match code {
            42 | 54 => {
                self.shift = value != 0;
                return None;
            }
            29 | 97 => {
                self.ctrl = value != 0;
                return None;
            }
            _ => {}
        }
        if value != 1 {
            return None;
        }
        let (plain, shifted) = us_layout(code)?;
        if self.ctrl {
            // Ctrl with a key of the 0x40-0x5F column gives the control character below it.
            // Ctrl+Shift+6 is RS and Ctrl+Shift+- is US: with Shift held, the shifted key counts.
            let key = if self.shift { shifted } else { plain };
            let upper = key.to_ascii_uppercase();
            return matches!(upper, b'@'..=b'_').then_some(upper - b'@');
        }
        Some(if self.shift { shifted } else { plain })
    }
}

/// The characters of a key on a US keyboard, unshifted and shifted.
fn us_layout(code: u16) -> Option<(u8, u8)> {
    const ROW1: &[u8; 12] = b"1234567890-=";
    const ROW1_SHIFT: &[u8; 12] = b"!@#$%^&*()_+";
    const ROW2: &[u8; 12] = b"qwertyuiop[]";
    const ROW2_SHIFT: &[u8; 12] = b"QWERTYUIOP{}";
    const ROW3: &[u8; 12] = b"asdfghjkl;'`";
    const ROW3_SHIFT: &[u8; 12] = b"ASDFGHJKL:\"~";
    const ROW4: &[u8; 11] = b"\\zxcvbnm,./";
    const ROW4_SHIFT: &[u8; 11] = b"|ZXCVBNM<>?";
    let i = usize::from(code);
    Some(match code {
        2..=13 => (ROW1[i - 2], ROW1_SHIFT[i - 2]),
        15 => (b'\t', b'\t'),
        16..=27 => (ROW2[i - 16], ROW2_SHIFT[i - 16]),
        28 | 96 => (b'\r', b'\r'),
        30..=41 => (ROW3[i - 30], ROW3_SHIFT[i - 30]),
        43..=53 => (ROW4[i - 43], ROW4_SHIFT[i - 43]),
        55 => (b'*', b'*'),
        57 => (b' ', b' '),
        71..=73 => (b'7' + (code - 71) as u8, b'7' + (code - 71) as u8),
        74 => (b'-', b'-'),
        75..=77 => (b'4' + (code - 75) as u8, b'4' + (code - 75) as u8),
        78 => (b'+', b'+'),
        79..=81 => (b'1' + (code - 79) as u8, b'1' + (code - 79) as u8),
        82 => (b'0', b'0'),
        83 => (b'.', b'.'),
        98 => (b'/', b'/'),
        _ => return None,
    })
}

/// Decodes whole `input_event` records from `bytes` into `out`; returns how many bytes were
/// consumed (a partial record stays for the next read).
pub fn decode_events(decoder: &mut KeyDecoder, bytes: &[u8], out: &mut Vec<u8>) -> usize {
    let mut consumed = 0;
    for record in bytes.chunks_exact(EVENT_SIZE) {
        let t = EVENT_SIZE - 8;
        let kind = u16::from_ne_bytes([record[t], record[t + 1]]);
        let code = u16::from_ne_bytes([record[t + 2], record[t + 3]]);
        let value =
            i32::from_ne_bytes([record[t + 4], record[t + 5], record[t + 6], record[t + 7]]);
        if kind == EV_KEY {
            out.extend(decoder.key(code, value));
        }
        consumed += EVENT_SIZE;
    }
    consumed
}

pub(super) fn read(path: PathBuf, grab: bool, stop: &Stop) {
    let shown = path.display().to_string();
    run_blocking(
        stop,
        || {
            let file = open(&path, grab)?;
            Ok((
                file,
                if grab {
                    format!("{shown}, grabbed")
                } else {
                    shown.clone()
                },
            ))
        },
        |file, stop| read_events(file, stop).map(|reason| format!("{shown}: {reason}")),
    );
}

fn open(path: &PathBuf, grab: bool) -> Result<File, String> {
    let file = File::open(path).map_err(|err| {
        format!(
            "open {}: {err}{}",
            path.display(),
            crate::device_access::hint(err.kind())
        )
    })?;
    if grab {
        // A failed grab is an error, never ignored: an ungrabbed scanner types into other
        // windows.
        if crate::sys::ioctl_int(file.as_raw_fd(), EVIOCGRAB, 1) != 0 {
            return Err(format!(
                "grab {} exclusively: {}",
                path.display(),
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(file)
}

/// Waits for input with `poll` (100 ms at a time, to notice shutdown), then reads events.
fn read_events(file: &mut File, stop: &Stop) -> Option<String> {
    let mut decoder = KeyDecoder::default();
    let mut pending: Vec<u8> = Vec::with_capacity(EVENT_SIZE * 64);
    let mut buf = [0u8; EVENT_SIZE * 64];
    let mut bytes = Vec::new();
    loop {
        if stop.now() {
            return None;
        }
        match wait_readable(file.as_raw_fd(), 100) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(err) => return Some(err.to_string()),
        }
        match file.read(&mut buf) {
            // A regular file (tests) ends; a device never does until it is unplugged.
            Ok(0) => return Some("end of file".to_owned()),
            Ok(n) => {
                pending.extend_from_slice(&buf[..n]);
                let used = decode_events(&mut decoder, &pending, &mut bytes);
                pending.drain(..used);
                let at = std::time::Instant::now();
                if !bytes.is_empty() && !stop.send(Input::Bytes(std::mem::take(&mut bytes), at)) {
                    return None;
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Some(err.to_string()),
        }
    }
}

fn wait_readable(fd: i32, timeout_ms: i32) -> std::io::Result<bool> {
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let n = crate::sys::poll(&mut pollfd, timeout_ms);
    if n < 0 {
        let err = std::io::Error::last_os_error();
        return if err.kind() == std::io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(err)
        };
    }
    if pollfd.revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
        return Err(std::io::Error::other("device error"));
    }
    // POLLHUP with no data: the read returns 0 or an error and ends the stream.
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: u16, code: u16, value: i32) -> Vec<u8> {
        let mut record = vec![0u8; EVENT_SIZE - 8];
        record.extend(kind.to_ne_bytes());
        record.extend(code.to_ne_bytes());
        record.extend(value.to_ne_bytes());
        record
    }

    fn type_keys(keys: &[(u16, bool)]) -> Vec<u8> {
        // (code, shifted): press and release, with shift around it when asked.
        let mut events = Vec::new();
        for &(code, shifted) in keys {
            if shifted {
                events.extend(event(EV_KEY, 42, 1));
            }
            events.extend(event(EV_KEY, code, 1));
            events.extend(event(0, 0, 0)); // EV_SYN between key events is ignored
            events.extend(event(EV_KEY, code, 0));
            if shifted {
                events.extend(event(EV_KEY, 42, 0));
            }
        }
        events
    }

    #[test]
    fn a_scan_typed_as_keys_comes_back_exactly() {
        // "=A9" then Enter: '=' is KEY_EQUAL (13), 'A' is shift+KEY_A (30), '9' is KEY_9 (10).
        let events = type_keys(&[(13, false), (30, true), (10, false), (28, false)]);
        let mut decoder = KeyDecoder::default();
        let mut out = Vec::new();
        assert_eq!(decode_events(&mut decoder, &events, &mut out), events.len());
        assert_eq!(out, b"=A9\r");
    }

    #[test]
    fn ctrl_bracket_is_group_separator_and_ampersand_needs_shift() {
        let mut decoder = KeyDecoder::default();
        let mut out = Vec::new();
        let mut events = event(EV_KEY, 29, 1);
        events.extend(event(EV_KEY, 27, 1)); // ]
        events.extend(event(EV_KEY, 27, 0));
        events.extend(event(EV_KEY, 29, 0));
        events.extend(type_keys(&[(8, true)])); // shift+7 = &
        decode_events(&mut decoder, &events, &mut out);
        assert_eq!(out, b"\x1d&");
    }

    #[test]
    fn partial_records_wait_and_repeats_are_ignored() {
        let mut decoder = KeyDecoder::default();
        let mut out = Vec::new();
        let mut events = event(EV_KEY, 2, 1);
        events.extend(event(EV_KEY, 2, 2)); // auto-repeat
        let partial = event(EV_KEY, 3, 1);
        events.extend(&partial[..10]);
        assert_eq!(
            decode_events(&mut decoder, &events, &mut out),
            2 * EVENT_SIZE
        );
        assert_eq!(out, b"1");
    }
}

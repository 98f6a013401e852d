//! Where scans come from, as a site writes it: a source URI such as
//! `serial:///dev/ttyACM0?baud=9600&suffix=cr`, parsed into plain data before anything is
//! opened.
//!
//! Schemes: `serial://PATH`, `tcp://HOST:PORT` (connect to a network scanner),
//! `tcp-listen://ADDR:PORT` (scanners connect to us), `hid://VID:PID` (USB HID point-of-sale),
//! `evdev://PATH` (a keyboard-mode scanner, grabbed exclusively), `stdin:`.
//! Query parameters: `suffix` (`cr`, `lf`, `crlf`, `tab`, `none`), `timeout_ms`
//! (inter-character timeout), `max` (maximum frame length); for serial also `baud`, `parity`
//! (`none`, `odd`, `even`), `flow` (`none`, `software`, `hardware`), `data_bits`, `stop_bits`;
//! for evdev `grab` (`true`, `false`: only for testing with a plain file).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::framing::{FramingConfig, Suffix};

/// A configured scanner source: what to open and how to frame what it sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannerSpec {
    /// The URI without its query: the scanner's name in scans, logs and the journal.
    pub label: String,
    pub source: SourceConfig,
    pub framing: FramingConfig,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceConfig {
    Serial(SerialSettings),
    Tcp { address: String },
    TcpListen { address: SocketAddr },
    Hid { vendor_id: u16, product_id: u16 },
    Evdev { path: PathBuf, grab: bool },
    Stdin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialSettings {
    pub path: PathBuf,
    pub baud: u32,
    pub parity: Parity,
    pub flow: Flow,
    pub data_bits: u8,
    pub stop_bits: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parity {
    None,
    Odd,
    Even,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    None,
    Software,
    Hardware,
}

/// Why a source URI is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceUriError {
    #[error(
        "scanner source {uri:?}: unknown scheme (expected serial://, tcp://, tcp-listen://, hid://, evdev:// or stdin:)"
    )]
    UnknownScheme { uri: String },
    #[error("scanner source {uri:?}: {problem}")]
    Invalid { uri: String, problem: String },
}

impl ScannerSpec {
    /// Parses a source URI.
    ///
    /// # Errors
    /// An unknown scheme, a missing path or address, or a parameter that is unknown or has a
    /// value outside its range.
    pub fn parse(uri: &str) -> Result<ScannerSpec, SourceUriError> {
        let invalid = |problem: String| SourceUriError::Invalid {
            uri: uri.to_owned(),
            problem,
        };
        let (base, query) = uri.split_once('?').unwrap_or((uri, ""));
        let params = Params::parse(query).map_err(invalid)?;
        let (scheme, rest) = match base.split_once("://") {
            Some(parts) => parts,
            None if base == "stdin:" || base == "stdin" => ("stdin", ""),
            None => {
                return Err(SourceUriError::UnknownScheme {
                    uri: uri.to_owned(),
                });
            }
        };
        let source = match scheme {
            "serial" => SourceConfig::Serial(serial_settings(rest, &params).map_err(invalid)?),
            "tcp" => {
                if !rest.contains(':') {
                    return Err(invalid("expected tcp://HOST:PORT".to_owned()));
                }
                SourceConfig::Tcp {
                    address: rest.to_owned(),
                }
            }
            "tcp-listen" => SourceConfig::TcpListen {
                address: rest
                    .parse()
                    .map_err(|_| invalid("expected tcp-listen://IP:PORT".to_owned()))?,
            },
            "hid" => {
                let (vendor_id, product_id) = usb_ids(rest).map_err(invalid)?;
                SourceConfig::Hid {
                    vendor_id,
                    product_id,
                }
            }
            "evdev" => {
                if rest.is_empty() {
                    return Err(invalid("expected evdev:///dev/input/...".to_owned()));
                }
                let grab = params.bool("grab", true).map_err(invalid)?;
                SourceConfig::Evdev {
                    path: PathBuf::from(rest),
                    grab,
                }
            }
            "stdin" => SourceConfig::Stdin,
            _ => {
                return Err(SourceUriError::UnknownScheme {
                    uri: uri.to_owned(),
                });
            }
        };
        let framing = framing(&source, &params).map_err(invalid)?;
        params.check_all_used(&source).map_err(invalid)?;
        Ok(ScannerSpec {
            label: base.to_owned(),
            source,
            framing,
        })
    }
}

fn framing(source: &SourceConfig, params: &Params) -> Result<FramingConfig, String> {
    let defaults = FramingConfig::default();
    let suffix = match params.get("suffix") {
        None => defaults.suffix,
        Some("none") => None,
        Some(name) => Some(
            Suffix::parse(name)
                .ok_or_else(|| format!("suffix {name:?} is not cr, lf, crlf, tab or none"))?,
        ),
    };
    // A HID point-of-sale scanner delivers whole reads, without a suffix.
    let suffix = if matches!(source, SourceConfig::Hid { .. }) {
        None
    } else {
        suffix
    };
    // Below 20 ms a pause inside one read (between CR and LF, say) would split it.
    let timeout_ms = params.number("timeout_ms", 20, 60_000)?;
    let max = params.number("max", 16, 65_536)?;
    Ok(FramingConfig {
        suffix,
        inter_char_timeout: timeout_ms.map_or(defaults.inter_char_timeout, |ms| {
            Duration::from_millis(u64::from(ms))
        }),
        max_frame_len: max.map_or(defaults.max_frame_len, |m| m as usize),
    })
}

fn serial_settings(path: &str, params: &Params) -> Result<SerialSettings, String> {
    if path.is_empty() {
        return Err("expected serial:///dev/ttyACM0".to_owned());
    }
    let parity = match params.get("parity").unwrap_or("none") {
        "none" => Parity::None,
        "odd" => Parity::Odd,
        "even" => Parity::Even,
        other => return Err(format!("parity {other:?} is not none, odd or even")),
    };
    let flow = match params.get("flow").unwrap_or("none") {
        "none" => Flow::None,
        "software" | "xonxoff" => Flow::Software,
        "hardware" | "rtscts" => Flow::Hardware,
        other => return Err(format!("flow {other:?} is not none, software or hardware")),
    };
    Ok(SerialSettings {
        path: PathBuf::from(path),
        baud: params.number("baud", 300, 4_000_000)?.unwrap_or(9600),
        parity,
        flow,
        data_bits: params.number("data_bits", 5, 8)?.unwrap_or(8) as u8,
        stop_bits: params.number("stop_bits", 1, 2)?.unwrap_or(1) as u8,
    })
}

/// Serial settings from `serial:///dev/ttyS0?baud=9600&parity=none&flow=none`, for devices
/// other than scanners (printers).
///
/// # Errors
/// Not a serial URI, a missing path, or a parameter that is unknown or out of range.
pub fn serial_from_uri(uri: &str) -> Result<SerialSettings, String> {
    let (base, query) = uri.split_once('?').unwrap_or((uri, ""));
    let path = base
        .strip_prefix("serial://")
        .ok_or_else(|| format!("{uri:?} is not serial://PATH"))?;
    let params = Params::parse(query)?;
    let known = ["baud", "parity", "flow", "data_bits", "stop_bits"];
    if let Some((key, _)) = params.0.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        return Err(format!(
            "unknown parameter {key:?} (a serial printer takes {})",
            known.join(", ")
        ));
    }
    serial_settings(path, &params)
}

/// `0c2e:0b8f` (hexadecimal vendor and product ids).
pub(crate) fn usb_ids(text: &str) -> Result<(u16, u16), String> {
    let problem = || format!("expected VID:PID in hexadecimal, e.g. 0c2e:0b8f, found {text:?}");
    let (vid, pid) = text.split_once(':').ok_or_else(problem)?;
    let vid = u16::from_str_radix(vid, 16).map_err(|_| problem())?;
    let pid = u16::from_str_radix(pid, 16).map_err(|_| problem())?;
    Ok((vid, pid))
}

/// Query parameters, each allowed once.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str) -> Result<Params, String> {
        let mut params: Vec<(String, String)> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if params.iter().any(|(k, _)| k == key) {
                return Err(format!("parameter {key:?} given twice"));
            }
            params.push((key.to_owned(), value.to_owned()));
        }
        Ok(Params(params))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn number(&self, key: &str, min: u32, max: u32) -> Result<Option<u32>, String> {
        let Some(text) = self.get(key) else {
            return Ok(None);
        };
        match text.parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(format!(
                "{key}={text:?} is not a number from {min} to {max}"
            )),
        }
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool, String> {
        match self.get(key) {
            None => Ok(default),
            Some("true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(other) => Err(format!("{key}={other:?} is not true or false")),
        }
    }

    /// A misspelt parameter must not be silently ignored (a wrong suffix splits every read).
    fn check_all_used(&self, source: &SourceConfig) -> Result<(), String> {
        let mut known = vec!["suffix", "timeout_ms", "max"];
        match source {
            SourceConfig::Serial(_) => {
                known.extend(["baud", "parity", "flow", "data_bits", "stop_bits"]);
            }
            SourceConfig::Evdev { .. } => known.push("grab"),
            _ => {}
        }
        match self.0.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            Some((key, _)) => Err(format!(
                "unknown parameter {key:?} (this source takes {})",
                known.join(", ")
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_with_every_setting() {
        let spec = ScannerSpec::parse(
            "serial:///dev/ttyACM0?baud=115200&suffix=crlf&parity=even&flow=hardware&timeout_ms=50",
        )
        .unwrap();
        assert_eq!(spec.label, "serial:///dev/ttyACM0");
        let SourceConfig::Serial(serial) = &spec.source else {
            panic!("{spec:?}")
        };
        assert_eq!(serial.path, PathBuf::from("/dev/ttyACM0"));
        assert_eq!(
            (serial.baud, serial.parity, serial.flow),
            (115_200, Parity::Even, Flow::Hardware)
        );
        assert_eq!(spec.framing.suffix, Some(Suffix::CrLf));
        assert_eq!(spec.framing.inter_char_timeout, Duration::from_millis(50));
    }

    #[test]
    fn defaults_and_other_schemes() {
        let spec = ScannerSpec::parse("serial:///dev/ttyS0").unwrap();
        assert_eq!(spec.framing, FramingConfig::default());
        assert_eq!(
            ScannerSpec::parse("stdin:").unwrap().source,
            SourceConfig::Stdin
        );
        assert_eq!(
            ScannerSpec::parse("tcp://10.0.0.5:2001").unwrap().source,
            SourceConfig::Tcp {
                address: "10.0.0.5:2001".to_owned()
            }
        );
        assert_eq!(
            ScannerSpec::parse("hid://0c2e:0b8f").unwrap().source,
            SourceConfig::Hid {
                vendor_id: 0x0c2e,
                product_id: 0x0b8f
            }
        );
        assert_eq!(
            ScannerSpec::parse("hid://0c2e:0b8f")
                .unwrap()
                .framing
                .suffix,
            None
        );
        let spec = ScannerSpec::parse("tcp-listen://127.0.0.1:4000?suffix=none").unwrap();
        assert_eq!(spec.framing.suffix, None);
    }

    #[test]
    fn mistakes_are_named() {
        for (uri, problem) in [
            ("usb://1:2", "unknown scheme"),
            (
                "serial:///dev/ttyS0?sufix=cr",
                "unknown parameter \"sufix\"",
            ),
            ("serial:///dev/ttyS0?suffix=cr&suffix=lf", "given twice"),
            (
                "serial:///dev/ttyS0?baud=12",
                "baud=\"12\" is not a number from 300",
            ),
            (
                "serial:///dev/ttyS0?suffix=semicolon",
                "is not cr, lf, crlf, tab or none",
            ),
            ("tcp://scanner", "expected tcp://HOST:PORT"),
            (
                "tcp-listen://localhost:4000",
                "expected tcp-listen://IP:PORT",
            ),
            ("hid://zz:01", "expected VID:PID"),
            ("tcp://h:1?grab=false", "unknown parameter \"grab\""),
        ] {
            let err = ScannerSpec::parse(uri).unwrap_err().to_string();
            assert!(err.contains(problem), "{uri}: {err}");
        }
    }
}

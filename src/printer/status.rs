//! What a Zebra printer says about itself: the `~HS` host status (three framed strings) and the
//! `~HQES` error and warning bitmasks, parsed into a [`PrinterStatus`] whose faults decide
//! whether a job may be sent and whether it printed. Pure: bytes in, status out; a reply that
//! does not parse is an error, never "ok".

/// A condition that stops a printer from printing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    MediaOut,
    RibbonOut,
    HeadOpen,
    Paused,
    /// The receive buffer is full.
    BufferFull,
    /// Printhead or motor too hot, or too cold.
    Temperature,
    /// Any other error bit of `~HQES` (cutter, printhead element, calibration, ...).
    Hardware,
    /// The printer is unreachable or did not answer.
    Offline,
    /// The connection dropped during the job.
    Disconnected,
    /// The job expired before it could be sent.
    Expired,
    /// The printer's device may not be opened by this user (udev rule, group).
    NoPermission,
}

/// The printer's own account of itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrinterStatus {
    pub paper_out: bool,
    pub paused: bool,
    pub head_open: bool,
    pub ribbon_out: bool,
    pub buffer_full: bool,
    pub under_temperature: bool,
    pub over_temperature: bool,
    pub corrupt_ram: bool,
    /// A format is partly received (string 1 field h).
    pub partial_format: bool,
    /// Label formats received but not yet processed.
    pub formats_in_buffer: u32,
    /// Labels of the current batch still to print.
    pub labels_remaining: u32,
    pub label_length_dots: u32,
    /// From `~HQES`, when the printer supports it.
    pub errors: Option<u64>,
    pub warnings: Option<u64>,
}

/// Why a status reply could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    #[error("~HS reply: {0}")]
    HostStatus(String),
    #[error("~HQES reply: {0}")]
    ExtendedStatus(String),
}

/// `~HQES` error bits (Zebra Programming Guide, `~HQ` host query).
pub mod error_bits {
    pub const MEDIA_OUT: u64 = 0x0000_0001;
    pub const RIBBON_OUT: u64 = 0x0000_0002;
    pub const HEAD_OPEN: u64 = 0x0000_0004;
    pub const CUTTER_FAULT: u64 = 0x0000_0008;
    pub const PRINTHEAD_OVER_TEMPERATURE: u64 = 0x0000_0010;
    pub const MOTOR_OVER_TEMPERATURE: u64 = 0x0000_0020;
    pub const PAUSED: u64 = 0x0001_0000;
}

impl Fault {
    /// The fault named by its stable name ([`Fault::as_str`]).
    pub fn from_code(code: &str) -> Option<Fault> {
        [
            Fault::MediaOut,
            Fault::RibbonOut,
            Fault::HeadOpen,
            Fault::Paused,
            Fault::BufferFull,
            Fault::Temperature,
            Fault::Hardware,
            Fault::Offline,
            Fault::Disconnected,
            Fault::Expired,
            Fault::NoPermission,
        ]
        .into_iter()
        .find(|f| f.as_str() == code)
    }

    /// The stable name used in JSON, the journal and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::MediaOut => "media_out",
            Fault::RibbonOut => "ribbon_out",
            Fault::HeadOpen => "head_open",
            Fault::Paused => "paused",
            Fault::BufferFull => "buffer_full",
            Fault::Temperature => "temperature",
            Fault::Hardware => "hardware_error",
            Fault::Offline => "offline",
            Fault::Disconnected => "disconnected",
            Fault::Expired => "expired",
            Fault::NoPermission => "no_permission",
        }
    }

    /// What a person should do, for the screen.
    pub fn advice(self) -> &'static str {
        match self {
            Fault::MediaOut => "Load labels in the printer.",
            Fault::RibbonOut => "Replace the printer's ribbon.",
            Fault::HeadOpen => "Close the printer's head.",
            Fault::Paused => "Press the printer's pause button to resume it.",
            Fault::BufferFull => "Wait for the printer to finish, then try again.",
            Fault::Temperature => "Let the printer cool down or warm up, then try again.",
            Fault::Hardware => "Check the printer's display for the error.",
            Fault::Offline => "Check the printer is on and connected.",
            Fault::Disconnected => {
                "The printer's connection dropped: check whether the label printed before printing again."
            }
            Fault::Expired => "The print request was too old to print; ask for the label again.",
            Fault::NoPermission => {
                "coi-agent may not open the printer's device: site IT must give it to group coi-agent (the package's udev rule, /lib/udev/rules.d/60-coi-agent.rules, or one like it for this printer)."
            }
        }
    }
}

impl PrinterStatus {
    /// The faults the printer reports, most actionable first.
    pub fn faults(&self) -> Vec<Fault> {
        let errors = self.errors.unwrap_or(0);
        let mut faults = Vec::new();
        let mut add = |on: bool, fault| {
            if on && !faults.contains(&fault) {
                faults.push(fault);
            }
        };
        add(
            self.paper_out || errors & error_bits::MEDIA_OUT != 0,
            Fault::MediaOut,
        );
        add(
            self.ribbon_out || errors & error_bits::RIBBON_OUT != 0,
            Fault::RibbonOut,
        );
        add(
            self.head_open || errors & error_bits::HEAD_OPEN != 0,
            Fault::HeadOpen,
        );
        add(
            self.paused || errors & error_bits::PAUSED != 0,
            Fault::Paused,
        );
        add(self.buffer_full, Fault::BufferFull);
        let hot = error_bits::PRINTHEAD_OVER_TEMPERATURE | error_bits::MOTOR_OVER_TEMPERATURE;
        add(
            self.under_temperature || self.over_temperature || errors & hot != 0,
            Fault::Temperature,
        );
        let known = error_bits::MEDIA_OUT
            | error_bits::RIBBON_OUT
            | error_bits::HEAD_OPEN
            | error_bits::PAUSED
            | hot;
        add(self.corrupt_ram || errors & !known != 0, Fault::Hardware);
        faults
    }

    /// Nothing waiting to print and no fault. After a job, this means it printed only if the
    /// printer was seen working on it first (see `job::run`).
    pub fn is_idle(&self) -> bool {
        self.formats_in_buffer == 0
            && self.labels_remaining == 0
            && !self.partial_format
            && self.faults().is_empty()
    }
}

/// The framed strings of a reply: the text between each STX (0x02) and ETX (0x03).
pub fn framed_strings(reply: &[u8]) -> Vec<&[u8]> {
    let mut strings = Vec::new();
    let mut rest = reply;
    while let Some(start) = rest.iter().position(|&b| b == 0x02) {
        let after = &rest[start + 1..];
        let Some(end) = after.iter().position(|&b| b == 0x03) else {
            break;
        };
        strings.push(&after[..end]);
        rest = &after[end + 1..];
    }
    strings
}

/// What a printer says it is (`~HI`): its model and its resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identification {
    pub model: String,
    /// Dots per inch, from the reply's dots per millimetre (6, 8, 12, 24 → 152, 203, 300, 600).
    pub dpi: Option<u32>,
}

/// Parses a `~HI` reply: `<STX>model,firmware,dots/mm,memory[,options]<ETX>`.
pub fn parse_identification(reply: &[u8]) -> Option<Identification> {
    let text = std::str::from_utf8(framed_strings(reply).first()?).ok()?;
    let mut fields = text.split(',').map(str::trim);
    let model = fields.next().filter(|m| !m.is_empty())?.to_owned();
    let dpi = match fields.nth(1)?.parse::<u32>().ok()? {
        6 => Some(152),
        8 => Some(203),
        12 => Some(300),
        24 => Some(600),
        _ => None,
    };
    Some(Identification { model, dpi })
}

/// Parses the three strings of a `~HS` reply.
///
/// # Errors
/// Fewer than three framed strings, or fields that are missing or not numbers.
pub fn parse_host_status(reply: &[u8]) -> Result<PrinterStatus, StatusError> {
    let bad = |what: &str| StatusError::HostStatus(what.to_owned());
    let strings = framed_strings(reply);
    let [one, two, ..] = strings.as_slice() else {
        return Err(bad("expected at least two STX/ETX framed strings"));
    };
    let one = fields(one);
    let two = fields(two);
    if one.len() < 12 {
        return Err(bad("string 1 has fewer than 12 fields"));
    }
    if two.len() < 11 {
        return Err(bad("string 2 has fewer than 11 fields"));
    }
    let flag = |field: &str, name: &str| match field {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(bad(&format!("flag {name} is not 0 or 1"))),
    };
    let number = |field: &str, name: &str| {
        field
            .parse::<u32>()
            .map_err(|_| bad(&format!("{name} is not a number")))
    };
    Ok(PrinterStatus {
        paper_out: flag(one[1], "paper out")?,
        paused: flag(one[2], "pause")?,
        label_length_dots: number(one[3], "label length")?,
        formats_in_buffer: number(one[4], "formats in buffer")?,
        buffer_full: flag(one[5], "buffer full")?,
        partial_format: flag(one[7], "partial format")?,
        corrupt_ram: flag(one[9], "corrupt RAM")?,
        under_temperature: flag(one[10], "under temperature")?,
        over_temperature: flag(one[11], "over temperature")?,
        head_open: flag(two[2], "head up")?,
        ribbon_out: flag(two[3], "ribbon out")?,
        labels_remaining: number(two[8], "labels remaining")?,
        errors: None,
        warnings: None,
    })
}

/// Parses a `~HQES` reply into its error and warning bitmasks.
///
/// # Errors
/// No `ERRORS:` or `WARNINGS:` line, or masks that are not hexadecimal.
pub fn parse_extended_status(reply: &[u8]) -> Result<(u64, u64), StatusError> {
    let text = String::from_utf8_lossy(reply);
    let mask = |label: &str| -> Result<u64, StatusError> {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .ok_or_else(|| StatusError::ExtendedStatus(format!("no {label} line")))?;
        let parts: Vec<&str> = line.split_whitespace().collect();
        // "ERRORS: 1 00000000 00000005": flag, then two 8-digit hex groups (high, low).
        let [_, _, high, low, ..] = parts.as_slice() else {
            return Err(StatusError::ExtendedStatus(format!(
                "{label} line is short"
            )));
        };
        let parse = |s: &str| {
            u64::from_str_radix(s, 16).map_err(|_| {
                StatusError::ExtendedStatus(format!("{label} mask is not hexadecimal"))
            })
        };
        Ok(parse(high)? << 32 | parse(low)?)
    };
    Ok((mask("ERRORS:")?, mask("WARNINGS:")?))
}

fn fields(string: &[u8]) -> Vec<&str> {
    std::str::from_utf8(string)
        .unwrap_or("")
        .trim()
        .split(',')
        .map(str::trim)
        .collect()
}

/// Builds a `~HS` reply (for the emulator and tests): the same layout a Zebra sends.
pub fn host_status_reply(status: &PrinterStatus) -> Vec<u8> {
    let b = |on: bool| if on { '1' } else { '0' };
    format!(
        "\x02030,{},{},{:04},{:03},{},0,{},000,{},{},{}\x03\r\n\x02000,0,{},{},0,2,4,0,{:08},1,000\x03\r\n\x021234,0\x03\r\n",
        b(status.paper_out),
        b(status.paused),
        status.label_length_dots,
        status.formats_in_buffer,
        b(status.buffer_full),
        b(status.partial_format),
        b(status.corrupt_ram),
        b(status.under_temperature),
        b(status.over_temperature),
        b(status.head_open),
        b(status.ribbon_out),
        status.labels_remaining,
    )
    .into_bytes()
}

/// Builds a `~HQES` reply (for the emulator and tests).
pub fn extended_status_reply(errors: u64, warnings: u64) -> Vec<u8> {
    let line = |label: &str, mask: u64| {
        format!(
            "  {label:<16}{} {:08X} {:08X}\r\n",
            u8::from(mask != 0),
            mask >> 32,
            mask & 0xffff_ffff
        )
    };
    format!(
        "\x02\r\n  PRINTER STATUS\r\n{}{}\x03\r\n",
        line("ERRORS:", errors),
        line("WARNINGS:", warnings)
    )
    .into_bytes()
}

#[cfg(test)]
mod identification_tests {
    use super::*;

    #[test]
    fn the_resolution_comes_from_dots_per_millimetre() {
        let id = parse_identification(b"\x02ZT411-300dpi,V85.20.01Z,12,8176KB\x03\r\n").unwrap();
        assert_eq!((id.model.as_str(), id.dpi), ("ZT411-300dpi", Some(300)));
        let id = parse_identification(b"\x02ZD421,V84.20.18Z,8,8176KB,X\x03").unwrap();
        assert_eq!(id.dpi, Some(203));
        assert_eq!(
            parse_identification(b"\x02GK420,V61,7,512KB\x03")
                .unwrap()
                .dpi,
            None
        );
        assert_eq!(parse_identification(b"no frame"), None);
        assert_eq!(parse_identification(b"\x02,V1,8\x03"), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: &[u8] = b"\x02030,0,0,1218,000,0,0,0,000,0,0,0\x03\r\n\x02000,0,0,0,0,2,4,0,00000000,1,000\x03\r\n\x021234,0\x03\r\n";

    #[test]
    fn an_idle_printer() {
        let status = parse_host_status(IDLE).unwrap();
        assert!(status.is_idle());
        assert_eq!(status.label_length_dots, 1218);
        assert!(status.faults().is_empty());
    }

    #[test]
    fn every_flag_is_read_from_its_place() {
        let busy = b"\x02030,1,1,1218,002,1,0,0,000,0,1,0\x03\r\n\x02000,0,1,1,0,2,4,0,00000003,1,000\x03\r\n\x021234,0\x03\r\n";
        let status = parse_host_status(busy).unwrap();
        assert!(
            status.paper_out && status.paused && status.buffer_full && status.under_temperature
        );
        assert!(status.head_open && status.ribbon_out);
        assert_eq!((status.formats_in_buffer, status.labels_remaining), (2, 3));
        assert_eq!(
            status.faults(),
            vec![
                Fault::MediaOut,
                Fault::RibbonOut,
                Fault::HeadOpen,
                Fault::Paused,
                Fault::BufferFull,
                Fault::Temperature
            ]
        );
    }

    #[test]
    fn built_replies_parse_back() {
        let status = PrinterStatus {
            head_open: true,
            formats_in_buffer: 1,
            labels_remaining: 12,
            label_length_dots: 812,
            ..PrinterStatus::default()
        };
        assert_eq!(
            parse_host_status(&host_status_reply(&status)).unwrap(),
            status
        );
        let (errors, warnings) = parse_extended_status(&extended_status_reply(
            error_bits::MEDIA_OUT | error_bits::PAUSED,
            2,
        ))
        .unwrap();
        assert_eq!(
            (errors, warnings),
            (error_bits::MEDIA_OUT | error_bits::PAUSED, 2)
        );
    }

    #[test]
    fn extended_status_names_faults_host_status_cannot() {
        let mut status = parse_host_status(IDLE).unwrap();
        status.errors = Some(error_bits::CUTTER_FAULT);
        assert_eq!(status.faults(), vec![Fault::Hardware]);
        assert!(!status.is_idle());
        let reply = b"\x02\r\n  PRINTER STATUS\r\n   ERRORS:         1 00000000 00000005\r\n   WARNINGS:       0 00000000 00000000\r\n\x03\r\n";
        assert_eq!(parse_extended_status(reply).unwrap(), (5, 0));
    }

    #[test]
    fn garbage_is_an_error_not_ok() {
        for reply in [
            &b""[..],
            b"\x02030,0\x03",
            b"hello",
            b"\x02a,b,c,d,e,f,g,h,i,j,k,l\x03\x02m,n,o,p,q,r,s,t,u,v,w\x03\x02x,y\x03",
        ] {
            assert!(parse_host_status(reply).is_err(), "{reply:?}");
        }
        assert!(parse_extended_status(b"PRINTER STATUS").is_err());
        assert!(parse_extended_status(b"ERRORS: 1 zz 00\r\nWARNINGS: 0 0 0").is_err());
    }
}

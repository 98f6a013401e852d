//! `coi-agent devices`: what is plugged in that coi-agent can use — serial ports, USB devices
//! that match a scanner profile, and keyboard-mode input devices — each with the source URI to
//! read it. (Printers join this list with the printer adapters.)

use std::io::Write;
use std::process::ExitCode;

use serde_json::json;

use crate::scanner::profiles::{self, Mode, ScannerProfile};

/// One device found.
struct Found {
    kind: &'static str,
    name: String,
    usb: Option<(u16, u16)>,
    profile: Option<String>,
    source: Option<String>,
}

pub(super) fn devices(
    json: bool,
    config: Option<&std::path::Path>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let mut notes = Vec::new();
    // The configuration's scanner profiles (a site's scanners.d/ merged in), else the built-in.
    let config = config.and_then(|path| {
        crate::config::Config::load(path)
            .map_err(|problem| notes.push(format!("configuration: {problem}")))
            .ok()
    });
    let profiles = match &config {
        Some(config) => config.scanner_profiles.clone(),
        None => match profiles::parse(profiles::EMBEDDED) {
            Ok(profiles) => profiles,
            Err(problem) => {
                writeln!(err, "coi-agent: {problem}")?;
                return Ok(ExitCode::FAILURE);
            }
        },
    };
    let mut found = Vec::new();
    serial_ports(&profiles, &mut found, &mut notes);
    usb_devices(&profiles, &mut found, &mut notes);
    keyboards(&mut found);
    usblp_devices(&mut found);
    if let Some(config) = &config {
        configured_printers(config, &mut found);
    }
    for device in &found {
        if json {
            let usb = device.usb.map(|(v, p)| format!("{v:04x}:{p:04x}"));
            let line = json!({
                "kind": device.kind, "name": device.name, "usb": usb,
                "profile": device.profile, "source": device.source,
            });
            writeln!(out, "{line}")?;
        } else {
            let usb = device
                .usb
                .map(|(v, p)| format!(" [{v:04x}:{p:04x}]"))
                .unwrap_or_default();
            let profile = device
                .profile
                .as_deref()
                .map(|p| format!(" — {p}"))
                .unwrap_or_default();
            writeln!(out, "{:<12} {}{usb}{profile}", device.kind, device.name)?;
            match (&device.source, device.kind) {
                (Some(source), "usb-printer" | "usblp") => writeln!(
                    out,
                    "{:<12}   print with: coi-agent print --printer '{source}' --zpl FILE",
                    ""
                )?,
                (Some(source), _) => writeln!(
                    out,
                    "{:<12}   read with: coi-agent scan --source '{source}'",
                    ""
                )?,
                (None, _) => {}
            }
        }
    }
    if found.is_empty() && !json {
        writeln!(
            out,
            "no serial ports, USB scanners or keyboard devices found"
        )?;
    }
    for note in notes {
        if json {
            writeln!(out, "{}", json!({"kind": "note", "name": note}))?;
        } else {
            writeln!(err, "note: {note}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn serial_ports(profiles: &[ScannerProfile], found: &mut Vec<Found>, notes: &mut Vec<String>) {
    let ports = match serialport::available_ports() {
        Ok(ports) => ports,
        Err(problem) => {
            notes.push(format!("serial ports: {problem}"));
            return;
        }
    };
    for port in ports {
        let usb = match &port.port_type {
            serialport::SerialPortType::UsbPort(info) => Some((info.vid, info.pid)),
            _ => None,
        };
        let profile = usb.and_then(|(v, p)| profiles::find(profiles, v, p));
        let (suffix, baud) = profile.map_or(("cr", 9600), |p| (p.suffix.as_str(), p.baud));
        found.push(Found {
            kind: "serial",
            name: port.port_name.clone(),
            usb,
            profile: profile.map(|p| p.name.clone()),
            source: Some(format!(
                "serial://{}?baud={baud}&suffix={suffix}",
                port.port_name
            )),
        });
    }
}

fn usb_devices(profiles: &[ScannerProfile], found: &mut Vec<Found>, notes: &mut Vec<String>) {
    // An explicit context reports a missing USB subsystem as an error instead of panicking.
    use rusb::UsbContext as _;
    let devices = match rusb::Context::new().and_then(|context| context.devices()) {
        Ok(devices) => devices,
        Err(problem) => {
            notes.push(format!(
                "USB devices cannot be listed ({problem}): this machine has no USB bus, or /dev/bus/usb cannot be read by this user"
            ));
            return;
        }
    };
    for device in devices.iter() {
        let Ok(descriptor) = device.device_descriptor() else {
            continue;
        };
        let (vid, pid) = (descriptor.vendor_id(), descriptor.product_id());
        let printer_class = device.active_config_descriptor().is_ok_and(|config| {
            config
                .interfaces()
                .flat_map(|i| i.descriptors())
                .any(|d| d.class_code() == 7)
        });
        if printer_class
            || crate::printer::profiles::parse(crate::printer::profiles::EMBEDDED)
                .is_ok_and(|p| crate::printer::profiles::covers(&p, vid, pid))
        {
            found.push(Found {
                kind: "usb-printer",
                name: format!("bus {} device {}", device.bus_number(), device.address()),
                usb: Some((vid, pid)),
                profile: None,
                source: Some(format!("usb://{vid:04x}:{pid:04x}")),
            });
            continue;
        }
        let Some(profile) = profiles::find(profiles, vid, pid) else {
            continue;
        };
        // A HID interface that is not a boot keyboard is the point-of-sale mode.
        let hid_pos = device.active_config_descriptor().is_ok_and(|config| {
            config
                .interfaces()
                .flat_map(|i| i.descriptors())
                .any(|d| d.class_code() == 3 && d.protocol_code() != 1)
        });
        let source = (hid_pos && profile.modes.contains(&Mode::HidPos))
            .then(|| format!("hid://{vid:04x}:{pid:04x}"));
        found.push(Found {
            kind: "usb-scanner",
            name: format!("bus {} device {}", device.bus_number(), device.address()),
            usb: Some((vid, pid)),
            profile: Some(profile.name.clone()),
            source,
        });
    }
}

/// Printers the configuration names, each asked for its status now (1 s at most each).
fn configured_printers(config: &crate::config::Config, found: &mut Vec<Found>) {
    use crate::printer::job::{Timing, query_status};
    use crate::printer::transport::{Channel, Connection};
    let Ok(runtime) = super::runtime() else {
        return;
    };
    for printer in &config.printers {
        let uri = &printer.uri;
        let status = {
            runtime.block_on(async {
                let mut conn = match Connection::open(uri).await {
                    Ok(conn) => conn,
                    Err(problem) => return format!("UNKNOWN: {problem}"),
                };
                if uri.channel() != Channel::Status {
                    return "reachable (no status channel)".to_owned();
                }
                let timing = Timing {
                    status_timeout: std::time::Duration::from_secs(1),
                    ..Timing::default()
                };
                match query_status(&mut conn, timing).await {
                    Ok(status) if status.faults().is_empty() => "ready".to_owned(),
                    Ok(status) => format!(
                        "FAULT: {}",
                        status
                            .faults()
                            .iter()
                            .map(|f| f.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    Err(problem) => format!("UNKNOWN: {problem}"),
                }
            })
        };
        found.push(Found {
            kind: "printer",
            name: format!("{} ({}): {status}", printer.name, printer.uri_text),
            usb: None,
            profile: printer.profile.as_ref().map(|p| p.model.clone()),
            source: None,
        });
    }
}

/// USB printers the kernel's usblp driver exposes as /dev/usb/lpN.
fn usblp_devices(found: &mut Vec<Found>) {
    let Ok(entries) = std::fs::read_dir("/dev/usb") else {
        return;
    };
    let mut paths: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path().display().to_string())
        .filter(|p| {
            p.rsplit('/')
                .next()
                .is_some_and(|name| name.starts_with("lp"))
        })
        .collect();
    paths.sort();
    for path in paths {
        found.push(Found {
            kind: "usblp",
            source: Some(format!("file://{path}")),
            name: path,
            usb: None,
            profile: None,
        });
    }
}

/// Keyboard-mode scanners show up as keyboards under /dev/input/by-id.
fn keyboards(found: &mut Vec<Found>) {
    let Ok(entries) = std::fs::read_dir("/dev/input/by-id") else {
        return;
    };
    let mut paths: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path().display().to_string())
        .filter(|p| p.ends_with("-event-kbd"))
        .collect();
    paths.sort();
    for path in paths {
        found.push(Found {
            kind: "keyboard",
            source: Some(format!("evdev://{path}")),
            name: path,
            usb: None,
            profile: None,
        });
    }
}

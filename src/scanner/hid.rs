//! USB HID point-of-sale scanners (HID usage page 0x8C, "HID POS" in scanner manuals), read
//! through libusb (rusb, vendored) on a dedicated thread. Reads arrive as whole barcodes in
//! Scanned Data Reports, so no suffix is involved.
//!
//! The report layout decoded here is the one Honeywell and Zebra scanners use in HID POS mode:
//! report id 0x02, a length byte, the three AIM symbology identifier characters, the data, and
//! a continuation flag in the report's last byte for reads longer than one report. It has not
//! yet been checked against real hardware on this project (no USB devices where it is built).

use std::time::Duration;

use super::{Input, Stop, run_blocking};

const SCANNED_DATA_REPORT: u8 = 0x02;
const HID_CLASS: u8 = 3;
/// Longer than any read a COI label holds; see `HidPosDecoder::report`.
const MAX_READ: usize = 64 * 1024;

/// Reassembles reads from Scanned Data Reports.
#[derive(Debug, Default)]
pub struct HidPosDecoder {
    read: Vec<u8>,
}

impl HidPosDecoder {
    /// Feeds one input report (report id first); returns a whole read when its last report
    /// arrives.
    pub fn report(&mut self, report: &[u8]) -> Option<Vec<u8>> {
        let [id, len, aim @ .., _] = report else {
            return None;
        };
        if *id != SCANNED_DATA_REPORT || aim.len() < 3 {
            return None;
        }
        let (symbology, payload) = aim.split_at(3);
        if self.read.is_empty() && symbology[0] == b']' {
            self.read.extend_from_slice(symbology);
        }
        // The length byte counts one byte beyond the data; clamp it to what the report holds.
        let data_len = usize::from(*len).saturating_sub(1).min(payload.len());
        self.read.extend_from_slice(&payload[..data_len]);
        // A device that never clears its continuation flag cannot grow memory without bound:
        // past the limit the read is handed on, and the framing's length check refuses it.
        if self.read.len() > MAX_READ {
            return Some(std::mem::take(&mut self.read));
        }
        let more = report.last().is_some_and(|&flag| flag != 0);
        (!more).then(|| std::mem::take(&mut self.read))
    }
}

pub(super) fn read(vendor_id: u16, product_id: u16, stop: &Stop) {
    let name = format!("USB {vendor_id:04x}:{product_id:04x}");
    run_blocking(
        stop,
        || {
            let device =
                open(vendor_id, product_id).map_err(|reason| format!("{name}: {reason}"))?;
            let detail = format!("{name}, HID interface {}", device.interface);
            Ok((device, detail))
        },
        |device, stop| read_reports(device, stop).map(|reason| format!("{name}: {reason}")),
    );
}

struct HidDevice {
    handle: rusb::DeviceHandle<rusb::Context>,
    interface: u8,
    endpoint: u8,
    max_packet: usize,
}

/// Opens the first matching device and claims its HID interface (detaching the kernel's
/// keyboard driver, so nothing else sees the scans).
fn open(vendor_id: u16, product_id: u16) -> Result<HidDevice, String> {
    use rusb::UsbContext as _;
    // An explicit context: rusb's global one panics where there is no USB subsystem.
    let context = rusb::Context::new().map_err(|e| format!("USB is not available: {e}"))?;
    let handle = context
        .open_device_with_vid_pid(vendor_id, product_id)
        .ok_or_else(|| "not connected, or no permission to open it".to_owned())?;
    let config = handle
        .device()
        .active_config_descriptor()
        .map_err(|e| e.to_string())?;
    let (interface, endpoint, max_packet) = config
        .interfaces()
        .flat_map(|interface| interface.descriptors())
        .filter(|d| d.class_code() == HID_CLASS)
        .find_map(|d| {
            d.endpoint_descriptors()
                .find(|e| {
                    e.direction() == rusb::Direction::In
                        && e.transfer_type() == rusb::TransferType::Interrupt
                })
                .map(|e| {
                    (
                        d.interface_number(),
                        e.address(),
                        usize::from(e.max_packet_size()),
                    )
                })
        })
        .ok_or_else(|| "no HID interface with an interrupt IN endpoint".to_owned())?;
    // Not every platform supports auto-detach; claiming tells us if it mattered.
    let _ = handle.set_auto_detach_kernel_driver(true);
    handle
        .claim_interface(interface)
        .map_err(|e| format!("claim interface {interface}: {e}"))?;
    Ok(HidDevice {
        handle,
        interface,
        endpoint,
        max_packet,
    })
}

fn read_reports(device: &mut HidDevice, stop: &Stop) -> Option<String> {
    let mut decoder = HidPosDecoder::default();
    let mut buf = vec![0u8; device.max_packet.max(64)];
    loop {
        if stop.now() {
            return None;
        }
        match device
            .handle
            .read_interrupt(device.endpoint, &mut buf, Duration::from_millis(100))
        {
            Ok(n) => {
                if let Some(read) = decoder.report(&buf[..n])
                    && !read.is_empty()
                    && !stop.send(Input::Frame(read))
                {
                    return None;
                }
            }
            Err(rusb::Error::Timeout | rusb::Error::Interrupted) => {}
            Err(err) => return Some(err.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(data: &[u8], more: bool) -> Vec<u8> {
        let mut report = vec![0u8; 64];
        report[0] = SCANNED_DATA_REPORT;
        report[1] = (data.len() + 1) as u8;
        report[2..5].copy_from_slice(b"]C0");
        report[5..5 + data.len()].copy_from_slice(data);
        report[63] = u8::from(more);
        report
    }

    #[test]
    fn one_report_is_one_read_with_its_aim_prefix() {
        let mut decoder = HidPosDecoder::default();
        assert_eq!(
            decoder.report(&report(b"=A99992212345600", false)),
            Some(b"]C0=A99992212345600".to_vec())
        );
    }

    #[test]
    fn continued_reports_are_joined() {
        let mut decoder = HidPosDecoder::default();
        assert_eq!(
            decoder.report(&report(b"=+02000=A99992212345600", true)),
            None
        );
        let read = decoder
            .report(&report(b"&/CHA999925000042", false))
            .unwrap();
        assert_eq!(read, b"]C0=+02000=A99992212345600&/CHA999925000042");
    }

    #[test]
    fn other_reports_and_garbage_are_ignored() {
        let mut decoder = HidPosDecoder::default();
        assert_eq!(decoder.report(&[0x01, 0x00, 0x04]), None);
        assert_eq!(decoder.report(&[]), None);
        assert_eq!(decoder.report(&[0x02, 0xff]), None);
        let mut lying = report(b"=A", false);
        lying[1] = 255; // longer than the report: clamped, never a panic
        assert!(decoder.report(&lying).is_some());
    }
}

//! USB printers through libusb (rusb, vendored): the printer-class interface (class 7) of a
//! device picked by vendor and product id (Zebra is 0x0A5F) and, when several are plugged in,
//! serial number; bulk OUT for ZPL, bulk IN for status answers. Thin on purpose: the protocol is
//! the same as over TCP, and no USB devices exist where this is built, so this code is compiled
//! and reviewed, not exercised by tests.

use std::time::Duration;

use rusb::UsbContext as _;

const PRINTER_CLASS: u8 = 7;
/// A bulk transfer that takes longer than this means the printer stopped taking data.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// An open, claimed USB printer interface.
#[derive(Debug)]
pub struct UsbPrinter {
    handle: rusb::DeviceHandle<rusb::Context>,
    interface: u8,
    bulk_out: u8,
    bulk_in: Option<u8>,
}

impl UsbPrinter {
    /// Opens the matching device and claims its printer interface.
    ///
    /// # Errors
    /// No USB subsystem, no matching device, no permission, or no printer interface.
    pub fn open(
        vendor_id: u16,
        product_id: u16,
        serial: Option<&str>,
    ) -> Result<UsbPrinter, String> {
        // An explicit context: rusb's global one panics where there is no USB subsystem.
        let context = rusb::Context::new().map_err(|e| format!("USB is not available: {e}"))?;
        let devices = context.devices().map_err(|e| e.to_string())?;
        for device in devices.iter() {
            let Ok(descriptor) = device.device_descriptor() else {
                continue;
            };
            if descriptor.vendor_id() != vendor_id || descriptor.product_id() != product_id {
                continue;
            }
            let handle = device
                .open()
                .map_err(|e| format!("open: {e} (check the udev rules)"))?;
            if let Some(wanted) = serial {
                let found = handle
                    .read_serial_number_string_ascii(&descriptor)
                    .unwrap_or_default();
                if found != wanted {
                    continue;
                }
            }
            let config = device
                .active_config_descriptor()
                .map_err(|e| e.to_string())?;
            let printer = config
                .interfaces()
                .flat_map(|i| i.descriptors())
                .find(|d| d.class_code() == PRINTER_CLASS);
            let Some(printer) = printer else {
                return Err("no printer-class interface".to_owned());
            };
            let bulk = |direction| {
                printer
                    .endpoint_descriptors()
                    .find(|e| {
                        e.transfer_type() == rusb::TransferType::Bulk && e.direction() == direction
                    })
                    .map(|e| e.address())
            };
            let bulk_out = bulk(rusb::Direction::Out).ok_or("no bulk OUT endpoint")?;
            let bulk_in = bulk(rusb::Direction::In);
            let interface = printer.interface_number();
            // usblp may hold the interface; auto-detach hands it to us while we print.
            let _ = handle.set_auto_detach_kernel_driver(true);
            handle
                .claim_interface(interface)
                .map_err(|e| format!("claim interface {interface}: {e}"))?;
            return Ok(UsbPrinter {
                handle,
                interface,
                bulk_out,
                bulk_in,
            });
        }
        Err("not connected".to_owned())
    }

    /// Writes all of `bytes` on the bulk OUT endpoint.
    ///
    /// # Errors
    /// The device stopped taking data or went away.
    pub fn write(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = self
                .handle
                .write_bulk(self.bulk_out, rest, WRITE_TIMEOUT)
                .map_err(io)?;
            rest = &rest[n..];
        }
        Ok(())
    }

    /// Reads what the printer has sent within `wait` (empty if nothing).
    ///
    /// # Errors
    /// The device went away; a printer without a bulk IN endpoint has no answers.
    pub fn read(&self, wait: Duration) -> std::io::Result<Vec<u8>> {
        let Some(endpoint) = self.bulk_in else {
            return Err(std::io::Error::other(
                "this printer has no status channel (no bulk IN endpoint)",
            ));
        };
        let mut buf = vec![0u8; 512];
        match self
            .handle
            .read_bulk(endpoint, &mut buf, wait.max(Duration::from_millis(1)))
        {
            Ok(n) => {
                buf.truncate(n);
                Ok(buf)
            }
            Err(rusb::Error::Timeout) => Ok(Vec::new()),
            Err(err) => Err(io(err)),
        }
    }
}

impl Drop for UsbPrinter {
    fn drop(&mut self) {
        let _ = self.handle.release_interface(self.interface);
    }
}

fn io(err: rusb::Error) -> std::io::Error {
    std::io::Error::other(err.to_string())
}

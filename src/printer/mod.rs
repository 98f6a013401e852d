//! Label printers (Zebra ZPL first): transports, the printer's own status (`~HS`, `~HQES`),
//! and the job lifecycle that reports what really happened to each label. Also the printer
//! emulator used by tests and by sites validating an installation.

pub mod emulator;
pub mod job;
pub mod profiles;
pub mod status;
pub mod transport;
pub mod usb;

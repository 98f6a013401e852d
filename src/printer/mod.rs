//! Label printers (Zebra ZPL first): transports, the printer's own status (`~HS`, `~HQES`),
//! and the job lifecycle that reports what really happened to each label. Also the printer
//! emulator used by tests and by sites validating an installation.

pub mod emulator;
pub mod job;
pub mod profiles;
pub mod status;
pub mod transport;
pub mod usb;

use job::{PrinterHandle, Timing};
use profiles::PrinterProfile;
use transport::PrinterUri;

/// The resolution a label is laid out at when nothing says otherwise (a spool directory with no
/// profile).
pub const DEFAULT_DPI: u32 = 203;

/// A configured printer, started: the task that owns it and the resolution its labels are laid
/// out at, decided once.
#[derive(Debug, Clone)]
pub struct ReadyPrinter {
    pub name: String,
    pub handle: PrinterHandle,
    pub dpi: u32,
    /// A spool directory, not a printer: its jobs are confirmed once written.
    pub spool: bool,
    /// Whether the printer answers status queries.
    pub has_status: bool,
}

/// The resolution to lay a label out at: what the printer reports (`~HI`), which must agree
/// with what was `asked` (by a profile or an option, named by `who`).
///
/// # Errors
/// The printer reports another resolution than asked for.
pub fn resolution(
    reported: Option<u32>,
    asked: Option<(u32, &str)>,
) -> Result<Option<u32>, String> {
    match (reported, asked) {
        (Some(printer), Some((asked, who))) if printer != asked => Err(format!(
            "the printer reports {printer} dpi, {who} {asked} dpi"
        )),
        (Some(printer), _) => Ok(Some(printer)),
        (None, asked) => Ok(asked.map(|(dpi, _)| dpi)),
    }
}

/// Starts the task that owns printer `name` and decides its resolution: the printer's own
/// (`~HI`), checked against its profile; a spool directory's is its profile's, else
/// [`DEFAULT_DPI`].
///
/// # Errors
/// The printer reports a resolution its profile contradicts, or reports none and has no
/// profile (a label at the wrong resolution prints at the wrong size). The task is stopped.
pub async fn start(
    name: &str,
    uri: &PrinterUri,
    profile: Option<&PrinterProfile>,
) -> Result<ReadyPrinter, String> {
    // A model without ~HQES would make every status poll wait out an answer that never comes.
    let timing = Timing {
        extended_status: profile.is_none_or(|p| p.hqes),
        ..Timing::default()
    };
    let spool = matches!(uri, PrinterUri::Spool(_));
    let has_status = uri.has_status();
    let handle = PrinterHandle::spawn(job::Printer::new(uri.clone(), timing));
    let reported = if has_status {
        handle.identify().await.and_then(|id| id.dpi)
    } else {
        None
    };
    let dpi = match resolution(reported, profile.map(|p| (p.dpi, "its profile says"))) {
        Ok(Some(dpi)) => dpi,
        Ok(None) if spool => DEFAULT_DPI,
        Ok(None) => {
            handle.shutdown().await;
            return Err(format!(
                "printer {name}: it did not report its resolution (~HI) and has no profile: give it one in the configuration"
            ));
        }
        Err(problem) => {
            handle.shutdown().await;
            return Err(format!("printer {name}: {problem}"));
        }
    };
    Ok(ReadyPrinter {
        name: name.to_owned(),
        handle,
        dpi,
        spool,
        has_status,
    })
}

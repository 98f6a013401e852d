//! `coi-agent scan`: reads a scanner until interrupted and prints one line per scan; and the
//! scanner part of `coi-agent devices`.

use std::io::Write;
use std::process::ExitCode;

use serde_json::{Value as Json, json};
use tokio::sync::{mpsc, watch};

use crate::scanner::source::ScannerSpec;
use crate::scanner::{self, Scan, ScanError, ScannerState};

/// Reads `uri` until SIGINT or SIGTERM (or the end of standard input for `stdin:`).
pub(super) fn scan(
    uri: &str,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let spec = match ScannerSpec::parse(uri) {
        Ok(spec) => spec,
        Err(problem) => {
            writeln!(err, "coi-agent: {problem}")?;
            return Ok(ExitCode::FAILURE);
        }
    };
    let runtime = super::runtime()?;
    let res = runtime.block_on(read_until_stopped(spec, err, async |scan: &Scan| {
        write_scan(out, scan, json)?;
        out.flush()?;
        Ok(())
    }));
    // Standard input is read on a blocking thread that cannot be interrupted; do not wait for it.
    runtime.shutdown_background();
    res
}

/// Reads `spec` until SIGINT or SIGTERM (or the end of its input), handing each scan to
/// `on_scan` as it comes and saying the scanner's state changes on `err`.
pub(super) async fn read_until_stopped(
    spec: ScannerSpec,
    err: &mut dyn Write,
    mut on_scan: impl AsyncFnMut(&Scan) -> anyhow::Result<()>,
) -> anyhow::Result<ExitCode> {
    let (scans_tx, mut scans) = mpsc::channel(256);
    let (state_tx, mut state) = watch::channel(ScannerState::Connecting);
    let (shutdown_tx, shutdown) = watch::channel(false);
    let mut reader = tokio::spawn(scanner::run(spec, scans_tx, state_tx, shutdown));
    // Both signal streams exist before the loop, so a signal that lands while a scan is being
    // written is not missed.
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut stopping = false;
    let mut watching_state = true;
    loop {
        tokio::select! {
            scan = scans.recv() => match scan {
                Some(scan) => on_scan(&scan).await?,
                // The reader ended (shutdown, or the end of standard input).
                None => break,
            },
            changed = state.changed(), if watching_state => {
                if changed.is_err() {
                    watching_state = false;
                    continue;
                }
                let now = state.borrow_and_update().clone();
                writeln!(err, "scanner: {now}")?;
            }
            _ = sigint.recv(), if !stopping => {
                stopping = true;
                shutdown_tx.send_replace(true);
            }
            _ = sigterm.recv(), if !stopping => {
                stopping = true;
                shutdown_tx.send_replace(true);
            }
        }
    }
    let _ = (&mut reader).await;
    Ok(ExitCode::SUCCESS)
}

/// One line per scan: JSON for programs, text for people.
pub(crate) fn write_scan(out: &mut dyn Write, scan: &Scan, json: bool) -> std::io::Result<()> {
    let parsed = scan.parse();
    if json {
        return writeln!(out, "{}", scan_json(scan, &parsed));
    }
    writeln!(out, "{} {}", scan.at, scan.source)?;
    match &parsed {
        Ok(message) => super::isbt::write_text(out, &scan.raw, &Ok(message.clone())),
        Err(ScanError::Isbt128(error)) => {
            super::isbt::write_text(out, &scan.raw, &Err(error.clone()))
        }
        Err(ScanError::Frame(problem)) => {
            let shown: String = scan
                .raw
                .iter()
                .flat_map(|&b| std::ascii::escape_default(b))
                .map(char::from)
                .collect();
            writeln!(out, "{shown}\n  INVALID: {problem}")
        }
    }
}

fn scan_json(
    scan: &Scan,
    parsed: &Result<crate::isbt128::message::Message<'_>, ScanError>,
) -> Json {
    let raw_hex: String = scan.raw.iter().map(|b| format!("{b:02x}")).collect();
    let mut line = json!({
        "at": scan.at.to_string(),
        "source": scan.source,
        "symbology": symbology(scan, parsed),
        "raw_hex": raw_hex,
        "ok": parsed.is_ok(),
    });
    match parsed {
        Ok(message) => {
            line["structures"] = message
                .structures
                .iter()
                .map(super::isbt::structure_json)
                .collect();
        }
        Err(error) => {
            line["error"] = json!(error.to_string());
            line["error_kind"] = json!(error.kind());
        }
    }
    line
}

/// The AIM identifier the scan carried: as parsed, or as its first three bytes when the rest
/// did not parse.
fn symbology(
    scan: &Scan,
    parsed: &Result<crate::isbt128::message::Message<'_>, ScanError>,
) -> Option<String> {
    if let Ok(message) = parsed {
        return message.symbology.map(|s| s.as_str().to_owned());
    }
    match scan.raw.get(..3) {
        Some(&[b']', code, modifier])
            if code.is_ascii_alphabetic() && modifier.is_ascii_alphanumeric() =>
        {
            Some(String::from_utf8_lossy(&scan.raw[..3]).into_owned())
        }
        _ => None,
    }
}

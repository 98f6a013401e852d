//! `coi-agent print`, `coi-agent printer status` and `coi-agent dev printer-emulator`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncBufReadExt;

use crate::printer::emulator::{EmulatedFault, Emulator};
use crate::printer::job::{Job, JobOutcome, JobPhase, Printer, Timing, query_status};
use crate::printer::transport::{Connection, PrinterUri};

/// What to print: a ZPL file as it is, or a label made (and proven) from a template.
pub(super) enum Format<'a> {
    File(std::path::PathBuf),
    Template(super::label::Request<'a>),
}

pub(super) fn print(
    printer: &str,
    format: Format<'_>,
    copies: u32,
    job_id: Option<String>,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let uri = match PrinterUri::parse(printer) {
        Ok(uri) => uri,
        Err(problem) => {
            writeln!(err, "coi-agent: {problem}")?;
            return Ok(ExitCode::from(2));
        }
    };
    let runtime = super::runtime()?;
    let spool = !uri.has_status();
    let mut device = Printer::new(uri, Timing::default());
    let format = match format {
        Format::Template(mut request) => {
            // A label laid out for another resolution prints at the wrong size: ask the
            // printer what it is, and refuse a mismatch.
            let reported = if spool {
                None
            } else {
                runtime.block_on(device.identify()).and_then(|id| id.dpi)
            };
            let asked = request.dpi.map(|dpi| (dpi, "the label was asked for"));
            match crate::printer::resolution(reported, asked) {
                Ok(dpi) => request.dpi = dpi,
                Err(problem) => {
                    writeln!(err, "coi-agent: label not made, nothing sent: {problem}")?;
                    return Ok(ExitCode::FAILURE);
                }
            }
            if request.dpi.is_none() && !spool {
                writeln!(
                    err,
                    "coi-agent: the printer did not report its resolution; making the label at {} dpi (use --dpi)",
                    super::label::DEFAULT_DPI
                )?;
            }
            match super::label::make(&request) {
                Ok(made) => made.zpl.into_bytes(),
                Err(problem) => {
                    writeln!(err, "coi-agent: label not made, nothing sent: {problem}")?;
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        Format::File(zpl) => {
            let format =
                std::fs::read(&zpl).map_err(|e| anyhow::anyhow!("read {}: {e}", zpl.display()))?;
            if !format.windows(3).any(|w| w == b"^XA") || !format.windows(3).any(|w| w == b"^XZ") {
                writeln!(
                    err,
                    "coi-agent: {} is not a ZPL label (no ^XA ... ^XZ)",
                    zpl.display()
                )?;
                return Ok(ExitCode::FAILURE);
            }
            format
        }
    };
    let job = Job {
        id: job_id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        zpl: format.repeat(copies as usize),
        expires_at: None,
    };
    let outcome = runtime.block_on(device.submit(&job));
    report(&outcome, spool, json.then(serde_json::Map::new), out)
}

/// Says what became of a job, as the printer told it: one line for a person, or with `json`
/// one JSON object (`job_id`, `state`, `fault`, `bytes`, and the fields in `json`). Exit 0 only
/// for a confirmed job.
pub(super) fn report(
    outcome: &JobOutcome,
    spool: bool,
    json: Option<serde_json::Map<String, serde_json::Value>>,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    if let Some(mut line) = json {
        line.insert("job_id".into(), json!(outcome.job_id));
        line.insert("state".into(), json!(outcome.phase.as_str()));
        line.insert("fault".into(), json!(outcome.fault.map(|f| f.as_str())));
        line.insert("bytes".into(), json!(outcome.bytes));
        writeln!(out, "{}", serde_json::Value::Object(line))?;
    } else {
        writeln!(
            out,
            "job {}: {}",
            outcome.job_id,
            crate::report::outcome_message(outcome, spool)
        )?;
    }
    Ok(if outcome.phase == JobPhase::Confirmed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub(super) fn status(
    printer: &str,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let uri = match PrinterUri::parse(printer) {
        Ok(uri) => uri,
        Err(problem) => {
            writeln!(err, "coi-agent: {problem}")?;
            return Ok(ExitCode::from(2));
        }
    };
    let runtime = super::runtime()?;
    let res = runtime.block_on(async {
        let mut conn = Connection::open(&uri).await?;
        if !uri.has_status() {
            return Ok(None);
        }
        query_status(&mut conn, Timing::default()).await.map(Some)
    });
    let (reachable, status, problem) = match res {
        Ok(status) => (true, status, None),
        Err(problem) => (false, None, Some(problem.to_string())),
    };
    let faults: Vec<&str> = status
        .as_ref()
        .map(|s| s.faults().iter().map(|f| f.as_str()).collect())
        .unwrap_or_default();
    if json {
        let mut line = json!({"printer": printer, "reachable": reachable, "status": if !reachable { "unknown" } else if status.is_none() { "no_status_channel" } else if faults.is_empty() { "ok" } else { "fault" }, "faults": faults});
        if let Some(s) = &status {
            line["formats_in_buffer"] = json!(s.formats_in_buffer);
            line["labels_remaining"] = json!(s.labels_remaining);
            line["paper_out"] = json!(s.paper_out);
            line["paused"] = json!(s.paused);
            line["head_open"] = json!(s.head_open);
            line["ribbon_out"] = json!(s.ribbon_out);
            line["errors"] = json!(s.errors.map(|e| format!("{e:016X}")));
            line["warnings"] = json!(s.warnings.map(|w| format!("{w:016X}")));
        }
        if let Some(problem) = &problem {
            line["error"] = json!(problem);
        }
        writeln!(out, "{line}")?;
    } else {
        match (&status, &problem) {
            (_, Some(problem)) => writeln!(out, "{printer}: UNKNOWN: {problem}")?,
            (None, None) => writeln!(out, "{printer}: reachable (no status channel)")?,
            (Some(s), None) if faults.is_empty() => writeln!(
                out,
                "{printer}: ready ({} formats waiting, {} labels to print)",
                s.formats_in_buffer, s.labels_remaining
            )?,
            (Some(_), None) => writeln!(out, "{printer}: FAULT: {}", faults.join(", "))?,
        }
    }
    Ok(if reachable && faults.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs the emulator until SIGINT/SIGTERM or the end of standard input, taking commands on
/// standard input: `fault media_out|ribbon_out|head_open|paused on|off`, `silent on|off`,
/// `slow MS`, `drop`, `printed`.
pub(super) fn emulator(
    listen: &str,
    print_delay_ms: u64,
    serial: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let address: std::net::SocketAddr = listen
        .parse()
        .map_err(|_| anyhow::anyhow!("--listen {listen:?} is not IP:PORT"))?;
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let emulator = Emulator::start(address).await?;
        emulator.set_print_delay(Duration::from_millis(print_delay_ms));
        writeln!(out, "printer emulator listening on {}", emulator.address())?;
        if serial {
            let port = emulator.serve_serial()?;
            writeln!(out, "printer emulator on serial port {} (serial://{}?baud=9600)", port.display(), port.display())?;
        }
        writeln!(err, "commands: fault media_out|ribbon_out|head_open|paused on|off, silent on|off, slow MS, drop, printed")?;
        out.flush()?;
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            let line = tokio::select! {
                line = lines.next_line() => match line {
                    Ok(Some(line)) => line,
                    // Input ended (e.g. run in the background): keep serving until a signal.
                    _ => {
                        tokio::select! {
                            _ = tokio::signal::ctrl_c() => {}
                            _ = sigterm.recv() => {}
                        }
                        break;
                    }
                },
                _ = tokio::signal::ctrl_c() => break,
                _ = sigterm.recv() => break,
            };
            let words: Vec<&str> = line.split_whitespace().collect();
            let on = |word: Option<&&str>| word.is_some_and(|w| *w == "on");
            let reply = match words.as_slice() {
                ["fault", name, rest @ ..] => match fault(name) {
                    Some(f) => {
                        emulator.set_fault(f, on(rest.first()));
                        format!("fault {name} {}", if on(rest.first()) { "on" } else { "off" })
                    }
                    None => format!("unknown fault {name:?}"),
                },
                ["silent", rest @ ..] => {
                    emulator.set_silent(on(rest.first()));
                    "ok".to_owned()
                }
                ["slow", ms] => match ms.parse() {
                    Ok(ms) => {
                        emulator.set_status_delay(Duration::from_millis(ms));
                        "ok".to_owned()
                    }
                    Err(_) => "slow takes milliseconds".to_owned(),
                },
                ["drop"] => {
                    emulator.drop_during_next_job();
                    "the next job's connection will drop".to_owned()
                }
                ["printed"] => format!("{} printed, {} received", emulator.printed().len(), emulator.received().len()),
                [] => continue,
                _ => "unknown command".to_owned(),
            };
            writeln!(out, "{reply}")?;
            out.flush()?;
        }
        anyhow::Ok(())
    })?;
    runtime.shutdown_background();
    Ok(ExitCode::SUCCESS)
}

fn fault(name: &str) -> Option<EmulatedFault> {
    Some(match name {
        "media_out" => EmulatedFault::MediaOut,
        "ribbon_out" => EmulatedFault::RibbonOut,
        "head_open" => EmulatedFault::HeadOpen,
        "paused" => EmulatedFault::Paused,
        _ => return None,
    })
}

//! `coi-agent receive`: the receipt scan at this site, judged against the journal's order cache
//! and recorded with its custody event ([`crate::receiving`]).

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use crate::agent::JournalOwner;
use crate::config::Config;
use crate::reconcile::Outcome;
use crate::report::ScanReport;
use crate::scanner::Scan;
use crate::scanner::source::{ScannerSpec, SourceConfig};

pub(super) struct Options<'a> {
    pub config: &'a Config,
    pub operator: Option<&'a str>,
    pub source: Option<&'a str>,
    /// Where DATA came from: `command line`, or `typed` (identifiers a person typed).
    pub entry: &'a str,
    pub json: bool,
}

pub(super) fn run(
    opts: &Options<'_>,
    data: &[OsString],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let config = opts.config;
    let journal = JournalOwner::for_config(config)?;
    let operator = opts.operator.map(str::to_owned);
    let spec = match opts.source.map(ScannerSpec::parse) {
        Some(Err(problem)) => {
            writeln!(err, "coi-agent: {problem}")?;
            return Ok(ExitCode::FAILURE);
        }
        Some(Ok(spec)) => Some(spec),
        None => None,
    };
    // What a person types at a terminal is typed entry (issue #17): eye-readable identifiers
    // with their check characters, never raw scanner data.
    if spec
        .as_ref()
        .is_some_and(|spec| spec.source == SourceConfig::Stdin)
        && std::io::IsTerminal::is_terminal(&std::io::stdin())
    {
        writeln!(
            err,
            "coi-agent: stdin: is a terminal: a person types the identifiers with --typed DIN COI (each with its boxed check character); stdin: reads a scanner's data piped in"
        )?;
        return Ok(ExitCode::FAILURE);
    }
    let central = crate::agent::CentralLink::from_config(config);
    let runtime = super::runtime()?;
    let mut all_match = true;
    let mut pending_half = false;
    let mut receive = async |scan: &Scan| -> anyhow::Result<()> {
        // The verdict is shown only once it is recorded.
        let recorded =
            crate::agent::receive_scan(&journal, central.as_ref(), scan.clone(), operator.clone())
                .await?;
        if opts.json {
            writeln!(
                out,
                "{}",
                serde_json::to_string(&ScanReport::new(&recorded))?
            )?;
        } else {
            super::reconcile::write_verdict(out, &recorded.verdict, false)?;
        }
        out.flush()?;
        // A half is judged with the scan that completes it; only a final verdict counts, and a
        // half that nothing completed is no match.
        let half = matches!(recorded.verdict.outcome, Outcome::Incomplete(_));
        let sample = recorded.verdict.outcome == Outcome::Sample;
        all_match &= half || sample || recorded.verdict.is_match();
        pending_half = half;
        Ok(())
    };
    let res = runtime.block_on(async {
        match spec {
            None => {
                for input in data {
                    let scan = Scan {
                        at: jiff::Timestamp::now(),
                        source: opts.entry.to_owned(),
                        raw: input.as_encoded_bytes().to_vec(),
                        problem: None,
                    };
                    receive(&scan).await?;
                }
                Ok(ExitCode::SUCCESS)
            }
            Some(spec) => super::scan::read_until_stopped(spec, err, receive).await,
        }
    });
    // A scanner on standard input is read on a blocking thread that cannot be interrupted.
    runtime.shutdown_background();
    let code = res?;
    Ok(
        if code == ExitCode::SUCCESS && (!all_match || pending_half) && opts.source.is_none() {
            ExitCode::FAILURE
        } else {
            code
        },
    )
}

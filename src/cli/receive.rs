//! `coi-agent receive`: the receipt scan at this site, judged against the journal's order cache
//! and recorded with its custody event ([`crate::receiving`]).

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::agent::JournalOwner;
use crate::config::Config;
use crate::report::ScanReport;
use crate::scanner::Scan;
use crate::scanner::source::ScannerSpec;

pub(super) struct Options<'a> {
    pub config: &'a Path,
    pub operator: Option<&'a str>,
    pub source: Option<&'a str>,
    pub json: bool,
}

pub(super) fn run(
    opts: &Options<'_>,
    data: &[OsString],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let config = Config::load(opts.config)?;
    let journal = JournalOwner::start(&config.journal, &config.site_id, &config.workstation)?;
    let operator = opts.operator.map(str::to_owned);
    let spec = match opts.source.map(ScannerSpec::parse) {
        Some(Err(problem)) => {
            writeln!(err, "coi-agent: {problem}")?;
            return Ok(ExitCode::FAILURE);
        }
        Some(Ok(spec)) => Some(spec),
        None => None,
    };
    let runtime = super::runtime()?;
    let mut all_match = true;
    let mut receive = async |scan: &Scan| -> anyhow::Result<()> {
        // The verdict is shown only once it is recorded.
        let recorded = journal.receive(scan.clone(), operator.clone()).await?;
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
        all_match &= recorded.verdict.is_match();
        Ok(())
    };
    let res = runtime.block_on(async {
        match spec {
            None => {
                for input in data {
                    let scan = Scan {
                        at: jiff::Timestamp::now(),
                        source: "command line".to_owned(),
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
        if code == ExitCode::SUCCESS && !all_match && opts.source.is_none() {
            ExitCode::FAILURE
        } else {
            code
        },
    )
}

//! `coi-agent receive`: the receipt scan at this site, judged against the journal's order cache
//! and recorded with its custody event ([`crate::receiving`]).

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::config::Config;
use crate::custody::Station;
use crate::journal::Journal;
use crate::receiving;
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
    let mut journal = Journal::open(&config.journal)?;
    let station = Station {
        site_id: &config.site_id,
        workstation: &config.workstation,
    };
    let mut receive = |scan: &Scan, out: &mut dyn Write| -> anyhow::Result<bool> {
        // The verdict is shown only once it is recorded.
        let verdict = receiving::receive(&mut journal, scan, station, opts.operator)?;
        super::reconcile::write_verdict(out, &verdict, opts.json)?;
        out.flush()?;
        Ok(verdict.is_match())
    };
    let Some(uri) = opts.source else {
        let mut all_match = true;
        for input in data {
            let scan = Scan {
                at: jiff::Timestamp::now(),
                source: "command line".to_owned(),
                raw: input.as_encoded_bytes().to_vec(),
                problem: None,
            };
            all_match &= receive(&scan, out)?;
        }
        return Ok(if all_match {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    };
    let spec = match ScannerSpec::parse(uri) {
        Ok(spec) => spec,
        Err(problem) => {
            writeln!(err, "coi-agent: {problem}")?;
            return Ok(ExitCode::FAILURE);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let res = runtime.block_on(super::scan::read_until_stopped(spec, err, |scan| {
        receive(scan, out).map(|_| ())
    }));
    runtime.shutdown_background();
    res
}

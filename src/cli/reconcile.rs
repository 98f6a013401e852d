//! `coi-agent reconcile`: checks scans against an order file in a workstation's context, one
//! verdict per scan, before the daemon and its journal exist.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::orders::OrderBook;
use crate::receiving::judge;
use crate::reconcile::{Context, Outcome, Role, Step, Verdict};
use crate::scanner::Scan;

pub(super) struct Options<'a> {
    pub orders: &'a Path,
    pub site: &'a str,
    pub step: Step,
    pub role: Option<Role>,
    pub at: Option<jiff::Timestamp>,
    pub json: bool,
}

pub(super) fn run(
    opts: &Options<'_>,
    inputs: &[OsString],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let text = match std::fs::read_to_string(opts.orders) {
        Ok(text) => text,
        Err(problem) => {
            writeln!(err, "coi-agent: read {}: {problem}", opts.orders.display())?;
            return Ok(ExitCode::FAILURE);
        }
    };
    let (book, refused) = match OrderBook::from_json(&text) {
        Ok(loaded) => loaded,
        Err(problem) => {
            writeln!(err, "coi-agent: {}: {problem}", opts.orders.display())?;
            return Ok(ExitCode::FAILURE);
        }
    };
    // A refused order is left out, so a scan of its bags is a mismatch, never a match.
    for problem in &refused {
        writeln!(
            err,
            "coi-agent: {}: refused {problem}",
            opts.orders.display()
        )?;
    }
    let received = HashSet::new();
    let ctx = Context {
        site_id: opts.site,
        step: opts.step,
        role: opts.role,
        now: opts.at.unwrap_or_else(jiff::Timestamp::now),
        expected: None,
        received: &received,
        freshness: None,
    };
    let mut all_match = true;
    // Each scan may complete the one before it, as from one scanner (issue #17).
    let mut earlier: Option<Vec<u8>> = None;
    for input in inputs {
        let scan = Scan {
            at: ctx.now,
            source: "command line".to_owned(),
            raw: input.as_encoded_bytes().to_vec(),
            problem: None,
        };
        let verdict = judge(&scan, earlier.as_deref(), &book, &ctx);
        let half = matches!(verdict.outcome, Outcome::Incomplete(_));
        // A half is judged with the scan that completes it; only a final verdict counts.
        all_match &= half || verdict.is_match() || verdict.outcome == Outcome::Sample;
        earlier = half.then_some(scan.raw);
        write_verdict(out, &verdict, opts.json)?;
    }
    // A half that nothing completed is no match.
    all_match &= earlier.is_none();
    Ok(if all_match {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A verdict as one JSON object (`reconcile --json`'s shape).
pub(super) fn verdict_json(verdict: &Verdict) -> serde_json::Value {
    serde_json::to_value(crate::report::VerdictReport::new(verdict))
        .unwrap_or(serde_json::Value::Null)
}

pub(super) fn write_verdict(
    out: &mut dyn Write,
    verdict: &Verdict,
    json: bool,
) -> std::io::Result<()> {
    if json {
        return writeln!(out, "{}", verdict_json(verdict));
    }
    match verdict.outcome {
        Outcome::Mismatch(reason) => {
            writeln!(out, "MISMATCH ({}): {}", reason.code(), verdict.message)
        }
        Outcome::Incomplete(_) => writeln!(out, "INCOMPLETE: {}", verdict.message),
        Outcome::Match | Outcome::Sample => writeln!(out, "{}", verdict.message),
    }
}

//! `coi-agent reconcile`: checks scans against an order file in a workstation's context, one
//! verdict per scan, before the daemon and its journal exist.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::isbt128::message;
use crate::orders::OrderBook;
use crate::reconcile::{Context, Role, ScanRead, Step, Verdict, reconcile};

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
    };
    let mut all_match = true;
    for input in inputs {
        let bytes = input.as_encoded_bytes();
        let verdict = match message::parse(bytes) {
            Ok(message) => reconcile(ScanRead::Parsed(&message), &book, &ctx),
            Err(problem) => reconcile(ScanRead::Invalid(&problem), &book, &ctx),
        };
        all_match &= verdict.is_match();
        write_verdict(out, &verdict, opts.json)?;
    }
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
    match verdict.reason {
        None => writeln!(out, "{}", verdict.message),
        Some(reason) => writeln!(out, "MISMATCH ({}): {}", reason.code(), verdict.message),
    }
}

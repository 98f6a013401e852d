//! `coi-agent label render|list|lint`: make, list and check labels from the templates.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::agent::{FlowError, JournalOwner, LabelOrder};
use crate::config::Config;
use crate::isbt128::coi::CoiId;
use crate::label::data::LabelData;
use crate::label::layout::Item;
use crate::label::template::Template;
use crate::label::{self, Label};
use crate::labeling;
use crate::orders::OrderBook;
use crate::report::ScanReport;
use crate::scanner::Scan;

/// What `label render` (and `print --template`) is asked to make.
pub(super) struct Request<'a> {
    pub templates: Option<&'a Path>,
    pub template: &'a str,
    pub orders: &'a Path,
    pub coi: &'a str,
    pub bag: u8,
    /// The resolution asked for; 203 when none was.
    pub dpi: Option<u32>,
    pub collected_at: Option<jiff::Timestamp>,
}

/// The resolution of a label made without one asked for or reported by a printer.
pub(super) const DEFAULT_DPI: u32 = crate::printer::DEFAULT_DPI;

/// The templates: those in `dir` when given (every `*.toml`), else the built-in ones.
fn templates(dir: Option<&Path>) -> Result<Vec<Template>, String> {
    let Some(dir) = dir else {
        return label::builtin().map_err(|e| e.to_string());
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("read {}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("read {}: {e}", path.display()))?;
            Template::parse(&path.display().to_string(), &text).map_err(|e| e.to_string())
        })
        .collect()
}

/// [`templates`], or `None` after saying why they cannot be read.
fn templates_or_say(
    dir: Option<&Path>,
    err: &mut dyn Write,
) -> anyhow::Result<Option<Vec<Template>>> {
    match templates(dir) {
        Ok(t) => Ok(Some(t)),
        Err(problem) => {
            writeln!(err, "coi-agent: {problem}")?;
            Ok(None)
        }
    }
}

/// Makes and proves one label; the error is the message to show.
pub(super) fn make(request: &Request<'_>) -> Result<Label, String> {
    let templates = templates(request.templates)?;
    let Some(template) = templates.iter().find(|t| t.name == request.template) else {
        let names: Vec<&str> = templates.iter().map(|t| t.name.as_str()).collect();
        return Err(format!(
            "unknown template {:?} (there are: {})",
            request.template,
            names.join(", ")
        ));
    };
    let coi = CoiId::parse(request.coi).map_err(|e| format!("--coi: {e}"))?;
    let text = std::fs::read_to_string(request.orders)
        .map_err(|e| format!("read {}: {e}", request.orders.display()))?;
    let (book, refused) =
        OrderBook::from_json(&text).map_err(|e| format!("{}: {e}", request.orders.display()))?;
    let Some(order) = book.by_coi(&coi) else {
        let mut message = format!(
            "no valid order with COI {} in {}",
            coi.as_str(),
            request.orders.display()
        );
        for problem in refused {
            message.push_str(&format!("\n  refused {problem}"));
        }
        return Err(message);
    };
    let at = request.collected_at.unwrap_or_else(jiff::Timestamp::now);
    let data = LabelData::new(order, request.bag, at)
        .map_err(|e| format!("order {}: {e}", order.order_id))?;
    label::render(template, &data, request.dpi.unwrap_or(DEFAULT_DPI)).map_err(|e| e.for_operator())
}

pub(super) fn render(
    request: &Request<'_>,
    zpl: Option<&Path>,
    png: Option<&Path>,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let label = match make(request) {
        Ok(label) => label,
        Err(problem) => {
            writeln!(err, "coi-agent: label not made: {problem}")?;
            return Ok(ExitCode::FAILURE);
        }
    };
    match zpl {
        Some(path) => std::fs::write(path, &label.zpl)
            .map_err(|e| anyhow::anyhow!("write {}: {e}", path.display()))?,
        None if png.is_none() && !json => out.write_all(label.zpl.as_bytes())?,
        None => {}
    }
    if let Some(path) = png {
        std::fs::write(path, label.png()?)
            .map_err(|e| anyhow::anyhow!("write {}: {e}", path.display()))?;
    }
    let symbols: Vec<serde_json::Value> = label
        .layout
        .items
        .iter()
        .filter_map(|item| match item {
            Item::Code128 { plan, symbol, .. } => Some(serde_json::json!({
                "symbol": symbol.name(), "format": "code128", "data": plan.data(),
            })),
            Item::DataMatrix { data, symbol, .. } => Some(serde_json::json!({
                "symbol": symbol.name(), "format": "data_matrix", "data": data,
            })),
            _ => None,
        })
        .collect();
    if json {
        // Identifiers only (DIN, COI, product, dates): never the patient's name or birth date.
        let line = serde_json::json!({
            "template": label.layout.template,
            "version": label.layout.version,
            "dpi": label.layout.dpi,
            "bag": request.bag,
            "width": label.layout.width,
            "height": label.layout.height,
            "symbols": symbols,
        });
        writeln!(out, "{line}")?;
    }
    let symbols = symbols.len();
    writeln!(
        err,
        "coi-agent: {} v{} bag {} at {} dpi: {} symbol(s) proven",
        label.layout.template, label.layout.version, request.bag, label.layout.dpi, symbols
    )?;
    Ok(ExitCode::SUCCESS)
}

/// What `label print` is asked to print.
pub(super) struct PrintRequest<'a> {
    pub config: &'a Config,
    pub coi: &'a str,
    pub bag: u8,
    pub template: &'a str,
    pub printer: Option<&'a str>,
    pub operator: Option<&'a str>,
    pub reprint: bool,
    pub reason: Option<&'a str>,
    pub collected_at: Option<jiff::Timestamp>,
}

/// `label print`: the chain-of-identity print flow ([`crate::agent::print_label`]) on the
/// configured journal and printer.
pub(super) fn print(
    request: &PrintRequest<'_>,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let refuse = |err: &mut dyn Write, problem: &str| -> anyhow::Result<ExitCode> {
        writeln!(err, "coi-agent: label not printed, nothing sent: {problem}")?;
        Ok(ExitCode::FAILURE)
    };
    let config = request.config;
    // Only the built-in templates: the journal records a template by name and version, which
    // must say what was printed.
    if !label::builtin()?.iter().any(|t| t.name == request.template) {
        return refuse(err, &format!("unknown template {:?}", request.template));
    }
    let coi = match CoiId::parse(request.coi) {
        Ok(coi) => coi,
        Err(problem) => return refuse(err, &format!("--coi: {problem}")),
    };
    let chosen = match request.printer {
        Some(name) => config.printers.iter().find(|p| p.name == name),
        None => config.printers.first(),
    };
    let Some(chosen) = chosen else {
        return refuse(
            err,
            &format!(
                "no printer {} in {}",
                request
                    .printer
                    .map(|n| format!("{n:?}"))
                    .unwrap_or_default(),
                request.config.origin
            ),
        );
    };
    let runtime = super::runtime()?;
    let journal = JournalOwner::for_config(config)?;
    let order = LabelOrder {
        coi,
        bag: request.bag,
        template: request.template.to_owned(),
        operator: request.operator.map(str::to_owned),
        reprint: request.reprint,
        reason: request.reason.map(str::to_owned),
        collected_at: request.collected_at,
        // Orders from central: asked for again below, else the cache decides.
        order_from: match config.orders {
            crate::config::OrderSourceConfig::Central => "cache",
            crate::config::OrderSourceConfig::File(_) => "file",
        },
    };
    let printed = runtime.block_on(async {
        let ready =
            match crate::printer::start(&chosen.name, &chosen.uri, chosen.profile.as_ref()).await {
                Ok(ready) => ready,
                Err(problem) => return Err(FlowError::Refused(problem)),
            };
        let (_never, mut hard_stop) = tokio::sync::watch::channel(false);
        let central = crate::agent::CentralLink::from_config(config);
        let printed = crate::agent::print_label(
            &journal,
            &ready,
            order,
            central.as_ref(),
            &mut hard_stop,
            &|_, _, _| {},
        )
        .await;
        ready.handle.shutdown().await;
        printed.map(|(report, outcome)| (report, outcome, ready.spool))
    });
    let (report, outcome, spool) = match printed {
        Ok(printed) => printed,
        Err(FlowError::Journal(problem)) => {
            anyhow::bail!("journal {}: {problem}", config.journal.display())
        }
        Err(FlowError::Label(refusal @ labeling::Refusal::AlreadyPrinted { .. })) => {
            return refuse(err, &format!("{refusal} (--reprint)"));
        }
        // Sent: never "nothing sent".
        Err(FlowError::Label(refusal @ labeling::Refusal::Unrecorded { .. })) => {
            writeln!(err, "coi-agent: LABEL SENT, NOT RECORDED: {refusal}")?;
            return Ok(ExitCode::FAILURE);
        }
        Err(FlowError::Label(refusal)) => return refuse(err, &refusal.to_string()),
        Err(FlowError::Refused(problem)) => return refuse(err, &problem),
    };
    if json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
        return Ok(if report.state == "confirmed" {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    super::print::report(&outcome, spool, None, out)
}

/// `label verify`: the verify step ([`labeling::verify_label`]) on the configured journal.
pub(super) fn verify(
    config: &Config,
    job_id: &str,
    operator: Option<&str>,
    (scan, entry): (&[u8], &str),
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let journal = JournalOwner::for_config(config)?;
    let runtime = super::runtime()?;
    let scan = Scan {
        at: jiff::Timestamp::now(),
        source: entry.to_owned(),
        raw: scan.to_vec(),
        problem: None,
    };
    let verified = runtime.block_on(journal.verify(
        Some(job_id.to_owned()),
        None,
        scan,
        operator.map(str::to_owned),
    ))?;
    match verified {
        Ok(verified) => {
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string(&ScanReport::verified(&verified))?
                )?;
            } else {
                super::reconcile::write_verdict(out, &verified.scan.verdict, false)?;
                if verified.confirmed_by_scan {
                    writeln!(
                        out,
                        "Job {job_id} confirmed by this scan (the printer had not said)."
                    )?;
                }
                let right = matches!(
                    verified.scan.verdict.outcome,
                    crate::reconcile::Outcome::Match | crate::reconcile::Outcome::Sample
                );
                if right && !verified.is_verified() {
                    let what = if verified.scan.verdict.outcome == crate::reconcile::Outcome::Sample
                    {
                        "print another sample tube label (label print --template sample-tube)"
                    } else {
                        "reprint it (label print --reprint --reason ...)"
                    };
                    writeln!(
                        out,
                        "JOB FLAGGED: an earlier scan for job {job_id} did not match. Do not use this label: {what} and verify the new one."
                    )?;
                }
            }
            Ok(if verified.is_verified() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Err(labeling::VerifyError::Journal(problem)) => Err(problem.into()),
        Err(problem) => {
            writeln!(err, "coi-agent: not verified, nothing recorded: {problem}")?;
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `label void`: [`labeling::void_label`] on the configured journal.
pub(super) fn void(
    config: &Config,
    job_id: &str,
    reason: &str,
    operator: Option<&str>,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let journal = JournalOwner::for_config(config)?;
    let runtime = super::runtime()?;
    let voided = runtime.block_on(journal.void_label(
        job_id.to_owned(),
        Some(reason.to_owned()),
        operator.map(str::to_owned),
    ))?;
    match voided {
        Ok(voided) => {
            let report = crate::report::VoidReport::new(&voided);
            if json {
                writeln!(out, "{}", serde_json::to_string(&report)?)?;
            } else {
                writeln!(out, "{}", report.message)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(labeling::VoidError::Journal(problem)) => Err(problem.into()),
        Err(problem) => {
            writeln!(err, "coi-agent: not voided, nothing recorded: {problem}")?;
            Ok(ExitCode::FAILURE)
        }
    }
}

pub(super) fn list(
    dir: Option<&Path>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let Some(templates) = templates_or_say(dir, err)? else {
        return Ok(ExitCode::FAILURE);
    };
    for t in templates {
        writeln!(
            out,
            "{:<16} v{:<3} {:>6.1} × {:<6.1} mm  {}",
            t.name, t.version, t.width_mm, t.height_mm, t.description
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Lays out each template (or `name`) at every resolution with the built-in example order, and
/// proves it: geometry, fit and every symbol.
pub(super) fn lint(
    dir: Option<&Path>,
    name: Option<&str>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let Some(templates) = templates_or_say(dir, err)? else {
        return Ok(ExitCode::FAILURE);
    };
    let chosen: Vec<&Template> = templates
        .iter()
        .filter(|t| name.is_none_or(|n| n == t.name))
        .collect();
    if chosen.is_empty() {
        writeln!(err, "coi-agent: unknown template {:?}", name.unwrap_or(""))?;
        return Ok(ExitCode::FAILURE);
    }
    let (book, _) = OrderBook::from_json(EXAMPLE_ORDERS)?;
    let at: jiff::Timestamp = "2025-06-02T12:14:00Z".parse()?;
    let mut failed = false;
    for template in chosen {
        let mut this_failed = false;
        for order in book.orders() {
            let mut bags = vec![1, order.collection.bags];
            bags.dedup();
            for bag in bags {
                let data = LabelData::new(order, bag, at)?;
                for dpi in label::RESOLUTIONS {
                    if let Err(problem) = label::render(template, &data, dpi) {
                        this_failed = true;
                        writeln!(
                            out,
                            "{} v{}: FAIL (order {}, bag {bag}, {dpi} dpi): {problem}",
                            template.name, template.version, order.order_id
                        )?;
                    }
                }
            }
        }
        failed |= this_failed;
        if !this_failed {
            writeln!(
                out,
                "{} v{}: ok at {:?} dpi",
                template.name,
                template.version,
                label::RESOLUTIONS
            )?;
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The demonstration orders (the shared example orders) the lint lays every template out with.
const EXAMPLE_ORDERS: &str = include_str!("../../config/demo-orders.json");

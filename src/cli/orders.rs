//! `coi-agent orders sync|show` and `coi-agent outbox status|flush`: the journal's order cache
//! and custody-event outbox from the command line, for site IT.

use std::io::Write;
use std::process::ExitCode;

use crate::agent::JournalOwner;
use crate::config::Config;
use crate::isbt128::coi::CoiId;
use crate::journal::Journal;
use crate::orders::OrderBook;
use crate::outbox::RetryPolicy;

pub(super) fn sync(
    config: &Config,
    full: bool,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let source = crate::agent::order_source(config)?;
    let journal = JournalOwner::for_config(config)?;
    let runtime = super::runtime()?;
    let report = runtime.block_on(crate::agent::sync_orders(&journal, &source, full))?;
    if json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
    } else {
        for problem in &report.refused {
            writeln!(err, "coi-agent: refused {problem}")?;
        }
        writeln!(
            out,
            "orders synced from {}: {} stored, {} refused",
            report.source,
            report.stored,
            report.refused.len()
        )?;
    }
    Ok(if report.refused.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub(super) fn show(
    config: &Config,
    coi: &str,
    (patient, json): (bool, bool),
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let coi = match CoiId::parse(coi) {
        Ok(coi) => coi,
        Err(problem) => {
            writeln!(err, "coi-agent: {problem}")?;
            return Ok(ExitCode::FAILURE);
        }
    };
    if json {
        let journal = JournalOwner::for_config(config)?;
        let runtime = super::runtime()?;
        return match runtime.block_on(crate::agent::order_report(&journal, &coi, patient))? {
            Some(report) => {
                writeln!(out, "{}", serde_json::to_string(&report)?)?;
                Ok(ExitCode::SUCCESS)
            }
            None => {
                writeln!(
                    err,
                    "coi-agent: no cached order has COI {coi} (run coi-agent orders sync)"
                )?;
                Ok(ExitCode::FAILURE)
            }
        };
    }
    let journal = Journal::open(&config.journal)?;
    let (book, _) = journal.order_book()?;
    let Some(order) = book.by_coi(&coi) else {
        writeln!(
            err,
            "coi-agent: no cached order has COI {coi} (run coi-agent orders sync)"
        )?;
        return Ok(ExitCode::FAILURE);
    };
    write_order(out, &book, order, patient)?;
    Ok(ExitCode::SUCCESS)
}

fn write_order(
    out: &mut dyn Write,
    _book: &OrderBook,
    order: &crate::orders::record::Order,
    patient: bool,
) -> std::io::Result<()> {
    writeln!(out, "order      {}", order.order_id)?;
    writeln!(
        out,
        "COI        {} [{}]",
        order.coi.grouped(),
        order.coi.check_character()
    )?;
    writeln!(out, "status     {}", order.status.as_str())?;
    writeln!(
        out,
        "DIN        {} [{}], {} bag(s)",
        order.collection.din.grouped(),
        order.collection.din.check_character(),
        order.collection.bags
    )?;
    let collection_type = order
        .product
        .code
        .collection_type()
        .map(|t| format!(", collection type {t}"))
        .unwrap_or_default();
    writeln!(
        out,
        "product    {}{collection_type}: {}",
        order.product.code.description_code(),
        order.product.description
    )?;
    writeln!(
        out,
        "collection {} ({}, {}) {}",
        order.collection.facility.name,
        order.collection.facility.fin,
        order.collection.facility.site_id,
        order.collection.scheduled_for
    )?;
    writeln!(
        out,
        "ship to    {} ({}, {})",
        order.manufacturing.name, order.manufacturing.fin, order.manufacturing.site_id
    )?;
    if let Some(expiry) = order.expires_at {
        writeln!(out, "expires    {expiry}")?;
    }
    // Patient data only when asked for: terminals get shared and scrolled back.
    if patient {
        let p = &order.patient;
        writeln!(
            out,
            "patient    {}, {} born {}; {} {}",
            p.family_name.to_uppercase(),
            p.given_name,
            p.date_of_birth,
            p.id_label,
            p.id
        )?;
    } else {
        writeln!(out, "patient    (hidden; --patient shows it)")?;
    }
    Ok(())
}

/// The most waiting events `outbox status` lists.
const LISTED: usize = 1000;

pub(super) fn outbox_status(
    config: &Config,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let journal = Journal::open(&config.journal)?;
    let status = journal.outbox_status()?;
    let events = journal.waiting_events(LISTED)?;
    let report = crate::report::OutboxReport {
        pending: status.pending,
        delivered: status.delivered,
        parked: status.parked.len() as i64,
        oldest_pending: status.oldest_pending.clone(),
        events,
    };
    if json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
    } else {
        writeln!(
            out,
            "pending   {}{}",
            report.pending,
            report
                .oldest_pending
                .as_ref()
                .map(|t| format!(" (oldest from {t})"))
                .unwrap_or_default()
        )?;
        writeln!(out, "delivered {}", report.delivered)?;
        writeln!(out, "parked    {}", report.parked)?;
        if config.central.is_none() && report.pending > 0 {
            writeln!(
                out,
                "  no [central] in {}: custody events are kept here until a central service is configured",
                config.origin
            )?;
        }
        for event in &report.events {
            let why = event.last_error.as_deref().unwrap_or("not tried yet");
            match event.state.as_str() {
                "parked" => writeln!(
                    out,
                    "  PARKED  {} {} {}: {why} (coi-agent outbox requeue {} once fixed, or outbox ack {} --reason TEXT)",
                    event.event_id, event.kind, event.coi, event.event_id, event.event_id
                )?,
                _ => writeln!(
                    out,
                    "  pending {} {} {}: {} attempt(s); last: {why}",
                    event.event_id, event.kind, event.coi, event.attempts
                )?,
            }
        }
    }
    Ok(if report.parked == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `outbox requeue`: parked events back in line, after their cause was fixed.
pub(super) fn outbox_requeue(
    config: &Config,
    all: bool,
    event_ids: &[String],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let mut journal = Journal::open(&config.journal)?;
    let named = (!all).then_some(event_ids);
    match journal.requeue_parked(named, None)? {
        Ok(n) => {
            writeln!(
                out,
                "requeued {n} parked event(s); they go with the next delivery"
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err((event_id, why)) => {
            writeln!(
                err,
                "coi-agent: nothing requeued: event {event_id} {}",
                not_parked(&why)
            )?;
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `outbox ack`: a parked event closed deliberately, never sent, with the reason (audited).
pub(super) fn outbox_ack(
    config: &Config,
    event_id: &str,
    reason: &str,
    operator: Option<&str>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    if reason.trim().is_empty() {
        writeln!(err, "coi-agent: --reason must say why the event is closed")?;
        return Ok(ExitCode::from(2));
    }
    let mut journal = Journal::open(&config.journal)?;
    match journal.close_parked(event_id, reason.trim(), operator)? {
        Ok(()) => {
            writeln!(out, "event {event_id} closed: it will not be sent")?;
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            writeln!(err, "coi-agent: event {event_id} {}", not_parked(&why))?;
            Ok(ExitCode::FAILURE)
        }
    }
}

fn not_parked(why: &crate::journal::outbox::NotParked) -> String {
    match why {
        crate::journal::outbox::NotParked::Unknown => "is not in the outbox".to_owned(),
        crate::journal::outbox::NotParked::State(state) => format!("is {state}, not parked"),
    }
}

pub(super) fn outbox_flush(
    config: &Config,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let client = crate::agent::central_client(config)?
        .ok_or_else(|| anyhow::anyhow!("{}: no [central] section to deliver to", config.origin))?;
    let journal = JournalOwner::for_config(config)?;
    let runtime = super::runtime()?;
    let (total, status) = runtime.block_on(async {
        journal.make_pending_due().await?;
        let total = crate::agent::drain(&journal, &client, RetryPolicy::default(), None).await?;
        let status = journal.outbox_status().await?;
        Ok::<_, crate::agent::OwnerError>((total, status))
    })?;
    if json {
        writeln!(
            out,
            "{}",
            serde_json::json!({
                "delivered": total.delivered,
                "parked": total.parked,
                "pending": status.pending,
            })
        )?;
    } else {
        writeln!(
            out,
            "delivered {}, parked {}, still pending {}",
            total.delivered, total.parked, status.pending
        )?;
    }
    Ok(if status.pending == 0 && total.parked == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

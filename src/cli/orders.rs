//! `coi-agent orders sync|show` and `coi-agent outbox status|flush`: the journal's order cache
//! and custody-event outbox from the command line, for site IT.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::{Config, OrderSourceConfig};
use crate::isbt128::coi::CoiId;
use crate::journal::Journal;
use crate::orders::OrderBook;
use crate::orders::central::CentralClient;
use crate::orders::record::parse_order;
use crate::outbox::{RetryPolicy, drain};

/// Order sync tries this many times, 1 s then 2 s apart (plus jitter), before giving up: the
/// daemon syncs again on its schedule, a person running it by hand sees the failure.
const SYNC_ATTEMPTS: u32 = 3;

pub(super) fn sync(
    config_path: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    let mut journal = Journal::open(&config.journal)?;
    let (records, source, as_of) = match &config.orders {
        OrderSourceConfig::File(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("read {}: {e}", path.display()))?;
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{}: not JSON: {e}", path.display()))?;
            let records = value
                .get("orders")
                .and_then(|o| o.as_array())
                .cloned()
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "{}: expected an object with an \"orders\" array",
                        path.display()
                    )
                })?;
            (records, format!("file {}", path.display()), None)
        }
        OrderSourceConfig::Central => {
            let central = config
                .central
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("no [central] section"))?;
            let client = CentralClient::new(&central.url, central.token()?, central.timeout)?;
            let since = journal.sync_state("orders.as_of")?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let page = runtime.block_on(async {
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    match client.orders_since(&config.site_id, since.as_deref()).await {
                        Ok(page) => return Ok(page),
                        Err(e) if e.is_retryable() && attempt < SYNC_ATTEMPTS => {
                            let jitter = Duration::from_millis(u64::from(std::process::id() % 250));
                            tokio::time::sleep(Duration::from_secs(1 << (attempt - 1)) + jitter)
                                .await;
                        }
                        Err(e) => return Err(e),
                    }
                }
            })?;
            (
                page.orders,
                format!("central {}", central.url),
                Some(page.as_of),
            )
        }
    };
    let mut checked = Vec::with_capacity(records.len());
    let mut refused = 0;
    for (position, record) in records.iter().enumerate() {
        match parse_order(record, position) {
            Ok(order) => checked.push((order, record.clone())),
            Err(problem) => {
                refused += 1;
                writeln!(err, "coi-agent: refused {problem}")?;
            }
        }
    }
    for problem in journal.store_orders(&checked, &source)? {
        refused += 1;
        writeln!(err, "coi-agent: refused {problem}")?;
    }
    if let Some(as_of) = as_of {
        journal.set_sync_state("orders.as_of", &as_of)?;
    }
    writeln!(
        out,
        "orders synced from {source}: {} stored, {refused} refused",
        checked.len()
    )?;
    Ok(if refused == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub(super) fn show(
    config_path: &Path,
    coi: &str,
    patient: bool,
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
    let config = Config::load(config_path)?;
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

pub(super) fn outbox_status(config_path: &Path, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    let journal = Journal::open(&config.journal)?;
    let status = journal.outbox_status()?;
    writeln!(
        out,
        "pending   {}{}",
        status.pending,
        status
            .oldest_pending
            .map(|t| format!(" (oldest from {t})"))
            .unwrap_or_default()
    )?;
    writeln!(out, "delivered {}", status.delivered)?;
    writeln!(out, "parked    {}", status.parked.len())?;
    for parked in &status.parked {
        writeln!(
            out,
            "  {} {} {}: {}",
            parked.event_id, parked.kind, parked.coi, parked.error
        )?;
    }
    Ok(if status.parked.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub(super) fn outbox_flush(config_path: &Path, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    let central = config.central.as_ref().ok_or_else(|| {
        anyhow::anyhow!(
            "{}: no [central] section to deliver to",
            config_path.display()
        )
    })?;
    let client = CentralClient::new(&central.url, central.token()?, central.timeout)?;
    let mut journal = Journal::open(&config.journal)?;
    journal.make_pending_due()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let total = runtime.block_on(drain(&mut journal, &client, RetryPolicy::default(), None))?;
    let status = journal.outbox_status()?;
    writeln!(
        out,
        "delivered {}, parked {}, still pending {}",
        total.delivered, total.parked, status.pending
    )?;
    Ok(if status.pending == 0 && total.parked == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

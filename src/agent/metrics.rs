//! Counters for `/metrics` (Prometheus text format 0.0.4), kept in memory since the process
//! started. Labels are codes and configured device names only: never a COI, DIN or patient
//! value.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use super::DeviceNotice;
use super::journal_owner::JournalHealth;
use crate::outbox::Round;
use crate::report::ScanReport;

#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    /// (step, verdict, reason) → scans.
    scans: BTreeMap<(&'static str, &'static str, &'static str), u64>,
    /// Job state → jobs that ended in it.
    jobs: BTreeMap<&'static str, u64>,
    delivered: u64,
    parked: u64,
    retried: u64,
    syncs: u64,
    refused_orders: u64,
    /// (kind, name) → state.
    devices: BTreeMap<(&'static str, String), String>,
}

impl Metrics {
    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        // Counters stay valid even if a holder panicked.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn scan(&self, report: &ScanReport) {
        let key = (
            report.step,
            report.verdict.verdict,
            report.verdict.reason.unwrap_or(""),
        );
        *self.counts().scans.entry(key).or_default() += 1;
    }

    pub(crate) fn job(&self, state: &'static str) {
        *self.counts().jobs.entry(state).or_default() += 1;
    }

    pub(crate) fn delivered(&self, round: Round) {
        let mut counts = self.counts();
        counts.delivered += round.delivered as u64;
        counts.parked += round.parked as u64;
        counts.retried += round.retried as u64;
    }

    pub(crate) fn synced(&self, refused: usize) {
        let mut counts = self.counts();
        counts.syncs += 1;
        counts.refused_orders += refused as u64;
    }

    pub(crate) fn device(&self, notice: &DeviceNotice) {
        self.counts()
            .devices
            .insert((notice.kind, notice.name.clone()), notice.state.clone());
    }

    /// The Prometheus text exposition.
    pub fn render(&self, health: Option<&JournalHealth>, now: jiff::Timestamp) -> String {
        let counts = self.counts();
        let mut out = String::new();
        let scans = counts.scans.iter().map(|((step, verdict, reason), n)| {
            (
                format!("{{step=\"{step}\",verdict=\"{verdict}\",reason=\"{reason}\"}}"),
                *n as i64,
            )
        });
        family(
            &mut out,
            "coi_agent_scans_total",
            "counter",
            "Scans recorded since start, by step, verdict and reason.",
            scans,
        );
        let jobs = counts
            .jobs
            .iter()
            .map(|(state, n)| (format!("{{state=\"{state}\"}}"), *n as i64));
        family(
            &mut out,
            "coi_agent_print_jobs_total",
            "counter",
            "Print jobs finished since start, by state.",
            jobs,
        );
        family(
            &mut out,
            "coi_agent_outbox_posts_total",
            "counter",
            "Custody event deliveries since start, by outcome.",
            [
                (
                    "{outcome=\"delivered\"}".to_owned(),
                    counts.delivered as i64,
                ),
                ("{outcome=\"parked\"}".to_owned(), counts.parked as i64),
                ("{outcome=\"retried\"}".to_owned(), counts.retried as i64),
            ],
        );
        family(
            &mut out,
            "coi_agent_order_syncs_total",
            "counter",
            "Order syncs that completed since start.",
            [(String::new(), counts.syncs as i64)],
        );
        family(
            &mut out,
            "coi_agent_orders_refused_total",
            "counter",
            "Orders refused by their checks since start.",
            [(String::new(), counts.refused_orders as i64)],
        );
        let devices = counts.devices.iter().map(|((kind, device), state)| {
            let up = matches!(state.as_str(), "ready" | "connected" | "no_status");
            (
                format!(
                    "{{kind=\"{kind}\",name=\"{}\",state=\"{}\"}}",
                    escape(device),
                    escape(state)
                ),
                i64::from(up),
            )
        });
        family(
            &mut out,
            "coi_agent_device_up",
            "gauge",
            "1 when a printer is ready or a scanner connected, else 0.",
            devices,
        );
        if let Some(health) = health {
            family(
                &mut out,
                "coi_agent_outbox_events",
                "gauge",
                "Custody events in the outbox, by state.",
                [
                    ("{state=\"pending\"}".to_owned(), health.outbox.pending),
                    (
                        "{state=\"parked\"}".to_owned(),
                        health.outbox.parked.len() as i64,
                    ),
                    ("{state=\"delivered\"}".to_owned(), health.outbox.delivered),
                ],
            );
            family(
                &mut out,
                "coi_agent_orders_cached",
                "gauge",
                "Orders in the cache.",
                [(String::new(), health.orders as i64)],
            );
            if let Some(synced) = health.orders_synced_at {
                family(
                    &mut out,
                    "coi_agent_orders_sync_age_seconds",
                    "gauge",
                    "Seconds since the order cache was last synced.",
                    [(String::new(), now.as_second() - synced.as_second())],
                );
            }
            let jobs = health
                .jobs
                .iter()
                .map(|(state, n)| (format!("{{state=\"{}\"}}", escape(state)), *n));
            family(
                &mut out,
                "coi_agent_print_jobs",
                "gauge",
                "Print jobs in the journal, by state.",
                jobs,
            );
        }
        out
    }
}

/// One metric family: its help, its type and its samples (labels, value).
fn family(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: impl IntoIterator<Item = (String, i64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

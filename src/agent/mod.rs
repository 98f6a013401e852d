//! The daemon (`coi-agent serve`): [`run`] owns everything long-lived, as mini-redis's
//! `server::run` does — the journal's owner thread, one task per configured scanner, one
//! [`PrinterHandle`](crate::printer::job::PrinterHandle) per printer with its status poll, the
//! order refresh loop, the outbox delivery loop and the local API. Shutdown is an argument:
//! `main` passes SIGTERM/SIGINT, tests pass a oneshot.
//!
//! The flows here ([`Agent::scan`], [`Agent::print_label`], [`sync_orders`], [`deliver_round`])
//! are the same library functions the CLI calls: check-and-record on the journal's owner, the
//! device or network step in the caller's task, then record the outcome.

pub mod journal_owner;
pub mod metrics;
pub mod notify;
pub mod previews;
pub mod sessions;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, broadcast, mpsc, watch};

use crate::central::{CentralClient, CentralError};
use crate::config::Config;
use crate::labeling::{PreparedLabel, Refusal, VerifyError};
use crate::order_sync::{OrderSource, SourceError, SyncReport};
use crate::outbox::{RetryPolicy, Round};
use crate::printer::ReadyPrinter;
use crate::printer::job::{JobOutcome, JobPhase};
use crate::receiving::{ReceiptClaim, RecordedScan};
use crate::reconcile::Step;
use crate::report::{PrintReport, ScanReport};
use crate::scanner::source::ScannerSpec;
use crate::scanner::{Scan, ScannerState};
pub use journal_owner::{JournalOwner, LabelOrder, OwnerError, Stopped};

/// How often each printer that answers status is asked for it: the print station shows media
/// out within 2 s (issue #12), and a Zebra answers `~HS` in milliseconds.
const PRINTER_POLL: Duration = Duration::from_secs(1);
/// Every how many order refreshes a full sync is made (an hour at the default 60 s): orders
/// central stopped serving for this site are dropped within that time.
const FULL_SYNC_EVERY: u64 = 60;
/// How often the outbox looks for due events when nothing new was recorded: new events are
/// announced and go out at once; this catches retries coming due.
const OUTBOX_TICK: Duration = Duration::from_millis(500);
/// How long shutdown waits for work in flight (a label being printed, a request being
/// answered) before it records what it knows and exits: inside systemd's stop timeout with room.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(3500);

/// What the agent announces as it happens (the API's `/api/v1/events`).
#[derive(Debug, Clone)]
pub enum Notice {
    /// A scan and its verdict, sent only once recorded.
    Scan(Box<ScanReport>),
    /// A print job's state changed.
    Job(JobNotice),
    /// A printer or scanner's state changed.
    Device(DeviceNotice),
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct JobNotice {
    pub job_id: String,
    pub printer: String,
    pub state: &'static str,
    pub fault: Option<&'static str>,
    pub bag: u8,
    pub coi: String,
}

#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct DeviceNotice {
    /// `printer` or `scanner`.
    pub kind: &'static str,
    pub name: String,
    pub state: String,
    pub fault: Option<String>,
}

/// Why a flow asked of the agent did not happen.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// Refused before anything was recorded or sent; the message names the rule.
    #[error("{0}")]
    Refused(String),
    /// A label was refused before anything was sent.
    #[error(transparent)]
    Label(Refusal),
    /// The journal could not record: nothing is shown as done.
    #[error("journal: {0}")]
    Journal(String),
}

/// Why a PIN was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinRefusal {
    /// A wrong PIN, or an operator id that is unknown or disabled (not told apart); for a
    /// known operator, the tries left before the lockout.
    #[error("wrong operator ID or PIN")]
    Wrong { left: Option<i64> },
    #[error("locked out after 5 wrong PINs")]
    LockedOut { until: jiff::Timestamp },
    #[error("journal: {0}")]
    Journal(String),
    /// Too many PIN checks waiting: try again.
    #[error("busy")]
    Busy,
}

/// How long a PIN check waits for its turn before it is refused as busy.
const PIN_CHECK_WAIT: Duration = Duration::from_secs(3);

/// The agent as its faces see it: cheap to clone, shared by the API's handlers.
#[derive(Debug, Clone)]
pub struct Agent {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    journal: JournalOwner,
    printers: Vec<PrinterSlot>,
    scanners: Vec<ScannerSlot>,
    /// To every `/api/v1/events` stream; a slow reader misses notices rather than stalling
    /// the agent (it can read `/api/v1/scans`).
    notices: broadcast::Sender<Notice>,
    /// Woken when new custody events were recorded, so they go out at once.
    outbox_wake: Notify,
    metrics: metrics::Metrics,
    /// Turns true once shutdown is asked for.
    stopping: watch::Receiver<bool>,
    /// Turns true when in-flight work must be recorded as it stands ([`SHUTDOWN_GRACE`]).
    hard_stop: watch::Receiver<bool>,
    api_token: String,
    listen: std::net::SocketAddr,
    site_id: String,
    /// Order refresh state: the last sync's error, if it failed.
    sync_error: Mutex<Option<String>>,
    /// When the last sync succeeded in this process (one that found nothing new writes
    /// nothing to the journal).
    synced_at: Mutex<Option<jiff::Timestamp>>,
    /// The central service for the print flow (order lookup, arbitration), if configured.
    central_link: Option<CentralLink>,
    /// Operators signed in to the screens.
    sessions: sessions::Sessions,
    /// One PIN check at a time ([`Agent::check_pin`]).
    pin_checks: tokio::sync::Semaphore,
    /// Label previews rendered lately.
    previews: previews::Previews,
    /// Why custody events are not being delivered at all (no usable central service).
    delivery_problem: Option<String>,
    /// How long half a read waits for the other half ([`Config::pair_window`]).
    pair_window: Duration,
    /// This workstation's name and its collection site's time zone is the order's.
    workstation: String,
}

#[derive(Debug)]
struct PrinterSlot {
    name: String,
    /// `None` when it could not be started (its state says why).
    ready: Option<ReadyPrinter>,
    state: Mutex<DeviceNotice>,
}

#[derive(Debug)]
struct ScannerSlot {
    name: String,
    step: Step,
    state: Mutex<DeviceNotice>,
}

/// A printer or scanner's state, for `/readyz`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceReport {
    pub name: String,
    pub state: String,
    pub fault: Option<String>,
}

impl Agent {
    pub fn journal(&self) -> &JournalOwner {
        &self.inner.journal
    }

    /// Voids the label of job `job_id` (its `label_voided` is sent at once).
    ///
    /// # Errors
    /// The journal's owner stopped: nothing recorded.
    pub async fn void_label(
        &self,
        job_id: String,
        reason: Option<String>,
        operator: Option<String>,
    ) -> Result<Result<crate::labeling::Voided, crate::labeling::VoidError>, journal_owner::Stopped>
    {
        let voided = self
            .inner
            .journal
            .void_label(job_id, reason, operator)
            .await?;
        if voided.is_ok() {
            self.inner.outbox_wake.notify_one();
        }
        Ok(voided)
    }

    /// Operators signed in to the screens.
    pub fn sessions(&self) -> &sessions::Sessions {
        &self.inner.sessions
    }

    /// How long half a read waits for the other half.
    pub fn pair_window(&self) -> Duration {
        self.inner.pair_window
    }

    /// Why custody events are not being delivered at all, if that is so.
    pub fn delivery_problem(&self) -> Option<String> {
        self.inner.delivery_problem.clone()
    }

    /// Label previews rendered lately.
    pub fn previews(&self) -> &previews::Previews {
        &self.inner.previews
    }

    pub fn workstation(&self) -> &str {
        &self.inner.workstation
    }

    /// The names of the configured printers, the first being the default.
    pub fn printer_names(&self) -> Vec<String> {
        self.inner.printers.iter().map(|p| p.name.clone()).collect()
    }

    /// A printer's resolution (dots per inch), if it started.
    pub fn printer_dpi(&self, name: Option<&str>) -> Option<u32> {
        let slot = match name {
            Some(name) => self.inner.printers.iter().find(|p| p.name == name),
            None => self.inner.printers.first(),
        }?;
        slot.ready.as_ref().map(|ready| ready.dpi)
    }

    /// The scanners configured for `step`.
    pub fn scanners_for(&self, step: Step) -> Vec<String> {
        self.inner
            .scanners
            .iter()
            .filter(|s| s.step == step)
            .map(|s| s.name.clone())
            .collect()
    }

    /// Checks operator `id`'s PIN for `purpose` (`sign_in`, `reprint`, `void`, `acknowledge`):
    /// the operator, enabled and not locked out, whose PIN this is. Every attempt on a known
    /// operator is recorded; the fifth wrong one in a row locks them out (audited). The hash
    /// is checked off the async workers and off the journal's owner.
    ///
    /// # Errors
    /// [`PinRefusal`], which never says whether an unknown id exists.
    pub async fn check_pin(
        &self,
        id: &str,
        pin: &str,
        purpose: &'static str,
    ) -> Result<crate::journal::operators::OperatorRow, PinRefusal> {
        use crate::journal::operators::PinRecorded;
        // One PIN check at a time: a burst of guesses waits its turn (each sees the lockout the
        // ones before it recorded), and at most one Argon2id evaluation's memory is in use.
        let Ok(Ok(_turn)) =
            tokio::time::timeout(PIN_CHECK_WAIT, self.inner.pin_checks.acquire()).await
        else {
            return Err(PinRefusal::Busy);
        };
        let journal = &self.inner.journal;
        let now = jiff::Timestamp::now();
        let operator = journal
            .operator(id)
            .await
            .map_err(|e| PinRefusal::Journal(e.to_string()))?
            .filter(|op| op.disabled_at.is_none());
        if let Some(until) = operator.as_ref().and_then(|op| op.locked_at(now)) {
            return Err(PinRefusal::LockedOut { until });
        }
        let hash = operator.as_ref().map_or_else(
            || crate::operators::decoy_hash().to_owned(),
            |op| op.pin_hash.clone(),
        );
        let pin = pin.to_owned();
        let right = tokio::task::spawn_blocking(move || crate::operators::pin_matches(&hash, &pin))
            .await
            .unwrap_or(false);
        let Some(operator) = operator else {
            return Err(PinRefusal::Wrong { left: None });
        };
        match journal
            .record_pin(operator.id.clone(), right, purpose, now)
            .await
            .map_err(|e| PinRefusal::Journal(e.to_string()))?
        {
            PinRecorded::Accepted => Ok(operator),
            PinRecorded::Wrong { left } => Err(PinRefusal::Wrong { left: Some(left) }),
            PinRecorded::LockedOut { until } => {
                self.inner.sessions.end_operator(&operator.id);
                Err(PinRefusal::LockedOut { until })
            }
        }
    }

    /// Whether operator `id` may act: known and not disabled (an unreadable journal counts as
    /// yes: the action then fails on its own, with its reason).
    pub async fn operator_active(&self, id: &str) -> bool {
        match self.inner.journal.operator(id).await {
            Ok(Some(op)) => op.disabled_at.is_none(),
            Ok(None) => false,
            Err(_) => true,
        }
    }

    /// Sends due custody events now (after a parked one was requeued).
    pub fn wake_outbox(&self) {
        self.inner.outbox_wake.notify_one();
    }

    /// A receiver of the agent's notices from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.inner.notices.subscribe()
    }

    pub fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }

    /// A receiver that turns true once shutdown is asked for.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.inner.stopping.clone()
    }

    pub fn api_token(&self) -> &str {
        &self.inner.api_token
    }

    pub fn listen(&self) -> std::net::SocketAddr {
        self.inner.listen
    }

    /// This workstation's site.
    pub fn site_id(&self) -> &str {
        &self.inner.site_id
    }

    pub fn printers(&self) -> Vec<DeviceReport> {
        self.inner
            .printers
            .iter()
            .map(|slot| device_report(&slot.state))
            .collect()
    }

    pub fn scanners(&self) -> Vec<DeviceReport> {
        self.inner
            .scanners
            .iter()
            .map(|slot| device_report(&slot.state))
            .collect()
    }

    /// When orders were last synced: by this process, or as the journal says (another process's
    /// `orders sync`), whichever is later.
    pub fn orders_synced_at(&self, journal: Option<jiff::Timestamp>) -> Option<jiff::Timestamp> {
        let here = *lock(&self.inner.synced_at);
        match (here, journal) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// The last order sync's error, if the last one failed.
    pub fn sync_error(&self) -> Option<String> {
        lock(&self.inner.sync_error).clone()
    }

    /// Judges and records one scan for `step`, then announces it. The report is returned (and
    /// sent on the event stream) only once the scan is durable.
    ///
    /// # Errors
    /// A verify scan that cannot be checked (unknown job, ...): nothing recorded; or the
    /// journal failed: nothing recorded.
    pub async fn scan(
        &self,
        scan: Scan,
        step: Step,
        job_id: Option<String>,
        operator: Option<String>,
    ) -> Result<ScanReport, FlowError> {
        self.scan_on_screen(scan, step, job_id, None, operator)
            .await
    }

    /// As [`Agent::scan`], scanned at the print station's page of order `on_screen`: at the
    /// verify step, a label of another order is refused as not this bag's.
    ///
    /// # Errors
    /// As [`Agent::scan`].
    pub async fn scan_on_screen(
        &self,
        scan: Scan,
        step: Step,
        job_id: Option<String>,
        on_screen: Option<crate::isbt128::coi::CoiId>,
        operator: Option<String>,
    ) -> Result<ScanReport, FlowError> {
        let journal = &self.inner.journal;
        let report = match step {
            Step::Receipt => {
                let recorded =
                    receive_scan(journal, self.inner.central_link.as_ref(), scan, operator)
                        .await
                        .map_err(|e| FlowError::Journal(e.to_string()))?;
                ScanReport::new(&recorded)
            }
            Step::Verify => match journal.verify(job_id, on_screen, scan, operator).await {
                Ok(Ok(verified)) => ScanReport::verified(&verified),
                Ok(Err(VerifyError::Journal(problem))) => {
                    return Err(FlowError::Journal(problem.to_string()));
                }
                Ok(Err(refused)) => return Err(FlowError::Refused(refused.to_string())),
                Err(stopped) => return Err(FlowError::Journal(stopped.to_string())),
            },
        };
        self.inner.metrics.scan(&report);
        self.inner.outbox_wake.notify_one();
        let _ = self
            .inner
            .notices
            .send(Notice::Scan(Box::new(report.clone())));
        Ok(report)
    }

    /// Prints bag `order.bag`'s label on `printer` (default: the first configured) through the
    /// print flow: checked and recorded `queued`, sent through the printer's owner task, the
    /// printer's verdict recorded with its custody event.
    ///
    /// # Errors
    /// [`FlowError::Label`] for a refusal before anything was sent, or
    /// [`Refusal::Unrecorded`] inside it when the label was sent but not recorded.
    pub async fn print_label(
        &self,
        printer: Option<&str>,
        order: LabelOrder,
    ) -> Result<PrintReport, FlowError> {
        let slot = match printer {
            Some(name) => self.inner.printers.iter().find(|p| p.name == name),
            None => self.inner.printers.first(),
        };
        let Some(slot) = slot else {
            return Err(FlowError::Refused(match printer {
                Some(name) => format!("no printer {name:?} is configured"),
                None => "no printer is configured".to_owned(),
            }));
        };
        let Some(ready) = &slot.ready else {
            let state = lock(&slot.state).clone();
            return Err(FlowError::Refused(format!(
                "printer {} is not available: {}",
                slot.name,
                state.fault.unwrap_or(state.state)
            )));
        };
        let notices = &self.inner.notices;
        let on_state =
            |prepared: &PreparedLabel, state: &'static str, fault: Option<&'static str>| {
                let _ = notices.send(Notice::Job(JobNotice {
                    job_id: prepared.job.id.clone(),
                    printer: prepared.printer.clone(),
                    state,
                    fault,
                    bag: prepared.bag,
                    coi: prepared.order.coi.as_str().to_owned(),
                }));
            };
        let mut hard_stop = self.inner.hard_stop.clone();
        let mut order = order;
        if self
            .inner
            .central_link
            .as_ref()
            .is_some_and(|link| link.orders_from_central)
        {
            order.order_from = "cache";
        }
        let (report, _) = print_label(
            &self.inner.journal,
            ready,
            order,
            self.inner.central_link.as_ref(),
            &mut hard_stop,
            &on_state,
        )
        .await?;
        self.inner.metrics.job(report.state);
        self.inner.outbox_wake.notify_one();
        Ok(report)
    }
}

/// The print flow on one printer: the label checked, made and recorded `queued` by the
/// journal's owner, sent through the printer's owner task, and the printer's verdict recorded
/// with its custody event. `on_state` hears each state once it is recorded (`queued`, then the
/// outcome). When
/// `hard_stop` turns true before the printer answers, the job is recorded `unconfirmed` (it may
/// print) and the flow returns.
///
/// # Errors
/// [`FlowError::Label`] for a refusal before anything was sent, or with
/// [`Refusal::Unrecorded`] when the label was sent but its outcome not recorded.
pub async fn print_label(
    journal: &JournalOwner,
    ready: &ReadyPrinter,
    mut order: LabelOrder,
    central: Option<&CentralLink>,
    hard_stop: &mut watch::Receiver<bool>,
    on_state: &(dyn Fn(&PreparedLabel, &'static str, Option<&'static str>) + Sync),
) -> Result<(PrintReport, JobOutcome), FlowError> {
    if let Some(link) = central.filter(|link| link.orders_from_central) {
        order.order_from = match &link.client {
            Ok(client) => look_up_order(journal, client, &order.coi).await?,
            Err(_) => "cache",
        };
    }
    let mut prepared = match journal
        .prepare_label(order, ready.name.clone(), ready.dpi)
        .await
    {
        Ok(Ok(prepared)) => prepared,
        Ok(Err(Refusal::Journal(problem))) => {
            return Err(FlowError::Journal(problem.to_string()));
        }
        Ok(Err(refusal)) => return Err(FlowError::Label(refusal)),
        Err(stopped) => return Err(FlowError::Journal(stopped.to_string())),
    };
    // Site-wide: a bag's label is granted by central before a byte is sent (issue #13).
    if let (Some(link), crate::label::template::LabelKind::Bag) = (central, prepared.label_kind)
        && let Err(refusal) = arbitrate(link, &mut prepared).await
    {
        journal
            .abandon_job(prepared.job.id.clone(), refusal.0)
            .await
            .map_err(|e| FlowError::Journal(e.to_string()))?;
        return Err(FlowError::Label(refusal.1));
    }
    on_state(&prepared, "queued", None);
    let outcome = tokio::select! {
        outcome = ready.handle.submit(prepared.job.clone()) => outcome,
        // Shutting down with the job still in the printer's hands: it may print, so it is
        // recorded unconfirmed, never dropped and never failed.
        () = until_true(hard_stop) => interrupted(&prepared.job.id),
    };
    let printed = match journal
        .finish_label(prepared.clone(), outcome.clone())
        .await
    {
        Ok(Ok(printed)) => printed,
        Ok(Err(refusal)) => return Err(FlowError::Label(refusal)),
        Err(stopped) => {
            return Err(FlowError::Label(Refusal::Unrecorded {
                job_id: prepared.job.id.clone(),
                state: outcome.phase.as_str(),
                problem: Box::new(crate::journal::JournalError::Owner(stopped.to_string())),
            }));
        }
    };
    // Announced only once recorded.
    on_state(
        &prepared,
        outcome.phase.as_str(),
        outcome.fault.map(|f| f.as_str()),
    );
    Ok((PrintReport::new(&printed, &prepared, ready.spool), outcome))
}

/// A cached order with each bag's label and receipt state (patient data only when asked
/// for): `GET /api/v1/orders/{coi}` and `orders show --json`. `None`: not cached.
///
/// # Errors
/// The journal failed or its owner stopped.
pub async fn order_report(
    journal: &JournalOwner,
    coi: &crate::isbt128::coi::CoiId,
    patient: bool,
) -> Result<Option<crate::report::OrderReport>, OwnerError> {
    let book = journal.orders().await?;
    let Some(order) = book.by_coi(coi) else {
        return Ok(None);
    };
    let bag_labels = journal
        .bag_labels(order.coi.as_str(), order.collection.bags)
        .await?;
    Ok(Some(crate::report::OrderReport {
        order: crate::report::OrderSummary::new(order),
        product_code: order.product.code.description_code().to_owned(),
        product_description: order.product.description.clone(),
        bag_labels,
        patient: patient.then(|| crate::report::PatientReport::new(order)),
    }))
}

/// Waits until `flag` is true (or its sender is gone).
pub async fn until_true(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|on| *on).await;
}

/// The outcome of a job whose printer had not answered when the agent had to stop.
fn interrupted(job_id: &str) -> JobOutcome {
    let now = jiff::Timestamp::now();
    JobOutcome {
        job_id: job_id.to_owned(),
        phase: JobPhase::Unconfirmed,
        fault: None,
        bytes: 0,
        history: vec![(JobPhase::Unconfirmed, now)],
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these small state locks leaves valid data behind.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn device_report(state: &Mutex<DeviceNotice>) -> DeviceReport {
    let state = lock(state);
    DeviceReport {
        name: state.name.clone(),
        state: state.state.clone(),
        fault: state.fault.clone(),
    }
}

/// Syncs orders from `source` into the journal's cache (`full`: every order the source serves,
/// not only those changed since the last sync): the resume point from the journal,
/// the fetch over the network (no journal held), then the checks and one storing transaction.
///
/// # Errors
/// The source could not deliver or the journal could not store; nothing changed then.
pub async fn sync_orders(
    journal: &JournalOwner,
    source: &OrderSource,
    full: bool,
) -> Result<SyncReport, SyncError> {
    // A full sync asks for every order the site may act on; the cache then drops the others.
    let since = if full {
        None
    } else {
        journal.sync_resume().await?
    };
    let fetched = source.fetch(since.as_deref()).await?;
    let described = source.describe();
    // Nothing new (an unchanged file): no transaction, no audit entry, no fsync every minute.
    // Central's orders age, though: the sync time is recorded (`[orders] max_age_secs`).
    if fetched.records.is_empty() && fetched.as_of.is_some() && fetched.as_of == since {
        if matches!(source, OrderSource::Central { .. }) {
            journal.mark_synced().await?;
        }
        return Ok(SyncReport {
            source: described,
            stored: 0,
            refused: Vec::new(),
        });
    }
    let checked = tokio::task::spawn_blocking(move || crate::order_sync::check(fetched))
        .await
        .map_err(|e| SyncError::Source(SourceError::File(format!("order checks: {e}"))))?;
    let mut refused = checked.refused.clone();
    let offered = checked.orders.len();
    let not_stored = journal.store_orders(checked, described.clone()).await?;
    let report = SyncReport {
        source: described,
        stored: offered - not_stored.len(),
        refused: {
            refused.extend(not_stored);
            refused
        },
    };
    Ok(report)
}

/// The central service as the print flow uses it: to look an order up before its label (when
/// orders come from central) and to arbitrate a bag's label site-wide.
#[derive(Debug, Clone)]
pub struct CentralLink {
    /// The client, or why `[central]` cannot be used (its token unreadable): then every
    /// question counts as unanswered, and `[central] offline` decides.
    pub client: Result<CentralClient, String>,
    pub orders_from_central: bool,
    pub offline: crate::config::Offline,
    pub site_id: String,
    pub workstation: String,
}

impl CentralLink {
    /// The link `config` describes, if it has a `[central]` section.
    pub fn from_config(config: &Config) -> Option<CentralLink> {
        let client = match central_client(config) {
            Ok(Some(client)) => Ok(client),
            Ok(None) => return None,
            Err(problem) => Err(problem.to_string()),
        };
        Some(CentralLink {
            client,
            orders_from_central: config.orders == crate::config::OrderSourceConfig::Central,
            offline: config
                .central
                .as_ref()
                .map_or(crate::config::Offline::Local, |c| c.offline),
            site_id: config.site_id.clone(),
            workstation: config.workstation.clone(),
        })
    }

    /// The client, or the reason it cannot be used as an unavailable service.
    ///
    /// # Errors
    /// [`CentralError::Unavailable`] with the reason.
    fn client(&self) -> Result<&CentralClient, CentralError> {
        self.client
            .as_ref()
            .map_err(|problem| CentralError::Unavailable(problem.clone()))
    }
}

/// A receipt scan at this site, arbitrated site-wide (issue #13): judged, and when it is a
/// MATCH, central is asked whether another workstation received the bag first (`[central]
/// offline` decides when it cannot answer); then judged again and recorded with central's word.
///
/// # Errors
/// The journal failed or its owner stopped: nothing recorded.
pub async fn receive_scan(
    journal: &JournalOwner,
    central: Option<&CentralLink>,
    scan: Scan,
    operator: Option<String>,
) -> Result<RecordedScan, OwnerError> {
    let claim = match central {
        None => ReceiptClaim::NotAsked,
        Some(link) => {
            let mut verdict = journal
                .judge_receipt(scan.clone(), operator.clone())
                .await?;
            // Orders from central: the scanned order is asked for first, so a change not yet
            // synced (a cancellation) decides this receipt (issue #13).
            let mut gone = None;
            if let (true, Some(coi), Some(_), Ok(client)) = (
                link.orders_from_central,
                verdict.coi,
                verdict.din,
                &link.client,
            ) {
                match look_up_order(journal, client, &coi).await {
                    Ok(_) => {
                        verdict = journal
                            .judge_receipt(scan.clone(), operator.clone())
                            .await?;
                    }
                    Err(FlowError::Journal(problem)) => {
                        return Err(OwnerError::Journal(crate::journal::JournalError::Owner(
                            problem,
                        )));
                    }
                    Err(refused) => gone = Some(refused.to_string()),
                }
            }
            match (gone, verdict.is_match(), verdict.coi, verdict.bag) {
                (Some(why), ..) => ReceiptClaim::Unknown(why),
                (None, true, Some(coi), Some(bag)) => claim_receipt(link, coi.as_str(), bag).await,
                _ => ReceiptClaim::NotAsked,
            }
        }
    };
    journal.receive(scan, operator, claim).await
}

/// Asks central for bag `bag` of `coi`'s receipt at this workstation. The key is the same for
/// every scan of that bag here, so asking again after a lost answer is granted again.
async fn claim_receipt(link: &CentralLink, coi: &str, bag: u8) -> ReceiptClaim {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(
        format!(
            "receipt\n{}\n{}\n{coi}\n{bag}",
            link.site_id, link.workstation
        )
        .as_bytes(),
    );
    let key: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    let body = serde_json::json!({
        "job_id": key,
        "site_id": link.site_id,
        "workstation": link.workstation,
        "at": jiff::Timestamp::now().to_string(),
    });
    let claim = tokio::time::timeout(CLAIM_TIMEOUT, async {
        link.client()?.claim(coi, bag, "receipt", &key, &body).await
    })
    .await;
    let problem = match claim {
        Ok(Ok(crate::central::Claim::Granted)) => return ReceiptClaim::Granted,
        Ok(Ok(crate::central::Claim::Held { workstation, .. })) => {
            return ReceiptClaim::Held { workstation };
        }
        Ok(Ok(crate::central::Claim::CollectionTime { .. })) => {
            return ReceiptClaim::Refused("an answer about a label, not a receipt".to_owned());
        }
        Ok(Err(problem @ (CentralError::Rejected { .. } | CentralError::Protocol(_)))) => {
            return ReceiptClaim::Refused(problem.to_string());
        }
        Ok(Err(problem)) => problem.to_string(),
        Err(_) => format!("no answer in {} s", CLAIM_TIMEOUT.as_secs()),
    };
    match link.offline {
        crate::config::Offline::Local => {
            tracing::warn!(%problem, "receipt arbitration unavailable: decided locally");
            ReceiptClaim::Offline
        }
        crate::config::Offline::Refuse => ReceiptClaim::Refused(problem),
    }
}

/// How long a label waits for central's grant before `[central] offline` decides.
pub const CLAIM_TIMEOUT: Duration = Duration::from_secs(3);

/// Asks central for bag `prepared.bag`'s label (docs/central-api.md, "Site-wide
/// arbitration"); marks how it was decided on `prepared`.
///
/// # Errors
/// Held by another workstation's job, or central unreachable with `offline = "refuse"`: the
/// job's fault to record and the refusal.
async fn arbitrate(
    link: &CentralLink,
    prepared: &mut PreparedLabel,
) -> Result<(), (&'static str, Refusal)> {
    let body = serde_json::json!({
        "job_id": prepared.job.id,
        "site_id": link.site_id,
        "workstation": link.workstation,
        "reprint": prepared.reprint,
        "reason": prepared.reason,
        "collected_at": prepared.collected_at.to_string(),
        "at": jiff::Timestamp::now().to_string(),
        "label_kind": prepared.label_kind.as_str(),
    });
    let mut body = body;
    if let Some(map) = body.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    let coi = prepared.order.coi.as_str().to_owned();
    let claim = tokio::time::timeout(CLAIM_TIMEOUT, async {
        link.client()?
            .claim(&coi, prepared.bag, "label", &prepared.job.id, &body)
            .await
    })
    .await;
    let problem = match claim {
        Ok(Ok(crate::central::Claim::Granted)) => {
            prepared.arbitration = "central";
            return Ok(());
        }
        Ok(Ok(crate::central::Claim::CollectionTime { collected_at })) => {
            return Err((
                "collection_time",
                Refusal::CollectionTime {
                    order_id: prepared.order.order_id.clone(),
                    recorded: collected_at,
                    asked: prepared.collected_at,
                },
            ));
        }
        Ok(Ok(crate::central::Claim::Held {
            job_id,
            workstation,
            ..
        })) => {
            return Err((
                "held_elsewhere",
                Refusal::HeldElsewhere {
                    order_id: prepared.order.order_id.clone(),
                    bag: prepared.bag,
                    holder: job_id,
                    workstation,
                },
            ));
        }
        // An answer that is not central's grant nor its refusal (a 4xx, a malformed answer):
        // never read as "offline".
        Ok(Err(problem @ (CentralError::Rejected { .. } | CentralError::Protocol(_)))) => {
            return Err((
                "central_refused",
                Refusal::CentralOffline {
                    order_id: prepared.order.order_id.clone(),
                    bag: prepared.bag,
                    problem: problem.to_string(),
                },
            ));
        }
        Ok(Err(problem)) => problem.to_string(),
        Err(_) => format!("no answer in {} s", CLAIM_TIMEOUT.as_secs()),
    };
    match link.offline {
        crate::config::Offline::Local => {
            tracing::warn!(%problem, "label arbitration unavailable: decided locally");
            prepared.arbitration = "offline";
            Ok(())
        }
        crate::config::Offline::Refuse => Err((
            "central_offline",
            Refusal::CentralOffline {
                order_id: prepared.order.order_id.clone(),
                bag: prepared.bag,
                problem,
            },
        )),
    }
}

/// How long a label waits for central's answer about its order before using the cache.
pub const ORDER_LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// Asks central for one order before its label (issue #13): a valid answer replaces the cached
/// order (a refused one holds it), an order central does not know prints nothing, and no
/// answer within [`ORDER_LOOKUP_TIMEOUT`] leaves the cache to decide (within `[orders]
/// max_age_secs`). Returns where the order was checked: `central` or `cache`.
///
/// # Errors
/// [`FlowError::Refused`] when central does not know the order; [`FlowError::Journal`] when
/// the answer could not be stored.
pub async fn look_up_order(
    journal: &JournalOwner,
    client: &CentralClient,
    coi: &crate::isbt128::coi::CoiId,
) -> Result<&'static str, FlowError> {
    let answer = tokio::time::timeout(ORDER_LOOKUP_TIMEOUT, client.order(coi.as_str())).await;
    let record = match answer {
        Ok(Ok(Some(record))) if record["coi"].as_str() == Some(coi.as_str()) => record,
        Ok(Ok(None)) => {
            return Err(FlowError::Refused(format!(
                "the central service does not know order {coi} (check the COI; call your supervisor)"
            )));
        }
        Ok(Ok(Some(_))) => {
            tracing::warn!("central answered another order than the one asked for: cache used");
            return Ok("cache");
        }
        Ok(Err(problem)) => {
            tracing::warn!(%problem, "order lookup failed: cache used");
            return Ok("cache");
        }
        Err(_) => {
            tracing::warn!("order lookup timed out: cache used");
            return Ok("cache");
        }
    };
    let fetched = crate::order_sync::Fetched {
        records: vec![record],
        as_of: None,
        complete: false,
    };
    let mut checked = crate::order_sync::check(fetched);
    checked.one_order = true;
    let valid = !checked.orders.is_empty();
    let refused = journal
        .store_orders(checked, "central (one order)".to_owned())
        .await
        .map_err(|e| FlowError::Journal(e.to_string()))?;
    // A record refused by its checks holds the cached order (the print then says so); one the
    // cache could not take (its DIN is another cached order's) prints nothing.
    if valid && !refused.is_empty() {
        return Err(FlowError::Refused(format!(
            "the central service's record of order {coi} could not be stored: {}",
            refused.join("; ")
        )));
    }
    Ok("central")
}

/// Why a sync failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Journal(#[from] OwnerError),
}

/// One delivery round: the due events from the journal, posted (no journal held while the
/// service answers), every outcome recorded in one transaction.
///
/// # Errors
/// The journal failed; this round's outcomes are lost and its events will be posted again.
pub async fn deliver_round(
    journal: &JournalOwner,
    client: &CentralClient,
    policy: RetryPolicy,
) -> Result<Round, OwnerError> {
    let now = jiff::Timestamp::now();
    let groups = journal.due_events(now).await?;
    if groups.is_empty() {
        return Ok(Round::default());
    }
    let (outcomes, round) = crate::outbox::post_due(groups, client, policy, now).await;
    journal.apply_outcomes(outcomes).await?;
    Ok(round)
}

/// Delivers rounds while they make progress (`outbox flush`). With `until`, keeps going
/// (waiting out events that are backing off) until the outbox is empty or the deadline passes.
///
/// # Errors
/// The journal failed.
pub async fn drain(
    journal: &JournalOwner,
    client: &CentralClient,
    policy: RetryPolicy,
    until: Option<std::time::Instant>,
) -> Result<Round, OwnerError> {
    let mut total = Round::default();
    loop {
        let round = deliver_round(journal, client, policy).await?;
        total.delivered += round.delivered;
        total.retried += round.retried;
        total.parked += round.parked;
        let progressed = round.delivered + round.parked > 0;
        match until {
            None if !progressed => return Ok(total),
            None => {}
            Some(deadline) => {
                if journal.outbox_status().await?.pending == 0
                    || std::time::Instant::now() >= deadline
                {
                    return Ok(total);
                }
                if !progressed {
                    tokio::time::sleep(policy.first.min(Duration::from_millis(200))).await;
                }
            }
        }
    }
}

/// The configured order source, ready to fetch.
///
/// # Errors
/// The central service's token cannot be read, or its address is not a URL.
pub fn order_source(config: &Config) -> anyhow::Result<OrderSource> {
    Ok(match &config.orders {
        crate::config::OrderSourceConfig::File(path) => OrderSource::File {
            path: path.clone(),
            max_bytes: config.order_max_bytes,
        },
        crate::config::OrderSourceConfig::Central => OrderSource::Central {
            client: central_client(config)?
                .ok_or_else(|| anyhow::anyhow!("no [central] section"))?,
            site_id: config.site_id.clone(),
        },
    })
}

/// The central service's client, when one is configured.
///
/// # Errors
/// The token cannot be read, or the address is not a URL.
pub fn central_client(config: &Config) -> anyhow::Result<Option<CentralClient>> {
    let Some(central) = &config.central else {
        return Ok(None);
    };
    Ok(Some(
        CentralClient::new(&central.url, central.token()?, central.timeout)?
            .with_order_limit(config.order_max_bytes),
    ))
}

/// Runs the agent until `shutdown` completes: starts the journal's owner, the printers, the
/// scanners, the order refresh and outbox loops and the API; on shutdown stops taking input,
/// finishes or records what is in flight, and returns.
///
/// # Errors
/// Only startup failures end the agent: the journal cannot be opened, the API's address cannot
/// be bound, its token cannot be made. A device or the central service failing is logged,
/// shown and retried.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    run_exposing(config, shutdown, None).await
}

/// As [`run`], handing the running agent to `expose` once it serves (for tests that drive the
/// routes directly, as `tower::ServiceExt::oneshot` does).
///
/// # Errors
/// As [`run`].
pub async fn run_exposing(
    config: Config,
    shutdown: impl Future<Output = ()>,
    expose: Option<tokio::sync::oneshot::Sender<Agent>>,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let journal = JournalOwner::for_config(&config)?;
    let api_token = crate::api::token::load_or_create(&config.api.token_file)?;
    let listener = tokio::net::TcpListener::bind(config.api.listen)
        .await
        .map_err(|e| anyhow::anyhow!("api: bind {}: {e}", config.api.listen))?;
    let listen = listener.local_addr()?;
    let source = order_source(&config);
    let central = central_client(&config);

    let (stop_tx, stopping) = watch::channel(false);
    let (hard_stop_tx, hard_stop) = watch::channel(false);
    let (notices, _) = broadcast::channel(1024);

    let mut printers = Vec::with_capacity(config.printers.len());
    for printer in &config.printers {
        let (ready, state) = match crate::printer::start(
            &printer.name,
            &printer.uri,
            printer.profile.as_ref(),
        )
        .await
        {
            Ok(ready) => (Some(ready), ("starting".to_owned(), None)),
            Err(problem) => {
                tracing::error!(printer = %printer.name, %problem, "printer not started");
                (None, ("error".to_owned(), Some(problem)))
            }
        };
        printers.push(PrinterSlot {
            name: printer.name.clone(),
            ready,
            state: Mutex::new(DeviceNotice {
                kind: "printer",
                name: printer.name.clone(),
                state: state.0,
                fault: state.1,
            }),
        });
    }
    let scanners = config
        .scanners
        .iter()
        .map(|s| ScannerSlot {
            name: s.name.clone(),
            step: s.step,
            state: Mutex::new(DeviceNotice {
                kind: "scanner",
                name: s.name.clone(),
                state: "connecting".to_owned(),
                fault: None,
            }),
        })
        .collect();
    let agent = Agent {
        inner: Arc::new(Shared {
            journal: journal.clone(),
            printers,
            scanners,
            notices,
            outbox_wake: Notify::new(),
            metrics: metrics::Metrics::default(),
            stopping: stopping.clone(),
            hard_stop,
            api_token,
            listen,
            site_id: config.site_id.clone(),
            sync_error: Mutex::new(None),
            synced_at: Mutex::new(None),
            central_link: CentralLink::from_config(&config),
            sessions: sessions::Sessions::new(config.ui_idle),
            pin_checks: tokio::sync::Semaphore::new(1),
            previews: previews::Previews::default(),
            pair_window: config.pair_window,
            delivery_problem: match &central {
                Ok(Some(_)) => None,
                Ok(None) => Some(
                    "no [central] section in the configuration: they wait in the outbox".to_owned(),
                ),
                Err(problem) => Some(format!(
                    "the central service is not usable ({problem}): they wait in the outbox"
                )),
            },
            workstation: config.workstation.clone(),
        }),
    };

    let mut tasks = tokio::task::JoinSet::new();
    // The cached orders serve at once; the first sync runs beside the other tasks, so a large
    // cache or a slow central service does not delay readiness.
    match source {
        Ok(source) => {
            tasks.spawn(refresh_loop(agent.clone(), source, config.refresh));
        }
        Err(problem) => {
            *lock(&agent.inner.sync_error) = Some(problem.to_string());
            tracing::error!(%problem, "order source not usable");
        }
    }
    match central {
        Ok(Some(client)) => {
            tasks.spawn(outbox_loop(agent.clone(), client));
        }
        Ok(None) => tracing::warn!("no [central] section: custody events wait in the outbox"),
        Err(problem) => {
            tracing::warn!(%problem, "central service not usable: custody events wait in the outbox")
        }
    }
    for index in 0..agent.inner.printers.len() {
        tasks.spawn(printer_poll(agent.clone(), index));
    }
    let mut scanner_tasks = tokio::task::JoinSet::new();
    for (index, scanner) in config.scanners.iter().enumerate() {
        scanner_tasks.spawn(read_scanner(agent.clone(), index, scanner.spec.clone()));
    }
    let api = tokio::spawn(crate::api::serve(agent.clone(), listener));
    if let Some(expose) = expose {
        let _ = expose.send(agent.clone());
    }
    tracing::info!(
        %listen,
        printers = agent.inner.printers.len(),
        scanners = agent.inner.scanners.len(),
        ready_ms = started.elapsed().as_millis() as u64,
        "coi-agent ready"
    );
    notify::ready();
    let watchdog = notify::watchdog_interval().map(|every| {
        let journal = journal.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                // A daemon that can no longer record is not alive: let systemd restart it.
                if journal.is_alive() {
                    notify::watchdog();
                }
            }
        })
    });

    // Runs until asked to stop, or until the journal's owner is gone: then nothing can be
    // recorded, and the daemon stops (exit 1) rather than read scans it cannot keep.
    let journal_lost = {
        let journal = journal.clone();
        async move {
            while journal.is_alive() {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    let lost = tokio::select! {
        () = shutdown => false,
        () = journal_lost => true,
    };
    if lost {
        tracing::error!("the journal's owner stopped: nothing can be recorded; stopping");
    }
    tracing::info!("stopping: no more input is taken");
    notify::stopping();
    stop_tx.send_replace(true);
    let grace = tokio::time::sleep(SHUTDOWN_GRACE);
    tokio::pin!(grace);
    // Scanners flush what they framed; each scan already read is judged and recorded.
    let drained = async {
        while scanner_tasks.join_next().await.is_some() {}
        let _ = api.await;
    };
    tokio::select! {
        () = drained => {}
        () = &mut grace => {
            tracing::warn!("work still in flight after the grace period: recording it as it stands");
            hard_stop_tx.send_replace(true);
            // The print flow records an interrupted job unconfirmed and returns.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    hard_stop_tx.send_replace(true);
    tasks.abort_all();
    scanner_tasks.abort_all();
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    // Every printer finishes (or is cut off from) its current request, together.
    let printers = agent
        .inner
        .printers
        .iter()
        .filter_map(|slot| slot.ready.as_ref().map(|ready| ready.handle.clone()))
        .collect::<Vec<_>>();
    let _ = tokio::time::timeout(
        Duration::from_millis(300),
        futures_util::future::join_all(printers.iter().map(|handle| handle.shutdown())),
    )
    .await;
    let status = tokio::time::timeout(Duration::from_millis(200), journal.outbox_status()).await;
    // The journal's owner finishes the commands it was given once the last handle is gone.
    let exit = journal.exit_signal();
    drop(journal);
    drop(agent);
    if tokio::time::timeout(Duration::from_millis(400), JournalOwner::exited(exit))
        .await
        .is_err()
    {
        tracing::warn!("the journal's owner was still writing at exit");
    }
    if let Ok(Ok(status)) = status {
        tracing::info!(pending = status.pending, "stopped");
    }
    if lost {
        anyhow::bail!("the journal's owner stopped");
    }
    Ok(())
}

async fn refresh_once(agent: &Agent, source: &OrderSource, full: bool) {
    match sync_orders(&agent.inner.journal, source, full).await {
        Ok(report) => {
            *lock(&agent.inner.sync_error) = None;
            *lock(&agent.inner.synced_at) = Some(jiff::Timestamp::now());
            agent.inner.metrics.synced(report.refused.len());
            if report.refused.is_empty() {
                tracing::debug!(stored = report.stored, "orders synced");
            } else {
                // Each refusal names an order id and a field, never a value.
                for problem in &report.refused {
                    tracing::warn!(%problem, "order refused");
                }
            }
        }
        Err(problem) => {
            tracing::warn!(%problem, "order sync failed; the cache is kept");
            *lock(&agent.inner.sync_error) = Some(problem.to_string());
        }
    }
}

async fn refresh_loop(agent: Agent, source: OrderSource, every: Duration) {
    let mut stopping = agent.stopping();
    let mut round: u64 = 0;
    loop {
        // Central says what changed, not what ended: every FULL_SYNC_EVERY refreshes the whole
        // list is asked for, and orders no longer served for this site leave the cache.
        let full = round % FULL_SYNC_EVERY == FULL_SYNC_EVERY - 1;
        round += 1;
        tokio::select! {
            () = refresh_once(&agent, &source, full) => {}
            () = until_true(&mut stopping) => return,
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = until_true(&mut stopping) => return,
        }
    }
}

async fn outbox_loop(agent: Agent, client: CentralClient) {
    let policy = RetryPolicy::default();
    let mut stopping = agent.stopping();
    let mut failing = false;
    loop {
        match deliver_round(&agent.inner.journal, &client, policy).await {
            Ok(round) => {
                agent.inner.metrics.delivered(round);
                if round.retried > 0 && !failing {
                    tracing::warn!(
                        retried = round.retried,
                        "central service unavailable: events wait"
                    );
                }
                failing = round.retried > 0;
                if round.delivered + round.parked > 0 {
                    // More may be due at once (a backlog): go again without waiting.
                    continue;
                }
            }
            Err(problem) => tracing::error!(%problem, "outbox round not recorded"),
        }
        tokio::select! {
            () = agent.inner.outbox_wake.notified() => {}
            () = tokio::time::sleep(OUTBOX_TICK) => {}
            () = until_true(&mut stopping) => return,
        }
    }
}

async fn printer_poll(agent: Agent, index: usize) {
    let slot = &agent.inner.printers[index];
    let Some(ready) = slot.ready.clone() else {
        return;
    };
    let mut stopping = agent.stopping();
    loop {
        let (state, fault) = if ready.has_status {
            match ready.handle.status().await {
                Ok(status) => match status.faults().first() {
                    None => ("ready".to_owned(), None),
                    Some(fault) => ("fault".to_owned(), Some(fault.as_str().to_owned())),
                },
                Err(problem) => ("offline".to_owned(), Some(problem.to_string())),
            }
        } else if ready.spool {
            ("ready".to_owned(), None)
        } else {
            ("no_status".to_owned(), None)
        };
        agent.set_device_state(&slot.state, state, fault);
        tokio::select! {
            () = tokio::time::sleep(PRINTER_POLL) => {}
            () = until_true(&mut stopping) => return,
        }
    }
}

impl Agent {
    fn set_device_state(&self, slot: &Mutex<DeviceNotice>, state: String, fault: Option<String>) {
        let notice = {
            let mut current = lock(slot);
            if current.state == state && current.fault == fault {
                return;
            }
            current.state = state;
            current.fault = fault;
            current.clone()
        };
        tracing::info!(kind = notice.kind, device = %notice.name, state = %notice.state, fault = ?notice.fault, "device state");
        self.inner.metrics.device(&notice);
        let _ = self.inner.notices.send(Notice::Device(notice));
    }
}

/// Reads one configured scanner: its owner task frames reads into scans; each scan is judged
/// by the scanner's step and recorded before it is shown, one after another.
async fn read_scanner(agent: Agent, index: usize, spec: ScannerSpec) {
    let slot = &agent.inner.scanners[index];
    let (scans_tx, mut scans) = mpsc::channel::<Scan>(256);
    let (state_tx, mut state) = watch::channel(ScannerState::Connecting);
    let (shutdown_tx, shutdown) = watch::channel(false);
    let reader = tokio::spawn(crate::scanner::run(spec, scans_tx, state_tx, shutdown));
    let mut stopping = agent.stopping();
    let mut hard_stop = agent.inner.hard_stop.clone();
    let mut watching = true;
    loop {
        tokio::select! {
            // Out of time at shutdown: what was read but not judged is said, not silently lost.
            () = until_true(&mut hard_stop) => {
                let mut left = 0;
                while scans.try_recv().is_ok() {
                    left += 1;
                }
                if left > 0 {
                    tracing::error!(scanner = %slot.name, scans = left, "scans read but not judged at shutdown: nothing recorded for them");
                }
                break;
            }
            scan = scans.recv() => match scan {
                Some(scan) => {
                    // The read is the person's signed in at this station's screen, if any
                    // (and still enabled: one disabled elsewhere is signed out here).
                    // A verify scanner's read at an order's page is checked against that
                    // order: another order's label is not this bag's.
                    let station = agent
                        .inner
                        .sessions
                        .station(slot.step, std::time::Instant::now());
                    let (mut operator, on_screen) = match station {
                        Some((operator, coi)) => (
                            Some(operator),
                            coi.and_then(|c| crate::isbt128::coi::CoiId::parse(&c).ok()),
                        ),
                        None => (None, None),
                    };
                    if let Some(id) = &operator
                        && !agent.operator_active(id).await {
                            agent.inner.sessions.end_operator(id);
                            operator = None;
                        }
                    match agent
                        .scan_on_screen(scan, slot.step, None, on_screen, operator)
                        .await
                    {
                        Ok(report) => tracing::info!(
                            scanner = %slot.name,
                            scan_id = report.id,
                            verdict = report.verdict.verdict,
                            reason = report.verdict.reason.unwrap_or(""),
                            "scan recorded"
                        ),
                        Err(problem) => tracing::error!(scanner = %slot.name, %problem, "scan not recorded"),
                    }
                }
                // The reader ended (shutdown, or a stream that ends such as stdin).
                None => break,
            },
            changed = state.changed(), if watching => {
                if changed.is_err() {
                    watching = false;
                    continue;
                }
                let now = state.borrow_and_update().clone();
                let (name, fault) = match &now {
                    ScannerState::Connecting => ("connecting", None),
                    ScannerState::Connected { .. } => ("connected", None),
                    ScannerState::Disconnected { reason } => ("disconnected", Some(reason.clone())),
                    ScannerState::Error { reason } => ("error", Some(reason.clone())),
                    ScannerState::Stopped => ("stopped", None),
                };
                agent.set_device_state(&slot.state, name.to_owned(), fault);
            }
            () = until_true(&mut stopping), if !*shutdown_tx.borrow() => {
                shutdown_tx.send_replace(true);
            }
        }
    }
    let _ = reader.await;
    agent.set_device_state(&slot.state, "stopped".to_owned(), None);
}

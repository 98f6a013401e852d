//! The one owner of the journal: a dedicated thread that holds the SQLite connection and the
//! order cache in memory, and takes a closed set of [`Command`]s with oneshot replies. Every
//! write (and its fsync) runs on that thread, never on an async worker, and no journal borrow
//! crosses an await: a flow is check-and-record here, then the device or network step in the
//! caller's task, then record-the-outcome here.
//!
//! The order book is parsed once and kept; a sync in this process or another (`orders sync`
//! while `serve` runs) changes the journal's order revision, and the book is reloaded on the
//! next command that needs it.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::custody::Station;
use crate::journal::audit::BrokenLink;
use crate::journal::operators::{OperatorProblem, OperatorRow, PinRecorded};
use crate::journal::outbox::{NotParked, OutboxEntry, OutboxStatus, Outcome, PendingEvent};
use crate::journal::{Journal, JournalError, ScanRow};
use crate::label::template::Template;
use crate::labeling::{self, BagLabel, PreparedLabel, Printed, Refusal, Verified, VerifyError};
use crate::operators::Role;
use crate::order_sync::CheckedOrders;
use crate::orders::OrderBook;
use crate::printer::job::JobOutcome;
use crate::receiving::{self, RecordedScan};
use crate::report::BagLabelReport;
use crate::scanner::Scan;

/// A cloneable handle to the journal's owner thread. The thread ends when every handle is
/// dropped, after the commands already sent.
#[derive(Debug, Clone)]
pub struct JournalOwner {
    /// To the owner thread; it stops when every sender is gone. Closed when the thread ended
    /// (or panicked): nothing more can be recorded.
    tx: mpsc::Sender<Command>,
    /// Turns true (or its sender is dropped) when the owner thread has ended.
    exited: tokio::sync::watch::Receiver<bool>,
    /// The journal's file, for checks that read it on their own connection.
    path: std::path::PathBuf,
}

/// The journal owner's thread has stopped (or panicked): nothing more can be recorded.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the journal's owner has stopped")]
pub struct Stopped;

/// Why a journal command failed.
#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

/// A label asked for, as owned values (it crosses to the owner thread).
#[derive(Debug, Clone)]
pub struct LabelOrder {
    pub coi: crate::isbt128::coi::CoiId,
    pub bag: u8,
    /// A built-in template's name.
    pub template: String,
    pub operator: Option<String>,
    pub reprint: bool,
    /// A reprint's reason.
    pub reason: Option<String>,
    pub collected_at: Option<jiff::Timestamp>,
    /// Where the order was checked just before: `central` (asked for by itself), `cache`
    /// (central did not answer in time), or `file`.
    pub order_from: &'static str,
}

/// What the journal says about the agent's health, for `/readyz` and `/metrics`.
#[derive(Debug, Clone)]
pub struct JournalHealth {
    pub orders: usize,
    /// When orders were last synced (RFC 3339 UTC), if ever.
    pub orders_synced_at: Option<jiff::Timestamp>,
    pub outbox: OutboxStatus,
    /// Print jobs by state.
    pub jobs: Vec<(String, i64)>,
}

type Reply<T> = oneshot::Sender<Result<T, JournalError>>;

/// Everything the journal's owner can be asked to do: one `match` holds every way the journal
/// is touched by the daemon.
#[derive(Debug)]
enum Command {
    /// Where order sync resumes.
    SyncResume(Reply<Option<String>>),
    /// Stores checked orders with where to resume, in one transaction; returns refusals.
    StoreOrders {
        checked: CheckedOrders,
        source: String,
        reply: Reply<Vec<String>>,
    },
    /// The order cache (reloaded if another sync changed it).
    Orders(Reply<Arc<OrderBook>>),
    /// A sync found nothing new: the cache is current as of now.
    MarkSynced(Reply<()>),
    /// The bags of an order with their label and receipt state.
    BagLabels {
        coi: String,
        bags: u8,
        reply: Reply<Vec<BagLabelReport>>,
    },
    Receive {
        scan: Scan,
        operator: Option<String>,
        claim: receiving::ReceiptClaim,
        reply: Reply<RecordedScan>,
    },
    /// The verdict a receipt scan would get now (nothing recorded).
    JudgeReceipt {
        scan: Scan,
        operator: Option<String>,
        reply: Reply<crate::reconcile::Verdict>,
    },
    /// The verify step: against a given job, or the label waiting for it.
    Verify {
        job_id: Option<String>,
        /// Scanned at this order's screen: another order's label is not this bag's.
        on_screen: Option<crate::isbt128::coi::CoiId>,
        scan: Scan,
        operator: Option<String>,
        reply: oneshot::Sender<Result<Verified, VerifyError>>,
    },
    PrepareLabel {
        order: LabelOrder,
        printer: String,
        dpi: u32,
        reply: oneshot::Sender<Result<PreparedLabel, Refusal>>,
    },
    FinishLabel {
        prepared: Box<PreparedLabel>,
        outcome: JobOutcome,
        reply: oneshot::Sender<Result<Printed, Refusal>>,
    },
    /// Records a queued job failed before anything was sent (`fault` says why).
    AbandonJob {
        job_id: String,
        fault: &'static str,
        reply: Reply<()>,
    },
    /// Voids a printed label.
    VoidLabel {
        job_id: String,
        reason: Option<String>,
        operator: Option<String>,
        reply: oneshot::Sender<Result<labeling::Voided, labeling::VoidError>>,
    },
    DueEvents {
        now: jiff::Timestamp,
        reply: Reply<Vec<Vec<PendingEvent>>>,
    },
    ApplyOutcomes {
        outcomes: Vec<(PendingEvent, Outcome)>,
        reply: Reply<()>,
    },
    /// Makes every pending event due now (`outbox flush`).
    MakePendingDue(Reply<usize>),
    OutboxStatus(Reply<OutboxStatus>),
    RecentScans {
        limit: usize,
        reply: Reply<Vec<ScanRow>>,
    },
    Health(Reply<JournalHealth>),
    /// One operator (to sign in or check a PIN).
    Operator {
        id: String,
        reply: Reply<Option<OperatorRow>>,
    },
    Operators(Reply<Vec<OperatorRow>>),
    AddOperator {
        id: String,
        name: String,
        role: Role,
        pin_hash: String,
        by: Option<String>,
        reply: Reply<Result<(), OperatorProblem>>,
    },
    DisableOperator {
        id: String,
        by: Option<String>,
        reply: Reply<Result<(), OperatorProblem>>,
    },
    EnableOperator {
        id: String,
        by: Option<String>,
        reply: Reply<Result<(), OperatorProblem>>,
    },
    /// A PIN attempt's outcome (a lockout is audited).
    RecordPin {
        id: String,
        right: bool,
        purpose: &'static str,
        now: jiff::Timestamp,
        reply: Reply<PinRecorded>,
    },
    /// Pending and parked events for a person to see.
    WaitingEvents {
        limit: usize,
        reply: Reply<Vec<OutboxEntry>>,
    },
    RequeueParked {
        event_id: String,
        by: Option<String>,
        reply: Reply<Result<usize, (String, NotParked)>>,
    },
    CloseParked {
        event_id: String,
        reason: String,
        operator: Option<String>,
        reply: Reply<Result<(), NotParked>>,
    },
    /// The bags received at this site of each of these orders (the receipt screen's list).
    BagsReceived {
        cois: Vec<String>,
        reply: Reply<Vec<Vec<u8>>>,
    },
}

impl JournalOwner {
    /// Opens the journal at `path` and starts its owner thread for this workstation.
    ///
    /// # Errors
    /// The journal cannot be opened or migrated.
    pub fn start(
        path: &Path,
        site_id: &str,
        workstation: &str,
        pair_window: std::time::Duration,
    ) -> Result<JournalOwner, JournalError> {
        JournalOwner::start_with(path, site_id, workstation, pair_window, None)
    }

    /// As [`JournalOwner::start`], trusting cached orders only `order_max_age` for receipts and
    /// first labels (orders from the central service).
    ///
    /// # Errors
    /// As [`JournalOwner::start`].
    pub fn start_with(
        path: &Path,
        site_id: &str,
        workstation: &str,
        pair_window: std::time::Duration,
        order_max_age: Option<std::time::Duration>,
    ) -> Result<JournalOwner, JournalError> {
        let journal = Journal::open(path)?;
        let templates = crate::label::builtin().unwrap_or_default();
        let (tx, rx) = mpsc::channel(256);
        let (exit_tx, exited) = tokio::sync::watch::channel(false);
        let mut owner = Owner {
            journal,
            here: Here {
                site_id: site_id.to_owned(),
                workstation: workstation.to_owned(),
                pair_window,
                order_max_age,
            },
            templates,
            book: None,
        };
        std::thread::Builder::new()
            .name("journal".to_owned())
            .spawn(move || {
                owner.serve(rx);
                // Also when serve panics: the sender is dropped while unwinding.
                exit_tx.send_replace(true);
            })
            .map_err(|e| JournalError::Owner(format!("its owner thread did not start: {e}")))?;
        Ok(JournalOwner {
            tx,
            exited,
            path: path.to_owned(),
        })
    }

    /// The owner of the journal `config` names, for its site and workstation.
    ///
    /// # Errors
    /// As [`JournalOwner::start`].
    pub fn for_config(config: &crate::config::Config) -> Result<JournalOwner, JournalError> {
        JournalOwner::start_with(
            &config.journal,
            &config.site_id,
            &config.workstation,
            config.pair_window,
            config.order_max_age,
        )
    }

    /// Whether the owner thread still takes commands (false once it ended or panicked).
    pub fn is_alive(&self) -> bool {
        !self.tx.is_closed()
    }

    /// Waits until the owner thread has ended (after the last handle is dropped, it finishes the
    /// commands it was given first).
    pub async fn exited(mut exited: tokio::sync::watch::Receiver<bool>) {
        let _ = exited.wait_for(|done| *done).await;
    }

    /// A receiver for [`JournalOwner::exited`] that outlives this handle.
    pub fn exit_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.exited.clone()
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Stopped> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, OwnerError> {
        Ok(self.ask(make).await??)
    }

    /// # Errors
    /// The journal failed or its owner stopped.
    pub async fn sync_resume(&self) -> Result<Option<String>, OwnerError> {
        self.call(Command::SyncResume).await
    }

    /// Stores a sync's checked orders; returns the refusals.
    ///
    /// # Errors
    /// The journal failed (nothing of the sync stored) or its owner stopped.
    /// Records that a sync found nothing new (the cache is current).
    ///
    /// # Errors
    /// The journal failed or its owner stopped.
    pub async fn mark_synced(&self) -> Result<(), OwnerError> {
        self.call(Command::MarkSynced).await
    }

    pub async fn store_orders(
        &self,
        checked: CheckedOrders,
        source: String,
    ) -> Result<Vec<String>, OwnerError> {
        self.call(|reply| Command::StoreOrders {
            checked,
            source,
            reply,
        })
        .await
    }

    /// The cached orders.
    ///
    /// # Errors
    /// The journal failed or its owner stopped.
    pub async fn orders(&self) -> Result<Arc<OrderBook>, OwnerError> {
        self.call(Command::Orders).await
    }

    /// Each bag of an order with its label and receipt state.
    ///
    /// # Errors
    /// The journal failed or its owner stopped.
    pub async fn bag_labels(&self, coi: &str, bags: u8) -> Result<Vec<BagLabelReport>, OwnerError> {
        let coi = coi.to_owned();
        self.call(|reply| Command::BagLabels { coi, bags, reply })
            .await
    }

    /// Judges and records a receipt scan (recorded before it is returned).
    ///
    /// # Errors
    /// The journal failed (nothing recorded: the verdict must not be shown) or its owner stopped.
    pub async fn receive(
        &self,
        scan: Scan,
        operator: Option<String>,
        claim: receiving::ReceiptClaim,
    ) -> Result<RecordedScan, OwnerError> {
        self.call(|reply| Command::Receive {
            scan,
            operator,
            claim,
            reply,
        })
        .await
    }

    /// The verdict a receipt scan would get now, nothing recorded (to ask central about).
    ///
    /// # Errors
    /// The journal failed or its owner stopped.
    pub async fn judge_receipt(
        &self,
        scan: Scan,
        operator: Option<String>,
    ) -> Result<crate::reconcile::Verdict, OwnerError> {
        self.call(|reply| Command::JudgeReceipt {
            scan,
            operator,
            reply,
        })
        .await
    }

    /// The verify step: the scan against job `job_id`, or against the label waiting for it.
    ///
    /// # Errors
    /// See [`VerifyError`]; a stopped owner is a journal failure.
    pub async fn verify(
        &self,
        job_id: Option<String>,
        on_screen: Option<crate::isbt128::coi::CoiId>,
        scan: Scan,
        operator: Option<String>,
    ) -> Result<Result<Verified, VerifyError>, Stopped> {
        self.ask(|reply| Command::Verify {
            job_id,
            on_screen,
            scan,
            operator,
            reply,
        })
        .await
    }

    /// Checks, makes and records a bag label `queued` for printer `printer` at `dpi`.
    ///
    /// # Errors
    /// The owner stopped (nothing was recorded or sent).
    pub async fn prepare_label(
        &self,
        order: LabelOrder,
        printer: String,
        dpi: u32,
    ) -> Result<Result<PreparedLabel, Refusal>, Stopped> {
        self.ask(|reply| Command::PrepareLabel {
            order,
            printer,
            dpi,
            reply,
        })
        .await
    }

    /// Records the printer's verdict on a prepared label with its custody event.
    ///
    /// # Errors
    /// The owner stopped (the outcome was not recorded).
    pub async fn finish_label(
        &self,
        prepared: PreparedLabel,
        outcome: JobOutcome,
    ) -> Result<Result<Printed, Refusal>, Stopped> {
        self.ask(|reply| Command::FinishLabel {
            prepared: Box::new(prepared),
            outcome,
            reply,
        })
        .await
    }

    /// Records the queued job `job_id` failed before anything was sent.
    ///
    /// # Errors
    /// The journal failed or its owner stopped.
    pub async fn abandon_job(&self, job_id: String, fault: &'static str) -> Result<(), OwnerError> {
        self.call(|reply| Command::AbandonJob {
            job_id,
            fault,
            reply,
        })
        .await
    }

    /// Voids the label of job `job_id` with the reason.
    ///
    /// # Errors
    /// The owner stopped (nothing was recorded).
    pub async fn void_label(
        &self,
        job_id: String,
        reason: Option<String>,
        operator: Option<String>,
    ) -> Result<Result<labeling::Voided, labeling::VoidError>, Stopped> {
        self.ask(|reply| Command::VoidLabel {
            job_id,
            reason,
            operator,
            reply,
        })
        .await
    }

    /// # Errors
    /// The journal failed or its owner stopped.
    pub async fn due_events(
        &self,
        now: jiff::Timestamp,
    ) -> Result<Vec<Vec<PendingEvent>>, OwnerError> {
        self.call(|reply| Command::DueEvents { now, reply }).await
    }

    /// # Errors
    /// The journal failed or its owner stopped (the events go again).
    pub async fn apply_outcomes(
        &self,
        outcomes: Vec<(PendingEvent, Outcome)>,
    ) -> Result<(), OwnerError> {
        self.call(|reply| Command::ApplyOutcomes { outcomes, reply })
            .await
    }

    /// # Errors
    /// The journal failed or its owner stopped.
    pub async fn make_pending_due(&self) -> Result<usize, OwnerError> {
        self.call(Command::MakePendingDue).await
    }

    /// # Errors
    /// The journal failed or its owner stopped.
    pub async fn outbox_status(&self) -> Result<OutboxStatus, OwnerError> {
        self.call(Command::OutboxStatus).await
    }

    /// The latest `limit` scans, newest first.
    ///
    /// # Errors
    /// The journal failed or its owner stopped.
    pub async fn recent_scans(&self, limit: usize) -> Result<Vec<ScanRow>, OwnerError> {
        self.call(|reply| Command::RecentScans { limit, reply })
            .await
    }

    /// # Errors
    /// The journal failed or its owner stopped.
    pub async fn health(&self) -> Result<JournalHealth, OwnerError> {
        self.call(Command::Health).await
    }

    /// # Errors
    /// The journal failed or its owner stopped.
    pub async fn operator(&self, id: &str) -> Result<Option<OperatorRow>, OwnerError> {
        let id = id.to_owned();
        self.call(|reply| Command::Operator { id, reply }).await
    }

    /// # Errors
    /// The journal failed or its owner stopped.
    pub async fn operators(&self) -> Result<Vec<OperatorRow>, OwnerError> {
        self.call(Command::Operators).await
    }

    /// Adds an operator whose PIN is already hashed.
    ///
    /// # Errors
    /// The journal failed or its owner stopped.
    pub async fn add_operator(
        &self,
        id: String,
        name: String,
        role: Role,
        pin_hash: String,
        by: Option<String>,
    ) -> Result<Result<(), OperatorProblem>, OwnerError> {
        self.call(|reply| Command::AddOperator {
            id,
            name,
            role,
            pin_hash,
            by,
            reply,
        })
        .await
    }

    /// # Errors
    /// The journal failed or its owner stopped.
    pub async fn disable_operator(
        &self,
        id: String,
        by: Option<String>,
    ) -> Result<Result<(), OperatorProblem>, OwnerError> {
        self.call(|reply| Command::DisableOperator { id, by, reply })
            .await
    }

    /// Enables an operator again and lifts a lockout.
    ///
    /// # Errors
    /// The journal failed or its owner stopped.
    pub async fn enable_operator(
        &self,
        id: String,
        by: Option<String>,
    ) -> Result<Result<(), OperatorProblem>, OwnerError> {
        self.call(|reply| Command::EnableOperator { id, by, reply })
            .await
    }

    /// Records a PIN attempt (see [`Journal::record_pin`]).
    ///
    /// # Errors
    /// The journal failed or its owner stopped.
    pub async fn record_pin(
        &self,
        id: String,
        right: bool,
        purpose: &'static str,
        now: jiff::Timestamp,
    ) -> Result<PinRecorded, OwnerError> {
        self.call(|reply| Command::RecordPin {
            id,
            right,
            purpose,
            now,
            reply,
        })
        .await
    }

    /// # Errors
    /// The journal failed or its owner stopped.
    pub async fn waiting_events(&self, limit: usize) -> Result<Vec<OutboxEntry>, OwnerError> {
        self.call(|reply| Command::WaitingEvents { limit, reply })
            .await
    }

    /// Sends a parked event again.
    ///
    /// # Errors
    /// The journal failed or its owner stopped.
    pub async fn requeue_parked(
        &self,
        event_id: String,
        by: Option<String>,
    ) -> Result<Result<usize, (String, NotParked)>, OwnerError> {
        self.call(|reply| Command::RequeueParked {
            event_id,
            by,
            reply,
        })
        .await
    }

    /// Closes a parked event deliberately (it is never sent), with the reason.
    ///
    /// # Errors
    /// The journal failed or its owner stopped.
    pub async fn close_parked(
        &self,
        event_id: String,
        reason: String,
        operator: Option<String>,
    ) -> Result<Result<(), NotParked>, OwnerError> {
        self.call(|reply| Command::CloseParked {
            event_id,
            reason,
            operator,
            reply,
        })
        .await
    }

    /// The bags received at this site of each order in `cois`, in order.
    ///
    /// # Errors
    /// The journal failed or its owner stopped.
    pub async fn bags_received(&self, cois: Vec<String>) -> Result<Vec<Vec<u8>>, OwnerError> {
        self.call(|reply| Command::BagsReceived { cois, reply })
            .await
    }

    /// # Errors
    /// The journal failed or its owner stopped.
    pub async fn verify_audit(&self) -> Result<Result<i64, BrokenLink>, OwnerError> {
        // A whole-journal check takes time and memory: it reads its own snapshot on a blocking
        // thread, so scans and labels are not kept waiting behind it.
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || Journal::open_read_only(&path)?.verify_audit())
            .await
            .map_err(|_| OwnerError::Stopped(Stopped))?
            .map_err(OwnerError::Journal)
    }
}

/// This workstation, as events name it.
struct Here {
    site_id: String,
    workstation: String,
    pair_window: std::time::Duration,
    order_max_age: Option<std::time::Duration>,
}

impl Here {
    fn station(&self) -> Station<'_> {
        Station {
            site_id: &self.site_id,
            workstation: &self.workstation,
            pair_window: self.pair_window,
            order_max_age: self.order_max_age,
        }
    }
}

/// The owner thread's state.
struct Owner {
    journal: Journal,
    /// This workstation (apart from `journal`, so both can be borrowed at once).
    here: Here,
    /// The built-in templates (the journal records a template by name and version).
    templates: Vec<Template>,
    /// The order book and the revision it was loaded at.
    book: Option<(Option<String>, Arc<OrderBook>)>,
}

impl Owner {
    fn serve(&mut self, mut rx: mpsc::Receiver<Command>) {
        // The cached orders are parsed once, before the first scan needs them.
        if let Err(problem) = self.book() {
            tracing::error!(%problem, "cached orders not loaded");
        }
        while let Some(command) = rx.blocking_recv() {
            self.handle(command);
        }
    }

    /// The order book, reloaded when the journal's order revision moved.
    fn book(&mut self) -> Result<Arc<OrderBook>, JournalError> {
        let revision = self.journal.orders_revision()?;
        if let Some((loaded, book)) = &self.book
            && *loaded == revision
        {
            return Ok(Arc::clone(book));
        }
        let (book, refused) = self.journal.order_book()?;
        if !refused.is_empty() {
            tracing::warn!(
                refused = refused.len(),
                "cached orders that no longer pass their checks are left out"
            );
        }
        let book = Arc::new(book);
        // Drop the old book before handing back the parse's scratch memory.
        self.book = Some((revision, Arc::clone(&book)));
        crate::sys::release_free_memory();
        Ok(book)
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::SyncResume(reply) => {
                let _ = reply.send(self.journal.sync_state(crate::order_sync::RESUME_KEY));
            }
            Command::StoreOrders {
                checked,
                source,
                reply,
            } => {
                let _ = reply.send(self.journal.store_orders(&checked, &source));
            }
            Command::Orders(reply) => {
                let _ = reply.send(self.book());
            }
            Command::MarkSynced(reply) => {
                let _ = reply.send(self.journal.mark_orders_synced());
            }
            Command::BagLabels { coi, bags, reply } => {
                let _ = reply.send(self.bag_labels(&coi, bags));
            }
            Command::Receive {
                scan,
                operator,
                claim,
                reply,
            } => {
                let res = self.book().and_then(|book| {
                    let station = self.here.station();
                    receiving::receive(
                        &mut self.journal,
                        &book,
                        &scan,
                        station,
                        operator.as_deref(),
                        &claim,
                    )
                });
                let _ = reply.send(res);
            }
            Command::JudgeReceipt {
                scan,
                operator,
                reply,
            } => {
                let res = self.book().and_then(|book| {
                    receiving::judge_receipt(
                        &self.journal,
                        &book,
                        &scan,
                        self.here.station(),
                        operator.as_deref(),
                    )
                });
                let _ = reply.send(res);
            }
            Command::Verify {
                job_id,
                on_screen,
                scan,
                operator,
                reply,
            } => {
                let res = self.book().map_err(VerifyError::from).and_then(|book| {
                    let station = self.here.station();
                    match &job_id {
                        Some(job_id) => labeling::verify_label(
                            &mut self.journal,
                            &book,
                            job_id,
                            &scan,
                            station,
                            operator.as_deref(),
                        ),
                        None => labeling::verify_scan(
                            &mut self.journal,
                            &book,
                            &scan,
                            station,
                            operator.as_deref(),
                            on_screen.as_ref(),
                        ),
                    }
                });
                let _ = reply.send(res);
            }
            Command::PrepareLabel {
                order,
                printer,
                dpi,
                reply,
            } => {
                let _ = reply.send(self.prepare_label(&order, &printer, dpi));
            }
            Command::FinishLabel {
                prepared,
                outcome,
                reply,
            } => {
                let station = self.here.station();
                let _ = reply.send(labeling::finish_bag_label(
                    &mut self.journal,
                    station,
                    &prepared,
                    outcome,
                ));
            }
            Command::AbandonJob {
                job_id,
                fault,
                reply,
            } => {
                let at = crate::journal::utc_text(jiff::Timestamp::now());
                let _ = reply.send(self.journal.record_job_state(
                    &job_id,
                    "failed",
                    Some(fault),
                    &at,
                    &[],
                ));
            }
            Command::VoidLabel {
                job_id,
                reason,
                operator,
                reply,
            } => {
                let res = self
                    .book()
                    .map_err(labeling::VoidError::from)
                    .and_then(|book| {
                        labeling::void_label(
                            &mut self.journal,
                            &book,
                            &job_id,
                            reason.as_deref(),
                            self.here.station(),
                            operator.as_deref(),
                        )
                    });
                let _ = reply.send(res);
            }
            Command::DueEvents { now, reply } => {
                let _ = reply.send(self.journal.due_events(
                    &crate::journal::utc_text(now),
                    crate::outbox::PER_COI,
                    crate::outbox::PARALLEL_COIS,
                ));
            }
            Command::ApplyOutcomes { outcomes, reply } => {
                let _ = reply.send(self.journal.apply_outcomes(&outcomes));
            }
            Command::MakePendingDue(reply) => {
                let _ = reply.send(self.journal.make_pending_due());
            }
            Command::OutboxStatus(reply) => {
                let _ = reply.send(self.journal.outbox_status());
            }
            Command::RecentScans { limit, reply } => {
                let _ = reply.send(self.journal.recent_scans(limit));
            }
            Command::Health(reply) => {
                let _ = reply.send(self.health());
            }
            Command::Operator { id, reply } => {
                let _ = reply.send(self.journal.operator(&id));
            }
            Command::Operators(reply) => {
                let _ = reply.send(self.journal.operators());
            }
            Command::AddOperator {
                id,
                name,
                role,
                pin_hash,
                by,
                reply,
            } => {
                let _ = reply.send(self.journal.add_operator(
                    &id,
                    &name,
                    role,
                    &pin_hash,
                    by.as_deref(),
                ));
            }
            Command::DisableOperator { id, by, reply } => {
                let _ = reply.send(self.journal.disable_operator(&id, by.as_deref()));
            }
            Command::EnableOperator { id, by, reply } => {
                let _ = reply.send(self.journal.enable_operator(&id, by.as_deref()));
            }
            Command::RecordPin {
                id,
                right,
                purpose,
                now,
                reply,
            } => {
                let _ = reply.send(self.journal.record_pin(&id, right, purpose, now));
            }
            Command::WaitingEvents { limit, reply } => {
                let _ = reply.send(self.journal.waiting_events(limit));
            }
            Command::RequeueParked {
                event_id,
                by,
                reply,
            } => {
                let ids = [event_id];
                let _ = reply.send(self.journal.requeue_parked(Some(&ids), by.as_deref()));
            }
            Command::CloseParked {
                event_id,
                reason,
                operator,
                reply,
            } => {
                let _ = reply.send(self.journal.close_parked(
                    &event_id,
                    &reason,
                    operator.as_deref(),
                ));
            }
            Command::BagsReceived { cois, reply } => {
                let site_id = &self.here.site_id;
                let _ = reply.send(
                    cois.iter()
                        .map(|coi| self.journal.bags_received(site_id, coi))
                        .collect(),
                );
            }
        }
    }

    fn prepare_label(
        &mut self,
        order: &LabelOrder,
        printer: &str,
        dpi: u32,
    ) -> Result<PreparedLabel, Refusal> {
        let book = self.book()?;
        let Some(template) = self.templates.iter().find(|t| t.name == order.template) else {
            return Err(Refusal::Label(format!(
                "unknown template {:?}",
                order.template
            )));
        };
        let station = self.here.station();
        labeling::prepare_bag_label(
            &mut self.journal,
            &book,
            station,
            printer,
            dpi,
            BagLabel {
                coi: &order.coi,
                bag: order.bag,
                template,
                operator: order.operator.as_deref(),
                reprint: order.reprint,
                reason: order.reason.as_deref(),
                collected_at: order.collected_at,
                order_from: order.order_from,
            },
        )
    }

    fn bag_labels(&mut self, coi: &str, bags: u8) -> Result<Vec<BagLabelReport>, JournalError> {
        let site_id = self.here.site_id.clone();
        (1..=bags)
            .map(|bag| {
                let latest = self.journal.bag_label_jobs(coi, bag)?.pop();
                let job = match &latest {
                    Some((job_id, _)) => self.journal.print_job(job_id)?,
                    None => None,
                };
                let (verification, collected_at) = job
                    .map(|job| (job.verification, job.collected_at))
                    .unwrap_or_default();
                let state = latest
                    .as_ref()
                    .map_or_else(|| "none".to_owned(), |(_, state)| state.clone());
                let voided = self.journal.bag_label_voided(coi, bag)?;
                Ok(BagLabelReport {
                    bag,
                    label: crate::report::label_state(&state, verification.as_deref(), voided),
                    state,
                    job_id: latest.map(|(job_id, _)| job_id),
                    verification,
                    collected_at,
                    received: self.journal.is_received(&site_id, coi, bag)?,
                })
            })
            .collect()
    }

    fn health(&mut self) -> Result<JournalHealth, JournalError> {
        let orders = self.book()?.len();
        let orders_synced_at = self
            .journal
            .orders_synced_at()?
            .and_then(|text| text.parse().ok());
        Ok(JournalHealth {
            orders,
            orders_synced_at,
            outbox: self.journal.outbox_status()?,
            jobs: self.journal.jobs_by_state()?,
        })
    }
}

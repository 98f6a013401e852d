//! A print job's life: `queued → preflight → sent → confirmed | unconfirmed | failed`, decided
//! by the printer's own status, never by "the bytes went out". Preflight refuses a printer in
//! fault or one that does not answer; after sending, status is polled until the printer shows
//! the job done, a fault appears, or a deadline passes (`unconfirmed`). Nothing here ever sends a
//! job twice: the caller decides, and `unconfirmed` and `failed` are never resent by themselves.

use std::time::Duration;

use super::status::{Fault, PrinterStatus, parse_extended_status, parse_host_status};
use super::transport::{Channel, Connection, TransportError};

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobPhase {
    Queued,
    Preflight,
    Sent,
    Confirmed,
    Unconfirmed,
    Failed,
}

/// A job to print.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub zpl: Vec<u8>,
    /// A job not sent by then never prints (a stale label is worse than none).
    pub expires_at: Option<jiff::Timestamp>,
}

/// What became of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutcome {
    pub job_id: String,
    pub phase: JobPhase,
    pub fault: Option<Fault>,
    pub bytes: usize,
    /// Every phase the job went through, with when.
    pub history: Vec<(JobPhase, jiff::Timestamp)>,
}

/// Deadlines of a job, with reasons.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// A status answer slower than this means the printer is not answering: a Zebra answers
    /// `~HS` in a few milliseconds.
    pub status_timeout: Duration,
    /// How often to ask while a job prints.
    pub poll_interval: Duration,
    /// How long a job may take to show done before it is `unconfirmed`: long enough for a
    /// 4 × 4 in label at low speed, short enough that a nurse is told soon.
    pub confirm_deadline: Duration,
    /// Ask `~HQES` too (printers that support it name faults `~HS` cannot).
    pub extended_status: bool,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            status_timeout: Duration::from_secs(2),
            poll_interval: Duration::from_millis(100),
            confirm_deadline: Duration::from_secs(30),
            extended_status: true,
        }
    }
}

/// `~HS` answers in three framed strings, `~HQES` in one.
const HS: &[u8] = b"~HS";
const HQES: &[u8] = b"~HQES";

impl JobPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            JobPhase::Queued => "queued",
            JobPhase::Preflight => "preflight",
            JobPhase::Sent => "sent",
            JobPhase::Confirmed => "confirmed",
            JobPhase::Unconfirmed => "unconfirmed",
            JobPhase::Failed => "failed",
        }
    }
}

/// The printer's status, or why it could not be had.
///
/// # Errors
/// No answer in time, a dropped connection, or an answer that does not parse (treated as no
/// answer: a printer whose status cannot be read is not known to be well).
pub async fn query_status(
    conn: &mut Connection,
    timing: Timing,
) -> Result<PrinterStatus, TransportError> {
    let reply = conn.query(HS, 3, timing.status_timeout).await?;
    let mut status =
        parse_host_status(&reply).map_err(|_| TransportError::Timeout(timing.status_timeout))?;
    if timing.extended_status {
        // Printers without ~HQES do not answer it; ~HS alone then decides.
        if let Ok(reply) = conn.query(HQES, 1, timing.status_timeout).await
            && let Ok((errors, warnings)) = parse_extended_status(&reply)
        {
            status.errors = Some(errors);
            status.warnings = Some(warnings);
        }
    }
    Ok(status)
}

/// Runs one job on an open connection. A spool's jobs are confirmed once written durably; a
/// write-only printer's stay unconfirmed once sent.
pub async fn run(conn: &mut Connection, job: &Job, channel: Channel, timing: Timing) -> JobOutcome {
    let mut outcome = JobOutcome {
        job_id: job.id.clone(),
        phase: JobPhase::Queued,
        fault: None,
        bytes: 0,
        history: Vec::new(),
    };
    let enter = |outcome: &mut JobOutcome, phase| {
        outcome.phase = phase;
        outcome.history.push((phase, jiff::Timestamp::now()));
    };
    enter(&mut outcome, JobPhase::Queued);
    if job
        .expires_at
        .is_some_and(|expiry| expiry <= jiff::Timestamp::now())
    {
        outcome.fault = Some(Fault::Expired);
        enter(&mut outcome, JobPhase::Failed);
        return outcome;
    }
    if channel != Channel::Status {
        match conn.send(&job.id, &job.zpl).await {
            Ok(()) => {}
            // Nothing reached a spool file that failed: it can be printed again.
            Err(TransportError::Spool { .. }) => {
                outcome.fault = Some(Fault::Offline);
                enter(&mut outcome, JobPhase::Failed);
                return outcome;
            }
            // Part of it may have reached the device.
            Err(_) => {
                outcome.fault = Some(Fault::Disconnected);
                enter(&mut outcome, JobPhase::Unconfirmed);
                return outcome;
            }
        }
        outcome.bytes = job.zpl.len();
        enter(&mut outcome, JobPhase::Sent);
        let done = if channel == Channel::Spool {
            JobPhase::Confirmed
        } else {
            JobPhase::Unconfirmed
        };
        enter(&mut outcome, done);
        return outcome;
    }

    enter(&mut outcome, JobPhase::Preflight);
    match query_status(conn, timing).await {
        Ok(status) => {
            if let Some(&fault) = status.faults().first() {
                outcome.fault = Some(fault);
                enter(&mut outcome, JobPhase::Failed);
                return outcome;
            }
        }
        Err(_) => {
            outcome.fault = Some(Fault::Offline);
            enter(&mut outcome, JobPhase::Failed);
            return outcome;
        }
    }

    // The job and a status query in one write: the printer answers the query after taking in
    // the format, so the first answer already counts it.
    // The preflight took time: a job that expired meanwhile still never prints.
    if job
        .expires_at
        .is_some_and(|expiry| expiry <= jiff::Timestamp::now())
    {
        outcome.fault = Some(Fault::Expired);
        enter(&mut outcome, JobPhase::Failed);
        return outcome;
    }
    let mut bytes = Vec::with_capacity(job.zpl.len() + HS.len());
    bytes.extend_from_slice(&job.zpl);
    bytes.extend_from_slice(HS);
    if conn.send(&job.id, &bytes).await.is_err() {
        // Some bytes may have left: whole formats among them may print. Unknown, not failed,
        // so nobody prints it again without checking.
        outcome.fault = Some(Fault::Disconnected);
        enter(&mut outcome, JobPhase::Unconfirmed);
        return outcome;
    }
    outcome.bytes = job.zpl.len();
    enter(&mut outcome, JobPhase::Sent);

    let deadline = tokio::time::Instant::now() + timing.confirm_deadline;
    let mut answer = conn
        .read_answer(3, timing.status_timeout)
        .await
        .and_then(|reply| {
            parse_host_status(&reply).map_err(|_| TransportError::Timeout(timing.status_timeout))
        });
    // Idle only proves the job printed once the printer has been seen working on it: a printer
    // that answers a tilde query before it has parsed the format just received also looks idle.
    let mut seen_at_work = false;
    loop {
        let answered = answer.is_ok();
        match answer {
            Ok(status) => {
                if let Some(&fault) = status.faults().first() {
                    // The job is in the printer, held by the fault: it prints once the fault is
                    // cleared (or printed already). Not failed: printing it again makes two.
                    outcome.fault = Some(fault);
                    enter(&mut outcome, JobPhase::Unconfirmed);
                    return outcome;
                }
                if !status.is_idle() {
                    seen_at_work = true;
                } else if seen_at_work {
                    enter(&mut outcome, JobPhase::Confirmed);
                    return outcome;
                }
            }
            Err(TransportError::Disconnected(_)) => {
                // Sent whole, then the printer went away: it may or may not have printed.
                outcome.fault = Some(Fault::Disconnected);
                enter(&mut outcome, JobPhase::Unconfirmed);
                return outcome;
            }
            Err(_) => {}
        }
        if tokio::time::Instant::now() + timing.poll_interval >= deadline {
            // A printer that stopped answering is named as the cause (README: "unconfirmed
            // with the cause named"); one that answered but never showed the job done is not.
            if !answered {
                outcome.fault = Some(Fault::Offline);
            }
            enter(&mut outcome, JobPhase::Unconfirmed);
            return outcome;
        }
        tokio::time::sleep(timing.poll_interval).await;
        answer = query_status(conn, timing).await;
    }
}

/// A printer that remembers the jobs it was given: a job id submitted again returns the first
/// outcome and is not sent again, so a retried request can never print a second label. It keeps
/// its connection between jobs and opens a new one after a failure.
#[derive(Debug)]
pub struct Printer {
    pub uri: super::transport::PrinterUri,
    pub timing: Timing,
    conn: Option<Connection>,
    /// Outcomes of jobs that may have reached the printer, by job id, the latest
    /// [`REMEMBERED_JOBS`]: a retried request is answered from here, never printed again. The
    /// journal's unique job id guards older ones.
    outcomes: std::collections::HashMap<String, JobOutcome>,
    /// The remembered job ids, oldest first.
    remembered: std::collections::VecDeque<String>,
    /// The last connection attempt was refused for lack of permission.
    denied: bool,
}

/// How many job outcomes a printer remembers: a retry comes within seconds, and a daemon that
/// prints for months must not grow without bound.
pub const REMEMBERED_JOBS: usize = 1024;

impl Printer {
    pub fn new(uri: super::transport::PrinterUri, timing: Timing) -> Printer {
        Printer {
            uri,
            timing,
            conn: None,
            outcomes: std::collections::HashMap::new(),
            remembered: std::collections::VecDeque::new(),
            denied: false,
        }
    }

    /// Prints `job` once and remembers the outcome.
    pub async fn submit(&mut self, job: &Job) -> JobOutcome {
        if let Some(previous) = self.outcomes.get(&job.id) {
            return previous.clone();
        }
        let (channel, timing) = (self.uri.channel(), self.timing);
        let reused = self.conn.is_some();
        let mut outcome = match self.connection().await {
            Some(conn) => run(conn, job, channel, timing).await,
            None => {
                let now = jiff::Timestamp::now();
                JobOutcome {
                    job_id: job.id.clone(),
                    phase: JobPhase::Failed,
                    fault: Some(if self.denied {
                        Fault::NoPermission
                    } else {
                        Fault::Offline
                    }),
                    bytes: 0,
                    history: vec![(JobPhase::Queued, now), (JobPhase::Failed, now)],
                }
            }
        };
        // After a failure the connection may be half-dead or out of step: start afresh.
        if outcome.phase != JobPhase::Confirmed {
            self.conn = None;
        }
        // A kept connection the printer closed while idle fails the preflight; nothing was sent,
        // so one more try on a new connection is safe.
        if reused
            && nothing_sent(&outcome)
            && outcome.fault == Some(Fault::Offline)
            && let Some(conn) = self.connection().await
        {
            outcome = run(conn, job, channel, timing).await;
            if outcome.phase != JobPhase::Confirmed {
                self.conn = None;
            }
        }
        // Only jobs that may have reached the printer are remembered: one refused before
        // anything was sent can be tried again under its id.
        if !nothing_sent(&outcome) {
            if self.remembered.len() == REMEMBERED_JOBS
                && let Some(oldest) = self.remembered.pop_front()
            {
                self.outcomes.remove(&oldest);
            }
            self.remembered.push_back(job.id.clone());
            self.outcomes.insert(job.id.clone(), outcome.clone());
        }
        outcome
    }

    /// The printer's status now.
    ///
    /// # Errors
    /// The printer cannot be reached or does not answer.
    pub async fn status(&mut self) -> Result<PrinterStatus, TransportError> {
        let timing = self.timing;
        let Some(conn) = self.connection().await else {
            return Err(TransportError::Timeout(timing.status_timeout));
        };
        let res = query_status(conn, timing).await;
        if res.is_err() {
            self.conn = None;
        }
        res
    }

    /// What the printer says it is (`~HI`): `None` when it does not answer or the answer does
    /// not parse (not every printer or transport answers).
    pub async fn identify(&mut self) -> Option<super::status::Identification> {
        let timeout = self.timing.status_timeout;
        let conn = self.connection().await?;
        match conn.query(b"~HI", 1, timeout).await {
            Ok(reply) => super::status::parse_identification(&reply),
            Err(_) => {
                self.conn = None;
                None
            }
        }
    }

    async fn connection(&mut self) -> Option<&mut Connection> {
        if self.conn.is_none() {
            match Connection::open(&self.uri).await {
                Ok(conn) => {
                    self.conn = Some(conn);
                    self.denied = false;
                }
                Err(problem) => {
                    self.denied = matches!(
                        &problem,
                        super::transport::TransportError::Connect { cause, .. }
                            if cause.kind() == std::io::ErrorKind::PermissionDenied
                    );
                    tracing::warn!(%problem, "printer not reachable");
                }
            }
        }
        self.conn.as_mut()
    }
}

/// Whether the job failed before any byte of it was sent.
fn nothing_sent(outcome: &JobOutcome) -> bool {
    outcome.phase == JobPhase::Failed
        && !outcome
            .history
            .iter()
            .any(|(phase, _)| *phase == JobPhase::Sent)
}

/// A printer owned by one task: jobs and status requests reach it as messages, so a printer is
/// never written to by two callers at once. The task ends when every handle is dropped or
/// [`PrinterHandle::shutdown`] is called, after the requests before it.
#[derive(Debug, Clone)]
pub struct PrinterHandle {
    /// To the owning task; it ends when every handle is dropped.
    tx: tokio::sync::mpsc::Sender<Request>,
}

/// Why a printer request got no answer from the printer.
#[derive(Debug, thiserror::Error)]
pub enum PrinterError {
    #[error("the printer task has stopped")]
    Stopped,
    #[error(transparent)]
    Transport(#[from] TransportError),
}

#[derive(Debug)]
enum Request {
    Submit(Job, tokio::sync::oneshot::Sender<JobOutcome>),
    Status(tokio::sync::oneshot::Sender<Result<PrinterStatus, TransportError>>),
    Identify(tokio::sync::oneshot::Sender<Option<super::status::Identification>>),
    Shutdown(tokio::sync::oneshot::Sender<()>),
}

impl PrinterHandle {
    /// Starts the task that owns `printer`.
    pub fn spawn(mut printer: Printer) -> PrinterHandle {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Request>(64);
        tokio::spawn(async move {
            while let Some(request) = rx.recv().await {
                match request {
                    Request::Submit(job, reply) => {
                        let _ = reply.send(printer.submit(&job).await);
                    }
                    Request::Status(reply) => {
                        let _ = reply.send(printer.status().await);
                    }
                    Request::Identify(reply) => {
                        let _ = reply.send(printer.identify().await);
                    }
                    Request::Shutdown(done) => {
                        // Every job asked for before this has finished: nothing is half-sent.
                        let _ = done.send(());
                        break;
                    }
                }
            }
        });
        PrinterHandle { tx }
    }

    /// Prints a job (once per job id) and waits for its outcome. A printer task that has
    /// stopped is `failed` (offline) before anything was sent.
    pub async fn submit(&self, job: Job) -> JobOutcome {
        let (reply, outcome) = tokio::sync::oneshot::channel();
        let id = job.id.clone();
        if self.tx.send(Request::Submit(job, reply)).await.is_ok()
            && let Ok(outcome) = outcome.await
        {
            return outcome;
        }
        let now = jiff::Timestamp::now();
        JobOutcome {
            job_id: id,
            phase: JobPhase::Failed,
            fault: Some(Fault::Offline),
            bytes: 0,
            history: vec![(JobPhase::Failed, now)],
        }
    }

    /// The printer's status now.
    ///
    /// # Errors
    /// The printer cannot be reached or does not answer, or its task has stopped.
    pub async fn status(&self) -> Result<PrinterStatus, PrinterError> {
        let (reply, status) = tokio::sync::oneshot::channel();
        self.tx
            .send(Request::Status(reply))
            .await
            .map_err(|_| PrinterError::Stopped)?;
        Ok(status.await.map_err(|_| PrinterError::Stopped)??)
    }

    /// What the printer says it is (`~HI`); `None` when it does not say.
    pub async fn identify(&self) -> Option<super::status::Identification> {
        let (reply, identification) = tokio::sync::oneshot::channel();
        self.tx.send(Request::Identify(reply)).await.ok()?;
        identification.await.ok().flatten()
    }

    /// Stops the task once the requests already asked for are done.
    pub async fn shutdown(&self) {
        let (done, finished) = tokio::sync::oneshot::channel();
        if self.tx.send(Request::Shutdown(done)).await.is_ok() {
            let _ = finished.await;
        }
    }
}

//! Barcode scanners as devices: each source (serial, TCP, USB HID, evdev keyboard, stdin) is
//! owned by one task that reads its bytes, frames them exactly and hands on one [`Scan`] per
//! read. A source that goes away is reopened with capped backoff; its state is published.
//!
//! Parsing a scan is the ISBT 128 core's job ([`Scan::parse`]); what a scan means for an order
//! is reconciliation's.

pub mod evdev;
pub mod framing;
pub mod hid;
pub mod profiles;
pub(crate) mod serial;
pub mod source;
mod stream;

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::isbt128::error::Isbt128Error;
use crate::isbt128::message::{self, Message};
use framing::{FrameEnd, Framed, Framer, FramingConfig};
use source::{ScannerSpec, SourceConfig};

/// One read from a scanner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// When the read was framed.
    pub at: jiff::Timestamp,
    /// The source's label (its URI without parameters), plus the peer for a TCP listener.
    pub source: String,
    /// The frame's bytes without the suffix; empty for an oversize frame, which was dropped.
    pub raw: Vec<u8>,
    /// Set when the frame itself is not a complete read.
    pub problem: Option<FrameProblem>,
}

/// Why a frame is not a complete read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameProblem {
    #[error("read of {len} bytes is longer than the maximum of {max}: dropped")]
    Oversize { len: usize, max: usize },
    #[error("read ended by a pause without its suffix: it may be incomplete")]
    NoSuffix,
    #[error("read cut short: the scanner went away before its suffix")]
    CutShort,
}

/// Why a scan has no usable ISBT 128 data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Frame(FrameProblem),
    #[error(transparent)]
    Isbt128(Isbt128Error),
}

/// What a source is doing, for people and monitoring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScannerState {
    Connecting,
    Connected {
        detail: String,
    },
    /// It was there and went away; it is being reopened.
    Disconnected {
        reason: String,
    },
    /// It cannot be opened; retried with backoff.
    Error {
        reason: String,
    },
    Stopped,
}

impl Scan {
    /// The scan's ISBT 128 structures, or why there are none.
    ///
    /// # Errors
    /// A frame problem (oversize, incomplete), or the ISBT 128 parse error.
    pub fn parse(&self) -> Result<Message<'_>, ScanError> {
        if let Some(problem) = self.problem {
            return Err(ScanError::Frame(problem));
        }
        message::parse(&self.raw).map_err(ScanError::Isbt128)
    }
}

impl ScanError {
    pub fn kind(&self) -> &'static str {
        match self {
            ScanError::Frame(FrameProblem::Oversize { .. }) => "oversize",
            ScanError::Frame(FrameProblem::NoSuffix) => "no_suffix",
            ScanError::Frame(FrameProblem::CutShort) => "cut_short",
            ScanError::Isbt128(err) => err.kind(),
        }
    }
}

impl std::fmt::Display for ScannerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScannerState::Connecting => f.write_str("connecting"),
            ScannerState::Connected { detail } => write!(f, "connected ({detail})"),
            ScannerState::Disconnected { reason } => write!(f, "disconnected: {reason}"),
            ScannerState::Error { reason } => write!(f, "error: {reason}"),
            ScannerState::Stopped => f.write_str("stopped"),
        }
    }
}

/// What a reader reports to its stream's framing loop.
#[derive(Debug)]
pub(crate) enum Input {
    Connected(String),
    /// Bytes and when they were read: framing times pauses by arrival, not by when the framing
    /// loop got to them.
    Bytes(Vec<u8>, std::time::Instant),
    /// A whole read from a device that delimits reads itself (HID point-of-sale).
    Frame(Vec<u8>),
    /// The device went away; the reader will reopen it.
    Disconnected(String),
    /// The device cannot be opened; the reader will retry.
    Failed(String),
    /// The stream ended for good (stdin).
    Ended,
}

/// Reopen delays: 100 ms doubling to 5 s. A replugged scanner is back within a few seconds,
/// and a missing one costs one failed open every 5 s.
#[derive(Debug)]
pub(crate) struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const CAP: Duration = Duration::from_secs(5);
    /// A link that stayed up this long counts as working, and the next reopen starts fast
    /// again; one that drops sooner keeps backing off, so a device that opens and fails at
    /// once cannot make the source flap every 100 ms.
    pub const STABLE: Duration = Duration::from_secs(5);

    pub fn new() -> Backoff {
        Backoff(Backoff::FIRST)
    }

    pub fn reset(&mut self) {
        self.0 = Backoff::FIRST;
    }

    /// Resets only if the link that just ended was up for `STABLE` or more.
    pub fn link_ended(&mut self, up_for: Duration) {
        if up_for >= Backoff::STABLE {
            self.reset();
        }
    }

    pub fn next_delay(&mut self) -> Duration {
        let delay = self.0;
        self.0 = (self.0 * 2).min(Backoff::CAP);
        delay
    }
}

/// Reads a scanner until `shutdown` turns true: scans go to `scans`, states to `state`.
///
/// Only the scanner's own problems are reported, through states and error scans; this returns
/// when shutdown is asked for, when a stream ends for good (stdin), or when `scans` is closed.
pub async fn run(
    spec: ScannerSpec,
    scans: mpsc::Sender<Scan>,
    state: watch::Sender<ScannerState>,
    shutdown: watch::Receiver<bool>,
) {
    state.send_replace(ScannerState::Connecting);
    match spec.source.clone() {
        SourceConfig::TcpListen { address } => {
            stream::listen(address, spec, scans, &state, shutdown).await;
        }
        source => {
            let (tx, rx) = mpsc::channel(64);
            let reader = spawn_reader(source, tx, shutdown.clone());
            frame_loop(
                spec.label.clone(),
                spec.framing,
                rx,
                &scans,
                &state,
                shutdown,
            )
            .await;
            reader.abort();
        }
    }
    state.send_replace(ScannerState::Stopped);
}

/// Starts the task or thread that owns the device.
fn spawn_reader(
    source: SourceConfig,
    tx: mpsc::Sender<Input>,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    match source {
        SourceConfig::Serial(settings) => {
            let stop = Stop { shutdown, tx };
            tokio::task::spawn_blocking(move || serial::read(settings, &stop))
        }
        SourceConfig::Hid {
            vendor_id,
            product_id,
        } => {
            let stop = Stop { shutdown, tx };
            tokio::task::spawn_blocking(move || hid::read(vendor_id, product_id, &stop))
        }
        SourceConfig::Evdev { path, grab } => {
            let stop = Stop { shutdown, tx };
            tokio::task::spawn_blocking(move || evdev::read(path, grab, &stop))
        }
        SourceConfig::Tcp { address } => tokio::spawn(stream::connect(address, tx, shutdown)),
        SourceConfig::Stdin => tokio::spawn(stream::stdin(tx, shutdown)),
        // Listeners frame each connection themselves (see `run`).
        SourceConfig::TcpListen { .. } => tokio::spawn(async {}),
    }
}

/// Frames one stream: reader inputs in, scans and states out.
pub(crate) async fn frame_loop(
    label: String,
    framing: FramingConfig,
    mut inputs: mpsc::Receiver<Input>,
    scans: &mpsc::Sender<Scan>,
    state: &watch::Sender<ScannerState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut framer = Framer::new(framing);
    let mut framed = Vec::new();
    loop {
        let deadline = framer.deadline().map(Instant::from_std);
        // Biased: inputs already queued are framed before a pause or shutdown is considered,
        // so nothing a scanner sent is lost or split by a busy loop.
        let stop = tokio::select! {
            biased;
            input = inputs.recv() => match input {
                Some(input) => apply(input, &mut framer, &mut framed, state),
                None => {
                    framer.end_of_stream(&mut framed);
                    true
                }
            },
            () = sleep_until(deadline), if deadline.is_some() => {
                framer.poll(std::time::Instant::now(), &mut framed);
                false
            }
            _ = shutdown.changed() => {
                // Frame what the reader already delivered, then flush what is pending.
                while let Ok(input) = inputs.try_recv() {
                    apply(input, &mut framer, &mut framed, state);
                }
                framer.end_of_stream(&mut framed);
                true
            }
        };
        for frame in framed.drain(..) {
            let scan = to_scan(&label, framer.config(), frame);
            if scans.send(scan).await.is_err() {
                return;
            }
        }
        if stop || *shutdown.borrow() {
            return;
        }
    }
}

/// Applies one reader input; true when the stream has ended for good.
fn apply(
    input: Input,
    framer: &mut Framer,
    framed: &mut Vec<Framed>,
    state: &watch::Sender<ScannerState>,
) -> bool {
    match input {
        Input::Bytes(bytes, at) => framer.push(&bytes, at, framed),
        // Whole reads from a device are held to the same maximum as framed ones.
        Input::Frame(bytes) if bytes.len() > framer.config().max_frame_len => {
            framed.push(Framed::Oversize { len: bytes.len() });
        }
        Input::Frame(bytes) => framed.push(Framed::Frame {
            bytes,
            end: FrameEnd::Suffix,
        }),
        Input::Connected(detail) => {
            state.send_replace(ScannerState::Connected { detail });
        }
        Input::Disconnected(reason) => {
            framer.end_of_stream(framed);
            state.send_replace(ScannerState::Disconnected { reason });
        }
        Input::Failed(reason) => {
            state.send_replace(ScannerState::Error { reason });
        }
        Input::Ended => {
            framer.end_of_stream(framed);
            return true;
        }
    }
    false
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(deadline).await;
    }
}

fn to_scan(label: &str, framing: &FramingConfig, framed: Framed) -> Scan {
    let (raw, problem) = match framed {
        Framed::Frame {
            bytes,
            end: FrameEnd::Suffix,
        } => (bytes, None),
        // Without a configured suffix a pause is how every read ends.
        Framed::Frame {
            bytes,
            end: FrameEnd::Pause,
        } if framing.suffix.is_none() => (bytes, None),
        Framed::Frame {
            bytes,
            end: FrameEnd::StreamEnd,
        } if framing.suffix.is_none() => (bytes, None),
        Framed::Frame {
            bytes,
            end: FrameEnd::Pause,
        } => (bytes, Some(FrameProblem::NoSuffix)),
        Framed::Frame {
            bytes,
            end: FrameEnd::StreamEnd,
        } => (bytes, Some(FrameProblem::CutShort)),
        Framed::Oversize { len } => (
            Vec::new(),
            Some(FrameProblem::Oversize {
                len,
                max: framing.max_frame_len,
            }),
        ),
    };
    Scan {
        at: jiff::Timestamp::now(),
        source: label.to_owned(),
        raw,
        problem,
    }
}

/// When a blocking reader must stop: shutdown was asked for, or nobody reads its inputs any
/// more (the framing loop ended), so a thread never outlives its source holding a port open.
#[derive(Debug, Clone)]
pub(crate) struct Stop {
    pub shutdown: watch::Receiver<bool>,
    pub tx: mpsc::Sender<Input>,
}

impl Stop {
    pub fn now(&self) -> bool {
        *self.shutdown.borrow() || self.tx.is_closed()
    }

    /// Sleeps `delay` unless it is time to stop first; true when stopping.
    pub fn pause(&self, delay: Duration) -> bool {
        let step = Duration::from_millis(50);
        let mut left = delay;
        while !left.is_zero() {
            if self.now() {
                return true;
            }
            let nap = left.min(step);
            std::thread::sleep(nap);
            left -= nap;
        }
        self.now()
    }

    /// Sends an input from a blocking thread; false when nobody listens any more.
    pub fn send(&self, input: Input) -> bool {
        self.tx.blocking_send(input).is_ok()
    }
}

/// The open / read / reopen cycle every blocking device shares: `open` gives a device and a
/// description, `read` forwards its bytes until it fails (`Some(reason)`) or it is time to stop
/// (`None`). Repeated identical open failures are reported once.
pub(crate) fn run_blocking<D>(
    stop: &Stop,
    mut open: impl FnMut() -> Result<(D, String), String>,
    mut read: impl FnMut(&mut D, &Stop) -> Option<String>,
) {
    let mut backoff = Backoff::new();
    let mut last_failure = None;
    while !stop.now() {
        match open() {
            Ok((mut device, detail)) => {
                last_failure = None;
                let up_since = std::time::Instant::now();
                if !stop.send(Input::Connected(detail)) {
                    return;
                }
                let Some(reason) = read(&mut device, stop) else {
                    return;
                };
                drop(device);
                backoff.link_ended(up_since.elapsed());
                if !stop.send(Input::Disconnected(reason)) {
                    return;
                }
            }
            Err(reason) => {
                if last_failure.as_ref() != Some(&reason) {
                    if !stop.send(Input::Failed(reason.clone())) {
                        return;
                    }
                    last_failure = Some(reason);
                }
            }
        }
        if stop.pause(backoff.next_delay()) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut backoff = Backoff::new();
        let delays: Vec<u64> = (0..8)
            .map(|_| backoff.next_delay().as_millis() as u64)
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(100));
    }

    #[test]
    fn frame_problems_make_error_scans() {
        let with_suffix = FramingConfig::default();
        let cut = Framed::Frame {
            bytes: b"=A99".to_vec(),
            end: FrameEnd::StreamEnd,
        };
        let scan = to_scan("test:", &with_suffix, cut);
        assert_eq!(scan.parse().unwrap_err().kind(), "cut_short");
        let paused = Framed::Frame {
            bytes: b"=A99992212345600".to_vec(),
            end: FrameEnd::Pause,
        };
        assert_eq!(
            to_scan("test:", &with_suffix, paused.clone())
                .parse()
                .unwrap_err()
                .kind(),
            "no_suffix"
        );
        let without = FramingConfig {
            suffix: None,
            ..with_suffix
        };
        assert!(to_scan("test:", &without, paused).parse().is_ok());
        let big = to_scan("test:", &with_suffix, Framed::Oversize { len: 5000 });
        assert_eq!(
            big.parse().unwrap_err().to_string(),
            "read of 5000 bytes is longer than the maximum of 1024: dropped"
        );
    }
}

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
mod serial;
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
    Bytes(Vec<u8>),
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

    pub fn new() -> Backoff {
        Backoff(Backoff::FIRST)
    }

    pub fn reset(&mut self) {
        self.0 = Backoff::FIRST;
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
            tokio::task::spawn_blocking(move || serial::read(settings, tx, shutdown))
        }
        SourceConfig::Hid {
            vendor_id,
            product_id,
        } => tokio::task::spawn_blocking(move || hid::read(vendor_id, product_id, tx, shutdown)),
        SourceConfig::Evdev { path, grab } => {
            tokio::task::spawn_blocking(move || evdev::read(path, grab, tx, shutdown))
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
        let stop = tokio::select! {
            input = inputs.recv() => match input {
                Some(Input::Bytes(bytes)) => {
                    framer.push(&bytes, std::time::Instant::now(), &mut framed);
                    false
                }
                Some(Input::Frame(bytes)) => {
                    framed.push(Framed::Frame { bytes, end: FrameEnd::Suffix });
                    false
                }
                Some(Input::Connected(detail)) => {
                    state.send_replace(ScannerState::Connected { detail });
                    false
                }
                Some(Input::Disconnected(reason)) => {
                    framer.end_of_stream(&mut framed);
                    state.send_replace(ScannerState::Disconnected { reason });
                    false
                }
                Some(Input::Failed(reason)) => {
                    state.send_replace(ScannerState::Error { reason });
                    false
                }
                Some(Input::Ended) | None => {
                    framer.end_of_stream(&mut framed);
                    true
                }
            },
            () = sleep_until(deadline), if deadline.is_some() => {
                framer.poll(std::time::Instant::now(), &mut framed);
                false
            }
            _ = shutdown.changed() => {
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

/// Sleeps `delay` unless shutdown comes first; true when shutting down. For blocking readers.
pub(crate) fn pause_or_stop(delay: Duration, shutdown: &watch::Receiver<bool>) -> bool {
    let step = Duration::from_millis(50);
    let mut left = delay;
    while !left.is_zero() {
        if *shutdown.borrow() {
            return true;
        }
        let nap = left.min(step);
        std::thread::sleep(nap);
        left -= nap;
    }
    *shutdown.borrow()
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

//! A scanner source running on the test's runtime, with deadlines on every wait so a broken
//! reader fails the test instead of hanging it.

use std::time::Duration;

use coi_agent::scanner::source::ScannerSpec;
use coi_agent::scanner::{self, Scan, ScannerState};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub const WAIT: Duration = Duration::from_secs(10);

pub struct RunningScanner {
    pub scans: mpsc::Receiver<Scan>,
    pub state: watch::Receiver<ScannerState>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningScanner {
    pub fn start(uri: &str) -> RunningScanner {
        let spec = ScannerSpec::parse(uri).expect("a valid source URI");
        let (scans_tx, scans) = mpsc::channel(4096);
        let (state_tx, state) = watch::channel(ScannerState::Connecting);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let task = tokio::spawn(scanner::run(spec, scans_tx, state_tx, shutdown_rx));
        RunningScanner {
            scans,
            state,
            shutdown,
            task,
        }
    }

    pub async fn next_scan(&mut self) -> Scan {
        tokio::time::timeout(WAIT, self.scans.recv())
            .await
            .expect("a scan within the deadline")
            .expect("the scanner is still running")
    }

    /// The raw bytes of the next `n` scans.
    pub async fn next_raw(&mut self, n: usize) -> Vec<Vec<u8>> {
        let mut raw = Vec::with_capacity(n);
        for _ in 0..n {
            raw.push(self.next_scan().await.raw);
        }
        raw
    }

    /// Asserts no scan arrives for `quiet`.
    pub async fn assert_no_scan(&mut self, quiet: Duration) {
        if let Ok(Some(scan)) = tokio::time::timeout(quiet, self.scans.recv()).await {
            panic!("unexpected scan {:?}", String::from_utf8_lossy(&scan.raw));
        }
    }

    pub async fn wait_state(
        &mut self,
        what: &str,
        pred: impl Fn(&ScannerState) -> bool,
    ) -> ScannerState {
        let res = tokio::time::timeout(WAIT, self.state.wait_for(|s| pred(s)))
            .await
            .map(|r| r.map(|state| state.clone()));
        match res {
            Ok(Ok(state)) => state,
            _ => panic!(
                "scanner never became {what}; last state: {}",
                *self.state.borrow()
            ),
        }
    }

    pub async fn wait_connected(&mut self) -> ScannerState {
        self.wait_state("connected", |s| matches!(s, ScannerState::Connected { .. }))
            .await
    }

    pub async fn stop(self) {
        self.shutdown.send_replace(true);
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("stops within the deadline")
            .expect("no panic");
    }
}

//! Serial scanners over real pseudo-terminals (issue #5): every read written to the pty comes
//! out as exactly one Scan with the right bytes, in order, under each framing option; unplug
//! and replug recover without a restart.

#![allow(clippy::unwrap_used)] // test helpers fail loudly; that is their job

mod support;

use std::time::Duration;

use coi_agent::scanner::ScannerState;
use support::pty::Pty;
use support::scanner::RunningScanner;

const READS: [&[u8]; 5] = [
    b"=A99992212345600",
    b"]C0=<S1295100",
    b"]C4=A99992212345600=%Ma00",
    b"]d1=+02000=A99992212345600&/CHA999925000042",
    b"&/CHA999925000042",
];

fn dir() -> tempdir::TempDir {
    tempdir::TempDir::new()
}

mod tempdir {
    /// A directory removed when dropped (no dependency needed for this).
    pub struct TempDir(pub std::path::PathBuf);

    impl TempDir {
        pub fn new() -> TempDir {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "coi-agent-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

async fn connected(link: &std::path::Path, params: &str) -> (Pty, RunningScanner) {
    let pty = Pty::open_at(link);
    let mut scanner = RunningScanner::start(&format!("serial://{}?{params}", link.display()));
    scanner.wait_connected().await;
    (pty, scanner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_suffix_gives_one_scan_per_read_in_order() {
    for (name, suffix) in [
        ("cr", &b"\r"[..]),
        ("lf", b"\n"),
        ("crlf", b"\r\n"),
        ("tab", b"\t"),
    ] {
        let tmp = dir();
        let (mut pty, mut scanner) =
            connected(&tmp.0.join("ttyScanner"), &format!("suffix={name}")).await;
        let mut data = Vec::new();
        for read in READS {
            data.extend_from_slice(read);
            data.extend_from_slice(suffix);
        }
        // All reads in one write.
        pty.write(&data);
        let got = scanner.next_raw(READS.len()).await;
        assert_eq!(got, READS.map(|r| r.to_vec()), "suffix {name}");
        // Then the same reads one byte per write.
        for byte in &data {
            pty.write(std::slice::from_ref(byte));
        }
        let got = scanner.next_raw(READS.len()).await;
        assert_eq!(
            got,
            READS.map(|r| r.to_vec()),
            "suffix {name}, byte by byte"
        );
        scanner.assert_no_scan(Duration::from_millis(400)).await;
        scanner.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_split_across_writes_with_control_bytes_stay_exact() {
    let tmp = dir();
    let (mut pty, mut scanner) = connected(&tmp.0.join("ttyScanner"), "suffix=crlf").await;
    let read = b"]d1=+02000\x1d=A99992212345600\x04&/CHA999925000042";
    let mut data = read.to_vec();
    data.extend_from_slice(b"\r\n");
    for chunk in data.chunks(7) {
        pty.write(chunk);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let scan = scanner.next_scan().await;
    assert_eq!(scan.raw, read);
    assert!(scan.problem.is_none());
    // The GS and EOT bytes are data, so this is not valid ISBT 128 - and says so.
    assert!(scan.parse().is_err());
    scanner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noise_and_oversize_frames_are_error_scans_and_reading_goes_on() {
    let tmp = dir();
    let (mut pty, mut scanner) = connected(&tmp.0.join("ttyScanner"), "suffix=cr&max=64").await;
    pty.write(b"\x00\xff\xfe garbage \x1b[2J\r");
    pty.write(&[b'X'; 300]);
    pty.write(b"\r=A99992212345600\r");
    let noise = scanner.next_scan().await;
    assert_eq!(noise.raw, b"\x00\xff\xfe garbage \x1b[2J");
    assert_eq!(noise.parse().unwrap_err().kind(), "not_printable");
    let oversize = scanner.next_scan().await;
    assert_eq!(
        oversize.parse().unwrap_err().to_string(),
        "read of 300 bytes is longer than the maximum of 64: dropped"
    );
    let good = scanner.next_scan().await;
    assert_eq!(good.raw, b"=A99992212345600");
    assert!(good.parse().is_ok());
    scanner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_without_its_suffix_is_flagged_incomplete() {
    let tmp = dir();
    let (mut pty, mut scanner) =
        connected(&tmp.0.join("ttyScanner"), "suffix=cr&timeout_ms=100").await;
    pty.write(b"=A9999221234");
    let scan = scanner.next_scan().await;
    assert_eq!(scan.raw, b"=A9999221234");
    assert_eq!(scan.parse().unwrap_err().kind(), "no_suffix");
    scanner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_suffix_a_pause_ends_each_read() {
    let tmp = dir();
    let (mut pty, mut scanner) =
        connected(&tmp.0.join("ttyScanner"), "suffix=none&timeout_ms=80").await;
    for read in READS {
        pty.write(read);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let got = scanner.next_raw(READS.len()).await;
    assert_eq!(got, READS.map(|r| r.to_vec()));
    scanner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unplug_and_replug_at_the_same_path_recovers() {
    let tmp = dir();
    let link = tmp.0.join("ttyACM0");
    // A long pause limit, so the wait before unplugging does not end the half read first.
    let (mut pty, mut scanner) = connected(&link, "suffix=cr&timeout_ms=5000").await;
    pty.write(b"=A99992212345600\r");
    assert_eq!(scanner.next_scan().await.raw, b"=A99992212345600");

    // Unplug in the middle of a read: the half read is reported as cut short, not dropped.
    pty.write(b"&/CHA9999");
    // Let the reader take the bytes before the hang-up (closing the master discards unread
    // input).
    tokio::time::sleep(Duration::from_millis(300)).await;
    pty.unplug();
    let cut = scanner.next_scan().await;
    assert_eq!(
        (cut.raw.as_slice(), cut.parse().unwrap_err().kind()),
        (&b"&/CHA9999"[..], "cut_short")
    );
    // (Disconnected may already have given way to Error when the test looks.)
    scanner
        .wait_state("disconnected", |s| {
            matches!(
                s,
                ScannerState::Disconnected { .. } | ScannerState::Error { .. }
            )
        })
        .await;
    // While the device is gone, reopening fails and the state says so.
    scanner
        .wait_state("in error", |s| matches!(s, ScannerState::Error { .. }))
        .await;

    // Plug back in at the same path: reading resumes without a restart.
    let mut pty = Pty::open_at(&link);
    scanner.wait_connected().await;
    pty.write(b"&/CHA999925000042\r");
    assert_eq!(scanner.next_scan().await.raw, b"&/CHA999925000042");
    scanner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_device_is_an_error_state_not_a_crash() {
    let tmp = dir();
    let mut scanner =
        RunningScanner::start(&format!("serial://{}", tmp.0.join("nothing").display()));
    let state = scanner
        .wait_state("in error", |s| matches!(s, ScannerState::Error { .. }))
        .await;
    assert!(state.to_string().contains("open "), "{state}");
    scanner.stop().await;
}

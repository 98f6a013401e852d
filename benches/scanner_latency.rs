//! Scanner latency and throughput over a real pseudo-terminal (issue #5): a frame written to
//! the pty master until its parsed Scan is delivered by the serial source, at 100 scans/s
//! (p50, p99), and the highest sustained rate with no loss. A load script, not a criterion
//! benchmark: latency at a paced rate is a distribution, not a loop time. Results and method:
//! BENCHMARKS.md. Run with `cargo bench --bench scanner_latency`.

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a measurement script: fail loudly, print

use std::io::Write;
use std::time::{Duration, Instant};

use coi_agent::scanner::source::ScannerSpec;
use coi_agent::scanner::{self, Scan, ScannerState};
use tokio::sync::{mpsc, watch};

const READ: &[u8] = b"]d1=+02000=A99992212345600&/CHA999925000042";

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("coi-agent-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("ttyBench");
    let (mut master, slave) = coi_agent::sys::openpty().unwrap();
    std::os::unix::fs::symlink(&slave, &link).unwrap();

    let spec = ScannerSpec::parse(&format!("serial://{}?suffix=cr", link.display())).unwrap();
    let (scans_tx, mut scans) = mpsc::channel::<Scan>(65_536);
    let (state_tx, mut state) = watch::channel(ScannerState::Connecting);
    let (shutdown_tx, shutdown) = watch::channel(false);
    runtime.spawn(scanner::run(spec, scans_tx, state_tx, shutdown));
    runtime
        .block_on(state.wait_for(|s| matches!(s, ScannerState::Connected { .. })))
        .unwrap();

    let mut frame = READ.to_vec();
    frame.push(b'\r');

    // Warm-up, then latency at 100 scans/s.
    for _ in 0..50 {
        master.write_all(&frame).unwrap();
        runtime.block_on(scans.recv()).unwrap();
    }
    let n = 1000;
    let mut latencies = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let due = start + Duration::from_millis(10 * i as u64);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let written = Instant::now();
        master.write_all(&frame).unwrap();
        let scan = runtime.block_on(scans.recv()).unwrap();
        assert!(scan.parse().is_ok(), "a valid read must parse");
        latencies.push(written.elapsed());
        assert_eq!(scan.raw, READ);
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "latency at 100 scans/s over {n} scans: p50 {:?}, p99 {:?}, max {:?}",
        pct(0.50),
        pct(0.99),
        latencies[latencies.len() - 1]
    );

    // Throughput: paced writes at rising rates; every frame must arrive, exact and in order.
    let mut best = 0.0;
    for rate in [
        1_000u64, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000,
    ] {
        let count = (rate * 2).min(100_000) as usize;
        let mut payloads = Vec::with_capacity(count);
        let writer_frames: Vec<Vec<u8>> = (0..count)
            .map(|i| {
                let read = format!("=A9999{:02}{:06}00", i % 100, i % 1_000_000).into_bytes();
                payloads.push(read.clone());
                let mut f = read;
                f.push(b'\r');
                f
            })
            .collect();
        let mut writer = master.try_clone().unwrap();
        let interval = Duration::from_nanos(1_000_000_000 / rate);
        let t0 = Instant::now();
        let handle = std::thread::spawn(move || {
            for (i, f) in writer_frames.iter().enumerate() {
                let due = t0 + interval * i as u32;
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                writer.write_all(f).unwrap();
            }
        });
        let mut received = 0;
        let mut in_order = true;
        let deadline = Instant::now() + Duration::from_secs(30);
        while received < count && Instant::now() < deadline {
            match runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(2), scans.recv()).await
            }) {
                Ok(Some(scan)) => {
                    in_order &= scan.raw == payloads[received] && scan.problem.is_none();
                    received += 1;
                }
                _ => break,
            }
        }
        let elapsed = t0.elapsed();
        handle.join().unwrap();
        let achieved = received as f64 / elapsed.as_secs_f64();
        let lossless = received == count && in_order;
        println!(
            "target {rate} scans/s: {received}/{count} delivered {}, achieved {:.0} scans/s",
            if lossless {
                "exact and in order"
            } else {
                "WITH LOSS OR DISORDER"
            },
            achieved
        );
        if !lossless || achieved < rate as f64 * 0.95 {
            break;
        }
        best = achieved;
    }
    println!("highest sustained rate with no loss: {best:.0} scans/s");
    shutdown_tx.send_replace(true);
    let _ = std::fs::remove_dir_all(&dir);
}

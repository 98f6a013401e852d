//! Print latency (issue #4): from submitting a job to the last byte arriving at the printer,
//! through coi-agent (preflight status query included) and through a CUPS raw queue, measured in
//! the same run against the same emulated printer on loopback TCP. Target: p50 <= 0.8 ms, at
//! least 20x faster than CUPS. A load script (harness = false); results and method in
//! BENCHMARKS.md. Run with `cargo bench --bench print_latency` (CUPS is measured when `lp` and
//! a running cupsd are available; `scripts/cups-bench-setup.sh` prepares them).

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a measurement script: fail loudly, print

use std::time::{Duration, Instant};

use coi_agent::printer::emulator::Emulator;
use coi_agent::printer::job::{Job, JobPhase, Printer, Timing};
use coi_agent::printer::transport::PrinterUri;

const LABEL: &[u8] = b"^XA^CI28^PW812^LL812^FO40,40^BY3^BCN,120,N,N,N,N^FD>;=A99992512345601^FS^FO40,200^A0N,48,48^FH^FDA9999 25 123456^FS^FO40,300^A0N,60,60^FDBAG 1 OF 2^FS^XZ";

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let port: u16 = std::env::var("COI_AGENT_BENCH_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(19_100);
    let emulator = runtime
        .block_on(Emulator::start(([127, 0, 0, 1], port).into()))
        .unwrap();
    emulator.set_print_delay(Duration::from_millis(1));
    let uri = PrinterUri::Tcp(emulator.address().to_string());
    let mut printer = Printer::new(uri, Timing::default());

    // Warm-up, then timed jobs: submit until the format's last byte is in the emulator.
    let n = 500;
    let mut latencies = Vec::with_capacity(n);
    for i in 0..(n + 50) {
        let before = emulator.received_at().len();
        let job = Job {
            id: format!("bench-{i}"),
            zpl: LABEL.to_vec(),
            expires_at: None,
        };
        let start = Instant::now();
        let outcome = runtime.block_on(printer.submit(&job));
        assert_eq!(outcome.phase, JobPhase::Confirmed, "{outcome:?}");
        let arrived = emulator.received_at()[before];
        if i >= 50 {
            latencies.push(arrived.duration_since(start));
        }
    }
    report(
        "coi-agent (preflight ~HS + ~HQES, then the job)",
        &mut latencies,
    );

    // The same job through a CUPS raw queue to the same printer.
    if std::process::Command::new("lpstat")
        .arg("-r")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("is running"))
    {
        let queue = "coi-bench";
        let added = std::process::Command::new("lpadmin")
            .args([
                "-p",
                queue,
                "-E",
                "-v",
                &format!("socket://{}", emulator.address()),
                "-m",
                "raw",
            ])
            .output()
            .unwrap();
        assert!(
            added.status.success(),
            "lpadmin: {}",
            String::from_utf8_lossy(&added.stderr)
        );
        let file = std::env::temp_dir().join("coi-agent-bench-label.zpl");
        std::fs::write(&file, LABEL).unwrap();
        let jobs = 100;
        let mut cups = Vec::with_capacity(jobs);
        for i in 0..(jobs + 5) {
            let before = emulator.received_at().len();
            let start = Instant::now();
            let lp = std::process::Command::new("lp")
                .args(["-d", queue, "-o", "raw"])
                .arg(&file)
                .output()
                .unwrap();
            assert!(
                lp.status.success(),
                "lp: {}",
                String::from_utf8_lossy(&lp.stderr)
            );
            let deadline = Instant::now() + Duration::from_secs(30);
            while emulator.received_at().len() <= before && Instant::now() < deadline {
                std::thread::sleep(Duration::from_micros(200));
            }
            let arrived = *emulator
                .received_at()
                .get(before)
                .expect("CUPS delivered the job within 30 s");
            if i >= 5 {
                cups.push(arrived.duration_since(start));
            }
        }
        report(
            "CUPS 2.4 raw queue (lp to the last byte at the printer)",
            &mut cups,
        );
        let _ = std::process::Command::new("lpadmin")
            .args(["-x", queue])
            .output();
        let _ = std::fs::remove_file(&file);
        latencies.sort();
        println!(
            "CUPS p50 / coi-agent p50 = {:.1}x",
            cups[cups.len() / 2].as_secs_f64() / latencies[latencies.len() / 2].as_secs_f64()
        );
    } else {
        println!("CUPS: not measured (no running cupsd; see scripts/cups-bench-setup.sh)");
    }
}

fn report(what: &str, latencies: &mut [Duration]) {
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "{what}: {} jobs, p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        pct(0.5),
        pct(0.99),
        latencies[latencies.len() - 1]
    );
}

//! Issue #12's browser journeys, in Debian's chromium driven by playwright-core
//! (tests/browser/journeys.mjs): two workstations run in this process — a collection site with
//! the Zebra emulator and a pty verify scanner, a cell lab with a pty receipt scanner — and the
//! script asks for each scan or printer fault as it needs it. A nurse finds an order by the
//! patient's name, prints bag 1 and sees it verified by the scanner; the printer runs out of
//! labels and the print station says so within 2 s; a tech sees MATCH, then MISMATCH with the
//! reason, each within 1 s of the scan. Screenshots go to target/ui-screenshots, or to
//! docs/ui with UPDATE_SCREENSHOTS=1.
//!
//! Needs `chromium` and `npm ci --prefix tests/browser` (bash .ci/run installs both and sets
//! COI_REQUIRE_BROWSER=1, which turns a missing browser into a failure).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use coi_agent::printer::emulator::{EmulatedFault, Emulator};
use support::pty::Pty;
use support::station::Station;

const DIR: &str = env!("CARGO_MANIFEST_DIR");

/// What the journeys need, or why they cannot run here.
fn prerequisites() -> Result<PathBuf, String> {
    let chromium = PathBuf::from(
        std::env::var("COI_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned()),
    );
    if !chromium.exists() {
        return Err(format!("no browser at {}", chromium.display()));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Err("no node".to_owned());
    }
    if !Path::new(DIR)
        .join("tests/browser/node_modules/playwright-core")
        .exists()
    {
        return Err("no tests/browser/node_modules (npm ci --prefix tests/browser)".to_owned());
    }
    Ok(chromium)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nurse_and_a_tech_do_their_jobs_in_chromium() {
    let chromium = match prerequisites() {
        Ok(chromium) => chromium,
        Err(why) if std::env::var_os("COI_REQUIRE_BROWSER").is_some() => {
            panic!("the browser journeys cannot run: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED the browser journeys: {why} (bash .ci/run installs what they need)");
            return;
        }
    };
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    emulator.set_print_delay(Duration::from_millis(50));
    let scanners = std::env::temp_dir().join(format!("coi-browser-{}", std::process::id()));
    std::fs::create_dir_all(&scanners).unwrap();
    let mut verify_scanner = Pty::open_at(&scanners.join("verify"));
    let mut receipt_scanner = Pty::open_at(&scanners.join("receipt"));
    let serial = |link: &str, step: &str| {
        format!(
            "[[scanners]]\nname = \"{link}\"\nsource = \"serial://{}?baud=9600&suffix=cr\"\nstep = \"{step}\"\n",
            scanners.join(link).display()
        )
    };
    let printer = format!(
        "uri = \"tcp://{}\"\nprofile = \"Zebra ZT411 300 dpi\"",
        emulator.address()
    );
    let collection = Station::start_with(
        "browser-collection",
        "site-apheresis-1",
        Some(&printer),
        &serial("verify", "verify"),
        None,
    )
    .await;
    // Half a read waits 2 s here, so the journey sees it lapse.
    let lab_extra = format!(
        "{}[scanning]\npair_window_secs = 2\n",
        serial("receipt", "receipt")
    );
    let lab = Station::start("browser-lab", "site-lab-1", &lab_extra, None).await;

    let shots = if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        Path::new(DIR).join("docs/ui")
    } else {
        Path::new(DIR).join("target/ui-screenshots")
    };
    let mut script = Command::new("node")
        .arg(Path::new(DIR).join("tests/browser/journeys.mjs"))
        .current_dir(Path::new(DIR).join("tests/browser"))
        .env("NURSE_BASE", collection.base())
        .env("TECH_BASE", lab.base())
        .env("CHROMIUM", &chromium)
        .env("SHOTS", &shots)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node starts");
    let mut to_script = script.stdin.take().unwrap();
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    let stdout = script.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });

    let mut timings = Vec::new();
    let mut outcome = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while outcome.is_none() {
        let line = tokio::time::timeout_at(deadline, lines.recv())
            .await
            .expect("the journeys finish within 120 s")
            .unwrap_or_else(|| "FAIL the script ended without a word".to_owned());
        eprintln!("journeys: {line}");
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("STEP"), Some(step)) => {
                match step {
                    // Bag 1's Data Matrix (DIN with flags 01, and the COI identifier).
                    "scan-verify" => {
                        verify_scanner.write(b"=+02000=A99992512345601&/CHA999925000042\r");
                    }
                    "media-out" => emulator.set_fault(EmulatedFault::MediaOut, true),
                    "media-back" => emulator.set_fault(EmulatedFault::MediaOut, false),
                    "scan-receipt-match" => {
                        receipt_scanner.write(b"=+02000=A99992512345701&/CHA999925000043\r");
                    }
                    // The DIN barcode alone: half a read.
                    "scan-receipt-half" => receipt_scanner.write(b"=A99992512345701\r"),
                    // Another order's DIN with this order's COI: two identifiers that disagree.
                    "scan-receipt-wrong" => {
                        receipt_scanner.write(b"=+02000=A99992512345601&/CHA999925000043\r");
                    }
                    other => panic!("unknown step {other}"),
                }
                writeln!(to_script, "OK").unwrap();
            }
            (Some("TIMING"), Some(name)) => {
                timings.push(format!("{name} {} ms", words.next().unwrap_or("?")));
            }
            (Some("DONE"), _) => outcome = Some(Ok(())),
            (Some("FAIL"), _) => outcome = Some(Err(line.clone())),
            _ => {}
        }
    }
    let status = script.wait().unwrap();
    eprintln!("browser journeys: {}", timings.join(", "));
    assert_eq!(outcome, Some(Ok(())), "{timings:?}");
    assert!(status.success());
    assert_eq!(emulator.printed().len(), 1, "bag 1 printed once");
    collection.stop().await;
    lab.stop().await;
    let _ = std::fs::remove_dir_all(&scanners);
}

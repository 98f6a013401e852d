//! `coi-agent label print`: the chain-of-identity print flow run as the binary a site runs,
//! against the Zebra emulator on TCP and a real SQLite journal. A bag gets one label unless a
//! reprint is asked for; the job, the printer's verdict, the audit entry and the custody event
//! are recorded; anything refused is refused before a byte reaches the printer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use coi_agent::journal::Journal;
use coi_agent::printer::emulator::{EmulatedFault, Emulator};
use sha2::Digest as _;

mod support;
use support::tempdb::TempDb;

const ORDERS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/example-orders.json"
);

/// A workstation: its configuration (site, journal, one printer on the emulator), the orders
/// synced into its journal.
struct Station {
    db: TempDb,
    config: String,
    /// The station's orders file (synced into its journal).
    orders: String,
    emulator: Emulator,
    _runtime: tokio::runtime::Runtime,
}

impl Station {
    /// A station whose orders are the example orders, their expiry moved to 2099 (the examples
    /// expired in 2025, and no label is printed for an expired order).
    fn new(name: &str, site: &str, profile: &str) -> Station {
        let mut orders: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(ORDERS).unwrap()).unwrap();
        for order in orders["orders"].as_array_mut().unwrap() {
            order["expires_at"] = "2099-12-31T23:59:00-05:00".into();
        }
        Station::with_orders(name, site, profile, &orders)
    }

    fn with_orders(name: &str, site: &str, profile: &str, orders: &serde_json::Value) -> Station {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let emulator = runtime
            .block_on(Emulator::start("127.0.0.1:0".parse().unwrap()))
            .unwrap();
        emulator.set_print_delay(std::time::Duration::from_millis(5));
        let db = TempDb::new(name);
        let dir = db.0.parent().unwrap().to_path_buf();
        let config = dir.join("coi-agent.toml");
        std::fs::write(dir.join("orders.json"), orders.to_string()).unwrap();
        std::fs::write(
            &config,
            format!(
                r#"
[site]
id = "{site}"
workstation = "aph-ws-03"
[journal]
path = "journal.sqlite"
[orders]
source = "file"
file = "orders.json"
[[printers]]
name = "bag-labels"
uri = "tcp://{}"
profile = "{profile}"
"#,
                emulator.address()
            ),
        )
        .unwrap();
        let station = Station {
            db,
            config: config.display().to_string(),
            orders: dir.join("orders.json").display().to_string(),
            emulator,
            _runtime: runtime,
        };
        let output = station.run(&["orders", "sync"]);
        assert!(output.status.success(), "{}", stderr(&output));
        station
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_coi-agent"))
            .args(args)
            .args(["--config", &self.config])
            .output()
            .expect("run coi-agent")
    }

    fn print(&self, coi: &str, bag: &str, extra: &[&str]) -> Output {
        let mut args = vec![
            "label",
            "print",
            "--coi",
            coi,
            "--bag",
            bag,
            "--collected-at",
            "2025-06-02T12:14:00Z",
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    fn journal(&self) -> Journal {
        Journal::open_read_only(&self.db.0).unwrap()
    }

    /// Every print job as (state, fault, zpl_sha256, template, template_version, operator).
    fn jobs(&self) -> Vec<[Option<String>; 6]> {
        let journal = self.journal();
        let mut stmt = journal
            .connection()
            .prepare("SELECT state, fault, zpl_sha256, template, template_version, operator FROM print_jobs ORDER BY id")
            .unwrap();
        stmt.query_map([], |row| {
            Ok([
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
            ])
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    /// The outbox's events, oldest first.
    fn events(&self) -> Vec<serde_json::Value> {
        let journal = self.journal();
        let mut stmt = journal
            .connection()
            .prepare("SELECT payload FROM outbox ORDER BY id")
            .unwrap();
        stmt.query_map([], |row| row.get::<_, String>(0))
            .unwrap()
            .map(|text| serde_json::from_str(&text.unwrap()).unwrap())
            .collect()
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn a_bag_label_is_printed_recorded_and_reported_once() {
    let station = Station::new("label-print", "site-apheresis-1", "Zebra ZT411 300 dpi");
    let coi = "CHA999925000042";

    let output = station.print(coi, "1", &["--operator", "nurse-7", "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let line = json(&output);
    assert_eq!(line["state"], "confirmed");
    assert_eq!(line["event"], "label_printed");
    assert_eq!(line["dpi"], 300);
    let received = station.emulator.received();
    assert_eq!(received.len(), 1);
    assert!(String::from_utf8_lossy(&received[0]).contains("^PW1200^LL1200"));

    // The job: its template version, operator and the hash of exactly the label proven, which
    // `label render` makes again from the same order, bag, time and resolution.
    let render = Command::new(env!("CARGO_BIN_EXE_coi-agent"))
        .args([
            "label",
            "render",
            "--template",
            "apheresis-bag",
            "--order",
            &station.orders,
        ])
        .args(["--coi", coi, "--bag", "1", "--dpi", "300"])
        .args(["--collected-at", "2025-06-02T12:14:00Z"])
        .output()
        .unwrap();
    assert!(
        render.stdout.starts_with(&received[0]),
        "the printer got the proven label"
    );
    let jobs = station.jobs();
    let sent = sha2::Sha256::digest(&render.stdout);
    let hex: String = sent.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        jobs,
        [[
            Some("confirmed".into()),
            None,
            Some(hex),
            Some("apheresis-bag".into()),
            Some("2".into()),
            Some("nurse-7".into())
        ]]
    );
    let job_id = line["job_id"].as_str().unwrap();
    let states: Vec<String> = station
        .journal()
        .job_states(job_id)
        .unwrap()
        .into_iter()
        .map(|s| s.state)
        .collect();
    assert_eq!(states, ["queued", "confirmed"]);

    // The custody event, as CONTRACTS.md shapes it, without patient data.
    let events = station.events();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event["type"], "label_printed");
    assert_eq!(event["coi"], coi);
    assert_eq!(event["din"], "A999925123456");
    assert_eq!(
        (event["bag"].as_u64(), event["bags"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(event["site_id"], "site-apheresis-1");
    assert_eq!(event["workstation"], "aph-ws-03");
    assert_eq!(event["operator"], "nurse-7");
    assert_eq!(event["local_zone"], "America/New_York");
    assert_eq!(event["details"]["job_id"], job_id);
    assert_eq!(event["details"]["template_version"], 2);
    // The job is in the audit trail, queued then confirmed, with its template and bytes' hash.
    let entries = station.journal().audit_entries(None).unwrap();
    let of_job: Vec<&str> = entries
        .iter()
        .filter(|e| e.details.contains(job_id))
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(of_job, ["print_job", "print_job_state"], "{entries:?}");
    assert!(entries.iter().any(|e| e.kind == "print_job"
        && e.details.contains("\"template\":\"apheresis-bag\"")
        && e.details.contains("zpl_sha256")));
    // No patient data in the event, the audit trail or anything the command said.
    let audit: Vec<String> = entries.into_iter().map(|e| e.details).collect();
    let said = format!(
        "{}{}",
        stderr(&output),
        String::from_utf8_lossy(&output.stdout)
    );
    for text in [event.to_string(), audit.join("\n"), said] {
        for phi in ["Example", "EXAMPLE", "Pat", "1984", "PT-0042"] {
            assert!(!text.contains(phi), "{phi} in {text}");
        }
    }

    // The same bag again: refused, nothing sent; as a reprint: printed and reported as one.
    let output = station.print(coi, "1", &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(&format!(
            "bag 1 of order ORD-25-000042 may already carry a label (job {job_id}, confirmed)"
        )),
        "{}",
        stderr(&output)
    );
    assert_eq!(station.emulator.received().len(), 1, "nothing sent");
    // Issue #13: a reprint needs its reason (a blank one is none); it goes with the event.
    let output = station.print(coi, "1", &["--reprint", "--reason", "   "]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("a reprint needs its reason"),
        "{}",
        stderr(&output)
    );
    let output = station.print(coi, "1", &["--reprint", "--reason", "smudged", "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(json(&output)["event"], "label_reprinted");
    assert_eq!(station.emulator.received().len(), 2);
    let event = station.events().pop().unwrap();
    assert_eq!(event["details"]["reason"], "smudged");
    assert_eq!(event["details"]["collected_at"], "2025-06-02T12:14:00Z");

    // A reprint of a bag never labelled is a mistake, not a reprint.
    let output = station.print(coi, "2", &["--reprint", "--reason", "smudged"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("no earlier label for bag 2"));
    assert_eq!(station.emulator.received().len(), 2);

    assert!(station.journal().verify_audit().unwrap().is_ok());
}

#[test]
fn a_printer_fault_is_print_failed_and_a_lost_job_blocks_a_second_label() {
    let station = Station::new(
        "label-print-faults",
        "site-apheresis-1",
        "Zebra ZT411 300 dpi",
    );
    let coi = "CHA999925000042";

    // Out of media: refused at preflight, nothing sent, recorded as failed with print_failed.
    station.emulator.set_fault(EmulatedFault::MediaOut, true);
    let output = station.print(coi, "1", &["--json"]);
    assert_eq!(output.status.code(), Some(1));
    let line = json(&output);
    assert_eq!(
        (line["state"].as_str(), line["fault"].as_str()),
        (Some("failed"), Some("media_out"))
    );
    assert_eq!(line["event"], "print_failed");
    assert!(station.emulator.received().is_empty());
    assert_eq!(station.events()[0]["details"]["fault"], "media_out");

    // A failed job put nothing on paper: the bag may be printed without a reprint. This time
    // the connection drops mid-job: unconfirmed, no custody event yet.
    station.emulator.set_fault(EmulatedFault::MediaOut, false);
    station.emulator.drop_during_next_job();
    let output = station.print(coi, "1", &["--json"]);
    assert_eq!(output.status.code(), Some(1));
    let line = json(&output);
    assert_eq!(
        (line["state"].as_str(), line["fault"].as_str()),
        (Some("unconfirmed"), Some("disconnected"))
    );
    assert!(line["event"].is_null());
    assert_eq!(
        station.events().len(),
        1,
        "no event while the printer has not said"
    );

    // The label may exist: another is only a reprint.
    let output = station.print(coi, "1", &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("unconfirmed): print another only as a reprint"),
        "{}",
        stderr(&output)
    );
    let states: Vec<Option<String>> = station.jobs().into_iter().map(|j| j[0].clone()).collect();
    assert_eq!(states, [Some("failed".into()), Some("unconfirmed".into())]);
}

#[test]
fn what_the_chain_of_identity_forbids_is_refused_before_anything_is_sent() {
    // A cell-lab workstation does not print the apheresis site's bag labels.
    let lab = Station::new("label-print-lab", "site-lab-1", "Zebra ZT411 300 dpi");
    let output = lab.print("CHA999925000042", "1", &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(
            "printed at its collection site site-apheresis-1, this workstation is at site-lab-1"
        ),
        "{}",
        stderr(&output)
    );

    let station = Station::new(
        "label-print-refused",
        "site-apheresis-1",
        "Zebra ZT411 203 dpi",
    );
    station.emulator.set_dots_per_mm(8);
    for (coi, bag, expected) in [
        // The collection has shipped.
        (
            "CHA999925000043",
            "1",
            "is shipped: bag labels are printed only before the collection ships",
        ),
        // Not in the journal's cache.
        (
            "CHA999925000068",
            "1",
            "no cached order has COI CHA999925000068 (run coi-agent orders sync)",
        ),
        // Bag 3 of a 2-bag collection.
        (
            "CHA999925000042",
            "3",
            "label not made: order ORD-25-000042: bag 3 does not exist: the collection has 2 bag(s)",
        ),
    ] {
        let output = station.print(coi, bag, &[]);
        assert_eq!(output.status.code(), Some(1), "{coi}");
        let message = stderr(&output);
        assert!(
            message.contains("label not printed, nothing sent"),
            "{message}"
        );
        assert!(message.contains(expected), "{message}");
    }
    // The printer is swapped for a 300 dpi one; the configuration still says 203 dpi.
    station.emulator.set_dots_per_mm(12);
    let output = station.print("CHA999925000042", "1", &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output)
            .contains("printer bag-labels: the printer reports 300 dpi, its profile says 203 dpi"),
        "{}",
        stderr(&output)
    );

    // The example orders as they are: expired since 2025.
    let orders: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ORDERS).unwrap()).unwrap();
    let expired = Station::with_orders(
        "label-print-expired",
        "site-apheresis-1",
        "Zebra ZT411 300 dpi",
        &orders,
    );
    let output = expired.print("CHA999925000042", "1", &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(
            "order ORD-25-000042 expired at 2025-06-05T03:59:00Z: no label for an expired collection"
        ),
        "{}",
        stderr(&output)
    );

    for station in [&lab, &station, &expired] {
        assert!(station.emulator.received().is_empty());
        assert!(station.jobs().is_empty());
        assert!(station.events().is_empty());
    }
}

/// The compound message on bag `bag`'s label, as `label render --json` reports the payload it
/// proved (not read back from the ZPL by the code under test).
fn compound_message(station: &Station, bag: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_coi-agent"))
        .args(["label", "render", "--template", "apheresis-bag", "--json"])
        .args([
            "--order",
            &station.orders,
            "--coi",
            "CHA999925000042",
            "--bag",
            bag,
        ])
        .args(["--collected-at", "2025-06-02T12:14:00Z"])
        .output()
        .unwrap();
    let line = json(&output);
    let symbols = line["symbols"].as_array().unwrap();
    let message = symbols
        .iter()
        .find(|s| s["format"] == "data_matrix")
        .unwrap()["data"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.starts_with("=+"), "{message}");
    message
}

#[test]
fn the_verify_step_checks_the_printed_label_against_its_job() {
    let station = Station::new("label-verify", "site-apheresis-1", "Zebra ZT411 300 dpi");
    let output = station.print("CHA999925000042", "1", &["--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let job = json(&output)["job_id"].as_str().unwrap().to_owned();
    let scan = compound_message(&station, "1");
    let received = String::from_utf8_lossy(&station.emulator.received()[0]).into_owned();
    assert!(
        received.contains(&scan.replace('>', "_3E")),
        "the printed label carries it"
    );
    let verify = |job: &str, data: &str, json: bool| {
        let mut args = vec!["label", "verify", "--job", job, "--operator", "nurse-7"];
        if json {
            args.push("--json");
        }
        args.push(data);
        station.run(&args)
    };
    let job_row = |job: &str| station.journal().print_job(job).unwrap().unwrap();

    // The label's own Data Matrix: a match, the job verified, label_verified for central.
    let output = verify(&job, &scan, true);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(json(&output)["verdict"], "match");
    assert_eq!(json(&output)["verification"], "verified");
    assert_eq!(job_row(&job).verification.as_deref(), Some("verified"));
    let event = station.events().pop().unwrap();
    assert_eq!(event["type"], "label_verified");
    assert_eq!(event["details"]["job_id"], job.as_str());
    assert_eq!(event["operator"], "nurse-7");

    // Issue #17: the job's COI barcode alone is half a read: incomplete, nothing flagged,
    // nothing sent.
    let sent = station.events().len();
    let output = verify(&job, "&/CHA999925000042", true);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(json(&output)["verdict"], "incomplete");
    assert_eq!(json(&output)["needs"], "din");
    assert_eq!(job_row(&job).verification.as_deref(), Some("verified"));
    assert_eq!(station.events().len(), sent, "half a read sends nothing");
    // Bag 2's DIN next: half a read that already contradicts the job (another bag) is a
    // mismatch at once, and so would the pair be: the job flagged, scan_mismatch sent.
    let output = verify(&job, "=A99992512345602", true);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(json(&output)["reason"], "not_expected", "{}", json(&output));
    assert_eq!(job_row(&job).verification.as_deref(), Some("flagged"));
    let event = station.events().pop().unwrap();
    assert_eq!(event["type"], "scan_mismatch");
    assert_eq!(event["details"]["reason"], "not_expected");
    assert_eq!(event["bag"], 1, "the event is about the job's bag");

    // The right label scanned again does not clear the flag: a wrong label is somewhere.
    let output = verify(&job, &scan, false);
    assert_eq!(output.status.code(), Some(1));
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        said.contains("MATCH") && said.contains("JOB FLAGGED"),
        "{said}"
    );
    assert_eq!(job_row(&job).verification.as_deref(), Some("flagged"));
    // Issue #13: and central hears scan_mismatch for it, never label_verified.
    let event = station.events().pop().unwrap();
    assert_eq!(event["type"], "scan_mismatch");
    assert_eq!(event["details"]["reason"], "job_flagged");

    // A damaged DIN read alone (wrong flags) is recorded, its raw bytes kept: half a read.
    let output = verify(&job, "=A99992512345699", true);
    assert_eq!(output.status.code(), Some(1));
    let journal = station.journal();
    let scans: Vec<(Vec<u8>, String, String)> = journal
        .connection()
        .prepare("SELECT raw, verdict, step FROM scans ORDER BY id")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(scans.len(), 5);
    assert_eq!(
        scans[0],
        (scan.clone().into_bytes(), "match".into(), "verify".into())
    );
    assert_eq!(scans[1].1, "incomplete", "the half is recorded as such");
    assert_eq!(
        (scans[4].0.as_slice(), scans[4].1.as_str()),
        (&b"=A99992512345699"[..], "incomplete")
    );
    assert!(journal.verify_audit().unwrap().is_ok());

    // The flagged bag is reprinted; only the new job's label can be verified now.
    let output = station.print(
        "CHA999925000042",
        "1",
        &["--reprint", "--reason", "smudged", "--json"],
    );
    let reprint = json(&output)["job_id"].as_str().unwrap().to_owned();
    let output = verify(&job, &scan, false);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(&format!("was followed by job {reprint} for the same bag")),
        "{}",
        stderr(&output)
    );
    // Issue #13: a scan that does not read says nothing about the label: it is recorded and
    // shown, and the job is neither flagged nor verified.
    let output = verify(&reprint, "not a barcode at all", true);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(json(&output)["reason"], "unreadable");
    assert_eq!(job_row(&reprint).verification, None);
    assert_eq!(verify(&reprint, &scan, false).status.code(), Some(0));

    // A job the printer never confirmed (the connection dropped) whose label is in hand and
    // scans right is confirmed by the scan: label_printed, then label_verified.
    station.emulator.drop_during_next_job();
    let output = station.print("CHA999925000042", "2", &["--json"]);
    assert_eq!(json(&output)["state"], "unconfirmed");
    let lost = json(&output)["job_id"].as_str().unwrap().to_owned();
    let output = verify(&lost, &compound_message(&station, "2"), true);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(json(&output)["confirmed_by_scan"], true);
    assert_eq!(job_row(&lost).state, "confirmed");
    let kinds: Vec<String> = station.events()[station.events().len() - 2..]
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["label_printed", "label_verified"]);

    // No such job, or a job that printed nothing: refused, nothing recorded.
    let before = station.journal().scan_ids().unwrap().len();
    let output = verify("no-such-job", "=A99992512345601", false);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("not verified, nothing recorded: no print job no-such-job"));
    station.emulator.set_fault(EmulatedFault::HeadOpen, true);
    let output = station.print(
        "CHA999925000042",
        "2",
        &["--reprint", "--reason", "smudged", "--json"],
    );
    assert_eq!(json(&output)["state"], "failed");
    let failed = json(&output)["job_id"].as_str().unwrap().to_owned();
    let output = verify(&failed, "=A99992512345602", false);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("failed before anything was sent"),
        "{}",
        stderr(&output)
    );
    assert_eq!(station.journal().scan_ids().unwrap().len(), before);
}

/// Issue #13: a collection time in the future, after the order's expiry, or before the day
/// before the scheduled collection is refused, nothing sent.
#[test]
fn r13_a_collection_time_out_of_range_is_refused() {
    let station = Station::new("label-times", "site-apheresis-1", "Zebra ZT411 300 dpi");
    let at = |time: &str| {
        station.run(&[
            "label",
            "print",
            "--coi",
            "CHA999925000042",
            "--bag",
            "1",
            "--collected-at",
            time,
        ])
    };
    let soon = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_mins(30))
        .unwrap()
        .to_string();
    for (time, why) in [
        (soon.as_str(), "is in the future"),
        ("2100-01-01T00:00:00Z", "is in the future"),
        // Scheduled 2025-06-02 (New York): the 31st of May is two days early.
        (
            "2025-05-31T12:00:00Z",
            "before the day before the scheduled collection",
        ),
    ] {
        let output = at(time);
        assert_eq!(output.status.code(), Some(1), "{time}");
        assert!(stderr(&output).contains(why), "{time}: {}", stderr(&output));
    }
    assert!(station.emulator.received().is_empty(), "nothing sent");
    // The day before is allowed (a collection that began the evening before).
    let output = at("2025-06-01T12:00:00Z");
    assert!(output.status.success(), "{}", stderr(&output));
}

/// Every bag of one collection carries the collection time of its first label.
#[test]
fn the_bags_of_one_collection_carry_one_collection_time() {
    let station = Station::new("label-collected", "site-apheresis-1", "Zebra ZT411 300 dpi");
    let output = station.print("CHA999925000042", "1", &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    // Bag 2 an hour later: another time is refused; without one, bag 1's is printed.
    let output = station.run(&[
        "label",
        "print",
        "--coi",
        "CHA999925000042",
        "--bag",
        "2",
        "--collected-at",
        "2025-06-02T13:14:00Z",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(
            "its labels carry the collection time 2025-06-02T12:14:00Z, not 2025-06-02T13:14:00Z"
        ),
        "{}",
        stderr(&output)
    );
    let output = station.run(&["label", "print", "--coi", "CHA999925000042", "--bag", "2"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let received = station.emulator.received();
    assert_eq!(received.len(), 2);
    // DS 007 of 08:14 EDT on day 153 of 2025, on both.
    for format in &received {
        assert!(String::from_utf8_lossy(format).contains("&*0251530814"));
    }
}

/// Six processes print the same bag at once: one label, the others refused before sending.
#[test]
fn a_bag_printed_from_two_places_at_once_gets_one_label() {
    let station = Station::new("label-race", "site-apheresis-1", "Zebra ZT411 300 dpi");
    let outputs: Vec<Output> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..6)
            .map(|_| scope.spawn(|| station.print("CHA999925000042", "1", &[])))
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let printed = outputs.iter().filter(|o| o.status.success()).count();
    assert_eq!(
        printed,
        1,
        "{:?}",
        outputs.iter().map(stderr).collect::<Vec<_>>()
    );
    for output in outputs.iter().filter(|o| !o.status.success()) {
        assert!(
            stderr(output).contains("may already carry a label"),
            "{}",
            stderr(output)
        );
    }
    assert_eq!(station.emulator.received().len(), 1);
    assert_eq!(station.events().len(), 1);
}

/// The journal fails after the label was sent (a full disk, stood in for by a trigger): the
/// command says the label was sent and not recorded, never "nothing sent", and the job stays
/// recorded as queued, so the bag is not printed again without a reprint.
#[test]
fn a_journal_failure_after_sending_is_said_as_sent_not_recorded() {
    let station = Station::new(
        "label-unrecorded",
        "site-apheresis-1",
        "Zebra ZT411 300 dpi",
    );
    Journal::open(&station.db.0)
        .unwrap()
        .connection()
        .execute_batch(
            "CREATE TRIGGER full_disk BEFORE INSERT ON print_job_states WHEN NEW.state = 'confirmed'
             BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
        )
        .unwrap();
    let output = station.print("CHA999925000042", "1", &[]);
    assert_eq!(output.status.code(), Some(1));
    let said = stderr(&output);
    assert!(said.contains("LABEL SENT, NOT RECORDED"), "{said}");
    assert!(
        said.contains("ended confirmed") && !said.contains("nothing sent"),
        "{said}"
    );
    assert_eq!(station.emulator.received().len(), 1);
    let states: Vec<Option<String>> = station.jobs().into_iter().map(|j| j[0].clone()).collect();
    assert_eq!(states, [Some("queued".into())]);
    assert!(station.events().is_empty());
    let output = station.print("CHA999925000042", "1", &[]);
    assert!(
        stderr(&output).contains("may already carry a label"),
        "{}",
        stderr(&output)
    );
    assert_eq!(station.emulator.received().len(), 1);
}

/// Issue #20: a sample tube's label carries flags 07, never counts as its bag's label (the bag
/// is still labelled once, and any number of tubes), and its scan verifies the sample job only.
#[test]
fn r20_sample_tube_labels_are_samples_never_the_bag() {
    let station = Station::new("label-samples", "site-apheresis-1", "Zebra ZT411 300 dpi");
    let tube = |extra: &[&str]| {
        let mut args = vec!["--template", "sample-tube", "--json"];
        args.extend_from_slice(extra);
        station.print("CHA999925000042", "2", &args)
    };
    let output = tube(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let tube_job = json(&output)["job_id"].as_str().unwrap().to_owned();
    let sent = String::from_utf8_lossy(&station.emulator.received()[0]).into_owned();
    assert!(
        sent.contains("=A99992512345607"),
        "flags 07 on the tube: {sent}"
    );
    assert!(sent.contains("SAMPLE - BAG 2 OF 2"), "{sent}");
    // More tubes are fine, up to the template's max_per_bag (6); a reprint of a tube is not a
    // thing.
    for _ in 2..=6 {
        assert!(tube(&[]).status.success());
    }
    let output = tube(&[]);
    assert_eq!(output.status.code(), Some(1), "a seventh tube");
    assert!(
        stderr(&output).contains("already has 6 sample tube labels"),
        "{}",
        stderr(&output)
    );
    let output = tube(&["--reprint", "--reason", "smudged"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("a sample tube label is not reprinted"));
    // Bag 2's own label is still its first, and still only one.
    let output = station.print("CHA999925000042", "2", &["--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let bag_job = json(&output)["job_id"].as_str().unwrap().to_owned();
    let output = station.print("CHA999925000042", "2", &["--json"]);
    assert_eq!(output.status.code(), Some(1), "one bag label per bag");

    let verify =
        |job: &str, data: &str| station.run(&["label", "verify", "--job", job, "--json", data]);
    // The bag's label for the tube's job, and the tube's label for the bag's job: flagged.
    let tube_scan = "=+02000=A99992512345607&/CHA999925000042";
    let bag_scan = "=+02000=A99992512345602&/CHA999925000042";
    let output = verify(&bag_job, tube_scan);
    assert_eq!(json(&output)["reason"], "not_expected", "{}", json(&output));
    // The tube's label for its own job: a sample verdict, the job verified.
    let output = verify(&tube_job, tube_scan);
    assert_eq!(output.status.code(), Some(0), "{}", json(&output));
    assert_eq!(json(&output)["verdict"], "sample");
    assert_eq!(json(&output)["verification"], "verified");
    let other_tube = station.journal().print_job(&tube_job).unwrap().unwrap();
    assert_eq!(other_tube.label_kind, "sample");
    let output = station.run(&["label", "verify", "--job", &bag_job, "--json", bag_scan]);
    assert_eq!(
        json(&output)["verification"],
        "flagged",
        "flagged by the tube"
    );
    let events: Vec<String> = station
        .events()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert!(events.contains(&"label_verified".to_owned()), "{events:?}");
}

/// Issue #13: the collection time in the label's Data Matrix must be the job's: a label of the
/// right bag made with another collection time is not the label just printed.
#[test]
fn r13_a_data_matrix_with_another_collection_time_flags_the_job() {
    let station = Station::new("label-dm-time", "site-apheresis-1", "Zebra ZT411 300 dpi");
    let output = station.print("CHA999925000042", "1", &["--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let job = json(&output)["job_id"].as_str().unwrap().to_owned();
    let scan = compound_message(&station, "1");
    assert!(scan.contains("&*0251530814"), "{scan}");
    let other = scan.replace("&*0251530814", "&*0251530815");
    let output = station.run(&["label", "verify", "--job", &job, "--json", &other]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(json(&output)["reason"], "not_expected", "{}", json(&output));
    assert!(
        json(&output)["message"]
            .as_str()
            .unwrap()
            .contains("collection time is not the one of the label just printed")
    );
    assert_eq!(json(&output)["verification"], "flagged");
}

/// Issue #13: a voided label no longer counts as the bag's: a new first label may be printed,
/// the voided job cannot be verified, and label_voided goes to central with the reason.
#[test]
fn r13_a_voided_label_frees_its_bag_and_is_never_verified() {
    let station = Station::new("label-void", "site-apheresis-1", "Zebra ZT411 300 dpi");
    let output = station.print("CHA999925000042", "1", &["--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let job = json(&output)["job_id"].as_str().unwrap().to_owned();
    let void = |job: &str, reason: &str| {
        station.run(&[
            "label",
            "void",
            "--job",
            job,
            "--reason",
            reason,
            "--operator",
            "nurse-7",
            "--json",
        ])
    };
    let output = void(&job, "  ");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("a void needs its reason"),
        "{}",
        stderr(&output)
    );
    let output = void(&job, "wrong bag");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(json(&output)["state"], "voided");
    assert_eq!(json(&output)["event"], "label_voided");
    let event = station.events().pop().unwrap();
    assert_eq!(event["type"], "label_voided");
    assert_eq!(event["details"]["reason"], "wrong bag");
    assert_eq!(event["bag"], 1);
    // Twice: refused; an unknown job: refused.
    let output = void(&job, "again");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("is voided: there is no label of it to void"));
    assert_eq!(void("no-such-job", "x").status.code(), Some(1));
    // The voided label cannot be verified; the bag takes a new first label (not a reprint).
    let scan = compound_message(&station, "1");
    let output = station.run(&["label", "verify", "--job", &job, &scan]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("was voided"),
        "{}",
        stderr(&output)
    );
    let output = station.print("CHA999925000042", "1", &["--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(json(&output)["event"], "label_printed");
    let fresh = json(&output)["job_id"].as_str().unwrap().to_owned();
    let output = station.run(&["label", "verify", "--job", &fresh, &scan]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(station.journal().verify_audit().unwrap().is_ok());
}

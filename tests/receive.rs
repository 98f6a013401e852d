//! `coi-agent receive`: the receipt scan at a cell lab, run as the binary a site runs, against a
//! real SQLite journal: judged against the cached orders, recorded before it is shown, a custody
//! event for central, and a bag received once — even from two processes at the same moment.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use coi_agent::journal::Journal;

mod support;
use support::tempdb::TempDb;

const ORDERS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/example-orders.json"
);

/// A cell-lab workstation (site-lab-1) with the example orders, expiry moved to 2099, synced.
struct Lab {
    db: TempDb,
    config: String,
    orders: String,
}

impl Lab {
    fn new(name: &str) -> Lab {
        let db = TempDb::new(name);
        let dir = db.0.parent().unwrap().to_path_buf();
        let mut orders: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(ORDERS).unwrap()).unwrap();
        for order in orders["orders"].as_array_mut().unwrap() {
            order["expires_at"] = "2099-12-31T23:59:00-05:00".into();
        }
        let orders_path = dir.join("orders.json");
        std::fs::write(&orders_path, orders.to_string()).unwrap();
        let config = dir.join("coi-agent.toml");
        std::fs::write(
            &config,
            "[site]\nid = \"site-lab-1\"\nworkstation = \"lab-ws-2\"\n[journal]\npath = \"journal.sqlite\"\n\
             [orders]\nsource = \"file\"\nfile = \"orders.json\"\n",
        )
        .unwrap();
        let lab = Lab {
            db,
            config: config.display().to_string(),
            orders: orders_path.display().to_string(),
        };
        let output = lab.run(&["orders", "sync"], None);
        assert!(output.status.success(), "{}", stderr(&output));
        lab
    }

    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_coi-agent"))
            .args(args)
            .args(["--config", &self.config])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(bytes) = stdin {
            input.write_all(bytes).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    fn receive(&self, extra: &[&str]) -> Output {
        let mut args = vec!["receive", "--operator", "tech-3", "--json"];
        args.extend_from_slice(extra);
        self.run(&args, None)
    }

    /// The compound message on the label of bag 1 of the shipped order (CHA999925000043).
    fn label_of_the_shipped_bag(&self) -> String {
        let output = Command::new(env!("CARGO_BIN_EXE_coi-agent"))
            .args(["label", "render", "--template", "bag-small", "--json"])
            .args(["--order", &self.orders, "--coi", "CHA999925000043"])
            .args(["--collected-at", "2025-06-02T12:14:00Z"])
            .output()
            .unwrap();
        let line: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        line["symbols"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["format"] == "data_matrix")
            .unwrap()["data"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn journal(&self) -> Journal {
        Journal::open_read_only(&self.db.0).unwrap()
    }

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

    /// Every recorded scan as (verdict, reason, step, operator).
    fn scans(&self) -> Vec<[Option<String>; 4]> {
        let journal = self.journal();
        let mut stmt = journal
            .connection()
            .prepare("SELECT verdict, reason, step, operator FROM scans ORDER BY id")
            .unwrap();
        stmt.query_map([], |row| {
            Ok([row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?])
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_bag_is_received_once_and_every_scan_is_recorded() {
    let lab = Lab::new("receive-once");
    let label = lab.label_of_the_shipped_bag();

    let output = lab.receive(&[&label]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(lines(&output)[0]["verdict"], "match");
    let events = lab.events();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event["type"], "bag_received");
    assert_eq!(event["coi"], "CHA999925000043");
    assert_eq!(
        (event["bag"].as_u64(), event["bags"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(event["site_id"], "site-lab-1");
    assert_eq!(event["workstation"], "lab-ws-2");
    assert_eq!(event["operator"], "tech-3");
    assert!(!event.to_string().contains("Müller"), "no patient data");

    // The same bag again: a duplicate, reported as such.
    let output = lab.receive(&[&label]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(lines(&output)[0]["reason"], "already_received");
    let event = lab.events().pop().unwrap();
    assert_eq!(event["type"], "scan_mismatch");
    assert_eq!(event["details"]["reason"], "already_received");

    // A bag of an order not yet shipped, scanned as its DIN then its COI barcode (issue #17:
    // the first is half a read, the second completes it), and a DIN read that ran on (a bad
    // read of a real label: "scan again"): all recorded; the half and the bad read name no
    // order, so central hears nothing of them.
    let output = lab.receive(&["=A99992512345602", "&/CHA999925000042", "=A99992512345601X"]);
    assert_eq!(output.status.code(), Some(1));
    let verdicts = lines(&output);
    assert_eq!(verdicts[0]["verdict"], "incomplete");
    assert_eq!(verdicts[0]["needs"], "coi");
    assert_eq!(verdicts[1]["reason"], "wrong_status");
    assert_eq!(verdicts[1]["bag"], 2);
    assert_eq!(verdicts[2]["reason"], "unreadable");
    assert_eq!(lab.events().len(), 3);
    // Issue #13: the mismatch carries what was scanned next to the order's identifiers, and
    // no field is null (an unknown one is left out), as the schema says.
    let event = lab.events().pop().unwrap();
    assert_eq!(event["type"], "scan_mismatch");
    assert_eq!(event["details"]["scanned"]["din"], "A999925123456");
    assert_eq!(event["details"]["scanned"]["bag"], 2);
    for event in lab.events() {
        assert_eq!(support::central::schema_problem(&event), None, "{event}");
        assert!(!event.to_string().contains("null"), "{event}");
    }

    let scans = lab.scans();
    assert_eq!(scans.len(), 5);
    assert_eq!(
        scans[0],
        [
            Some("match".into()),
            None,
            Some("receipt".into()),
            Some("tech-3".into())
        ]
    );
    assert_eq!(scans[1][1].as_deref(), Some("already_received"));
    assert!(lab.journal().verify_audit().unwrap().is_ok());
}

#[test]
fn a_scanner_is_received_from_until_its_input_ends() {
    let lab = Lab::new("receive-source");
    let label = lab.label_of_the_shipped_bag();
    let input = format!("{label}\r=A99992512345602\r&/CHA999925000042\r");
    let output = lab.run(
        &["receive", "--source", "stdin:", "--json"],
        Some(input.as_bytes()),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let verdicts = lines(&output);
    assert_eq!(verdicts.len(), 3);
    assert_eq!(verdicts[0]["verdict"], "match");
    assert_eq!(verdicts[1]["verdict"], "incomplete");
    assert_eq!(
        verdicts[2]["reason"], "wrong_status",
        "the pair is judged as one"
    );
    assert_eq!(lab.scans().len(), 3);
}

/// Four processes receive the same bag at once: one match, three duplicates.
#[test]
fn a_bag_scanned_at_two_workstations_at_once_is_received_once() {
    let lab = Lab::new("receive-race");
    let label = lab.label_of_the_shipped_bag();
    let outputs: Vec<Output> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| lab.receive(&[&label])))
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let matched = outputs.iter().filter(|o| o.status.success()).count();
    assert_eq!(
        matched,
        1,
        "{:?}",
        outputs.iter().map(stderr).collect::<Vec<_>>()
    );
    for output in outputs.iter().filter(|o| !o.status.success()) {
        assert_eq!(
            lines(output)[0]["reason"],
            "already_received",
            "{}",
            stderr(output)
        );
    }
    let kinds: Vec<String> = lab
        .events()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "bag_received").count(), 1);
}

/// Record before show (issue #18): when the journal cannot record the scan, no verdict is
/// printed — a MATCH nobody recorded must not be seen — and the command fails naming the
/// journal.
#[test]
fn a_scan_the_journal_cannot_record_shows_no_verdict() {
    let lab = Lab::new("receive-unrecorded");
    let label = lab.label_of_the_shipped_bag();
    // The disk "fills" for scans: every insert is refused.
    {
        let conn = rusqlite::Connection::open(&lab.db.0).unwrap();
        conn.execute_batch(
            "CREATE TRIGGER no_room BEFORE INSERT ON scans BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
        )
        .unwrap();
    }
    let output = lab.receive(&[&label]);
    assert_ne!(output.status.code(), Some(0));
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(!said.contains("match"), "nothing shown as done: {said}");
    assert!(
        stderr(&output).contains("disk is full"),
        "{}",
        stderr(&output)
    );
    assert!(lab.events().is_empty(), "no event without its record");
}

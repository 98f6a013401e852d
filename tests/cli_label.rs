//! `coi-agent label render|list|lint` and `print --template`, run as the binary a site runs.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

const ORDERS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/example-orders.json"
);

fn coi_agent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coi-agent"))
        .args(args)
        .output()
        .expect("run coi-agent")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("coi-agent-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, file: &str) -> String {
        self.0.join(file).display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn render(extra: &[&str]) -> Output {
    let mut args = vec![
        "label",
        "render",
        "--order",
        ORDERS,
        "--collected-at",
        "2025-06-02T12:14:00Z",
    ];
    args.extend_from_slice(extra);
    coi_agent(&args)
}

#[test]
fn render_writes_the_zpl_and_a_one_bit_png_at_the_asked_resolution() {
    let dir = TempDir::new("label-render");
    let (zpl, png) = (dir.path("bag.zpl"), dir.path("bag.png"));
    let output = render(&[
        "--template",
        "apheresis-bag",
        "--coi",
        "CHA999925000042",
        "--bag",
        "2",
        "--dpi",
        "300",
        "--zpl",
        &zpl,
        "--png",
        &png,
        "--json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["dpi"], 300);
    assert!(
        summary.get("zpl_sha256").is_none(),
        "no digest of PHI-bearing ZPL"
    );
    assert_eq!(summary["width"], 1200);
    assert_eq!(summary["symbols"][0]["data"], "=A99992512345602");
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("Example"),
        "no patient data"
    );
    let zpl = std::fs::read_to_string(&zpl).unwrap();
    assert!(zpl.starts_with("^XA^CI28^PW1200^LL1200"));
    let png = std::fs::read(&png).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    assert!(stderr(&output).contains("4 symbol(s) proven"));
}

#[test]
fn render_without_outputs_writes_the_zpl_to_stdout() {
    let output = render(&["--template", "sample-tube", "--coi", "CHA999925000043"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let zpl = String::from_utf8(output.stdout).unwrap();
    assert!(zpl.starts_with("^XA") && zpl.ends_with("^XZ\n"));
    assert!(zpl.contains("^BXN"));
}

#[test]
fn bad_requests_exit_1_with_a_clear_reason() {
    let dir = TempDir::new("label-bad");
    let broken = dir.path("orders.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ORDERS).unwrap()).unwrap();
    json["orders"][0]["collection"]["din"] = serde_json::json!("A99992512345X");
    std::fs::write(&broken, json.to_string()).unwrap();
    for (args, expected) in [
        (
            vec!["--template", "no-such", "--coi", "CHA999925000042"],
            "unknown template \"no-such\" (there are: apheresis-bag, bag-small, sample-tube)",
        ),
        (
            vec!["--template", "bag-small", "--coi", "CHA999925000099"],
            "no valid order with COI CHA999925000099",
        ),
        (
            vec![
                "--template",
                "bag-small",
                "--coi",
                "CHA999925000042",
                "--bag",
                "3",
            ],
            "bag 3 does not exist: the collection has 2 bag(s)",
        ),
        (
            vec!["--template", "bag-small", "--coi", "not-a-coi"],
            "--coi:",
        ),
    ] {
        let output = render(&args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    let output = coi_agent(&[
        "label",
        "render",
        "--template",
        "bag-small",
        "--order",
        &broken,
        "--coi",
        "CHA999925000042",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("no valid order with COI CHA999925000042"),
        "{message}"
    );
    assert!(
        message.contains("refused order 0 (ORD-25-000042)"),
        "{message}"
    );
    assert!(!message.contains("Example"), "no patient data: {message}");

    let output = render(&[
        "--template",
        "bag-small",
        "--coi",
        "CHA999925000042",
        "--dpi",
        "250",
    ]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "a resolution outside 203/300/600 is a usage error"
    );
}

#[test]
fn list_and_lint_cover_every_template() {
    let output = coi_agent(&["label", "list"]);
    assert!(output.status.success());
    let listing = String::from_utf8(output.stdout).unwrap();
    for name in ["apheresis-bag", "bag-small", "sample-tube"] {
        assert!(listing.contains(name), "{listing}");
    }
    assert!(listing.contains("101.6 × 101.6"));

    let output = coi_agent(&["label", "lint"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(String::from_utf8(output.stdout).unwrap().lines().count(), 3);
}

/// A template edited so two elements overlap fails the lint, naming both.
#[test]
fn lint_names_overlapping_elements_in_a_template_directory() {
    let dir = TempDir::new("label-lint");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/label-templates/sample-tube.toml"
    ))
    .unwrap()
    .replace("at = [9.2, 4.6]", "at = [9.2, 2.0]");
    std::fs::write(dir.0.join("sample-tube.toml"), text).unwrap();
    let output = coi_agent(&["label", "lint", "--templates", &dir.path("")]);
    assert_eq!(output.status.code(), Some(1));
    let report = String::from_utf8(output.stdout).unwrap();
    assert!(
        report.contains("2 (identifier Din) overlaps 3 (identifier Coi)"),
        "{report}"
    );
}

/// `print --template bag-small` for the first example order on `printer`, with `extra`.
fn print_bag_small(printer: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "print",
        "--printer",
        printer,
        "--template",
        "bag-small",
        "--order",
        ORDERS,
        "--coi",
        "CHA999925000042",
    ];
    args.extend_from_slice(extra);
    coi_agent(&args)
}

#[test]
fn print_from_a_template_sends_the_proven_label() {
    let dir = TempDir::new("label-print");
    let spool = dir.path("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let printer = format!("spool://{spool}");
    let print =
        |bag: &str, extra: &[&str]| print_bag_small(&printer, &[&["--bag", bag], extra].concat());
    let output = print("2", &["--collected-at", "2025-06-02T12:14:00Z", "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let written: Vec<_> = std::fs::read_dir(&spool).unwrap().collect();
    assert_eq!(written.len(), 1);
    let zpl = std::fs::read_to_string(written[0].as_ref().unwrap().path()).unwrap();
    assert!(zpl.contains("^FD>:=A>599992512345602^FS"), "{zpl}");

    let output = print("9", &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("label not made, nothing sent"));

    let output = print("1", &["--copies", "11"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "more than 10 copies is refused"
    );
    assert!(stderr(&output).contains("11 is not in 1..=10"));
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 1);
    // Three copies: one job of three whole labels.
    let output = print(
        "1",
        &["--collected-at", "2025-06-02T12:14:00Z", "--copies", "3"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let mut written: Vec<_> = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(written.len(), 2, "one job");
    written.retain(|p| !std::fs::read_to_string(p).unwrap().contains("12345602"));
    let zpl = std::fs::read_to_string(&written[0]).unwrap();
    assert_eq!(zpl.matches("^XA").count(), 3, "{zpl}");
    assert_eq!(zpl.matches("^XZ").count(), 3);
    assert_eq!(zpl.matches("^FD>:=A>599992512345601^FS").count(), 3);
}

/// The emulator reports a 300 dpi printer (`~HI`): a label made for it without `--dpi` is laid
/// out at 300 dpi and confirmed; one asked for at 203 dpi is refused before anything is sent, and
/// so is any label for a printer of a resolution labels are not made for.
#[test]
fn print_from_a_template_uses_the_printers_resolution_and_refuses_another() {
    use coi_agent::printer::emulator::Emulator;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let emulator = runtime
        .block_on(Emulator::start("127.0.0.1:0".parse().unwrap()))
        .unwrap();
    emulator.set_print_delay(std::time::Duration::from_millis(5));
    let printer = format!("tcp://{}", emulator.address());
    let print = |extra: &[&str]| print_bag_small(&printer, &[&["--json"], extra].concat());

    let output = print(&[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let line: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(line["state"], "confirmed");
    let formats = emulator.received();
    assert_eq!(formats.len(), 1);
    let zpl = String::from_utf8_lossy(&formats[0]);
    assert!(zpl.contains("^PW600^LL300"), "laid out at 300 dpi: {zpl}");

    let output = print(&["--dpi", "203"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("the printer reports 300 dpi, the label was asked for 203 dpi"),
        "{}",
        stderr(&output)
    );
    assert_eq!(emulator.received().len(), 1, "nothing more was sent");

    // A 152 dpi printer (6 dots/mm) would draw 0.17 mm Code 128 modules: refused, nothing sent.
    emulator.set_dots_per_mm(6);
    let output = print(&[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("labels are made at 203, 300 or 600 dpi, not 152 dpi"),
        "{}",
        stderr(&output)
    );
    assert_eq!(emulator.received().len(), 1, "nothing more was sent");
}

/// `label render --templates DIR` renders from that directory's templates, not the built-in
/// ones (issue #18: a promise with no test).
#[test]
fn render_reads_templates_from_a_directory() {
    let dir = TempDir::new("label-render-dir");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/label-templates/sample-tube.toml"
    ))
    .unwrap()
    .replace("SAMPLE - BAG {bag} OF {bags}", "TUBE FROM BAG {bag}");
    std::fs::write(dir.0.join("sample-tube.toml"), text).unwrap();
    let output = render(&[
        "--coi",
        "CHA999925000042",
        "--bag",
        "2",
        "--template",
        "sample-tube",
        "--templates",
        &dir.path(""),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let zpl = String::from_utf8_lossy(&output.stdout);
    assert!(zpl.contains("^FDTUBE FROM BAG 2"), "{zpl}");
    let builtin = render(&[
        "--coi",
        "CHA999925000042",
        "--bag",
        "2",
        "--template",
        "sample-tube",
    ]);
    assert!(String::from_utf8_lossy(&builtin.stdout).contains("^FDSAMPLE - BAG 2 OF 2"));
}

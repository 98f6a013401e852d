//! `coi-agent isbt parse` and `coi-agent isbt check`, run as the binary a site runs.

#![allow(clippy::unwrap_used)] // test helpers fail loudly; that is their job

use std::process::{Command, Output};

use serde_json::Value as Json;

fn coi_agent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coi-agent"))
        .args(args)
        .output()
        .expect("run coi-agent")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

fn json_lines(output: &Output) -> Vec<Json> {
    stdout(output)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn parse_json_reports_each_input_on_its_own_line() {
    let output = coi_agent(&[
        "isbt",
        "parse",
        "--json",
        "]C0=<S1295100",
        "=G12341765432171",
        "=+02000=A99992212345600&>0253652359",
    ]);
    assert_eq!(output.status.code(), Some(1), "one input is invalid");
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 3);

    let product = &lines[0];
    assert_eq!(product["ok"], true);
    assert_eq!(product["symbology"], "]C0");
    let s = &product["structures"][0];
    assert_eq!(
        (
            &s["number"],
            &s["name"],
            &s["data_identifier"],
            &s["content"]
        ),
        (
            &Json::from("003"),
            &Json::from("Product Code"),
            &Json::from("=<"),
            &Json::from("S1295100")
        )
    );
    assert_eq!(
        (&s["product_code"], &s["collection_type"], &s["division"]),
        (&"S1295".into(), &"1".into(), &"00".into())
    );

    let bad = &lines[1];
    assert_eq!(bad["ok"], false);
    assert_eq!(bad["input"], "=G12341765432171");
    assert_eq!(
        bad["error"],
        "DIN flags 71 do not match the check (expected 70, check character A)"
    );

    let compound = &lines[2];
    assert_eq!(compound["symbology"], Json::Null);
    let structures = compound["structures"].as_array().unwrap();
    assert_eq!(structures.len(), 3);
    assert_eq!(
        (&structures[0]["number"], &structures[0]["count"]),
        (&"023".into(), &2.into())
    );
    let din = &structures[1];
    assert_eq!(
        (&din["din"], &din["flags"], &din["flag_kind"]),
        (&"A999922123456".into(), &"00".into(), &"not_used".into())
    );
    assert_eq!(din["check_char"], mod37_2("A999922123456").to_string());
    assert_eq!(structures[2]["date"], "2025-12-31T23:59");
}

#[test]
fn parse_json_gives_typed_fields_for_coi_and_dates() {
    let output = coi_agent(&[
        "isbt",
        "parse",
        "--json",
        "&/CHA999925000042",
        "=*024060",
        "=(1002202406021408",
    ]);
    assert_eq!(output.status.code(), Some(0));
    let lines = json_lines(&output);
    let coi = &lines[0]["structures"][0];
    assert_eq!(
        (&coi["coi"], &coi["number"]),
        (&"CHA999925000042".into(), &"040".into())
    );
    assert_eq!(coi["check_char"], mod37_2("CHA999925000042").to_string());
    assert_eq!(
        mod37_2("CHA999925000042"),
        'Z',
        "as printed on the example label"
    );
    assert_eq!(
        lines[1]["structures"][0]["date"], "2024-02-29",
        "day 060 of a leap year"
    );
    let flexible = &lines[2]["structures"][0];
    assert_eq!(
        (&flexible["date"], &flexible["zone"], &flexible["role"]),
        (
            &"2024-06-02T14:08".into(),
            &"local".into(),
            &"collection".into()
        )
    );
}

#[test]
fn parse_text_is_for_people_and_exits_zero_when_all_valid() {
    let output = coi_agent(&["isbt", "parse", "=A99992212345600"]);
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    assert!(text.contains("DIN A9999 22 123456"), "{text}");
    assert!(text.contains("valid: 1 structure"), "{text}");
}

#[test]
fn parse_text_escapes_control_bytes_and_survives_non_utf8() {
    use std::os::unix::ffi::OsStrExt as _;
    let raw = std::ffi::OsStr::from_bytes(b"=A9999\x1b[2J\xff");
    let output = Command::new(env!("CARGO_BIN_EXE_coi-agent"))
        .args(["isbt".as_ref(), "parse".as_ref(), raw])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        !text.contains('\x1b'),
        "a terminal escape reached the screen: {text:?}"
    );
    assert!(text.contains("INVALID: byte 0x1B at offset 6"), "{text}");
}

#[test]
fn usage_errors_exit_two() {
    assert_eq!(coi_agent(&["isbt", "parse"]).status.code(), Some(2));
    assert_eq!(coi_agent(&["isbt", "frobnicate"]).status.code(), Some(2));
}

#[test]
fn check_prints_the_check_character_alone() {
    let output = coi_agent(&["isbt", "check", "G123417654321"]);
    assert_eq!(
        (output.status.code(), stdout(&output).as_str()),
        (Some(0), "A\n")
    );
    let output = coi_agent(&["isbt", "check", "A999917345628"]);
    assert_eq!(stdout(&output), "*\n");
    let output = coi_agent(&["isbt", "check", "--flags", "G123417654321"]);
    assert_eq!(stdout(&output), "70\n");
}

#[test]
fn check_of_a_coi_matches_parse() {
    let check = stdout(&coi_agent(&["isbt", "check", "CHA999925000042"]));
    let parsed = json_lines(&coi_agent(&[
        "isbt",
        "parse",
        "--json",
        "&/CHA999925000042",
    ]));
    assert_eq!(check.trim_end(), parsed[0]["structures"][0]["check_char"]);
}

#[test]
fn check_refuses_invalid_values_with_a_reason() {
    for (value, reason) in [
        ("A99992212345", "found 12 characters"),
        ("O99992212345X", "facility identification number"),
        ("XXA999925000042", "in the prefix CH"),
    ] {
        let output = coi_agent(&["isbt", "check", value]);
        assert_eq!(output.status.code(), Some(1), "{value}");
        assert!(output.stdout.is_empty());
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(err.contains(reason), "{value}: {err}");
    }
    let output = coi_agent(&["isbt", "check", "--flags", "CHA999925000042"]);
    assert_eq!(output.status.code(), Some(1));
}

/// ISO/IEC 7064 MOD 37-2, written here from the standard's definition (not the code under
/// test): P = ((P + value) × 2) mod 37 over the characters, check = (38 − P) mod 37, in the
/// alphabet 0–9, A–Z, `*`. Known values: A999925123456 → 9, CHA999925000042 → Z (the example
/// labels in docs/labels/).
fn mod37_2(data: &str) -> char {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*";
    let p = data.bytes().fold(0usize, |p, b| {
        let value = ALPHABET
            .iter()
            .position(|&a| a == b)
            .expect("an ISBT 128 character");
        ((p + value) * 2) % 37
    });
    char::from(ALPHABET[(38 - p) % 37])
}

#[test]
fn the_independent_check_agrees_with_the_printed_labels() {
    assert_eq!(mod37_2("A999925123456"), '9');
    assert_eq!(mod37_2("A999925123457"), '7');
    assert_eq!(mod37_2("CHA999925000043"), 'X');
}

/// The README names these `error_kind` codes of `isbt parse --json`: each is produced by a read
/// that has that fault (issue #18), and `]Q1` (QR Code) carries one structure like `]d1`.
#[test]
fn parse_json_names_each_documented_error_kind() {
    let cases = [
        ("=A9999221234", "wrong_length"),
        ("=A99992212345a00", "bad_character"),
        ("=G12341765432171", "flag_check_mismatch"),
        ("=+03000=A99992212345600", "compound_count_mismatch"),
        ("]C1=A99992212345600", "gs1_symbology"),
        ("]C4=A99992212345600", "symbology_mismatch"),
        ("=~X", "unknown_data_identifier"),
    ];
    let inputs: Vec<&str> = cases.iter().map(|(input, _)| *input).collect();
    let output = coi_agent(&[&["isbt", "parse", "--json"][..], &inputs].concat());
    assert_eq!(output.status.code(), Some(1));
    let lines = json_lines(&output);
    assert_eq!(lines.len(), cases.len());
    for ((input, kind), line) in cases.iter().zip(&lines) {
        assert_eq!(line["ok"], false, "{input}: {line}");
        assert_eq!(line["error_kind"], *kind, "{input}: {line}");
    }
    let qr = coi_agent(&["isbt", "parse", "--json", "]Q1=A99992212345600"]);
    assert_eq!(
        qr.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&qr.stdout)
    );
}

/// `--stdin` reads one scan per line (CR LF or LF) after the arguments; a line too long to be
/// a scan is refused as `too_long` and the next line is still read; data beginning with '-'
/// follows '--' (issue #16).
#[test]
fn parse_reads_scans_from_standard_input_one_per_line() {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_coi-agent"))
        .args(["isbt", "parse", "--json", "--stdin", "&/CHA999925000043"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let long = "=".repeat(5000);
    let input = format!("=A99992512345700\r\n{long}\n=<S1234100\n=A9999251234570");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1), "the long line is invalid");
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert_eq!(lines[0]["structures"][0]["coi"], "CHA999925000043");
    assert_eq!(lines[1]["input"], "=A99992512345700", "CR LF is not data");
    assert_eq!(lines[1]["structures"][0]["din"], "A999925123457");
    assert_eq!(lines[2]["error_kind"], "too_long");
    assert!(
        lines[2].get("input").is_none(),
        "the long line is not echoed"
    );
    assert_eq!(lines[3]["structures"][0]["number"], "003");
    assert_eq!(
        lines[4]["input"], "=A9999251234570",
        "a last line without newline"
    );
    assert_eq!(lines[4]["ok"], false);

    let dashed = coi_agent(&["isbt", "parse", "--json", "--", "-A99992512345700"]);
    assert_eq!(dashed.status.code(), Some(1));
    let lines = json_lines(&dashed);
    assert_eq!(lines[0]["input"], "-A99992512345700");
    assert_eq!(lines[0]["error_kind"], "no_data_identifier");
    let without = coi_agent(&["isbt", "parse", "-A99992512345700"]);
    assert_eq!(
        without.status.code(),
        Some(2),
        "without '--' it is an option"
    );
}

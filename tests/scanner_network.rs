//! Network scanners over real loopback TCP, keyboard-mode scanners through the evdev reader,
//! and `coi-agent scan` on standard input (issue #5).

#![allow(clippy::unwrap_used)] // test helpers fail loudly; that is their job

mod support;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use coi_agent::scanner::ScannerState;
use support::scanner::RunningScanner;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_client_reads_and_reconnects_when_the_scanner_drops() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let mut scanner = RunningScanner::start(&format!("tcp://{address}?suffix=crlf"));

    let (mut conn, _) = listener.accept().await.unwrap();
    scanner.wait_connected().await;
    conn.write_all(b"=A99992212345600\r\n&/CHA9999")
        .await
        .unwrap();
    assert_eq!(scanner.next_scan().await.raw, b"=A99992212345600");
    drop(conn); // the scanner drops mid-read
    let cut = scanner.next_scan().await;
    assert_eq!(cut.parse().unwrap_err().kind(), "cut_short");

    // It connects again by itself.
    let (mut conn, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .unwrap()
        .unwrap();
    scanner.wait_connected().await;
    conn.write_all(b"&/CHA999925000042\r\n").await.unwrap();
    assert_eq!(scanner.next_scan().await.raw, b"&/CHA999925000042");
    scanner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_listener_frames_each_connection_on_its_own() {
    let mut scanner = RunningScanner::start("tcp-listen://127.0.0.1:0?suffix=cr");
    let state = scanner.wait_connected().await;
    let ScannerState::Connected { detail } = &state else {
        panic!("{state}")
    };
    let port: u16 = detail.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(detail, &format!("listening on 127.0.0.1:{port}"));

    let mut a = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut b = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    // Interleaved halves: a connection's half read must never join the other's.
    a.write_all(b"=A9999221").await.unwrap();
    b.write_all(b"&/CHA99992").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    a.write_all(b"2345600\r").await.unwrap();
    b.write_all(b"5000042\r").await.unwrap();
    let mut got = [scanner.next_scan().await, scanner.next_scan().await];
    got.sort_by(|x, y| x.raw.cmp(&y.raw));
    assert_eq!(got[0].raw, b"&/CHA999925000042");
    assert_eq!(got[1].raw, b"=A99992212345600");
    // The source names the listener as configured and the peer it read from.
    assert!(got.iter().all(|s| {
        s.source
            .starts_with("tcp-listen://127.0.0.1:0 from 127.0.0.1:")
    }));
    scanner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evdev_reader_turns_key_events_into_a_scan() {
    // A plain file of input_event records stands in for /dev/input (no grab possible on it).
    let path = std::env::temp_dir().join(format!("coi-agent-evdev-{}", std::process::id()));
    let mut events = Vec::new();
    let mut key = |code: u16, value: i32| {
        events.extend_from_slice(&[0u8; 16]);
        events.extend_from_slice(&1u16.to_ne_bytes());
        events.extend_from_slice(&code.to_ne_bytes());
        events.extend_from_slice(&value.to_ne_bytes());
    };
    // "&/" then Enter: shift+7, slash, Enter.
    for (code, shift) in [(8u16, true), (53, false), (28, false)] {
        if shift {
            key(42, 1);
        }
        key(code, 1);
        key(code, 0);
        if shift {
            key(42, 0);
        }
    }
    std::fs::write(&path, &events).unwrap();
    let mut scanner = RunningScanner::start(&format!("evdev://{}?grab=false", path.display()));
    assert_eq!(scanner.next_scan().await.raw, b"&/");
    scanner.stop().await;
    let _ = std::fs::remove_file(&path);
}

#[test]
fn grabbing_something_that_is_not_an_input_device_is_refused() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let path =
            std::env::temp_dir().join(format!("coi-agent-evdev-grab-{}", std::process::id()));
        std::fs::write(&path, b"").unwrap();
        let mut scanner = RunningScanner::start(&format!("evdev://{}", path.display()));
        let state = scanner
            .wait_state("in error", |s| matches!(s, ScannerState::Error { .. }))
            .await;
        assert!(state.to_string().contains("grab"), "{state}");
        scanner.stop().await;
        let _ = std::fs::remove_file(&path);
    });
}

#[test]
fn scan_command_reads_stdin_as_json_lines_and_exits_at_its_end() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_coi-agent"))
        .args(["scan", "--source", "stdin:", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"]C0=A99992212345600\r=G12341765432171\r\x1d\r")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["ok"], true);
    assert_eq!(lines[0]["symbology"], "]C0");
    assert_eq!(lines[0]["source"], "stdin:");
    let hex: String = b"]C0=A99992212345600"
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(lines[0]["raw_hex"], hex.as_str());
    assert_eq!(lines[0]["structures"][0]["din"], "A999922123456");
    assert!(jiff::Timestamp::from_str(lines[0]["at"].as_str().unwrap()).is_ok());
    assert_eq!(
        (&lines[1]["ok"], &lines[1]["error_kind"]),
        (&false.into(), &"flag_check_mismatch".into())
    );
    assert_eq!(
        (&lines[2]["raw_hex"], &lines[2]["error_kind"]),
        (&"1d".into(), &"not_printable".into())
    );
}

#[test]
fn scan_command_stops_cleanly_on_sigterm() {
    let link = std::env::temp_dir().join(format!("coi-agent-sigterm-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_coi-agent"))
        .args(["scan", "--source", &format!("serial://{}", link.display())])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Signalled once it is at work (its first try at the port is said), not after a guessed
    // time: by then its handlers are in place.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    while !said.contains("scanner: error: open ") {
        let mut line = String::new();
        assert!(
            std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0,
            "ended before trying the port: {said}"
        );
        said.push_str(&line);
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    std::io::Read::read_to_string(&mut stderr, &mut said).unwrap();
    assert_eq!(output.status.code(), Some(0), "{said}");
}

use std::str::FromStr as _;

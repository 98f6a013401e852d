//! Issue #11: `coi-agent serve` killed with SIGKILL at random moments under a scan-and-print
//! workload, then restarted: every verdict that reached the event stream is in the journal, the
//! audit chain verifies, and no custody event reaches central twice as a new event. CI runs a few
//! rounds; the soak runs 200 (`COI_AGENT_CRASH_ROUNDS=200 cargo test --release --test
//! serve_crash`, or scripts/soak-serve.sh).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod support;
use support::central::Central;
use support::tempdb::TempDb;

const SITE: &str = "site-crash-1";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Order `i`: collected here (labels printed here, 2 bags) when `print`, else made elsewhere and
/// shipped here (received here, 1 bag).
fn order(i: usize, print: bool) -> Value {
    let demo: Value = serde_json::from_str(coi_agent::config::DEMO_ORDERS).unwrap();
    let mut order = demo["orders"][0].clone();
    order["coi"] = json!(format!("CHA999925{:06}", 500_000 + i));
    order["order_id"] = json!(format!("ORD-{i}"));
    order["collection"]["din"] = json!(format!("A999925{:06}", 500_000 + i));
    order["expires_at"] = json!("2099-12-31T23:59:00-05:00");
    if print {
        order["status"] = json!("scheduled");
        order["collection"]["facility"]["site_id"] = json!(SITE);
        order["collection"]["bags"] = json!(2);
    } else {
        order["status"] = json!("shipped");
        order["manufacturing"]["facility"]["site_id"] = json!(SITE);
        order["collection"]["bags"] = json!(1);
    }
    order
}

/// A running daemon, killed when dropped (a failing assertion never leaves it running).
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Site {
    dir: TempDb,
    port: u16,
}

impl Site {
    fn serve(&self) -> Daemon {
        Daemon(
            Command::new(env!("CARGO_BIN_EXE_coi-agent"))
                .args(["serve", "--config"])
                .arg(self.dir.0.parent().unwrap().join("coi-agent.toml"))
                .env("COI_AGENT_LOG", "error")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }
}

async fn ready(http: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(response) = http.get(format!("{base}/readyz")).send().await {
            let ready: Value = response.json().await.unwrap_or_default();
            if ready["orders"]["count"].as_u64().is_some_and(|n| n > 0) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "serve not ready");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A cheap deterministic spread of kill moments.
fn pause(round: usize) -> Duration {
    Duration::from_millis(30 + (round as u64 * 7919) % 400)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r11_serve_killed_at_random_moments_loses_no_shown_verdict_and_no_event() {
    let rounds: usize = std::env::var("COI_AGENT_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(4);
    let central = Central::start().await;
    let dir = TempDb::new("serve-crash");
    let base_dir = dir.0.parent().unwrap().to_path_buf();
    let per_round = 6;
    let mut orders = Vec::new();
    for i in 0..rounds * per_round {
        orders.push(order(i, false));
        orders.push(order(100_000 + i, true));
    }
    std::fs::write(
        base_dir.join("orders.json"),
        json!({ "orders": orders }).to_string(),
    )
    .unwrap();
    support::central::write_token(&base_dir.join("central.token"));
    let port = free_port();
    std::fs::write(
        base_dir.join("coi-agent.toml"),
        format!(
            "[site]\nid = \"{SITE}\"\nworkstation = \"crash-ws\"\n[journal]\npath = \"journal.sqlite\"\n\
             [orders]\nsource = \"file\"\nfile = \"orders.json\"\n\
             [central]\nurl = \"{}\"\ntoken_file = \"central.token\"\ntimeout_secs = 2\n\
             [[printers]]\nname = \"spool\"\nuri = \"spool://spool\"\n\
             [api]\nlisten = \"127.0.0.1:{port}\"\n",
            central.url
        ),
    )
    .unwrap();
    let site = Site { dir, port };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}", site.port);

    // Scan id -> verdict, as the event stream showed it.
    let mut shown: HashMap<i64, String> = HashMap::new();
    for round in 0..rounds {
        let child = site.serve();
        ready(&http, &base).await;
        let token = std::fs::read_to_string(base_dir.join("api.token")).unwrap();
        let token = token.trim().to_owned();
        let mut events = http
            .get(format!("{base}/api/v1/events"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        // The workload: receipts and labels, concurrently, until the kill.
        let workload = {
            let (http, base, token) = (http.clone(), base.clone(), token.clone());
            tokio::spawn(async move {
                for k in 0..per_round {
                    let i = round * per_round + k;
                    let receipt = http
                        .post(format!("{base}/api/v1/scans"))
                        .bearer_auth(&token)
                        .json(&json!({"data": format!("=A999925{:06}01", 500_000 + i), "step": "receipt"}))
                        .send();
                    let label = http
                        .post(format!(
                            "{base}/api/v1/orders/CHA999925{:06}/bags/{}/labels",
                            600_000 + i,
                            1 + k % 2
                        ))
                        .bearer_auth(&token)
                        .json(&json!({"operator": "nurse-1"}))
                        .send();
                    let _ = tokio::join!(receipt, label);
                }
            })
        };
        let deadline = tokio::time::Instant::now() + pause(round);
        let mut buffer = String::new();
        loop {
            match tokio::time::timeout_at(deadline, events.chunk()).await {
                Ok(Ok(Some(chunk))) => buffer.push_str(&String::from_utf8_lossy(&chunk)),
                _ => break,
            }
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                if block.contains("event: scan") {
                    let data = block.lines().find_map(|l| l.strip_prefix("data:")).unwrap();
                    let scan: Value = serde_json::from_str(data.trim()).unwrap();
                    shown.insert(
                        scan["id"].as_i64().unwrap(),
                        scan["verdict"].as_str().unwrap().to_owned(),
                    );
                }
            }
        }
        drop(child);
        workload.abort();
    }

    // After the last restart, everything recorded reaches central.
    let child = site.serve();
    ready(&http, &base).await;
    let journal_path = base_dir.join("journal.sqlite");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let journal = coi_agent::journal::Journal::open_read_only(&journal_path).unwrap();
        if journal.pending_event_ids().unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the outbox did not drain");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(child);

    let journal = coi_agent::journal::Journal::open_read_only(&journal_path).unwrap();
    let recorded = journal.recent_scans(100_000).unwrap();
    for (id, verdict) in &shown {
        let row = recorded
            .iter()
            .find(|row| row.id == *id)
            .unwrap_or_else(|| panic!("scan {id} was shown but is not in the journal"));
        assert_eq!(&row.verdict, verdict, "scan {id}");
    }
    assert!(
        journal.verify_audit().unwrap().is_ok(),
        "the audit chain verifies"
    );
    let status = journal.outbox_status().unwrap();
    let central_events = central.recorded().events.clone();
    let mut ids: Vec<&String> = central_events.iter().map(|(id, _, _)| id).collect();
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before, "an event reached central twice as new");
    assert_eq!(
        status.delivered as usize,
        central_events.len(),
        "every delivered event is at central once"
    );
    assert!(status.parked.is_empty(), "{:?}", status.parked);
    eprintln!(
        "{rounds} rounds: {} verdicts shown, {} scans recorded, {} events at central ({} repeats recognised)",
        shown.len(),
        recorded.len(),
        central_events.len(),
        central.recorded().duplicates
    );
}

//! `coi-agent serve` under a site's load (issue #11): the release binary with 10 000 cached
//! orders and 100 000 past receipts, a scanner on a real pseudo-terminal. Measures how soon
//! `/readyz` answers 200 after start, the idle footprint (RSS, CPU over a minute), and scan →
//! verdict durable and on the event stream at 10 scans/s (p50, p99, max). A load script, not a
//! criterion benchmark. Results and method: BENCHMARKS.md. Run with
//! `cargo bench --bench serve_latency` (about two minutes; `SERVE_BENCH_IDLE_SECS` shortens the
//! idle minute).

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a measurement script: fail loudly, print

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use coi_agent::journal::{Journal, ScanRecord, utc_text};
use coi_agent::reconcile::Verdict;
use serde_json::{Value, json};

const ORDERS: usize = 10_000;
const PAST_RECEIPTS: usize = 100_000;
const SCANS: usize = 300;

fn order(i: usize, template: &Value) -> Value {
    let mut order = template.clone();
    order["coi"] = json!(format!("CHA999925{:06}", 300_000 + i));
    order["order_id"] = json!(format!("ORD-25-{:06}", 300_000 + i));
    order["status"] = json!("shipped");
    order["collection"]["din"] = json!(format!("A999925{:06}", 300_000 + i));
    order["collection"]["bags"] = json!(1);
    order["expires_at"] = json!("2099-12-31T23:59:00-05:00");
    order
}

fn main() {
    let dir = std::env::temp_dir().join(format!("coi-agent-serve-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let demo: Value = serde_json::from_str(coi_agent::config::DEMO_ORDERS).unwrap();
    let template = &demo["orders"][1];
    let orders: Vec<Value> = (0..ORDERS).map(|i| order(i, template)).collect();
    std::fs::write(
        dir.join("orders.json"),
        json!({ "orders": orders }).to_string(),
    )
    .unwrap();

    let link = dir.join("ttyScanner");
    let (mut master, slave) = coi_agent::sys::openpty().unwrap();
    std::os::unix::fs::symlink(&slave, &link).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join("coi-agent.toml");
    std::fs::write(
        &config,
        format!(
            "[site]\nid = \"site-lab-1\"\nworkstation = \"bench\"\n[journal]\npath = \"journal.sqlite\"\n\
             [orders]\nsource = \"file\"\nfile = \"orders.json\"\n[api]\nlisten = \"127.0.0.1:{port}\"\n\
             [[scanners]]\nname = \"dock\"\nsource = \"serial://{}?suffix=cr\"\nstep = \"receipt\"\n",
            link.display()
        ),
    )
    .unwrap();

    // The cache and a site's history: 100 000 receipts of earlier orders.
    let binary = env!("CARGO_BIN_EXE_coi-agent");
    let synced = Command::new(binary)
        .args(["orders", "sync", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        synced.status.success(),
        "{}",
        String::from_utf8_lossy(&synced.stderr)
    );
    let mut journal = Journal::open(&dir.join("journal.sqlite")).unwrap();
    let at = utc_text(jiff::Timestamp::now());
    for batch in 0..PAST_RECEIPTS / 1000 {
        let verdicts: Vec<Verdict> = (0..1000)
            .map(|i| {
                let n = batch * 1000 + i;
                Verdict {
                    coi: coi_agent::isbt128::coi::CoiId::parse(&format!("CHA999924{n:06}")).ok(),
                    din: coi_agent::isbt128::din::Din::parse(&format!("A999924{n:06}")).ok(),
                    bag: Some(1),
                    ..Verdict::bare(coi_agent::reconcile::Outcome::Match, "MATCH".to_owned())
                }
            })
            .collect();
        let records: Vec<_> = verdicts
            .iter()
            .map(|verdict| {
                (
                    ScanRecord {
                        at: &at,
                        source: "history",
                        raw: b"",
                        parse_error: None,
                        verdict,
                        site_id: "site-lab-1",
                        step: "receipt",
                        operator: None,
                    },
                    Vec::new(),
                )
            })
            .collect();
        journal.record_scans(&records).unwrap();
    }
    // A tech who watches the receipt screen during the screen phase.
    let hash = coi_agent::operators::hash_pin("222222").unwrap();
    journal
        .add_operator(
            "bench-tech",
            "Bench Tech",
            coi_agent::operators::Role::Tech,
            &hash,
            None,
        )
        .unwrap()
        .unwrap();
    drop(journal);

    // Ready: from spawn to the first 200 of /readyz.
    let started = Instant::now();
    let mut child = Command::new(binary)
        .args(["serve", "--config"])
        .arg(&config)
        .env("COI_AGENT_LOG", "warn")
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let ready = runtime.block_on(async {
        loop {
            if let Ok(response) = http.get(format!("{base}/readyz")).send().await
                && response.status() == 200
            {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "serve never ready"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    println!(
        "ready: /readyz 200 after {ready:?} ({ORDERS} cached orders, {PAST_RECEIPTS} past receipts)"
    );

    // Idle: RSS and CPU time over a minute.
    let idle = std::env::var("SERVE_BENCH_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60u64);
    std::thread::sleep(Duration::from_secs(2));
    let cpu_before = cpu_ticks(child.id());
    std::thread::sleep(Duration::from_secs(idle));
    let cpu_after = cpu_ticks(child.id());
    let rss = rss_kib(child.id());
    let ticks = cpu_after - cpu_before;
    println!(
        "idle: RSS {:.1} MiB; CPU {ticks} ticks in {idle} s ({:.2} %)",
        rss as f64 / 1024.0,
        ticks as f64 / (idle as f64 * 100.0) * 100.0
    );

    // Scan -> verdict on the event stream, at 10 scans/s.
    let token = std::fs::read_to_string(dir.join("api.token"))
        .unwrap()
        .trim()
        .to_owned();
    let mut latencies = runtime.block_on(async {
        let mut events = http
            .get(format!("{base}/api/v1/events"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let mut buffer = String::new();
        let mut latencies = Vec::with_capacity(SCANS);
        let begin = Instant::now();
        for i in 0..SCANS {
            let due = begin + Duration::from_millis(100 * i as u64);
            tokio::time::sleep(due.saturating_duration_since(Instant::now())).await;
            // The label's Data Matrix: DIN and COI identifier in one read (issue #17).
            let n = 300_000 + i;
            let frame = format!("=+02000=A999925{n:06}01&/CHA999925{n:06}\r");
            let written = Instant::now();
            master.write_all(frame.as_bytes()).unwrap();
            let scan = loop {
                if let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    if block.contains("event: scan") {
                        let data = block
                            .lines()
                            .find_map(|l| l.strip_prefix("data:"))
                            .unwrap()
                            .trim()
                            .to_owned();
                        break serde_json::from_str::<Value>(&data).unwrap();
                    }
                    continue;
                }
                let chunk = events.chunk().await.unwrap().unwrap();
                buffer.push_str(&String::from_utf8_lossy(&chunk));
            };
            latencies.push(written.elapsed());
            assert_eq!(scan["verdict"], "match", "{scan}");
        }
        latencies
    });
    report(
        "scan on the pty -> verdict on the event stream",
        &mut latencies,
    );

    // Scan -> the MATCH fragment on the receipt screen's stream (issue #12: within 1 s), with
    // the screen's lists (recent scans, orders in transit) rendered after each verdict.
    let mut screen = runtime.block_on(async {
        let signer = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let signed_in = signer
            .post(format!("{base}/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("operator=bench-tech&pin=222222")
            .send()
            .await
            .unwrap();
        let cookie = signed_in.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let mut events = http
            .get(format!("{base}/ui/events/receive"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(events.status(), 200);
        let mut buffer = String::new();
        let mut latencies = Vec::with_capacity(SCANS);
        let begin = Instant::now();
        for i in 0..SCANS {
            let due = begin + Duration::from_millis(100 * i as u64);
            tokio::time::sleep(due.saturating_duration_since(Instant::now())).await;
            let n = 300_000 + 2 * SCANS + i;
            let frame = format!("=+02000=A999925{n:06}01&/CHA999925{n:06}\r");
            let written = Instant::now();
            master.write_all(frame.as_bytes()).unwrap();
            loop {
                if let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    if block.starts_with("event: verdict") || block.contains("\nevent: verdict") {
                        assert!(block.contains("data-verdict=\"match\""), "{block}");
                        break;
                    }
                    continue;
                }
                let chunk = events.chunk().await.unwrap().unwrap();
                buffer.push_str(&String::from_utf8_lossy(&chunk));
            }
            latencies.push(written.elapsed());
        }
        latencies
    });
    report(
        "scan on the pty -> MATCH on the receipt screen's stream",
        &mut screen,
    );

    // The same record through the API (no pty, no event stream): POST /api/v1/scans.
    let mut posted = runtime.block_on(async {
        let mut latencies = Vec::with_capacity(SCANS);
        let begin = Instant::now();
        for i in 0..SCANS {
            let due = begin + Duration::from_millis(100 * i as u64);
            tokio::time::sleep(due.saturating_duration_since(Instant::now())).await;
            let written = Instant::now();
            let response = http
                .post(format!("{base}/api/v1/scans"))
                .bearer_auth(&token)
                .json(&{
                    let n = 300_000 + SCANS + i;
                    json!({"entry": "scanner", "scanner": "bench", "step": "receipt",
                           "data": format!("=+02000=A999925{n:06}01&/CHA999925{n:06}")})
                })
                .send()
                .await
                .unwrap();
            let scan: Value = response.json().await.unwrap();
            latencies.push(written.elapsed());
            assert_eq!(scan["verdict"], "match", "{scan}");
        }
        latencies
    });
    report("POST /api/v1/scans -> recorded verdict", &mut posted);

    // The floor: an HTTP round trip that touches nothing (GET /livez).
    let mut floor = runtime.block_on(async {
        let mut latencies = Vec::with_capacity(SCANS);
        let begin = Instant::now();
        for i in 0..SCANS {
            let due = begin + Duration::from_millis(100 * i as u64);
            tokio::time::sleep(due.saturating_duration_since(Instant::now())).await;
            let written = Instant::now();
            let response = http.get(format!("{base}/livez")).send().await.unwrap();
            response.bytes().await.unwrap();
            latencies.push(written.elapsed());
        }
        latencies
    });
    report("GET /livez (the HTTP round trip alone)", &mut floor);

    let stop = Instant::now();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    println!("SIGTERM: exited {status} after {:?}", stop.elapsed());
    let _ = std::fs::remove_dir_all(&dir);
}

fn report(what: &str, latencies: &mut [Duration]) {
    latencies.sort();
    let pick = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{what}, {} at 10/s: p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        pick(0.5),
        pick(0.99),
        latencies[latencies.len() - 1]
    );
}

/// utime + stime of `pid`, in clock ticks (100 per second on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

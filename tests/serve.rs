//! Issue #11: `coi-agent serve` end to end, with real parts: the agent run in-process on a
//! SQLite journal, a pseudo-terminal scanner and a TCP scanner, the Zebra emulator, the test
//! central service over HTTP, and the local API over HTTP — scans arrive as verdicts on the
//! event stream and as events at central with no manual command; orders changed at central are
//! used after a refresh; a nurse prints and verifies through the API; the API refuses what it
//! must; the binary stops on SIGTERM within 5 s.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use coi_agent::config::Config;
use coi_agent::printer::emulator::{EmulatedFault, Emulator};
use serde_json::{Value, json};

mod support;
use support::central::Central;
use support::pty::Pty;
use support::tempdb::TempDb;

const ORDERS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/example-orders.json"
);

/// The example orders, expiring in 2099.
fn orders() -> Vec<Value> {
    let mut orders: Value =
        serde_json::from_str(&std::fs::read_to_string(ORDERS).unwrap()).unwrap();
    let list = orders["orders"].as_array_mut().unwrap();
    for order in list.iter_mut() {
        order["expires_at"] = "2099-12-31T23:59:00-05:00".into();
    }
    list.clone()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The DIN barcode of bag `bag` (flags 0n).
/// The Data Matrix of bag `bag` of the demonstration order with DIN `din`: its DIN and COI
/// identifier (issue #17: one alone is never a match).
fn din_scan(din: &str, bag: u8) -> String {
    let coi = match din {
        "A999925123456" => "CHA999925000042",
        _ => "CHA999925000043",
    };
    format!("=+02000={din}{bag:02}&/{coi}")
}

/// An agent running in this process, with its API's address and token.
struct Workstation {
    dir: TempDb,
    base: String,
    token: String,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Workstation {
    /// Starts an agent at `site` with `extra` configuration (printers, scanners, orders).
    async fn start(name: &str, site: &str, orders_toml: &str, extra: &str) -> Workstation {
        let dir = TempDb::new(name);
        let base_dir = dir.0.parent().unwrap().to_path_buf();
        let port = free_port();
        let text = format!(
            "[site]\nid = \"{site}\"\nworkstation = \"ws-{name}\"\n[journal]\npath = \"journal.sqlite\"\n\
             {orders_toml}\n[api]\nlisten = \"127.0.0.1:{port}\"\ntoken_file = \"api.token\"\n{extra}"
        );
        std::fs::write(base_dir.join("coi-agent.toml"), &text).unwrap();
        let config = Config::load(&base_dir.join("coi-agent.toml")).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(coi_agent::agent::run(config, async move {
            let _ = stopped.await;
        }));
        let base = format!("http://127.0.0.1:{port}");
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // Ready, with the first order sync done.
            if let Ok(response) = http.get(format!("{base}/readyz")).send().await {
                let ready: Value = response.json().await.unwrap_or_default();
                if ready["orders"]["count"].as_u64().is_some_and(|n| n > 0) {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "serve did not become ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let token = std::fs::read_to_string(base_dir.join("api.token"))
            .unwrap()
            .trim()
            .to_owned();
        Workstation {
            dir,
            base,
            token,
            http,
            stop: Some(stop),
            task: Some(task),
        }
    }

    fn dir(&self) -> PathBuf {
        self.dir.0.parent().unwrap().to_path_buf()
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Opens the event stream.
    async fn events(&self) -> Events {
        let response = self
            .http
            .get(format!("{}/api/v1/events", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        Events {
            response,
            buffer: String::new(),
        }
    }

    /// Stops the agent as SIGTERM would and checks it returns in time; the directory is kept
    /// while the returned value lives.
    async fn stop(mut self) -> TempDb {
        let started = Instant::now();
        let _ = self.stop.take().unwrap().send(());
        let res = tokio::time::timeout(Duration::from_secs(5), self.task.take().unwrap())
            .await
            .expect("the agent stops within 5 s");
        res.unwrap().unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        self.dir
    }
}

struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    /// The next event of kind `kind` (others are skipped), within `wait`.
    async fn next(&mut self, kind: &str, wait: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = "message";
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event:") {
                        event = if name.trim() == kind { kind } else { "other" };
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if event == kind {
                    return serde_json::from_str(&data).unwrap();
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .unwrap_or_else(|_| panic!("no {kind} event in {wait:?}"))
                .unwrap()
                .expect("the stream stays open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

async fn eventually(what: &str, wait: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + wait;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {wait:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn file_orders(dir: &Path, orders: &[Value]) -> String {
    std::fs::write(
        dir.join("orders.json"),
        json!({ "orders": orders }).to_string(),
    )
    .unwrap();
    "[orders]\nsource = \"file\"\nfile = \"orders.json\"\n".to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r11_scans_reach_the_event_stream_and_central_and_orders_refresh_without_a_command() {
    let central = Central::start().await;
    let mut example = orders();
    {
        let mut recorded = central.recorded();
        for order in &example {
            recorded.orders.push((
                "site-lab-1".into(),
                "2025-01-01T00:00:00Z".into(),
                order.clone(),
            ));
        }
    }
    let link = std::env::temp_dir().join(format!("coi-agent-serve-tty-{}", std::process::id()));
    let mut scanner = Pty::open_at(&link);
    let token_dir = TempDb::new("serve-central-token");
    let token_file = token_dir.0.parent().unwrap().join("central.token");
    support::central::write_token(&token_file);
    let orders_toml = format!(
        "[orders]\nsource = \"central\"\nrefresh_secs = 1\n[central]\nurl = \"{}\"\ntoken_file = \"{}\"\ntimeout_secs = 2\n",
        central.url,
        token_file.display()
    );
    let scanners = format!(
        "[[scanners]]\nname = \"dock\"\nsource = \"serial://{}?baud=9600&suffix=cr\"\nstep = \"receipt\"\n",
        link.display()
    );
    let ws = Workstation::start("serve-e2e", "site-lab-1", &orders_toml, &scanners).await;
    let mut events = ws.events().await;
    // The scanner is read once its device is open.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, ready) = ws.get("/readyz").await;
        if ready["scanners"][0]["state"] == "connected" && ready["orders"]["count"] == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "scanner not connected or orders not synced: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A shipped bag arrives: MATCH on the stream, bag_received at central, with no command.
    scanner.write(format!("{}\r", din_scan("A999925123457", 1)).as_bytes());
    let scan = events.next("scan", Duration::from_secs(5)).await;
    assert_eq!(scan["verdict"], "match", "{scan}");
    assert_eq!(scan["step"], "receipt");
    assert_eq!(scan["coi"], "CHA999925000043");
    let (_, recent) = ws.get("/api/v1/scans?limit=5").await;
    assert_eq!(
        recent["scans"][0], scan,
        "the stream shows what the journal holds"
    );
    eventually(
        "bag_received reaches central",
        Duration::from_secs(5),
        || {
            central
                .recorded()
                .events
                .iter()
                .any(|(_, coi, e)| coi == "CHA999925000043" && e["type"] == "bag_received")
        },
    )
    .await;

    // Bag 1 of the scheduled order is not expected here yet...
    scanner.write(format!("{}\r", din_scan("A999925123456", 1)).as_bytes());
    let scan = events.next("scan", Duration::from_secs(5)).await;
    assert_eq!(scan["verdict"], "mismatch");
    assert_eq!(scan["reason"], "wrong_status", "{scan}");
    // ...until central says it shipped; the agent refreshes by itself.
    example[0]["status"] = "shipped".into();
    central.recorded().orders.push((
        "site-lab-1".into(),
        coi_agent::journal::utc_text(jiff::Timestamp::now()),
        example[0].clone(),
    ));
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let (_, order) = ws.get("/api/v1/orders/CHA999925000042").await;
        if order["status"] == "shipped" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the refresh did not bring the change: {order}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    scanner.write(format!("{}\r", din_scan("A999925123456", 1)).as_bytes());
    let scan = events.next("scan", Duration::from_secs(5)).await;
    assert_eq!(scan["verdict"], "match", "{scan}");
    // The same bag again is a duplicate, never a second receipt.
    scanner.write(format!("{}\r", din_scan("A999925123456", 1)).as_bytes());
    let scan = events.next("scan", Duration::from_secs(5)).await;
    assert_eq!(scan["reason"], "already_received", "{scan}");

    // Stopping: a scan written just before is still judged and recorded.
    scanner.write(format!("{}\r", din_scan("A999925123456", 2)).as_bytes());
    let shown = events.next("scan", Duration::from_secs(5)).await;
    let dir = ws.dir();
    let _kept = ws.stop().await;
    let journal = coi_agent::journal::Journal::open_read_only(&dir.join("journal.sqlite")).unwrap();
    let ids = journal.scan_ids().unwrap();
    assert_eq!(ids.len(), 5);
    assert_eq!(
        shown["id"],
        json!(ids[4]),
        "every shown verdict is recorded"
    );
    assert!(journal.verify_audit().unwrap().is_ok());
    scanner.unplug();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r11_a_nurse_prints_and_verifies_through_the_api() {
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    emulator.set_print_delay(Duration::from_millis(50));
    let verify_port = free_port();
    let dir = TempDb::new("serve-print-orders");
    let orders_toml = file_orders(dir.0.parent().unwrap(), &orders());
    let extra = format!(
        "[[printers]]\nname = \"bench-1\"\nuri = \"tcp://{}\"\nprofile = \"Zebra ZT411 300 dpi\"\n\
         [[scanners]]\nname = \"bench-scanner\"\nsource = \"tcp-listen://127.0.0.1:{verify_port}\"\nstep = \"verify\"\n",
        emulator.address()
    );
    let orders_toml = orders_toml.replace(
        "orders.json",
        &dir.0
            .parent()
            .unwrap()
            .join("orders.json")
            .display()
            .to_string(),
    );
    let ws = Workstation::start("serve-print", "site-apheresis-1", &orders_toml, &extra).await;
    let mut events = ws.events().await;
    let labels = "/api/v1/orders/CHA999925000042/bags/1/labels";

    let (status, printed) = ws.post(labels, &json!({"operator": "nurse-7"})).await;
    assert_eq!(status, 201, "{printed}");
    assert_eq!(printed["state"], "confirmed");
    assert_eq!(printed["event"], "label_printed");
    assert_eq!(printed["dpi"], 300);
    assert_eq!(printed["message"], "PRINTED (confirmed by the printer)");
    assert_eq!(emulator.printed().len(), 1);
    let job = events.next("job", Duration::from_secs(2)).await;
    assert_eq!(job["state"], "queued");

    // A second label for the bag only as a reprint.
    let (status, refused) = ws.post(labels, &json!({"operator": "nurse-7"})).await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("may already carry a label"),
        "{refused}"
    );
    let (status, reprinted) = ws
        .post(
            labels,
            &json!({"operator": "nurse-7", "reprint": true, "reason": "label smudged"}),
        )
        .await;
    assert_eq!(status, 201, "{reprinted}");
    assert_eq!(reprinted["event"], "label_reprinted");

    // The nurse scans the new label on the bag: matched to its job with no id typed.
    let mut scanner = tokio::net::TcpStream::connect(("127.0.0.1", verify_port))
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut scanner,
        format!("{}\r", din_scan("A999925123456", 1)).as_bytes(),
    )
    .await
    .unwrap();
    let scan = events.next("scan", Duration::from_secs(5)).await;
    assert_eq!(scan["verdict"], "match", "{scan}");
    assert_eq!(scan["verification"], "verified");
    assert_eq!(
        scan["job_id"], reprinted["job_id"],
        "the latest label of the bag"
    );
    // Scanned again: said to be done, nothing sent, not "print it first".
    tokio::io::AsyncWriteExt::write_all(
        &mut scanner,
        format!("{}\r", din_scan("A999925123456", 1)).as_bytes(),
    )
    .await
    .unwrap();
    let again = events.next("scan", Duration::from_secs(5)).await;
    assert_eq!(again["verdict"], "match", "{again}");
    assert!(
        again["message"]
            .as_str()
            .unwrap()
            .contains("already checked"),
        "{again}"
    );
    assert_eq!(again["job_id"], reprinted["job_id"]);

    // Bag 2 has no label yet: its scan matches nothing waiting and flags nothing.
    let (status, scan) = ws
        .post(
            "/api/v1/scans",
            &json!({"entry": "scanner", "scanner": "bench", "data": din_scan("A999925123456", 2), "step": "verify", "operator": "nurse-7"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(scan["reason"], "not_expected", "{scan}");

    let (_, order) = ws.get("/api/v1/orders/CHA999925000042").await;
    assert_eq!(
        order["bag_labels"][0]["verification"], "verified",
        "{order}"
    );
    assert_eq!(order["bag_labels"][1]["state"], "none");
    assert!(
        order.get("patient").is_none(),
        "no patient data unless asked"
    );
    let (_, order) = ws.get("/api/v1/orders/CHA999925000042?patient=true").await;
    assert!(order["patient"]["family_name"].is_string(), "{order}");

    // Issue #13: the verified label turns out wrong: voided, with its reason; the bag is free.
    let void = format!(
        "/api/v1/jobs/{}/void",
        reprinted["job_id"].as_str().unwrap()
    );
    let (status, answer) = ws.post(&void, &json!({"operator": "nurse-7"})).await;
    assert_eq!(status, 400, "a reason is required: {answer}");
    let (status, voided) = ws
        .post(
            &void,
            &json!({"reason": "wrong bag", "operator": "nurse-7"}),
        )
        .await;
    assert_eq!(status, 200, "{voided}");
    assert_eq!(voided["state"], "voided");
    let (status, _) = ws.post(&void, &json!({"reason": "again"})).await;
    assert_eq!(status, 409, "voided once");
    let (status, _) = ws
        .post("/api/v1/jobs/no-such-job/void", &json!({"reason": "x"}))
        .await;
    assert_eq!(status, 404);
    let (_, order) = ws.get("/api/v1/orders/CHA999925000042").await;
    assert_ne!(
        order["bag_labels"][0]["job_id"], reprinted["job_id"],
        "the voided job is not the bag's label: {order}"
    );

    // Media out: refused before sending, the fault named.
    emulator.set_fault(EmulatedFault::MediaOut, true);
    let (status, failed) = ws
        .post("/api/v1/orders/CHA999925000042/bags/2/labels", &json!({}))
        .await;
    assert_eq!(status, 503, "{failed}");
    assert_eq!(failed["state"], "failed");
    assert_eq!(failed["fault"], "media_out");
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .starts_with("FAILED (media_out)"),
        "{failed}"
    );
    assert_eq!(emulator.printed().len(), 2);
    // An empty body is the default label (no Content-Type needed): judged, not refused as 400.
    let response = ws
        .http
        .post(format!(
            "{}/api/v1/orders/CHA999925000042/bags/2/labels",
            ws.base
        ))
        .bearer_auth(&ws.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503, "the printer is still out of media");
    let _ = ws.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r11_the_api_refuses_what_it_must_and_records_nothing() {
    let dir = TempDb::new("serve-guards-orders");
    let orders_toml = file_orders(dir.0.parent().unwrap(), &orders()).replace(
        "orders.json",
        &dir.0
            .parent()
            .unwrap()
            .join("orders.json")
            .display()
            .to_string(),
    );
    let ws = Workstation::start("serve-guards", "site-lab-1", &orders_toml, "").await;
    let scans = format!("{}/api/v1/scans", ws.base);
    let body = json!({"entry": "scanner", "scanner": "bench", "data": din_scan("A999925123457", 1), "step": "receipt"});

    let response = ws.http.post(&scans).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 401, "no token");
    let response = ws
        .http
        .post(&scans)
        .bearer_auth("not-the-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "wrong token");
    let response = ws
        .http
        .get(format!("{}/api/v1/orders", ws.base))
        .bearer_auth(&ws.token)
        .header("host", "evil.example:80")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "a foreign Host (DNS rebinding)");
    let response = ws
        .http
        .post(&scans)
        .bearer_auth(&ws.token)
        .header("origin", "https://evil.example")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403, "a POST from another site");
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let post_raw = |body: Vec<u8>, content_type: &'static str| {
        ws.http
            .post(&scans)
            .bearer_auth(&ws.token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    for (body, content_type, says) in [
        (b"=A99992512345701".to_vec(), "text/plain", "must be JSON"),
        (
            b"{\"data\": ".to_vec(),
            "application/json",
            "not valid JSON",
        ),
        (
            br#"{"entry": "scanner", "scanner": "bench", "data": "=A99992512345701", "step": "receipt", "patient": "x"}"#.to_vec(),
            "application/json",
            "unknown field `patient`",
        ),
        (
            // A key with an escape sequence is named printably, and a long one cut short.
            br#"{"\u001b[31mX": 1}"#.to_vec(),
            "application/json",
            "field \\u{1b}[31mX: unknown field `\\u{1b}[31mX`",
        ),
        (
            json!({"k".repeat(500): 1}).to_string().into_bytes(),
            "application/json",
            "unknown field `kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk…`, expected",
        ),
        (
            json!({"data": "A".repeat(70_000), "step": "receipt"})
                .to_string()
                .into_bytes(),
            "application/json",
            "larger than 65536 bytes",
        ),
    ] {
        let response = post_raw(body, content_type).await.unwrap();
        assert_eq!(response.status(), 400);
        let answer: Value = response.json().await.unwrap();
        assert!(answer["error"].as_str().unwrap().contains(says), "{answer}");
    }
    for (body, says) in [
        (
            json!({"entry": "scanner", "scanner": "bench", "data": "=A99992512345701", "step": "receipt", "operator": "x".repeat(65)}),
            "field operator",
        ),
        (
            json!({"entry": "scanner", "scanner": "bench", "data": "=A99992512345701", "step": "receipt", "operator": "nurse\u{1b}[2J"}),
            "field operator",
        ),
        (
            json!({"entry": "scanner", "scanner": "bench", "data": "=".repeat(1025), "step": "receipt"}),
            "longer than a scan",
        ),
        (
            json!({"entry": "scanner", "scanner": "bench", "data": "=A99992512345701", "step": "receive"}),
            "field step",
        ),
        // Issue #17: raw data only from a named scanner; anything else is typed, as printed.
        (
            json!({"data": "=A99992512345701", "step": "receipt"}),
            "raw scanner data needs",
        ),
        (
            json!({"entry": "scanner", "data": "=A99992512345701", "step": "receipt"}),
            "entry scanner",
        ),
        (
            json!({"din": "A9999 25 123457 X", "step": "receipt"}),
            "fields din and coi",
        ),
        (
            json!({"entry": "keyboard", "din": "A9999 25 123457", "step": "receipt"}),
            "field entry",
        ),
    ] {
        let (status, answer) = ws.post("/api/v1/scans", &body).await;
        assert_eq!(status, 400, "{answer}");
        assert!(answer["error"].as_str().unwrap().contains(says), "{answer}");
    }
    // Typed without the boxed check characters, or with a wrong one: refused before anything
    // is looked up.
    let din = coi_agent::isbt128::din::Din::parse("A999925123457").unwrap();
    let coi = coi_agent::isbt128::coi::CoiId::parse("CHA999925000043").unwrap();
    let (k, z) = (
        din.check_character().as_char(),
        coi.check_character().as_char(),
    );
    let wrong = if k == 'A' { 'B' } else { 'A' };
    for (typed_din, typed_coi) in [
        (
            "A9999 25 123457".to_owned(),
            format!("CH A9999 25 000043 {z}"),
        ),
        (
            format!("A9999 25 123457 {wrong}"),
            format!("CH A9999 25 000043 {z}"),
        ),
        (
            format!("A9999 25 123457 {k}"),
            "CH A9999 25 000043".to_owned(),
        ),
    ] {
        let (status, answer) = ws
            .post(
                "/api/v1/scans",
                &json!({"din": typed_din, "coi": typed_coi, "step": "receipt"}),
            )
            .await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(answer["reason"], "bad_check", "{answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("type the boxed character too"),
            "{answer}"
        );
    }
    let (_, recent) = ws.get("/api/v1/scans").await;
    assert_eq!(recent["scans"], json!([]), "nothing was recorded");
    // Typed right: the one-bag order's bag, judged like its Data Matrix.
    let (status, typed) = ws
        .post(
            "/api/v1/scans",
            &json!({"din": format!("a9999-25-123457-{k}"), "coi": format!("CH A9999 25 000043 {z}"), "step": "receipt", "operator": "tech-1"}),
        )
        .await;
    assert_eq!(status, 200, "{typed}");
    assert_eq!(typed["source"], "typed:api");
    assert_eq!(typed["verdict"], "match", "{typed}");
    assert_eq!(
        (typed["bag"].as_u64(), typed["bags"].as_u64()),
        (Some(1), Some(1))
    );

    // Health needs no token and carries no identifiers.
    for path in ["/livez", "/readyz", "/metrics"] {
        let response = ws
            .http
            .get(format!("{}{path}", ws.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let text = response.text().await.unwrap();
        assert!(
            !text.contains("CHA9999") && !text.contains("A999925"),
            "{path}: {text}"
        );
    }
    // The scanner's data with everything right is recorded (the scheme's case does not matter):
    // the bag typed above is in already.
    let response = ws
        .http
        .post(&scans)
        .header("authorization", format!("bearer {}", ws.token))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let scan: Value = response.json().await.unwrap();
    assert_eq!(scan["reason"], "already_received", "{scan}");
    assert_eq!(scan["source"], "api:bench");
    // The journal holds patient data: readable by its owner only.
    use std::os::unix::fs::PermissionsExt as _;
    for file in ["journal.sqlite", "api.token"] {
        let mode = std::fs::metadata(ws.dir().join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{file} has mode {mode:o}");
    }
    let _ = ws.stop().await;
}

#[test]
fn r11_serve_stops_on_sigterm_within_five_seconds() {
    let dir = TempDb::new("serve-sigterm");
    let base = dir.0.parent().unwrap();
    let port = free_port();
    let scanner_port = free_port();
    std::fs::write(
        base.join("orders.json"),
        json!({ "orders": orders() }).to_string(),
    )
    .unwrap();
    std::fs::write(
        base.join("coi-agent.toml"),
        format!(
            "[site]\nid = \"site-lab-1\"\nworkstation = \"ws\"\n[journal]\npath = \"journal.sqlite\"\n\
             [orders]\nsource = \"file\"\nfile = \"orders.json\"\n[api]\nlisten = \"127.0.0.1:{port}\"\n\
             [[scanners]]\nname = \"dock\"\nsource = \"tcp-listen://127.0.0.1:{scanner_port}\"\nstep = \"receipt\"\n"
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_coi-agent"))
        .args(["serve", "--log-format", "json", "--config"])
        .arg(base.join("coi-agent.toml"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Whatever happens below, the daemon does not outlive the test.
    struct KillOnDrop(u32);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &self.0.to_string()])
                .status();
        }
    }
    let _guard = KillOnDrop(child.id());
    // The API and the scanner's listener open a moment apart.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut scanner = loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && let Ok(scanner) = std::net::TcpStream::connect(("127.0.0.1", scanner_port))
        {
            break scanner;
        }
        assert!(Instant::now() < deadline, "serve did not listen");
        std::thread::sleep(Duration::from_millis(20));
    };
    // A scan in flight as the signal comes.
    std::io::Write::write_all(&mut scanner, b"=+02000=A99992512345701&/CHA999925000043\r").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still running 5 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    let mut log = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut log).unwrap();
    for line in log.lines() {
        let entry: Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(entry["level"].is_string(), "{entry}");
    }
    // No patient value in any log line.
    for order in orders() {
        for field in ["family_name", "given_name", "id", "date_of_birth"] {
            let value = order["patient"][field].as_str().unwrap();
            assert!(
                !log.contains(value),
                "the log carries the patient's {field}"
            );
        }
    }
    let journal =
        coi_agent::journal::Journal::open_read_only(&base.join("journal.sqlite")).unwrap();
    assert_eq!(
        journal.scan_ids().unwrap().len(),
        1,
        "the scan in flight was recorded"
    );
}

/// Writes the demonstration orders as a site keeps an order file: not readable by others.
fn private_orders(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, coi_agent::config::DEMO_ORDERS).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o640)).unwrap();
}

/// check-config names what would stop serve; a relative --config resolves against the current
/// directory, spool printers included.
#[test]
fn r11_check_config_names_each_problem() {
    let dir = TempDb::new("check-config");
    let base = dir.0.parent().unwrap();
    private_orders(&base.join("demo-orders.json"));
    let check = |text: &str| {
        std::fs::write(base.join("site.toml"), text).unwrap();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_coi-agent"))
            .current_dir(base)
            .args(["check-config", "--config", "site.toml"])
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let default = coi_agent::config::DEFAULT;
    let (code, said) = check(default);
    assert_eq!(
        code,
        Some(0),
        "the shipped default, by a relative path: {said}"
    );
    // An order file every user can read (patient names): named with the fix.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(
        base.join("demo-orders.json"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let (code, said) = check(default);
    assert_eq!(code, Some(1));
    assert!(
        said.contains("demo-orders.json can be read by every user") && said.contains("chmod o-r"),
        "{said}"
    );
    private_orders(&base.join("demo-orders.json"));
    std::fs::write(base.join("api.token"), "   \n").unwrap();
    std::fs::set_permissions(
        base.join("api.token"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let (code, said) = check(default);
    assert_eq!(code, Some(1));
    assert!(
        said.contains("mode 644") && said.contains("chmod 600"),
        "{said}"
    );
    std::fs::set_permissions(
        base.join("api.token"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let (code, said) = check(default);
    assert_eq!(code, Some(1));
    assert!(said.contains("is empty"), "{said}");
    // Longer than a token: refused, not read whole.
    std::fs::write(base.join("api.token"), "x".repeat(100_000)).unwrap();
    let (code, said) = check(default);
    assert_eq!(code, Some(1));
    assert!(said.contains("too long for a token"), "{said}");
    std::fs::remove_file(base.join("api.token")).unwrap();
    // A FIFO or a device as the token file: refused at once, never waited on or read.
    let fifo = std::process::Command::new("mkfifo")
        .arg(base.join("api.token"))
        .status()
        .unwrap();
    assert!(fifo.success());
    let started = std::time::Instant::now();
    let (code, said) = check(default);
    assert_eq!(code, Some(1));
    assert!(said.contains("not a regular file"), "{said}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no wait on a FIFO"
    );
    std::fs::remove_file(base.join("api.token")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", base.join("api.token")).unwrap();
    let (code, said) = check(default);
    assert_eq!(code, Some(1));
    assert!(said.contains("not a regular file"), "{said}");
    std::fs::remove_file(base.join("api.token")).unwrap();
    // Every problem at once, not the first only.
    let three = default
        .replace("Zebra ZT411 300 dpi", "Zebra X")
        .replace("tcp-listen://127.0.0.1:7371", "tcp-lisen://127.0.0.1:7371")
        .replace("127.0.0.1:7370", "0.0.0.0:7370");
    let (code, said) = check(&three);
    assert_eq!(code, Some(1));
    assert!(said.contains("3 problem(s)"), "{said}");
    for says in ["unknown profile", "source", "listens on every address"] {
        assert!(said.contains(says), "{says}: {said}");
    }
    for (broken, says) in [
        (
            default.replace("tcp-listen://127.0.0.1:7371", "tcp-lisen://127.0.0.1:7371"),
            "scanner \"receipt-desk\": source",
        ),
        (
            default.replace("step = \"receipt\"", "step = \"recieve\""),
            "is not \"receipt\" or \"verify\"",
        ),
        (
            default.replace("Zebra ZT411 300 dpi", "Zebra X"),
            "unknown profile \"Zebra X\"",
        ),
        (
            default.replace("127.0.0.1:7370", "0.0.0.0:7370"),
            "listens on every address",
        ),
        (
            default.replace("demo-orders.json", "missing.json"),
            "orders.file",
        ),
    ] {
        let (code, said) = check(&broken);
        assert_eq!(code, Some(1), "{said}");
        assert!(said.contains(says), "{says}: {said}");
    }
}

/// `config default` prints the embedded default, which loads and checks as it is.
#[test]
fn config_default_prints_a_configuration_that_checks() {
    let dir = TempDb::new("config-default");
    let base = dir.0.parent().unwrap();
    let printed = std::process::Command::new(env!("CARGO_BIN_EXE_coi-agent"))
        .args(["config", "default"])
        .output()
        .unwrap();
    assert!(printed.status.success());
    std::fs::write(base.join("coi-agent.toml"), &printed.stdout).unwrap();
    private_orders(&base.join("demo-orders.json"));
    let checked = std::process::Command::new(env!("CARGO_BIN_EXE_coi-agent"))
        .args(["check-config", "--config"])
        .arg(base.join("coi-agent.toml"))
        .output()
        .unwrap();
    assert!(checked.status.success(), "{checked:?}");
}

/// A site adds a printer model in printers.d/ beside its configuration; a broken site file is
/// named by check-config (issue #14).
#[test]
fn a_site_adds_printer_profiles_beside_its_configuration() {
    let dir = TempDb::new("printers-d");
    let base = dir.0.parent().unwrap();
    private_orders(&base.join("demo-orders.json"));
    let config = coi_agent::config::DEFAULT.replace("Zebra ZT411 300 dpi", "Acme LX 203");
    std::fs::write(base.join("coi-agent.toml"), &config).unwrap();
    let check = || {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_coi-agent"))
            .args(["check-config", "--config"])
            .arg(base.join("coi-agent.toml"))
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (code, said) = check();
    assert_eq!(code, Some(1));
    assert!(said.contains("unknown profile \"Acme LX 203\""), "{said}");
    std::fs::create_dir_all(base.join("printers.d")).unwrap();
    std::fs::write(
        base.join("printers.d/acme.toml"),
        "[[printer]]\nmodel = \"Acme LX 203\"\ndpi = 203\nprint_width_mm = 104\nvendor_id = \"1a2b\"\nhqes = false\nstatus_port = 9100\n",
    )
    .unwrap();
    let (code, said) = check();
    assert_eq!(code, Some(0), "{said}");
    let loaded = coi_agent::config::Config::load(&base.join("coi-agent.toml")).unwrap();
    assert_eq!(loaded.printers[0].profile.as_ref().unwrap().dpi, 203);
    std::fs::write(
        base.join("printers.d/broken.toml"),
        "[[printer]]\nmodel = \"B\"\ndpi = 250\nprint_width_mm = 50\nvendor_id = \"1a2b\"\nhqes = false\nstatus_port = 9100\n",
    )
    .unwrap();
    let (code, said) = check();
    assert_eq!(code, Some(1));
    assert!(
        said.contains("broken.toml") && said.contains("dpi 250"),
        "{said}"
    );
}

/// A site's scanners.d/ profiles come before the built-in ones (one with a built-in's name
/// replaces it); a broken site file is named by check-config (issue #14).
#[test]
fn a_site_adds_scanner_profiles_beside_its_configuration() {
    let dir = TempDb::new("scanners-d");
    let base = dir.0.parent().unwrap();
    private_orders(&base.join("demo-orders.json"));
    std::fs::write(base.join("coi-agent.toml"), coi_agent::config::DEFAULT).unwrap();
    let path = base.join("coi-agent.toml");
    let built_in = Config::load(&path).unwrap().scanner_profiles;
    let find = |profiles: &[coi_agent::scanner::profiles::ScannerProfile], v, p| {
        coi_agent::scanner::profiles::find(profiles, v, p).map(|found| found.name.clone())
    };
    assert_eq!(find(&built_in, 0x1a2b, 0x0001), None);
    let honeywell = built_in
        .iter()
        .find(|p| p.vendor_id == "0c2e" && p.product_ids.is_empty())
        .unwrap()
        .name
        .clone();
    std::fs::create_dir_all(base.join("scanners.d")).unwrap();
    std::fs::write(
        base.join("scanners.d/site.toml"),
        format!(
            "[[scanner]]\nname = \"Acme 9\"\nvendor_id = \"1a2b\"\nmodes = [\"serial\"]\nsuffix = \"lf\"\naim = true\nbaud = 9600\n\n\
             [[scanner]]\nname = \"{honeywell}\"\nvendor_id = \"0c2e\"\nmodes = [\"serial\"]\nsuffix = \"crlf\"\naim = true\nbaud = 9600\n"
        ),
    )
    .unwrap();
    let merged = Config::load(&path).unwrap().scanner_profiles;
    assert_eq!(find(&merged, 0x1a2b, 0x0001).as_deref(), Some("Acme 9"));
    let replaced: Vec<_> = merged.iter().filter(|p| p.name == honeywell).collect();
    assert_eq!(
        replaced.len(),
        1,
        "a site profile replaces the built-in one"
    );
    assert_eq!(replaced[0].suffix, "crlf");
    assert_eq!(merged.len(), built_in.len() + 1);
    std::fs::write(
        base.join("scanners.d/broken.toml"),
        "[[scanner]]\nname = \"B\"\nvendor_id = \"zz\"\nmodes = [\"serial\"]\nsuffix = \"cr\"\naim = false\nbaud = 9600\n",
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_coi-agent"))
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(
        said.contains("scanners.d/broken.toml") && said.contains("\"zz\" is not hexadecimal"),
        "{said}"
    );
}

/// Without --config and without /etc/coi-agent/coi-agent.toml, every command uses the embedded
/// default with its state in $XDG_STATE_HOME/coi-agent (a private directory), and says so; a
/// relative $XDG_STATE_HOME is ignored for $HOME/.local/state (issue #14).
#[test]
fn without_a_configuration_the_embedded_default_keeps_its_state_in_the_users_state_directory() {
    let dir = TempDb::new("xdg-state");
    let home = dir.0.parent().unwrap().join("home");
    let state = dir.0.parent().unwrap().join("state");
    std::fs::create_dir_all(&home).unwrap();
    let run = |args: &[&str], xdg: &Path| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_coi-agent"))
            .args(args)
            .env("HOME", &home)
            .env("XDG_STATE_HOME", xdg)
            .current_dir(&home)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let system = Path::new("/etc/coi-agent/coi-agent.toml");
    if system.exists() {
        // An installed package's configuration wins: nothing is made in the state directory.
        let (_, out, _) = run(&["check-config"], &state);
        assert!(out.starts_with("/etc/coi-agent/coi-agent.toml:"), "{out}");
        assert!(!state.exists());
        return;
    }
    let ours = state.join("coi-agent");
    let (code, out, err) = run(&["check-config"], &state);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(
        out.trim(),
        format!("the embedded default in {}: ok", ours.display())
    );
    assert!(
        err.contains(&format!("its state in {}", ours.display())),
        "{err}"
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&ours).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let (code, out, err) = run(&["orders", "sync", "--json"], &state);
    assert_eq!(code, Some(0), "{out}{err}");
    let synced: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(synced["stored"], 3, "{synced}");
    let (code, out, err) = run(&["orders", "show", "--json", "CHA999925000042"], &state);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(ours.join("journal.sqlite").exists());
    let (_, _, err) = run(&["outbox", "status"], Path::new("relative/state"));
    let fallback = home.join(".local/state/coi-agent");
    assert!(
        err.contains(&format!("its state in {}", fallback.display())),
        "{err}"
    );
    assert!(fallback.join("journal.sqlite").exists());
    assert!(!home.join("relative").exists());
}

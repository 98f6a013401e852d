//! `coi-agent orders sync` and `coi-agent outbox flush` against the test central service over
//! real HTTP (issue #6): incremental sync with updated_since, bad orders refused one by one,
//! pending events delivered.

#![allow(clippy::unwrap_used)] // test helpers fail loudly; that is their job

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use support::central::{Central, Mode};

struct Site {
    dir: PathBuf,
}

impl Site {
    fn new(name: &str, central: &Central) -> Site {
        let dir =
            std::env::temp_dir().join(format!("coi-agent-sync-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        support::central::write_token(&dir.join("central.token"));
        let config = format!(
            "[site]\nid = \"site-lab-1\"\nworkstation = \"lab-ws-1\"\n[journal]\npath = \"journal.sqlite\"\n\
             [orders]\nsource = \"central\"\n[central]\nurl = \"{}\"\ntoken_file = \"central.token\"\ntimeout_secs = 5\n",
            central.url
        );
        std::fs::write(dir.join("coi-agent.toml"), config).unwrap();
        Site { dir }
    }

    /// This site as an apheresis workstation (site-apheresis-1) with a spool printer.
    fn at_apheresis(self) -> Site {
        self.edit(|config| {
            config.replace("site-lab-1", "site-apheresis-1")
                + "[[printers]]\nname = \"bench\"\nuri = \"spool://spool\"\nprofile = \"Zebra ZT411 300 dpi\"\n"
        })
    }

    /// This site as workstation `name`, with `[central] offline = offline`.
    fn named_workstation(self, name: &str, offline: &str) -> Site {
        self.edit(|config| {
            config.replace("lab-ws-1", name).replace(
                "timeout_secs = 5\n",
                &format!("timeout_secs = 5\noffline = \"{offline}\"\n"),
            )
        })
    }

    fn edit(self, change: impl FnOnce(String) -> String) -> Site {
        let path = self.dir.join("coi-agent.toml");
        let config = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, change(config)).unwrap();
        self
    }

    async fn run(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_coi-agent"));
        command
            .args(args)
            .arg("--config")
            .arg(self.dir.join("coi-agent.toml"));
        tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn example(i: usize) -> serde_json::Value {
    let examples: serde_json::Value =
        serde_json::from_str(include_str!("data/example-orders.json")).unwrap();
    examples["orders"][i].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_is_incremental_and_refuses_bad_orders_one_by_one() {
    let central = Central::start().await;
    let site = Site::new("incremental", &central);
    {
        let mut recorded = central.recorded();
        recorded.orders.push((
            "site-lab-1".into(),
            "2026-01-01T00:00:00.000000000Z".into(),
            example(0),
        ));
        recorded.orders.push((
            "site-lab-1".into(),
            "2026-01-01T00:00:00.000000000Z".into(),
            example(1),
        ));
        let mut bad = example(0);
        bad["coi"] = serde_json::json!("CHA99992500004X!");
        bad["order_id"] = serde_json::json!("ORD-BAD");
        recorded.orders.push((
            "site-lab-1".into(),
            "2026-01-01T00:00:00.000000000Z".into(),
            bad,
        ));
        recorded.orders.push((
            "site-other".into(),
            "2026-01-01T00:00:00.000000000Z".into(),
            example(0),
        ));
    }
    let first = site.run(&["orders", "sync"]).await;
    assert_eq!(first.status.code(), Some(1), "one order refused");
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(stdout.contains(": 2 stored, 1 refused"), "{stdout}");
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(
        stderr.contains("refused order 2 (ORD-BAD): coi: "),
        "{stderr}"
    );

    // Only orders changed since the last sync come back.
    let mut changed = example(1);
    changed["status"] = serde_json::json!("received");
    let later =
        coi_agent::journal::utc_text(jiff::Timestamp::now() + std::time::Duration::from_secs(3600));
    central
        .recorded()
        .orders
        .push(("site-lab-1".into(), later, changed));
    let second = site.run(&["orders", "sync"]).await;
    assert!(
        String::from_utf8_lossy(&second.stdout).contains(": 1 stored, 0 refused"),
        "{}",
        String::from_utf8_lossy(&second.stdout)
    );
    let show = site.run(&["orders", "show", "CHA999925000043"]).await;
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(shown.contains("status     received"), "{shown}");
    assert!(!shown.contains("Zoë"), "patient hidden by default");
    let show = site
        .run(&["orders", "show", "CHA999925000043", "--patient"])
        .await;
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(
        shown.contains(
            "patient    MÜLLER-LÜDENSCHEIDT, Zoë born 1979-11-05; Sponsor patient ID PT-0043"
        ),
        "--patient shows the patient: {shown}"
    );
    // --json: the API's shape, patient data only when asked for; sync says what it did.
    let show = site
        .run(&["orders", "show", "CHA999925000043", "--json"])
        .await;
    let shown: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(shown["status"], "received", "{shown}");
    assert_eq!(shown["bag_labels"][0]["label"], "none", "{shown}");
    assert!(shown.get("patient").is_none(), "{shown}");
    let show = site
        .run(&["orders", "show", "CHA999925000043", "--json", "--patient"])
        .await;
    let shown: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(shown["patient"]["id"], "PT-0043", "{shown}");
    let synced = site.run(&["orders", "sync", "--json"]).await;
    let synced: serde_json::Value = serde_json::from_slice(&synced.stdout).unwrap();
    assert!(synced["stored"].is_u64(), "{synced}");
    assert!(
        synced["source"].as_str().unwrap().contains("central"),
        "{synced}"
    );
    assert_eq!(synced["refused"], serde_json::json!([]), "{synced}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_flush_delivers_and_status_reports() {
    let central = Central::start().await;
    let site = Site::new("flush", &central);
    let db = site.dir.join("journal.sqlite");
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_coi-agent"))
            .args(["dev", "journal-writer", "--count", "7", "--db"])
            .arg(&db)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let status = site.run(&["outbox", "status"]).await;
    assert!(
        String::from_utf8_lossy(&status.stdout).starts_with("pending   7"),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );
    let flush = site.run(&["outbox", "flush"]).await;
    assert_eq!(
        flush.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&flush.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&flush.stdout),
        "delivered 7, parked 0, still pending 0\n"
    );
    assert_eq!(central.recorded().events.len(), 7);
    let status = site.run(&["outbox", "status"]).await;
    assert_eq!(status.status.code(), Some(0), "nothing parked");
    // One more event that central refuses (422): parked, and `outbox status` exits 1.
    let db = site.dir.join("journal.sqlite");
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_coi-agent"))
            .args(["dev", "journal-writer", "--count", "1", "--db"])
            .arg(&db)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let status = site.run(&["outbox", "status", "--json"]).await;
    let listed: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let id = listed["events"][0]["event_id"].as_str().unwrap().to_owned();
    central.recorded().refuse.push(id);
    let flush = site.run(&["outbox", "flush", "--json"]).await;
    let flushed: serde_json::Value = serde_json::from_slice(&flush.stdout).unwrap();
    assert_eq!(
        flushed,
        serde_json::json!({"delivered": 0, "parked": 1, "pending": 0})
    );
    assert_eq!(
        flush.status.code(),
        Some(1),
        "a parked event is not a success"
    );
    let status = site.run(&["outbox", "status"]).await;
    assert_eq!(
        status.status.code(),
        Some(1),
        "a parked event waits for a person"
    );
}

/// Issue #13: a refused update of a cached order (an unknown status such as `recalled`, a
/// malformed field) does not leave the older version in use: the order is held — no MATCH, no
/// label — until a valid version arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r13_a_refused_update_holds_the_cached_order_until_a_valid_one_arrives() {
    let central = Central::start().await;
    let site = Site::new("held", &central);
    let mut order = example(1); // shipped to site-lab-1, one bag
    order["expires_at"] = serde_json::json!("2099-12-31T23:59:00-05:00");
    central.recorded().orders.push((
        "site-lab-1".into(),
        "2025-01-01T00:00:00Z".into(),
        order.clone(),
    ));
    assert!(site.run(&["orders", "sync"]).await.status.success());
    // The label's Data Matrix: DIN and COI identifier (issue #17: one alone is never a match).
    let din = "=+02000=A99992512345701&/CHA999925000043";
    // Recalled: a status this agent does not know. The sync refuses it, and the order is held.
    let mut recalled = order.clone();
    recalled["status"] = serde_json::json!("recalled");
    central.recorded().orders.push((
        "site-lab-1".into(),
        coi_agent::journal::utc_text(jiff::Timestamp::now()),
        recalled,
    ));
    let synced = site.run(&["orders", "sync"]).await;
    assert!(!synced.status.success());
    let output = site.run(&["receive", "--json", din]).await;
    let verdict: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(verdict["reason"], "order_held", "{verdict}");
    assert!(
        verdict["message"]
            .as_str()
            .unwrap()
            .contains("could not be accepted")
    );
    // A valid version (shipped again) releases it.
    central.recorded().orders.push((
        "site-lab-1".into(),
        coi_agent::journal::utc_text(
            jiff::Timestamp::now()
                .checked_add(jiff::SignedDuration::from_secs(1))
                .unwrap(),
        ),
        order,
    ));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(site.run(&["orders", "sync"]).await.status.success());
    let output = site.run(&["receive", "--json", din]).await;
    let verdict: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(verdict["verdict"], "match", "{verdict}");
}

/// Issue #13: an order central no longer serves for this site leaves the cache at the next full
/// sync (`orders sync --full`, and every hour in `serve`): its scans are then unknown here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r13_a_full_sync_drops_orders_no_longer_served_here() {
    let central = Central::start().await;
    let site = Site::new("dropped", &central);
    for i in [0, 1] {
        let mut order = example(i);
        order["expires_at"] = serde_json::json!("2099-12-31T23:59:00-05:00");
        central
            .recorded()
            .orders
            .push(("site-lab-1".into(), "2025-01-01T00:00:00Z".into(), order));
    }
    assert!(site.run(&["orders", "sync"]).await.status.success());
    // Central moves order 043 away from this site: an incremental sync says nothing of it...
    central
        .recorded()
        .orders
        .retain(|(_, _, o)| o["coi"] != "CHA999925000043");
    assert!(site.run(&["orders", "sync"]).await.status.success());
    let show = async || site.run(&["orders", "show", "CHA999925000043"]).await;
    assert!(show().await.status.success(), "still cached");
    // ...a full sync drops it.
    let synced = site.run(&["orders", "sync", "--full"]).await;
    assert!(synced.status.success());
    assert!(!show().await.status.success(), "dropped");
    // And a receipt asks central for the order first: it knows it no more.
    let scan = "=+02000=A99992512345701&/CHA999925000043";
    let output = site.run(&["receive", "--json", scan]).await;
    let verdict: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(verdict["reason"], "unknown_coi", "{verdict}");
    let output = site.run(&["orders", "show", "CHA999925000042"]).await;
    assert!(output.status.success(), "the order still served stays");
}

/// Issue #13: orders from central that have not been brought up to date for longer than
/// `[orders] max_age_secs` (an hour by default) accept no receipt; a sync makes them current.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r13_orders_too_old_accept_no_receipt_until_synced() {
    let central = Central::start().await;
    let site = Site::new("stale", &central);
    let mut order = example(1); // shipped to site-lab-1, one bag
    order["expires_at"] = serde_json::json!("2099-12-31T23:59:00-05:00");
    central
        .recorded()
        .orders
        .push(("site-lab-1".into(), "2025-01-01T00:00:00Z".into(), order));
    assert!(site.run(&["orders", "sync"]).await.status.success());
    // Central has been out of reach for two hours.
    let two_hours_ago =
        coi_agent::journal::utc_text(jiff::Timestamp::now() - std::time::Duration::from_secs(7200));
    let conn = rusqlite::Connection::open(site.dir.join("journal.sqlite")).unwrap();
    conn.execute(
        "UPDATE sync_state SET value = ?1 WHERE key = 'orders.synced_at'",
        [&two_hours_ago],
    )
    .unwrap();
    drop(conn);
    let scan = "=+02000=A99992512345701&/CHA999925000043";
    let output = site.run(&["receive", "--json", scan]).await;
    let verdict: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(verdict["reason"], "order_stale", "{verdict}");
    assert!(
        verdict["message"]
            .as_str()
            .unwrap()
            .contains("120 minutes ago"),
        "{verdict}"
    );
    // A sync that finds nothing new (central echoes its as_of) still makes the orders current.
    central.recorded().echo_as_of = true;
    assert!(site.run(&["orders", "sync"]).await.status.success());
    let resume = |site: &Site| {
        coi_agent::journal::Journal::open_read_only(&site.dir.join("journal.sqlite"))
            .unwrap()
            .sync_state(coi_agent::order_sync::RESUME_KEY)
            .unwrap()
    };
    let before = resume(&site);
    let conn = rusqlite::Connection::open(site.dir.join("journal.sqlite")).unwrap();
    conn.execute(
        "UPDATE sync_state SET value = ?1 WHERE key = 'orders.synced_at'",
        [&two_hours_ago],
    )
    .unwrap();
    drop(conn);
    assert!(site.run(&["orders", "sync"]).await.status.success());
    assert_eq!(resume(&site), before, "nothing new: the same resume point");
    let output = site.run(&["receive", "--json", scan]).await;
    let verdict: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(verdict["verdict"], "match", "{verdict}");
}

/// Issue #13: before a label, the agent asks central for that one order: an order central no
/// longer knows, or has cancelled, prints nothing; a current one prints, said to be checked
/// with central; when central does not answer, the cache decides and the event says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r13_a_label_asks_central_for_its_order_first() {
    let central = Central::start().await;
    let site = Site::new("lookup", &central).at_apheresis();
    let mut order = example(0); // scheduled at site-apheresis-1, two bags
    order["expires_at"] = serde_json::json!("2099-12-31T23:59:00-05:00");
    let publish = |order: serde_json::Value| {
        let mut recorded = central.recorded();
        recorded.orders.retain(|(_, _, o)| o["coi"] != order["coi"]);
        recorded.orders.push((
            "site-apheresis-1".into(),
            coi_agent::journal::utc_text(jiff::Timestamp::now()),
            order,
        ));
    };
    publish(order.clone());
    assert!(site.run(&["orders", "sync"]).await.status.success());
    let print = async |bag: &'static str| {
        site.run(&[
            "label",
            "print",
            "--coi",
            "CHA999925000042",
            "--bag",
            bag,
            "--collected-at",
            "2025-06-02T12:14:00Z",
            "--json",
        ])
        .await
    };
    // Gone from central: nothing printed.
    central.recorded().orders.clear();
    let output = print("1").await;
    assert_eq!(output.status.code(), Some(1));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("does not know order CHA999925000042"),
        "{said}"
    );
    // Cancelled at central, not yet synced here: the lookup finds it.
    let mut cancelled = order.clone();
    cancelled["status"] = serde_json::json!("cancelled");
    publish(cancelled);
    let output = print("1").await;
    assert_eq!(output.status.code(), Some(1));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("is cancelled"), "{said}");
    // Current: printed, checked with central.
    publish(order.clone());
    let output = print("1").await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Central down: the (fresh) cache decides, and the event says so.
    central.set_mode(Mode::Down);
    let output = print("2").await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let journal =
        coi_agent::journal::Journal::open_read_only(&site.dir.join("journal.sqlite")).unwrap();
    let from: Vec<String> = journal
        .connection()
        .prepare("SELECT payload FROM outbox WHERE kind = 'label_printed' ORDER BY id")
        .unwrap()
        .query_map([], |row| row.get::<_, String>(0))
        .unwrap()
        .map(|p| {
            let event: serde_json::Value = serde_json::from_str(&p.unwrap()).unwrap();
            event["details"]["order_from"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(from, ["central", "cache"]);
}

/// Issue #13: two workstations (two journals) against one central service print bag 1 of an
/// order once: the second is refused naming the first; a reprint is granted; with central out
/// of reach, `[central] offline` decides ("local" prints and says so in the event, "refuse"
/// prints nothing); a voided label frees the bag at central.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r13_two_workstations_print_a_bag_once() {
    let central = Central::start().await;
    let mut order = example(0); // scheduled at site-apheresis-1, two bags
    order["expires_at"] = serde_json::json!("2099-12-31T23:59:00-05:00");
    central.recorded().orders.push((
        "site-apheresis-1".into(),
        "2025-01-01T00:00:00Z".into(),
        order,
    ));
    let station = |name: &str, offline: &str| {
        Site::new(name, &central)
            .named_workstation(name, offline)
            .at_apheresis()
    };
    let a = station("aph-ws-a", "local");
    let b = station("aph-ws-b", "refuse");
    for site in [&a, &b] {
        assert!(site.run(&["orders", "sync"]).await.status.success());
    }
    let print = async |site: &Site, bag: &str, extra: &[&str]| {
        let mut args = vec![
            "label",
            "print",
            "--coi",
            "CHA999925000042",
            "--bag",
            bag,
            "--collected-at",
            "2025-06-02T12:14:00Z",
            "--json",
        ];
        args.extend_from_slice(extra);
        site.run(&args).await
    };
    let output = print(&a, "1", &[]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let job_a: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    // The other workstation: refused, the holder named, nothing sent.
    let output = print(&b, "1", &[]).await;
    assert_eq!(output.status.code(), Some(1));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("already has its label from workstation aph-ws-a")
            && said.contains(job_a["job_id"].as_str().unwrap()),
        "{said}"
    );
    assert!(
        !b.dir.join("spool").exists()
            || std::fs::read_dir(b.dir.join("spool")).unwrap().count() == 0
    );
    // A deliberate reprint is granted.
    let output = print(&b, "1", &["--reprint", "--reason", "smudged"]).await;
    assert_eq!(
        output.status.code(),
        Some(1),
        "b has no first label of its own to reprint"
    );
    let output = print(&a, "1", &["--reprint", "--reason", "smudged"]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let reprint_a: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    // Central out of reach: a decides locally and says so; b refuses.
    central.set_mode(Mode::Down);
    let output = print(&b, "2", &[]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("did not grant bag 2's label"));
    let output = print(&a, "2", &[]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    central.set_mode(Mode::Up);
    let journal =
        coi_agent::journal::Journal::open_read_only(&a.dir.join("journal.sqlite")).unwrap();
    let arbitration: Vec<String> = journal
        .connection()
        .prepare("SELECT payload FROM outbox WHERE kind IN ('label_printed', 'label_reprinted') ORDER BY id")
        .unwrap()
        .query_map([], |row| row.get::<_, String>(0))
        .unwrap()
        .map(|p| {
            let event: serde_json::Value = serde_json::from_str(&p.unwrap()).unwrap();
            event["details"]["arbitration"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(arbitration, ["central", "central", "offline"]);
    // Once central hears a's offline label of bag 2, the bag is a's there too.
    assert!(a.run(&["outbox", "flush"]).await.status.success());
    let output = print(&b, "2", &[]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("from workstation aph-ws-a"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // A third workstation with another collection time: the collection has one, central says.
    let c = station("aph-ws-c", "refuse");
    assert!(c.run(&["orders", "sync"]).await.status.success());
    let output = c
        .run(&[
            "label",
            "print",
            "--coi",
            "CHA999925000042",
            "--bag",
            "2",
            "--collected-at",
            "2025-06-02T13:00:00Z",
        ])
        .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("carry the collection time 2025-06-02T12:14:00Z"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // a voids bag 1's labels; once central hears it, b may print bag 1 (not before: the
    // reprint is still on the bag after the first label is voided).
    for (job, freed) in [(&job_a, false), (&reprint_a, true)] {
        let id = job["job_id"].as_str().unwrap();
        let output = a
            .run(&["label", "void", "--job", id, "--reason", "wrong bag"])
            .await;
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // The screen says whether the bag still carries another label.
        let said = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            said.contains("still carries the label of job"),
            !freed,
            "{said}"
        );
        assert!(a.run(&["outbox", "flush"]).await.status.success());
        let output = print(&b, "1", &[]).await;
        assert_eq!(
            output.status.success(),
            freed,
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Issue #13: two lab workstations (two journals) against one central service receive a bag
/// once: the second is told where it was received; with central out of reach, `[central]
/// offline` decides ("local" receives and says so in the event, "refuse" does not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r13_two_workstations_receive_a_bag_once() {
    let central = Central::start().await;
    let mut order = example(0); // two bags, manufactured at site-lab-1
    order["status"] = serde_json::json!("shipped");
    order["expires_at"] = serde_json::json!("2099-12-31T23:59:00-05:00");
    central
        .recorded()
        .orders
        .push(("site-lab-1".into(), "2025-01-01T00:00:00Z".into(), order));
    let station =
        |name: &str, offline: &str| Site::new(name, &central).named_workstation(name, offline);
    let a = station("lab-ws-a", "local");
    let b = station("lab-ws-b", "refuse");
    for site in [&a, &b] {
        assert!(site.run(&["orders", "sync"]).await.status.success());
    }
    let bag = |n: u8| format!("=+02000=A999925123456{n:02}&/CHA999925000042");
    let receive = async |site: &Site, data: &str| {
        let output = site.run(&["receive", "--json", data]).await;
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    let first = receive(&a, &bag(1)).await;
    assert_eq!(first["verdict"], "match", "{first}");
    let second = receive(&b, &bag(1)).await;
    assert_eq!(second["reason"], "already_received", "{second}");
    assert!(
        second["message"]
            .as_str()
            .unwrap()
            .contains("already received at workstation lab-ws-a"),
        "{second}"
    );
    // Again at a: its own journal says so, central is not asked.
    assert_eq!(receive(&a, &bag(1)).await["reason"], "already_received");
    // Central out of reach: b refuses, a receives on its own word.
    central.set_mode(Mode::Down);
    let refused = receive(&b, &bag(2)).await;
    assert_eq!(refused["reason"], "central_offline", "{refused}");
    let local = receive(&a, &bag(2)).await;
    assert_eq!(local["verdict"], "match", "{local}");
    central.set_mode(Mode::Up);
    let journal =
        coi_agent::journal::Journal::open_read_only(&a.dir.join("journal.sqlite")).unwrap();
    let arbitration: Vec<String> = journal
        .connection()
        .prepare("SELECT payload FROM outbox WHERE kind = 'bag_received' ORDER BY id")
        .unwrap()
        .query_map([], |row| row.get::<_, String>(0))
        .unwrap()
        .map(|p| {
            let event: serde_json::Value = serde_json::from_str(&p.unwrap()).unwrap();
            event["details"]["arbitration"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(arbitration, ["central", "offline"]);
}

/// Issue #13: with orders from central, a receipt asks central for the scanned order first: a
/// cancellation not yet synced refuses it, and an order central no longer knows is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r13_a_receipt_asks_central_for_its_order_first() {
    let central = Central::start().await;
    let site = Site::new("receipt-lookup", &central);
    let mut order = example(1); // shipped to site-lab-1, one bag
    order["expires_at"] = serde_json::json!("2099-12-31T23:59:00-05:00");
    let publish = |order: Option<serde_json::Value>| {
        let mut recorded = central.recorded();
        recorded.orders.clear();
        recorded.orders.extend(order.map(|order| {
            (
                "site-lab-1".to_owned(),
                coi_agent::journal::utc_text(jiff::Timestamp::now()),
                order,
            )
        }));
    };
    publish(Some(order.clone()));
    assert!(site.run(&["orders", "sync"]).await.status.success());
    let scan = "=+02000=A99992512345701&/CHA999925000043";
    let receive = async || {
        let output = site.run(&["receive", "--json", scan]).await;
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    publish(None);
    let gone = receive().await;
    assert_eq!(gone["reason"], "unknown_coi", "{gone}");
    assert!(
        gone["message"]
            .as_str()
            .unwrap()
            .contains("does not know order"),
        "{gone}"
    );
    let mut cancelled = order.clone();
    cancelled["status"] = serde_json::json!("cancelled");
    publish(Some(cancelled));
    assert_eq!(receive().await["reason"], "order_cancelled");
    publish(Some(order));
    assert_eq!(receive().await["verdict"], "match");
}

/// A fresh directory with a lab workstation's configuration whose orders come from
/// `orders.json` beside it.
/// `orders sync` at the site in `dir`: its exit code and what it said (stdout, then stderr).
fn sync_site(dir: &std::path::Path) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_coi-agent"))
        .args(["orders", "sync", "--config"])
        .arg(dir.join("coi-agent.toml"))
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

fn file_site(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("coi-agent-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("coi-agent.toml"),
        "[site]\nid = \"site-lab-1\"\nworkstation = \"lab-ws-1\"\n[journal]\npath = \"journal.sqlite\"\n\
         [orders]\nsource = \"file\"\nfile = \"orders.json\"\n",
    )
    .unwrap();
    dir
}

/// Hostile order files (issue #16): a key given twice refuses the whole file (which of the two
/// the sender meant cannot be known), and a control character in any text of an order refuses
/// that order, named by its path, with the value never echoed raw.
#[test]
fn duplicate_keys_and_control_characters_are_refused_and_never_echoed() {
    let dir = file_site("hostile");
    let sync = |orders: &str| {
        std::fs::write(dir.join("orders.json"), orders).unwrap();
        sync_site(&dir)
    };
    let example: serde_json::Value =
        serde_json::from_str(include_str!("data/example-orders.json")).unwrap();
    let order = example["orders"][0].to_string();
    // "status":"cancelled","status":"scheduled": refused whole, nothing stored.
    let twice = order.replacen("\"status\":", "\"status\":\"cancelled\",\"status\":", 1);
    assert_ne!(twice, order);
    let (code, said) = sync(&format!("{{\"orders\":[{twice}]}}"));
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("the key \"status\" is given twice"), "{said}");
    assert!(!said.contains("cancelled"), "{said}");
    let journal = coi_agent::journal::Journal::open(&dir.join("journal.sqlite")).unwrap();
    assert_eq!(journal.order_book().unwrap().0.len(), 0, "nothing stored");

    // An order id that would forge a log line and recolour a terminal.
    let mut forged: serde_json::Value = serde_json::from_str(&order).unwrap();
    forged["order_id"] = serde_json::json!("ORD-1\ncoi-agent: all clear\u{1b}[32m");
    let mut named: serde_json::Value = serde_json::from_str(&order).unwrap();
    named["patient"]["family_name"] = serde_json::json!("DOE\u{1b}]0;x\u{7}");
    named["order_id"] = serde_json::json!("ORD-2");
    let (code, said) = sync(&serde_json::json!({ "orders": [forged, named] }).to_string());
    assert_eq!(code, Some(1), "{said}");
    assert!(
        !said.contains('\u{1b}') && !said.contains("\nfoo"),
        "{said:?}"
    );
    assert!(!said.contains("\ncoi-agent: all clear"), "{said:?}");
    assert!(
        said.contains("ORD-1\\u{a}coi-agent: all clear\\u{1b}[32m"),
        "{said}"
    );
    assert!(
        said.contains("order_id: a control character (newline, tab, escape) or a bidirectional override is not allowed"),
        "{said}"
    );
    assert!(
        said.contains("patient.family_name: a control character"),
        "{said}"
    );
    assert!(!said.contains("DOE"), "{said}");

    // A right-to-left override makes PT-\u{202e}2400 read as PT-0042: refused. A free-text
    // field the agent does not read may hold a newline (unknown fields are ignored).
    let mut reversed: serde_json::Value = serde_json::from_str(&order).unwrap();
    reversed["patient"]["id"] = serde_json::json!("PT-\u{202e}2400");
    let mut noted: serde_json::Value = serde_json::from_str(&order).unwrap();
    noted["notes"] = serde_json::json!("line 1\nline 2");
    let (code, said) = sync(&serde_json::json!({ "orders": [reversed] }).to_string());
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("patient.id: a control character"), "{said}");
    assert!(!said.contains('\u{202e}'), "{said:?}");
    let (code, said) = sync(&serde_json::json!({ "orders": [noted] }).to_string());
    assert_eq!(code, Some(0), "{said}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A write beyond the file-size limit (`ulimit -f`) is an ordinary error the command reports,
/// not a SIGXFSZ that kills it mid-write without a word (issue #16).
#[test]
fn a_file_size_limit_is_an_error_not_a_silent_death() {
    use std::os::unix::process::ExitStatusExt as _;
    let dir = file_site("fsize");
    std::fs::write(
        dir.join("orders.json"),
        include_str!("data/example-orders.json"),
    )
    .unwrap();
    // 16 blocks: far less than a journal with its schema.
    let output = Command::new("sh")
        .arg("-c")
        .arg("ulimit -f 16 && exec \"$0\" orders sync --config \"$1\"")
        .arg(env!("CARGO_BIN_EXE_coi-agent"))
        .arg(dir.join("coi-agent.toml"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.signal(), None, "killed by a signal: {said}");
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(said.contains("journal"), "{said}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An order file beyond the limit is refused, not read whole (issue #16: a 100 MB file took
/// 1.28 GB of memory); the limit is `[orders] max_mib` (default 64).
#[test]
fn an_order_file_beyond_the_limit_is_refused() {
    let dir = file_site("huge");
    let sync = || sync_site(&dir);
    // Sparse: the size without the disk.
    let file = std::fs::File::create(dir.join("orders.json")).unwrap();
    file.set_len(64 * 1024 * 1024 + 1).unwrap();
    let (code, said) = sync();
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("larger than 64 MiB ([orders] max_mib): not read"),
        "{said}"
    );
    // A real order list of 1.5 MiB: over a 1 MiB limit, under a 2 MiB one.
    let orders = include_str!("data/example-orders.json");
    let padded = format!("{}{}", orders.trim_end(), " ".repeat(1536 * 1024));
    std::fs::write(dir.join("orders.json"), padded).unwrap();
    let config = std::fs::read_to_string(dir.join("coi-agent.toml")).unwrap();
    std::fs::write(dir.join("coi-agent.toml"), format!("{config}max_mib = 1\n")).unwrap();
    let (code, said) = sync();
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("larger than 1 MiB ([orders] max_mib)"),
        "{said}"
    );
    std::fs::write(dir.join("coi-agent.toml"), format!("{config}max_mib = 2\n")).unwrap();
    let (code, said) = sync();
    assert_eq!(code, Some(0), "{said}");
    std::fs::write(dir.join("coi-agent.toml"), format!("{config}max_mib = 0\n")).unwrap();
    let (code, said) = sync();
    assert_ne!(code, Some(0), "{said}");
    assert!(said.contains("orders.max_mib must be 1 to 1024"), "{said}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The central service's order answers have the same limit (`[orders] max_mib`): a larger
/// answer is refused as it streams in, never held whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_central_order_answer_beyond_the_limit_is_refused() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let body = format!(
        "{{\"as_of\": \"2026-01-01T00:00:00Z\", \"orders\": []}}{}",
        " ".repeat(3 * 1024 * 1024 / 2)
    );
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(body.as_bytes()).await;
            });
        }
    });
    let client = |mib: u64| {
        coi_agent::central::CentralClient::new(
            &url,
            "token".to_owned(),
            std::time::Duration::from_secs(5),
        )
        .unwrap()
        .with_order_limit(mib * 1024 * 1024)
    };
    let refused = client(1)
        .orders_since("site-lab-1", None)
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("larger than 1048576 bytes: not read"),
        "{refused}"
    );
    let page = client(2).orders_since("site-lab-1", None).await.unwrap();
    assert!(page.orders.is_empty());
}

//! Issue #12: the screens' routes, driven as `tower::ServiceExt::oneshot` on the running agent's
//! router (real journal, real flows): every page renders with its security headers; sign-in,
//! lockout and idle expiry; a foreign Host, a cross-site POST and a missing session are
//! refused; the signed-in operator is recorded with every action; a reprint and a void ask for
//! the PIN again; no patient value in a URL and the API token never in a page.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use support::station::Station;

fn assert_secure(headers: &axum::http::HeaderMap) {
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
}

/// Every URL-bearing attribute of a page: no patient value may be in one.
fn urls(page: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in [
        "href=\"",
        "src=\"",
        "hx-get=\"",
        "hx-post=\"",
        "sse-connect=\"",
        "action=\"",
    ] {
        for (at, _) in page.match_indices(attribute) {
            let rest = &page[at + attribute.len()..];
            found.push(rest[..rest.find('"').unwrap()].to_owned());
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_renders_for_its_role_with_csp_and_no_token_or_patient_data_in_urls() {
    let station = Station::start("ui-pages", "site-apheresis-1", "", None).await;
    let token = std::fs::read_to_string(station.dir.0.parent().unwrap().join("api.token")).unwrap();

    let (status, headers, login) = station.send(station.get("/login", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_secure(&headers);
    assert!(login.contains("name=\"operator\"") && login.contains("name=\"pin\""));

    let nurse = station.sign_in("nurse1", "111111").await;
    let admin = station.sign_in("admin1", "333333").await;
    let tech = station.sign_in("tech1", "222222").await;
    for (path, cookie, marker) in [
        ("/print", &nurse, "EXAMPLE, Pat"),
        (
            "/print/orders/CHA999925000042",
            &nurse,
            "data-action=\"print\"",
        ),
        ("/receive", &tech, "data-verdict=\"waiting\""),
        ("/admin", &admin, "Verify the audit trail"),
        ("/print", &admin, "order-search"),
        ("/receive", &admin, "scan-data"),
    ] {
        let (status, headers, page) = station.send(station.get(path, Some(cookie))).await;
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
        assert_secure(&headers);
        assert_eq!(headers[header::CACHE_CONTROL], "no-store", "{path}");
        assert!(page.contains(marker), "{path} lacks {marker}");
        assert!(!page.contains(token.trim()), "{path} carries the API token");
        for url in urls(&page) {
            for value in ["Example", "Pat", "1984", "PT-0042", "Müller"] {
                assert!(!url.contains(value), "{path}: {url} carries {value}");
            }
        }
    }
    // The preview is the label as it would print, for the signed-in screen (no token).
    let (status, headers, _) = station
        .send(station.get(
            "/api/v1/orders/CHA999925000042/bags/1/preview.png",
            Some(&nurse),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "image/png");
    let (status, _, _) = station
        .send(station.get("/api/v1/orders/CHA999925000042/bags/1/preview.png", None))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no session, no token");

    // Roles: a tech is not a nurse, a nurse not an admin.
    let (status, _, _) = station.send(station.get("/print", Some(&tech))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = station.send(station.get("/admin", Some(&nurse))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The static files are the daemon's own.
    for file in ["htmx.min.js", "sse.js", "app.js", "app.css"] {
        let (status, headers, _) = station
            .send(station.get(&format!("/static/{file}"), None))
            .await;
        assert_eq!(status, StatusCode::OK, "{file}");
        assert_secure(&headers);
    }
    station.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guards_refuse_a_foreign_host_a_cross_site_post_and_a_missing_session() {
    let station = Station::start("ui-guards", "site-apheresis-1", "", None).await;
    // No session: pages go to sign-in, htmx requests are told to.
    let (status, headers, _) = station.send(station.get("/print", None)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/login");
    let (status, headers, _) = station
        .send(station.post("/ui/print/orders/CHA999925000042/bags/1", None, ""))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["hx-redirect"], "/login");
    // A DNS-rebinding page names its own host.
    let request = Request::get("/login")
        .header(header::HOST, "evil.example:7370")
        .body(Body::empty())
        .unwrap();
    let (status, _, _) = station.send(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A cross-site form post, even with a session cookie (SameSite would keep it out, too).
    let nurse = station.sign_in("nurse1", "111111").await;
    for (name, value) in [
        ("origin", "http://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let request = Request::post("/ui/print/orders/CHA999925000042/bags/1")
            .header(header::HOST, &station.host)
            .header(header::COOKIE, format!("coi_session={nurse}"))
            .header(name, value)
            .body(Body::empty())
            .unwrap();
        let (status, _, _) = station.send(request).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {value}");
    }
    let request = Request::post("/login")
        .header(header::HOST, &station.host)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("origin", "http://evil.example")
        .body(Body::from("operator=nurse1&pin=111111"))
        .unwrap();
    let (status, _, _) = station.send(request).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "login CSRF");
    assert_eq!(station.jobs(), 0, "nothing printed");
    station.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_wrong_pins_lock_out_and_an_idle_session_ends() {
    let station = Station::start(
        "ui-lockout",
        "site-apheresis-1",
        "",
        Some(Duration::from_millis(700)),
    )
    .await;
    for n in 1..=4 {
        let (status, _, page) = station
            .send(station.post("/login", None, "operator=nurse1&pin=999999"))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {n}");
        assert!(page.contains("Wrong operator ID or PIN"), "{page}");
    }
    let (_, _, page) = station
        .send(station.post("/login", None, "operator=nurse1&pin=999999"))
        .await;
    assert!(page.contains("Locked out after 5 wrong PINs"), "{page}");
    // The right PIN does not open a locked operator.
    let (status, _, page) = station
        .send(station.post("/login", None, "operator=nurse1&pin=111111"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("Locked out"), "{page}");
    let kinds: Vec<String> = station
        .journal()
        .audit_entries(None)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(kinds.contains(&"operator_locked".to_owned()), "{kinds:?}");
    // An unknown operator reads the same as a wrong PIN.
    let (_, _, page) = station
        .send(station.post("/login", None, "operator=nobody&pin=111111"))
        .await;
    assert!(page.contains("Wrong operator ID or PIN."));

    // Idle: used within the idle time it lives; left alone it ends.
    let tech = station.sign_in("tech1", "222222").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, _, _) = station.send(station.get("/receive", Some(&tech))).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, _, _) = station.send(station.get("/receive", Some(&tech))).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the last use restarted the idle time"
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    let (status, headers, _) = station.send(station.get("/receive", Some(&tech))).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/login");
    station.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_carry_the_signed_in_operator_and_reprint_and_void_ask_for_the_pin() {
    let station = Station::start("ui-actions", "site-apheresis-1", "", None).await;
    let nurse = station.sign_in("nurse1", "111111").await;
    let (status, _, main) = station
        .send(station.post("/ui/print/orders/CHA999925000042/bags/1", Some(&nurse), ""))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(main.contains("data-job-state=\"confirmed\""), "{main}");
    assert!(main.contains("Now scan the label you just printed"));
    assert!(
        main.contains("data-bag=\"1\" data-label=\"printed\""),
        "{main}"
    );

    // Reprint: a reason and the PIN again; a wrong PIN prints nothing.
    let path = "/ui/print/orders/CHA999925000042/bags/1/reprint";
    let (_, _, main) = station
        .send(station.post(
            path,
            Some(&nurse),
            "reason=Printer+jammed&details=&pin=000000",
        ))
        .await;
    assert!(
        main.contains("Nothing done: Wrong operator ID or PIN"),
        "{main}"
    );
    let (_, _, main) = station
        .send(station.post(path, Some(&nurse), "reason=&details=&pin=111111"))
        .await;
    assert!(main.contains("Choose a reason"), "{main}");
    assert_eq!(station.jobs(), 1);
    let (_, _, main) = station
        .send(station.post(
            path,
            Some(&nurse),
            "reason=Printer+jammed&details=roll+3&pin=111111",
        ))
        .await;
    assert!(main.contains("data-job-state=\"confirmed\""), "{main}");

    // Verify typed into the page: the label's Data Matrix, recorded as the nurse's.
    let (_, _, main) = station
        .send(station.post(
            "/ui/print/verify",
            Some(&nurse),
            "coi=CHA999925000042&data=%3D%2B02000%3DA99992512345601%26%2FCHA999925000042",
        ))
        .await;
    assert!(main.contains("VERIFIED"), "{main}");

    // Void: the PIN again, then the label no longer counts.
    let job: String = {
        let conn = rusqlite::Connection::open(&station.dir.0).unwrap();
        conn.query_row(
            "SELECT job_id FROM print_jobs WHERE reprint = 1",
            [],
            |row| row.get(0),
        )
        .unwrap()
    };
    let void = format!("/ui/print/jobs/{job}/void");
    let (_, _, main) = station
        .send(station.post(
            &void,
            Some(&nurse),
            "coi=CHA999925000042&reason=Printed+in+error&details=&pin=123123",
        ))
        .await;
    assert!(main.contains("Nothing done"), "{main}");
    let (_, _, main) = station
        .send(station.post(
            &void,
            Some(&nurse),
            "coi=CHA999925000042&reason=Printed+in+error&details=&pin=111111",
        ))
        .await;
    assert!(main.contains("VOIDED"), "{main}");

    let conn = rusqlite::Connection::open(&station.dir.0).unwrap();
    let operators: Vec<Option<String>> = conn
        .prepare("SELECT operator FROM print_jobs ORDER BY id")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        operators,
        [Some("nurse1".to_owned()), Some("nurse1".to_owned())]
    );
    let scan_operator: Option<String> = conn
        .query_row(
            "SELECT operator FROM scans ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(scan_operator.as_deref(), Some("nurse1"));
    let void_audit: String = conn
        .query_row(
            "SELECT details FROM audit WHERE details LIKE '%\"voided\"%' ORDER BY seq DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(void_audit.contains("nurse1"), "{void_audit}");
    station.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_scanner_read_belongs_to_the_tech_signed_in_at_the_receipt_screen() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let extra = format!(
        "[[scanners]]\nname = \"dock\"\nsource = \"tcp-listen://127.0.0.1:{port}\"\nstep = \"receipt\"\n"
    );
    let station = Station::start("ui-station", "site-lab-1", &extra, None).await;
    let tech = station.sign_in("tech1", "222222").await;
    let (status, _, page) = station.send(station.get("/receive", Some(&tech))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("ORD-25-000043") && page.contains("missing"),
        "{page}"
    );
    let mut scanner = loop {
        if let Ok(s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::io::AsyncWriteExt::write_all(
        &mut scanner,
        b"=+02000=A99992512345701&/CHA999925000043\r",
    )
    .await
    .unwrap();
    let mut recorded = None;
    for _ in 0..200 {
        let conn = rusqlite::Connection::open(&station.dir.0).unwrap();
        recorded = conn
            .query_row("SELECT operator, verdict FROM scans", [], |r| {
                Ok((r.get::<_, Option<String>>(0)?, r.get::<_, String>(1)?))
            })
            .ok();
        if recorded.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        recorded,
        Some((Some("tech1".to_owned()), "match".to_owned()))
    );
    // Typed into the page: the same bag again is refused (already received), as the tech's.
    let (_, _, verdict) = station
        .send(station.post(
            "/ui/receive",
            Some(&tech),
            "data=%3D%2B02000%3DA99992512345701%26%2FCHA999925000043",
        ))
        .await;
    assert!(verdict.contains("data-verdict=\"mismatch\""), "{verdict}");
    assert!(verdict.contains("ALREADY RECEIVED"), "{verdict}");
    // Disabled by an admin: the session ends at its next action.
    let admin = station.sign_in("admin1", "333333").await;
    let (_, _, page) = station
        .send(station.post(
            "/ui/admin/operators/disable",
            Some(&admin),
            "id=tech1&pin=333333",
        ))
        .await;
    assert!(page.contains("disabled and signed out"), "{page}");
    let (status, _, _) = station.send(station.get("/receive", Some(&tech))).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    station.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_closes_a_parked_event_with_the_pin_and_requeues_another() {
    let central = support::central::Central::start().await;
    central.recorded().refuse_all = true;
    let token = std::env::temp_dir().join(format!("coi-ui-admin-{}.token", std::process::id()));
    support::central::write_token(&token);
    let extra = format!(
        "[central]\nurl = \"{}\"\ntoken_file = \"{}\"\ntimeout_secs = 2\n",
        central.url,
        token.display()
    );
    let station = Station::start("ui-admin", "site-lab-1", &extra, None).await;
    let tech = station.sign_in("tech1", "222222").await;
    // Two receipts: a match and a mismatch, each with its event, both refused by central.
    for data in [
        "%3D%2B02000%3DA99992512345701%26%2FCHA999925000043",
        "%3D%2B02000%3DA99992512345601%26%2FCHA999925000043",
    ] {
        let (status, _, _) = station
            .send(station.post("/ui/receive", Some(&tech), &format!("data={data}")))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let parked = || -> Vec<String> {
        let conn = rusqlite::Connection::open(&station.dir.0).unwrap();
        conn.prepare(
            "SELECT event_id FROM outbox WHERE state = 'parked' AND closed_at IS NULL ORDER BY id",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
    };
    for _ in 0..300 {
        if parked().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let events = parked();
    assert_eq!(events.len(), 2, "both refusals parked");
    let admin = station.sign_in("admin1", "333333").await;
    let (_, _, page) = station.send(station.get("/admin", Some(&admin))).await;
    for event in &events {
        assert!(
            page.contains(&format!("data-event=\"{event}\" data-state=\"parked\"")),
            "{page}"
        );
    }
    // Closing one needs a reason and the admin's PIN.
    let ack = |pin: &str| format!("event_id={}&reason=entered+by+hand&pin={pin}", events[0]);
    let (_, _, page) = station
        .send(station.post("/ui/admin/outbox/ack", Some(&admin), &ack("000000")))
        .await;
    assert!(
        page.contains("Nothing done: Wrong operator ID or PIN"),
        "{page}"
    );
    assert_eq!(parked().len(), 2);
    let (_, _, page) = station
        .send(station.post("/ui/admin/outbox/ack", Some(&admin), &ack("333333")))
        .await;
    assert!(page.contains("Closed: it will never be sent"), "{page}");
    assert_eq!(parked(), [events[1].clone()]);
    // The cause fixed, the other goes again and is delivered.
    central.recorded().refuse_all = false;
    let (_, _, page) = station
        .send(station.post(
            "/ui/admin/outbox/requeue",
            Some(&admin),
            &format!("event_id={}", events[1]),
        ))
        .await;
    assert!(page.contains("Requeued"), "{page}");
    for _ in 0..300 {
        if central
            .recorded()
            .events
            .iter()
            .any(|(id, _, _)| *id == events[1])
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        central
            .recorded()
            .events
            .iter()
            .any(|(id, _, _)| *id == events[1])
    );
    let conn = rusqlite::Connection::open(&station.dir.0).unwrap();
    let audited: String = conn
        .query_row(
            "SELECT group_concat(details, ' ') FROM audit WHERE subject IN (?1, ?2) OR details LIKE '%' || ?1 || '%'",
            [&events[0], &events[1]],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        audited.contains("admin1"),
        "who closed and requeued is audited: {audited}"
    );
    let _ = std::fs::remove_file(&token);
    station.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_wrong_pins_locks_out_as_surely_as_one_at_a_time() {
    let station = Station::start("ui-burst", "site-apheresis-1", "", None).await;
    let station = std::sync::Arc::new(station);
    let mut tries = Vec::new();
    for n in 0..9 {
        let station = station.clone();
        tries.push(tokio::spawn(async move {
            // Nine guesses at once: each waits its turn and sees the lockout the ones before
            // it recorded.
            let pin = format!("99999{n}");
            station
                .send(station.post("/login", None, &format!("operator=nurse1&pin={pin}")))
                .await
        }));
    }
    let mut accepted = 0;
    let mut busy = 0;
    for attempt in tries {
        let (status, _, page) = attempt.await.unwrap();
        accepted += usize::from(status == StatusCode::SEE_OTHER);
        busy += usize::from(page.contains("Busy checking other PINs"));
    }
    assert!(
        busy <= 3,
        "{busy} of 9 turned away as busy: too few checked to lock out"
    );
    let (status, _, page) = station
        .send(station.post("/login", None, "operator=nurse1&pin=111111"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{page}");
    assert!(page.contains("Locked out"), "{page}");
    assert_eq!(accepted, 0, "no guess was the PIN");
    let locks: usize = station
        .journal()
        .audit_entries(None)
        .unwrap()
        .iter()
        .filter(|e| e.kind == "operator_locked")
        .count();
    assert_eq!(locks, 1, "locked once, audited once");
    if let Ok(station) = std::sync::Arc::try_unwrap(station) {
        station.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previews_and_operator_changes_are_for_the_roles_that_need_them() {
    let station = Station::start("ui-roles", "site-apheresis-1", "", None).await;
    let tech = station.sign_in("tech1", "222222").await;
    let preview = "/api/v1/orders/CHA999925000042/bags/1/preview.png";
    let (status, _, _) = station.send(station.get(preview, Some(&tech))).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a tech's session is no token"
    );
    let (status, _, _) = station
        .send(station.get("/ui/print/orders/CHA999925000042/bags", Some(&tech)))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A nurse sees previews of this site's collections only.
    let nurse = station.sign_in("nurse1", "111111").await;
    let (status, _, _) = station.send(station.get(preview, Some(&nurse))).await;
    assert_eq!(status, StatusCode::OK);
    // Adding an operator asks for the admin's PIN again.
    let admin = station.sign_in("admin1", "333333").await;
    let add = |pin: &str| format!("id=rn2&name=Second+Nurse&role=nurse&new_pin=135790&pin={pin}");
    let (_, _, page) = station
        .send(station.post("/ui/admin/operators", Some(&admin), &add("000000")))
        .await;
    assert!(page.contains("Nothing done"), "{page}");
    let (_, _, page) = station
        .send(station.post("/ui/admin/operators", Some(&admin), &add("333333")))
        .await;
    assert!(page.contains("Added operator rn2"), "{page}");
    let rn2 = station.sign_in("rn2", "135790").await;
    let (status, _, _) = station.send(station.get("/print", Some(&rn2))).await;
    assert_eq!(status, StatusCode::OK);
    station.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_of_another_order_scanned_at_an_orders_page_is_not_verified() {
    let station = Station::start("ui-wrong-order", "site-apheresis-1", "", None).await;
    // Two orders to label at this site, each with a label waiting for its check.
    station
        .edit_orders(|orders| orders[1]["status"] = "scheduled".into())
        .await;
    let nurse = station.sign_in("nurse1", "111111").await;
    for path in [
        "/ui/print/orders/CHA999925000042/bags/1",
        "/ui/print/orders/CHA999925000043/bags/1",
    ] {
        let (_, _, main) = station.send(station.post(path, Some(&nurse), "")).await;
        assert!(main.contains("data-job-state=\"confirmed\""), "{main}");
    }
    // On order 42's page, order 43's label: refused as not this bag's, nothing verified.
    let (_, _, main) = station
        .send(station.post(
            "/ui/print/verify",
            Some(&nurse),
            "coi=CHA999925000042&data=%3D%2B02000%3DA99992512345701%26%2FCHA999925000043",
        ))
        .await;
    assert!(main.contains("NOT VERIFIED"), "{main}");
    assert!(main.contains("WRONG ORDER"), "{main}");
    assert!(!main.contains("data-label=\"verified\""), "{main}");
    let verified: i64 = rusqlite::Connection::open(&station.dir.0)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM print_jobs WHERE verification IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(verified, 0, "neither label was checked by a wrong scan");
    // The same label at its own order's page is verified.
    let (_, _, main) = station
        .send(station.post(
            "/ui/print/verify",
            Some(&nurse),
            "coi=CHA999925000043&data=%3D%2B02000%3DA99992512345701%26%2FCHA999925000043",
        ))
        .await;
    assert!(
        main.contains("VERIFIED") && !main.contains("NOT VERIFIED"),
        "{main}"
    );
    station.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_lets_a_locked_out_operator_in_again_and_half_a_read_says_how_long_it_waits() {
    let station = Station::start("ui-unlock", "site-lab-1", "", None).await;
    for _ in 0..5 {
        station
            .send(station.post("/login", None, "operator=tech1&pin=999999"))
            .await;
    }
    let (_, _, page) = station
        .send(station.post("/login", None, "operator=tech1&pin=222222"))
        .await;
    assert!(page.contains("Locked out"), "{page}");
    let admin = station.sign_in("admin1", "333333").await;
    let (_, _, page) = station.send(station.get("/admin", Some(&admin))).await;
    assert!(page.contains("Unlock…"), "{page}");
    assert!(
        !page.contains("Disable admin1"),
        "an admin is not offered to disable themselves"
    );
    let (_, _, page) = station
        .send(station.post(
            "/ui/admin/operators/enable",
            Some(&admin),
            "id=tech1&pin=333333",
        ))
        .await;
    assert!(page.contains("can sign in again"), "{page}");
    let tech = station.sign_in("tech1", "222222").await;
    let kinds: Vec<String> = station
        .journal()
        .audit_entries(None)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(kinds.contains(&"operator_enabled".to_owned()), "{kinds:?}");
    // Half a read: the screen knows how long it waits for the other half.
    let (_, _, verdict) = station
        .send(station.post("/ui/receive", Some(&tech), "data=+%3DA99992512345701+"))
        .await;
    assert!(verdict.contains("data-verdict=\"incomplete\""), "{verdict}");
    assert!(verdict.contains("data-pair-window=\"15\""), "{verdict}");
    station.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_naming_no_bag_flags_nothing_and_an_order_that_cannot_be_labelled_offers_no_print() {
    let station = Station::start("ui-no-bag", "site-apheresis-1", "", None).await;
    let nurse = station.sign_in("nurse1", "111111").await;
    let (_, _, main) = station
        .send(station.post("/ui/print/orders/CHA999925000042/bags/1", Some(&nurse), ""))
        .await;
    assert!(main.contains("data-job-state=\"confirmed\""), "{main}");
    // Bag 3 of a two-bag order: names no bag of it, so the one label waiting is not flagged.
    let (_, _, main) = station
        .send(station.post(
            "/ui/print/verify",
            Some(&nurse),
            "coi=CHA999925000042&data=%3D%2B02000%3DA99992512345603%26%2FCHA999925000042",
        ))
        .await;
    assert!(main.contains("NOT VERIFIED"), "{main}");
    assert!(
        main.contains("data-bag=\"1\" data-label=\"printed\""),
        "{main}"
    );
    // A shipped order: the page says why no label, and offers no Print button.
    let (status, _, page) = station
        .send(station.get("/print/orders/CHA999925000043", Some(&nurse)))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("NO LABELS for this order"), "{page}");
    assert!(!page.contains("data-action=\"print\""), "{page}");
    station.stop().await;
}

//! The screens' HTML (issue #12), rendered on the server with maud (every value escaped) from
//! the same report types as the JSON API. Pure: data in, markup out. Large type, words with
//! every colour, one action per button; htmx swaps fragments and the SSE extension brings
//! verdicts and device states as they happen. No inline script or style (the CSP forbids
//! them): behaviour is in /static/app.js.

use maud::{DOCTYPE, Markup, html};

use crate::agent::DeviceReport;
use crate::agent::sessions::Session;
use crate::journal::operators::OperatorRow;
use crate::journal::outbox::OutboxEntry;
use crate::operators::Role;
use crate::orders::record::Order;
use crate::report::{BagLabelReport, PrintReport, ScanReport};

/// Reasons offered for a reprint or a void (free text may be added).
pub const REPRINT_REASONS: &[&str] = &[
    "Label damaged or smudged",
    "Label did not print fully",
    "Label fell off or was torn",
    "Printer jammed",
];
pub const VOID_REASONS: &[&str] = &[
    "Printed on the wrong bag",
    "Printed in error",
    "Label damaged before use",
    "Verify scan flagged the label",
];

/// A time in a named zone: `2026-11-30 09:05 EST (America/New_York)`.
pub fn local_time(at: jiff::Timestamp, zone: &jiff::tz::TimeZone) -> String {
    let zoned = at.to_zoned(zone.clone());
    let name = zone.iana_name().unwrap_or("UTC");
    format!("{} ({name})", zoned.strftime("%Y-%m-%d %H:%M %Z"))
}

/// A scan's time to the second, so two scans of one bag read apart.
fn scan_time(at: jiff::Timestamp, zone: &jiff::tz::TimeZone) -> String {
    let zoned = at.to_zoned(zone.clone());
    let name = zone.iana_name().unwrap_or("UTC");
    format!("{} ({name})", zoned.strftime("%Y-%m-%d %H:%M:%S %Z"))
}

/// The zone named `name`, or UTC.
pub fn zone(name: Option<&str>) -> jiff::tz::TimeZone {
    name.and_then(|n| jiff::tz::TimeZone::get(n).ok())
        .unwrap_or(jiff::tz::TimeZone::UTC)
}

/// The page around every screen.
pub fn page(title: &str, session: Option<&Session>, station: &str, body: &Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // htmx may not inject styles or evaluate code: the CSP allows neither.
                meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"selfRequestsOnly":true,"attributesToSettle":["class","width","height"]}"#;
                title { (title) " — coi-agent" }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/htmx.min.js" {}
                script src="/static/sse.js" {}
                script src="/static/app.js" defer {}
            }
            body {
                header.top {
                    span.brand { "coi-agent" }
                    span.station { (station) }
                    @if let Some(session) = session {
                        nav {
                            @if matches!(session.role, Role::Nurse | Role::Admin) { a href="/print" { "Print" } }
                            @if matches!(session.role, Role::Tech | Role::Admin) { a href="/receive" { "Receive" } }
                            @if session.role == Role::Admin { a href="/admin" { "Admin" } }
                        }
                        span.who data-operator=(session.operator) { (session.name) " (" (session.role.as_str()) ")" }
                        form.signout method="post" action="/logout" {
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

pub fn login(message: Option<&str>, operator: &str) -> Markup {
    let known = !operator.is_empty();
    html! {
        section.login {
            h1 { "Sign in" }
            @if let Some(message) = message {
                p.alert role="alert" { (message) }
            }
            form method="post" action="/login" autocomplete="off" {
                label for="operator" { "Operator ID (scan your badge)" }
                input #operator name="operator" value=(operator) required autofocus[!known] maxlength="64";
                label for="pin" { "PIN" }
                input #pin name="pin" type="password" inputmode="numeric" required maxlength="32" autocomplete="off" autofocus[known];
                button.primary type="submit" { "Sign in" }
            }
        }
    }
}

/// A printer's state in words, with what to do.
pub fn printer_panel(printers: &[DeviceReport]) -> Markup {
    html! {
        div #printer-panel {
            @if printers.is_empty() {
                p.state.bad data-printer-state="none" { "NO PRINTER configured: ask site IT." }
            }
            @for printer in printers {
                @let (class, words) = printer_words(printer);
                p class={"state " (class)} data-printer=(printer.name) data-printer-state=(printer.state)
                    data-printer-fault=[printer.fault.as_deref()] {
                    strong { "Printer " (printer.name) ": " } (words)
                }
            }
        }
    }
}

fn printer_words(printer: &DeviceReport) -> (&'static str, String) {
    match (printer.state.as_str(), printer.fault.as_deref()) {
        ("ready", _) => ("good", "READY".to_owned()),
        ("no_status", _) => (
            "warn",
            "READY (it does not report its state: check each label)".to_owned(),
        ),
        ("starting", _) => ("warn", "STARTING…".to_owned()),
        (_, Some(code)) => match crate::printer::status::Fault::from_code(code) {
            Some(fault) => (
                "bad",
                format!(
                    "{}: {}",
                    code.replace('_', " ").to_uppercase(),
                    fault.advice()
                ),
            ),
            None => (
                "bad",
                "NOT AVAILABLE: check it is on and connected.".to_owned(),
            ),
        },
        (state, None) => ("bad", state.replace('_', " ").to_uppercase()),
    }
}

/// One row of the print station's order list.
#[derive(Debug)]
pub struct OrderRow<'a> {
    pub order: &'a Order,
    pub due_today: bool,
}

fn patient_name(order: &Order) -> String {
    format!(
        "{}, {}",
        order.patient.family_name.to_uppercase(),
        order.patient.given_name
    )
}

pub fn print_list(rows: &[OrderRow<'_>], printers: &[DeviceReport]) -> Markup {
    html! {
        div.bar {
            h1 { "Print station" }
            div hx-ext="sse" sse-connect="/ui/events/print" {
                div sse-swap="printer" hx-swap="innerHTML" { (printer_panel(printers)) }
            }
        }
        label for="order-search" { "Find an order: patient name, COI or order ID" }
        input #order-search type="search" autocomplete="off" data-filter="#orders tbody tr[data-search]" data-none="#no-match" autofocus;
        p #no-match.notice.warn hidden { "No order matches. Check the spelling, or search by COI or order ID." }
        table #orders {
            thead { tr { th { "Collection" } th { "Patient" } th { "Date of birth" } th { "Order" } th { "COI" } th { "Bags" } th { "Status" } } }
            tbody {
                @if rows.is_empty() {
                    tr { td colspan="7" { "No orders are to be collected at this site." } }
                }
                @for row in rows {
                    @let o = row.order;
                    @let zone = zone(Some(&o.collection.time_zone));
                    tr data-search=(format!("{} {} {} {} {}", o.patient.family_name, o.patient.given_name, o.coi.as_str(), o.order_id, o.patient.id).to_lowercase())
                       data-coi=(o.coi.as_str()) class=[row.due_today.then_some("today")] {
                        td { @if row.due_today { strong { "TODAY " } } (local_time(o.collection.scheduled_for, &zone)) }
                        td { a href={"/print/orders/" (o.coi.as_str())} { (patient_name(o)) } }
                        td { (o.patient.date_of_birth.to_string()) }
                        td { (o.order_id) }
                        td.mono { (o.coi.as_str()) }
                        td { (o.collection.bags) }
                        td { (o.status.as_str()) }
                    }
                }
            }
        }
    }
}

/// The order's page at the print station: the patient, each bag with its label, the printer,
/// and the verify scan.
pub fn print_order(order: &Order, main: &Markup, printers: &[DeviceReport]) -> Markup {
    let p = &order.patient;
    html! {
        div.bar {
            p { a href="/print" { "← All orders" } }
            div hx-ext="sse" sse-connect={"/ui/events/print?coi=" (order.coi.as_str())} {
                div sse-swap="printer" hx-swap="innerHTML" { (printer_panel(printers)) }
                // A job's state or a verify scan changed a bag: its card is read again (the
                // message and the scan box stay as they are).
                div #order-refresh hx-get={"/ui/print/orders/" (order.coi.as_str()) "/bags"} hx-trigger="sse:job, sse:verify"
                    hx-target="#bags" hx-swap="outerHTML" {}
                // A verify scanner's result, as it happens.
                div #verify-live sse-swap="verify" hx-swap="innerHTML" {}
            }
        }
        section.patient {
            h1 data-patient { (patient_name(order)) }
            dl {
                dt { "Date of birth" } dd { (p.date_of_birth.to_string()) }
                dt { (p.id_label) } dd { (p.id) }
                dt { "Order" } dd { (order.order_id) }
                dt { "COI" } dd.mono { (order.coi.as_str()) }
                dt { "DIN" } dd.mono { (order.collection.din.as_str()) }
                dt { "Therapy" } dd { (order.therapy.name) }
            }
        }
        (main)
    }
}

/// What the last action at the print station did, in words.
#[derive(Debug)]
pub enum Notice<'a> {
    None,
    Printed(&'a PrintReport),
    Refused(String),
    Verified(&'a ScanReport),
    Done(String),
}

/// The part of an order's page that actions replace: message, bags, verify scan.
pub fn order_main(
    order: &Order,
    bags: &[BagLabelReport],
    notice: &Notice<'_>,
    verify_job: Option<&str>,
    refusal: Option<&str>,
) -> Markup {
    let coi = order.coi.as_str();
    let missing = bags
        .iter()
        .filter(|b| matches!(b.label, "none" | "voided"))
        .count();
    html! {
        section #order-main {
            @match notice {
                Notice::None => {}
                Notice::Printed(report) => {
                    @let good = report.state == "confirmed";
                    p class={"notice " (if good { "good" } else { "bad" })} role="status" data-job-state=(report.state) {
                        strong { "Bag " (report.bag) ": " } (report.message)
                        @if !report.message.ends_with('.') { "." }
                        @if good { " Now scan the label you just printed." }
                    }
                }
                Notice::Refused(message) => p.notice.bad role="alert" data-refused { (message) }
                Notice::Verified(scan) => (verify_result(scan))
                Notice::Done(message) => p.notice.good role="status" { (message) }
            }
            @if let Some(refusal) = refusal {
                p.notice.bad data-no-labels role="status" { "NO LABELS for this order: " (refusal) }
            }
            div.actions {
                @if missing > 1 && refusal.is_none() {
                    button.primary hx-post={"/ui/print/orders/" (coi) "/all"} hx-target="#order-main" hx-swap="outerHTML"
                        data-action="print-all" { "Print all bags (" (missing) ")" }
                }
            }
            (bag_cards(order, bags, refusal.is_none()))
            (verify_panel(coi, verify_job))
        }
    }
}

/// The order's bag cards (read again when a job or a verify scan changes one).
pub fn bag_cards(order: &Order, bags: &[BagLabelReport], printable: bool) -> Markup {
    html! {
        div #bags.bags {
            @for bag in bags { (bag_card(order, bag, printable)) }
        }
    }
}

fn label_words(label: &str) -> (&'static str, &'static str) {
    match label {
        "none" => ("none", "NO LABEL YET"),
        "queued" => ("warn", "PRINTING…"),
        "printed" => ("warn", "PRINTED — scan it to verify"),
        "unconfirmed" => (
            "bad",
            "UNCONFIRMED — check the printer before printing again",
        ),
        "verified" => ("good", "VERIFIED"),
        "flagged" => ("bad", "FLAGGED — the scan did not match: void it"),
        "voided" => ("bad", "VOIDED — print a new label"),
        _ => ("bad", "UNKNOWN"),
    }
}

fn bag_card(order: &Order, bag: &BagLabelReport, printable: bool) -> Markup {
    let coi = order.coi.as_str();
    let (class, words) = label_words(bag.label);
    let n = bag.bag;
    html! {
        article.bag data-bag=(n) data-label=(bag.label) {
            h2 { "Bag " (n) " of " (order.collection.bags) }
            p class={"state " (class)} { (words) @if bag.received { " · received" } }
            // The query changes with the bag's label, so a new label is drawn afresh.
            img.preview src={"/api/v1/orders/" (coi) "/bags/" (n) "/preview.png?v=" (bag.job_id.as_deref().unwrap_or("none")) "-" (bag.label)}
                alt={"Label preview, bag " (n)} loading="lazy";
            @if !printable {
            } @else if matches!(bag.label, "none" | "voided") {
                button.primary hx-post={"/ui/print/orders/" (coi) "/bags/" (n)} hx-target="#order-main" hx-swap="outerHTML"
                    data-action="print" data-bag=(n) { "Print bag " (n) }
            } @else {
                details {
                    summary data-action="reprint-open" data-bag=(n) { "Reprint…" }
                    form hx-post={"/ui/print/orders/" (coi) "/bags/" (n) "/reprint"} hx-target="#order-main" hx-swap="outerHTML" {
                        (reason_fields(REPRINT_REASONS, &format!("reprint-{n}")))
                        (pin_field(&format!("reprint-{n}")))
                        button type="submit" data-action="reprint" data-bag=(n) { "Reprint bag " (n) }
                    }
                }
                @if let Some(job) = &bag.job_id {
                    details {
                        summary data-action="void-open" data-bag=(n) { "Void this label…" }
                        form hx-post={"/ui/print/jobs/" (job) "/void"} hx-target="#order-main" hx-swap="outerHTML" {
                            input type="hidden" name="coi" value=(coi);
                            (reason_fields(VOID_REASONS, &format!("void-{n}")))
                            (pin_field(&format!("void-{n}")))
                            button.danger type="submit" data-action="void" data-bag=(n) { "Void bag " (n) "'s label" }
                        }
                    }
                }
            }
        }
    }
}

fn reason_fields(reasons: &[&str], id: &str) -> Markup {
    html! {
        label for={(id) "-reason"} { "Reason" }
        select id={(id) "-reason"} name="reason" required {
            option value="" { "Choose…" }
            @for reason in reasons { option value=(reason) { (reason) } }
            option value="Other" { "Other (say below)" }
        }
        label for={(id) "-details"} { "Details" }
        input id={(id) "-details"} name="details" maxlength="200";
    }
}

fn pin_field(id: &str) -> Markup {
    html! {
        label for={(id) "-pin"} { "Your PIN again" }
        input id={(id) "-pin"} name="pin" type="password" inputmode="numeric" required maxlength="32" autocomplete="off";
    }
}

fn verify_panel(coi: &str, job: Option<&str>) -> Markup {
    html! {
        form.verify hx-post="/ui/print/verify" hx-target="#order-main" hx-swap="outerHTML" {
            input type="hidden" name="coi" value=(coi);
            @if let Some(job) = job { input type="hidden" name="job_id" value=(job); }
            label for="verify-data" { "Scan the label just printed (or type what the scanner reads)" }
            input #verify-data name="data" autocomplete="off" maxlength="1024" data-scan-input;
            button type="submit" { "Check" }
        }
    }
}

/// A verdict, large, in words and colour: `data-verdict` is `match`, `sample`, `incomplete`
/// or `mismatch`.
pub fn verdict(scan: &ScanReport, zone: &jiff::tz::TimeZone, pair_window_secs: u64) -> Markup {
    let v = &scan.verdict;
    let (class, headline) = match v.verdict {
        "match" => ("good", "MATCH"),
        "sample" => ("good", "SAMPLE TUBE"),
        "incomplete" => ("warn", "SCAN THE OTHER BARCODE"),
        _ => ("bad", "MISMATCH"),
    };
    let at = scan.at.parse::<jiff::Timestamp>().ok();
    html! {
        div class={"verdict " (class)} data-verdict=(v.verdict) data-scan-id=(scan.id) role="alert" aria-live="assertive"
            data-pair-window=[(v.verdict == "incomplete").then_some(pair_window_secs)] {
            p.headline { (headline) }
            @if let Some(reason) = v.reason { p.reason data-reason=(reason) { (reason.replace('_', " ").to_uppercase()) } }
            p.message { (v.message) }
            p.meta { (meta_line(v.order_id.as_deref(), v.bag.zip(v.bags), at, zone)) }
        }
    }
}

pub fn verify_result(scan: &ScanReport) -> Markup {
    let good = scan.is_good();
    // A label that reads right but was flagged by an earlier scan stays flagged: say that, not
    // "label correct" under a red headline.
    let still_flagged =
        scan.verdict.verdict == "match" && scan.verification.as_deref() == Some("flagged");
    let at = scan.at.parse::<jiff::Timestamp>().ok();
    html! {
        div class={"verdict " (if good { "good" } else { "bad" })} data-verdict=(scan.verdict.verdict)
            data-verification=[scan.verification.as_deref()] data-scan-id=(scan.id) role="alert" {
            p.headline { @if good { "VERIFIED" } @else if scan.verdict.verdict == "incomplete" { "SCAN THE OTHER BARCODE" } @else { "NOT VERIFIED" } }
            @if still_flagged {
                p.message { "This label reads right, but an earlier scan flagged it: void it and print the bag's label again." }
            } @else {
                p.message { (scan.verdict.message) }
            }
            @if let Some(at) = at { p.meta { (scan_time(at, &jiff::tz::TimeZone::system())) } }
        }
    }
}

pub fn receive(
    last: Option<&ScanReport>,
    recent: &Markup,
    expected: &Markup,
    scanners: &[String],
    zone: &jiff::tz::TimeZone,
    pair_window_secs: u64,
) -> Markup {
    html! {
        div hx-ext="sse" sse-connect="/ui/events/receive" {
            div #verdict-area sse-swap="verdict" hx-swap="innerHTML" {
                @match last {
                    Some(scan) => (verdict(scan, zone, pair_window_secs)),
                    None => div.verdict.idle data-verdict="waiting" { p.headline { "READY" } p.message { "Scan a bag." } },
                }
            }
            form.scan hx-post="/ui/receive" hx-target="#verdict-area" hx-swap="innerHTML" {
                label for="scan-data" {
                    "Scanner: "
                    @if scanners.is_empty() { "none configured — scan into this box" } @else { (scanners.join(", ")) " or this box" }
                    " (scan both barcodes of a bag with the same one)"
                }
                input #scan-data name="data" autocomplete="off" maxlength="1024" autofocus data-scan-input;
                button type="submit" { "Check" }
            }
            div.columns {
                section {
                    h2 { "Expected here" }
                    div sse-swap="expected" hx-swap="innerHTML" { (expected) }
                }
                section {
                    h2 { "Recent scans" }
                    div sse-swap="recent" hx-swap="innerHTML" { (recent) }
                }
            }
        }
    }
}

/// "Order X · bag 1 of 2 · time", leaving out what is not known.
fn meta_line(
    order: Option<&str>,
    bag: Option<(u8, u8)>,
    at: Option<jiff::Timestamp>,
    zone: &jiff::tz::TimeZone,
) -> String {
    let mut parts = Vec::new();
    if let Some(order) = order {
        parts.push(format!("Order {order}"));
    }
    if let Some((bag, bags)) = bag {
        parts.push(format!("bag {bag} of {bags}"));
    }
    if let Some(at) = at {
        parts.push(scan_time(at, zone));
    }
    parts.join(" · ")
}

pub fn recent_scans(scans: &[ScanReport], zone: &jiff::tz::TimeZone) -> Markup {
    html! {
        ol.recent {
            @if scans.is_empty() { li { "No scans yet." } }
            @for scan in scans {
                @let at = scan.at.parse::<jiff::Timestamp>().ok();
                li data-verdict=(scan.verdict.verdict) {
                    strong { (scan.verdict.verdict.to_uppercase()) }
                    @if let Some(reason) = scan.verdict.reason { " " (reason.replace('_', " ")) }
                    @if let Some(order) = &scan.verdict.order_id { " · " (order) }
                    @if let Some(bag) = scan.verdict.bag { " bag " (bag) }
                    @if let Some(at) = at { " · " (scan_time(at, zone)) }
                }
            }
        }
    }
}

/// An order in transit to this site with its bags: (bag, received here).
#[derive(Debug)]
pub struct Expected<'a> {
    pub order: &'a Order,
    pub received: Vec<(u8, bool)>,
}

/// The orders in transit here with their bags; `more` not shown.
pub fn expected(orders: &[Expected<'_>], more: usize) -> Markup {
    html! {
        ul.expected {
            @if orders.is_empty() { li { "No orders are in transit to this site." } }
            @for e in orders {
                @let missing = e.received.iter().filter(|(_, r)| !r).count();
                li data-coi=(e.order.coi.as_str()) data-missing=(missing) {
                    strong { (e.order.order_id) } " · " span.mono { (e.order.coi.as_str()) }
                    br;
                    @for (bag, received) in &e.received {
                        span class={"chip " (if *received { "good" } else { "warn" })} {
                            "Bag " (bag) ": " @if *received { "received" } @else { "missing" }
                        }
                    }
                }
            }
            @if more > 0 { li { (more) " more in transit, not shown." } }
        }
    }
}

/// The admin screen's facts.
#[derive(Debug)]
pub struct AdminView<'a> {
    pub printers: &'a [DeviceReport],
    pub scanners: &'a [DeviceReport],
    pub orders: usize,
    pub synced_at: Option<jiff::Timestamp>,
    pub sync_error: Option<String>,
    pub pending: i64,
    pub waiting: &'a [OutboxEntry],
    pub operators: &'a [OperatorRow],
    pub zone: jiff::tz::TimeZone,
    pub message: Option<(bool, String)>,
    /// The signed-in admin (who cannot disable themselves).
    pub me: &'a str,
    /// Outbox events waiting beyond those listed.
    pub more_waiting: usize,
    /// Why events are not being delivered at all, if that is so.
    pub delivery_problem: Option<String>,
}

pub fn admin(view: &AdminView<'_>) -> Markup {
    let now = jiff::Timestamp::now();
    html! {
        section #admin-main {
            h1 { "Admin" }
            @if let Some((good, message)) = &view.message {
                p class={"notice " (if *good { "good" } else { "bad" })} role="status" { (message) }
            }
            div hx-ext="sse" sse-connect="/ui/events/admin" {
                h2 { "Devices" }
                div sse-swap="devices" hx-swap="innerHTML" { (devices(view.printers, view.scanners)) }
            }
            h2 { "Orders" }
            p data-orders=(view.orders) {
                (view.orders) " cached. Last sync: "
                @match view.synced_at {
                    Some(at) => { (local_time(at, &view.zone)) " (" ((now.as_second() - at.as_second()) / 60) " min ago)" }
                    None => "never",
                }
                @if let Some(problem) = &view.sync_error { br; span.bad { "Last sync failed: " (problem) } }
            }
            h2 { "Outbox" }
            p data-pending=(view.pending) { (view.pending) " event(s) waiting to be delivered." }
            @if let Some(problem) = &view.delivery_problem {
                p.notice.bad data-delivery="stopped" { "Events are not being delivered: " (problem) }
            }
            table #outbox {
                thead { tr { th { "Event" } th { "Kind" } th { "State" } th { "Attempts" } th { "Last error" } th {} } }
                tbody {
                    @if view.waiting.is_empty() { tr { td colspan="6" { "Nothing waiting." } } }
                    @for e in view.waiting {
                        tr data-event=(e.event_id) data-state=(e.state) {
                            td.mono { (e.event_id) } td { (e.kind) } td { (e.state) } td { (e.attempts) }
                            td { (e.last_error.as_deref().unwrap_or("")) }
                            td {
                                @if e.state == "parked" {
                                    form hx-post="/ui/admin/outbox/requeue" hx-target="#admin-main" hx-swap="outerHTML" {
                                        input type="hidden" name="event_id" value=(e.event_id);
                                        button type="submit" data-action="requeue" { "Requeue" }
                                    }
                                    details {
                                        summary { "Acknowledge…" }
                                        form hx-post="/ui/admin/outbox/ack" hx-target="#admin-main" hx-swap="outerHTML" {
                                            input type="hidden" name="event_id" value=(e.event_id);
                                            label { "Reason " input name="reason" required maxlength="200"; }
                                            (pin_field(&format!("ack-{}", e.event_id)))
                                            button.danger type="submit" data-action="acknowledge" { "Close it (never sent)" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if view.more_waiting > 0 { p { (view.more_waiting) " more not listed (coi-agent outbox status lists them all)." } }
            h2 { "Audit trail" }
            button hx-post="/ui/admin/audit" hx-target="#audit-result" hx-swap="innerHTML" data-action="audit-verify" { "Verify the audit trail" }
            div #audit-result {}
            h2 { "Operators" }
            table #operators {
                thead { tr { th { "ID" } th { "Name" } th { "Role" } th { "State" } th {} } }
                tbody {
                    @for op in view.operators {
                        tr data-operator=(op.id) {
                            td { (op.id) } td { (op.name) } td { (op.role.as_str()) }
                            td {
                                @if op.disabled_at.is_some() { "disabled" }
                                @else if let Some(until) = op.locked_at(now) { "locked out until " (local_time(until, &view.zone)) }
                                @else { "active" }
                            }
                            td {
                                @if op.disabled_at.is_some() || op.locked_at(now).is_some() {
                                    details {
                                        summary data-action="enable-open" {
                                            @if op.disabled_at.is_some() { "Enable…" } @else { "Unlock…" }
                                        }
                                        form hx-post="/ui/admin/operators/enable" hx-target="#admin-main" hx-swap="outerHTML" {
                                            input type="hidden" name="id" value=(op.id);
                                            (pin_field(&format!("enable-{}", op.id)))
                                            button type="submit" data-action="enable" { "Let " (op.id) " sign in" }
                                        }
                                    }
                                }
                                @if op.disabled_at.is_none() && view.me != op.id {
                                    details {
                                        summary data-action="disable-open" { "Disable…" }
                                        form hx-post="/ui/admin/operators/disable" hx-target="#admin-main" hx-swap="outerHTML" {
                                            input type="hidden" name="id" value=(op.id);
                                            (pin_field(&format!("disable-{}", op.id)))
                                            button.danger type="submit" data-action="disable" { "Disable " (op.id) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form.add-operator hx-post="/ui/admin/operators" hx-target="#admin-main" hx-swap="outerHTML" {
                h3 { "Add an operator" }
                label { "ID (badge) " input name="id" required maxlength="64"; }
                label { "Name " input name="name" required maxlength="80"; }
                label { "Role " select name="role" { option value="nurse" { "nurse" } option value="tech" { "tech" } option value="admin" { "admin" } } }
                label { "Their PIN (6+ digits) " input name="new_pin" type="password" inputmode="numeric" required maxlength="32" autocomplete="off"; }
                (pin_field("add-operator"))
                button type="submit" { "Add" }
            }
        }
    }
}

pub fn devices(printers: &[DeviceReport], scanners: &[DeviceReport]) -> Markup {
    html! {
        (printer_panel(printers))
        ul.devices {
            @for s in scanners {
                li data-scanner=(s.name) data-state=(s.state) {
                    strong { "Scanner " (s.name) ": " } (s.state.replace('_', " ").to_uppercase())
                    @if let Some(fault) = &s.fault { " — " (fault) }
                }
            }
        }
    }
}

pub fn audit_result(report: &crate::report::AuditReport) -> Markup {
    html! {
        @if report.intact {
            p.notice.good data-audit="intact" { "Audit trail intact: " (report.entries.unwrap_or(0)) " entries." }
        } @else {
            p.notice.bad data-audit="broken" { (report.message) }
        }
    }
}

/// A page that says what is wrong, in words, with a way on.
pub fn problem(message: &str) -> Markup {
    html! {
        p.notice.bad role="alert" { (message) }
        p { a href="/" { "Back" } }
    }
}

/// Escaped text for an SSE `data:` line: one line of HTML.
pub fn one_line(markup: &Markup) -> String {
    markup.0.replace(['\n', '\r'], " ")
}

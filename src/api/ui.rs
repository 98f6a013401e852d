//! The screens (issue #12): sign-in, the print station (`/print`), the receipt station
//! (`/receive`) and admin (`/admin`), served by the daemon on its own loopback origin. A thin
//! face over the same agent flows as the JSON API; pages from [`super::pages`].
//!
//! Sessions are a random id in an `HttpOnly; SameSite=Strict` cookie; the JSON API's token never
//! reaches the browser. The router's guards (Host, cross-site state changes) cover every route
//! here; this module adds the session and role checks, and asks for the PIN again before a
//! reprint, a void or closing a parked event.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::Markup;
use serde::Deserialize;

use super::pages::{self, Notice};
use crate::agent::sessions::Session;
use crate::agent::{Agent, FlowError, LabelOrder, PinRefusal};
use crate::isbt128::coi::CoiId;
use crate::operators::{self, Role};
use crate::reconcile::Step;
use crate::report::{BagLabelReport, PrintReport, ScanReport};
use crate::scanner::Scan;

/// The session cookie's name.
pub const COOKIE: &str = "coi_session";
/// The template of a bag label printed from the screens.
pub const BAG_TEMPLATE: &str = "apheresis-bag";
/// How many recent scans the receipt station lists.
const RECENT: usize = 12;
/// How many orders in transit the receipt screen lists.
const EXPECTED_SHOWN: usize = 30;
/// The longest reason text taken.
const MAX_REASON: usize = 200;
/// The longest scan taken from a page.
const MAX_SCAN: usize = 1024;

/// The screens' routes (guarded by the router's Host and origin checks).
pub fn routes() -> Router<Agent> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/static/{file}", get(asset))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/ui/session", get(session_alive))
        .route("/print", get(print_list))
        .route("/print/orders/{coi}", get(print_order))
        .route("/ui/print/orders/{coi}/bags", get(order_bags))
        .route("/ui/print/orders/{coi}/bags/{bag}", post(print_bag))
        .route("/ui/print/orders/{coi}/all", post(print_all))
        .route("/ui/print/orders/{coi}/bags/{bag}/reprint", post(reprint))
        .route("/ui/print/jobs/{job}/void", post(void))
        .route("/ui/print/verify", post(verify))
        .route("/receive", get(receive_page))
        .route("/ui/receive", post(receive_scan))
        .route("/admin", get(admin_page))
        .route("/ui/admin/outbox/requeue", post(requeue))
        .route("/ui/admin/outbox/ack", post(acknowledge))
        .route("/ui/admin/audit", post(audit))
        .route("/ui/admin/operators", post(add_operator))
        .route("/ui/admin/operators/disable", post(disable_operator))
        .route("/ui/admin/operators/enable", post(enable_operator))
        .route("/ui/events/{station}", get(events))
}

/// The security headers every response carries (pages and API alike).
pub fn secure_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Not `no-referrer`: with it, Chromium sends `Origin: null` on a form post, which the
    // cross-site check must refuse. No URL here carries patient data.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        // Pages carry patient data: never kept on disk by the browser.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// The session id in the request's cookie.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The signed-in operator, if any; `touch` counts the request as their activity and checks
/// they are still enabled (an admin may have disabled them since).
pub async fn signed_in(agent: &Agent, headers: &HeaderMap, touch: bool) -> Option<Session> {
    let id = cookie(headers)?;
    let session = agent.sessions().get(id, Instant::now(), touch)?;
    if touch {
        match agent.journal().operator(&session.operator).await {
            Ok(Some(op)) if op.disabled_at.is_none() => {}
            Ok(_) => {
                agent.sessions().end_operator(&session.operator);
                return None;
            }
            // The journal cannot answer: the action will fail on its own, with its reason.
            Err(_) => {}
        }
    }
    Some(session)
}

fn is_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

/// No (live) session: a page goes to sign-in; an htmx request is told to go there.
fn to_login(headers: &HeaderMap) -> Response {
    if is_htmx(headers) {
        let mut response = StatusCode::UNAUTHORIZED.into_response();
        response
            .headers_mut()
            .insert("hx-redirect", HeaderValue::from_static("/login"));
        response
    } else {
        Redirect::to("/login").into_response()
    }
}

/// Whether `role` works at the print station (and may see label previews).
pub fn may_print(role: Role) -> bool {
    allowed(role, Step::Verify)
}

fn allowed(role: Role, screen: Step) -> bool {
    match screen {
        Step::Verify => matches!(role, Role::Nurse | Role::Admin),
        Step::Receipt => matches!(role, Role::Tech | Role::Admin),
    }
}

/// The signed-in operator with one of `roles`, or the response that refuses.
async fn operator_for(
    agent: &Agent,
    headers: &HeaderMap,
    ok: impl Fn(Role) -> bool,
) -> Result<Session, Response> {
    let Some(session) = signed_in(agent, headers, true).await else {
        return Err(to_login(headers));
    };
    if !ok(session.role) {
        return Err(screen(
            StatusCode::FORBIDDEN,
            "Not for this role",
            Some(&session),
            &pages::problem(&format!(
                "This screen is not for a {}. Your screen: {}.",
                session.role.as_str(),
                session.role.home()
            )),
        ));
    }
    Ok(session)
}

fn screen(status: StatusCode, title: &str, session: Option<&Session>, body: &Markup) -> Response {
    (status, pages::page(title, session, title, body)).into_response()
}

fn fragment(markup: Markup) -> Response {
    markup.into_response()
}

async fn home(State(agent): State<Agent>, headers: HeaderMap) -> Response {
    match signed_in(&agent, &headers, false).await {
        Some(session) => Redirect::to(session.role.home()).into_response(),
        None => Redirect::to("/login").into_response(),
    }
}

async fn login_page(State(agent): State<Agent>, headers: HeaderMap) -> Response {
    if let Some(session) = signed_in(&agent, &headers, false).await {
        return Redirect::to(session.role.home()).into_response();
    }
    // A cookie whose session is gone: say why the screen went back here.
    let message = cookie(&headers).map(|_| {
        format!(
            "You were signed out: {} minutes without using the screens, signed out elsewhere, or your operator was disabled or locked. Sign in again.",
            agent.sessions().idle().as_secs() / 60
        )
    });
    screen(
        StatusCode::OK,
        "Sign in",
        None,
        &pages::login(message.as_deref(), ""),
    )
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    operator: String,
    pin: String,
}

/// In words, why a PIN was not taken.
fn pin_words(refusal: &PinRefusal, zone: &jiff::tz::TimeZone) -> String {
    match refusal {
        PinRefusal::Wrong { left: Some(left) } if *left <= 2 => format!(
            "Wrong operator ID or PIN. {left} more wrong PIN(s) lock this operator out for 5 minutes."
        ),
        PinRefusal::Wrong { .. } => "Wrong operator ID or PIN.".to_owned(),
        PinRefusal::LockedOut { until } => format!(
            "Locked out after 5 wrong PINs, until {}. An admin can unlock you sooner (admin screen, or site IT: coi-agent operators enable ID).",
            pages::local_time(*until, zone)
        ),
        PinRefusal::Journal(_) => {
            "Sign-in is not available: the journal cannot record. Call site IT.".to_owned()
        }
        PinRefusal::Busy => "Busy checking other PINs: try again in a moment.".to_owned(),
    }
}

async fn login(
    State(agent): State<Agent>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    // Whoever was signed in on this browser is signed out first: a sign-in never continues
    // another session.
    if let Some(old) = cookie(&headers) {
        agent.sessions().end(old);
    }
    let Ok(Form(form)) = form else {
        return screen(
            StatusCode::BAD_REQUEST,
            "Sign in",
            None,
            &pages::login(Some("Enter your operator ID and PIN."), ""),
        );
    };
    let id = form.operator.trim();
    // A badge scanner may add a suffix; an id that is not an id is a wrong sign-in.
    let shown = if operators::check_id(id).is_ok() {
        id
    } else {
        ""
    };
    let zone = jiff::tz::TimeZone::system();
    let refused = |message: String| {
        screen(
            StatusCode::UNAUTHORIZED,
            "Sign in",
            None,
            &pages::login(Some(&message), shown),
        )
    };
    if operators::check_id(id).is_err() {
        return refused(pin_words(&PinRefusal::Wrong { left: None }, &zone));
    }
    let operator = match agent.check_pin(id, &form.pin, "sign_in").await {
        Ok(operator) => operator,
        Err(refusal) => return refused(pin_words(&refusal, &zone)),
    };
    let session = Session {
        operator: operator.id.clone(),
        name: operator.name.clone(),
        role: operator.role,
    };
    let Ok(sid) = agent.sessions().start(session, Instant::now()) else {
        return refused("Sign-in is not available: no random source. Call site IT.".to_owned());
    };
    tracing::info!(operator = %operator.id, role = operator.role.as_str(), "signed in");
    let cookie = format!("{COOKIE}={sid}; HttpOnly; SameSite=Strict; Path=/");
    let mut response = Redirect::to(operator.role.home()).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn logout(State(agent): State<Agent>, headers: HeaderMap) -> Response {
    if let Some(id) = cookie(&headers) {
        agent.sessions().end(id);
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("coi_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    response
}

/// 204 while the session lives, 401 after (the pages ask every few seconds; not activity).
async fn session_alive(State(agent): State<Agent>, headers: HeaderMap) -> Response {
    match signed_in(&agent, &headers, false).await {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

/// The vendored and own static files, compiled in.
async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind): (&'static [u8], &str) = match file.as_str() {
        "htmx.min.js" => (
            include_bytes!("../../assets/web/htmx.min.js"),
            "text/javascript",
        ),
        "sse.js" => (include_bytes!("../../assets/web/sse.js"), "text/javascript"),
        "app.js" => (include_bytes!("../../assets/web/app.js"), "text/javascript"),
        "app.css" => (include_bytes!("../../assets/web/app.css"), "text/css"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
        .into_response()
}

fn now_local(order_zone: &str) -> (jiff::Zoned, jiff::tz::TimeZone) {
    let zone = pages::zone(Some(order_zone));
    (jiff::Timestamp::now().to_zoned(zone.clone()), zone)
}

async fn print_list(State(agent): State<Agent>, headers: HeaderMap) -> Response {
    let session = match operator_for(&agent, &headers, |r| allowed(r, Step::Verify)).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    if let Some(id) = cookie(&headers) {
        agent
            .sessions()
            .at_station(id, Step::Verify, None, Instant::now());
    }
    let book = match agent.journal().orders().await {
        Ok(book) => book,
        Err(problem) => return journal_down(&session, &problem.to_string()),
    };
    let site = agent.site_id();
    let mut rows: Vec<pages::OrderRow<'_>> = book
        .orders()
        .iter()
        .filter(|o| o.collection.facility.site_id == site)
        .map(|order| {
            let (now, zone) = now_local(&order.collection.time_zone);
            let due = order.collection.scheduled_for.to_zoned(zone).date();
            pages::OrderRow {
                order,
                due_today: due == now.date(),
            }
        })
        .collect();
    rows.sort_by_key(|r| (!r.due_today, r.order.collection.scheduled_for));
    let body = pages::print_list(&rows, &agent.printers());
    screen(StatusCode::OK, "Print station", Some(&session), &body)
}

fn journal_down(session: &Session, problem: &str) -> Response {
    tracing::error!(%problem, "a screen could not read the journal");
    screen(
        StatusCode::SERVICE_UNAVAILABLE,
        "Not available",
        Some(session),
        &pages::problem(
            "The journal cannot be read: nothing can be printed or received here now. Call site IT.",
        ),
    )
}

/// The order `coi` (this site's collection) with its bags, or the response that refuses.
async fn order_and_bags(
    agent: &Agent,
    coi: &str,
) -> Result<
    (
        std::sync::Arc<crate::orders::OrderBook>,
        CoiId,
        Vec<BagLabelReport>,
    ),
    String,
> {
    let coi = CoiId::parse(coi).map_err(|_| "Not a COI identifier.".to_owned())?;
    let book = agent
        .journal()
        .orders()
        .await
        .map_err(|e| format!("The journal cannot be read: {e}"))?;
    let Some(order) = book.by_coi(&coi) else {
        return Err("No cached order has this COI identifier.".to_owned());
    };
    if order.collection.facility.site_id != agent.site_id() {
        return Err("This order's bags are labelled at its collection site, not here.".to_owned());
    }
    let bags = agent
        .journal()
        .bag_labels(coi.as_str(), order.collection.bags)
        .await
        .map_err(|e| format!("The journal cannot be read: {e}"))?;
    Ok((book, coi, bags))
}

/// Why no label may be printed for `order` here now (cancelled, shipped, expired, ...), if so:
/// the page then offers no Print button.
fn printable(agent: &Agent, order: &crate::orders::record::Order) -> Option<String> {
    crate::labeling::may_print(order, agent.site_id(), jiff::Timestamp::now())
        .err()
        .map(|refusal| refusal.to_string())
}

/// The order's main section after an action, with `notice`.
async fn order_section(
    agent: &Agent,
    coi: &str,
    notice: &Notice<'_>,
    verify_job: Option<&str>,
) -> Response {
    match order_and_bags(agent, coi).await {
        Ok((book, coi, bags)) => match book.by_coi(&coi) {
            Some(order) => fragment(pages::order_main(
                order,
                &bags,
                notice,
                verify_job,
                printable(agent, order).as_deref(),
            )),
            None => fragment(pages::problem("The order is no longer cached.")),
        },
        Err(problem) => fragment(pages::problem(&problem)),
    }
}

async fn print_order(
    State(agent): State<Agent>,
    Path(coi): Path<String>,
    headers: HeaderMap,
) -> Response {
    let session = match operator_for(&agent, &headers, |r| allowed(r, Step::Verify)).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    if let Some(id) = cookie(&headers) {
        agent
            .sessions()
            .at_station(id, Step::Verify, Some(&coi), Instant::now());
    }
    let (book, coi, bags) = match order_and_bags(&agent, &coi).await {
        Ok(found) => found,
        Err(problem) => {
            return screen(
                StatusCode::NOT_FOUND,
                "Order",
                Some(&session),
                &pages::problem(&problem),
            );
        }
    };
    let Some(order) = book.by_coi(&coi) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let main = pages::order_main(
        order,
        &bags,
        &Notice::None,
        None,
        printable(&agent, order).as_deref(),
    );
    let body = pages::print_order(order, &main, &agent.printers());
    screen(StatusCode::OK, "Print station", Some(&session), &body)
}

async fn order_bags(
    State(agent): State<Agent>,
    Path(coi): Path<String>,
    headers: HeaderMap,
) -> Response {
    // A background refresh: not the operator's activity.
    match signed_in(&agent, &headers, false).await {
        None => return to_login(&headers),
        Some(session) if !allowed(session.role, Step::Verify) => {
            return StatusCode::FORBIDDEN.into_response();
        }
        Some(_) => {}
    }
    match order_and_bags(&agent, &coi).await {
        Ok((book, coi, bags)) => match book.by_coi(&coi) {
            Some(order) => fragment(pages::bag_cards(
                order,
                &bags,
                printable(&agent, order).is_none(),
            )),
            None => fragment(pages::problem("The order is no longer cached.")),
        },
        Err(problem) => fragment(pages::problem(&problem)),
    }
}

/// A bag number as a path gives it: 1 to the most containers a collection has.
pub(crate) fn bag_number(bag: &str) -> Option<u8> {
    bag.parse::<u8>()
        .ok()
        .filter(|b| (1..=crate::isbt128::din::MAX_CONTAINERS).contains(b))
}

/// Prints one bag's label through the agent's print flow, as `session`'s operator.
async fn print_one(
    agent: &Agent,
    coi: &CoiId,
    bag: u8,
    session: &Session,
    reprint: Option<String>,
) -> Result<PrintReport, String> {
    let order = LabelOrder {
        coi: *coi,
        bag,
        template: BAG_TEMPLATE.to_owned(),
        operator: Some(session.operator.clone()),
        reprint: reprint.is_some(),
        reason: reprint,
        collected_at: None,
        order_from: "file",
    };
    let flow = {
        let agent = agent.clone();
        // Its own task: a browser that goes away must not cut the flow in the middle.
        tokio::spawn(async move { agent.print_label(None, order).await })
    };
    match flow.await {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(FlowError::Label(crate::labeling::Refusal::Unrecorded { .. }))) => Err(
            "LABEL SENT, NOT RECORDED: do not use it; call site IT (the journal cannot record)."
                .to_owned(),
        ),
        Ok(Err(problem)) => Err(format!("NOT PRINTED, nothing sent: {problem}")),
        Err(_) => Err("NOT PRINTED: the print flow failed.".to_owned()),
    }
}

async fn print_bag(
    State(agent): State<Agent>,
    Path((coi, bag)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let session = match operator_for(&agent, &headers, |r| allowed(r, Step::Verify)).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let (Ok(coi_id), Some(bag)) = (CoiId::parse(&coi), bag_number(&bag)) else {
        return fragment(pages::problem("Not a bag of an order."));
    };
    match print_one(&agent, &coi_id, bag, &session, None).await {
        Ok(report) => {
            let job = report.job_id.clone();
            order_section(&agent, &coi, &Notice::Printed(&report), Some(&job)).await
        }
        Err(problem) => order_section(&agent, &coi, &Notice::Refused(problem), None).await,
    }
}

async fn print_all(
    State(agent): State<Agent>,
    Path(coi): Path<String>,
    headers: HeaderMap,
) -> Response {
    let session = match operator_for(&agent, &headers, |r| allowed(r, Step::Verify)).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let (_, coi_id, bags) = match order_and_bags(&agent, &coi).await {
        Ok(found) => found,
        Err(problem) => return fragment(pages::problem(&problem)),
    };
    let mut printed: Vec<String> = Vec::new();
    let before = |printed: &[String]| match printed {
        [] => "No bag was printed before it.".to_owned(),
        bags => format!("Printed before it: bag {}.", bags.join(", ")),
    };
    for bag in bags.iter().filter(|b| matches!(b.label, "none" | "voided")) {
        // Each bag only once the one before is confirmed: a label the printer cannot confirm
        // stops the run, so nobody looks for a label that did not come out.
        let stopped = match print_one(&agent, &coi_id, bag.bag, &session, None).await {
            Ok(report) if report.state == "confirmed" => {
                printed.push(report.bag.to_string());
                continue;
            }
            Ok(report) => format!("Bag {}: {}", report.bag, report.message),
            Err(problem) => format!("Bag {}: {problem}", bag.bag),
        };
        let notice = Notice::Refused(format!("{stopped} Stopped there. {}", before(&printed)));
        return order_section(&agent, &coi, &notice, None).await;
    }
    let notice = if printed.is_empty() {
        Notice::Done("Every bag already has a label.".to_owned())
    } else {
        Notice::Done(format!(
            "PRINTED bag {}. Now scan each label you just printed.",
            printed.join(", ")
        ))
    };
    order_section(&agent, &coi, &notice, None).await
}

#[derive(Debug, Deserialize)]
struct ReasonForm {
    reason: String,
    #[serde(default)]
    details: String,
    pin: String,
    #[serde(default)]
    coi: Option<String>,
}

/// The reason from a list choice and free text, or what is missing.
fn reason_text(form: &ReasonForm, choices: &[&str]) -> Result<String, String> {
    let details = form.details.trim();
    if details.chars().count() > MAX_REASON || details.chars().any(char::is_control) {
        return Err(format!(
            "Details: at most {MAX_REASON} characters on one line."
        ));
    }
    match form.reason.as_str() {
        "Other" if details.is_empty() => Err("Say why in Details.".to_owned()),
        "Other" => Ok(details.to_owned()),
        choice if choices.contains(&choice) && details.is_empty() => Ok(choice.to_owned()),
        choice if choices.contains(&choice) => {
            let reason = format!("{choice}: {details}");
            if reason.chars().count() > MAX_REASON {
                return Err(format!(
                    "The reason and details together: at most {MAX_REASON} characters."
                ));
            }
            Ok(reason)
        }
        _ => Err("Choose a reason.".to_owned()),
    }
}

/// The PIN asked again before a reprint, a void or closing an event.
async fn pin_again(
    agent: &Agent,
    session: &Session,
    pin: &str,
    purpose: &'static str,
) -> Result<(), String> {
    agent
        .check_pin(&session.operator, pin, purpose)
        .await
        .map(|_| ())
        .map_err(|refusal| {
            format!(
                "Nothing done: {}",
                pin_words(&refusal, &jiff::tz::TimeZone::system())
            )
        })
}

async fn reprint(
    State(agent): State<Agent>,
    Path((coi, bag)): Path<(String, String)>,
    headers: HeaderMap,
    form: Result<Form<ReasonForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let session = match operator_for(&agent, &headers, |r| allowed(r, Step::Verify)).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let (Ok(coi_id), Some(bag)) = (CoiId::parse(&coi), bag_number(&bag)) else {
        return fragment(pages::problem("Not a bag of an order."));
    };
    let Ok(Form(form)) = form else {
        let notice = Notice::Refused("Choose a reason and enter your PIN.".to_owned());
        return order_section(&agent, &coi, &notice, None).await;
    };
    let reason = match reason_text(&form, pages::REPRINT_REASONS) {
        Ok(reason) => reason,
        Err(problem) => {
            return order_section(&agent, &coi, &Notice::Refused(problem), None).await;
        }
    };
    if let Err(problem) = pin_again(&agent, &session, &form.pin, "reprint").await {
        return order_section(&agent, &coi, &Notice::Refused(problem), None).await;
    }
    match print_one(&agent, &coi_id, bag, &session, Some(reason)).await {
        Ok(report) => {
            let job = report.job_id.clone();
            order_section(&agent, &coi, &Notice::Printed(&report), Some(&job)).await
        }
        Err(problem) => order_section(&agent, &coi, &Notice::Refused(problem), None).await,
    }
}

async fn void(
    State(agent): State<Agent>,
    Path(job): Path<String>,
    headers: HeaderMap,
    form: Result<Form<ReasonForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let session = match operator_for(&agent, &headers, |r| allowed(r, Step::Verify)).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let Ok(Form(form)) = form else {
        return fragment(pages::problem("Choose a reason and enter your PIN."));
    };
    let coi = form.coi.clone().unwrap_or_default();
    if job.len() > 64 || job.chars().any(char::is_control) {
        return fragment(pages::problem("Not a print job."));
    }
    let reason = match reason_text(&form, pages::VOID_REASONS) {
        Ok(reason) => reason,
        Err(problem) => {
            return order_section(&agent, &coi, &Notice::Refused(problem), None).await;
        }
    };
    if let Err(problem) = pin_again(&agent, &session, &form.pin, "void").await {
        return order_section(&agent, &coi, &Notice::Refused(problem), None).await;
    }
    let notice = match agent
        .void_label(job, Some(reason), Some(session.operator.clone()))
        .await
    {
        Ok(Ok(voided)) => Notice::Done(crate::report::VoidReport::new(&voided).message),
        Ok(Err(problem)) => Notice::Refused(format!("NOT VOIDED, nothing recorded: {problem}")),
        Err(stopped) => Notice::Refused(format!("NOT VOIDED: {stopped}")),
    };
    order_section(&agent, &coi, &notice, None).await
}

#[derive(Debug, Deserialize)]
struct ScanForm {
    data: String,
    #[serde(default)]
    coi: Option<String>,
    #[serde(default)]
    job_id: Option<String>,
}

/// A scan typed or pasted into a page, as a scanner's read from that screen.
fn page_scan(data: &str, screen: &str) -> Result<Scan, String> {
    // A pasted read may bring spaces or a line end; ISBT 128 data has none at its ends.
    let data = data.trim_matches([' ', '\t', '\r', '\n']);
    if data.is_empty() {
        return Err("Nothing was scanned.".to_owned());
    }
    if data.len() > MAX_SCAN {
        return Err(format!("Longer than a scan can be ({MAX_SCAN} bytes)."));
    }
    Ok(Scan {
        at: jiff::Timestamp::now(),
        source: format!("screen:{screen}"),
        raw: data.as_bytes().to_vec(),
        problem: None,
    })
}

async fn run_scan(
    agent: &Agent,
    scan: Scan,
    (step, on_screen): (Step, Option<CoiId>),
    job: Option<String>,
    session: &Session,
) -> Result<ScanReport, String> {
    let flow = {
        let agent = agent.clone();
        let operator = Some(session.operator.clone());
        tokio::spawn(async move {
            agent
                .scan_on_screen(scan, step, job, on_screen, operator)
                .await
        })
    };
    match flow.await {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(FlowError::Journal(_))) => {
            Err("NOT RECORDED: the journal cannot record. Call site IT; do not go on.".to_owned())
        }
        Ok(Err(problem)) => Err(format!("Not checked, nothing recorded: {problem}")),
        Err(_) => Err("Not checked: the scan flow failed.".to_owned()),
    }
}

async fn verify(
    State(agent): State<Agent>,
    headers: HeaderMap,
    form: Result<Form<ScanForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let session = match operator_for(&agent, &headers, |r| allowed(r, Step::Verify)).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let Ok(Form(form)) = form else {
        return fragment(pages::problem("Scan the label."));
    };
    let coi = form.coi.clone().unwrap_or_default();
    let job = form
        .job_id
        .filter(|j| !j.is_empty() && j.len() <= 64 && !j.chars().any(char::is_control));
    let scan = match page_scan(&form.data, "print") {
        Ok(scan) => scan,
        Err(problem) => {
            return order_section(&agent, &coi, &Notice::Refused(problem), job.as_deref()).await;
        }
    };
    let on_screen = CoiId::parse(&coi).ok();
    match run_scan(
        &agent,
        scan,
        (Step::Verify, on_screen),
        job.clone(),
        &session,
    )
    .await
    {
        Ok(report) => {
            // An incomplete half keeps waiting for the same job.
            let keep = (report.verdict.verdict == "incomplete")
                .then_some(job)
                .flatten();
            order_section(&agent, &coi, &Notice::Verified(&report), keep.as_deref()).await
        }
        Err(problem) => {
            order_section(&agent, &coi, &Notice::Refused(problem), job.as_deref()).await
        }
    }
}

/// The receipt station's lists: recent scans and orders expected here.
async fn receipt_lists(agent: &Agent) -> Result<(Markup, Markup), String> {
    let zone = jiff::tz::TimeZone::system();
    let rows = agent
        .journal()
        .recent_scans(RECENT * 4)
        .await
        .map_err(|e| e.to_string())?;
    let scans: Vec<ScanReport> = rows
        .iter()
        .map(ScanReport::from_row)
        .filter(|s| s.step == "receipt")
        .take(RECENT)
        .collect();
    let book = agent.journal().orders().await.map_err(|e| e.to_string())?;
    let site = agent.site_id();
    // In transit here, the most recent collections first; only the first few are looked up
    // (a screen shows a few dozen, and this runs for every scan on every open screen).
    let mut in_transit: Vec<&crate::orders::record::Order> = book
        .orders()
        .iter()
        .filter(|o| {
            o.manufacturing.site_id == site
                && o.status == crate::orders::record::OrderStatus::Shipped
        })
        .collect();
    in_transit.sort_by_key(|o| std::cmp::Reverse(o.collection.scheduled_for));
    let more = in_transit.len().saturating_sub(EXPECTED_SHOWN);
    in_transit.truncate(EXPECTED_SHOWN);
    let received = agent
        .journal()
        .bags_received(
            in_transit
                .iter()
                .map(|o| o.coi.as_str().to_owned())
                .collect(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut expected: Vec<pages::Expected<'_>> = in_transit
        .into_iter()
        .zip(received)
        .map(|(order, received)| pages::Expected {
            order,
            received: (1..=order.collection.bags)
                .map(|bag| (bag, received.contains(&bag)))
                .collect(),
        })
        .collect();
    // Orders with bags still missing first.
    expected.sort_by_key(|e| e.received.iter().all(|(_, r)| *r));
    Ok((
        pages::recent_scans(&scans, &zone),
        pages::expected(&expected, more),
    ))
}

async fn receive_page(State(agent): State<Agent>, headers: HeaderMap) -> Response {
    let session = match operator_for(&agent, &headers, |r| allowed(r, Step::Receipt)).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    if let Some(id) = cookie(&headers) {
        agent
            .sessions()
            .at_station(id, Step::Receipt, None, Instant::now());
    }
    let (recent, expected) = match receipt_lists(&agent).await {
        Ok(lists) => lists,
        Err(problem) => return journal_down(&session, &problem),
    };
    let body = pages::receive(
        None,
        &recent,
        &expected,
        &agent.scanners_for(Step::Receipt),
        &jiff::tz::TimeZone::system(),
        agent.pair_window().as_secs(),
    );
    screen(StatusCode::OK, "Receipt station", Some(&session), &body)
}

async fn receive_scan(
    State(agent): State<Agent>,
    headers: HeaderMap,
    form: Result<Form<ScanForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let session = match operator_for(&agent, &headers, |r| allowed(r, Step::Receipt)).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let refuse = |message: String| {
        fragment(maud::html! {
            div.verdict.bad data-verdict="mismatch" data-refused role="alert" {
                p.headline { "NOT CHECKED" }
                p.message { (message) }
            }
        })
    };
    let Ok(Form(form)) = form else {
        return refuse("Scan a bag.".to_owned());
    };
    let scan = match page_scan(&form.data, "receive") {
        Ok(scan) => scan,
        Err(problem) => return refuse(problem),
    };
    match run_scan(&agent, scan, (Step::Receipt, None), None, &session).await {
        Ok(report) => fragment(pages::verdict(
            &report,
            &jiff::tz::TimeZone::system(),
            agent.pair_window().as_secs(),
        )),
        Err(problem) => refuse(problem),
    }
}

async fn admin_view(agent: &Agent, me: &str, message: Option<(bool, String)>) -> Response {
    fragment(admin_markup(agent, me, message).await)
}

/// How many waiting outbox events the admin screen lists.
const WAITING_SHOWN: usize = 50;

async fn admin_markup(agent: &Agent, me: &str, message: Option<(bool, String)>) -> Markup {
    let health = agent.journal().health().await;
    let waiting = agent.journal().waiting_events(WAITING_SHOWN).await;
    let operators = agent.journal().operators().await;
    let (Ok(health), Ok(waiting), Ok(operators)) = (health, waiting, operators) else {
        return pages::problem("The journal cannot be read. Call site IT.");
    };
    let printers = agent.printers();
    let scanners = agent.scanners();
    pages::admin(&pages::AdminView {
        printers: &printers,
        scanners: &scanners,
        orders: health.orders,
        synced_at: agent.orders_synced_at(health.orders_synced_at),
        sync_error: agent.sync_error(),
        pending: health.outbox.pending,
        waiting: &waiting,
        operators: &operators,
        zone: jiff::tz::TimeZone::system(),
        message,
        me,
        more_waiting: usize::try_from(health.outbox.pending)
            .unwrap_or(0)
            .saturating_add(health.outbox.parked.len())
            .saturating_sub(waiting.len()),
        delivery_problem: agent.delivery_problem(),
    })
}

/// The signed-in admin and the form they sent, or the response that refuses: sign-in, or the
/// admin screen saying `missing` when the form does not parse.
async fn admin_form<T>(
    agent: &Agent,
    headers: &HeaderMap,
    form: Result<Form<T>, axum::extract::rejection::FormRejection>,
    missing: &str,
) -> Result<(Session, T), Response> {
    let session = operator_for(agent, headers, is_admin).await?;
    match form {
        Ok(Form(form)) => Ok((session, form)),
        Err(_) => {
            Err(admin_view(agent, &session.operator, Some((false, missing.to_owned()))).await)
        }
    }
}

fn is_admin(role: Role) -> bool {
    role == Role::Admin
}

async fn admin_page(State(agent): State<Agent>, headers: HeaderMap) -> Response {
    let session = match operator_for(&agent, &headers, is_admin).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let body = admin_markup(&agent, &session.operator, None).await;
    screen(StatusCode::OK, "Admin", Some(&session), &body)
}

#[derive(Debug, Deserialize)]
struct EventForm {
    event_id: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    pin: String,
}

async fn requeue(
    State(agent): State<Agent>,
    headers: HeaderMap,
    form: Result<Form<EventForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let (session, form) = match admin_form(&agent, &headers, form, "No event given.").await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let message = match agent
        .journal()
        .requeue_parked(form.event_id, Some(session.operator.clone()))
        .await
    {
        Ok(Ok(_)) => (true, "Requeued: it is sent again now.".to_owned()),
        Ok(Err((id, problem))) => (false, format!("Event {id} not requeued: {problem:?}")),
        Err(problem) => (false, format!("Not requeued: {problem}")),
    };
    agent.wake_outbox();
    admin_view(&agent, &session.operator, Some(message)).await
}

async fn acknowledge(
    State(agent): State<Agent>,
    headers: HeaderMap,
    form: Result<Form<EventForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let (session, form) = match admin_form(&agent, &headers, form, "No event given.").await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let reason = form.reason.trim();
    if reason.is_empty()
        || reason.chars().count() > MAX_REASON
        || reason.chars().any(char::is_control)
    {
        return admin_view(
            &agent,
            &session.operator,
            Some((false, format!("Say why (1 to {MAX_REASON} characters)."))),
        )
        .await;
    }
    if let Err(problem) = pin_again(&agent, &session, &form.pin, "acknowledge").await {
        return admin_view(&agent, &session.operator, Some((false, problem))).await;
    }
    let message = match agent
        .journal()
        .close_parked(
            form.event_id,
            reason.to_owned(),
            Some(session.operator.clone()),
        )
        .await
    {
        Ok(Ok(())) => (true, "Closed: it will never be sent (audited).".to_owned()),
        Ok(Err(problem)) => (false, format!("Not closed: {problem:?}")),
        Err(problem) => (false, format!("Not closed: {problem}")),
    };
    admin_view(&agent, &session.operator, Some(message)).await
}

async fn audit(State(agent): State<Agent>, headers: HeaderMap) -> Response {
    if let Err(response) = operator_for(&agent, &headers, is_admin).await {
        return response;
    }
    let report = match agent.journal().verify_audit().await {
        Ok(checked) => crate::report::AuditReport::new(&checked),
        Err(problem) => crate::report::AuditReport {
            intact: false,
            entries: None,
            broken: None,
            message: format!("The check could not run: {problem}"),
        },
    };
    fragment(pages::audit_result(&report))
}

#[derive(Debug, Deserialize)]
struct OperatorForm {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    new_pin: String,
    /// The admin's own PIN, asked again.
    #[serde(default)]
    pin: String,
}

async fn add_operator(
    State(agent): State<Agent>,
    headers: HeaderMap,
    form: Result<Form<OperatorForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let (session, form) = match admin_form(&agent, &headers, form, "Fill in every field.").await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    let Some(role) = Role::parse(&form.role) else {
        return admin_view(
            &agent,
            &session.operator,
            Some((false, "Choose a role.".to_owned())),
        )
        .await;
    };
    let checked = operators::check_id(&form.id)
        .and_then(|()| operators::check_name(&form.name))
        .and_then(|()| operators::check_new_pin(&form.new_pin));
    if let Err(problem) = checked {
        return admin_view(
            &agent,
            &session.operator,
            Some((false, format!("Not added: {problem}"))),
        )
        .await;
    }
    if let Err(problem) = pin_again(&agent, &session, &form.pin, "add_operator").await {
        return admin_view(&agent, &session.operator, Some((false, problem))).await;
    }
    let pin = form.new_pin;
    let Ok(Ok(hash)) = tokio::task::spawn_blocking(move || operators::hash_pin(&pin)).await else {
        return admin_view(
            &agent,
            &session.operator,
            Some((false, "Not added: the PIN could not be hashed.".to_owned())),
        )
        .await;
    };
    let message = match agent
        .journal()
        .add_operator(
            form.id.clone(),
            form.name,
            role,
            hash,
            Some(session.operator.clone()),
        )
        .await
    {
        Ok(Ok(())) => (
            true,
            format!("Added operator {} ({}).", form.id, role.as_str()),
        ),
        Ok(Err(problem)) => (false, format!("Not added: {problem}")),
        Err(problem) => (false, format!("Not added: {problem}")),
    };
    admin_view(&agent, &session.operator, Some(message)).await
}

async fn disable_operator(
    State(agent): State<Agent>,
    headers: HeaderMap,
    form: Result<Form<OperatorForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let (session, form) = match admin_form(&agent, &headers, form, "No operator given.").await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    if form.id == session.operator {
        return admin_view(
            &agent,
            &session.operator,
            Some((false, "You cannot disable yourself.".to_owned())),
        )
        .await;
    }
    if let Err(problem) = pin_again(&agent, &session, &form.pin, "disable_operator").await {
        return admin_view(&agent, &session.operator, Some((false, problem))).await;
    }
    let message = match agent
        .journal()
        .disable_operator(form.id.clone(), Some(session.operator.clone()))
        .await
    {
        Ok(Ok(())) => {
            agent.sessions().end_operator(&form.id);
            (
                true,
                format!("Operator {} disabled and signed out.", form.id),
            )
        }
        Ok(Err(problem)) => (false, format!("Not disabled: {problem}")),
        Err(problem) => (false, format!("Not disabled: {problem}")),
    };
    admin_view(&agent, &session.operator, Some(message)).await
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    coi: Option<String>,
}

/// Server-sent HTML fragments for a station's screen: `verdict`, `recent`, `expected`
/// (receipt); `printer`, `job`, `verify` (print); `devices` (admin). Ends when the session
/// does.
async fn events(
    State(agent): State<Agent>,
    Path(station): Path<String>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(session) = signed_in(&agent, &headers, false).await else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let step = match station.as_str() {
        "receive" if allowed(session.role, Step::Receipt) => Some(Step::Receipt),
        "print" if allowed(session.role, Step::Verify) => Some(Step::Verify),
        "admin" if session.role == Role::Admin => None,
        _ => return StatusCode::FORBIDDEN.into_response(),
    };
    let Some(sid) = cookie(&headers).map(str::to_owned) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let coi = query.coi.filter(|c| CoiId::parse(c).is_ok());
    if let Some(step) = step {
        agent
            .sessions()
            .at_station(&sid, step, coi.as_deref(), Instant::now());
    }
    let notices = agent.subscribe();
    let stopping = agent.stopping();
    let state = (
        agent,
        notices,
        stopping,
        sid,
        std::collections::VecDeque::<Event>::new(),
    );
    let stream = futures_util::stream::unfold(
        state,
        move |(agent, mut notices, mut stopping, sid, mut queued)| {
            let coi = coi.clone();
            async move {
                loop {
                    if let Some(event) = queued.pop_front() {
                        return Some((
                            Ok::<_, Infallible>(event),
                            (agent, notices, stopping, sid, queued),
                        ));
                    }
                    let notice = tokio::select! {
                        notice = notices.recv() => notice,
                        () = tokio::time::sleep(Duration::from_secs(10)) => {
                            // Signed out, timed out, or disabled in another process.
                            let session = agent.sessions().get(&sid, Instant::now(), false)?;
                            if !agent.operator_active(&session.operator).await {
                                agent.sessions().end_operator(&session.operator);
                                return None;
                            }
                            continue;
                        }
                        () = crate::agent::until_true(&mut stopping) => return None,
                    };
                    agent.sessions().get(&sid, Instant::now(), false)?;
                    let notice = match notice {
                        Ok(notice) => notice,
                        // Fell behind: the receipt screen's lists are sent afresh (a verdict
                        // missed is in the recent scans).
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            if step == Some(Step::Receipt)
                                && let Ok((recent, expected)) = receipt_lists(&agent).await
                            {
                                queued.push_back(sse("recent", &recent));
                                queued.push_back(sse("expected", &expected));
                            }
                            continue;
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    };
                    queued.extend(station_events(&agent, step, coi.as_deref(), &notice).await);
                }
            }
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn sse(name: &str, markup: &Markup) -> Event {
    Event::default().event(name).data(pages::one_line(markup))
}

/// The fragments one notice brings to a station's screen (`step`: none for admin).
async fn station_events(
    agent: &Agent,
    step: Option<Step>,
    coi: Option<&str>,
    notice: &crate::agent::Notice,
) -> Vec<Event> {
    use crate::agent::Notice as N;
    let mut events = Vec::new();
    match (notice, step) {
        (N::Scan(report), Some(Step::Receipt)) if report.step == "receipt" => {
            events.push(sse(
                "verdict",
                &pages::verdict(
                    report,
                    &jiff::tz::TimeZone::system(),
                    agent.pair_window().as_secs(),
                ),
            ));
            if let Ok((recent, expected)) = receipt_lists(agent).await {
                events.push(sse("recent", &recent));
                events.push(sse("expected", &expected));
            }
        }
        // Every verify scan at this workstation shows on the print screen: one of another
        // order says so (it was refused as not this bag's when scanned at this page).
        (N::Scan(report), Some(Step::Verify)) if report.step == "verify" => {
            events.push(sse("verify", &pages::verify_result(report)));
        }
        (N::Job(job), Some(Step::Verify)) if coi.is_none_or(|c| c == job.coi) => {
            events.push(Event::default().event("job").data(job.state));
        }
        (N::Device(device), Some(Step::Verify)) if device.kind == "printer" => {
            events.push(sse("printer", &pages::printer_panel(&agent.printers())));
        }
        (N::Device(_), None) => {
            events.push(sse(
                "devices",
                &pages::devices(&agent.printers(), &agent.scanners()),
            ));
        }
        _ => {}
    }
    events
}

async fn enable_operator(
    State(agent): State<Agent>,
    headers: HeaderMap,
    form: Result<Form<OperatorForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let (session, form) = match admin_form(&agent, &headers, form, "No operator given.").await {
        Ok(signed) => signed,
        Err(response) => return response,
    };
    if let Err(problem) = pin_again(&agent, &session, &form.pin, "enable_operator").await {
        return admin_view(&agent, &session.operator, Some((false, problem))).await;
    }
    let message = match agent
        .journal()
        .enable_operator(form.id.clone(), Some(session.operator.clone()))
        .await
    {
        Ok(Ok(())) => (true, format!("Operator {} can sign in again.", form.id)),
        Ok(Err(problem)) => (false, format!("Not enabled: {problem}")),
        Err(problem) => (false, format!("Not enabled: {problem}")),
    };
    admin_view(&agent, &session.operator, Some(message)).await
}

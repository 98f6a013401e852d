//! The local JSON API that `coi-agent serve` offers on loopback (docs/local-api.md): health,
//! metrics, the order cache, printing a bag label, a typed scan, recent scans and the event
//! stream. A thin face over the agent's flows ([`crate::agent::Agent`]) with the same output
//! types as the CLI's `--json` ([`crate::report`]).
//!
//! Guards, in order: a `Host` that is not this listener is refused (DNS rebinding); a state
//! change from another origin is refused; every `/api/` route needs the bearer token. No CORS
//! headers are ever sent, GET never changes state, bodies are at most 64 KiB of JSON with no
//! unknown fields.

pub mod pages;
pub mod token;
pub mod ui;

use std::convert::Infallible;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use crate::agent::{Agent, FlowError, LabelOrder, Notice};
use crate::isbt128::coi::CoiId;
use crate::labeling::Refusal;
use crate::reconcile::Step;
use crate::report::{OrderSummary, ScanReport};
use crate::scanner::Scan;

/// The largest request body taken: a scan or a print request is a few hundred bytes.
pub const MAX_BODY: usize = 64 * 1024;
/// The longest scan taken, as a scanner's default maximum read.
const MAX_SCAN: usize = 1024;
/// The longest operator id (a badge or user id).
const MAX_OPERATOR: usize = 64;

/// A bag label's preview: the one `/api/` route a screen's session may use.
const PREVIEW_ROUTE: &str = "/api/v1/orders/{coi}/bags/{bag}/preview.png";

/// How long a rendered preview is served again (its collection time is "now", to the minute).
const PREVIEW_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// The most scans one `GET /api/v1/scans` returns.
const MAX_SCANS: usize = 1000;

/// Serves the API on `listener` until the agent stops (event streams end then too).
pub async fn serve(agent: Agent, listener: tokio::net::TcpListener) {
    let mut stopping = agent.stopping();
    let app = router(agent);
    // Events and verdicts are small writes that must go out at once, not wait for an ACK.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(problem) = tcp.set_nodelay(true) {
            tracing::debug!(%problem, "TCP_NODELAY not set");
        }
    });
    let res = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            crate::agent::until_true(&mut stopping).await;
        })
        .await;
    if let Err(problem) = res {
        tracing::error!(%problem, "api stopped");
    }
}

/// The routes with their guards.
pub fn router(agent: Agent) -> Router {
    let api = Router::new()
        .route("/api/v1/orders", get(list_orders))
        .route("/api/v1/orders/{coi}", get(show_order))
        .route("/api/v1/orders/{coi}/bags/{bag}/labels", post(print_label))
        .route(PREVIEW_ROUTE, get(preview))
        .route("/api/v1/jobs/{job_id}/void", post(void_label))
        .route("/api/v1/scans", post(post_scan).get(recent_scans))
        .route("/api/v1/events", get(events))
        .route_layer(middleware::from_fn_with_state(agent.clone(), bearer))
        // Bodies past the limit are not even read; the handler says why (a 400).
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY));
    Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(api)
        .merge(ui::routes())
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such route") })
        .layer(middleware::from_fn_with_state(agent.clone(), same_origin))
        .layer(middleware::map_response(
            |mut response: Response| async move {
                ui::secure_headers(response.headers_mut());
                response
            },
        ))
        .with_state(agent)
}

/// An operator id as it may be recorded: short and printable, or why not.
fn check_operator(operator: Option<&str>) -> Result<(), String> {
    match operator {
        Some(id)
            if id.trim().is_empty()
                || id.chars().count() > MAX_OPERATOR
                || id.chars().any(char::is_control) =>
        {
            Err(format!(
                "field operator: 1 to {MAX_OPERATOR} printable characters (a badge or user id)"
            ))
        }
        _ => Ok(()),
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// Refuses a request whose `Host` is not this listener (a DNS-rebinding page names its own
/// host), and a state change sent from another origin.
async fn same_origin(State(agent): State<Agent>, request: Request, next: Next) -> Response {
    let listen = agent.listen();
    let port = listen.port();
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let allowed = [listen.to_string(), format!("localhost:{port}")];
    if !allowed.iter().any(|a| a.eq_ignore_ascii_case(host)) {
        return error(
            StatusCode::BAD_REQUEST,
            "this API answers only requests addressed to its own listen address",
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let headers = request.headers();
        let origin_ok = match headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
            None => true,
            Some(origin) => allowed
                .iter()
                .any(|a| origin.eq_ignore_ascii_case(&format!("http://{a}"))),
        };
        let fetch_site_ok = headers
            .get("sec-fetch-site")
            .and_then(|s| s.to_str().ok())
            .is_none_or(|site| matches!(site, "same-origin" | "none"));
        if !origin_ok || !fetch_site_ok {
            return error(
                StatusCode::FORBIDDEN,
                "a request from another site cannot change anything here",
            );
        }
    }
    next.run(request).await
}

/// Every `/api/` route needs `Authorization: Bearer` with the configured token; a label
/// preview may also be fetched by a signed-in operator's screen (the token never reaches the
/// browser).
async fn bearer(State(agent): State<Agent>, request: Request, next: Next) -> Response {
    let preview = request.method() == Method::GET
        && request
            .extensions()
            .get::<axum::extract::MatchedPath>()
            .is_some_and(|p| p.as_str() == PREVIEW_ROUTE);
    if preview
        && ui::signed_in(&agent, request.headers(), false)
            .await
            .is_some_and(|session| ui::may_print(session.role))
    {
        return next.run(request).await;
    }
    // RFC 7235: the scheme is case-insensitive.
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, token)| token);
    if given.is_empty() || !token::same(given.trim(), agent.api_token()) {
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token (see [api] token_file)",
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return response;
    }
    next.run(request).await
}

/// A JSON body of type `T`, or what is wrong with it for a 400 (field named, no value echoed).
fn parse_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &Result<Bytes, BytesRejection>,
) -> Result<T, String> {
    let body = match body {
        Ok(body) if body.len() <= MAX_BODY => body,
        Ok(_) => return Err(format!("the body is larger than {MAX_BODY} bytes")),
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(format!("the body is larger than {MAX_BODY} bytes"));
        }
        Err(rejection) => return Err(format!("the body could not be read: {rejection}")),
    };
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .is_some_and(|c| {
            c.split(';')
                .next()
                .is_some_and(|t| t.trim() == "application/json")
        });
    if !json {
        return Err("the body must be JSON (Content-Type: application/json)".to_owned());
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = serde_path_to_error::deserialize::<_, T>(&mut de);
    if let (Ok(_), Err(trailing)) = (&parsed, de.end()) {
        return Err(format!(
            "the body is not what this route takes: {}",
            classify(&trailing)
        ));
    }
    match parsed {
        Ok(value) => Ok(value),
        Err(problem) => {
            let path = problem.path().to_string();
            let inner = problem.into_inner();
            // serde's messages name fields and types; a string value is never echoed back.
            let message = if path == "." || path.is_empty() {
                format!(
                    "the body is not what this route takes: {}",
                    classify(&inner)
                )
            } else {
                format!("field {}: {}", shown_key(&path), classify(&inner))
            };
            Err(message)
        }
    }
}

/// For the fuzzer (`fuzz/fuzz_targets/api_bodies.rs`): `data` as the JSON body of each route
/// that takes one, and the refusals they would answer with.
#[doc(hidden)]
pub fn refusals_for_fuzzing(data: &[u8]) -> Vec<String> {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    let body = Ok(Bytes::copy_from_slice(data));
    [
        parse_body::<LabelBody>(&headers, &body).err(),
        parse_body::<VoidBody>(&headers, &body).err(),
        parse_body::<ScanBody>(&headers, &body).err(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A key the sender wrote, for a message: at most 40 characters, control and bidi characters
/// escaped.
fn shown_key(key: &str) -> String {
    let mut shown: String = key.chars().take(40).collect();
    if key.chars().count() > 40 {
        shown.push('…');
    }
    crate::orders::record::printable(&shown).into_owned()
}

/// serde_json's message, with any quoted input value left out.
fn classify(err: &serde_json::Error) -> String {
    let text = err.to_string();
    if text.starts_with("missing field") {
        // Names one of this route's fields.
        return text;
    }
    if let Some(rest) = text.strip_prefix("unknown field `") {
        // The field is the sender's key: shown short and printable (a key may be anything), with
        // the fields this route takes.
        // The last "`, expected" ends the key: the list of fields after it holds none.
        let Some((key, expected)) = rest.rsplit_once("`, expected ") else {
            return "an unknown field".to_owned();
        };
        return format!("unknown field `{}`, expected {expected}", shown_key(key));
    }
    match err.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            format!(
                "not valid JSON (line {}, column {})",
                err.line(),
                err.column()
            )
        }
        serde_json::error::Category::Data => "a value of the wrong type or form".to_owned(),
        serde_json::error::Category::Io => "could not be read".to_owned(),
    }
}

/// Alive while the process can still record: a daemon whose journal owner is gone is not.
async fn livez(State(agent): State<Agent>) -> Response {
    if agent.journal().is_alive() {
        "ok\n".into_response()
    } else {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the journal's owner has stopped: nothing can be recorded",
        )
    }
}

async fn readyz(State(agent): State<Agent>) -> Response {
    let health = agent.journal().health().await.map(|mut health| {
        health.orders_synced_at = agent.orders_synced_at(health.orders_synced_at);
        health
    });
    let now = jiff::Timestamp::now();
    let (status, journal, orders, outbox) = match &health {
        Ok(health) => (
            StatusCode::OK,
            json!("ok"),
            json!({
                "count": health.orders,
                "age_secs": health.orders_synced_at.map(|t| now.as_second() - t.as_second()),
                "sync_error": agent.sync_error(),
            }),
            json!({"pending": health.outbox.pending, "parked": health.outbox.parked.len()}),
        ),
        Err(problem) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!(format!("error: {problem}")),
            json!(null),
            json!(null),
        ),
    };
    let body = json!({
        "journal": journal,
        "orders": orders,
        "printers": agent.printers(),
        "scanners": agent.scanners(),
        "outbox": outbox,
    });
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(agent): State<Agent>) -> Response {
    let health = agent.journal().health().await.ok().map(|mut health| {
        health.orders_synced_at = agent.orders_synced_at(health.orders_synced_at);
        health
    });
    let text = agent
        .metrics()
        .render(health.as_ref(), jiff::Timestamp::now());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn list_orders(State(agent): State<Agent>) -> Response {
    let book = match agent.journal().orders().await {
        Ok(book) => book,
        Err(problem) => return error(StatusCode::SERVICE_UNAVAILABLE, &problem.to_string()),
    };
    let site = agent.site_id();
    let orders: Vec<OrderSummary> = book
        .orders()
        .iter()
        .filter(|o| o.collection.facility.site_id == site || o.manufacturing.site_id == site)
        .map(OrderSummary::new)
        .collect();
    axum::Json(json!({ "orders": orders })).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderQuery {
    #[serde(default)]
    patient: bool,
}

async fn show_order(
    State(agent): State<Agent>,
    Path(coi): Path<String>,
    query: Result<Query<OrderQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return error(
            StatusCode::BAD_REQUEST,
            "the only query parameter is patient=true|false",
        );
    };
    let Ok(coi) = CoiId::parse(&coi) else {
        return error(
            StatusCode::BAD_REQUEST,
            "not a COI identifier (15 characters, e.g. CHA999925000042)",
        );
    };
    match crate::agent::order_report(agent.journal(), &coi, query.patient).await {
        Ok(Some(report)) => axum::Json(report).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "no cached order has this COI identifier",
        ),
        Err(problem) => error(StatusCode::SERVICE_UNAVAILABLE, &problem.to_string()),
    }
}

/// The order and bag a path names, or what is wrong with them (for a 400).
fn order_bag(coi: &str, bag: &str) -> Result<(CoiId, u8), String> {
    let coi = CoiId::parse(coi)
        .map_err(|_| "not a COI identifier (15 characters, e.g. CHA999925000042)".to_owned())?;
    let bag = ui::bag_number(bag).ok_or_else(|| {
        format!(
            "the bag number is 1 to {}",
            crate::isbt128::din::MAX_CONTAINERS
        )
    })?;
    Ok((coi, bag))
}

/// A bag label's preview (PNG) as it would print now on the default printer: the same layout
/// as the print, from the cached order, for an order collected here. Nothing is recorded.
async fn preview(State(agent): State<Agent>, Path((coi, bag)): Path<(String, String)>) -> Response {
    let (coi, bag) = match order_bag(&coi, &bag) {
        Ok(found) => found,
        Err(problem) => return error(StatusCode::BAD_REQUEST, &problem),
    };
    let book = match agent.journal().orders().await {
        Ok(book) => book,
        Err(problem) => return error(StatusCode::SERVICE_UNAVAILABLE, &problem.to_string()),
    };
    let Some(order) = book.by_coi(&coi) else {
        return error(
            StatusCode::NOT_FOUND,
            "no cached order has this COI identifier",
        );
    };
    // Only what this workstation may print: its own collections.
    if order.collection.facility.site_id != agent.site_id() {
        return error(
            StatusCode::FORBIDDEN,
            "this order's bags are labelled at its collection site",
        );
    }
    let dpi = agent
        .printer_dpi(None)
        .unwrap_or(crate::printer::DEFAULT_DPI);
    // The collection time the bag's label carries, or the one its collection's labels carry
    // (one per collection), or now for a collection not labelled yet.
    let bags = match agent
        .journal()
        .bag_labels(coi.as_str(), order.collection.bags)
        .await
    {
        Ok(bags) => bags,
        Err(problem) => return error(StatusCode::SERVICE_UNAVAILABLE, &problem.to_string()),
    };
    let printed_at = bags
        .iter()
        .find(|b| b.bag == bag && b.collected_at.is_some())
        .or_else(|| bags.iter().find(|b| b.collected_at.is_some()))
        .and_then(|b| b.collected_at.as_deref())
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    // The same order book, bag, time and resolution within the TTL: the same picture (a
    // screen asks again each time a bag's state changes). A new order book is a new key.
    let key = (
        format!(
            "{}@{}",
            coi.as_str(),
            printed_at.map(|t| t.to_string()).unwrap_or_default()
        ),
        bag,
        dpi,
        std::sync::Arc::as_ptr(&book) as usize,
    );
    if let Some(png) = agent.previews().get(&key, PREVIEW_TTL) {
        return ([(header::CONTENT_TYPE, "image/png")], png.to_vec()).into_response();
    }
    let rendered = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, (StatusCode, String)> {
        let unprocessable = |e: String| (StatusCode::UNPROCESSABLE_ENTITY, e);
        let Some(order) = book.by_coi(&coi) else {
            return Err(unprocessable("the order left the cache".to_owned()));
        };
        let templates = crate::label::builtin().map_err(|e| unprocessable(e.to_string()))?;
        let template = templates
            .iter()
            .find(|t| t.name == ui::BAG_TEMPLATE)
            .ok_or_else(|| unprocessable("no bag label template".to_owned()))?;
        let at = printed_at.unwrap_or_else(jiff::Timestamp::now);
        let data = crate::label::data::LabelData::new(order, bag, at)
            .map_err(|e| unprocessable(format!("order {}: {e}", order.order_id)))?;
        let label = crate::label::render(template, &data, dpi)
            .map_err(|e| unprocessable(e.for_operator()))?;
        label.png().map_err(|e| unprocessable(e.to_string()))
    })
    .await;
    match rendered {
        Ok(Ok(png)) => {
            agent
                .previews()
                .put(key, std::sync::Arc::from(png.as_slice()));
            ([(header::CONTENT_TYPE, "image/png")], png).into_response()
        }
        Ok(Err((status, message))) => error(status, &format!("no preview: {message}")),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "the preview failed"),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelBody {
    #[serde(default = "default_template")]
    template: String,
    operator: Option<String>,
    #[serde(default)]
    reprint: bool,
    /// Why a reprint is printed (required with `reprint`).
    reason: Option<String>,
    collected_at: Option<jiff::Timestamp>,
    /// A configured printer's name (default: the first).
    printer: Option<String>,
}

fn default_template() -> String {
    "apheresis-bag".to_owned()
}

async fn print_label(
    State(agent): State<Agent>,
    Path((coi, bag)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // Every field has a default: an empty body is the default label.
    let parsed = match &body {
        Ok(bytes) if bytes.is_empty() => {
            serde_json::from_str::<LabelBody>("{}").map_err(|e| format!("the default label: {e}"))
        }
        _ => parse_body(&headers, &body),
    };
    let body = match parsed {
        Ok(body) => body,
        Err(problem) => return error(StatusCode::BAD_REQUEST, &problem),
    };
    if let Err(problem) = check_operator(body.operator.as_deref()) {
        return error(StatusCode::BAD_REQUEST, &problem);
    }
    let (coi, bag) = match order_bag(&coi, &bag) {
        Ok(found) => found,
        Err(problem) => return error(StatusCode::BAD_REQUEST, &problem),
    };
    let order = LabelOrder {
        coi,
        bag,
        template: body.template,
        operator: body.operator,
        reprint: body.reprint,
        reason: body.reason,
        collected_at: body.collected_at,
        order_from: "file",
    };
    // The flow runs in its own task: a client that goes away must not cut it between the
    // recorded `queued` and the printer's recorded verdict.
    let printer = body.printer;
    let flow = {
        let agent = agent.clone();
        tokio::spawn(async move { agent.print_label(printer.as_deref(), order).await })
    };
    let Ok(printed) = flow.await else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "the print flow failed");
    };
    match printed {
        Ok(report) => {
            let status = match report.state {
                "confirmed" => StatusCode::CREATED,
                "unconfirmed" => StatusCode::ACCEPTED,
                // The printer refused it (a fault before sending): nothing printed.
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            (status, axum::Json(report)).into_response()
        }
        Err(FlowError::Label(refusal @ Refusal::UnknownCoi(_))) => {
            error(StatusCode::NOT_FOUND, &refusal.to_string())
        }
        Err(FlowError::Label(refusal @ Refusal::Unrecorded { .. })) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("LABEL SENT, NOT RECORDED: {refusal}"),
        ),
        Err(FlowError::Label(refusal)) => error(
            StatusCode::CONFLICT,
            &format!("label not printed, nothing sent: {refusal}"),
        ),
        Err(FlowError::Refused(message)) => error(
            StatusCode::CONFLICT,
            &format!("label not printed, nothing sent: {message}"),
        ),
        Err(FlowError::Journal(message)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("label not printed, nothing sent: journal: {message}"),
        ),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VoidBody {
    reason: String,
    operator: Option<String>,
}

async fn void_label(
    State(agent): State<Agent>,
    Path(job_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body: VoidBody = match parse_body(&headers, &body) {
        Ok(body) => body,
        Err(problem) => return error(StatusCode::BAD_REQUEST, &problem),
    };
    if let Err(problem) = check_operator(body.operator.as_deref()) {
        return error(StatusCode::BAD_REQUEST, &problem);
    }
    if job_id.len() > 64 || job_id.chars().any(char::is_control) {
        return error(
            StatusCode::BAD_REQUEST,
            "a print job id (at most 64 characters)",
        );
    }
    let flow = {
        let agent = agent.clone();
        tokio::spawn(async move {
            agent
                .void_label(job_id, Some(body.reason), body.operator)
                .await
        })
    };
    match flow.await {
        Ok(Ok(Ok(voided))) => axum::Json(crate::report::VoidReport::new(&voided)).into_response(),
        Ok(Ok(Err(crate::labeling::VoidError::UnknownJob(job)))) => {
            error(StatusCode::NOT_FOUND, &format!("no print job {job}"))
        }
        Ok(Ok(Err(crate::labeling::VoidError::Journal(problem)))) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("not recorded: journal: {problem}"),
        ),
        Ok(Ok(Err(problem))) => error(
            StatusCode::CONFLICT,
            &format!("not voided, nothing recorded: {problem}"),
        ),
        Ok(Err(stopped)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("not recorded: {stopped}"),
        ),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "the void flow failed"),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanBody {
    /// `typed` (the default: identifiers a person typed, as printed, with their check
    /// characters) or `scanner` (raw data a named scanner sent).
    entry: Option<String>,
    /// Scanner entry: what the scanner sent, without its suffix.
    data: Option<String>,
    /// Scanner entry: which scanner (its reads pair with each other, no one else's).
    scanner: Option<String>,
    /// Typed entry: the DIN with its boxed check character.
    din: Option<String>,
    /// Typed entry: the COI identifier with its boxed check character.
    coi: Option<String>,
    /// Typed entry: the bag chosen from the order's list (not needed for a one-bag order).
    bag: Option<u8>,
    /// Typed entry: a sample tube's label.
    #[serde(default)]
    sample: bool,
    step: String,
    operator: Option<String>,
    /// Verify step: the print job whose label this is (default: the label waiting for it).
    job_id: Option<String>,
}

async fn post_scan(
    State(agent): State<Agent>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body: ScanBody = match parse_body(&headers, &body) {
        Ok(body) => body,
        Err(problem) => return error(StatusCode::BAD_REQUEST, &problem),
    };
    if let Err(problem) = check_operator(body.operator.as_deref()) {
        return error(StatusCode::BAD_REQUEST, &problem);
    }
    let short = |field: Option<&String>| field.is_none_or(|v| v.len() <= MAX_SCAN);
    if ![&body.data, &body.din, &body.coi]
        .into_iter()
        .all(|f| short(f.as_ref()))
    {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("fields data, din, coi: longer than a scan can be ({MAX_SCAN} bytes)"),
        );
    }
    // Issue #17: raw scanner data only from a named scanner; anything else is typed, and
    // typed identifiers carry their check characters.
    let (source, raw) = match body.entry.as_deref().unwrap_or("typed") {
        "scanner" => {
            let typed =
                body.din.is_some() || body.coi.is_some() || body.bag.is_some() || body.sample;
            let name = body.scanner.as_deref().filter(|name| {
                !name.is_empty() && name.len() <= 64 && !name.chars().any(char::is_control)
            });
            match (body.data, name, typed) {
                (Some(data), Some(name), false) => (format!("api:{name}"), data.into_bytes()),
                _ => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "entry scanner: fields data and scanner (its name, at most 64 characters); no typed fields",
                    );
                }
            }
        }
        "typed" => {
            let (Some(din), Some(coi), None, None) =
                (&body.din, &body.coi, &body.data, &body.scanner)
            else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "typed entry: fields din and coi, each as printed with its boxed check character (and bag, from the order's list); raw scanner data needs \"entry\": \"scanner\" and the scanner's name",
                );
            };
            let chosen = match (body.bag, body.sample) {
                (Some(_), true) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "typed entry: a bag or a sample tube, not both",
                    );
                }
                (None, true) => crate::typed::Chosen::Sample,
                (Some(n), false) => crate::typed::Chosen::Bag(n),
                (None, false) => crate::typed::Chosen::Unchosen,
            };
            match crate::typed::scan_data(din, coi, chosen) {
                Ok(data) => ("typed:api".to_owned(), data.into_bytes()),
                Err(problem) => {
                    return (
                        StatusCode::UNPROCESSABLE_ENTITY,
                        axum::Json(json!({
                            "error": format!("not checked, nothing recorded: {problem}"),
                            "verdict": "mismatch",
                            "reason": problem.code(),
                        })),
                    )
                        .into_response();
                }
            }
        }
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "field entry: \"typed\" or \"scanner\"",
            );
        }
    };
    let Some(step) = Step::parse(&body.step) else {
        return error(
            StatusCode::BAD_REQUEST,
            "field step: \"receipt\" or \"verify\"",
        );
    };
    if body
        .job_id
        .as_ref()
        .is_some_and(|id| id.len() > 64 || id.chars().any(char::is_control))
    {
        return error(
            StatusCode::BAD_REQUEST,
            "field job_id: a print job id (at most 64 characters)",
        );
    }
    if step == Step::Receipt && body.job_id.is_some() {
        return error(
            StatusCode::BAD_REQUEST,
            "field job_id: only for the verify step",
        );
    }
    let scan = Scan {
        at: jiff::Timestamp::now(),
        source,
        raw,
        problem: None,
    };
    // Its own task: a client that goes away must not cut a scan between its record and its
    // announcement.
    let flow = {
        let agent = agent.clone();
        tokio::spawn(async move { agent.scan(scan, step, body.job_id, body.operator).await })
    };
    let Ok(scanned) = flow.await else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "the scan flow failed");
    };
    match scanned {
        Ok(report) => axum::Json(report).into_response(),
        Err(FlowError::Journal(message)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("not recorded: journal: {message}"),
        ),
        Err(problem) => error(
            StatusCode::CONFLICT,
            &format!("not checked, nothing recorded: {problem}"),
        ),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScansQuery {
    limit: Option<usize>,
}

async fn recent_scans(
    State(agent): State<Agent>,
    query: Result<Query<ScansQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return error(
            StatusCode::BAD_REQUEST,
            "the only query parameter is limit=N",
        );
    };
    let limit = query.limit.unwrap_or(50).clamp(1, MAX_SCANS);
    match agent.journal().recent_scans(limit).await {
        Ok(rows) => {
            let scans: Vec<ScanReport> = rows.iter().map(ScanReport::from_row).collect();
            axum::Json(json!({ "scans": scans })).into_response()
        }
        Err(problem) => error(StatusCode::SERVICE_UNAVAILABLE, &problem.to_string()),
    }
}

/// Server-sent events: `scan` (recorded scans), `job` and `device` notices, until the agent
/// stops. A reader that falls behind gets a `lagged` event and should re-read
/// `/api/v1/scans`.
async fn events(
    State(agent): State<Agent>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let notices = agent.subscribe();
    let stopping = agent.stopping();
    let stream = futures_util::stream::unfold(
        (notices, stopping),
        |(mut notices, mut stopping)| async move {
            loop {
                let notice = tokio::select! {
                    notice = notices.recv() => notice,
                    () = crate::agent::until_true(&mut stopping) => return None,
                };
                let event = match notice {
                    Ok(Notice::Scan(report)) => Event::default().event("scan").json_data(&*report),
                    Ok(Notice::Job(job)) => Event::default().event("job").json_data(&job),
                    Ok(Notice::Device(device)) => {
                        Event::default().event("device").json_data(&device)
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        Ok(Event::default().event("lagged").data(missed.to_string()))
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                };
                match event {
                    Ok(event) => return Some((Ok(event), (notices, stopping))),
                    Err(problem) => {
                        tracing::error!(%problem, "event not serialisable");
                        continue;
                    }
                }
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

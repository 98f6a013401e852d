//! A test central order service on loopback, implementing docs/central-api.md over real HTTP
//! (axum): it can be down (503), stall, refuse chosen events (422) and counts repeated event
//! ids, so tests can prove delivery is exactly once in effect.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub const TOKEN: &str = "test-token";

/// Writes the test central's token to `path` as a site would: readable by its owner only (a
/// token file others can read is refused).
pub fn write_token(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Up,
    /// Every request answers 503.
    Down,
    /// Every request waits this long before answering normally.
    Stall(Duration),
    /// Every request answers this redirect status to another origin (issue #13).
    Redirect(u16),
    /// Every request answers 200 with an HTML page, as a proxy or captive portal does.
    Html,
    /// Every request answers 404, as a wrong URL path does.
    NotFound,
    /// Each event post meets one of a misbehaving network's answers, drawn from a seeded
    /// generator: recorded normally, 500, a redirect, a 200 HTML page, a stall past the
    /// client's timeout (before or after recording), or recorded and then a 500 (issue #13).
    Chaos,
}

/// How long a chaotic stall lasts: past the clients' 2 s timeout in the tests.
pub const CHAOS_STALL: Duration = Duration::from_millis(2500);

/// A granted bag label: (job id, workstation, collection time).
pub type LiveLabel = (String, String, String);

#[derive(Debug, Default)]
pub struct Recorded {
    /// Events recorded, in arrival order: (event id, COI, body).
    pub events: Vec<(String, String, Value)>,
    /// Posts of an event id already recorded.
    pub duplicates: usize,
    /// Event ids to refuse with 422.
    pub refuse: Vec<String>,
    /// Refuse every event with 422.
    pub refuse_all: bool,
    /// Orders served by order sync: (site id, updated at, record).
    pub orders: Vec<(String, String, Value)>,
    pub requests: usize,
    /// Answer an order sync that found nothing with `as_of` = its `updated_since` (a central
    /// whose clock of changes stands still), instead of its own time.
    pub echo_as_of: bool,
    /// Bag labels granted site-wide and not voided, first first: (COI, bag) -> [(job id,
    /// workstation, collection time)].
    pub labels: HashMap<(String, u8), Vec<LiveLabel>>,
    /// Bag receipts granted site-wide: (COI, bag) -> (key, workstation).
    pub receipts: HashMap<(String, u8), (String, String)>,
    /// Events decided offline that found the bag held by another workstation.
    pub offline_conflicts: usize,
    /// Claims answered, granted or not: (COI, bag, job id, status).
    pub claims: Vec<(String, u8, String, u16)>,
}

pub struct Central {
    pub url: String,
    pub recorded: Arc<Mutex<Recorded>>,
    mode: Arc<Mutex<Mode>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Shared {
    recorded: Arc<Mutex<Recorded>>,
    mode: Arc<Mutex<Mode>>,
    /// The chaos mode's generator (xorshift64*).
    dice: Arc<Mutex<u64>>,
}

impl Shared {
    /// A roll of 0..sides.
    fn roll(&self, sides: u64) -> u64 {
        let mut state = self.dice.lock().unwrap();
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D) % sides
    }
}

impl Central {
    pub async fn start() -> Central {
        let recorded = Arc::new(Mutex::new(Recorded::default()));
        let mode = Arc::new(Mutex::new(Mode::Up));
        let shared = Shared {
            recorded: recorded.clone(),
            mode: mode.clone(),
            dice: Arc::new(Mutex::new(0x9E37_79B9_7F4A_7C15)),
        };
        let app = axum::Router::new()
            .route("/v1/events", post(post_event))
            .route("/v1/orders/{coi}/bags/{bag}/label", post(claim_label))
            .route("/v1/orders/{coi}/bags/{bag}/receipt", post(claim_receipt))
            .route("/v1/orders/{coi}", get(get_order))
            .route("/v1/sites/{site}/orders", get(site_orders))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Central {
            url,
            recorded,
            mode,
            task,
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn recorded(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.recorded.lock().unwrap()
    }

    /// Event ids recorded for each COI, in arrival order.
    pub fn per_coi(&self) -> HashMap<String, Vec<String>> {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (id, coi, _) in &self.recorded().events {
            map.entry(coi.clone()).or_default().push(id.clone());
        }
        map
    }
}

impl Drop for Central {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The mode's effect before a request is handled: `Some(response)` answers it now.
async fn gate(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    shared.recorded.lock().unwrap().requests += 1;
    let mode = *shared.mode.lock().unwrap();
    match mode {
        Mode::Down => {
            return Some(
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"error": "down for maintenance"})),
                )
                    .into_response(),
            );
        }
        Mode::Stall(delay) => tokio::time::sleep(delay).await,
        Mode::Redirect(code) => {
            return Some(
                (
                    StatusCode::from_u16(code).unwrap(),
                    [("location", "http://127.0.0.1:9/elsewhere")],
                )
                    .into_response(),
            );
        }
        Mode::Html => {
            return Some(
                (
                    StatusCode::OK,
                    [("content-type", "text/html")],
                    "<html><body>Please sign in to the guest network</body></html>",
                )
                    .into_response(),
            );
        }
        Mode::NotFound => {
            return Some((StatusCode::NOT_FOUND, "not found").into_response());
        }
        Mode::Up | Mode::Chaos => {}
    }
    let authorized = headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {TOKEN}"));
    (!authorized).then(|| {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "bad token"})),
        )
            .into_response()
    })
}

async fn post_event(State(shared): State<Shared>, headers: HeaderMap, body: String) -> Response {
    if let Some(response) = gate(&shared, &headers).await {
        return response;
    }
    let Ok(event) = serde_json::from_str::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "not JSON"}))).into_response();
    };
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if key.is_empty() || event["event_id"].as_str() != Some(key.as_str()) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "Idempotency-Key must equal event_id"})),
        )
            .into_response();
    }
    // Every event is checked against the schema of docs/central-api.md (issue #13): no null
    // where a type is promised, no field the schema does not name.
    if let Some(problem) = schema_problem(&event) {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": format!("schema: {problem}")})),
        )
            .into_response();
    }
    // Chaos: what happens to this post, if not a plain answer.
    let chaos = (*shared.mode.lock().unwrap() == Mode::Chaos).then(|| shared.roll(10));
    match chaos {
        Some(4) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "upstream error").into_response();
        }
        Some(5) => {
            return (
                StatusCode::FOUND,
                [("location", "http://127.0.0.1:9/login")],
            )
                .into_response();
        }
        Some(6) => {
            return (
                StatusCode::OK,
                [("content-type", "text/html")],
                "<html><body>Session expired</body></html>",
            )
                .into_response();
        }
        Some(9) => {
            tokio::time::sleep(CHAOS_STALL).await;
            return (StatusCode::SERVICE_UNAVAILABLE, "slow").into_response();
        }
        _ => {}
    }
    let answer = record_event(&shared, key, event);
    match chaos {
        // Recorded, but the answer is lost: a stall past the timeout, or an error.
        Some(7) => {
            tokio::time::sleep(CHAOS_STALL).await;
            answer
        }
        Some(8) => (StatusCode::INTERNAL_SERVER_ERROR, "lost answer").into_response(),
        _ => answer,
    }
}

/// A claim's key (its `Idempotency-Key`, equal to its `job_id`), body and workstation, or the
/// 400 that refuses it.
#[allow(clippy::result_large_err)] // a test service: the refusal is the response
fn read_claim(headers: &HeaderMap, body: &str) -> Result<(String, Value, String), Response> {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let Ok(claim) = serde_json::from_str::<Value>(body) else {
        return Err((StatusCode::BAD_REQUEST, Json(json!({"error": "not JSON"}))).into_response());
    };
    if key.is_empty() || claim["job_id"].as_str() != Some(key.as_str()) {
        return Err((
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "Idempotency-Key must equal job_id"})),
        )
            .into_response());
    }
    let workstation = claim["workstation"].as_str().unwrap_or_default().to_owned();
    Ok((key, claim, workstation))
}

/// Site-wide arbitration of a bag's label (docs/central-api.md): the first job granted holds
/// the bag; the same job again is 200; another first label, or another collection time, is 409
/// naming the holder; a reprint is granted while a first label is held.
async fn claim_label(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path((coi, bag)): Path<(String, u8)>,
    body: String,
) -> Response {
    if let Some(response) = gate(&shared, &headers).await {
        return response;
    }
    let (key, claim, workstation) = match read_claim(&headers, &body) {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let collected_at = claim["collected_at"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let reprint = claim["reprint"].as_bool().unwrap_or(false);
    let mut recorded = shared.recorded.lock().unwrap();
    // Every label of one collection carries one collection time: the first live grant's.
    let collection_time = recorded
        .labels
        .iter()
        .filter(|((c, _), _)| *c == coi)
        .flat_map(|(_, live)| live.first())
        .map(|(_, _, time)| time.clone())
        .next();
    if let Some(time) = collection_time.filter(|time| *time != collected_at) {
        recorded.claims.push((coi, bag, key, 409));
        return (
            StatusCode::CONFLICT,
            Json(json!({"error": "another collection time than the collection's", "collected_at": time})),
        )
            .into_response();
    }
    let live = recorded.labels.entry((coi.clone(), bag)).or_default();
    let (status, answer) = if live.iter().any(|(job, ..)| *job == key) {
        (StatusCode::OK, json!({"job_id": key}))
    } else {
        match live.first().cloned() {
            None => {
                live.push((key.clone(), workstation, collected_at));
                (StatusCode::CREATED, json!({"job_id": key}))
            }
            Some((job, by, _)) if !reprint => (
                StatusCode::CONFLICT,
                json!({
                    "error": "the bag already has its label",
                    "holder": {"job_id": job, "workstation": by},
                }),
            ),
            Some(_) => {
                live.push((key.clone(), workstation, collected_at));
                (StatusCode::CREATED, json!({"job_id": key}))
            }
        }
    };
    recorded.claims.push((coi, bag, key, status.as_u16()));
    (status, Json(answer)).into_response()
}

/// Site-wide arbitration of a bag's receipt: the first workstation's key holds it; the same key
/// again is 200; any other is 409 naming the holder.
async fn claim_receipt(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path((coi, bag)): Path<(String, u8)>,
    body: String,
) -> Response {
    if let Some(response) = gate(&shared, &headers).await {
        return response;
    }
    let (key, _, workstation) = match read_claim(&headers, &body) {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let mut recorded = shared.recorded.lock().unwrap();
    let held = recorded
        .receipts
        .entry((coi.clone(), bag))
        .or_insert((key.clone(), workstation))
        .clone();
    let (status, answer) = if held.0 == key {
        (StatusCode::CREATED, json!({"job_id": key}))
    } else {
        (
            StatusCode::CONFLICT,
            json!({"error": "the bag was received", "holder": {"job_id": held.0, "workstation": held.1}}),
        )
    };
    recorded.claims.push((coi, bag, key, status.as_u16()));
    (status, Json(answer)).into_response()
}

/// Records an event (once: a repeated id is counted as a duplicate) and answers as central
/// does. A `label_voided` of the job holding a bag's label frees the bag.
fn record_event(shared: &Shared, key: String, event: Value) -> Response {
    let mut recorded = shared.recorded.lock().unwrap();
    // A label or a receipt decided offline takes the bag as a grant would, unless another holds
    // it (a conflict for people to resolve).
    if event["details"]["arbitration"] == "offline" {
        let coi = event["coi"].as_str().unwrap_or_default().to_owned();
        let bag = event["bag"].as_u64().unwrap_or_default() as u8;
        let job = event["details"]["job_id"]
            .as_str()
            .unwrap_or(&key)
            .to_owned();
        let workstation = event["workstation"].as_str().unwrap_or_default().to_owned();
        let conflict = match event["type"].as_str() {
            Some("label_printed" | "label_reprinted") => {
                let live = recorded.labels.entry((coi, bag)).or_default();
                let taken = live.first().is_some_and(|(j, ..)| *j != job)
                    && event["type"] == "label_printed";
                if live.is_empty() {
                    let time = event["details"]["collected_at"]
                        .as_str()
                        .unwrap_or_default();
                    live.push((job, workstation, time.to_owned()));
                }
                taken
            }
            Some("bag_received") => {
                let held = recorded
                    .receipts
                    .entry((coi, bag))
                    .or_insert((key.clone(), workstation.clone()));
                held.1 != workstation
            }
            _ => false,
        };
        recorded.offline_conflicts += usize::from(conflict);
    }
    // A voided label, or a job that printed nothing, no longer holds its bag.
    if event["type"] == "label_voided" || event["type"] == "print_failed" {
        let voided = event["details"]["job_id"].as_str().unwrap_or_default();
        for live in recorded.labels.values_mut() {
            live.retain(|(job, ..)| job != voided);
        }
    }
    if recorded.refuse_all || recorded.refuse.contains(&key) {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": "unknown bag for this order"})),
        )
            .into_response();
    }
    // The answer names the event it recorded (docs/central-api.md).
    if recorded.events.iter().any(|(id, _, _)| *id == key) {
        recorded.duplicates += 1;
        return (StatusCode::OK, Json(json!({"event_id": key}))).into_response();
    }
    let coi = event["coi"].as_str().unwrap_or_default().to_owned();
    recorded.events.push((key.clone(), coi, event));
    (StatusCode::CREATED, Json(json!({"event_id": key}))).into_response()
}

async fn get_order(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(coi): Path<String>,
) -> Response {
    if let Some(response) = gate(&shared, &headers).await {
        return response;
    }
    let recorded = shared.recorded.lock().unwrap();
    // The order's latest version (the last one published).
    match recorded
        .orders
        .iter()
        .rev()
        .find(|(_, _, o)| o["coi"] == coi.as_str())
    {
        Some((_, _, order)) => Json(order.clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no such order"})),
        )
            .into_response(),
    }
}

async fn site_orders(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(site): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(response) = gate(&shared, &headers).await {
        return response;
    }
    let recorded = shared.recorded.lock().unwrap();
    let since = query.get("updated_since").cloned().unwrap_or_default();
    let orders: Vec<Value> = recorded
        .orders
        .iter()
        .filter(|(s, updated, _)| *s == site && *updated >= since)
        .map(|(_, _, o)| o.clone())
        .collect();
    let as_of = if recorded.echo_as_of && orders.is_empty() && !since.is_empty() {
        since
    } else {
        coi_agent::journal::utc_text(jiff::Timestamp::now())
    };
    Json(json!({"orders": orders, "as_of": as_of})).into_response()
}

/// What of `event` breaks the CustodyEvent schema of docs/central-api.md, if anything.
pub fn schema_problem(event: &Value) -> Option<String> {
    const TYPES: &[&str] = &[
        "label_printed",
        "label_verified",
        "label_reprinted",
        "label_voided",
        "print_failed",
        "bag_received",
        "sample_received",
        "scan_mismatch",
    ];
    let object = event.as_object()?;
    for field in ["event_id", "type", "coi", "site_id", "workstation", "at"] {
        if !object.get(field).is_some_and(Value::is_string) {
            return Some(format!("{field}: a string is required"));
        }
    }
    if !TYPES.contains(&object["type"].as_str().unwrap_or_default()) {
        return Some("type: not a custody event type".to_owned());
    }
    for (field, value) in object {
        let ok = match field.as_str() {
            "event_id" | "type" | "coi" | "site_id" | "workstation" | "at" => true,
            "din" | "operator" | "local_zone" => value.is_string(),
            "bag" => value.as_u64().is_some_and(|n| (1..=9).contains(&n)),
            "bags" => value.as_u64().is_some_and(|n| (1..=9).contains(&n)),
            "details" => value.is_object(),
            // The audit head: {seq, hash}, a positive entry number and 64 hex digits.
            "audit" => {
                value["seq"].as_u64().is_some_and(|n| n >= 1)
                    && value["hash"]
                        .as_str()
                        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                    && value.as_object().is_some_and(|o| o.len() == 2)
            }
            _ => return Some(format!("{field}: not in the schema")),
        };
        if !ok {
            return Some(format!("{field}: {value} is not of its type"));
        }
    }
    None
}

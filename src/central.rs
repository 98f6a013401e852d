//! The HTTP client of the central order service (docs/central-api.md): order sync with
//! `updated_since`, one order by COI, and custody events posted with their idempotency key.
//! The only code that talks to the central service. Bodies are never logged: orders carry
//! patient data.

use std::time::Duration;

use serde::Deserialize;

/// A client for one central service.
#[derive(Debug, Clone)]
pub struct CentralClient {
    http: reqwest::Client,
    base: reqwest::Url,
    token: String,
    /// The largest order list or order answer read.
    max_orders_body: usize,
}

/// Why a call to the central service failed, classified for retrying.
#[derive(Debug, thiserror::Error)]
pub enum CentralError {
    /// Worth retrying: a connection failure, a timeout, 401/403 (a token to fix), 408, 429 or
    /// 5xx.
    #[error("central service unavailable: {0}")]
    Unavailable(String),
    /// The service refused the request (4xx other than 408/429); retrying will not help.
    #[error("central service refused the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    /// The service answered something that is not what docs/central-api.md says.
    #[error("central service answered unexpectedly: {0}")]
    Protocol(String),
    #[error("central service address {0:?} is not a valid http(s) URL")]
    BadUrl(String),
}

/// What posting an event achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posted {
    /// 201: recorded now.
    Created,
    /// 200: recorded before (a repeat of the same event id).
    AlreadyRecorded,
}

/// One page of order sync.
#[derive(Debug, Deserialize)]
pub struct OrderPage {
    /// Raw order records; the caller checks each ([`super::record::parse_order`]).
    pub orders: Vec<serde_json::Value>,
    /// Pass as `updated_since` next time.
    pub as_of: String,
}

impl CentralError {
    /// Whether the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, CentralError::Unavailable(_))
    }
}

/// A request that does not finish in this long is abandoned and counts as unavailable: the
/// service answers in milliseconds when it is well, and a hung connection must not stall the
/// outbox.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl CentralClient {
    /// A client for the service at `base_url` (e.g. `https://central.example.org`).
    ///
    /// # Errors
    /// An address that is not an http(s) URL, or a TLS setup failure.
    pub fn new(
        base_url: &str,
        token: String,
        timeout: Duration,
    ) -> Result<CentralClient, CentralError> {
        let mut base =
            reqwest::Url::parse(base_url).map_err(|_| CentralError::BadUrl(base_url.to_owned()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(CentralError::BadUrl(base_url.to_owned()));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        // ring, not aws-lc: the lighter build (DEPENDENCIES.md); installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            // Never follow a redirect: a POST followed as a GET "succeeds" without recording
            // the event (issue #13), and orders served from another origin are not central's.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("coi-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CentralError::Protocol(format!("HTTP client setup: {e}")))?;
        Ok(CentralClient {
            http,
            base,
            token,
            max_orders_body: DEFAULT_MAX_ORDERS_BODY,
        })
    }

    /// The same client, reading order answers of at most `bytes` (`[orders] max_mib`).
    #[must_use]
    pub fn with_order_limit(self, bytes: u64) -> CentralClient {
        CentralClient {
            max_orders_body: usize::try_from(bytes).unwrap_or(usize::MAX),
            ..self
        }
    }

    /// Orders of `site_id` changed at or after `since` (all active orders when `None`).
    ///
    /// # Errors
    /// See [`CentralError`].
    pub async fn orders_since(
        &self,
        site_id: &str,
        since: Option<&str>,
    ) -> Result<OrderPage, CentralError> {
        let url = self.url(&format!("v1/sites/{}/orders", encode(site_id)))?;
        let mut request = self.http.get(url).bearer_auth(&self.token);
        if let Some(since) = since {
            request = request.query(&[("updated_since", since)]);
        }
        let response = request.send().await.map_err(unavailable)?;
        let response = check(response).await?;
        let body = read_capped(response, self.max_orders_body).await?;
        // Megabytes of JSON are parsed off the async workers, so scans are not kept waiting.
        tokio::task::spawn_blocking(move || {
            crate::orders::json::parse_strict(&body).and_then(serde_json::from_value::<OrderPage>)
        })
        .await
        .map_err(|e| CentralError::Protocol(format!("order list: {e}")))?
        .map_err(|e| CentralError::Protocol(format!("order list: {e}")))
    }

    /// One order by COI identifier; `None` when central does not know it.
    ///
    /// # Errors
    /// See [`CentralError`].
    pub async fn order(&self, coi: &str) -> Result<Option<serde_json::Value>, CentralError> {
        let url = self.url(&format!("v1/orders/{}", encode(coi)))?;
        let response = self
            .http
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(unavailable)?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = check(response).await?;
        let body = read_capped(response, self.max_orders_body).await?;
        let order = crate::orders::json::parse_strict(&body)
            .map_err(|e| CentralError::Protocol(format!("order: {e}")))?;
        Ok(Some(order))
    }

    /// Posts a custody event with its idempotency key.
    ///
    /// # Errors
    /// See [`CentralError`].
    pub async fn post_event(&self, event_id: &str, payload: &str) -> Result<Posted, CentralError> {
        let url = self.url("v1/events")?;
        let response = self
            .http
            .post(url)
            .bearer_auth(&self.token)
            .header("Idempotency-Key", event_id)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(payload.to_owned())
            .send()
            .await
            .map_err(unavailable)?;
        let posted = match response.status().as_u16() {
            201 => Posted::Created,
            200 => Posted::AlreadyRecorded,
            _ => {
                check(response).await?;
                return Err(CentralError::Protocol(
                    "event answered with an unexpected success status: not counted as recorded"
                        .to_owned(),
                ));
            }
        };
        // Recorded only when the service says which event it recorded: a 200 from a proxy, a
        // captive portal or a login page is not central's word (issue #13).
        let body = read_capped(response, MAX_EVENT_BODY).await?;
        let echoed = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("event_id")
                    .and_then(|e| e.as_str())
                    .map(str::to_owned)
            });
        if echoed.as_deref() != Some(event_id) {
            return Err(CentralError::Protocol(format!(
                "the answer does not name the event it recorded: not counted as recorded ({})",
                excerpt(&body)
            )));
        }
        Ok(posted)
    }

    /// Asks central for the right to put `what` (`label` or `receipt`) on bag `bag` of `coi`,
    /// for the job or scan `key` (docs/central-api.md, "Site-wide arbitration"): granted (201,
    /// or 200 for the same key again, naming it), or held by another (409, naming the holder).
    ///
    /// # Errors
    /// See [`CentralError`]; an answer that names neither is a protocol error.
    pub async fn claim(
        &self,
        coi: &str,
        bag: u8,
        what: &str,
        key: &str,
        body: &serde_json::Value,
    ) -> Result<Claim, CentralError> {
        let url = self.url(&format!("v1/orders/{}/bags/{bag}/{what}", encode(coi)))?;
        let response = self
            .http
            .post(url)
            .bearer_auth(&self.token)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .map_err(unavailable)?;
        let status = response.status().as_u16();
        if !matches!(status, 200 | 201 | 409) {
            check(response).await?;
            return Err(CentralError::Protocol(format!(
                "claim answered {status}: not counted"
            )));
        }
        let body = read_capped(response, MAX_EVENT_BODY).await?;
        let answer: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|_| CentralError::Protocol(format!("claim: not JSON ({})", excerpt(&body))))?;
        let text = |v: &serde_json::Value| {
            v.as_str().map(|s| {
                s.chars()
                    .filter(|c| !c.is_control())
                    .take(64)
                    .collect::<String>()
            })
        };
        if status == 409 {
            // Another collection time than the collection's first label's.
            if let Some(collected_at) = text(&answer["collected_at"]) {
                return Ok(Claim::CollectionTime { collected_at });
            }
            let holder = &answer["holder"];
            return match (text(&holder["job_id"]), text(&holder["workstation"])) {
                (Some(job_id), Some(workstation)) => Ok(Claim::Held {
                    job_id,
                    workstation,
                    reason: text(&answer["error"]).unwrap_or_default(),
                }),
                _ => Err(CentralError::Protocol(
                    "claim refused without naming its holder: not counted".to_owned(),
                )),
            };
        }
        if text(&answer["job_id"]).as_deref() != Some(key) {
            return Err(CentralError::Protocol(format!(
                "claim granted without naming it: not counted ({})",
                excerpt(&body)
            )));
        }
        Ok(Claim::Granted)
    }

    fn url(&self, path: &str) -> Result<reqwest::Url, CentralError> {
        self.base
            .join(path)
            .map_err(|_| CentralError::BadUrl(format!("{}{path}", self.base)))
    }
}

/// Central's answer to a claim on a bag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    Granted,
    /// The collection's labels carry another collection time (central's record).
    CollectionTime {
        collected_at: String,
    },
    /// Another job (another workstation's) holds it.
    Held {
        job_id: String,
        workstation: String,
        reason: String,
    },
}

fn unavailable(err: reqwest::Error) -> CentralError {
    CentralError::Unavailable(err.without_url().to_string())
}

/// The largest order list read (the whole cache of a busy site is a few megabytes).
const DEFAULT_MAX_ORDERS_BODY: usize = 64 * 1024 * 1024;
/// The largest answer to a posted event read (it names the event, nothing more).
const MAX_EVENT_BODY: usize = 64 * 1024;

/// Reads a body of at most `cap` bytes: a larger one is refused, never read whole.
async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, CentralError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unavailable)? {
        if body.len() + chunk.len() > cap {
            return Err(CentralError::Protocol(format!(
                "answer larger than {cap} bytes: not read"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A short excerpt of a body for a reason shown to site IT: printable ASCII only, 120 chars.
fn excerpt(body: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(body)
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                ' '
            }
        })
        .collect();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return "empty body".to_owned();
    }
    let cut: String = text.chars().take(120).collect();
    format!("body: {cut}")
}

/// Passes a success through; classifies a failure, keeping the service's `error` text.
async fn check(response: reqwest::Response) -> Result<reqwest::Response, CentralError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let code = status.as_u16();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(|l| {
            l.chars()
                .filter(char::is_ascii_graphic)
                .take(200)
                .collect::<String>()
        });
    // The error body is the service's own words about the request, not patient data; keep a
    // bounded amount of it.
    let body = read_capped(response, MAX_EVENT_BODY)
        .await
        .unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    let message: String = message
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    if status.is_server_error() || code == 408 || code == 429 {
        return Err(CentralError::Unavailable(format!("{code} {message}")));
    }
    // A redirect is never followed: the configured URL is wrong (or something stands in the
    // way). Retried until someone fixes it, never taken as an answer.
    if status.is_redirection() {
        return Err(CentralError::Unavailable(format!(
            "{code} redirected{} — not followed: check [central] url",
            location.map(|l| format!(" to {l}")).unwrap_or_default()
        )));
    }
    // The address or the request's shape is wrong for this service: configuration, not the
    // event; retried (and shown) until fixed, never parked.
    if matches!(code, 404 | 405 | 431) {
        return Err(CentralError::Unavailable(format!(
            "{code} {message} (check [central] url and token)"
        )));
    }
    // A wrong or expired token is the workstation's configuration, not the event's fault:
    // retried until someone fixes it, never parked.
    if code == 401 || code == 403 {
        return Err(CentralError::Unavailable(format!(
            "{code} not authorized (check the central service token): {message}"
        )));
    }
    Err(CentralError::Rejected {
        status: code,
        message,
    })
}

/// Percent-encodes a path segment (site ids and COI identifiers are plain, but a site's
/// configuration is input).
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode("site-lab-1"), "site-lab-1");
        assert_eq!(encode("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn only_http_urls() {
        assert!(matches!(
            CentralClient::new("ftp://x", String::new(), DEFAULT_TIMEOUT),
            Err(CentralError::BadUrl(_))
        ));
        assert!(matches!(
            CentralClient::new("not a url", String::new(), DEFAULT_TIMEOUT),
            Err(CentralError::BadUrl(_))
        ));
        assert!(CentralClient::new("http://127.0.0.1:9", String::new(), DEFAULT_TIMEOUT).is_ok());
    }

    #[test]
    fn only_unavailability_is_retried() {
        assert!(CentralError::Unavailable("x".into()).is_retryable());
        assert!(
            !CentralError::Rejected {
                status: 422,
                message: "x".into()
            }
            .is_retryable()
        );
        assert!(!CentralError::Protocol("x".into()).is_retryable());
    }
}

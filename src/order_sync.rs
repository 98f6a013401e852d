//! Where a workstation's orders come from: a JSON file (the embedded default) or the central
//! service (only orders changed since the last sync). Fetching is the async, network part;
//! checking each record is pure ([`check`]); storing the checked orders and where to resume is
//! the journal's, in one transaction. The agent composes the three (`agent::sync_orders`), so
//! no journal borrow is held while the network answers.

use std::path::PathBuf;

use crate::central::{CentralClient, CentralError};
use crate::orders::record::{self, Order};

/// The key in the journal's sync state that says where order sync resumes.
pub const RESUME_KEY: &str = "orders.as_of";

/// How a file source's resume point (its content digest) begins.
const FILE_DIGEST: &str = "sha256:";

/// A configured order source, ready to fetch.
#[derive(Debug, Clone)]
pub enum OrderSource {
    /// `{"orders": [...]}`, read whole each time it changed, at most `max_bytes` of it.
    File { path: PathBuf, max_bytes: u64 },
    /// The site's orders from the central service.
    Central {
        client: CentralClient,
        site_id: String,
    },
}

/// Orders as a source delivers them: raw records, and where to resume.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    pub records: Vec<serde_json::Value>,
    /// Pass as `since` next time: the central service's `as_of`, or the file's content digest.
    pub as_of: Option<String>,
    /// Every order the source serves for this site, not only the changed ones.
    pub complete: bool,
}

/// Fetched orders after their checks: the valid ones with their records as received, and each
/// refused one (field named, no values).
#[derive(Debug, Clone, Default)]
pub struct CheckedOrders {
    pub orders: Vec<(Order, serde_json::Value)>,
    pub refused: Vec<String>,
    /// Refused records that name a COI identifier, with the reason: the cached order of that
    /// COI is held (it allows nothing) until a valid version arrives.
    pub held: Vec<(String, String)>,
    pub as_of: Option<String>,
    /// The answer holds every order the source serves for this site (a file; central asked
    /// without `updated_since`): cached orders it does not name are no longer this site's.
    pub complete: bool,
    /// One order asked for by itself (before a label): it says nothing of the others, so the
    /// cache's sync time stays as it was.
    pub one_order: bool,
}

/// Why a source could not deliver orders.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    File(String),
    #[error(transparent)]
    Central(#[from] CentralError),
}

/// What a sync did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct SyncReport {
    /// The source, e.g. `file /etc/coi-agent/orders.json`.
    pub source: String,
    pub stored: usize,
    /// Each refused order, field named, no values.
    pub refused: Vec<String>,
}

impl OrderSource {
    /// For messages and the audit trail, e.g. `file /etc/coi-agent/orders.json`.
    pub fn describe(&self) -> String {
        match self {
            OrderSource::File { path, .. } => format!("file {}", path.display()),
            OrderSource::Central { site_id, .. } => format!("central service for {site_id}"),
        }
    }

    /// Orders changed since `since` (all when `None`).
    ///
    /// # Errors
    /// The file cannot be read or is not an order list; the central service is unavailable
    /// (after three attempts) or refused.
    pub async fn fetch(&self, since: Option<&str>) -> Result<Fetched, SourceError> {
        match self {
            OrderSource::File { path, max_bytes } => {
                let (path, max_bytes) = (path.clone(), *max_bytes);
                let since = since.map(str::to_owned);
                // A large file is read and parsed off the async workers.
                tokio::task::spawn_blocking(move || read_file(&path, max_bytes, since.as_deref()))
                    .await
                    .map_err(|e| SourceError::File(format!("order file reader: {e}")))?
            }
            OrderSource::Central { client, site_id } => {
                // A file's digest (the source was a file before) is no time to resume from.
                let since = since.filter(|s| !s.starts_with(FILE_DIGEST));
                fetch_central(client, site_id, since).await
            }
        }
    }
}

/// The file's orders, unless its content is the one synced last (`since` is the SHA-256 of
/// the content then): an unchanged file delivers nothing, so a daemon refreshing every minute
/// neither rewrites nor reloads ten thousand orders.
fn read_file(
    path: &std::path::Path,
    max_bytes: u64,
    since: Option<&str>,
) -> Result<Fetched, SourceError> {
    use sha2::Digest as _;
    let shown = path.display();
    let read_err = |e: std::io::Error| SourceError::File(format!("read {shown}: {e}"));
    // The digest is taken streaming: an unchanged file (every refresh but the rare one) costs
    // no allocation of its size, so an idle daemon's memory stays flat.
    let digest_of = |bytes: &mut dyn std::io::Read| -> Result<String, std::io::Error> {
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = bytes.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect())
    };
    let mut file = std::fs::File::open(path).map_err(read_err)?;
    let version = format!("{FILE_DIGEST}{}", digest_of(&mut file).map_err(read_err)?);
    if since == Some(version.as_str()) {
        return Ok(Fetched {
            records: Vec::new(),
            as_of: Some(version),
            complete: false,
        });
    }
    // Read at most one byte past the limit: a file that grew past it is refused, not held.
    let mut text = String::new();
    let file = std::fs::File::open(path).map_err(read_err)?;
    std::io::Read::read_to_string(&mut std::io::Read::take(file, max_bytes + 1), &mut text)
        .map_err(read_err)?;
    if text.len() as u64 > max_bytes {
        return Err(SourceError::File(format!(
            "{shown}: larger than {} MiB ([orders] max_mib): not read",
            max_bytes / (1024 * 1024)
        )));
    }
    // The file may have changed between the two reads: the digest is of what is parsed.
    let version = format!(
        "{FILE_DIGEST}{}",
        digest_of(&mut text.as_bytes()).map_err(read_err)?
    );
    let mut value = crate::orders::json::parse_strict(text.as_bytes())
        .map_err(|e| SourceError::File(format!("{shown}: not JSON: {e}")))?;
    // The text is not needed once parsed: not held beside the parsed orders.
    drop(text);
    let records = match value.get_mut("orders").map(serde_json::Value::take) {
        Some(serde_json::Value::Array(records)) => records,
        _ => {
            return Err(SourceError::File(format!(
                "{shown}: expected an object with an \"orders\" array"
            )));
        }
    };
    Ok(Fetched {
        records,
        as_of: Some(version),
        complete: true,
    })
}

/// Retried with jittered backoff when the service is unavailable (3 attempts, 1 s then 2 s
/// apart): the daemon syncs again on its schedule.
async fn fetch_central(
    client: &CentralClient,
    site_id: &str,
    since: Option<&str>,
) -> Result<Fetched, SourceError> {
    const ATTEMPTS: u32 = 3;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match client.orders_since(site_id, since).await {
            Ok(page) => {
                return Ok(Fetched {
                    records: page.orders,
                    as_of: Some(page.as_of),
                    complete: since.is_none(),
                });
            }
            Err(err) if err.is_retryable() && attempt < ATTEMPTS => {
                let jitter = std::time::Duration::from_millis(u64::from(std::process::id() % 250));
                tokio::time::sleep(std::time::Duration::from_secs(1 << (attempt - 1)) + jitter)
                    .await;
            }
            Err(err) => return Err(err.into()),
        }
    }
}

/// Checks each fetched record; the valid ones keep their record as received. Two records of
/// one answer with the same COI identifier or DIN are both refused (and the COI held): which
/// of them is the order cannot be known, and the journal must not keep one silently.
pub fn check(fetched: Fetched) -> CheckedOrders {
    use std::collections::HashMap;
    let mut checked = CheckedOrders {
        orders: Vec::with_capacity(fetched.records.len()),
        refused: Vec::new(),
        held: Vec::new(),
        as_of: fetched.as_of,
        complete: fetched.complete,
        one_order: false,
    };
    let mut parsed = Vec::with_capacity(fetched.records.len());
    for (position, value) in fetched.records.into_iter().enumerate() {
        match record::parse_order(&value, position) {
            Ok(order) => parsed.push((order, value)),
            Err(problem) => {
                // An update that cannot be read must not leave the older version in use: a
                // cancellation or a move to another site may be what was refused.
                let coi = value
                    .get("coi")
                    .and_then(serde_json::Value::as_str)
                    .and_then(|coi| crate::isbt128::coi::CoiId::parse(coi).ok());
                if let Some(coi) = coi {
                    checked
                        .held
                        .push((coi.as_str().to_owned(), problem.to_string()));
                }
                checked.refused.push(problem.to_string());
            }
        }
    }
    let mut cois: HashMap<String, usize> = HashMap::new();
    let mut dins: HashMap<String, usize> = HashMap::new();
    for (order, _) in &parsed {
        *cois.entry(order.coi.as_str().to_owned()).or_default() += 1;
        *dins
            .entry(order.collection.din.as_str().to_owned())
            .or_default() += 1;
    }
    for (order, value) in parsed {
        let coi = order.coi.as_str().to_owned();
        let twice = if cois[&coi] > 1 {
            Some("coi")
        } else if dins[order.collection.din.as_str()] > 1 {
            Some("collection.din")
        } else {
            None
        };
        match twice {
            None => checked.orders.push((order, value)),
            Some(field) => {
                let problem = format!(
                    "order {}: {field}: more than one order in this answer has it; both refused",
                    order.order_id
                );
                checked.held.push((coi, problem.clone()));
                checked.refused.push(problem);
            }
        }
    }
    checked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(coi: &str, din: &str) -> serde_json::Value {
        let demo: serde_json::Value =
            serde_json::from_str(crate::config::DEMO_ORDERS).unwrap_or_default();
        let mut order = demo["orders"][1].clone();
        order["coi"] = serde_json::json!(coi);
        order["collection"]["din"] = serde_json::json!(din);
        order
    }

    /// Issue #13: two records of one answer with the same COI (or DIN) are both refused and
    /// the COI held; the journal never keeps one of them silently.
    #[test]
    fn r13_duplicates_in_one_answer_refuse_both() {
        let checked = check(Fetched {
            records: vec![
                example("CHA999925000043", "A999925123457"),
                example("CHA999925000043", "A999925123458"),
                example("CHA999925000044", "A999925123459"),
                example("CHA999925000045", "A999925123459"),
                example("CHA999925000046", "A999925123460"),
            ],
            as_of: None,
            complete: true,
        });
        let kept: Vec<&str> = checked.orders.iter().map(|(o, _)| o.coi.as_str()).collect();
        assert_eq!(kept, vec!["CHA999925000046"]);
        assert_eq!(checked.refused.len(), 4, "{:?}", checked.refused);
        assert!(checked.refused[0].contains("coi: more than one order"));
        assert!(checked.refused[2].contains("collection.din: more than one order"));
        let held: Vec<&str> = checked.held.iter().map(|(coi, _)| coi.as_str()).collect();
        assert_eq!(
            held,
            vec![
                "CHA999925000043",
                "CHA999925000043",
                "CHA999925000044",
                "CHA999925000045"
            ]
        );
    }
}

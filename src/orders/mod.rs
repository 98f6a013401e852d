//! Orders: the central service's order record, checked ([`record`]), and the cache of a
//! site's orders indexed by COI identifier and DIN ([`OrderBook`]) that reconciliation reads.
//! Sources: the file source (`{"orders": [...]}`, the embedded default); the central
//! service's HTTP client comes with the journal's order sync.

pub mod central;
pub mod record;

use std::collections::HashMap;

use crate::isbt128::coi::CoiId;
use crate::isbt128::din::Din;
use record::{Order, OrderError, parse_order};

/// The orders a workstation knows, indexed for lookups by COI identifier and by DIN.
#[derive(Debug, Clone, Default)]
pub struct OrderBook {
    orders: Vec<Order>,
    by_coi: HashMap<CoiId, usize>,
    by_din: HashMap<Din, usize>,
}

/// A file or response that is not `{"orders": [...]}` at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("order list: {0}")]
pub struct OrderListError(String);

impl OrderBook {
    /// Builds a book; an order whose COI identifier or DIN is already taken is refused, since
    /// two orders sharing an identifier would make every scan of it ambiguous.
    pub fn new(orders: impl IntoIterator<Item = Order>) -> (OrderBook, Vec<OrderError>) {
        let mut book = OrderBook::default();
        let mut refused = Vec::new();
        for (position, order) in orders.into_iter().enumerate() {
            if let Err(problem) = book.insert(order.clone()) {
                refused.push(OrderError {
                    position,
                    order_id: Some(order.order_id),
                    problem,
                });
            }
        }
        (book, refused)
    }

    /// Parses `{"orders": [...]}`: every valid order goes in, every invalid one is refused
    /// with its position and the field at fault.
    ///
    /// # Errors
    /// Text that is not a JSON object with an `orders` array.
    pub fn from_json(text: &str) -> Result<(OrderBook, Vec<OrderError>), OrderListError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| OrderListError(format!("not JSON: {e}")))?;
        let Some(list) = value.get("orders").and_then(|o| o.as_array()) else {
            return Err(OrderListError(
                "expected an object with an \"orders\" array".to_owned(),
            ));
        };
        let mut refused = Vec::new();
        let mut orders = Vec::with_capacity(list.len());
        for (position, item) in list.iter().enumerate() {
            match parse_order(item, position) {
                Ok(order) => orders.push((position, order)),
                Err(err) => refused.push(err),
            }
        }
        let mut book = OrderBook::default();
        for (position, order) in orders {
            let order_id = order.order_id.clone();
            if let Err(problem) = book.insert(order) {
                refused.push(OrderError {
                    position,
                    order_id: Some(order_id),
                    problem,
                });
            }
        }
        Ok((book, refused))
    }

    fn insert(&mut self, order: Order) -> Result<(), String> {
        if self.by_coi.contains_key(&order.coi) {
            return Err("coi: already used by another order".to_owned());
        }
        if self.by_din.contains_key(&order.collection.din) {
            return Err("collection.din: already used by another order".to_owned());
        }
        let index = self.orders.len();
        self.by_coi.insert(order.coi, index);
        self.by_din.insert(order.collection.din, index);
        self.orders.push(order);
        Ok(())
    }

    pub fn by_coi(&self, coi: &CoiId) -> Option<&Order> {
        self.by_coi.get(coi).map(|&i| &self.orders[i])
    }

    pub fn by_din(&self, din: &Din) -> Option<&Order> {
        self.by_din.get(din).map(|&i| &self.orders[i])
    }

    pub fn orders(&self) -> &[Order] {
        &self.orders
    }

    pub fn len(&self) -> usize {
        self.orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }
}

/// Orders as a source delivers them: raw records, checked by [`sync`], and where to resume.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    pub records: Vec<serde_json::Value>,
    /// Pass as `since` next time; `None` for sources that always deliver everything.
    pub as_of: Option<String>,
}

/// Why a source could not deliver orders.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    File(String),
    #[error(transparent)]
    Central(#[from] central::CentralError),
}

/// Where a workstation's orders come from: a file (the embedded default) or the central
/// service.
pub trait OrderSource {
    /// For messages and the audit trail, e.g. `file /etc/coi-agent/orders.json`.
    fn describe(&self) -> String;

    /// Orders changed since `since` (all when `None`).
    fn fetch(
        &self,
        since: Option<&str>,
    ) -> impl std::future::Future<Output = Result<Fetched, SourceError>> + Send;
}

/// Orders from a JSON file `{"orders": [...]}`, read whole each time.
#[derive(Debug, Clone)]
pub struct FileSource {
    pub path: std::path::PathBuf,
}

impl OrderSource for FileSource {
    fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }

    async fn fetch(&self, _since: Option<&str>) -> Result<Fetched, SourceError> {
        let shown = self.path.display();
        let text = std::fs::read_to_string(&self.path)
            .map_err(|e| SourceError::File(format!("read {shown}: {e}")))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| SourceError::File(format!("{shown}: not JSON: {e}")))?;
        let records = value
            .get("orders")
            .and_then(|o| o.as_array())
            .cloned()
            .ok_or_else(|| {
                SourceError::File(format!(
                    "{shown}: expected an object with an \"orders\" array"
                ))
            })?;
        Ok(Fetched {
            records,
            as_of: None,
        })
    }
}

/// A site's orders from the central service, retried with jittered backoff when it is
/// unavailable (3 attempts, 1 s then 2 s apart: the daemon syncs again on its schedule).
#[derive(Debug, Clone)]
pub struct CentralSource {
    pub client: central::CentralClient,
    pub site_id: String,
}

impl OrderSource for CentralSource {
    fn describe(&self) -> String {
        format!("central service for {}", self.site_id)
    }

    async fn fetch(&self, since: Option<&str>) -> Result<Fetched, SourceError> {
        const ATTEMPTS: u32 = 3;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.client.orders_since(&self.site_id, since).await {
                Ok(page) => {
                    return Ok(Fetched {
                        records: page.orders,
                        as_of: Some(page.as_of),
                    });
                }
                Err(err) if err.is_retryable() && attempt < ATTEMPTS => {
                    let jitter =
                        std::time::Duration::from_millis(u64::from(std::process::id() % 250));
                    tokio::time::sleep(std::time::Duration::from_secs(1 << (attempt - 1)) + jitter)
                        .await;
                }
                Err(err) => return Err(err.into()),
            }
        }
    }
}

/// What a sync did.
#[derive(Debug, Default)]
pub struct SyncReport {
    pub stored: usize,
    /// Each refused order, field named, no values.
    pub refused: Vec<String>,
}

/// Why a sync failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
}

/// Fetches orders changed since the last sync, checks each, caches the valid ones in the
/// journal and remembers where to resume.
///
/// # Errors
/// The source could not deliver, or the journal could not store; nothing changed then.
pub async fn sync(
    source: &impl OrderSource,
    journal: &mut crate::journal::Journal,
) -> Result<SyncReport, SyncError> {
    const RESUME: &str = "orders.as_of";
    let since = journal.sync_state(RESUME)?;
    let fetched = source.fetch(since.as_deref()).await?;
    let mut report = SyncReport::default();
    let mut checked = Vec::with_capacity(fetched.records.len());
    for (position, record) in fetched.records.iter().enumerate() {
        match record::parse_order(record, position) {
            Ok(order) => checked.push((order, record.clone())),
            Err(problem) => report.refused.push(problem.to_string()),
        }
    }
    let not_stored = journal.store_orders(&checked, &source.describe())?;
    report.stored = checked.len() - not_stored.len();
    report.refused.extend(not_stored);
    if let Some(as_of) = fetched.as_of {
        journal.set_sync_state(RESUME, &as_of)?;
    }
    Ok(report)
}

//! Orders: the central service's order record, checked ([`record`]), and the cache of a
//! site's orders indexed by COI identifier and DIN ([`OrderBook`]) that reconciliation reads.
//! Pure: no I/O. Where orders come from (a file, the central service) is
//! `order_sync`'s business (an adapter; this module never imports it).

pub mod json;
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
    /// Orders whose latest update from the source was refused by its checks, with the reason:
    /// the cached version may be stale (cancelled since, moved), so it allows nothing.
    held: HashMap<CoiId, String>,
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
        let value = json::parse_strict(text.as_bytes())
            .map_err(|e| OrderListError(format!("not JSON: {e}")))?;
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

    /// Holds the order with `coi`: its latest update was refused (`reason`, field named).
    pub fn hold(&mut self, coi: CoiId, reason: String) {
        self.held.insert(coi, reason);
    }

    /// Why the order with `coi` is held, if it is.
    pub fn held(&self, coi: &CoiId) -> Option<&str> {
        self.held.get(coi).map(String::as_str)
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

//! Label previews rendered lately, kept briefly: a print station asks for every bag's preview
//! again whenever one bag's state changes, and rendering (with its decode proof) is the
//! costliest thing a screen asks for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The most previews kept (a few orders' bags).
const MAX_PREVIEWS: usize = 32;

/// (COI, bag, dpi, order book identity): the order book is replaced on every change, so a
/// changed order never meets an old picture.
pub type PreviewKey = (String, u8, u32, usize);

/// A rendered PNG and when it was made.
type Rendered = (Instant, Arc<[u8]>);

#[derive(Debug, Default)]
pub struct Previews {
    entries: Mutex<HashMap<PreviewKey, Rendered>>,
}

impl Previews {
    /// The preview for `key` if rendered within `ttl`.
    pub fn get(&self, key: &PreviewKey, ttl: Duration) -> Option<Arc<[u8]>> {
        let entries = super::lock(&self.entries);
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < ttl)
            .map(|(_, png)| png.clone())
    }

    pub fn put(&self, key: PreviewKey, png: Arc<[u8]>) {
        let mut entries = super::lock(&self.entries);
        if entries.len() >= MAX_PREVIEWS
            && let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(key, _)| key.clone())
        {
            entries.remove(&oldest);
        }
        entries.insert(key, (Instant::now(), png));
    }
}

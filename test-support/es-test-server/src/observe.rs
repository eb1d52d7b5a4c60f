//! What tests can observe: the requests seen and bulk counters.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Headers of interest: content-type, content-encoding, accept,
    /// user-agent, x-opaque-id, and the authorization scheme (never the secret).
    pub headers: BTreeMap<String, String>,
    /// Bytes on the wire (compressed size for gzip bodies).
    pub body_bytes: u64,
    /// Bytes after decompression.
    pub decoded_bytes: u64,
    pub gzip: bool,
    /// Status answered (0 when the connection was dropped).
    pub status: u16,
    /// `node.name` of the node that received it.
    pub node: String,
}

/// Counters over all bulk requests.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct BulkStats {
    pub bulk_requests: u64,
    pub items: u64,
    /// Item count per answered status (201, 409, 429, ...).
    pub items_by_status: BTreeMap<u16, u64>,
    pub created: u64,
    pub conflicts: u64,
    pub failure_store_used: u64,
    pub rejected_requests: u64,
}

/// The observation log.
#[derive(Debug, Default)]
pub struct Observer {
    requests: Mutex<VecDeque<RequestRecord>>,
    max: usize,
    stats: Mutex<BulkStats>,
    pub(crate) dropped_connections: AtomicU64,
}

impl Observer {
    pub fn new(max: usize) -> Self {
        Observer {
            max,
            ..Observer::default()
        }
    }

    pub fn record(&self, r: RequestRecord) {
        let mut q = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= self.max.max(1) {
            q.pop_front();
        }
        q.push_back(r);
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    pub fn stats(&self) -> BulkStats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn update_stats(&self, f: impl FnOnce(&mut BulkStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|p| p.into_inner()));
    }

    pub fn dropped_connections(&self) -> u64 {
        self.dropped_connections.load(Ordering::Relaxed)
    }

    pub fn reset(&self) {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        *self.stats.lock().unwrap_or_else(|p| p.into_inner()) = BulkStats::default();
        self.dropped_connections.store(0, Ordering::Relaxed);
    }
}

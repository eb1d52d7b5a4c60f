//! One index (plain, a data stream's backing index, or a failure-store index)
//! and its documents.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::mapping::Mappings;

/// A stored document.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDoc {
    pub id: String,
    pub source: Arc<Value>,
    pub version: u64,
    pub seq_no: u64,
    /// Fields dropped by `ignore_malformed`.
    pub ignored: Vec<String>,
}

/// An index with its documents in insertion order.
#[derive(Debug, Clone)]
pub struct Index {
    pub name: String,
    pub uuid: String,
    pub created_millis: i64,
    /// Flattened settings (`index.lifecycle.name`, ...).
    pub settings: Map<String, Value>,
    pub mappings: Mappings,
    /// The data stream this index backs, if any.
    pub data_stream: Option<String>,
    /// True for `.fs-*` failure-store indices.
    pub failure_index: bool,
    docs: Vec<Option<StoredDoc>>,
    by_id: HashMap<String, usize>,
    next_seq_no: u64,
}

impl Index {
    pub fn new(
        name: &str,
        settings: Map<String, Value>,
        mut mappings: Mappings,
        now_millis: i64,
    ) -> Self {
        mappings.ignore_malformed = settings
            .get("index.mapping.ignore_malformed")
            .and_then(|v| v.as_str().map(|s| s == "true").or(v.as_bool()))
            .unwrap_or(false);
        Index {
            name: name.to_string(),
            uuid: random_id(22),
            created_millis: now_millis,
            settings,
            mappings,
            data_stream: None,
            failure_index: false,
            docs: Vec::new(),
            by_id: HashMap::new(),
            next_seq_no: 0,
        }
    }

    pub fn get(&self, id: &str) -> Option<&StoredDoc> {
        self.by_id.get(id).and_then(|&i| self.docs[i].as_ref())
    }

    pub fn take_seq_no(&mut self) -> u64 {
        let s = self.next_seq_no;
        self.next_seq_no += 1;
        s
    }

    /// Inserts or replaces a document.
    pub fn put(&mut self, doc: StoredDoc) {
        if let Some(&i) = self.by_id.get(&doc.id) {
            self.docs[i] = Some(doc);
        } else {
            self.by_id.insert(doc.id.clone(), self.docs.len());
            self.docs.push(Some(doc));
        }
    }

    pub fn remove(&mut self, id: &str) -> Option<StoredDoc> {
        let i = self.by_id.remove(id)?;
        self.docs[i].take()
    }

    pub fn docs(&self) -> impl Iterator<Item = &StoredDoc> {
        self.docs.iter().flatten()
    }

    pub fn doc_count(&self) -> usize {
        self.by_id.len()
    }

    /// Shard copies reported in `_shards.total`: one primary plus the replicas
    /// (`index.number_of_replicas`, default 1 as in Elasticsearch).
    pub fn shard_copies(&self) -> u64 {
        1 + self
            .settings
            .get("index.number_of_replicas")
            .and_then(|v| v.as_str().and_then(|s| s.parse().ok()).or(v.as_u64()))
            .unwrap_or(1)
    }
}

/// A URL-safe random identifier like Elasticsearch's auto-generated `_id`s
/// (20 characters of base64url).
pub fn random_id(len: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

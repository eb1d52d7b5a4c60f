//! The in-memory cluster state and every operation on it, one concern a file:
//!
//! - `index_name`: index and data stream name validation;
//! - `resolve`: expressions (names, wildcards, data streams, `::failures`)
//!   to concrete indices for reads, and to a target for writes;
//! - `write`: the bulk write path (`write::data_stream` for data streams and
//!   their `_id` checks, `write::failure_store`, `write::update`);
//! - `index`, `index_registry`: one index and its documents; creating and
//!   deleting plain indices;
//! - `data_stream`, `data_stream_registry`, `rollover`: a data stream's
//!   generations of backing and failure indices; creating and deleting data
//!   streams; rolling them over (`POST /<data-stream>/_rollover`);
//! - `templates`, `template_registry`: template parsing and composition;
//!   storing and removing templates;
//! - `ilm`, `ilm_registry`: lifecycle policies and their storage.

pub mod data_stream;
mod data_stream_registry;
pub mod ilm;
mod ilm_registry;
pub mod index;
mod index_name;
mod index_registry;
mod resolve;
mod rollover;
mod template_registry;
pub mod templates;
mod write;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use data_stream::DataStream;
use ilm::IlmPolicy;
use index::Index;
use templates::{ComponentTemplate, IndexTemplate};

pub use index_name::validate_index_name;
pub use write::{ItemOutcome, OpType, WriteFaults, WriteRequest, Written};

/// A document as tests observe it.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The concrete index (`.ds-...` for data streams).
    pub index: String,
    /// The data stream, if the index backs one.
    pub data_stream: Option<String>,
    pub id: String,
    pub version: u64,
    pub source: Arc<Value>,
}

/// The whole cluster state.
#[derive(Debug)]
pub struct Cluster {
    pub component_templates: BTreeMap<String, ComponentTemplate>,
    pub index_templates: BTreeMap<String, IndexTemplate>,
    pub ilm_policies: BTreeMap<String, IlmPolicy>,
    pub indices: BTreeMap<String, Index>,
    pub data_streams: BTreeMap<String, DataStream>,
    /// Cluster setting `data_streams.failure_store.enabled`.
    pub failure_store_patterns: Vec<String>,
}

fn now_millis(now: DateTime<Utc>) -> i64 {
    now.timestamp_millis()
}

impl Cluster {
    /// A fresh cluster with the built-in templates and policies of 9.2.
    pub fn new(failure_store_patterns: Vec<String>) -> Self {
        let mut c = Cluster {
            component_templates: BTreeMap::new(),
            index_templates: BTreeMap::new(),
            ilm_policies: BTreeMap::new(),
            indices: BTreeMap::new(),
            data_streams: BTreeMap::new(),
            failure_store_patterns,
        };
        for (name, body) in templates::builtin_component_templates() {
            c.component_templates.insert(
                name.to_string(),
                ComponentTemplate {
                    name: name.to_string(),
                    body,
                },
            );
        }
        if let Ok(t) = templates::parse_index_template("logs", &templates::builtin_logs_template())
        {
            c.index_templates.insert("logs".into(), t);
        }
        for (name, policy) in ilm::builtin_policies() {
            c.ilm_policies.insert(
                name.to_string(),
                IlmPolicy {
                    name: name.to_string(),
                    version: 1,
                    modified_millis: 0,
                    policy,
                },
            );
        }
        c
    }

    /// Documents in the indices an expression resolves to (missing names are skipped).
    pub fn documents(&self, expr: &str) -> Vec<Document> {
        let names = self.resolve_read(expr, true).unwrap_or_default();
        let mut out = Vec::new();
        for n in names {
            if let Some(i) = self.indices.get(&n) {
                for d in i.docs() {
                    out.push(Document {
                        index: n.clone(),
                        data_stream: i.data_stream.clone(),
                        id: d.id.clone(),
                        version: d.version,
                        source: d.source.clone(),
                    });
                }
            }
        }
        out
    }
}

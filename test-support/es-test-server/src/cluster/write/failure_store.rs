//! The failure store: documents a data stream could not map are kept, in a
//! `.fs-` index of their own, wrapped with the error. Each one gets a fresh
//! `_id`, so the same failing document sent twice is stored twice.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::{WriteRequest, Written};
use crate::cluster::data_stream::generation_index_name;
use crate::cluster::index::{random_id, Index, StoredDoc};
use crate::cluster::{now_millis, Cluster};
use crate::error::EsError;
use crate::mapping::{Dynamic, Field, Mappings};

/// The fixed mapping of every failure index (Elasticsearch's
/// `DataStreamFailureStoreDefinition`): `dynamic: false`, the original `_id`, index and
/// routing as `keyword`s under `document`, the error's fields; `document.source` is kept in
/// `_source` only. A failure document gets an `_id` of its own, so a search for a document
/// sent to the failure store matches `document.id`.
pub(crate) fn failure_store_mappings() -> Mappings {
    let mut m = Mappings {
        dynamic: Dynamic::False,
        ..Mappings::default()
    };
    for (path, ty) in [
        ("@timestamp", "date"),
        ("document", "object"),
        ("document.id", "keyword"),
        ("document.routing", "keyword"),
        ("document.index", "keyword"),
        ("error", "object"),
        ("error.message", "match_only_text"),
        ("error.stack_trace", "text"),
        ("error.type", "keyword"),
        ("error.pipeline", "keyword"),
        ("error.pipeline_trace", "keyword"),
        ("error.processor_tag", "keyword"),
        ("error.processor_type", "keyword"),
    ] {
        m.fields.insert(path.to_string(), Field::of_type(ty));
    }
    m
}

impl Cluster {
    /// Stores a failed document in the data stream's failure store, creating
    /// the failure index lazily (reference "Failure store": document shape
    /// `@timestamp`, `document.{id,index,routing,source}`, `error.{type,message,stack_trace}`).
    pub(super) fn store_failure(
        &mut self,
        ds_name: &str,
        id: &str,
        req: &WriteRequest<'_>,
        err: &EsError,
        now: DateTime<Utc>,
    ) -> (Written, String) {
        let fs_id = random_id(20);
        let fs_index = {
            let Some(ds) = self.data_streams.get_mut(ds_name) else {
                return (
                    Written {
                        version: 1,
                        result: "created",
                        seq_no: 0,
                        status: 201,
                        failure_store_used: true,
                        shards_total: 2,
                        shards_successful: 1,
                    },
                    fs_id,
                );
            };
            if ds.failure_indices.is_empty() {
                ds.generation += 1;
                let name = generation_index_name(".fs", ds_name, now, ds.generation);
                ds.failure_indices.push(name);
            }
            ds.failure_indices.last().cloned().unwrap_or_default()
        };
        let created = now_millis(now);
        let idx = self.indices.entry(fs_index.clone()).or_insert_with(|| {
            let mut i = Index::new(&fs_index, Map::new(), failure_store_mappings(), created);
            i.data_stream = Some(ds_name.to_string());
            i.failure_index = true;
            i
        });
        let original: Value = serde_json::from_slice(req.source)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(req.source).into_owned()));
        let fs_doc = json!({
            "@timestamp": crate::dates::format_millis(created),
            "document": {"id": id, "index": ds_name, "routing": null, "source": original},
            "error": {"type": err.kind, "message": err.reason, "stack_trace": format!("{}: {}", err.kind, err.reason)}
        });
        let seq_no = idx.take_seq_no();
        let shards = idx.shard_copies();
        idx.put(StoredDoc {
            id: fs_id.clone(),
            source: Arc::new(fs_doc),
            version: 1,
            seq_no,
            ignored: Vec::new(),
        });
        (
            Written {
                version: 1,
                result: "created",
                seq_no,
                status: 201,
                failure_store_used: true,
                shards_total: shards,
                shards_successful: 1,
            },
            fs_id,
        )
    }
}

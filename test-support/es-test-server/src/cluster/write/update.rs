//! Partial updates (`update` bulk items) of documents in plain indices.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{WriteFaults, Written};
use crate::cluster::index::{Index, StoredDoc};
use crate::error::EsError;

fn merge_doc(base: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        match (base.get_mut(k), v) {
            (Some(Value::Object(b)), Value::Object(p)) => merge_doc(b, p),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Partial update (`doc`, `upsert`, `doc_as_upsert`, `detect_noop`); scripts
/// are not supported.
pub(super) fn update_doc(
    idx: &mut Index,
    id: &str,
    existing: Option<StoredDoc>,
    body: &[u8],
    faults: &WriteFaults,
) -> Result<Written, EsError> {
    let body: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => m,
        _ => {
            return Err(EsError::parse(
                "[UpdateRequest] failed to parse update body",
            ))
        }
    };
    for k in body.keys() {
        if !matches!(
            k.as_str(),
            "doc"
                | "upsert"
                | "doc_as_upsert"
                | "detect_noop"
                | "_source"
                | "script"
                | "scripted_upsert"
        ) {
            return Err(EsError::parse(format!(
                "[UpdateRequest] unknown field [{k}]"
            )));
        }
    }
    if body.contains_key("script") {
        return Err(EsError::illegal_argument(
            "scripted updates are not supported by this test server",
        ));
    }
    let doc = body.get("doc").and_then(Value::as_object).cloned();
    let detect_noop = body
        .get("detect_noop")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let (new_source, version) = match existing {
        Some(d) => {
            let Some(patch) = doc else {
                return Err(EsError::validation(&["script or doc is missing"]));
            };
            let mut merged = d.source.as_object().cloned().unwrap_or_default();
            merge_doc(&mut merged, &patch);
            if detect_noop && Value::Object(merged.clone()) == *d.source {
                return Ok(Written {
                    version: d.version,
                    result: "noop",
                    seq_no: d.seq_no,
                    status: 200,
                    failure_store_used: false,
                    shards_total: 0,
                    shards_successful: 0,
                });
            }
            (merged, d.version + 1)
        }
        None => {
            let as_upsert = body
                .get("doc_as_upsert")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            match (body.get("upsert").and_then(Value::as_object), doc) {
                (Some(u), _) => (u.clone(), 1),
                (None, Some(d)) if as_upsert => (d, 1),
                _ => {
                    return Err(EsError::new(
                        404,
                        "document_missing_exception",
                        format!("[{id}]: document missing"),
                    )
                    .with("index_uuid", idx.uuid.clone())
                    .with("shard", "0")
                    .with("index", idx.name.clone()))
                }
            }
        }
    };
    let out = idx
        .mappings
        .check_document(&new_source, id, &faults.forced_types)?;
    idx.mappings.apply(&out);
    let seq_no = idx.take_seq_no();
    let shards = idx.shard_copies();
    let created = version == 1;
    idx.put(StoredDoc {
        id: id.to_string(),
        source: Arc::new(Value::Object(new_source)),
        version,
        seq_no,
        ignored: out.ignored,
    });
    Ok(Written {
        version,
        result: if created { "created" } else { "updated" },
        seq_no,
        status: if created { 201 } else { 200 },
        failure_store_used: false,
        shards_total: shards,
        shards_successful: 1,
    })
}

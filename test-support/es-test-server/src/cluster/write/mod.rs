//! The write path every bulk item goes through: the item types, the dispatch
//! to a data stream (`data_stream`) or a plain index (here), optimistic
//! concurrency and version checks, and partial updates (`update`).

mod data_stream;
pub(crate) mod failure_store;
mod update;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::index::{random_id, Index, StoredDoc};
use super::resolve::Target;
use super::Cluster;
use crate::error::EsError;
use update::update_doc;

/// Bulk operation types (reference "Bulk API": index, create, update, delete).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpType {
    Index,
    Create,
    Update,
    Delete,
}

impl OpType {
    pub fn as_str(self) -> &'static str {
        match self {
            OpType::Index => "index",
            OpType::Create => "create",
            OpType::Update => "update",
            OpType::Delete => "delete",
        }
    }
}

/// One write, as the bulk parser hands it over.
#[derive(Debug, Clone)]
pub struct WriteRequest<'a> {
    pub op: OpType,
    pub index: &'a str,
    pub id: Option<&'a str>,
    pub source: &'a [u8],
    pub require_alias: bool,
    pub require_data_stream: bool,
    pub pipeline: Option<&'a str>,
    pub if_seq_no: Option<u64>,
    pub if_primary_term: Option<u64>,
    pub version: Option<u64>,
    pub version_type_external: bool,
}

/// Fault-injection inputs the write path honours.
#[derive(Debug, Default, Clone)]
pub struct WriteFaults {
    pub forced_types: HashMap<String, String>,
    /// Treat this item as failing mapping (so it goes to the failure store
    /// when enabled, else answers 400).
    pub force_mapping_failure: bool,
}

/// A successful write.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub version: u64,
    pub result: &'static str,
    pub seq_no: u64,
    pub status: u16,
    pub failure_store_used: bool,
    pub shards_total: u64,
    pub shards_successful: u64,
}

/// The outcome of one bulk item.
#[derive(Debug, Clone)]
pub struct ItemOutcome {
    pub op: OpType,
    pub index: String,
    pub id: Option<String>,
    pub result: Result<Written, EsError>,
    /// A refused item that the failure store could have taken had the data stream enabled
    /// it: Elasticsearch then says `"failure_store": "not_enabled"` next to `status` and
    /// `error` (`BulkItemResponse.FailureStoreStatus.NOT_ENABLED`), not inside `error`.
    pub failure_store_not_enabled: bool,
}

impl Cluster {
    /// Applies one bulk item.
    pub fn write(
        &mut self,
        req: &WriteRequest<'_>,
        faults: &WriteFaults,
        now: DateTime<Utc>,
    ) -> ItemOutcome {
        let mut outcome = ItemOutcome {
            op: req.op,
            index: req.index.to_string(),
            id: req.id.map(String::from),
            result: Err(EsError::illegal_argument("unreachable")),
            failure_store_not_enabled: false,
        };
        if let Some(p) = req.pipeline {
            if p != "_none" && p != "logs@default-pipeline" {
                outcome.result = Err(EsError::illegal_argument(format!(
                    "pipeline with id [{p}] does not exist"
                )));
                return outcome;
            }
        }
        let target = match self.resolve_write(req, now) {
            Ok(t) => t,
            Err(e) => {
                outcome.result = Err(e);
                return outcome;
            }
        };
        match target {
            Target::DataStream(ds) => self.write_data_stream(req, &ds, faults, now, outcome),
            Target::Index(name) => {
                if req.op == OpType::Create {
                    if let Some(ds) = self.indices.get(&name).and_then(|i| i.data_stream.clone()) {
                        outcome.result = Err(EsError::illegal_argument(format!(
                            "index request with op_type=create targeting backing indices is disallowed, target corresponding data stream [{ds}] instead"
                        )));
                        return outcome;
                    }
                }
                self.write_index(req, &name, faults, now, outcome)
            }
        }
    }

    fn write_index(
        &mut self,
        req: &WriteRequest<'_>,
        name: &str,
        faults: &WriteFaults,
        _now: DateTime<Utc>,
        mut outcome: ItemOutcome,
    ) -> ItemOutcome {
        let Some(idx) = self.indices.get_mut(name) else {
            outcome.result = Err(EsError::index_not_found(name));
            return outcome;
        };
        outcome.index = name.to_string();
        let id = match (req.op, req.id) {
            (_, Some(id)) => id.to_string(),
            (OpType::Index | OpType::Create, None) => random_id(20),
            (_, None) => {
                outcome.result = Err(EsError::validation(&["id is missing"]));
                return outcome;
            }
        };
        outcome.id = Some(id.clone());
        let existing = idx.get(&id).cloned();
        // Optimistic concurrency (reference "Optimistic concurrency control").
        if let (Some(seq), Some(term)) = (req.if_seq_no, req.if_primary_term) {
            let ok = matches!(&existing, Some(d) if d.seq_no == seq && term == 1);
            if !ok {
                let current = match &existing {
                    Some(d) => format!(
                        "current document has seqNo [{}] and primary term [1]",
                        d.seq_no
                    ),
                    None => "but no document was found".to_string(),
                };
                outcome.result = Err(version_conflict(
                    &format!("[{id}]: version conflict, required seqNo [{seq}], primary term [{term}]. {current}"),
                    idx,
                ));
                return outcome;
            }
        }
        match req.op {
            OpType::Index | OpType::Create => {
                if req.op == OpType::Create {
                    if let Some(d) = &existing {
                        outcome.result = Err(version_conflict_exists(&id, d.version, idx));
                        return outcome;
                    }
                }
                let doc = match parse_source(req.source) {
                    Ok(d) => d,
                    Err(e) => {
                        outcome.result = Err(e);
                        return outcome;
                    }
                };
                let mut version = existing.as_ref().map(|d| d.version + 1).unwrap_or(1);
                if req.version_type_external {
                    let v = req.version.unwrap_or(0);
                    if let Some(d) = &existing {
                        if d.version >= v {
                            outcome.result = Err(version_conflict(
                                &format!("[{id}]: version conflict, current version [{}] is higher or equal to the one provided [{v}]", d.version),
                                idx,
                            ));
                            return outcome;
                        }
                    }
                    version = v;
                }
                if faults.force_mapping_failure {
                    outcome.result = Err(EsError::new(400, "document_parsing_exception", format!(
                        "failed to parse field [message] of type [long] in document with id '{id}'. Preview of field's value: 'injected'"
                    )));
                    return outcome;
                }
                let out = match idx.mappings.check_document(&doc, &id, &faults.forced_types) {
                    Ok(o) => o,
                    Err(e) => {
                        outcome.result = Err(e);
                        return outcome;
                    }
                };
                idx.mappings.apply(&out);
                let seq_no = idx.take_seq_no();
                let shards = idx.shard_copies();
                let created = existing.is_none();
                idx.put(StoredDoc {
                    id,
                    source: Arc::new(Value::Object(doc)),
                    version,
                    seq_no,
                    ignored: out.ignored,
                });
                outcome.result = Ok(Written {
                    version,
                    result: if created { "created" } else { "updated" },
                    seq_no,
                    status: if created { 201 } else { 200 },
                    failure_store_used: false,
                    shards_total: shards,
                    shards_successful: 1,
                });
            }
            OpType::Delete => {
                let seq_no = idx.take_seq_no();
                let shards = idx.shard_copies();
                let (result, status, version) = match idx.remove(&id) {
                    Some(d) => ("deleted", 200, d.version + 1),
                    None => ("not_found", 404, 1),
                };
                outcome.result = Ok(Written {
                    version,
                    result,
                    seq_no,
                    status,
                    failure_store_used: false,
                    shards_total: shards,
                    shards_successful: 1,
                });
            }
            OpType::Update => {
                outcome.result = update_doc(idx, &id, existing, req.source, faults);
            }
        }
        outcome
    }
}

fn version_conflict(reason: &str, idx: &Index) -> EsError {
    EsError::new(409, "version_conflict_engine_exception", reason)
        .with("index_uuid", idx.uuid.clone())
        .with("shard", "0")
        .with("index", idx.name.clone())
}

fn version_conflict_exists(id: &str, version: u64, idx: &Index) -> EsError {
    version_conflict(
        &format!("[{id}]: version conflict, document already exists (current version [{version}])"),
        idx,
    )
}

/// Parses a document source; malformed JSON is a per-item
/// `document_parsing_exception`, as Elasticsearch parses sources on the shard.
fn parse_source(source: &[u8]) -> Result<Map<String, Value>, EsError> {
    match serde_json::from_slice::<Value>(source) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(EsError::new(
            400,
            "document_parsing_exception",
            "failed to parse, document is empty or not an object",
        )),
        Err(e) => Err(EsError::new(
            400,
            "document_parsing_exception",
            format!("[{}:{}] failed to parse: {e}", e.line(), e.column()),
        )
        .caused_by(EsError::new(400, "json_parse_exception", e.to_string()))),
    }
}

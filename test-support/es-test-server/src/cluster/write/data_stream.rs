//! Writes into a data stream: create-only, `@timestamp` required, the
//! `_id` checked against the current write index only (an `_id` held by an
//! older backing index does not conflict, as in Elasticsearch, see
//! elastic/elasticsearch#44794), mapping failures redirected to the failure
//! store when it is enabled.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{
    parse_source, version_conflict_exists, ItemOutcome, OpType, WriteFaults, WriteRequest, Written,
};
use crate::cluster::index::{random_id, StoredDoc};
use crate::cluster::Cluster;
use crate::error::EsError;

impl Cluster {
    pub(super) fn write_data_stream(
        &mut self,
        req: &WriteRequest<'_>,
        ds_name: &str,
        faults: &WriteFaults,
        now: DateTime<Utc>,
        mut outcome: ItemOutcome,
    ) -> ItemOutcome {
        // Reference "Use a data stream": only create is allowed.
        if req.op != OpType::Create {
            outcome.result = Err(EsError::illegal_argument(
                "only write ops with an op_type of create are allowed in data streams",
            ));
            return outcome;
        }
        let Some(ds) = self.data_streams.get(ds_name) else {
            outcome.result = Err(EsError::index_not_found(ds_name));
            return outcome;
        };
        let fs_enabled = ds.failure_store_enabled;
        let Some(write_index) = ds.write_index().map(String::from) else {
            outcome.result = Err(EsError::index_not_found(ds_name));
            return outcome;
        };
        let id = req.id.map(String::from).unwrap_or_else(|| random_id(20));
        outcome.id = Some(id.clone());
        outcome.index = write_index.clone();

        let parsed = parse_source(req.source);
        let checked = parsed.and_then(|doc| {
            let ts = doc.get("@timestamp");
            match ts {
                None | Some(Value::Null) => {
                    return Err(EsError::new(400, "document_parsing_exception", "failed to parse: data stream timestamp field [@timestamp] is missing")
                        .caused_by(EsError::illegal_argument("data stream timestamp field [@timestamp] is missing")))
                }
                Some(Value::Array(a)) if a.len() > 1 => {
                    return Err(EsError::new(400, "document_parsing_exception", "failed to parse: data stream timestamp field [@timestamp] encountered multiple values")
                        .caused_by(EsError::illegal_argument("data stream timestamp field [@timestamp] encountered multiple values")))
                }
                _ => {}
            }
            if faults.force_mapping_failure {
                return Err(EsError::new(400, "document_parsing_exception", format!(
                    "failed to parse field [@timestamp] of type [date] in document with id '{id}'. Preview of field's value: 'injected'"
                )));
            }
            let idx = self.indices.get(&write_index).ok_or_else(|| EsError::index_not_found(&write_index))?;
            let out = idx.mappings.check_document(&doc, &id, &faults.forced_types)?;
            Ok((doc, out))
        });
        match checked {
            Ok((doc, mapping_out)) => {
                let Some(idx) = self.indices.get_mut(&write_index) else {
                    outcome.result = Err(EsError::index_not_found(&write_index));
                    return outcome;
                };
                if let Some(existing) = idx.get(&id) {
                    outcome.result = Err(version_conflict_exists(&id, existing.version, idx));
                    return outcome;
                }
                idx.mappings.apply(&mapping_out);
                let seq_no = idx.take_seq_no();
                let shards = idx.shard_copies();
                idx.put(StoredDoc {
                    id: id.clone(),
                    source: Arc::new(Value::Object(doc)),
                    version: 1,
                    seq_no,
                    ignored: mapping_out.ignored,
                });
                outcome.result = Ok(Written {
                    version: 1,
                    result: "created",
                    seq_no,
                    status: 201,
                    failure_store_used: false,
                    shards_total: shards,
                    shards_successful: 1,
                });
            }
            Err(err)
                if err.kind == "document_parsing_exception"
                    || err.kind == "strict_dynamic_mapping_exception" =>
            {
                if fs_enabled {
                    let (written, fs_id) = self.store_failure(ds_name, &id, req, &err, now);
                    // The item reports the failure document's own id (reference
                    // "Failure store", bulk example).
                    outcome.id = Some(fs_id);
                    outcome.result = Ok(written);
                    if let Some(ds) = self.data_streams.get(ds_name) {
                        outcome.index = ds.failure_indices.last().cloned().unwrap_or_default();
                    }
                } else {
                    outcome.result = Err(err);
                    outcome.failure_store_not_enabled = true;
                }
            }
            Err(err) => outcome.result = Err(err),
        }
        outcome
    }
}

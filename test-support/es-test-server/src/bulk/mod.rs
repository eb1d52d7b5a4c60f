//! `POST|PUT /_bulk` and `/<index>/_bulk`.

pub mod blackhole;
pub mod parse;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::body::{check_json_content_type, read_body};
use crate::cluster::{ItemOutcome, OpType, WriteFaults, WriteRequest};
use crate::error::{json_response, simple_error, EsError};
use crate::filter_path;
use crate::server::{RecordSlot, Shared};
use parse::{parse_bulk, BulkOp, BulkParams};

fn bool_param(q: &HashMap<String, String>, name: &str) -> Result<bool, EsError> {
    match q.get(name).map(String::as_str) {
        None => Ok(false),
        Some("") | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(EsError::illegal_argument(format!(
            "Failed to parse value [{other}] as only [true] or [false] are allowed."
        ))),
    }
}

/// Query parameters `_bulk` accepts (specification `_global/bulk/BulkRequest.ts`).
const BULK_PARAMS: &[&str] = &[
    "include_source_on_error",
    "list_executed_pipelines",
    "pipeline",
    "refresh",
    "routing",
    "_source",
    "_source_excludes",
    "_source_includes",
    "timeout",
    "wait_for_active_shards",
    "require_alias",
    "require_data_stream",
    "filter_path",
    "pretty",
    "human",
    "error_trace",
    "format",
];

pub async fn bulk_root(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Response {
    bulk(shared, None, q, req).await
}

pub async fn bulk_index(
    State(shared): State<Arc<Shared>>,
    Path(index): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Response {
    bulk(shared, Some(index), q, req).await
}

async fn bulk(
    shared: Arc<Shared>,
    index: Option<String>,
    q: HashMap<String, String>,
    req: Request,
) -> Response {
    let started = Instant::now();
    match bulk_inner(&shared, index, &q, req, started).await {
        Ok(resp) => resp,
        Err(BulkFailure::Es(e)) => {
            shared.observer.update_stats(|s| {
                s.bulk_requests += 1;
                s.rejected_requests += 1;
            });
            e.into_response()
        }
        Err(BulkFailure::Simple(status, msg)) => {
            shared.observer.update_stats(|s| {
                s.bulk_requests += 1;
                s.rejected_requests += 1;
            });
            simple_error(status, msg)
        }
    }
}

enum BulkFailure {
    Es(EsError),
    Simple(StatusCode, String),
}

impl From<EsError> for BulkFailure {
    fn from(e: EsError) -> Self {
        BulkFailure::Es(e)
    }
}

async fn bulk_inner(
    shared: &Arc<Shared>,
    index: Option<String>,
    q: &HashMap<String, String>,
    req: Request,
    started: Instant,
) -> Result<Response, BulkFailure> {
    for k in q.keys() {
        if !BULK_PARAMS.contains(&k.as_str()) {
            return Err(EsError::illegal_argument(format!(
                "request [/_bulk] contains unrecognized parameter: [{k}]"
            ))
            .into());
        }
    }
    if let Some(r) = q.get("refresh") {
        if !matches!(r.as_str(), "" | "true" | "false" | "wait_for") {
            return Err(
                EsError::illegal_argument(format!("Unknown value for refresh: [{r}].")).into(),
            );
        }
    }
    let (parts, body) = req.into_parts();
    if let Err(msg) = check_json_content_type(&parts.headers, true) {
        return Err(BulkFailure::Simple(StatusCode::NOT_ACCEPTABLE, msg));
    }
    let limit = shared.max_content_length();
    let decoded = read_body(&parts.headers, body, limit).await?;
    if let Some(slot) = parts.extensions.get::<RecordSlot>() {
        slot.set_body(decoded.wire_bytes, decoded.bytes.len() as u64, decoded.gzip);
    }
    if let Some(i) = &index {
        crate::cluster::validate_index_name(i).or_else(|e| {
            // Data stream names and existing indices only; wildcards are not writable.
            if i.contains('*') {
                Err(e)
            } else {
                Ok(())
            }
        })?;
    }
    let params = BulkParams {
        index,
        require_alias: bool_param(q, "require_alias")?,
        require_data_stream: bool_param(q, "require_data_stream")?,
        pipeline: q.get("pipeline").cloned(),
    };
    if let Some(bh) = &shared.blackhole {
        let filter = q.get("filter_path").map(String::as_str);
        let bytes = blackhole::handle(shared, bh, &decoded.bytes, &params, started, filter)?;
        return Ok(crate::error::bytes_response(StatusCode::OK, bytes));
    }
    let ops = parse_bulk(&decoded.bytes, &params)?;
    let outcomes = execute(shared, &ops);
    let mut errors = false;
    let mut items = Vec::with_capacity(outcomes.len());
    let mut stats_created = 0u64;
    let mut stats_conflicts = 0u64;
    let mut stats_fs = 0u64;
    let mut by_status: HashMap<u16, u64> = HashMap::new();
    for o in &outcomes {
        let (item, status, failed) = item_json(o);
        errors |= failed;
        *by_status.entry(status).or_default() += 1;
        match &o.result {
            Ok(w) if w.failure_store_used => stats_fs += 1,
            Ok(w) if w.result == "created" => stats_created += 1,
            Err(e) if e.status == 409 => stats_conflicts += 1,
            _ => {}
        }
        items.push(item);
    }
    shared.observer.update_stats(|s| {
        s.bulk_requests += 1;
        s.items += outcomes.len() as u64;
        s.created += stats_created;
        s.conflicts += stats_conflicts;
        s.failure_store_used += stats_fs;
        for (k, v) in by_status {
            *s.items_by_status.entry(k).or_default() += v;
        }
    });
    let body = json!({
        "errors": errors,
        "took": started.elapsed().as_millis() as u64,
        "items": items,
    });
    Ok(finish(q, body))
}

fn finish(q: &HashMap<String, String>, body: Value) -> Response {
    let body = match q.get("filter_path") {
        Some(f) => filter_path::apply(&body, f),
        None => body,
    };
    json_response(StatusCode::OK, &body)
}

/// The error an injected per-item fault answers with.
pub fn injected_item_error(status: u16, index: &str) -> EsError {
    match status {
        429 => EsError::new(
            429,
            "es_rejected_execution_exception",
            "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1, max_coordinating_and_primary_bytes=107374182]",
        ),
        503 => EsError::new(
            503,
            "unavailable_shards_exception",
            format!("[{index}][0] primary shard is not active Timeout: [1m], request: [BulkShardRequest [[{index}][0]] containing [1] requests]"),
        ),
        500 => EsError::new(500, "illegal_state_exception", "injected internal error"),
        s => EsError::new(s, "exception", format!("injected failure with status [{s}]")),
    }
}

fn execute(shared: &Shared, ops: &[BulkOp<'_>]) -> Vec<ItemOutcome> {
    let plan = shared.faults.item_plan(ops.len());
    let mut mapping_failures = plan.mapping_failures;
    let now = chrono::Utc::now();
    let mut out = Vec::with_capacity(ops.len());
    let mut cluster = shared.lock_cluster();
    for (i, op) in ops.iter().enumerate() {
        let index = op.index.clone().unwrap_or_default();
        if let Some(status) = plan.statuses.get(i).copied().flatten() {
            out.push(ItemOutcome {
                op: op.op,
                index: index.clone(),
                id: Some(
                    op.id
                        .clone()
                        .unwrap_or_else(|| crate::cluster::index::random_id(20)),
                ),
                result: Err(injected_item_error(status, &index)),
                failure_store_not_enabled: false,
            });
            continue;
        }
        let force_mapping_failure =
            mapping_failures > 0 && matches!(op.op, OpType::Create | OpType::Index);
        if force_mapping_failure {
            mapping_failures -= 1;
        }
        let faults = WriteFaults {
            forced_types: plan.forced.clone(),
            force_mapping_failure,
        };
        let req = WriteRequest {
            op: op.op,
            index: &index,
            id: op.id.as_deref(),
            source: op.source,
            require_alias: op.require_alias,
            require_data_stream: op.require_data_stream,
            pipeline: op.pipeline.as_deref(),
            if_seq_no: op.if_seq_no,
            if_primary_term: op.if_primary_term,
            version: op.version,
            version_type_external: op.version_type_external,
        };
        out.push(cluster.write(&req, &faults, now));
    }
    drop(cluster);
    shared.faults.return_mapping_failures(mapping_failures);
    out
}

/// Renders one item like Elasticsearch's BulkItemResponse; returns the JSON,
/// the status and whether it counts as a failure for `errors`.
pub fn item_json(o: &ItemOutcome) -> (Value, u16, bool) {
    let mut m = Map::new();
    m.insert("_index".into(), Value::String(o.index.clone()));
    m.insert(
        "_id".into(),
        o.id.clone().map(Value::String).unwrap_or(Value::Null),
    );
    let (status, failed) = match &o.result {
        Ok(w) => {
            m.insert("_version".into(), json!(w.version));
            m.insert("result".into(), json!(w.result));
            m.insert(
                "_shards".into(),
                json!({"total": w.shards_total, "successful": w.shards_successful, "failed": 0}),
            );
            m.insert("_seq_no".into(), json!(w.seq_no));
            m.insert("_primary_term".into(), json!(1));
            if w.failure_store_used {
                m.insert("failure_store".into(), json!("used"));
            }
            m.insert("status".into(), json!(w.status));
            (w.status, false)
        }
        Err(e) => {
            m.insert("status".into(), json!(e.status));
            m.insert("error".into(), e.to_object());
            if o.failure_store_not_enabled {
                m.insert("failure_store".into(), json!("not_enabled"));
            }
            (e.status, true)
        }
    };
    let mut wrapper = Map::new();
    wrapper.insert(o.op.as_str().into(), Value::Object(m));
    (Value::Object(wrapper), status, failed)
}

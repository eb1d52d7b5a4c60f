//! Blackhole mode for benchmarks: every `_bulk` is framed, its action lines
//! parsed and answered exactly like the normal path would for valid documents
//! (`create` into a data stream: 201 on its backing index), but sources are
//! neither parsed nor stored. Only counts, and optionally ids (so a replayed
//! `create` still answers 409), are kept. Per-item faults still apply.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::bulk::injected_item_error;
use crate::bulk::parse::{parse_bulk, BulkParams};
use crate::cluster::index::random_id;
use crate::cluster::{data_stream::generation_index_name, templates, validate_index_name, OpType};
use crate::error::EsError;
use crate::server::Shared;

/// Counters of a blackhole server.
#[derive(Debug, Default)]
pub struct Blackhole {
    pub keep_ids: bool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Documents accepted per target name (data stream or index).
    counts: HashMap<String, u64>,
    ids: HashMap<String, HashSet<String>>,
    /// Target name -> (concrete index, is a data stream).
    resolved: HashMap<String, (String, bool)>,
    seq_no: u64,
}

impl Blackhole {
    pub fn new(keep_ids: bool) -> Self {
        Blackhole {
            keep_ids,
            state: Mutex::default(),
        }
    }

    /// Accepted documents per target.
    pub fn counts(&self) -> HashMap<String, u64> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .counts
            .clone()
    }

    /// Distinct ids per target (empty unless `keep_ids`).
    pub fn distinct_ids(&self) -> HashMap<String, usize> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ids
            .iter()
            .map(|(k, v)| (k.clone(), v.len()))
            .collect()
    }
}

fn resolve(shared: &Shared, name: &str) -> Result<(String, bool), EsError> {
    validate_index_name(name)?;
    let cluster = shared.lock_cluster();
    if let Some(ds) = cluster.data_streams.get(name) {
        return Ok((ds.write_index().unwrap_or(name).to_string(), true));
    }
    let is_ds = templates::find_matching(cluster.index_templates.values(), name)
        .is_some_and(|t| t.data_stream.is_some());
    if is_ds {
        Ok((
            generation_index_name(".ds", name, chrono::Utc::now(), 1),
            true,
        ))
    } else {
        Ok((name.to_string(), false))
    }
}

/// Handles one bulk body; returns the serialised response (written directly,
/// without building a JSON tree, so the server keeps up with a shipper benchmark).
pub fn handle(
    shared: &Arc<Shared>,
    bh: &Blackhole,
    body: &[u8],
    params: &BulkParams,
    started: Instant,
    filter: Option<&str>,
) -> Result<Vec<u8>, EsError> {
    let ops = parse_bulk(body, params)?;
    let mut rendered: Vec<Rendered> = Vec::with_capacity(ops.len());
    let plan = shared.faults.item_plan(ops.len());
    let mut out: Vec<u8> = Vec::with_capacity(ops.len() * 200 + 64);
    let mut errors = false;
    let mut created = 0u64;
    let mut conflicts = 0u64;
    let mut by_status: HashMap<u16, u64> = HashMap::new();
    // Resolve targets outside the state lock (resolution takes the cluster lock).
    let mut targets: HashMap<&str, Result<(String, bool), EsError>> = HashMap::new();
    {
        let known: HashMap<String, (String, bool)> = bh
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .resolved
            .clone();
        for op in &ops {
            let name = op.index.as_deref().unwrap_or("");
            if !targets.contains_key(name) {
                let r = match known.get(name) {
                    Some(r) => Ok(r.clone()),
                    None => resolve(shared, name),
                };
                targets.insert(name, r);
            }
        }
    }
    let mut state = bh.state.lock().unwrap_or_else(|p| p.into_inner());
    for (name, r) in &targets {
        if let Ok(r) = r {
            state
                .resolved
                .entry((*name).to_string())
                .or_insert_with(|| r.clone());
        }
    }
    for (i, op) in ops.iter().enumerate() {
        let _ = i;
        let name = op.index.as_deref().unwrap_or("");
        let id = op.id.clone().unwrap_or_else(|| random_id(20));
        let opname = op.op.as_str();
        let result: Result<String, EsError> = match (
            plan.statuses.get(i).copied().flatten(),
            targets.get(name),
        ) {
            (Some(status), _) => Err(injected_item_error(status, name)),
            (None, Some(Err(e))) => Err(e.clone()),
            (None, None) => Err(EsError::index_not_found(name)),
            (None, Some(Ok((concrete, is_ds)))) => {
                if *is_ds && op.op != OpType::Create {
                    Err(EsError::illegal_argument(
                        "only write ops with an op_type of create are allowed in data streams",
                    ))
                } else if bh.keep_ids
                    && op.op == OpType::Create
                    && state.ids.get(name).is_some_and(|s| s.contains(&id))
                {
                    Err(EsError::new(
                        409,
                        "version_conflict_engine_exception",
                        format!("[{id}]: version conflict, document already exists (current version [1])"),
                    )
                    .with("index_uuid", "blackhole")
                    .with("shard", "0")
                    .with("index", concrete.clone()))
                } else {
                    Ok(concrete.clone())
                }
            }
        };
        let id_json = serde_json::to_string(&id).unwrap_or_else(|_| "null".into());
        match result {
            Ok(concrete) => {
                if bh.keep_ids {
                    state
                        .ids
                        .entry(name.to_string())
                        .or_default()
                        .insert(id.clone());
                }
                *state.counts.entry(name.to_string()).or_default() += 1;
                state.seq_no += 1;
                created += 1;
                *by_status.entry(201).or_default() += 1;
                let index_json = serde_json::to_string(&concrete).unwrap_or_else(|_| "null".into());
                let start = out.len();
                let _ = write!(out, "{{\"{opname}\":{{\"_index\":{index_json},\"_id\":");
                let id_start = out.len();
                out.extend_from_slice(id_json.as_bytes());
                let id_end = out.len();
                let _ = write!(
                    out,
                    ",\"_version\":1,\"result\":\"created\",\"_shards\":{{\"total\":2,\"successful\":1,\"failed\":0}},\"_seq_no\":{},\"_primary_term\":1,\"status\":201}}}}",
                    state.seq_no - 1
                );
                rendered.push(Rendered {
                    range: start..out.len(),
                    created_as: Some(opname),
                    id: id_start..id_end,
                });
            }
            Err(e) => {
                errors = true;
                if e.status == 409 {
                    conflicts += 1;
                }
                *by_status.entry(e.status).or_default() += 1;
                let index_json = serde_json::to_string(name).unwrap_or_else(|_| "null".into());
                let err_json =
                    serde_json::to_string(&e.to_object()).unwrap_or_else(|_| "{}".into());
                let start = out.len();
                let _ = write!(
                    out,
                    "{{\"{opname}\":{{\"_index\":{index_json},\"_id\":{id_json},\"status\":{},\"error\":{err_json}}}}}",
                    e.status
                );
                rendered.push(Rendered {
                    range: start..out.len(),
                    created_as: None,
                    id: 0..0,
                });
            }
        }
    }
    drop(state);
    let took = started.elapsed().as_millis();
    let filtered = filter.and_then(|spec| filtered_body(errors, took, &out, &rendered, spec));
    let body = match filtered {
        Some(body) => body,
        None => full_body(errors, took, &out, &rendered, filter),
    };
    shared.observer.update_stats(|s| {
        s.bulk_requests += 1;
        s.items += ops.len() as u64;
        s.created += created;
        s.conflicts += conflicts;
        for (k, v) in by_status {
            *s.items_by_status.entry(k).or_default() += v;
        }
    });
    Ok(body)
}

/// Where one item's JSON sits in the rendered items, and whether it is a plain success.
struct Rendered {
    range: std::ops::Range<usize>,
    /// `Some(op)` for a 201: its filtered form depends only on `op` and its `_id`.
    created_as: Option<&'static str>,
    /// Where the `_id`'s JSON string sits in the rendered items (for a 201).
    id: std::ops::Range<usize>,
}

/// The filtered form of every created item of one op: fixed, or fixed around its `_id`.
enum Template {
    Fixed(Option<Vec<u8>>),
    AroundId(Vec<u8>, Vec<u8>),
}

/// The whole response, unfiltered or filtered through a tree (the slow, general way).
fn full_body(
    errors: bool,
    took: u128,
    items: &[u8],
    rendered: &[Rendered],
    filter: Option<&str>,
) -> Vec<u8> {
    let mut body = Vec::with_capacity(items.len() + rendered.len() + 64);
    let _ = write!(body, "{{\"errors\":{errors},\"took\":{took},\"items\":[");
    for (i, r) in rendered.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&items[r.range.clone()]);
    }
    body.extend_from_slice(b"]}");
    match filter {
        None => body,
        Some(spec) => match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(v) => serde_json::to_vec(&crate::filter_path::apply(&v, spec)).unwrap_or(body),
            Err(_) => body,
        },
    }
}

/// `filter_path` applied without a tree per document. Every created item has the same
/// shape, so the filter is applied once to a sample; if what it keeps does not depend on
/// the item's values (index, id, sequence number), that result stands for every created
/// item, and if it depends on the `_id` alone (a client matching items by id), the id is put
/// into it. Failed items (rare) are filtered one by one. `None` when the shortcut does not
/// apply (the filter keeps other per-item values): the caller then filters the whole tree.
fn filtered_body(
    errors: bool,
    took: u128,
    items: &[u8],
    rendered: &[Rendered],
    spec: &str,
) -> Option<Vec<u8>> {
    use serde_json::{json, Value};
    let sample = |op: &str, index: &str, id: &str, seq: u64| {
        json!({ "errors": errors, "took": took, "items": [{ op: {
            "_index": index, "_id": id, "_version": 1, "result": "created",
            "_shards": {"total": 2, "successful": 1, "failed": 0},
            "_seq_no": seq, "_primary_term": 1, "status": 201 } }] })
    };
    let first_item = |v: &Value| {
        v.get("items")
            .and_then(|i| i.get(0))
            .map(|i| serde_json::to_vec(i).unwrap_or_default())
    };
    let mut templates: HashMap<&str, Template> = HashMap::new();
    let mut top: Option<Value> = None;
    let mut parts: Vec<Vec<u8>> = Vec::new();
    for r in rendered {
        let item = match r.created_as {
            Some(op) => {
                if !templates.contains_key(op) {
                    let a = crate::filter_path::apply(&sample(op, "\u{1}a", "\u{1}b", 1), spec);
                    let b = crate::filter_path::apply(&sample(op, "\u{2}c", "\u{1}b", 2), spec);
                    if a != b {
                        return None;
                    }
                    let other_id =
                        crate::filter_path::apply(&sample(op, "\u{1}a", "\u{2}d", 1), spec);
                    let template = if a == other_id {
                        Template::Fixed(first_item(&a))
                    } else {
                        // The id's sentinel, as JSON writes it, must appear once.
                        let kept = first_item(&a).unwrap_or_default();
                        let sentinel = br#""\u0001b""#;
                        let at = memchr::memmem::find(&kept, sentinel)?;
                        let after = &kept[at + sentinel.len()..];
                        if memchr::memmem::find(after, sentinel).is_some() {
                            return None;
                        }
                        Template::AroundId(kept[..at].to_vec(), after.to_vec())
                    };
                    templates.insert(op, template);
                    top.get_or_insert(a);
                }
                match templates.get(op) {
                    Some(Template::Fixed(kept)) => kept.clone(),
                    Some(Template::AroundId(before, after)) => {
                        let id = items.get(r.id.clone())?;
                        let mut item = Vec::with_capacity(before.len() + id.len() + after.len());
                        item.extend_from_slice(before);
                        item.extend_from_slice(id);
                        item.extend_from_slice(after);
                        Some(item)
                    }
                    None => None,
                }
            }
            None => {
                let v: Value = serde_json::from_slice(&items[r.range.clone()]).ok()?;
                let doc = json!({ "errors": errors, "took": took, "items": [v] });
                let filtered = crate::filter_path::apply(&doc, spec);
                let kept = first_item(&filtered);
                top.get_or_insert(filtered);
                kept
            }
        };
        if let Some(item) = item {
            parts.push(item);
        }
    }
    // The top-level fields as the filter keeps them (their values are the real ones).
    let top = match top {
        Some(t) => t,
        None => crate::filter_path::apply(&json!({ "errors": errors, "took": took }), spec),
    };
    let mut body = Vec::with_capacity(parts.iter().map(Vec::len).sum::<usize>() + parts.len() + 64);
    body.push(b'{');
    let mut first = true;
    if let Some(map) = top.as_object() {
        for (k, v) in map {
            if k == "items" {
                continue;
            }
            if !first {
                body.push(b',');
            }
            first = false;
            let _ = write!(body, "{}:{}", Value::String(k.clone()), v);
        }
    }
    if !parts.is_empty() {
        if !first {
            body.push(b',');
        }
        body.extend_from_slice(b"\"items\":[");
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(p);
        }
        body.push(b']');
    }
    body.push(b'}');
    Some(body)
}

#[cfg(test)]
mod filter_tests {
    use super::*;

    /// Two created items and one failed one, rendered as `handle` renders them.
    fn sample() -> (Vec<u8>, Vec<Rendered>) {
        let mut out = Vec::new();
        let mut rendered = Vec::new();
        for (i, id) in ["a", "b"].iter().enumerate() {
            let start = out.len();
            let _ = write!(
                out,
                "{{\"create\":{{\"_index\":\".ds-logs-x-default-2026.11.26-000001\",\"_id\":"
            );
            let id_start = out.len();
            let _ = write!(out, "\"{id}\"");
            let id_end = out.len();
            let _ = write!(out, ",\"_version\":1,\"result\":\"created\",\"_shards\":{{\"total\":2,\"successful\":1,\"failed\":0}},\"_seq_no\":{i},\"_primary_term\":1,\"status\":201}}}}");
            rendered.push(Rendered {
                range: start..out.len(),
                created_as: Some("create"),
                id: id_start..id_end,
            });
        }
        let start = out.len();
        out.extend_from_slice(br#"{"create":{"_index":"logs-x-default","_id":"c}{","status":429,"error":{"type":"es_rejected_execution_exception","reason":"busy"}}}"#);
        rendered.push(Rendered {
            range: start..out.len(),
            created_as: None,
            id: 0..0,
        });
        (out, rendered)
    }

    fn value(bytes: &[u8]) -> serde_json::Value {
        serde_json::from_slice(bytes).expect("JSON")
    }

    #[test]
    fn the_shortcut_filters_exactly_like_the_tree() {
        let (out, rendered) = sample();
        for spec in [
            "errors,items.*.status,items.*.error,items.*.failure_store",
            "items.*.error",
            "errors",
            "-items",
            "took,items.*.status",
            "errors,items.*._id,items.*.status,items.*.error,items.*.failure_store",
            "items.*._id",
        ] {
            let slow = full_body(true, 3, &out, &rendered, Some(spec));
            let fast = filtered_body(true, 3, &out, &rendered, spec).expect("the shortcut applies");
            assert_eq!(value(&fast), value(&slow), "filter_path={spec}");
        }
    }

    #[test]
    fn filters_keeping_other_per_item_values_take_the_general_path() {
        let (out, rendered) = sample();
        for spec in [
            "items.*._index",
            "items.*._seq_no",
            "items.*._id,items.*._seq_no",
        ] {
            assert!(
                filtered_body(true, 3, &out, &rendered, spec).is_none(),
                "{spec}"
            );
        }
        let slow = full_body(true, 3, &out, &rendered, Some("items.*._id"));
        assert_eq!(value(&slow)["items"][2]["create"]["_id"], "c}{");
        let fast = filtered_body(true, 3, &out, &rendered, "items.*._id").unwrap();
        assert_eq!(value(&fast)["items"][0]["create"]["_id"], "a");
    }
}

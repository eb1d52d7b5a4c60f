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
) -> Result<Vec<u8>, EsError> {
    let ops = parse_bulk(body, params)?;
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
        if i > 0 {
            out.push(b',');
        }
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
                let _ = write!(
                    out,
                    "{{\"{opname}\":{{\"_index\":{index_json},\"_id\":{id_json},\"_version\":1,\"result\":\"created\",\"_shards\":{{\"total\":2,\"successful\":1,\"failed\":0}},\"_seq_no\":{},\"_primary_term\":1,\"status\":201}}}}",
                    state.seq_no - 1
                );
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
                let _ = write!(
                    out,
                    "{{\"{opname}\":{{\"_index\":{index_json},\"_id\":{id_json},\"status\":{},\"error\":{err_json}}}}}",
                    e.status
                );
            }
        }
    }
    drop(state);
    let mut body = Vec::with_capacity(out.len() + 64);
    let _ = write!(
        body,
        "{{\"errors\":{errors},\"took\":{},\"items\":[",
        started.elapsed().as_millis()
    );
    body.extend_from_slice(&out);
    body.extend_from_slice(b"]}");
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

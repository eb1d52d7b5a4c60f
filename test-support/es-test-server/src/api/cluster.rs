//! `/_cluster/health` and `/_cluster/settings` (only the failure-store setting).

use super::*;

pub(super) async fn cluster_health(State(shared): State<Arc<Shared>>) -> Response {
    let c = shared.lock_cluster();
    let n = c.indices.len();
    let nodes = shared.nodes_up();
    json_response(
        StatusCode::OK,
        &json!({
            "cluster_name": shared.config.cluster_name,
            "status": "green",
            "timed_out": false,
            "number_of_nodes": nodes,
            "number_of_data_nodes": nodes,
            "active_primary_shards": n,
            "active_shards": n,
            "relocating_shards": 0,
            "initializing_shards": 0,
            "unassigned_shards": 0,
            "unassigned_primary_shards": 0,
            "delayed_unassigned_shards": 0,
            "number_of_pending_tasks": 0,
            "number_of_in_flight_fetch": 0,
            "task_max_waiting_in_queue_millis": 0,
            "active_shards_percent_as_number": 100.0
        }),
    )
}

const FS_SETTING: &str = "data_streams.failure_store.enabled";

fn settings_body(patterns: &[String]) -> Value {
    if patterns.is_empty() {
        json!({"persistent": {}, "transient": {}})
    } else {
        json!({"persistent": {"data_streams": {"failure_store": {"enabled": patterns.join(",")}}}, "transient": {}})
    }
}

pub(super) async fn get_cluster_settings(State(shared): State<Arc<Shared>>) -> Response {
    let c = shared.lock_cluster();
    json_response(StatusCode::OK, &settings_body(&c.failure_store_patterns))
}

/// `PUT _cluster/settings`: only `data_streams.failure_store.enabled` is
/// modelled; other settings are refused so a test does not silently rely on them.
pub(super) async fn put_cluster_settings(
    State(shared): State<Arc<Shared>>,
    req: Request,
) -> Response {
    let body = match required_json_body(&shared, req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(obj) = body.as_object() else {
        return EsError::parse("request body must be an object").into_response();
    };
    let mut new_patterns: Option<Vec<String>> = None;
    for (scope, settings) in obj {
        if scope != "persistent" && scope != "transient" {
            return EsError::parse(format!(
                "[cluster_update_settings_request] unknown field [{scope}]"
            ))
            .into_response();
        }
        let mut flat = serde_json::Map::new();
        flatten(settings, "", &mut flat);
        for (k, v) in flat {
            if k != FS_SETTING {
                return EsError::illegal_argument(format!(
                    "persistent setting [{k}], not recognized by this test server"
                ))
                .into_response();
            }
            new_patterns = Some(match v {
                Value::Null => Vec::new(),
                Value::String(s) => s
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
                Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect(),
                other => {
                    return EsError::illegal_argument(format!(
                        "illegal value for [{FS_SETTING}]: {other}"
                    ))
                    .into_response()
                }
            });
        }
    }
    let mut c = shared.lock_cluster();
    if let Some(p) = new_patterns {
        c.failure_store_patterns = p;
        // Data streams without an explicit option follow the setting.
        let patterns = c.failure_store_patterns.clone();
        for ds in c.data_streams.values_mut() {
            if ds.failure_store_option.is_none() {
                ds.failure_store_enabled = patterns.iter().any(|p| wildcard::matches(p, &ds.name));
            }
        }
    }
    let mut body = settings_body(&c.failure_store_patterns);
    if let Some(m) = body.as_object_mut() {
        m.insert("acknowledged".into(), json!(true));
    }
    json_response(StatusCode::OK, &body)
}

fn flatten(v: &Value, prefix: &str, out: &mut serde_json::Map<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, val) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(val, &key, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

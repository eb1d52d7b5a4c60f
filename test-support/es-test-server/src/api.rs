//! The REST routes and the handlers for cluster metadata: `GET /`, templates,
//! lifecycle policies, data streams, cluster settings, index housekeeping.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use crate::body::{check_json_content_type, read_body};
use crate::error::{json_response, simple_error, EsError};
use crate::server::{RecordSlot, Shared};
use crate::wildcard;

/// The version this server speaks.
pub const VERSION: &str = "9.2.1";

/// Builds the router with all layers.
pub fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/", get(root).head(root_head))
        .route(
            "/_bulk",
            post(crate::bulk::bulk_root).put(crate::bulk::bulk_root),
        )
        .route(
            "/{index}/_bulk",
            post(crate::bulk::bulk_index).put(crate::bulk::bulk_index),
        )
        .route("/_component_template", get(get_component_templates_all))
        .route(
            "/_component_template/{name}",
            get(get_component_templates)
                .head(head_component_template)
                .put(put_component_template)
                .post(put_component_template)
                .delete(delete_component_template),
        )
        .route("/_index_template", get(get_index_templates_all))
        .route(
            "/_index_template/{name}",
            get(get_index_templates)
                .head(head_index_template)
                .put(put_index_template)
                .post(put_index_template)
                .delete(delete_index_template),
        )
        .route("/_ilm/policy", get(get_ilm_all))
        .route(
            "/_ilm/policy/{name}",
            get(get_ilm).put(put_ilm).delete(delete_ilm),
        )
        .route("/_data_stream", get(get_data_streams_all))
        .route(
            "/_data_stream/{name}",
            get(get_data_streams)
                .put(put_data_stream)
                .delete(delete_data_stream),
        )
        .route("/_cluster/health", get(cluster_health))
        .route(
            "/_cluster/settings",
            get(get_cluster_settings).put(put_cluster_settings),
        )
        .route("/{index}/_rollover", post(rollover))
        .route("/_refresh", get(refresh_all).post(refresh_all))
        .route("/{index}/_refresh", get(refresh).post(refresh))
        .route(
            "/_count",
            get(crate::search::count_all).post(crate::search::count_all),
        )
        .route(
            "/{index}/_count",
            get(crate::search::count).post(crate::search::count),
        )
        .route(
            "/_search",
            get(crate::search::search_all).post(crate::search::search_all),
        )
        .route(
            "/{index}/_search",
            get(crate::search::search).post(crate::search::search),
        )
        .route(
            "/{index}",
            get(get_index).head(head_index).delete(delete_index),
        )
        .nest("/_test", crate::control::router())
        .fallback(no_handler)
        .layer(from_fn(method_not_allowed))
        .layer(from_fn_with_state(
            shared.clone(),
            crate::middleware::faults,
        ))
        .layer(from_fn_with_state(shared.clone(), crate::middleware::auth))
        .layer(from_fn_with_state(
            shared.clone(),
            crate::middleware::record,
        ))
        .layer(from_fn(crate::middleware::product_header));
    api.with_state(shared)
}

/// Unknown endpoints: Elasticsearch answers 400 with a plain `error` string.
async fn no_handler(req: Request) -> Response {
    simple_error(
        StatusCode::BAD_REQUEST,
        format!(
            "no handler found for uri [{}] and method [{}]",
            req.uri().path(),
            req.method()
        ),
    )
}

/// Turns axum's bare 405 into Elasticsearch's body (allowed methods listed).
async fn method_not_allowed(req: Request, next: Next) -> Response {
    let uri = req.uri().path().to_string();
    let method = req.method().clone();
    let resp = next.run(req).await;
    if resp.status() != StatusCode::METHOD_NOT_ALLOWED {
        return resp;
    }
    let allow = resp
        .headers()
        .get(header::ALLOW)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .unwrap_or_else(|| allowed_methods(&uri).join(","));
    let mut methods: Vec<&str> = allow
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect();
    methods.sort_unstable();
    let mut out = simple_error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "Incorrect HTTP method for uri [{uri}] and method [{method}], allowed: [{}]",
            methods.join(", ")
        ),
    );
    if let Ok(v) = header::HeaderValue::from_str(&allow) {
        out.headers_mut().insert(header::ALLOW, v);
    }
    out
}

/// Methods of the routes whose method sets clients most often get wrong.
fn allowed_methods(path: &str) -> Vec<&'static str> {
    let last = path.rsplit('/').next().unwrap_or("");
    match last {
        "_bulk" => vec!["POST", "PUT"],
        "_search" | "_count" | "_refresh" => vec!["GET", "POST"],
        _ if path.starts_with("/_index_template/") || path.starts_with("/_component_template/") => {
            vec!["DELETE", "GET", "HEAD", "POST", "PUT"]
        }
        _ if path.starts_with("/_ilm/policy/") => vec!["DELETE", "GET", "PUT"],
        _ => Vec::new(),
    }
}

fn root_body(shared: &Shared) -> Value {
    json!({
        "name": shared.config.node_name,
        "cluster_name": shared.config.cluster_name,
        "cluster_uuid": shared.cluster_uuid,
        "version": {
            "number": VERSION,
            "build_flavor": "default",
            "build_type": "docker",
            "build_hash": "es-test-server",
            "build_date": "2025-11-06T00:00:00.000000000Z",
            "build_snapshot": false,
            "lucene_version": "10.3.1",
            "minimum_wire_compatibility_version": "8.19.0",
            "minimum_index_compatibility_version": "8.0.0"
        },
        "tagline": "You Know, for Search"
    })
}

async fn root(State(shared): State<Arc<Shared>>) -> Response {
    json_response(StatusCode::OK, &root_body(&shared))
}

async fn root_head() -> Response {
    let mut r = StatusCode::OK.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

fn acknowledged() -> Response {
    json_response(StatusCode::OK, &json!({"acknowledged": true}))
}

/// Reads a JSON request body (content type, size limit and gzip as for bulk).
pub async fn json_body(
    shared: &Shared,
    req: Request,
    required: bool,
) -> Result<Option<Value>, Response> {
    let (parts, body) = req.into_parts();
    let decoded = read_body(&parts.headers, body, shared.max_content_length())
        .await
        .map_err(IntoResponse::into_response)?;
    if let Some(slot) = parts.extensions.get::<RecordSlot>() {
        slot.set_body(decoded.wire_bytes, decoded.bytes.len() as u64, decoded.gzip);
    }
    if decoded.bytes.iter().all(u8::is_ascii_whitespace) {
        if required {
            return Err(EsError::parse("request body is required").into_response());
        }
        return Ok(None);
    }
    if let Err(msg) = check_json_content_type(&parts.headers, false) {
        return Err(simple_error(StatusCode::NOT_ACCEPTABLE, msg));
    }
    serde_json::from_slice(&decoded.bytes)
        .map(Some)
        .map_err(|e| EsError::parse(format!("[{}:{}] {e}", e.line(), e.column())).into_response())
}

fn flag(q: &HashMap<String, String>, name: &str) -> bool {
    matches!(q.get(name).map(String::as_str), Some("") | Some("true"))
}

fn head_status(found: bool) -> Response {
    if found {
        StatusCode::OK.into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

// ----- component and index templates ---------------------------------------

/// The JSON body of a PUT that requires one.
async fn required_json_body(shared: &Shared, req: Request) -> Result<Value, Response> {
    match json_body(shared, req, true).await {
        Ok(Some(b)) => Ok(b),
        Ok(None) => Err(EsError::parse("request body is required").into_response()),
        Err(r) => Err(r),
    }
}

/// Does `name` match one of the comma-separated wildcard `patterns`?
fn matches_any(patterns: &str, name: &str) -> bool {
    patterns.split(',').any(|p| wildcard::matches(p, name))
}

/// `GET /_component_template[/<pattern>]` and `GET /_index_template[/<pattern>]` answer the
/// same way: `{"<list_key>": [{"name", "<item_key>": body}]}`, and 404 for a name without
/// wildcards that matches nothing.
fn templates_response<'a>(
    entries: impl Iterator<Item = (&'a String, &'a Value)>,
    pattern: Option<&str>,
    list_key: &str,
    item_key: &str,
    label: &str,
) -> Response {
    let list: Vec<Value> = entries
        .filter(|(name, _)| pattern.is_none_or(|p| matches_any(p, name)))
        .map(|(name, body)| json!({"name": name, item_key: body}))
        .collect();
    if list.is_empty() {
        if let Some(p) = pattern {
            if !p.contains('*') {
                return EsError::resource_not_found(format!("{label} matching [{p}] not found"))
                    .into_response();
            }
        }
    }
    json_response(StatusCode::OK, &json!({ list_key: list }))
}

async fn put_component_template(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Response {
    let body = match required_json_body(&shared, req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match shared
        .lock_cluster()
        .put_component_template(&name, &body, flag(&q, "create"))
    {
        Ok(()) => acknowledged(),
        Err(e) => e.into_response(),
    }
}

fn component_templates_response(shared: &Shared, pattern: Option<&str>) -> Response {
    let cluster = shared.lock_cluster();
    let entries = cluster
        .component_templates
        .values()
        .map(|t| (&t.name, &t.body));
    templates_response(
        entries,
        pattern,
        "component_templates",
        "component_template",
        "component template",
    )
}

async fn get_component_templates_all(State(shared): State<Arc<Shared>>) -> Response {
    component_templates_response(&shared, None)
}

async fn get_component_templates(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Response {
    component_templates_response(&shared, Some(&name))
}

async fn head_component_template(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Response {
    let c = shared.lock_cluster();
    head_status(c.component_templates.keys().any(|k| matches_any(&name, k)))
}

async fn delete_component_template(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Response {
    match shared.lock_cluster().delete_component_template(&name) {
        Ok(()) => acknowledged(),
        Err(e) => e.into_response(),
    }
}

// ----- index templates ----------------------------------------------------

async fn put_index_template(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Response {
    let body = match required_json_body(&shared, req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match shared
        .lock_cluster()
        .put_index_template(&name, &body, flag(&q, "create"))
    {
        Ok(()) => acknowledged(),
        Err(e) => e.into_response(),
    }
}

fn index_templates_response(shared: &Shared, pattern: Option<&str>) -> Response {
    let cluster = shared.lock_cluster();
    let entries = cluster.index_templates.values().map(|t| (&t.name, &t.body));
    templates_response(
        entries,
        pattern,
        "index_templates",
        "index_template",
        "index template",
    )
}

async fn get_index_templates_all(State(shared): State<Arc<Shared>>) -> Response {
    index_templates_response(&shared, None)
}

async fn get_index_templates(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Response {
    index_templates_response(&shared, Some(&name))
}

async fn head_index_template(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Response {
    let c = shared.lock_cluster();
    head_status(c.index_templates.keys().any(|k| matches_any(&name, k)))
}

async fn delete_index_template(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Response {
    match shared.lock_cluster().delete_index_template(&name) {
        Ok(()) => acknowledged(),
        Err(e) => e.into_response(),
    }
}

// ----- ILM ------------------------------------------------------------------

async fn put_ilm(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    req: Request,
) -> Response {
    let body = match required_json_body(&shared, req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match shared
        .lock_cluster()
        .put_ilm_policy(&name, &body, chrono::Utc::now())
    {
        Ok(()) => acknowledged(),
        Err(e) => e.into_response(),
    }
}

fn ilm_response(shared: &Shared, name: Option<&str>) -> Response {
    let cluster = shared.lock_cluster();
    let mut out = serde_json::Map::new();
    for p in cluster.ilm_policies.values() {
        if name.is_some_and(|n| !n.split(',').any(|n| wildcard::matches(n, &p.name))) {
            continue;
        }
        let users_templates: Vec<&str> = cluster
            .index_templates
            .values()
            .filter(|t| {
                let comps = &cluster.component_templates;
                let r = crate::cluster::templates::resolve(t, &|n: &str| comps.get(n));
                r.settings
                    .get("index.lifecycle.name")
                    .and_then(Value::as_str)
                    == Some(p.name.as_str())
            })
            .map(|t| t.name.as_str())
            .collect();
        let ds: Vec<&str> = cluster
            .data_streams
            .values()
            .filter(|d| d.ilm_policy.as_deref() == Some(p.name.as_str()))
            .map(|d| d.name.as_str())
            .collect();
        out.insert(
            p.name.clone(),
            json!({
                "version": p.version,
                "modified_date": crate::dates::format_millis(p.modified_millis),
                "policy": p.policy,
                "in_use_by": {"indices": [], "data_streams": ds, "composable_templates": users_templates}
            }),
        );
    }
    if out.is_empty() {
        if let Some(n) = name {
            return EsError::resource_not_found(format!("Lifecycle policy not found: [{n}]"))
                .into_response();
        }
    }
    json_response(StatusCode::OK, &Value::Object(out))
}

async fn get_ilm_all(State(shared): State<Arc<Shared>>) -> Response {
    ilm_response(&shared, None)
}

async fn get_ilm(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    ilm_response(&shared, Some(&name))
}

async fn delete_ilm(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    match shared.lock_cluster().delete_ilm_policy(&name) {
        Ok(()) => acknowledged(),
        Err(e) => e.into_response(),
    }
}

// ----- data streams -------------------------------------------------------

fn data_streams_response(shared: &Shared, name: Option<&str>) -> Response {
    let cluster = shared.lock_cluster();
    let uuids = |n: &str| {
        cluster
            .indices
            .get(n)
            .map(|i| i.uuid.clone())
            .unwrap_or_default()
    };
    let mut list = Vec::new();
    for ds in cluster.data_streams.values() {
        if name.is_some_and(|n| !n.split(',').any(|n| wildcard::matches(n, &ds.name))) {
            continue;
        }
        list.push(ds.to_json(&uuids));
    }
    if list.is_empty() {
        if let Some(n) = name {
            if !n.contains('*') {
                return EsError::index_not_found(n).into_response();
            }
        }
    }
    json_response(StatusCode::OK, &json!({"data_streams": list}))
}

async fn get_data_streams_all(State(shared): State<Arc<Shared>>) -> Response {
    data_streams_response(&shared, None)
}

async fn get_data_streams(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    data_streams_response(&shared, Some(&name))
}

async fn put_data_stream(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    match shared
        .lock_cluster()
        .put_data_stream(&name, chrono::Utc::now())
    {
        Ok(()) => acknowledged(),
        Err(e) => e.into_response(),
    }
}

async fn delete_data_stream(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Response {
    match shared.lock_cluster().delete_data_stream(&name) {
        Ok(()) => acknowledged(),
        Err(e) => e.into_response(),
    }
}

/// `POST /<data-stream>[::failures]/_rollover[?dry_run]`. Conditions are not
/// evaluated, so a body that sets any is refused instead of being answered as
/// if they held.
async fn rollover(
    State(shared): State<Arc<Shared>>,
    Path(target): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Response {
    let body = match json_body(&shared, req, false).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let has_conditions = body
        .as_ref()
        .and_then(|b| b.get("conditions"))
        .and_then(Value::as_object)
        .is_some_and(|c| !c.is_empty());
    if has_conditions {
        return EsError::illegal_argument(
            "rollover conditions are not supported by this test server",
        )
        .into_response();
    }
    match shared
        .lock_cluster()
        .rollover(&target, flag(&q, "dry_run"), chrono::Utc::now())
    {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => e.into_response(),
    }
}

// ----- cluster --------------------------------------------------------------

async fn cluster_health(State(shared): State<Arc<Shared>>) -> Response {
    let c = shared.lock_cluster();
    let n = c.indices.len();
    json_response(
        StatusCode::OK,
        &json!({
            "cluster_name": shared.config.cluster_name,
            "status": "green",
            "timed_out": false,
            "number_of_nodes": 1,
            "number_of_data_nodes": 1,
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

async fn get_cluster_settings(State(shared): State<Arc<Shared>>) -> Response {
    let c = shared.lock_cluster();
    json_response(StatusCode::OK, &settings_body(&c.failure_store_patterns))
}

/// `PUT _cluster/settings`: only `data_streams.failure_store.enabled` is
/// modelled; other settings are refused so a test does not silently rely on them.
async fn put_cluster_settings(State(shared): State<Arc<Shared>>, req: Request) -> Response {
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

// ----- indices --------------------------------------------------------------

fn shards_body(n: usize) -> Value {
    json!({"_shards": {"total": n * 2, "successful": n, "failed": 0}})
}

async fn refresh_all(State(shared): State<Arc<Shared>>) -> Response {
    let n = shared.lock_cluster().indices.len();
    json_response(StatusCode::OK, &shards_body(n))
}

async fn refresh(
    State(shared): State<Arc<Shared>>,
    Path(index): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match shared
        .lock_cluster()
        .resolve_read(&index, flag(&q, "ignore_unavailable"))
    {
        Ok(names) => json_response(StatusCode::OK, &shards_body(names.len())),
        Err(e) => e.into_response(),
    }
}

async fn head_index(State(shared): State<Arc<Shared>>, Path(index): Path<String>) -> Response {
    let found = shared
        .lock_cluster()
        .resolve_read(&index, false)
        .map(|v| !v.is_empty())
        .unwrap_or(false);
    head_status(found)
}

async fn get_index(
    State(shared): State<Arc<Shared>>,
    Path(index): Path<String>,
    method: Method,
) -> Response {
    let c = shared.lock_cluster();
    let names = match c.resolve_read(&index, false) {
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    let _ = method;
    let mut out = serde_json::Map::new();
    for n in names {
        if let Some(i) = c.indices.get(&n) {
            let mut settings = i.settings.clone();
            settings.insert("index.uuid".into(), json!(i.uuid));
            settings.insert("index.provided_name".into(), json!(i.name));
            out.insert(
                n.clone(),
                json!({
                    "aliases": {},
                    "mappings": {"properties": crate::search::mapping_properties(&i.mappings)},
                    "settings": settings,
                    "data_stream": i.data_stream
                }),
            );
        }
    }
    json_response(StatusCode::OK, &Value::Object(out))
}

async fn delete_index(State(shared): State<Arc<Shared>>, Path(index): Path<String>) -> Response {
    match shared.lock_cluster().delete_index(&index) {
        Ok(()) => acknowledged(),
        Err(e) => e.into_response(),
    }
}

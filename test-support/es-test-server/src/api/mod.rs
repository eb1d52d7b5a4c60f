//! The REST routes, the layers around them, and the helpers every handler
//! shares. Handlers are grouped per resource: `templates`, `ilm`,
//! `data_streams` (with rollover), `cluster`, `indices`; `_bulk` and
//! `_search`/`_count` live with their engines in `crate::bulk` and
//! `crate::search`.

mod cluster;
mod data_streams;
mod ilm;
mod indices;
mod nodes;
mod security;
mod templates;

use cluster::*;
use data_streams::*;
use ilm::*;
use indices::*;
use nodes::*;
use security::*;
use templates::*;

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
        .route("/_index_template/_simulate", post(simulate_template))
        .route(
            "/_security/user/_has_privileges",
            get(has_privileges).post(has_privileges),
        )
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
        .route("/_nodes", get(nodes_info_all))
        .route("/_nodes/{segment}", get(nodes_info_one))
        .route("/_nodes/{filter}/{metrics}", get(nodes_info_two))
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

fn root_body(shared: &Shared, node: usize) -> Value {
    json!({
        "name": shared.node_name(node),
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

async fn root(
    State(shared): State<Arc<Shared>>,
    serving: Option<axum::Extension<crate::server::ServingNode>>,
) -> Response {
    let node = serving.map(|e| e.0 .0).unwrap_or(0);
    json_response(StatusCode::OK, &root_body(&shared, node))
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

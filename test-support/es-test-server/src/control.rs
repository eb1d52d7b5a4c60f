//! `/_test/...`: control and observation over HTTP, for process-level tests
//! and the compose smoke test. Not part of Elasticsearch's API; never
//! authenticated, never faulted, never recorded.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use crate::error::{json_response, EsError};
use crate::faults::FaultState;
use crate::server::Shared;

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/documents", get(documents))
        .route("/requests", get(requests))
        .route("/stats", get(stats))
        .route("/observations", axum::routing::delete(reset_observations))
        .route(
            "/faults",
            get(get_faults).put(put_faults).delete(clear_faults),
        )
        .route("/refuse_connections", post(refuse_connections))
        .route("/nodes", get(list_nodes))
        .route("/nodes/{node}/kill", post(kill_node))
        .route("/nodes/{node}/revive", post(revive_node))
        .route("/nodes/{node}/die_after_bulk", post(die_after_bulk))
        .route("/state", get(state))
}

/// `GET /_test/documents?index=<expr>` (default `*`, hidden included via `.*`).
async fn documents(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let expr = q.get("index").map(String::as_str).unwrap_or("*");
    let docs = shared.lock_cluster().documents(expr);
    let list: Vec<Value> = docs
        .iter()
        .map(|d| json!({"_index": d.index, "data_stream": d.data_stream, "_id": d.id, "_version": d.version, "_source": *d.source}))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"count": list.len(), "documents": list}),
    )
}

async fn requests(State(shared): State<Arc<Shared>>) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"requests": shared.observer.requests()}),
    )
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    let bh = shared.blackhole.as_ref();
    json_response(
        StatusCode::OK,
        &json!({
            "bulk": shared.observer.stats(),
            "dropped_connections": shared.observer.dropped_connections(),
            "blackhole": bh.map(|b| json!({"counts": b.counts(), "distinct_ids": b.distinct_ids()}))
        }),
    )
}

async fn reset_observations(State(shared): State<Arc<Shared>>) -> Response {
    shared.observer.reset();
    json_response(StatusCode::OK, &json!({"acknowledged": true}))
}

async fn get_faults(State(shared): State<Arc<Shared>>) -> Response {
    json_response(
        StatusCode::OK,
        &serde_json::to_value(shared.faults.snapshot()).unwrap_or(Value::Null),
    )
}

/// `PUT /_test/faults` replaces the whole fault state with the body.
async fn put_faults(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let bytes = match axum::body::to_bytes(req.into_body(), 1024 * 1024).await {
        Ok(b) => b,
        Err(e) => {
            return EsError::illegal_argument(format!("cannot read body: {e}")).into_response()
        }
    };
    match serde_json::from_slice::<FaultState>(&bytes) {
        Ok(state) => {
            shared.faults.set(state);
            json_response(StatusCode::OK, &json!({"acknowledged": true}))
        }
        Err(e) => EsError::parse(format!("invalid fault state: {e}")).into_response(),
    }
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> Response {
    shared.faults.clear();
    json_response(StatusCode::OK, &json!({"acknowledged": true}))
}

/// `POST /_test/refuse_connections?for_ms=N`: closes the listener and all
/// connections (clients see "connection refused"), and listens again on the
/// same port after N milliseconds (1..=600000). The answer is sent first.
async fn refuse_connections(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(ms) = q
        .get("for_ms")
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|ms| (1..=600_000).contains(ms))
    else {
        return EsError::illegal_argument("for_ms must be a number of milliseconds in 1..=600000")
            .into_response();
    };
    let s = shared.clone();
    tokio::spawn(async move {
        // Give this response time to leave before the connections are cut.
        tokio::time::sleep(Duration::from_millis(50)).await;
        s.stop_listening();
        tokio::time::sleep(Duration::from_millis(ms)).await;
        if let Err(e) = s.resume_listening().await {
            tracing::error!(error = %e, "could not listen again");
        }
    });
    json_response(
        StatusCode::OK,
        &json!({"acknowledged": true, "refusing_for_ms": ms}),
    )
}

async fn state(State(shared): State<Arc<Shared>>) -> Response {
    let c = shared.lock_cluster();
    json_response(
        StatusCode::OK,
        &json!({
            "data_streams": c.data_streams.values().map(|d| json!({"name": d.name, "backing_indices": d.backing, "failure_indices": d.failure_indices, "failure_store_enabled": d.failure_store_enabled, "template": d.template})).collect::<Vec<_>>(),
            "indices": c.indices.iter().map(|(n, i)| json!({"name": n, "docs": i.doc_count(), "data_stream": i.data_stream})).collect::<Vec<_>>(),
            "index_templates": c.index_templates.keys().collect::<Vec<_>>(),
            "component_templates": c.component_templates.keys().collect::<Vec<_>>(),
            "ilm_policies": c.ilm_policies.keys().collect::<Vec<_>>(),
        }),
    )
}

/// `GET /_test/nodes`: every node with its name, id, address and whether it is up.
async fn list_nodes(State(shared): State<Arc<Shared>>) -> Response {
    let nodes: Vec<Value> = shared
        .nodes
        .iter()
        .map(|n| {
            json!({
                "name": n.name,
                "id": n.id,
                "address": n.addr().map(|a| a.to_string()),
                "up": n.is_up(),
            })
        })
        .collect();
    json_response(StatusCode::OK, &json!({ "nodes": nodes }))
}

fn no_such_node(node: &str) -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"error": format!("no node named or with id [{node}]")}),
    )
}

/// `POST /_test/nodes/<name-or-id>/kill[?for_ms=N]`: the node stops accepting and its open
/// connections are cut, as when its process dies; the other nodes go on serving the same
/// cluster state. With `for_ms` it comes back on its address after N milliseconds
/// (1..=600000), else at `revive`. The answer is sent first.
async fn kill_node(
    State(shared): State<Arc<Shared>>,
    Path(node): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(index) = shared.find_node(&node) else {
        return no_such_node(&node);
    };
    let back_after = match q.get("for_ms") {
        None => None,
        Some(v) => match v
            .parse::<u64>()
            .ok()
            .filter(|ms| (1..=600_000).contains(ms))
        {
            Some(ms) => Some(Duration::from_millis(ms)),
            None => {
                return EsError::illegal_argument(
                    "for_ms must be a number of milliseconds in 1..=600000",
                )
                .into_response()
            }
        },
    };
    let s = shared.clone();
    tokio::spawn(async move {
        // Give this response time to leave before the connections are cut (it may be
        // the node being killed that answers).
        tokio::time::sleep(Duration::from_millis(50)).await;
        s.stop_node(index);
        if let Some(after) = back_after {
            tokio::time::sleep(after).await;
            if let Err(e) = s.resume_node(index).await {
                tracing::error!(error = %e, "could not bring the node back");
            }
        }
    });
    json_response(
        StatusCode::OK,
        &json!({"acknowledged": true, "node": shared.node_name(index)}),
    )
}

/// `POST /_test/nodes/<name-or-id>/revive`: a killed node listens again on its address.
async fn revive_node(State(shared): State<Arc<Shared>>, Path(node): Path<String>) -> Response {
    let Some(index) = shared.find_node(&node) else {
        return no_such_node(&node);
    };
    match shared.resume_node(index).await {
        Ok(addr) => json_response(
            StatusCode::OK,
            &json!({"acknowledged": true, "node": shared.node_name(index), "address": addr.to_string()}),
        ),
        Err(e) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"error": e.to_string()}),
        ),
    }
}

/// `POST /_test/nodes/<name-or-id>/die_after_bulk`: the next `_bulk` that node receives is
/// executed (its documents stored), then the node dies before answering.
async fn die_after_bulk(State(shared): State<Arc<Shared>>, Path(node): Path<String>) -> Response {
    let Some(index) = shared.find_node(&node) else {
        return no_such_node(&node);
    };
    match shared.set_die_after_bulk(index, true) {
        Ok(()) => json_response(
            StatusCode::OK,
            &json!({"acknowledged": true, "node": shared.node_name(index)}),
        ),
        Err(e) => json_response(StatusCode::NOT_FOUND, &json!({"error": e.to_string()})),
    }
}

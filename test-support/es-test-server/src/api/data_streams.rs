//! `/_data_stream` (get, put, delete) and `/<data-stream>/_rollover`.

use super::*;

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

pub(super) async fn get_data_streams_all(State(shared): State<Arc<Shared>>) -> Response {
    data_streams_response(&shared, None)
}

pub(super) async fn get_data_streams(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Response {
    data_streams_response(&shared, Some(&name))
}

pub(super) async fn put_data_stream(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Response {
    match shared
        .lock_cluster()
        .put_data_stream(&name, chrono::Utc::now())
    {
        Ok(()) => acknowledged(),
        Err(e) => e.into_response(),
    }
}

pub(super) async fn delete_data_stream(
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
pub(super) async fn rollover(
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

//! Index housekeeping: `_refresh`, `GET|HEAD|DELETE /<index>`.

use super::*;

fn shards_body(n: usize) -> Value {
    json!({"_shards": {"total": n * 2, "successful": n, "failed": 0}})
}

pub(super) async fn refresh_all(State(shared): State<Arc<Shared>>) -> Response {
    let n = shared.lock_cluster().indices.len();
    json_response(StatusCode::OK, &shards_body(n))
}

pub(super) async fn refresh(
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

pub(super) async fn head_index(
    State(shared): State<Arc<Shared>>,
    Path(index): Path<String>,
) -> Response {
    let found = shared
        .lock_cluster()
        .resolve_read(&index, false)
        .map(|v| !v.is_empty())
        .unwrap_or(false);
    head_status(found)
}

pub(super) async fn get_index(
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

pub(super) async fn delete_index(
    State(shared): State<Arc<Shared>>,
    Path(index): Path<String>,
) -> Response {
    match shared.lock_cluster().delete_index(&index) {
        Ok(()) => acknowledged(),
        Err(e) => e.into_response(),
    }
}

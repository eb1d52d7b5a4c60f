//! `/_component_template` and `/_index_template`: put, get (wildcards), head, delete.

use super::*;

/// The JSON body of a PUT that requires one.
pub(super) async fn required_json_body(shared: &Shared, req: Request) -> Result<Value, Response> {
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

pub(super) async fn put_component_template(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Response {
    if shared.faults.template_writes_refused() {
        return EsError::unauthorized_action(
            "cluster:admin/component_template/put",
            "manage_index_templates,manage,all",
        )
        .into_response();
    }
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

pub(super) async fn get_component_templates_all(State(shared): State<Arc<Shared>>) -> Response {
    component_templates_response(&shared, None)
}

pub(super) async fn get_component_templates(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Response {
    component_templates_response(&shared, Some(&name))
}

pub(super) async fn head_component_template(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Response {
    let c = shared.lock_cluster();
    head_status(c.component_templates.keys().any(|k| matches_any(&name, k)))
}

pub(super) async fn delete_component_template(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Response {
    match shared.lock_cluster().delete_component_template(&name) {
        Ok(()) => acknowledged(),
        Err(e) => e.into_response(),
    }
}

// ----- index templates ----------------------------------------------------

pub(super) async fn put_index_template(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Response {
    if shared.faults.template_writes_refused() {
        return EsError::unauthorized_action(
            "indices:admin/index_template/put",
            "manage_index_templates,manage,all",
        )
        .into_response();
    }
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

/// `POST /_index_template/_simulate`: see [`crate::cluster::Cluster::simulate_index_template`].
pub(super) async fn simulate_template(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let body = match required_json_body(&shared, req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match shared.lock_cluster().simulate_index_template(&body) {
        Ok(answer) => json_response(StatusCode::OK, &answer),
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

pub(super) async fn get_index_templates_all(State(shared): State<Arc<Shared>>) -> Response {
    index_templates_response(&shared, None)
}

pub(super) async fn get_index_templates(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Response {
    index_templates_response(&shared, Some(&name))
}

pub(super) async fn head_index_template(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Response {
    let c = shared.lock_cluster();
    head_status(c.index_templates.keys().any(|k| matches_any(&name, k)))
}

pub(super) async fn delete_index_template(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Response {
    match shared.lock_cluster().delete_index_template(&name) {
        Ok(()) => acknowledged(),
        Err(e) => e.into_response(),
    }
}

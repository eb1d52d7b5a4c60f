//! `/_ilm/policy`: put, get (wildcards, `in_use_by`), delete.

use super::*;

pub(super) async fn put_ilm(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    req: Request,
) -> Response {
    if shared.faults.template_writes_refused() {
        return EsError::unauthorized_action("cluster:admin/ilm/put", "manage_ilm,manage,all")
            .into_response();
    }
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

pub(super) async fn get_ilm_all(State(shared): State<Arc<Shared>>) -> Response {
    ilm_response(&shared, None)
}

pub(super) async fn get_ilm(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Response {
    ilm_response(&shared, Some(&name))
}

pub(super) async fn delete_ilm(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Response {
    match shared.lock_cluster().delete_ilm_policy(&name) {
        Ok(()) => acknowledged(),
        Err(e) => e.into_response(),
    }
}

//! `_security/user/_has_privileges`: which of the asked privileges the
//! authenticated user holds (reference "Check user privileges API").
//!
//! The server knows one user; it holds every privilege except those in
//! [`crate::ServerConfig::missing_privileges`]. With security off (no user and
//! no API key configured) the answer is Elasticsearch's: a 500 `exception`
//! saying security must be enabled, or a 400 when the request has a body
//! (the handler is not registered at all; elastic/elasticsearch#50288).

use super::*;

const SECURITY_DISABLED: &str = "Security must be explicitly enabled when using a [basic] license. Enable security by setting [xpack.security.enabled] to [true] in the elasticsearch.yml file and restart the node.";

pub(super) async fn has_privileges(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let body = match json_body(&shared, req, false).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if !shared.config.security_enabled() {
        if body.is_some() {
            return EsError::illegal_argument(format!(
                "request [{method} {path}] does not support having a body"
            ))
            .into_response();
        }
        return EsError::new(500, "exception", SECURITY_DISABLED).into_response();
    }
    let Some(body) = body else {
        return EsError::new(
            400,
            "action_request_validation_exception",
            "Validation Failed: 1: must specify at least one privilege;",
        )
        .into_response();
    };
    let missing = &shared.config.missing_privileges;
    let held = |p: &str| !missing.iter().any(|m| m == p);
    let mut all = true;
    let mut cluster = serde_json::Map::new();
    for p in body["cluster"].as_array().into_iter().flatten() {
        let Some(p) = p.as_str() else {
            return EsError::parse("[cluster] must hold privilege names").into_response();
        };
        all &= held(p);
        cluster.insert(p.to_string(), json!(held(p)));
    }
    let mut index = serde_json::Map::new();
    for entry in body["index"].as_array().into_iter().flatten() {
        let names: Vec<&str> = entry["names"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let privileges: Vec<&str> = entry["privileges"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if names.is_empty() || privileges.is_empty() {
            return EsError::new(
                400,
                "action_request_validation_exception",
                "Validation Failed: 1: indices privileges must refer to at least one index name and one privilege;",
            )
            .into_response();
        }
        for name in names {
            let slot = index.entry(name.to_string()).or_insert_with(|| json!({}));
            for p in &privileges {
                all &= held(p);
                slot[*p] = json!(held(p));
            }
        }
    }
    let username = shared
        .config
        .basic_auth
        .as_ref()
        .map(|(u, _)| u.clone())
        .unwrap_or_else(|| "api_key_owner".to_string());
    json_response(
        StatusCode::OK,
        &json!({
            "username": username,
            "has_all_requested": all,
            "cluster": cluster,
            "index": index,
            "application": {},
        }),
    )
}

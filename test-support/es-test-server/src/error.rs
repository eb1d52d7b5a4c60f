//! Elasticsearch-shaped errors.
//!
//! Elasticsearch answers every failure with the same JSON shape
//! (`{"error":{"root_cause":[..],"type":..,"reason":..},"status":n}` for whole
//! requests, the bare error object inside bulk items), so clients key their
//! behaviour on `type` and `status`. One type here renders both forms.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

/// An Elasticsearch exception: `type`, `reason`, optional extra fields
/// (`index`, `index_uuid`, `shard`, `failure_store`, ...) and an optional cause.
#[derive(Debug, Clone, PartialEq)]
pub struct EsError {
    /// HTTP status the exception maps to.
    pub status: u16,
    /// The `type` field, e.g. `illegal_argument_exception`.
    pub kind: String,
    /// The `reason` field.
    pub reason: String,
    /// Extra fields, rendered after `reason`.
    pub extra: Map<String, Value>,
    /// `caused_by`.
    pub caused_by: Option<Box<EsError>>,
}

impl EsError {
    pub fn new(status: u16, kind: impl Into<String>, reason: impl Into<String>) -> Self {
        EsError {
            status,
            kind: kind.into(),
            reason: reason.into(),
            extra: Map::new(),
            caused_by: None,
        }
    }

    pub fn illegal_argument(reason: impl Into<String>) -> Self {
        Self::new(400, "illegal_argument_exception", reason)
    }

    pub fn parse(reason: impl Into<String>) -> Self {
        Self::new(400, "x_content_parse_exception", reason)
    }

    pub fn validation(problems: &[&str]) -> Self {
        let mut reason = String::from("Validation Failed: ");
        for (i, p) in problems.iter().enumerate() {
            reason.push_str(&format!("{}: {};", i + 1, p));
        }
        Self::new(400, "action_request_validation_exception", reason)
    }

    pub fn index_not_found(index: &str) -> Self {
        Self::new(
            404,
            "index_not_found_exception",
            format!("no such index [{index}]"),
        )
        .with("resource.type", "index_or_alias")
        .with("resource.id", index)
        .with("index_uuid", "_na_")
        .with("index", index)
    }

    /// Elasticsearch's answer to an action the user's roles do not grant.
    pub fn unauthorized_action(action: &str, privileges: &str) -> Self {
        EsError::new(
            403,
            "security_exception",
            format!(
                "action [{action}] is unauthorized for user [es-test-server], this action is granted by the cluster privileges [{privileges}]"
            ),
        )
    }

    pub fn resource_not_found(reason: impl Into<String>) -> Self {
        Self::new(404, "resource_not_found_exception", reason)
    }

    /// Adds an extra field.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_string(), value.into());
        self
    }

    pub fn caused_by(mut self, cause: EsError) -> Self {
        self.caused_by = Some(Box::new(cause));
        self
    }

    /// The bare error object (as inside a bulk item's `error`).
    pub fn to_object(&self) -> Value {
        let mut m = Map::new();
        m.insert("type".into(), Value::String(self.kind.clone()));
        m.insert("reason".into(), Value::String(self.reason.clone()));
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.clone());
        }
        if let Some(c) = &self.caused_by {
            m.insert("caused_by".into(), c.to_object());
        }
        Value::Object(m)
    }

    /// The whole-request body: `{"error":{"root_cause":[..],..},"status":n}`.
    pub fn to_body(&self) -> Value {
        let mut root = Map::new();
        root.insert("type".into(), Value::String(self.kind.clone()));
        root.insert("reason".into(), Value::String(self.reason.clone()));
        for (k, v) in &self.extra {
            root.insert(k.clone(), v.clone());
        }
        let mut error = match self.to_object() {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        // root_cause comes first in Elasticsearch's rendering.
        let mut ordered = Map::new();
        ordered.insert("root_cause".into(), json!([Value::Object(root)]));
        ordered.append(&mut error);
        json!({ "error": Value::Object(ordered), "status": self.status })
    }
}

impl std::fmt::Display for EsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} [{}]: {}", self.status, self.kind, self.reason)
    }
}

impl std::error::Error for EsError {}

impl IntoResponse for EsError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(status, &self.to_body())
    }
}

/// Some REST-layer failures (no handler, bad content type, wrong method) are
/// answered by Elasticsearch with a plain string in `error`, not an object.
pub fn simple_error(status: StatusCode, message: impl Into<String>) -> Response {
    json_response(
        status,
        &json!({ "error": message.into(), "status": status.as_u16() }),
    )
}

/// Serialises a JSON body with Elasticsearch's content type.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    bytes_response(status, bytes)
}

pub fn bytes_response(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut resp = (status, bytes).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_request_body_has_root_cause_and_status() {
        let e = EsError::illegal_argument("bad").caused_by(EsError::parse("inner"));
        let body = e.to_body();
        assert_eq!(body["status"], 400);
        assert_eq!(
            body["error"]["root_cause"][0]["type"],
            "illegal_argument_exception"
        );
        assert_eq!(
            body["error"]["caused_by"]["type"],
            "x_content_parse_exception"
        );
        assert!(body["error"]["root_cause"][0].get("caused_by").is_none());
    }

    #[test]
    fn validation_reason_numbers_each_problem() {
        let e = EsError::validation(&["index is missing", "source is missing"]);
        assert_eq!(
            e.reason,
            "Validation Failed: 1: index is missing;2: source is missing;"
        );
    }
}

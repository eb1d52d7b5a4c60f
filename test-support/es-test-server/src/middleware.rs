//! Cross-cutting behaviour of every response: the `X-Elastic-Product`
//! header, request recording, security, and whole-request faults.

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::body::content_length;
use crate::error::EsError;
use crate::observe::RequestRecord;
use crate::server::{RecordSlot, Shared};

/// Elasticsearch sends `X-Elastic-Product: Elasticsearch` on every response
/// (clients such as elasticsearch-rs refuse servers that do not).
pub async fn product_header(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    if resp.extensions().get::<FromProxy>().is_none() {
        resp.headers_mut().insert(
            "x-elastic-product",
            HeaderValue::from_static("Elasticsearch"),
        );
    }
    resp
}

/// Marks a response as coming from a (simulated) proxy, not Elasticsearch.
#[derive(Clone, Copy, Debug)]
pub struct FromProxy;

const RECORDED_HEADERS: &[&str] = &[
    "content-type",
    "content-encoding",
    "accept",
    "accept-encoding",
    "user-agent",
    "x-opaque-id",
    "x-elastic-client-meta",
    "content-length",
];

/// Records the request (never the credentials) with the status answered.
pub async fn record(State(shared): State<Arc<Shared>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if path.starts_with("/_test") {
        return next.run(req).await;
    }
    let mut headers = std::collections::BTreeMap::new();
    for name in RECORDED_HEADERS {
        if let Some(v) = req.headers().get(*name).and_then(|v| v.to_str().ok()) {
            headers.insert((*name).to_string(), v.to_string());
        }
    }
    if let Some(auth) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let scheme = auth.split_whitespace().next().unwrap_or("").to_string();
        headers.insert("authorization".into(), format!("{scheme} <redacted>"));
    }
    let record = RequestRecord {
        method: req.method().to_string(),
        path,
        query: req.uri().query().map(String::from),
        headers,
        body_bytes: content_length(req.headers()).unwrap_or(0),
        decoded_bytes: 0,
        gzip: crate::body::is_gzip(req.headers()),
        status: 0,
        node: req
            .extensions()
            .get::<crate::server::ServingNode>()
            .map(|n| shared.node_name(n.0))
            .unwrap_or_default(),
    };
    let slot = RecordSlot(Arc::new(Mutex::new(record)));
    req.extensions_mut().insert(slot.clone());
    let resp = next.run(req).await;
    let mut rec = slot.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    rec.status = resp.status().as_u16();
    shared.observer.record(rec);
    resp
}

/// Elasticsearch's answer to missing or wrong credentials (status 401,
/// `security_exception`, `WWW-Authenticate` listing the realms' schemes).
fn unauthorized(reason: String) -> Response {
    let challenges = [
        "Basic realm=\"security\", charset=\"UTF-8\"",
        "Bearer realm=\"security\"",
        "ApiKey",
    ];
    let header_value = serde_json::json!({ "WWW-Authenticate": challenges });
    let err = EsError::new(401, "security_exception", reason).with("header", header_value);
    let mut resp = err.into_response();
    for c in challenges {
        if let Ok(v) = HeaderValue::from_str(c) {
            resp.headers_mut().append(header::WWW_AUTHENTICATE, v);
        }
    }
    resp
}

/// Security: Basic or ApiKey credentials on every API call when configured.
/// (TLS is not offered: tests run over plain HTTP on loopback.)
pub async fn auth(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if !shared.config.security_enabled() || path.starts_with("/_test") {
        return next.run(req).await;
    }
    let uri = path.to_string();
    let Some(value) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return unauthorized(format!(
            "missing authentication credentials for REST request [{uri}]"
        ));
    };
    let (scheme, cred) = value.split_once(' ').unwrap_or((value, ""));
    let cred = cred.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(cred)
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        let Some((user, pass)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
            return unauthorized(format!(
                "missing authentication credentials for REST request [{uri}]"
            ));
        };
        match &shared.config.basic_auth {
            Some((u, p)) if u == user && p == pass => next.run(req).await,
            _ => unauthorized(format!(
                "unable to authenticate user [{user}] for REST request [{uri}]"
            )),
        }
    } else if scheme.eq_ignore_ascii_case("apikey") {
        if shared.config.api_keys.iter().any(|k| k.encoded() == cred) {
            next.run(req).await
        } else {
            unauthorized(
                "unable to authenticate with provided credentials and anonymous access is not allowed for this request"
                    .to_string(),
            )
        }
    } else {
        unauthorized(format!(
            "missing authentication credentials for REST request [{uri}]"
        ))
    }
}

/// Whole-request faults and delays (not on `/_test`).
pub async fn faults(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path.starts_with("/_test") {
        return next.run(req).await;
    }
    let is_bulk = path == "/_bulk" || path.ends_with("/_bulk");
    if let Some(d) = shared.faults.delay(is_bulk) {
        tokio::time::sleep(d).await;
    }
    // 413 on Content-Length before reading the body, like http.max_content_length.
    let limit = shared.max_content_length();
    let gz = crate::body::is_gzip(req.headers());
    if let Some(len) = content_length(req.headers()) {
        if len > limit && !gz {
            let mut resp = crate::body::too_long(len, limit).into_response();
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return resp;
        }
    }
    if let Some(status) = shared.faults.take_request_fault(is_bulk) {
        return injected_request_error(status);
    }
    next.run(req).await
}

/// The answer of an injected whole-request fault.
pub fn injected_request_error(status: u16) -> Response {
    match status {
        429 => EsError::new(
            429,
            "es_rejected_execution_exception",
            "rejected execution of coordinating operation [coordinating_and_primary_bytes=107374182, replica_bytes=0, all_bytes=107374182, coordinating_operation_bytes=1024, max_coordinating_and_primary_bytes=107374182]",
        )
        .into_response(),
        503 => EsError::new(
            503,
            "cluster_block_exception",
            "blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];",
        )
        .into_response(),
        // A 502 comes from a proxy in front of Elasticsearch, never from
        // Elasticsearch itself: plain text and no X-Elastic-Product header.
        502 => {
            let mut resp = (StatusCode::BAD_GATEWAY, "Bad Gateway").into_response();
            resp.extensions_mut().insert(FromProxy);
            resp
        }
        500 => EsError::new(500, "illegal_state_exception", "injected internal server error").into_response(),
        other => {
            let status = StatusCode::from_u16(other).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            EsError::new(status.as_u16(), "exception", format!("injected failure with status [{other}]")).into_response()
        }
    }
}

//! `/metrics`, `/health` and `/ready` on one small HTTP server.
//!
//! `/health` answers 200 while the process runs (a liveness probe must not restart a shipper
//! that waits for Elasticsearch: waiting is its job). `/ready` answers 200 while the shipper
//! delivers, 503 with the reason before Elasticsearch was reached and while delivery stalls
//! (see [`super::readiness`]).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use super::readiness::Readiness;

#[derive(Clone)]
struct AppState {
    prometheus: PrometheusHandle,
    ready: Arc<Readiness>,
}

pub(crate) fn router(prometheus: PrometheusHandle, ready: Arc<Readiness>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready_handler))
        .with_state(AppState { prometheus, ready })
}

/// Binds `addr` now (so a taken port stops the shipper at start) and serves until `shutdown`.
pub(crate) async fn serve(
    addr: SocketAddr,
    prometheus: PrometheusHandle,
    ready: Arc<Readiness>,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on SHIPPER_METRICS_ADDR {addr}: {e}"))?;
    let app = router(prometheus, ready);
    Ok(tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "metrics server stopped");
        }
    }))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.prometheus.render(),
    )
}

async fn health() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

async fn ready_handler(State(state): State<AppState>) -> impl IntoResponse {
    match state.ready.verdict() {
        Ok(()) => (StatusCode::OK, Json(serde_json::json!({ "ready": true }))),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "ready": false, "reason": reason })),
        ),
    }
}

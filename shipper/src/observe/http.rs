//! `/metrics`, `/health` and `/ready` on one small HTTP server.
//!
//! `/health` answers 200 while the process runs and its reading loop turns (a liveness probe
//! must not restart a shipper that waits for Elasticsearch: waiting is its job; but a reader
//! stuck in a system call, on a hung network filesystem, ships nothing while everything else
//! looks fine, and only a restart helps). `/ready` answers 200 while the shipper delivers,
//! 503 with the reason before Elasticsearch was reached and while delivery stalls (see
//! [`super::readiness`]).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::input::file_server::InputStats;

/// A reading loop that has not turned for this long is stuck: its loop turns at least every
/// poll interval (250 ms) when idle, and per file when busy.
const READER_STUCK_AFTER: std::time::Duration = std::time::Duration::from_secs(60);
use super::readiness::Readiness;

#[derive(Clone)]
struct AppState {
    prometheus: PrometheusHandle,
    ready: Arc<Readiness>,
    input: Arc<InputStats>,
}

pub(crate) fn router(
    prometheus: PrometheusHandle,
    ready: Arc<Readiness>,
    input: Arc<InputStats>,
) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready_handler))
        .with_state(AppState {
            prometheus,
            ready,
            input,
        })
}

/// Binds `addr` now (so a taken port stops the shipper at start) and serves until `shutdown`.
pub(crate) async fn serve(
    addr: SocketAddr,
    prometheus: PrometheusHandle,
    ready: Arc<Readiness>,
    input: Arc<InputStats>,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on SHIPPER_METRICS_ADDR {addr}: {e}"))?;
    let app = router(prometheus, ready, input);
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
    let mut body = state.prometheus.render();
    state.input.files.render(&mut body);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let (status, body) = health_answer(state.input.reader_still_for());
    (status, Json(body))
}

/// `/health` for a reading loop that last turned `still` ago.
fn health_answer(still: std::time::Duration) -> (StatusCode, serde_json::Value) {
    let version = env!("CARGO_PKG_VERSION");
    if still >= READER_STUCK_AFTER {
        let reason = format!("the reading loop has not turned for {}s", still.as_secs());
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "status": "stuck", "reason": reason, "version": version }),
        );
    }
    (
        StatusCode::OK,
        serde_json::json!({ "status": "ok", "version": version }),
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn health_fails_when_the_reading_loop_stopped_turning() {
        assert_eq!(health_answer(Duration::from_millis(250)).0, StatusCode::OK);
        let (status, body) = health_answer(READER_STUCK_AFTER + Duration::from_secs(1));
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], "stuck");
        let stats = InputStats::default();
        stats.reader_turned();
        assert!(stats.reader_still_for() < READER_STUCK_AFTER);
    }
}

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
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::input::file_server::InputStats;

use super::readiness::Readiness;

#[derive(Clone)]
struct AppState {
    prometheus: PrometheusHandle,
    ready: Arc<Readiness>,
    input: Arc<InputStats>,
    /// A reading loop that has not turned for this long is stuck
    /// (`SHIPPER_HEALTH_STUCK_AFTER`): it turns at least every poll interval (250 ms) when
    /// idle, per file when busy, and every 100 ms while it waits for the output.
    stuck_after: Duration,
}

pub(crate) fn router(
    prometheus: PrometheusHandle,
    ready: Arc<Readiness>,
    input: Arc<InputStats>,
    stuck_after: Duration,
) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready_handler))
        .with_state(AppState {
            prometheus,
            ready,
            input,
            stuck_after,
        })
}

/// Binds `addr` now (so a taken port stops the shipper at start) and serves until `shutdown`.
pub(crate) async fn serve(
    addr: SocketAddr,
    prometheus: PrometheusHandle,
    ready: Arc<Readiness>,
    input: Arc<InputStats>,
    stuck_after: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on SHIPPER_METRICS_ADDR {addr}: {e}"))?;
    let app = router(prometheus, ready, input, stuck_after);
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
    let (status, body) = health_answer(state.input.reader_still_for(), state.stuck_after);
    (status, Json(body))
}

/// `/health` for a reading loop that last turned `still` ago.
fn health_answer(still: Duration, stuck_after: Duration) -> (StatusCode, serde_json::Value) {
    let version = env!("CARGO_PKG_VERSION");
    if still >= stuck_after {
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

    #[test]
    fn health_fails_when_the_reading_loop_stopped_turning() {
        let stuck_after = Duration::from_secs(60);
        assert_eq!(
            health_answer(Duration::from_millis(250), stuck_after).0,
            StatusCode::OK
        );
        let (status, body) = health_answer(stuck_after + Duration::from_secs(1), stuck_after);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], "stuck");
        let stats = InputStats::default();
        stats.reader_turned();
        assert!(stats.reader_still_for() < stuck_after);
    }
}

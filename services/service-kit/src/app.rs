//! The shared service skeleton: configuration, standard routes, layers, serving and
//! graceful shutdown, so that each service's `main` only declares its own routes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::sensitive_headers::{
    SetSensitiveRequestHeadersLayer, SetSensitiveResponseHeadersLayer,
};
use tower_http::timeout::TimeoutLayer;

use crate::config::{self, LogConfig, ServerConfig};
use crate::error::ServiceError;
use crate::line::ServiceIdentity;
use crate::logging::{self, LogHandle};
use crate::outgoing::DependencyClient;
use crate::panic;
use crate::request_layer::{self, HEALTH_PATH};
use crate::schema;
use crate::server;

const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// What a service says about itself.
#[derive(Debug, Clone, Copy)]
pub struct ServiceInfo {
    /// `service.name`, also the log file name.
    pub name: &'static str,
    /// `service.version`.
    pub version: &'static str,
    /// Port used when `PORT` is not set.
    pub default_port: u16,
}

/// What a service's routes may use: the logger, a client for other services, and whether
/// to serve the demonstration endpoints.
#[derive(Debug, Clone)]
pub struct Kit {
    /// The service.
    pub info: ServiceInfo,
    /// The logger.
    pub log: LogHandle,
    /// Client for calls to other services.
    pub client: DependencyClient,
    /// Serve `/app-error`, `/business-error` and `/system-error` (`DEMO_ENDPOINTS`): each
    /// service adds them only when this is set, so that nobody who can reach a production
    /// port can raise an error burst and page the on-call.
    pub demo_endpoints: bool,
    server: ServerConfig,
    started: Instant,
}

impl Kit {
    /// A kit around an already running logger.
    pub fn new(
        info: ServiceInfo,
        log: LogHandle,
        client: DependencyClient,
        server: ServerConfig,
    ) -> Self {
        Self {
            info,
            log,
            client,
            demo_endpoints: server.demo_endpoints,
            server,
            started: Instant::now(),
        }
    }
}

/// Adds `/health`, the fallback and the standard layers to a service's routes.
///
/// Inside the request layer (so each produces an access line): a body larger than
/// `MAX_BODY_BYTES` is answered 413, at once when its `Content-Length` says so, whichever
/// route it is sent to (tower-http's limit), and when it is read otherwise (axum's limit,
/// which every body extractor obeys, so no handler buffers more); a request not answered
/// within `REQUEST_TIMEOUT_MS` is answered 408, its handler dropped.
pub fn router(kit: &Kit, routes: Router) -> Router {
    panic::install_hook();
    let health_kit = Arc::new(kit.clone());
    routes
        .route(
            HEALTH_PATH,
            get(move || {
                let kit = Arc::clone(&health_kit);
                async move {
                    Json(serde_json::json!({
                        "service": kit.info.name,
                        "version": kit.info.version,
                        "status": "up",
                        "uptime_seconds": kit.started.elapsed().as_secs(),
                        "log_lines_dropped": kit.log.dropped_lines(),
                    }))
                }
            }),
        )
        .fallback(|uri: axum::http::Uri| async move {
            ServiceError::not_found(format!("route {}", uri.path()))
        })
        .layer(
            ServiceBuilder::new()
                .layer(SetSensitiveRequestHeadersLayer::new([
                    header::AUTHORIZATION,
                    header::PROXY_AUTHORIZATION,
                    header::COOKIE,
                ]))
                .layer(SetSensitiveResponseHeadersLayer::new([header::SET_COOKIE]))
                .layer(axum::middleware::from_fn(request_layer::request_context))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    kit.server.request_timeout,
                ))
                // The limit's answer has a body type of its own; the layers above want axum's.
                .map_response(|r: axum::http::Response<_>| r.map(axum::body::Body::new))
                .layer(RequestBodyLimitLayer::new(kit.server.max_body_bytes))
                .layer(DefaultBodyLimit::max(kit.server.max_body_bytes))
                .layer(CatchPanicLayer::custom(panic::panic_response)),
        )
}

/// Runs a service: reads the environment, starts logging, builds the routes with `build`,
/// serves until SIGTERM or SIGINT, then flushes the log.
pub async fn run<F>(info: ServiceInfo, build: F) -> anyhow::Result<()>
where
    F: FnOnce(&Kit) -> anyhow::Result<Router>,
{
    let log_config = LogConfig::from_env().context("reading the logging configuration")?;
    let identity = ServiceIdentity {
        name: info.name.to_owned(),
        version: info.version.to_owned(),
        environment: log_config.environment.clone(),
        host: config::host_name(),
    };
    let log = logging::init(&identity, &log_config).context("starting the logger")?;
    run_with_logger(info, log, build).await
}

/// Runs a service whose logger the caller installed as the global subscriber: as [`run`],
/// but without starting the service's own logger, so the same routes, layers and server can
/// be measured under another logger (`benches/logging_overhead.rs`). `log` is what the kit
/// and `/health` report; it is flushed at the end.
pub async fn run_with_logger<F>(info: ServiceInfo, log: LogHandle, build: F) -> anyhow::Result<()>
where
    F: FnOnce(&Kit) -> anyhow::Result<Router>,
{
    let log_config = LogConfig::from_env().context("reading the logging configuration")?;
    let server_config = ServerConfig::from_env().context("reading the server configuration")?;
    let result = serve(
        info,
        log.clone(),
        server_config,
        &log_config.environment,
        build,
    )
    .await;
    if let Err(error) = &result {
        tracing::error!(
            { schema::LOG_CATEGORY } = schema::Category::SystemError.as_str(),
            { schema::ERROR_MESSAGE } = crate::error::cause_chain(error.as_ref()),
            "service stopped on an error"
        );
    }
    log.flush(SHUTDOWN_FLUSH_TIMEOUT);
    result
}

async fn serve<F>(
    info: ServiceInfo,
    log: LogHandle,
    server_config: ServerConfig,
    environment: &str,
    build: F,
) -> anyhow::Result<()>
where
    F: FnOnce(&Kit) -> anyhow::Result<Router>,
{
    let addr = SocketAddr::new(
        server_config.bind,
        server_config.port.unwrap_or(info.default_port),
    );
    // Half the time after which the other services close an idle kept-alive connection.
    let pool_idle = server_config.header_read_timeout / 2;
    let client = DependencyClient::new(server_config.dependency_timeout, pool_idle)
        .context("building the HTTP client")?;
    let kit = Kit::new(info, log, client, server_config.clone());
    let app = router(&kit, build(&kit)?);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    tracing::info!(
        { schema::SERVER_ADDRESS } = %bound.ip(),
        { schema::SERVER_PORT } = u64::from(bound.port()),
        "{} {} listening on {bound}",
        info.name,
        info.version
    );
    if kit.demo_endpoints && environment.trim().eq_ignore_ascii_case(config::PRODUCTION) {
        tracing::warn!(
            "{}=1 in production: the demonstration error endpoints are served",
            config::ENV_DEMO_ENDPOINTS
        );
    }
    server::serve(listener, app, &server_config, shutdown_signal()).await;
    tracing::info!("{} stopped", info.name);
    Ok(())
}

/// Resolves on SIGTERM (what `docker stop` sends) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot listen for SIGINT: {error}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!("cannot listen for SIGTERM: {error}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received, finishing requests in flight");
}

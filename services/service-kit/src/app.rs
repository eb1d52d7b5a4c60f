//! The shared service skeleton: configuration, standard routes, layers, serving and
//! graceful shutdown, so that each service's `main` only declares its own routes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::http::header;
use axum::routing::get;
use axum::{Json, Router};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::{
    SetSensitiveRequestHeadersLayer, SetSensitiveResponseHeadersLayer,
};

use crate::config::{self, LogConfig};
use crate::error::ServiceError;
use crate::line::ServiceIdentity;
use crate::logging::{self, LogHandle};
use crate::outgoing::DependencyClient;
use crate::panic;
use crate::request_layer::{self, HEALTH_PATH};
use crate::schema;

/// Listening port; overrides the service's default.
pub const ENV_PORT: &str = "PORT";
/// Listening address (default `0.0.0.0`, all interfaces, as a container needs).
pub const ENV_BIND_ADDR: &str = "BIND_ADDR";
/// Time limit for calls to other services, in milliseconds (default 2000).
pub const ENV_DEPENDENCY_TIMEOUT_MS: &str = "DEPENDENCY_TIMEOUT_MS";

const DEFAULT_DEPENDENCY_TIMEOUT: Duration = Duration::from_secs(2);
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

/// What a service's routes may use: the logger and a client for other services.
#[derive(Debug, Clone)]
pub struct Kit {
    /// The service.
    pub info: ServiceInfo,
    /// The logger.
    pub log: LogHandle,
    /// Client for calls to other services.
    pub client: DependencyClient,
    started: Instant,
}

impl Kit {
    /// A kit around an already running logger.
    pub fn new(info: ServiceInfo, log: LogHandle, client: DependencyClient) -> Self {
        Self {
            info,
            log,
            client,
            started: Instant::now(),
        }
    }
}

/// Adds `/health`, the fallback and the standard layers to a service's routes.
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
    let result = serve(info, log.clone(), build).await;
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

async fn serve<F>(info: ServiceInfo, log: LogHandle, build: F) -> anyhow::Result<()>
where
    F: FnOnce(&Kit) -> anyhow::Result<Router>,
{
    let addr = listen_addr(info.default_port)?;
    let timeout = match env_nonempty(ENV_DEPENDENCY_TIMEOUT_MS) {
        Some(v) => Duration::from_millis(
            v.parse()
                .with_context(|| format!("{ENV_DEPENDENCY_TIMEOUT_MS}={v:?} is not a number"))?,
        ),
        None => DEFAULT_DEPENDENCY_TIMEOUT,
    };
    let client = DependencyClient::new(timeout).context("building the HTTP client")?;
    let kit = Kit::new(info, log, client);
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
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")?;
    tracing::info!("{} stopped", info.name);
    Ok(())
}

fn env_nonempty(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

fn listen_addr(default_port: u16) -> anyhow::Result<SocketAddr> {
    let ip: IpAddr = match env_nonempty(ENV_BIND_ADDR) {
        Some(v) => v
            .trim()
            .parse()
            .with_context(|| format!("{ENV_BIND_ADDR}={v:?} is not an IP address"))?,
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };
    let port: u16 = match env_nonempty(ENV_PORT) {
        Some(v) => v
            .trim()
            .parse()
            .with_context(|| format!("{ENV_PORT}={v:?} is not a port number"))?,
        None => default_port,
    };
    Ok(SocketAddr::new(ip, port))
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

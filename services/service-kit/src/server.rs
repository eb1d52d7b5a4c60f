//! Accepting and serving connections within bounds, so that no client can hold the service.
//!
//! `axum::serve` has no header-read timeout, no idle timeout and no connection limit: a
//! client sending half a request held its connection open for good, and enough of them made
//! `/health` fail (slowloris). Here each stage of a connection is bounded:
//! - at most `MAX_CONNECTIONS` are served at once; further ones wait in the kernel's accept
//!   queue until one ends, so a flood delays new requests instead of exhausting the process;
//! - a request's head must arrive within `HEADER_READ_TIMEOUT_MS` (hyper's own timer,
//!   which also closes a kept-alive connection that sends no next request in that time);
//! - a connection that sends or accepts no byte for `IDLE_TIMEOUT_MS` (a stalled body, a
//!   client that does not read its answer) is closed (`tokio-io-timeout`);
//! - the request itself is bounded by the router's timeout layer (see `app::router`).
//!
//! On SIGTERM the listener closes, connections finish their request in flight (HTTP/1
//! graceful shutdown), and those still open after the request timeout are dropped.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_io_timeout::TimeoutStream;

use crate::config::ServerConfig;
use crate::schema::{self, Category};

/// Pause after an accept error that is not about one connection (too many open files):
/// retrying at once would spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Serves `app` on `listener` until `shutdown` resolves, then drains.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    config: &ServerConfig,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                // The semaphore is never closed.
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    if !is_per_connection(&error) {
                        tracing::warn!(
                            { schema::LOG_CATEGORY } = Category::SystemError.as_str(),
                            { schema::ERROR_MESSAGE } = %error,
                            "cannot accept connections"
                        );
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small answers: do not wait to fill a segment.
        let _ = stream.set_nodelay(true);
        let mut stream = TimeoutStream::new(stream);
        stream.set_read_timeout(Some(config.idle_timeout));
        stream.set_write_timeout(Some(config.idle_timeout));
        let io = TokioIo::new(Box::pin(stream));
        let connection = http.serve_connection(io, TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // An error here is a client that went away, timed out or sent garbage: the
            // request's own access line (if it got that far) already says what happened.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    let drain = config.request_timeout + Duration::from_secs(1);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(drain) => {
            tracing::warn!("connections still open {} ms after shutdown began were dropped", drain.as_millis());
        }
    }
}

/// Errors of `accept` that concern one connection only (it was reset before we took it).
fn is_per_connection(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

//! Shared logging and HTTP plumbing of the didban services.
//!
//! Every service writes the same structured log lines: one ECS JSON object per line, with a
//! Tehran-time `@timestamp`, a `transaction.id` that follows the request across services, a
//! `log.category` that says whose problem the line is ([`Category`]), and the stack trace of
//! bugs and infrastructure failures. This crate is the one place where that format, the
//! error-to-category mapping and the request plumbing are defined, so the services cannot
//! drift apart; the field names themselves come from the `didban-schema` crate.
//!
//! A service is its routes plus one call:
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use service_kit::{ServiceError, ServiceInfo};
//!
//! const INFO: ServiceInfo = ServiceInfo { name: "example", version: "0.1.0", default_port: 8080 };
//!
//! async fn refuse() -> Result<&'static str, ServiceError> {
//!     Err(ServiceError::unprocessable("LimitExceeded", "amount above the limit"))
//! }
//!
//! #[tokio::main]
//! async fn main() -> anyhow::Result<()> {
//!     service_kit::run(INFO, |_kit| Ok(Router::new().route("/", get(|| async { "ok" }))
//!         .route("/refuse", get(refuse)))).await
//! }
//! ```
//!
//! Logging path: handler code calls `tracing` macros; [`JsonLayer`] formats the event on the
//! request thread into a reused buffer and hands the line to a bounded channel; a writer
//! thread appends it to `${LOG_DIR}/<service>.log`, rotating by rename. A full channel drops
//! the line and counts it; the count is reported in the log and in `/health`.

pub mod app;
pub mod config;
pub mod error;
pub mod json;
pub mod layer;
pub mod line;
pub mod logging;
pub mod outgoing;
pub mod panic;
pub mod redact;
pub mod request_layer;
pub mod rotation;
pub mod schema;
mod server;
pub mod timestamp;
pub mod transaction;
pub mod writer;

pub use app::{router, run, Kit, ServiceInfo};
pub use error::{ErrorReport, ServiceError};
pub use layer::JsonLayer;
pub use logging::LogHandle;
pub use outgoing::DependencyClient;
pub use schema::Category;
pub use transaction::TransactionId;
#[cfg(feature = "testing")]
pub mod testing;

//! An Elasticsearch 9.2-compatible HTTP server, in memory, for tests and
//! benchmarks of code that writes to Elasticsearch.
//!
//! It speaks the parts of the REST API a log shipper and an alerting rule use
//! (`GET /`, component and index templates, ILM policies, data streams and
//! their failure store, `_bulk`, `_search`, `_count`), answers with
//! Elasticsearch's shapes and error types, refuses what Elasticsearch refuses,
//! and injects faults on demand: per-item 429/5xx, whole-request statuses,
//! 413 above a size, delays, dropped and refused connections, mapping errors
//! and failure-store redirections; and, as a hostile proxy in front of it
//! would, huge or gzip-bomb `_bulk` answers and reordered, short or long item
//! lists (`hostile`). A blackhole mode answers `_bulk` without storing
//! anything, for throughput benchmarks.
//!
//! ```no_run
//! use es_test_server::{EsTestServer, ServerConfig};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let server = EsTestServer::start(ServerConfig::default()).await?;
//! let client = reqwest::Client::new();
//! client
//!     .post(format!("{}/_bulk", server.url()))
//!     .header("content-type", "application/x-ndjson")
//!     .body("{\"create\":{\"_index\":\"logs-app-default\"}}\n{\"@timestamp\":\"2026-11-26T10:00:00Z\",\"message\":\"hi\"}\n")
//!     .send()
//!     .await?;
//! assert_eq!(server.documents("logs-app-default").len(), 1);
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Not modelled: TLS, text analysis and scoring, ingest pipelines (only
//! `_none` and the built-in `logs@default-pipeline` are accepted, as no-ops),
//! rollover conditions, aliases, scripts. See the crate README for the
//! control endpoints. Where things live: `api` (routes and metadata
//! handlers), `bulk` and `search` (their endpoints and engines), `cluster`
//! (the state and every operation on it, one concern a file; its module doc
//! has the map), `faults`, `middleware`, `observe`, `control` (`/_test`).

pub mod api;
pub mod body;
pub mod bulk;
pub mod cluster;
pub mod config;
pub mod control;
pub mod dates;
pub mod error;
pub mod faults;
pub mod filter_path;
pub mod hostile;
pub mod mapping;
pub mod middleware;
pub mod observe;
pub mod search;
pub mod server;
pub mod wildcard;

pub use cluster::Document;
pub use config::{ApiKey, BlackholeConfig, ServerConfig, DEFAULT_MAX_CONTENT_LENGTH};
pub use error::EsError;
pub use faults::{FaultState, Faults, HostileAnswer, ItemFault, RequestFault, Scope};
pub use observe::{BulkStats, RequestRecord};
pub use server::{EsTestServer, ServerError, ThreadedServer};

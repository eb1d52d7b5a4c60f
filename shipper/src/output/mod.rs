//! Elasticsearch output: `_bulk` delivery with per-document verdicts, retries, dead letters.
//!
//! The output takes [`Batch`](crate::batch::Batch)es (NDJSON bodies of `create` actions with
//! deterministic `_id`s) and acknowledges each document once it is safe: created (201),
//! already there (409 on `create`), kept in the failure store, or written to the dead-letter
//! file. Everything else is retried with capped, jittered backoff, so no document is dropped
//! and none blocks the others.
//!
//! ```no_run
//! # async fn example(
//! #     batches: tokio::sync::mpsc::Receiver<shipper::batch::Batch>,
//! #     acks: std::sync::Arc<dyn shipper::batch::Acknowledge>,
//! # ) -> anyhow::Result<()> {
//! use shipper::output::{ElasticsearchOutput, OutputConfig};
//! let config = OutputConfig::new(
//!     vec!["http://127.0.0.1:9200".parse()?],
//!     "/var/lib/shipper/dead-letters".into(),
//! );
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! let output = ElasticsearchOutput::new(config)?;
//! let stats = output.stats(); // for the summary line
//! output.prepare(&shutdown).await?; // wait for Elasticsearch, install the templates
//! output.run(batches, acks, shutdown).await?;
//! # drop(stats);
//! # Ok(()) }
//! ```
//!
//! Modules, in the order a batch meets them: [`replay`] (only for documents that may
//! already be stored: look them up first), [`request_builder`] (body, gzip), [`client`]
//! (HTTP, nodes in [`nodes`]), [`response`] (parsing), [`retry`] (every verdict),
//! [`service`] (one attempt), [`sink`] (the delivery loop), [`dead_letter`]; at start
//! [`health`] and [`templates`]; throughout [`telemetry`].

pub(crate) mod client;
pub(crate) mod config;
pub(crate) mod dead_letter;
pub(crate) mod discovery;
pub(crate) mod health;
pub(crate) mod log_throttle;
pub(crate) mod nodes;
pub(crate) mod replay;
pub(crate) mod request_builder;
pub(crate) mod response;
pub(crate) mod retry;
pub(crate) mod service;
pub(crate) mod sink;
pub(crate) mod telemetry;
pub(crate) mod templates;

pub use config::{Auth, OutputConfig};
pub use health::StartupError;
pub use sink::ElasticsearchOutput;
pub use telemetry::OutputStatsSnapshot;
pub use telemetry::{describe_metrics, OutputStats};

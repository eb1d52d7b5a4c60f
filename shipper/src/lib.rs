//! didban's log shipper: tails the services' JSON log files into Elasticsearch data streams.
//!
//! The data flows through the modules in this order, and acknowledgements flow back:
//!
//! ```text
//! input::paths ──> input::file_server ──> transform (decode, enrich, route, id)
//!    (globs,           (identity, reading,        │
//!     notify)           checkpoints)              v
//!        ^                                   batch::Batcher ──> output (bulk, retry,
//!        └──── input::acknowledgements <───────────────────────  dead letters)
//! ```
//!
//! Every document's `_id` is derived from the identity of the file it came from and the byte
//! offset of its line, and every action is a `create`; a checkpoint only moves past lines whose
//! documents Elasticsearch acknowledged (or that went to the dead-letter file). Together these
//! make a re-sent batch harmless: Elasticsearch answers 409 for what it already has, which
//! counts as delivered. While Elasticsearch is slow or down, a byte budget pauses reading, so
//! memory stays bounded and the log files themselves are the buffer.

pub mod batch;
pub mod config;
pub mod input;
pub mod observe;
pub mod output;
pub mod pipeline;
pub mod transform;

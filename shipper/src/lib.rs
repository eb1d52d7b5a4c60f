//! didban's log shipper: tails the services' JSON log files into Elasticsearch data streams.
//!
//! The data flows through the modules in this order, and acknowledgements flow back:
//!
//! ```text
//! input::paths ─> input::file_server ──LineSink──> encode::Encoder ──> batch ──> output
//!   (globs,        (reads; asks           (decode, enrich,      (NDJSON     (bulk, retry,
//!    notify)        input::identity        route, id)            bodies)     dead letters)
//!                   which file is which)                                        │
//!        input::checkpoint <── input::acknowledgements <──────────────────────────┘
//! ```
//!
//! `pipeline.rs` builds and wires these stages. Where to look first: which file is which is
//! decided in `input::identity::decide`; a line becomes a document in `encode::enrich`; the
//! settings are declared in `config`.
//!
//! Every document's `_id` is derived from the identity of the file it came from and the byte
//! offset of its line, and every action is a `create`; a checkpoint only moves past lines whose
//! documents Elasticsearch acknowledged (or that went to the dead-letter file). Together these
//! make a re-sent batch harmless: Elasticsearch answers 409 for what it already has, which
//! counts as delivered. While Elasticsearch is slow or down, a byte budget pauses reading, so
//! memory stays bounded and the log files themselves are the buffer.

pub mod batch;
pub mod commands;
pub mod config;
pub mod encode;
pub mod input;
pub mod observe;
pub mod output;
pub mod pipeline;
pub mod reload;

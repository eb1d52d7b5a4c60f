//! Encode: from a line to a `_bulk` item in the batch in progress: decode, enrich, route,
//! identify, batch.
//!
//! [`stage::Encoder`] is the stage the pipeline builds: the reading loop hands it every line
//! (through [`crate::input::line_sink::LineSink`], on the reading thread, without a copy),
//! and it hands full or due batches to the output. The line is never turned into a JSON
//! tree. [`decode`] checks that it is one JSON object and notes the few top-level keys that
//! matter (the service name, which fields already exist); [`enrich`] then splices the
//! shipper's fields in before the closing brace, with the `_id` from [`doc_id`] and the data
//! stream from [`route`] (and, for a file in kubelet's layout, the pod and container from
//! [`kubernetes`]). A line that is not a JSON object, or not UTF-8, is shipped as a
//! `message` with tags saying why. [`tap`] lets the alert rules see each document.

pub(crate) mod decode;
pub(crate) mod doc_id;
pub(crate) mod enrich;
pub(crate) mod kubernetes;
pub(crate) mod route;
pub(crate) mod stage;
pub(crate) mod tap;

pub use enrich::{Encoded, Enricher, SourceFile};
pub(crate) use stage::{EncodeConfig, Encoder};
pub(crate) use tap::DocumentTap;

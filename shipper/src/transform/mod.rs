//! From a line to a `_bulk` item: decode, enrich, route, identify.
//!
//! The line is never turned into a JSON tree. [`decode`] checks that it is one JSON object
//! and notes the few top-level keys that matter (the service name, which fields already
//! exist); [`enrich`] then splices the shipper's fields in before the closing brace. A line
//! that is not a JSON object, or not UTF-8, is shipped as a `message` with tags saying why.

pub mod decode;
pub mod doc_id;
pub mod enrich;
pub mod route;
pub mod tap;

pub use enrich::{Encoded, Enricher, SourceFile};
pub use tap::{DocumentTap, TappedDocument};

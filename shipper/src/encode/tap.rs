//! A tap on the document stream: lets alert rules see each document as it is read, so an
//! alert can leave within a second of its line being written, without a round trip through
//! Elasticsearch.
//!
//! The view and the trait are the alerting crate's small `feed` contract (nothing of its
//! engine): the encoder fills the view with slices of the line it encodes, allocation-free.

pub(crate) use alerting::feed::{DocumentTap, TappedDocument};

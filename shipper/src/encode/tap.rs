//! A tap on the document stream: lets alert rules see each document as it is read, so an
//! alert can leave within a second of its line being written, without a round trip through
//! Elasticsearch.
//!
//! The tap runs on the reading thread, once per document: an implementation must only record
//! what it needs and return (e.g. push into a bounded queue); never block, never do I/O.

/// What a tap sees of one document.
#[derive(Debug, Clone, Copy, Default)]
pub struct TappedDocument<'a> {
    /// The dataset the document is routed to (`payment`, `loan_resource`, ...).
    pub dataset: &'a str,
    pub service_name: Option<&'a str>,
    pub category: Option<&'a str>,
    pub level: Option<&'a str>,
    pub message: Option<&'a str>,
    pub transaction_id: Option<&'a str>,
    pub error_type: Option<&'a str>,
    pub error_message: Option<&'a str>,
    /// The line's own `@timestamp`, as written.
    pub timestamp: Option<&'a str>,
    /// The line was not a JSON object (shipped as a tagged `message`).
    pub unparsed: bool,
}

/// Receives every document read, on the reading thread.
pub trait DocumentTap: Send {
    fn observe(&mut self, doc: &TappedDocument<'_>);
}

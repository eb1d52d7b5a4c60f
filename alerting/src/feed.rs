//! The narrow interface between a document stream and the alert rules: the view of one log
//! document the rules read, and the trait of whatever receives it on the reading thread.
//!
//! Both live here, in a module that knows nothing of the engine (no queue, no rule, no
//! runtime), so a reader of documents depends on this contract and on nothing else of the
//! alerting crate. The view is defined by its consumer because it is exactly what the rules
//! can filter on and show; the producer (the shipper's encoder) fills it with borrowed
//! slices of the line it is encoding, so the tap costs no allocation per document. The
//! engine's implementation is [`AlertTap`](crate::AlertTap).
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

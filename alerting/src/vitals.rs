//! The narrow interface between the program that embeds the engine and the rules on that
//! program itself: how its delivery to Elasticsearch is doing.
//!
//! Like [`feed`](crate::feed) for documents, the contract is defined here by its consumer
//! (exactly what the rules read) and knows nothing of the engine, so the embedding program
//! depends on this trait alone. The engine reads it every half second from its own task:
//! an implementation must answer from counters it already keeps (atomics, a short lock),
//! never block on I/O, never allocate per line.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How the embedding program's delivery to Elasticsearch is doing.
pub trait Vitals: Send + Sync {
    /// When Elasticsearch last answered one of its requests with a status below 500 (any
    /// answer that shows the cluster is there: a 2xx, a 429, a 401...); `None` before the
    /// first. A transport error or a 5xx is no answer.
    fn last_elasticsearch_answer(&self) -> Option<Instant>;

    /// How long the oldest line read but not yet acknowledged has waited since it was
    /// read; `None` when every line read is acknowledged.
    fn oldest_unacknowledged(&self) -> Option<Duration>;

    /// Documents whose delivery is settled since the process started (stored, already
    /// there, in the failure store, or dead-lettered): grows whenever shipping makes
    /// progress.
    fn documents_settled(&self) -> u64;

    /// Documents written to the dead-letter file since the process started.
    fn dead_letters_written(&self) -> u64;

    /// Where the dead-letter files are, for the message.
    fn dead_letter_dir(&self) -> Option<PathBuf>;

    /// The last error seen talking to Elasticsearch (no secret in it), for the message.
    fn last_output_error(&self) -> Option<String>;
}

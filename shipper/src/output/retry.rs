//! Every retry decision of the output, in one place.
//!
//! Pure functions from "what Elasticsearch (or the network) said" to "what we do", so each
//! rule is unit-tested per status and error type, and the sink only executes verdicts.
//! The guiding rules:
//! - a document is never dropped silently: it is stored, recognised as already stored (409 on
//!   `create`), stored in the failure store, or written to the dead-letter file;
//! - what is about the cluster (overload, outage, credentials, blocks) is retried forever with
//!   capped, jittered backoff: the reader is paused by the memory budget meanwhile, the log
//!   files are the buffer;
//! - what is about one document (mapping, parsing, size) goes to the dead-letter file, so one
//!   bad document never blocks the others.

use std::time::Duration;

use rand::Rng;

/// What to do with a whole `_bulk` request, decided from its HTTP status alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestVerdict {
    /// The request was processed: look at each item.
    ReadItems,
    /// Send the whole batch again after a backoff.
    Retry(RetryReason),
    /// 413: the body is above `http.max_content_length`; send each half on its own.
    Split,
}

/// Why a whole request is retried; also the `reason` label of the retry metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryReason {
    /// No connection could be made (refused, DNS, reset before a response).
    Connect,
    /// The request or the response did not complete in time.
    Timeout,
    /// The connection broke while the response was being read, or another transport error.
    Transport,
    /// 429: the cluster is overloaded.
    TooManyRequests,
    /// 5xx.
    ServerError,
    /// 401/403: credentials rejected or missing privileges.
    Unauthorized,
    /// Another 4xx on the whole request (400, 404, ...).
    ClientError,
    /// A response we cannot use: not JSON, or not one result per item.
    BadResponse,
}

impl RetryReason {
    /// Metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            RetryReason::Connect => "connect",
            RetryReason::Timeout => "timeout",
            RetryReason::Transport => "transport",
            RetryReason::TooManyRequests => "429",
            RetryReason::ServerError => "5xx",
            RetryReason::Unauthorized => "unauthorized",
            RetryReason::ClientError => "4xx",
            RetryReason::BadResponse => "bad_response",
        }
    }

    /// Does this failure say the cluster could not be reached (rather than that it refused
    /// the request)? A request that failed so is tried again as soon as another one
    /// succeeds: that success proves the cluster is back. An overloaded cluster's 429 or
    /// time-out is not: retrying those at every other success would defeat their backoff.
    pub(crate) fn is_unreachable(self) -> bool {
        matches!(
            self,
            RetryReason::Connect | RetryReason::Transport | RetryReason::ServerError
        )
    }

    /// May Elasticsearch have stored some of the documents of a request that failed for this
    /// reason? If so, the batch is in the replay window: before it is sent again, its ids are
    /// looked up (see [`super::replay`]), because after a rollover a `create` of a stored
    /// `_id` is no longer refused.
    ///
    /// - `Connect`: no connection, nothing was sent. No.
    /// - `Timeout`, `Transport`: the request was (maybe wholly) sent and its answer did not
    ///   arrive; Elasticsearch does not stop a `_bulk` whose client went away. Yes.
    /// - 5xx: a gateway in front of Elasticsearch (Elastic Cloud's proxy, a load balancer)
    ///   answers 502/504 when the node it forwarded to died or did not answer in time, after
    ///   the node may have executed the request; Elastic's own clients retry 502, 503 and 504
    ///   as transient, which is what makes the retry a replay. Elasticsearch's own 500 can
    ///   come after shards executed their part, and a proxy's 503 cannot be told from a
    ///   node's. Nothing in a 5xx proves that nothing was stored, so yes: the cost is one
    ///   search before the next attempt.
    /// - 429: Elasticsearch's indexing pressure rejects a whole request on arrival, before
    ///   any shard sees it, and a proxy's rate limit does not forward it. No.
    /// - 401/403 and other 4xx: refused by security or the REST layer before execution. No.
    /// - A 2xx whose body cannot be used: the request was executed. Yes.
    pub(crate) fn may_have_been_processed(self) -> bool {
        match self {
            RetryReason::Timeout
            | RetryReason::Transport
            | RetryReason::ServerError
            | RetryReason::BadResponse => true,
            RetryReason::Connect
            | RetryReason::TooManyRequests
            | RetryReason::Unauthorized
            | RetryReason::ClientError => false,
        }
    }
}

/// Classifies the HTTP status of a whole `_bulk` response.
///
/// Whole-request 4xx other than 413 are retried, not dead-lettered: a 400 on the whole body
/// (a malformed request line, a wrong content type), a 401/403 (expired credentials, a revoked
/// API key, a role without `create_doc`), or a 404 (a proxy path that is wrong) say nothing
/// about the documents. Dead-lettering whole batches would turn an operator's mistake into
/// documents missing from the index; retrying with backoff, loudly logged and metered, keeps
/// them in the log files until the mistake is fixed, and nothing is lost.
pub(crate) fn classify_status(status: u16) -> RequestVerdict {
    match status {
        200..=299 => RequestVerdict::ReadItems,
        413 => RequestVerdict::Split,
        429 => RequestVerdict::Retry(RetryReason::TooManyRequests),
        401 | 403 => RequestVerdict::Retry(RetryReason::Unauthorized),
        400..=499 => RequestVerdict::Retry(RetryReason::ClientError),
        500..=599 => RequestVerdict::Retry(RetryReason::ServerError),
        // 1xx/3xx never answer a bulk request; whatever sent them is not Elasticsearch
        // speaking normally, so try again later rather than guess.
        _ => RequestVerdict::Retry(RetryReason::BadResponse),
    }
}

/// What to do with one item of a processed `_bulk` response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ItemVerdict {
    /// Stored.
    Created,
    /// 409 on `create`: an earlier attempt already stored it. Delivered.
    Duplicate,
    /// Stored in the data stream's failure store (`::failures`): delivered, but worth counting.
    FailureStore,
    /// Send this item again after a backoff.
    Retry(ItemRetryReason),
    /// This document will never be accepted as is: dead-letter file, then acknowledge.
    DeadLetter,
}

/// Why an item is retried; also the `reason` label of the item retry metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ItemRetryReason {
    /// 429 or `es_rejected_execution_exception`: a full write queue.
    Rejected,
    /// `circuit_breaking_exception`: memory pressure on a node.
    CircuitBreaker,
    /// 5xx: a shard unavailable, a node leaving, ...
    ServerError,
    /// 401/403: privileges or a write block on the index; about the cluster, not the document.
    Forbidden,
}

impl ItemRetryReason {
    /// Metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            ItemRetryReason::Rejected => "rejected",
            ItemRetryReason::CircuitBreaker => "circuit_breaker",
            ItemRetryReason::ServerError => "5xx",
            ItemRetryReason::Forbidden => "forbidden",
        }
    }
}

/// Classifies one item from its `status`, `error.type` and `failure_store` fields.
///
/// 401/403 on an item (`security_exception` for a role that may not write this data stream,
/// `cluster_block_exception` for a read-only index) are retried like the whole-request case:
/// they are fixed by an operator, after which the same documents are accepted.
pub(crate) fn classify_item(
    status: u16,
    error_type: Option<&str>,
    failure_store: Option<&str>,
) -> ItemVerdict {
    match error_type {
        Some("es_rejected_execution_exception") => {
            return ItemVerdict::Retry(ItemRetryReason::Rejected)
        }
        Some("circuit_breaking_exception") => {
            return ItemVerdict::Retry(ItemRetryReason::CircuitBreaker)
        }
        _ => {}
    }
    match status {
        200..=299 if failure_store == Some("used") => ItemVerdict::FailureStore,
        200..=299 => ItemVerdict::Created,
        409 if error_type == Some("version_conflict_engine_exception") => ItemVerdict::Duplicate,
        429 => ItemVerdict::Retry(ItemRetryReason::Rejected),
        401 | 403 => ItemVerdict::Retry(ItemRetryReason::Forbidden),
        500..=599 => ItemVerdict::Retry(ItemRetryReason::ServerError),
        // Any other 4xx is about the document (mapping, parsing, an illegal argument), and an
        // unexpected status could repeat forever: both go to the dead-letter file with the
        // answer, where a person can see them, instead of blocking the file behind them.
        _ => ItemVerdict::DeadLetter,
    }
}

/// Capped exponential backoff with full jitter.
///
/// Full jitter (a uniform delay between zero and the exponential bound) spreads the retries of
/// many shippers after a cluster restart, so they do not come back in lockstep and overload it
/// again; Logstash's backoff has no jitter and does exactly that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    pub(crate) initial: Duration,
    pub(crate) max: Duration,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Backoff { initial, max }
    }

    /// The upper bound of the delay before retry number `attempt` (0 for the first retry):
    /// `min(max, initial * 2^attempt)`.
    pub(crate) fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// A random delay in `[0, ceiling(attempt)]`.
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, &mut rand::rng())
    }

    /// Same as [`Backoff::delay`], with a given random source (for tests).
    pub(crate) fn delay_with(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling(attempt);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.random_range(0..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn success_statuses_mean_read_the_items() {
        assert_eq!(classify_status(200), RequestVerdict::ReadItems);
        assert_eq!(classify_status(201), RequestVerdict::ReadItems);
    }

    #[test]
    fn payload_too_large_splits_the_batch() {
        assert_eq!(classify_status(413), RequestVerdict::Split);
    }

    #[test]
    fn overload_and_server_errors_are_retried() {
        assert_eq!(
            classify_status(429),
            RequestVerdict::Retry(RetryReason::TooManyRequests)
        );
        for s in [500, 502, 503, 504] {
            assert_eq!(
                classify_status(s),
                RequestVerdict::Retry(RetryReason::ServerError)
            );
        }
    }

    #[test]
    fn whole_request_client_errors_are_retried_not_dead_lettered() {
        assert_eq!(
            classify_status(401),
            RequestVerdict::Retry(RetryReason::Unauthorized)
        );
        assert_eq!(
            classify_status(403),
            RequestVerdict::Retry(RetryReason::Unauthorized)
        );
        assert_eq!(
            classify_status(400),
            RequestVerdict::Retry(RetryReason::ClientError)
        );
        assert_eq!(
            classify_status(404),
            RequestVerdict::Retry(RetryReason::ClientError)
        );
    }

    #[test]
    fn unexpected_statuses_are_retried() {
        assert_eq!(
            classify_status(302),
            RequestVerdict::Retry(RetryReason::BadResponse)
        );
    }

    #[test]
    fn only_failures_after_which_documents_may_be_stored_open_the_replay_window() {
        for r in [
            RetryReason::Timeout,
            RetryReason::Transport,
            RetryReason::ServerError,
            RetryReason::BadResponse,
        ] {
            assert!(r.may_have_been_processed(), "{r:?}");
        }
        for r in [
            RetryReason::Connect,
            RetryReason::TooManyRequests,
            RetryReason::Unauthorized,
            RetryReason::ClientError,
        ] {
            assert!(!r.may_have_been_processed(), "{r:?}");
        }
    }

    #[test]
    fn created_item_is_stored() {
        assert_eq!(classify_item(201, None, None), ItemVerdict::Created);
    }

    #[test]
    fn failure_store_item_is_delivered_but_distinguished() {
        assert_eq!(
            classify_item(201, None, Some("used")),
            ItemVerdict::FailureStore
        );
        assert_eq!(
            classify_item(201, None, Some("not_enabled")),
            ItemVerdict::Created
        );
    }

    #[test]
    fn version_conflict_on_create_is_a_duplicate() {
        assert_eq!(
            classify_item(409, Some("version_conflict_engine_exception"), None),
            ItemVerdict::Duplicate
        );
    }

    #[test]
    fn unknown_conflict_is_dead_lettered_rather_than_retried_forever() {
        assert_eq!(
            classify_item(409, Some("something_else"), None),
            ItemVerdict::DeadLetter
        );
    }

    #[test]
    fn overloaded_items_are_retried() {
        assert_eq!(
            classify_item(429, Some("es_rejected_execution_exception"), None),
            ItemVerdict::Retry(ItemRetryReason::Rejected)
        );
        assert_eq!(
            classify_item(429, None, None),
            ItemVerdict::Retry(ItemRetryReason::Rejected)
        );
        // The type decides even when the status is unusual.
        assert_eq!(
            classify_item(500, Some("es_rejected_execution_exception"), None),
            ItemVerdict::Retry(ItemRetryReason::Rejected)
        );
        assert_eq!(
            classify_item(429, Some("circuit_breaking_exception"), None),
            ItemVerdict::Retry(ItemRetryReason::CircuitBreaker)
        );
    }

    #[test]
    fn server_error_items_are_retried() {
        assert_eq!(
            classify_item(503, Some("unavailable_shards_exception"), None),
            ItemVerdict::Retry(ItemRetryReason::ServerError)
        );
        assert_eq!(
            classify_item(500, Some("null_pointer_exception"), None),
            ItemVerdict::Retry(ItemRetryReason::ServerError)
        );
    }

    #[test]
    fn forbidden_items_are_retried() {
        assert_eq!(
            classify_item(403, Some("security_exception"), None),
            ItemVerdict::Retry(ItemRetryReason::Forbidden)
        );
        assert_eq!(
            classify_item(403, Some("cluster_block_exception"), None),
            ItemVerdict::Retry(ItemRetryReason::Forbidden)
        );
    }

    #[test]
    fn document_errors_are_dead_lettered() {
        for t in [
            "document_parsing_exception",
            "mapper_parsing_exception",
            "illegal_argument_exception",
            "strict_dynamic_mapping_exception",
        ] {
            assert_eq!(
                classify_item(400, Some(t), None),
                ItemVerdict::DeadLetter,
                "{t}"
            );
        }
        assert_eq!(
            classify_item(404, Some("index_not_found_exception"), None),
            ItemVerdict::DeadLetter
        );
        // A failed failure store keeps the original verdict: the document is not stored.
        assert_eq!(
            classify_item(400, Some("document_parsing_exception"), Some("failed")),
            ItemVerdict::DeadLetter
        );
    }

    #[test]
    fn backoff_ceiling_doubles_then_caps() {
        let b = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
        assert_eq!(b.ceiling(0), Duration::from_millis(200));
        assert_eq!(b.ceiling(1), Duration::from_millis(400));
        assert_eq!(b.ceiling(4), Duration::from_millis(3200));
        assert_eq!(b.ceiling(8), Duration::from_secs(30));
        assert_eq!(b.ceiling(1000), Duration::from_secs(30));
    }

    #[test]
    fn backoff_delay_stays_within_the_ceiling() {
        let b = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
        let mut rng = StdRng::seed_from_u64(7);
        for attempt in 0..64 {
            for _ in 0..100 {
                let d = b.delay_with(attempt, &mut rng);
                assert!(d <= b.ceiling(attempt), "attempt {attempt}: {d:?}");
            }
        }
    }

    #[test]
    fn backoff_delay_is_jittered() {
        let b = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
        let mut rng = StdRng::seed_from_u64(7);
        let delays: std::collections::HashSet<Duration> =
            (0..20).map(|_| b.delay_with(10, &mut rng)).collect();
        assert!(delays.len() > 10, "{delays:?}");
    }
}

//! What the output tells the outside world: Prometheus metrics and [`OutputStats`].
//!
//! Each event is recorded once, through [`Telemetry`], which updates both the `metrics`
//! macros (scraped on `/metrics`) and the atomics of [`OutputStats`] (read by the periodic
//! summary line), so the two can never disagree.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};

/// Metric names, shared by the recording code, [`describe_metrics`] and the tests.
pub(crate) mod names {
    pub(crate) const DOCUMENTS_INDEXED: &str = "shipper_documents_indexed_total";
    pub(crate) const DOCUMENTS_DUPLICATE: &str = "shipper_documents_duplicate_total";
    pub(crate) const DOCUMENTS_FAILURE_STORE: &str = "shipper_documents_failure_store_total";
    pub(crate) const DOCUMENTS_DEAD_LETTERED: &str = "shipper_documents_dead_lettered_total";
    pub(crate) const DEAD_LETTER_EVICTED: &str = "shipper_dead_letter_evicted_total";
    pub(crate) const DEAD_LETTER_WRITE_ERRORS: &str = "shipper_dead_letter_write_errors_total";
    pub(crate) const ITEM_RETRIES: &str = "shipper_item_retries_total";
    pub(crate) const REQUEST_RETRIES: &str = "shipper_bulk_request_retries_total";
    pub(crate) const BATCH_SPLITS: &str = "shipper_bulk_splits_total";
    pub(crate) const BULK_REQUESTS: &str = "shipper_bulk_requests_total";
    pub(crate) const BULK_DURATION: &str = "shipper_bulk_duration_seconds";
    pub(crate) const BULK_IN_FLIGHT: &str = "shipper_bulk_in_flight";
    pub(crate) const BULK_SENT_BYTES: &str = "shipper_bulk_sent_bytes_total";
    pub(crate) const LAST_SUCCESS: &str = "shipper_last_successful_bulk_timestamp_seconds";
    pub(crate) const ELASTICSEARCH_UP: &str = "shipper_elasticsearch_up";
    pub(crate) const REPLAY_LOOKUPS: &str = "shipper_replay_lookups_total";
    pub(crate) const REPLAY_DOCUMENTS: &str = "shipper_replay_documents_total";
    pub(crate) const REPLAY_ALREADY_STORED: &str = "shipper_replay_already_stored_total";
}

/// Registers HELP text and units for every output metric, so `/metrics` explains itself.
/// Call once after installing the recorder.
pub fn describe_metrics() {
    use names::*;
    describe_counter!(DOCUMENTS_INDEXED, "Documents Elasticsearch created (201).");
    describe_counter!(
        DOCUMENTS_DUPLICATE,
        "Documents Elasticsearch already had (409 on create): delivered by an earlier attempt."
    );
    describe_counter!(
        DOCUMENTS_FAILURE_STORE,
        "Documents stored in a data stream's failure store (201 with failure_store=used)."
    );
    describe_counter!(
        DOCUMENTS_DEAD_LETTERED,
        "Documents Elasticsearch rejected for good, written to the dead-letter file."
    );
    describe_counter!(
        DEAD_LETTER_EVICTED,
        "Dead-letter records deleted because the dead-letter files reached their size bound."
    );
    describe_counter!(
        DEAD_LETTER_WRITE_ERRORS,
        "Failed writes to the dead-letter file (the documents are retried, not acknowledged)."
    );
    describe_counter!(
        ITEM_RETRIES,
        "Documents sent again after a per-item failure, by reason."
    );
    describe_counter!(
        REQUEST_RETRIES,
        "Whole _bulk requests sent again, by reason."
    );
    describe_counter!(BATCH_SPLITS, "Batches split in two after a 413 answer.");
    describe_counter!(BULK_REQUESTS, "_bulk requests by outcome.");
    describe_histogram!(
        BULK_DURATION,
        Unit::Seconds,
        "Duration of _bulk requests, response read included."
    );
    describe_gauge!(BULK_IN_FLIGHT, "_bulk requests currently in flight.");
    describe_counter!(
        BULK_SENT_BYTES,
        Unit::Bytes,
        "Bytes of _bulk request bodies sent (after compression)."
    );
    describe_gauge!(
        LAST_SUCCESS,
        Unit::Seconds,
        "Unix time of the last _bulk request answered 2xx."
    );
    describe_counter!(
        REPLAY_LOOKUPS,
        "Look-ups of documents that may already be stored (replay window), by outcome."
    );
    describe_counter!(
        REPLAY_DOCUMENTS,
        "Documents of the replay window looked up before being sent again."
    );
    describe_counter!(
        REPLAY_ALREADY_STORED,
        "Documents of the replay window found already stored and not sent again (also counted as duplicates)."
    );
    describe_gauge!(
        ELASTICSEARCH_UP,
        "1 when the last request got an answer from Elasticsearch that was not a 5xx, else 0."
    );
}

/// Counters of the output for the shipper's periodic summary line.
///
/// Monotonic totals: the reader computes rates by difference.
#[derive(Debug, Default)]
pub struct OutputStats {
    pub(crate) documents_indexed: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) failure_store: AtomicU64,
    pub(crate) dead_letters: AtomicU64,
    pub(crate) dead_letter_evictions: AtomicU64,
    pub(crate) item_retries: AtomicU64,
    pub(crate) request_retries: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) bulk_requests: AtomicU64,
    pub(crate) in_flight: AtomicU64,
    /// Unix seconds of the last 2xx `_bulk`, 0 before the first.
    pub(crate) last_success_unix: AtomicI64,
    pub(crate) elasticsearch_up: AtomicBool,
    /// When Elasticsearch last answered with a status below 500 (any request: `GET /` at
    /// start, templates, `_bulk`): what "Elasticsearch unreachable" is measured from.
    last_answer: Mutex<Option<Instant>>,
    last_error: Mutex<Option<String>>,
}

/// A copy of [`OutputStats`] at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputStatsSnapshot {
    pub documents_indexed: u64,
    pub duplicates: u64,
    pub failure_store: u64,
    pub dead_letters: u64,
    pub(crate) dead_letter_evictions: u64,
    pub item_retries: u64,
    pub request_retries: u64,
    pub bytes_sent: u64,
    pub(crate) bulk_requests: u64,
    pub in_flight: u64,
    pub last_success_unix: i64,
    pub elasticsearch_up: bool,
    pub last_error: Option<String>,
}

impl OutputStats {
    pub fn snapshot(&self) -> OutputStatsSnapshot {
        let r = Ordering::Relaxed;
        OutputStatsSnapshot {
            documents_indexed: self.documents_indexed.load(r),
            duplicates: self.duplicates.load(r),
            failure_store: self.failure_store.load(r),
            dead_letters: self.dead_letters.load(r),
            dead_letter_evictions: self.dead_letter_evictions.load(r),
            item_retries: self.item_retries.load(r),
            request_retries: self.request_retries.load(r),
            bytes_sent: self.bytes_sent.load(r),
            bulk_requests: self.bulk_requests.load(r),
            in_flight: self.in_flight.load(r),
            last_success_unix: self.last_success_unix.load(r),
            elasticsearch_up: self.elasticsearch_up.load(r),
            last_error: self.last_error(),
        }
    }

    /// When Elasticsearch last answered with a status below 500; `None` before the first.
    pub(crate) fn last_answer(&self) -> Option<Instant> {
        self.last_answer.lock().map(|t| *t).unwrap_or(None)
    }

    /// Documents whose delivery is settled: stored, already there, in the failure store,
    /// or dead-lettered.
    pub(crate) fn documents_settled(&self) -> u64 {
        let r = Ordering::Relaxed;
        self.documents_indexed.load(r)
            + self.duplicates.load(r)
            + self.failure_store.load(r)
            + self.dead_letters.load(r)
    }

    /// The last error seen talking to Elasticsearch (cleared by nothing: it is "the last").
    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error.lock().map(|e| e.clone()).unwrap_or(None)
    }

    fn set_last_error(&self, message: String) {
        if let Ok(mut e) = self.last_error.lock() {
            *e = Some(message);
        }
    }
}

/// Records output events into the metrics and the stats.
#[derive(Debug, Clone, Default)]
pub(crate) struct Telemetry {
    stats: Arc<OutputStats>,
}

impl Telemetry {
    pub(crate) fn stats(&self) -> &Arc<OutputStats> {
        &self.stats
    }

    pub(crate) fn indexed(&self, n: u64) {
        if n > 0 {
            counter!(names::DOCUMENTS_INDEXED).increment(n);
            self.stats.documents_indexed.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn duplicates(&self, n: u64) {
        if n > 0 {
            counter!(names::DOCUMENTS_DUPLICATE).increment(n);
            self.stats.duplicates.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn failure_store(&self, n: u64) {
        if n > 0 {
            counter!(names::DOCUMENTS_FAILURE_STORE).increment(n);
            self.stats.failure_store.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn dead_lettered(&self, n: u64) {
        if n > 0 {
            counter!(names::DOCUMENTS_DEAD_LETTERED).increment(n);
            self.stats.dead_letters.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn dead_letters_evicted(&self, n: u64) {
        if n > 0 {
            counter!(names::DEAD_LETTER_EVICTED).increment(n);
            self.stats
                .dead_letter_evictions
                .fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn dead_letter_write_failed(&self, message: String) {
        counter!(names::DEAD_LETTER_WRITE_ERRORS).increment(1);
        self.stats.set_last_error(message);
    }

    pub(crate) fn item_retries(&self, reason: &'static str, n: u64) {
        if n > 0 {
            counter!(names::ITEM_RETRIES, "reason" => reason).increment(n);
            self.stats.item_retries.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn request_retry(&self, reason: &'static str, message: String) {
        counter!(names::REQUEST_RETRIES, "reason" => reason).increment(1);
        self.stats.request_retries.fetch_add(1, Ordering::Relaxed);
        self.stats.set_last_error(message);
    }

    /// One look-up of the replay window: `outcome` is `ok` or `error`; `looked_up`
    /// documents, of which `stored` were found (and count as duplicates too).
    pub(crate) fn replay_lookup(&self, outcome: &'static str, looked_up: u64, stored: u64) {
        counter!(names::REPLAY_LOOKUPS, "outcome" => outcome).increment(1);
        if looked_up > 0 {
            counter!(names::REPLAY_DOCUMENTS).increment(looked_up);
        }
        if stored > 0 {
            counter!(names::REPLAY_ALREADY_STORED).increment(stored);
            self.duplicates(stored);
        }
    }

    pub(crate) fn split(&self) {
        counter!(names::BATCH_SPLITS).increment(1);
    }

    /// One finished `_bulk` request. `outcome` is a bounded label: `ok`, `item_errors`,
    /// `retry`, `too_large`, `transport_error`.
    pub(crate) fn bulk_request(&self, outcome: &'static str, elapsed: Duration) {
        counter!(names::BULK_REQUESTS, "outcome" => outcome).increment(1);
        histogram!(names::BULK_DURATION).record(elapsed.as_secs_f64());
        self.stats.bulk_requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn bytes_sent(&self, n: u64) {
        counter!(names::BULK_SENT_BYTES).increment(n);
        self.stats.bytes_sent.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn in_flight_started(&self) {
        gauge!(names::BULK_IN_FLIGHT).increment(1.0);
        self.stats.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn in_flight_finished(&self) {
        gauge!(names::BULK_IN_FLIGHT).decrement(1.0);
        self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn bulk_succeeded_now(&self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        gauge!(names::LAST_SUCCESS).set(now);
        self.stats
            .last_success_unix
            .store(now as i64, Ordering::Relaxed);
    }

    /// The verdict of one answer (or of no answer): `up` when Elasticsearch answered with a
    /// status below 500.
    pub(crate) fn elasticsearch_up(&self, up: bool) {
        gauge!(names::ELASTICSEARCH_UP).set(if up { 1.0 } else { 0.0 });
        self.stats.elasticsearch_up.store(up, Ordering::Relaxed);
        if up {
            if let Ok(mut t) = self.stats.last_answer.lock() {
                *t = Some(Instant::now());
            }
        }
    }

    pub(crate) fn error(&self, message: String) {
        self.stats.set_last_error(message);
    }
}

/// Counts a request as in flight for as long as it lives, even when its task is aborted at
/// shutdown (so the gauge never stays stuck above zero).
pub(crate) struct InFlightGuard<'a>(&'a Telemetry);

impl<'a> InFlightGuard<'a> {
    pub(crate) fn new(telemetry: &'a Telemetry) -> Self {
        telemetry.in_flight_started();
        InFlightGuard(telemetry)
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.in_flight_finished();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telemetry_updates_the_stats_snapshot() {
        let t = Telemetry::default();
        t.indexed(5);
        t.duplicates(2);
        t.failure_store(1);
        t.dead_lettered(3);
        t.item_retries("rejected", 4);
        t.request_retry("connect", "connection refused".into());
        {
            let _g = InFlightGuard::new(&t);
            assert_eq!(t.stats().snapshot().in_flight, 1);
        }
        let s = t.stats().snapshot();
        assert_eq!(s.documents_indexed, 5);
        assert_eq!(s.duplicates, 2);
        assert_eq!(s.failure_store, 1);
        assert_eq!(s.dead_letters, 3);
        assert_eq!(s.item_retries, 4);
        assert_eq!(s.request_retries, 1);
        assert_eq!(s.in_flight, 0);
        assert_eq!(s.last_error.as_deref(), Some("connection refused"));
        assert_eq!(t.stats().documents_settled(), 5 + 2 + 1 + 3);
    }

    #[test]
    fn only_an_answer_below_500_counts_as_elasticsearch_answering() {
        let t = Telemetry::default();
        assert_eq!(t.stats().last_answer(), None);
        t.elasticsearch_up(false);
        assert_eq!(t.stats().last_answer(), None);
        t.elasticsearch_up(true);
        let first = t.stats().last_answer().unwrap();
        t.elasticsearch_up(false);
        assert_eq!(
            t.stats().last_answer(),
            Some(first),
            "a failure does not erase it"
        );
    }
}

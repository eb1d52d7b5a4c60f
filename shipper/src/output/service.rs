//! One `_bulk` request and what follows from its answer.
//!
//! [`BulkService::send`] sends a batch once, applies the verdicts of [`super::retry`] to the
//! answer, acknowledges every document that is safe (created, duplicate, failure store,
//! dead-lettered), and returns what is left to do: nothing, the whole batch again, some items
//! again, or two halves. It never sleeps: the caller owns the retry loop and its backoff.
//!
//! A batch with documents that may already be stored (the replay window) is first looked up
//! ([`super::replay`]): what is found is acknowledged as a duplicate, only the rest is sent.
//! A request that fails in a way that may have stored documents puts its whole batch in the
//! replay window for the next attempt ([`RetryReason::may_have_been_processed`]).

use std::sync::{Arc, Mutex};
use std::time::Instant;

/// `_bulk` with the response cut to what the retry rules read. A full item is ~200 bytes
/// (`_index`, `_id`, `_version`, `_shards`, `_seq_no`, ...); filtered it is ~50, which
/// makes reading the response of a 2000-document batch about four times cheaper. `_id` is
/// kept to match each item to its document (see [`parse_bulk`]); the index, when a log line
/// needs it, comes from the request's own action line.
pub(crate) const BULK_PATH: &str =
    "/_bulk?filter_path=errors,items.*._id,items.*.status,items.*.error,items.*.failure_store";

use reqwest::Method;

use super::client::{bulk_answer_limit, EsClient, Reply, TransportError};
use super::dead_letter::{self, DeadLetter, DeadLetterWriter};
use super::log_throttle::LogThrottle;
use super::replay::{self, Candidate};
use super::request_builder;
use super::response::{error_summary, parse_bulk, shortened, BulkItemResult, MAX_REASON_BYTES};
use super::retry::{
    classify_item, classify_status, ItemRetryReason, ItemVerdict, RequestVerdict, RetryReason,
};
use super::telemetry::{InFlightGuard, Telemetry};
use crate::batch::{Acknowledge, Batch, BatchItem, Origin};

/// What is left to do after one attempt.
#[derive(Debug)]
pub(crate) enum Next {
    /// Every document is safe.
    Done,
    /// Send the whole batch again, after a backoff.
    RetryAll,
    /// The cluster could not be reached (no connection, the connection broke, a 5xx): send
    /// the whole batch again after a backoff, or as soon as another request succeeds.
    Unreachable,
    /// Send these items again, after a backoff.
    RetryItems(Batch),
    /// Send each half (413), without waiting.
    Split(Batch, Batch),
}

/// Everything one delivery needs, shared by the concurrent deliveries.
pub(crate) struct BulkService {
    pub(crate) client: EsClient,
    pub(crate) gzip: bool,
    pub(crate) telemetry: Telemetry,
    pub(crate) dead_letters: Arc<Mutex<DeadLetterWriter>>,
    pub(crate) acks: Arc<dyn Acknowledge>,
    /// Search the data streams' failure stores too when looking up the replay window (the
    /// cluster has them: 8.19+, 9.1+).
    pub(crate) failure_store: bool,
    /// Repeated warnings of the same kind, at most one per interval.
    pub(crate) warnings: LogThrottle,
    /// Counts the requests that got a usable answer. A delivery waiting out its backoff
    /// after an outage watches it, so the first success after an outage resumes every
    /// delivery at once instead of each sleeping out its own delay (up to `retry_max`
    /// each, which with full jitter kept half the in-flight slots idle for seconds after
    /// the cluster came back).
    pub(crate) answered: tokio::sync::watch::Sender<u64>,
}

impl BulkService {
    /// Sends `batch` once and handles the answer. `batch` is left intact for a retry.
    pub(crate) async fn send(&self, batch: &mut Batch) -> Next {
        if batch.in_replay_window() {
            if !self.skip_stored(batch).await {
                return Next::RetryAll;
            }
            if batch.is_empty() {
                return Next::Done;
            }
        }
        let request = match request_builder::build(batch, self.gzip) {
            Ok(r) => r,
            // Compressing into memory cannot really fail; if it ever does, send it plain.
            Err(_) => match request_builder::build(batch, false) {
                Ok(r) => r,
                Err(_) => return Next::RetryAll,
            },
        };
        let sent_bytes = request.body.bytes.len() as u64;
        let started = Instant::now();
        let result = {
            let _in_flight = InFlightGuard::new(&self.telemetry);
            self.client
                .send(
                    Method::POST,
                    BULK_PATH,
                    Some(request.body.clone()),
                    bulk_answer_limit(batch.len()),
                )
                .await
        };
        request_builder::give_back(batch, request);
        let elapsed = started.elapsed();
        self.telemetry.bytes_sent(sent_bytes);

        let reply = match result {
            Ok(reply) => reply,
            Err(err) => {
                // An answer too large to be one still came from something that answers.
                self.telemetry
                    .elasticsearch_up(matches!(err, TransportError::TooLarge { .. }));
                self.telemetry.bulk_request("transport_error", elapsed);
                let reason = err.retry_reason();
                if reason.may_have_been_processed() {
                    batch.mark_may_be_stored();
                }
                if let Some(held_back) = self.warnings.admit("bulk", reason.label()) {
                    tracing::warn!(
                        documents = batch.len(),
                        held_back,
                        "bulk request failed, will retry: {err}"
                    );
                }
                self.telemetry
                    .request_retry(reason.label(), err.to_string());
                return if reason.is_unreachable() {
                    Next::Unreachable
                } else {
                    Next::RetryAll
                };
            }
        };
        self.telemetry.elasticsearch_up(reply.status < 500);

        match classify_status(reply.status) {
            RequestVerdict::Split => {
                self.telemetry.bulk_request("too_large", elapsed);
                self.too_large(batch, &reply).await
            }
            RequestVerdict::Retry(reason) => {
                self.telemetry.bulk_request("retry", elapsed);
                if reason.may_have_been_processed() {
                    batch.mark_may_be_stored();
                }
                let message = format!(
                    "{} answered HTTP {} to _bulk: {}",
                    reply.node.shown,
                    reply.status,
                    error_summary(&reply.body)
                );
                match (reason, self.warnings.admit("bulk", reason.label())) {
                    (_, None) => {}
                    // Not about the documents, and not fixed by waiting alone: an operator
                    // must act, so say it loudly.
                    (RetryReason::Unauthorized | RetryReason::ClientError, Some(held_back)) => {
                        tracing::error!(
                            documents = batch.len(),
                            held_back,
                            "{message}; the batch is kept and retried until this is fixed"
                        )
                    }
                    (_, Some(held_back)) => {
                        tracing::warn!(documents = batch.len(), held_back, "{message}; will retry")
                    }
                }
                self.telemetry.request_retry(reason.label(), message);
                if reason.is_unreachable() {
                    Next::Unreachable
                } else {
                    Next::RetryAll
                }
            }
            RequestVerdict::ReadItems => match parse_bulk(&reply.body, &self.ids(batch)) {
                Ok(results) => {
                    self.telemetry.bulk_succeeded_now();
                    self.answered.send_modify(|n| *n = n.wrapping_add(1));
                    let next = self.items(batch, &results).await;
                    let outcome = if matches!(next, Next::Done) {
                        "ok"
                    } else {
                        "item_errors"
                    };
                    self.telemetry.bulk_request(outcome, elapsed);
                    next
                }
                Err(err) => {
                    self.telemetry.bulk_request("retry", elapsed);
                    // Answered 2xx: the request was executed, whatever the body says.
                    batch.mark_may_be_stored();
                    let message = format!("{}: {err}", reply.node.shown);
                    if let Some(held_back) = self
                        .warnings
                        .admit("bulk", RetryReason::BadResponse.label())
                    {
                        tracing::warn!(
                            documents = batch.len(),
                            held_back,
                            "{message}; will retry the batch, looking up first what it may have stored"
                        );
                    }
                    self.telemetry
                        .request_retry(RetryReason::BadResponse.label(), message);
                    Next::RetryAll
                }
            },
        }
    }

    /// The hashed `_id` of each document of `batch`, in order, to match the answer's items
    /// with (taken when each action line was written: the body is not read again).
    fn ids(&self, batch: &Batch) -> Vec<u64> {
        batch.items.iter().map(|item| item.id_hash).collect()
    }

    /// Looks up the documents of `batch` that may already be stored, acknowledges those
    /// found (as duplicates) and leaves in `batch` only the others, no longer flagged: they
    /// were proven absent. `false` when the look-up failed (logged, metered): `batch` is
    /// unchanged and must be retried after a backoff, never sent blind.
    async fn skip_stored(&self, batch: &mut Batch) -> bool {
        let targets: Vec<Option<Candidate>> = batch
            .items
            .iter()
            .map(|item| {
                if !item.may_be_stored {
                    return None;
                }
                let (stream, id) = dead_letter::action_target(item.action(&batch.body));
                // Without an id there is nothing to look up (the shipper always sets one).
                (!id.is_empty() && !stream.is_empty()).then_some(Candidate { stream, id })
            })
            .collect();
        let candidates: Vec<Candidate> = targets.iter().flatten().cloned().collect();
        let looked_up = candidates.len() as u64;
        let found = match replay::already_stored(&self.client, &candidates, self.failure_store)
            .await
        {
            Ok(found) => found,
            Err(err) => {
                let reason = err.retry_reason();
                self.telemetry.elasticsearch_up(!matches!(
                    reason,
                    RetryReason::Connect
                        | RetryReason::Timeout
                        | RetryReason::Transport
                        | RetryReason::ServerError
                ));
                self.telemetry.replay_lookup("error", 0, 0);
                let message = format!("{err}; the documents wait, they are not sent blind");
                match (reason, self.warnings.admit("look-up", reason.label())) {
                    (_, None) => {}
                    // An operator must act: the role lacks the privileges the look-up needs.
                    (RetryReason::Unauthorized, Some(held_back)) => tracing::error!(
                        documents = looked_up,
                        held_back,
                        "{message}; the shipper's role needs `read` on its data streams (and \
                             `read_failure_store` for their failure stores); will retry"
                    ),
                    (_, Some(held_back)) => {
                        tracing::warn!(documents = looked_up, held_back, "{message}; will retry")
                    }
                }
                self.telemetry.error(message);
                return false;
            }
        };
        self.telemetry.elasticsearch_up(true);
        let mut stored: Vec<Origin> = Vec::new();
        let mut rest: Vec<&BatchItem> = Vec::with_capacity(batch.len());
        for (item, target) in batch.items.iter().zip(&targets) {
            match target {
                Some(c) if found.contains(&c.id) => stored.push(item.origin),
                _ => rest.push(item),
            }
        }
        self.telemetry
            .replay_lookup("ok", looked_up, stored.len() as u64);
        if !stored.is_empty() {
            tracing::info!(
                looked_up,
                already_stored = stored.len(),
                "documents that may already have been stored were looked up: those found are \
                 not sent again"
            );
            self.acks.acknowledge(&stored);
        }
        let mut rest = batch.subset(rest);
        for item in &mut rest.items {
            item.may_be_stored = false;
        }
        *batch = rest;
        true
    }

    /// 413: split in two, or dead-letter a document that is too large on its own.
    async fn too_large(&self, batch: &Batch, reply: &Reply) -> Next {
        if batch.len() > 1 {
            self.telemetry.split();
            tracing::info!(
                documents = batch.len(),
                bytes = batch.body.len(),
                "{} answered 413 (request too large): splitting the batch in two",
                reply.node.shown
            );
            let (left, right) = batch.items.split_at(batch.len() / 2);
            return Next::Split(batch.subset(left), batch.subset(right));
        }
        let Some(item) = batch.items.first() else {
            return Next::Done;
        };
        let reason = format!(
            "the document alone ({} bytes with its action line) is larger than Elasticsearch \
             accepts (http.max_content_length): {}",
            item.end - item.action_start,
            error_summary(&reply.body)
        );
        let letters = [Rejected {
            item,
            status: 413,
            kind: "request_entity_too_large".to_string(),
            reason,
        }];
        if self.dead_letter(&batch.body, &letters).await {
            self.acks.acknowledge(&[item.origin]);
            Next::Done
        } else {
            Next::RetryAll
        }
    }

    /// Applies the item verdicts, acknowledges what is safe, returns what to retry.
    async fn items(&self, batch: &Batch, results: &[BulkItemResult<'_>]) -> Next {
        let mut safe: Vec<Origin> = Vec::with_capacity(batch.len());
        let mut retry: Vec<&BatchItem> = Vec::new();
        let mut retry_reasons = RetryCounts::default();
        let mut letters: Vec<Rejected<'_>> = Vec::new();
        let (mut created, mut duplicates, mut failure_store) = (0u64, 0u64, 0u64);

        for (item, result) in batch.items.iter().zip(results) {
            let error_type = result.error.as_ref().map(|e| e.kind.as_str());
            match classify_item(result.status, error_type, result.failure_store.as_deref()) {
                ItemVerdict::Created => {
                    created += 1;
                    safe.push(item.origin);
                }
                ItemVerdict::Duplicate => {
                    duplicates += 1;
                    safe.push(item.origin);
                }
                ItemVerdict::FailureStore => {
                    failure_store += 1;
                    if tracing::enabled!(tracing::Level::DEBUG) {
                        let (index, id) =
                            super::dead_letter::action_target(item.action(&batch.body));
                        tracing::debug!(index, id, "document stored in the failure store");
                    }
                    safe.push(item.origin);
                }
                ItemVerdict::Retry(reason) => {
                    retry_reasons.add(reason);
                    retry.push(item);
                }
                ItemVerdict::DeadLetter => {
                    let (kind, reason) = match &result.error {
                        Some(e) => (
                            shortened(&e.kind, MAX_REASON_BYTES).into_owned(),
                            e.full_reason(),
                        ),
                        None => ("unknown".to_string(), format!("status {}", result.status)),
                    };
                    letters.push(Rejected {
                        item,
                        status: result.status,
                        kind,
                        reason,
                    });
                }
            }
        }

        self.telemetry.indexed(created);
        self.telemetry.duplicates(duplicates);
        self.telemetry.failure_store(failure_store);
        if failure_store > 0 {
            tracing::info!(
                documents = failure_store,
                "documents rejected by their data stream's mappings or pipeline were kept in \
                 its failure store (query <data stream>::failures)"
            );
        }
        if !letters.is_empty() {
            if self.dead_letter(&batch.body, &letters).await {
                safe.extend(letters.iter().map(|r| r.item.origin));
            } else {
                retry.extend(letters.iter().map(|r| r.item));
            }
        }
        if !safe.is_empty() {
            self.acks.acknowledge(&safe);
        }
        if retry.is_empty() {
            return Next::Done;
        }
        retry_reasons.record(&self.telemetry);
        let forbidden = retry_reasons.count(ItemRetryReason::Forbidden);
        if forbidden > 0 {
            // Privileges or a write block: an operator must act; the documents wait.
            let message = format!(
                "Elasticsearch refused {forbidden} document(s) with 401/403 (missing privileges or \
                 a write block on the index); they are kept and retried until this is fixed"
            );
            if let Some(held_back) = self.warnings.admit("items", "forbidden") {
                tracing::error!(held_back, "{message}");
            }
            self.telemetry.error(message);
        }
        tracing::debug!(
            documents = retry.len(),
            "retrying items Elasticsearch could not take now"
        );
        Next::RetryItems(batch.subset(retry))
    }

    /// Writes dead letters durably; `false` (logged, metered) when the file cannot be written,
    /// in which case the documents must not be acknowledged.
    async fn dead_letter(&self, body: &[u8], letters: &[Rejected<'_>]) -> bool {
        let Some(first) = letters.first() else {
            return true;
        };
        let mut records = Vec::new();
        for Rejected {
            item,
            status,
            kind,
            reason,
        } in letters
        {
            let (index, id) = dead_letter::action_target(item.action(body));
            dead_letter::encode(
                &DeadLetter {
                    index: &index,
                    id: &id,
                    status: *status,
                    error_type: kind,
                    reason,
                    source: item.source(body),
                },
                &mut records,
            );
        }
        let writer = Arc::clone(&self.dead_letters);
        // File writes and fsync block: keep them off the async worker threads.
        let written = tokio::task::spawn_blocking(move || {
            let mut w = writer
                .lock()
                .map_err(|_| std::io::Error::other("dead-letter writer poisoned"))?;
            let dir = w.dir().to_path_buf();
            w.append(&records).map(|a| (a, dir))
        })
        .await;
        let (_, first_id) = dead_letter::action_target(first.item.action(body));
        let (first_kind, first_reason) = (&first.kind, &first.reason);
        match written {
            Ok(Ok((appended, dir))) => {
                self.telemetry.dead_lettered(letters.len() as u64);
                if let Some(held_back) = self.warnings.admit("dead-letter", "written") {
                    tracing::warn!(
                        documents = letters.len(),
                        held_back,
                        dir = %dir.display(),
                        "{} document(s) rejected by Elasticsearch written to the dead-letter file; \
                         first: _id {first_id}: {first_kind}: {first_reason}",
                        letters.len()
                    );
                }
                if appended.evicted_records > 0 {
                    self.telemetry
                        .dead_letters_evicted(appended.evicted_records);
                    tracing::warn!(
                        records = appended.evicted_records,
                        "dead-letter files reached their size bound: deleted {} old record(s) in {:?}",
                        appended.evicted_records,
                        appended.evicted_files
                    );
                }
                true
            }
            Ok(Err(err)) => {
                let message = format!("cannot write the dead-letter file: {err}");
                tracing::error!("{message}; the documents are kept and retried");
                self.telemetry.dead_letter_write_failed(message);
                false
            }
            Err(err) => {
                let message = format!("dead-letter write did not complete: {err}");
                tracing::error!("{message}; the documents are kept and retried");
                self.telemetry.dead_letter_write_failed(message);
                false
            }
        }
    }
}

/// A document Elasticsearch will not take as it is, on its way to the dead-letter file.
struct Rejected<'a> {
    item: &'a BatchItem,
    status: u16,
    /// `error.type`.
    kind: String,
    /// `error.reason` with its causes.
    reason: String,
}

/// Retried items per reason, recorded once per response.
#[derive(Default)]
struct RetryCounts([u64; 4]);

impl RetryCounts {
    const REASONS: [ItemRetryReason; 4] = [
        ItemRetryReason::Rejected,
        ItemRetryReason::CircuitBreaker,
        ItemRetryReason::ServerError,
        ItemRetryReason::Forbidden,
    ];

    fn add(&mut self, reason: ItemRetryReason) {
        if let Some(i) = Self::REASONS.iter().position(|r| *r == reason) {
            self.0[i] += 1;
        }
    }

    fn count(&self, reason: ItemRetryReason) -> u64 {
        Self::REASONS
            .iter()
            .position(|r| *r == reason)
            .map(|i| self.0[i])
            .unwrap_or(0)
    }

    fn record(&self, telemetry: &Telemetry) {
        for (reason, n) in Self::REASONS.iter().zip(self.0) {
            telemetry.item_retries(reason.label(), n);
        }
    }
}

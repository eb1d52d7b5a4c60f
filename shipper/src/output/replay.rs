//! The replay window: looking up documents that may already be stored before sending them
//! again.
//!
//! Every document's `_id` is deterministic and every action a `create`, so a document sent
//! twice is normally answered 409 and counted as delivered. But Elasticsearch checks `_id`
//! only inside the *current write index* of a data stream (elastic/elasticsearch#44794):
//! after a rollover, the same `_id` is stored a second time in the new write index. And a
//! document that went to the failure store gets a fresh `_id` there, so it is stored again on
//! every replay whatever the write index.
//!
//! So documents that may already be stored (a request whose answer was lost, see
//! [`super::retry::RetryReason::may_have_been_processed`]; the lines a previous run read
//! beyond its checkpoint, flagged by the reader) are looked up first, and only those that
//! are found nowhere are sent:
//!
//! - an `ids` query `_search` over the data streams, which searches every backing index,
//!   `_source: false`;
//! - for the ids not found there, a `terms` query on `document.id` (the original `_id`,
//!   a `keyword` in the failure store's fixed mapping) over `<data-stream>::failures`.
//!
//! A search that is not complete (a shard failed, or it timed out) is a failed look-up, as
//! is any error: the caller retries it like a request. Sending blind could duplicate,
//! dropping would lose. Only the replay window pays for this, never the steady flow.
//!
//! A search sees what was refreshed: documents stored by an earlier run or before a lost
//! answer were refreshed long before the look-up (`refresh_interval` 1 s by default, and a
//! search of a search-idle shard waits for its pending refresh).

use std::collections::{BTreeSet, HashSet};

use bytes::Bytes;
use reqwest::Method;
use serde::Deserialize;

use super::client::{EsClient, RequestBody, TransportError, MAX_ANSWER_BYTES};
use super::response::error_summary;
use super::retry::{classify_status, RequestVerdict, RetryReason};

/// Ids per search: well under `index.max_result_window` (10,000) and small enough that a
/// search body stays a few tens of KiB.
pub(crate) const IDS_PER_SEARCH: usize = 1000;

/// One document that may already be stored: its data stream (or index) and its `_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub(crate) stream: String,
    pub(crate) id: String,
}

/// Why a look-up could not say which documents are stored.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub(crate) enum LookupError {
    #[error("{0}")]
    Transport(TransportError),
    #[error("{node} answered HTTP {status} to the look-up of documents that may already be stored: {summary}")]
    Status {
        node: String,
        status: u16,
        summary: String,
    },
    #[error("{node} gave an incomplete answer to the look-up ({what}): it cannot prove a document is not stored")]
    Incomplete { node: String, what: String },
    #[error("{node} gave an unusable answer to the look-up: {message}")]
    BadResponse { node: String, message: String },
}

impl LookupError {
    /// The retry reason, for the metric label and the backoff.
    pub(crate) fn retry_reason(&self) -> RetryReason {
        match self {
            LookupError::Transport(e) => e.retry_reason(),
            LookupError::Status { status, .. } => match classify_status(*status) {
                RequestVerdict::Retry(reason) => reason,
                // 413 cannot answer a search this small, and a 2xx is not an error: what
                // remains is an answer we cannot use.
                RequestVerdict::Split | RequestVerdict::ReadItems => RetryReason::BadResponse,
            },
            LookupError::Incomplete { .. } | LookupError::BadResponse { .. } => {
                RetryReason::BadResponse
            }
        }
    }
}

/// Which of `candidates` are already stored, in their data streams or (when
/// `failure_store`) in their failure stores. Returns the stored `_id`s.
pub(crate) async fn already_stored(
    client: &EsClient,
    candidates: &[Candidate],
    failure_store: bool,
) -> Result<HashSet<String>, LookupError> {
    let mut found: HashSet<String> = HashSet::new();
    for chunk in candidates.chunks(IDS_PER_SEARCH) {
        let streams: BTreeSet<&str> = chunk.iter().map(|c| c.stream.as_str()).collect();
        let ids: Vec<&str> = chunk.iter().map(|c| c.id.as_str()).collect();
        let data = streams.iter().copied().collect::<Vec<_>>().join(",");
        search_until_complete(client, &data, Where::Documents, &ids, &mut found).await?;
        if failure_store {
            let rest: Vec<&str> = ids
                .iter()
                .copied()
                .filter(|id| !found.contains(*id))
                .collect();
            if !rest.is_empty() {
                let failures = streams
                    .iter()
                    .map(|s| format!("{s}::failures"))
                    .collect::<Vec<_>>()
                    .join(",");
                search_until_complete(client, &failures, Where::FailureStore, &rest, &mut found)
                    .await?;
            }
        }
    }
    Ok(found)
}

/// Where a search looks, and so how an `_id` is matched and read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Where {
    /// The backing indices: the document's own `_id`.
    Documents,
    /// The failure indices: `document.id`, the `_id` the document was sent with.
    FailureStore,
}

/// Searches `ids` in `target` until every stored one is found. A search returns at most
/// `size` hits; when it returns exactly that many, an id stored more than once may have
/// crowded another out, so the ids still not found are searched again (each round has
/// fewer ids or ends).
async fn search_until_complete(
    client: &EsClient,
    target: &str,
    place: Where,
    ids: &[&str],
    found: &mut HashSet<String>,
) -> Result<(), LookupError> {
    let mut pending: Vec<&str> = ids.to_vec();
    while !pending.is_empty() {
        let hits = search(client, target, place, &pending).await?;
        let full = hits.len() >= pending.len();
        let before = found.len();
        found.extend(hits);
        pending.retain(|id| !found.contains(*id));
        if !full || found.len() == before {
            return Ok(());
        }
    }
    Ok(())
}

/// One search; the `_id`s (or `document.id`s) of its hits.
async fn search(
    client: &EsClient,
    target: &str,
    place: Where,
    ids: &[&str],
) -> Result<Vec<String>, LookupError> {
    // A data stream that does not exist yet holds nothing: not an error.
    let path = format!("/{target}/_search?ignore_unavailable=true");
    let body = RequestBody {
        bytes: Bytes::from(query(place, ids)),
        content_type: "application/json",
        gzip: false,
    };
    let reply = client
        .send(Method::POST, &path, Some(body), MAX_ANSWER_BYTES)
        .await
        .map_err(LookupError::Transport)?;
    let node = reply.node.shown.clone();
    if !(200..300).contains(&reply.status) {
        return Err(LookupError::Status {
            node,
            status: reply.status,
            summary: error_summary(&reply.body),
        });
    }
    parse_hits(&reply.body, place).map_err(|e| match e {
        HitsError::Incomplete(what) => LookupError::Incomplete { node, what },
        HitsError::Bad(message) => LookupError::BadResponse { node, message },
    })
}

/// The search body: the ids, nothing of the sources but what names the original id.
fn query(place: Where, ids: &[&str]) -> Vec<u8> {
    let body = match place {
        Where::Documents => serde_json::json!({
            "query": {"ids": {"values": ids}},
            "_source": false,
            "size": ids.len(),
            "track_total_hits": false,
        }),
        Where::FailureStore => serde_json::json!({
            "query": {"terms": {"document.id": ids}},
            "_source": ["document.id"],
            "size": ids.len(),
            "track_total_hits": false,
        }),
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

#[derive(Debug, PartialEq, Eq)]
enum HitsError {
    Incomplete(String),
    Bad(String),
}

/// Reads the ids out of a search answer, refusing an answer that is not complete.
fn parse_hits(body: &[u8], place: Where) -> Result<Vec<String>, HitsError> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        timed_out: bool,
        #[serde(rename = "_shards", default)]
        shards: Option<Shards>,
        #[serde(default)]
        hits: Option<Hits>,
    }
    #[derive(Deserialize)]
    struct Shards {
        #[serde(default)]
        failed: u64,
    }
    #[derive(Deserialize)]
    struct Hits {
        #[serde(default)]
        hits: Vec<Hit>,
    }
    #[derive(Deserialize)]
    struct Hit {
        #[serde(rename = "_id", default)]
        id: Option<String>,
        #[serde(rename = "_source", default)]
        source: Option<FailureSource>,
    }
    #[derive(Deserialize)]
    struct FailureSource {
        #[serde(default)]
        document: Option<FailedDocument>,
    }
    #[derive(Deserialize)]
    struct FailedDocument {
        #[serde(default)]
        id: Option<String>,
    }

    let answer: Answer = serde_json::from_slice(body)
        .map_err(|e| HitsError::Bad(format!("not a search answer: {e}")))?;
    if answer.timed_out {
        return Err(HitsError::Incomplete("timed out".into()));
    }
    if let Some(failed) = answer.shards.as_ref().map(|s| s.failed).filter(|f| *f > 0) {
        return Err(HitsError::Incomplete(format!("{failed} shard(s) failed")));
    }
    let hits = answer.hits.map(|h| h.hits).unwrap_or_default();
    let ids = hits
        .into_iter()
        .filter_map(|h| match place {
            Where::Documents => h.id,
            Where::FailureStore => h.source.and_then(|s| s.document).and_then(|d| d.id),
        })
        .collect();
    Ok(ids)
}

/// Does this Elasticsearch have failure stores that can be searched with `::failures`?
/// The failure store is generally available from 8.19 and 9.1; before that the selector is
/// not understood, so only the data streams are searched.
pub(crate) fn supports_failure_store(version: &str) -> bool {
    let mut parts = version
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    match major {
        0..=7 => false,
        8 => minor >= 19,
        9 => minor >= 1,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documents_query_asks_for_ids_only() {
        let q: serde_json::Value =
            serde_json::from_slice(&query(Where::Documents, &["a1", "b2"])).unwrap();
        assert_eq!(q["query"]["ids"]["values"], serde_json::json!(["a1", "b2"]));
        assert_eq!(q["_source"], false);
        assert_eq!(q["size"], 2);
    }

    #[test]
    fn the_failure_store_query_matches_the_original_id() {
        let q: serde_json::Value =
            serde_json::from_slice(&query(Where::FailureStore, &["a1"])).unwrap();
        assert_eq!(
            q["query"]["terms"]["document.id"],
            serde_json::json!(["a1"])
        );
        assert_eq!(q["_source"], serde_json::json!(["document.id"]));
        assert_eq!(q["size"], 1);
    }

    #[test]
    fn hits_give_their_ids() {
        let body = br#"{"took":1,"timed_out":false,"_shards":{"total":2,"successful":2,"skipped":0,"failed":0},
            "hits":{"max_score":1.0,"hits":[{"_index":".ds-logs-a-default-2026.12.02-000001","_id":"x1","_score":1.0},
            {"_index":".ds-logs-a-default-2026.12.02-000002","_id":"x2","_score":1.0}]}}"#;
        assert_eq!(
            parse_hits(body, Where::Documents).unwrap(),
            vec!["x1".to_string(), "x2".to_string()]
        );
        let none = br#"{"timed_out":false,"_shards":{"total":0,"successful":0,"failed":0},"hits":{"hits":[]}}"#;
        assert!(parse_hits(none, Where::Documents).unwrap().is_empty());
    }

    #[test]
    fn failure_store_hits_give_the_original_id_not_their_own() {
        let body = br#"{"timed_out":false,"_shards":{"failed":0},"hits":{"hits":[
            {"_index":".fs-logs-a-default-2026.12.02-000002","_id":"Zx8_random","_source":{"document":{"id":"x1"}}}]}}"#;
        assert_eq!(
            parse_hits(body, Where::FailureStore).unwrap(),
            vec!["x1".to_string()]
        );
    }

    #[test]
    fn an_incomplete_answer_is_refused() {
        let failed = br#"{"timed_out":false,"_shards":{"total":3,"successful":2,"failed":1},"hits":{"hits":[]}}"#;
        assert!(matches!(
            parse_hits(failed, Where::Documents),
            Err(HitsError::Incomplete(_))
        ));
        let timed_out = br#"{"timed_out":true,"_shards":{"failed":0},"hits":{"hits":[]}}"#;
        assert!(matches!(
            parse_hits(timed_out, Where::Documents),
            Err(HitsError::Incomplete(_))
        ));
        assert!(matches!(
            parse_hits(b"<html>", Where::Documents),
            Err(HitsError::Bad(_))
        ));
    }

    #[test]
    fn failure_stores_are_searched_from_the_versions_that_have_them() {
        for v in [
            "8.19.0",
            "8.19.3",
            "9.1.0",
            "9.2.1",
            "10.0.0",
            "9.3.0-SNAPSHOT",
        ] {
            assert!(supports_failure_store(v), "{v}");
        }
        for v in ["8.17.4", "8.18.0", "9.0.3", "7.17.0", "garbage"] {
            assert!(!supports_failure_store(v), "{v}");
        }
    }

    #[test]
    fn look_up_errors_are_retried_like_requests() {
        let status = |status| LookupError::Status {
            node: "n".into(),
            status,
            summary: String::new(),
        };
        assert_eq!(status(503).retry_reason(), RetryReason::ServerError);
        assert_eq!(status(429).retry_reason(), RetryReason::TooManyRequests);
        assert_eq!(status(403).retry_reason(), RetryReason::Unauthorized);
        assert_eq!(status(400).retry_reason(), RetryReason::ClientError);
        let incomplete = LookupError::Incomplete {
            node: "n".into(),
            what: "1 shard(s) failed".into(),
        };
        assert_eq!(incomplete.retry_reason(), RetryReason::BadResponse);
    }
}

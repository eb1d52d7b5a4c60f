//! Parsing Elasticsearch's answers: `_bulk` results and error bodies.
//!
//! Only the fields the retry rules need are read (`status`, `error.type`, `error.reason`,
//! `failure_store`, `_index`, `_id`); everything else is skipped without being built. The body
//! is always parsed whole: a response is never truncated to a buffer size (Fluent Bit's
//! fixed response buffer silently misreads large replies); one too large to be an answer is
//! refused before it gets here (see [`super::client`]).
//!
//! Items are matched to the documents sent by `_id`, not by position: a proxy that reorders
//! them must not make a rejected document look accepted. Reasons are cut to
//! [`MAX_REASON_BYTES`] before they reach a log line or a dead-letter record.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};

use serde::Deserialize;

use crate::batch::id_hash;

/// The longest error reason (with its causes) kept for a log line or a dead-letter record:
/// enough for Elasticsearch's own reasons, which name the field and quote a bit of its value;
/// a 429 storm with megabyte reasons then writes kilobytes, not megabytes.
pub(crate) const MAX_REASON_BYTES: usize = 1024;

/// The longest `_id` quoted from an answer in a message.
const MAX_QUOTED_ID_BYTES: usize = 64;

/// `text` cut to at most `max` bytes on a character boundary, and marked so a reader knows.
pub(crate) fn shortened(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!(
        "{}… [cut: {} bytes in all]",
        &text[..end],
        text.len()
    ))
}

/// One item of a `_bulk` response, whatever its action (`create`, `index`, ...).
///
/// Small, and borrowing its `_id` from the answer: an answer holds thousands of items, and
/// a vector of them larger than the allocator's mmap threshold was mapped, faulted in and
/// unmapped again for every response (a third of the output's time in the kernel).
#[derive(Debug, Deserialize, PartialEq, Eq)]
pub(crate) struct BulkItemResult<'a> {
    #[serde(rename = "_id", default, borrow)]
    pub(crate) id: Option<Cow<'a, str>>,
    pub(crate) status: u16,
    /// Boxed: most items have none.
    #[serde(default)]
    pub(crate) error: Option<Box<ItemError>>,
    /// ES 9.1+: `used` when the document went to the failure store, `failed` when that failed
    /// too, `not_enabled` when the data stream has none.
    #[serde(default)]
    pub(crate) failure_store: Option<String>,
}

/// An item's `error` object.
#[derive(Debug, Deserialize, PartialEq, Eq, Clone)]
pub(crate) struct ItemError {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) reason: Option<String>,
    #[serde(default)]
    pub(crate) caused_by: Option<Box<ItemError>>,
}

impl ItemError {
    /// `reason`, followed by the reasons of its causes (the cause often says which field),
    /// cut to [`MAX_REASON_BYTES`].
    pub(crate) fn full_reason(&self) -> String {
        let whole = self.whole_reason();
        match shortened(&whole, MAX_REASON_BYTES) {
            Cow::Borrowed(_) => whole,
            Cow::Owned(cut) => cut,
        }
    }

    fn whole_reason(&self) -> String {
        let mut out = self.reason.clone().unwrap_or_default();
        let mut cause = self.caused_by.as_deref();
        while let Some(c) = cause {
            out.push_str(" (caused by ");
            out.push_str(&c.kind);
            if let Some(r) = &c.reason {
                out.push_str(": ");
                out.push_str(r);
            }
            out.push(')');
            cause = c.caused_by.as_deref();
        }
        out
    }
}

/// A `_bulk` response item is an object with one key, the action: `{"create":{...}}`.
#[derive(Deserialize)]
struct ItemEnvelope<'a> {
    #[serde(alias = "index", alias = "update", alias = "delete", borrow)]
    create: BulkItemResult<'a>,
}

/// Why a `_bulk` response cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum ResponseError {
    #[error("the _bulk response is not valid JSON: {0}")]
    NotJson(String),
    #[error("the _bulk response has {got} items for {sent} documents sent")]
    ItemCount { sent: usize, got: usize },
    #[error("item {position} of the _bulk response names _id {id:?}, which matches no document sent (or one already answered)")]
    Unmatched { position: usize, id: Option<String> },
}

impl BulkItemResult<'_> {
    /// Stored in the data stream's failure store: Elasticsearch then answers with the
    /// `_index` and `_id` of the *failure document* (a fresh id), not those of the document
    /// sent, so such an item cannot be matched by `_id`.
    fn is_failure_store_success(&self) -> bool {
        (200..300).contains(&self.status)
            && self.error.is_none()
            && self.failure_store.as_deref() == Some("used")
    }
}

/// Parses a 2xx `_bulk` body into one result per document sent, in the order the documents
/// were sent: `ids[i]` is the [`id_hash`] of the `_id` of document `i`. An answer with another
/// number of items, or with an item that matches no document, is refused whole: no verdict
/// of it is trusted.
pub(crate) fn parse_bulk<'a>(
    body: &'a [u8],
    ids: &[u64],
) -> Result<Vec<BulkItemResult<'a>>, ResponseError> {
    #[derive(Deserialize)]
    struct Raw<'a> {
        #[serde(borrow)]
        items: Vec<ItemEnvelope<'a>>,
    }
    let raw: Raw = serde_json::from_slice(body)
        .map_err(|e| ResponseError::NotJson(shortened(&e.to_string(), MAX_REASON_BYTES).into()))?;
    if raw.items.len() != ids.len() {
        return Err(ResponseError::ItemCount {
            sent: ids.len(),
            got: raw.items.len(),
        });
    }
    let items: Vec<BulkItemResult> = raw.items.into_iter().map(|i| i.create).collect();
    let Some(order) = match_items(ids, &items)? else {
        // The usual answer: every item in the place of its document.
        return Ok(items);
    };
    let mut slots: Vec<Option<BulkItemResult>> = items.into_iter().map(Some).collect();
    order
        .iter()
        .enumerate()
        .map(|(doc, &position)| {
            slots
                .get_mut(position)
                .and_then(Option::take)
                .ok_or(ResponseError::Unmatched {
                    position: doc,
                    id: None,
                })
        })
        .collect()
}

/// For each document, the position of its item in the answer.
///
/// Elasticsearch answers in request order with every item's `_id` (failures included:
/// `BulkItemResponse` writes the request's `_id` for them too), so the usual answer is
/// checked in one pass. Otherwise each item goes to the first document not yet answered with
/// its `_id` (ids are unique within a batch, since they name a file and an offset; should one
/// repeat, its items are taken in order). Items whose `_id` names no such document are only
/// accepted as failure-store successes, for the documents left, which then all get the same
/// verdict (stored in the failure store) whichever gets which; anything else is refused.
/// `None` when every item is in the place of its document.
fn match_items(ids: &[u64], items: &[BulkItemResult]) -> Result<Option<Vec<usize>>, ResponseError> {
    let answered: Vec<Option<u64>> = items
        .iter()
        .map(|item| item.id.as_deref().map(|id| id_hash(id.as_bytes())))
        .collect();
    let in_place = ids
        .iter()
        .zip(&answered)
        .all(|(id, answered)| *answered == Some(*id));
    if in_place {
        return Ok(None);
    }
    let mut waiting: HashMap<u64, VecDeque<usize>> = HashMap::with_capacity(ids.len());
    for (doc, id) in ids.iter().enumerate() {
        waiting.entry(*id).or_default().push_back(doc);
    }
    let mut order: Vec<Option<usize>> = vec![None; ids.len()];
    let mut strangers: Vec<usize> = Vec::new();
    for (position, answered) in answered.iter().enumerate() {
        let doc = answered
            .and_then(|id| waiting.get_mut(&id))
            .and_then(VecDeque::pop_front);
        match doc.and_then(|d| order.get_mut(d)) {
            Some(slot) => *slot = Some(position),
            None => strangers.push(position),
        }
    }
    let unanswered: Vec<usize> = (0..order.len()).filter(|d| order[*d].is_none()).collect();
    for (doc, position) in unanswered.into_iter().zip(strangers) {
        let item = &items[position];
        if !item.is_failure_store_success() {
            return Err(ResponseError::Unmatched {
                position,
                id: item
                    .id
                    .as_deref()
                    .map(|id| shortened(id, MAX_QUOTED_ID_BYTES).into_owned()),
            });
        }
        order[doc] = Some(position);
    }
    order
        .into_iter()
        .enumerate()
        .map(|(doc, p)| {
            p.ok_or(ResponseError::Unmatched {
                position: doc,
                id: None,
            })
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

/// The `type` and `reason` of a whole-request error body, for logs and fatal messages.
///
/// Elasticsearch answers `{"error":{"type":..,"reason":..},"status":n}`, some REST-layer
/// failures `{"error":"text","status":n}`, and a proxy in between may answer anything; the
/// fallback is the start of the body as text.
pub(crate) fn error_summary(body: &[u8]) -> String {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ErrorField {
        Object(ItemError),
        Text(String),
    }
    #[derive(Deserialize)]
    struct ErrorBody {
        error: ErrorField,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody {
            error: ErrorField::Object(e),
        }) => format!(
            "{}: {}",
            shortened(&e.kind, MAX_QUOTED_ID_BYTES),
            e.full_reason()
        ),
        Ok(ErrorBody {
            error: ErrorField::Text(t),
        }) => shortened(&t, MAX_REASON_BYTES).into_owned(),
        Err(_) => {
            const MAX: usize = 300;
            let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
            let text = text.trim();
            if text.is_empty() {
                "(empty body)".to_string()
            } else {
                text.to_string()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`parse_bulk`] for documents named by their `_id`s.
    fn parse<'a>(body: &'a [u8], ids: &[&str]) -> Result<Vec<BulkItemResult<'a>>, ResponseError> {
        let hashes: Vec<u64> = ids.iter().map(|id| id_hash(id.as_bytes())).collect();
        parse_bulk(body, &hashes)
    }

    /// Shape of a mixed response as documented in the bulk API reference (ES 9.2), with a
    /// created item, a version conflict, a mapping error, a rejection and a failure-store item.
    const MIXED: &str = r#"{
      "errors": true, "took": 4,
      "items": [
        {"create": {"_index": ".ds-logs-payment-default-2025.11.03-000001", "_id": "a-1",
          "_version": 1, "result": "created",
          "_shards": {"total": 2, "successful": 1, "failed": 0},
          "_seq_no": 0, "_primary_term": 1, "status": 201}},
        {"create": {"_index": ".ds-logs-payment-default-2025.11.03-000001", "_id": "a-2",
          "status": 409,
          "error": {"type": "version_conflict_engine_exception",
            "reason": "[a-2]: version conflict, document already exists (current version [1])",
            "index_uuid": "aAsFqTI0Tc2W0LCWgPNrOA", "shard": "0",
            "index": ".ds-logs-payment-default-2025.11.03-000001"}}},
        {"create": {"_index": ".ds-logs-payment-default-2025.11.03-000001", "_id": "a-3",
          "status": 400,
          "error": {"type": "document_parsing_exception",
            "reason": "[1:15] failed to parse field [http.response.status_code] of type [long] in document with id 'a-3'. Preview of field's value: 'abc'",
            "caused_by": {"type": "illegal_argument_exception",
              "reason": "For input string: \"abc\""}}}},
        {"create": {"_index": "logs-payment-default", "_id": "a-4", "status": 429,
          "error": {"type": "es_rejected_execution_exception",
            "reason": "rejected execution of coordinating operation"}}},
        {"create": {"_index": ".fs-logs-payment-default-2025.11.03-000002", "_id": "a-5",
          "_version": 1, "result": "created", "status": 201, "failure_store": "used"}}
      ]
    }"#;

    const MIXED_IDS: [&str; 5] = ["a-1", "a-2", "a-3", "a-4", "a-5"];

    #[test]
    fn every_item_of_a_mixed_response_is_read() {
        let items = parse(MIXED.as_bytes(), &MIXED_IDS).unwrap();
        let statuses: Vec<u16> = items.iter().map(|i| i.status).collect();
        assert_eq!(statuses, [201, 409, 400, 429, 201]);
        assert_eq!(items[0].id.as_deref(), Some("a-1"));
        assert!(items[0].error.is_none());
        assert_eq!(
            items[1].error.as_ref().unwrap().kind,
            "version_conflict_engine_exception"
        );
        assert_eq!(items[4].failure_store.as_deref(), Some("used"));
    }

    #[test]
    fn nested_causes_are_kept_in_the_reason() {
        let items = parse(MIXED.as_bytes(), &MIXED_IDS).unwrap();
        let reason = items[2].error.as_ref().unwrap().full_reason();
        assert!(
            reason.starts_with("[1:15] failed to parse field"),
            "{reason}"
        );
        assert!(
            reason.ends_with("(caused by illegal_argument_exception: For input string: \"abc\")"),
            "{reason}"
        );
    }

    #[test]
    fn index_actions_are_read_like_create_actions() {
        let body = br#"{"errors":false,"items":[{"index":{"_index":"x","_id":"1","status":200}}]}"#;
        let items = parse(body, &["1"]).unwrap();
        assert_eq!(items[0].status, 200);
    }

    #[test]
    fn a_response_with_a_different_item_count_is_rejected() {
        assert_eq!(
            parse(
                MIXED.as_bytes(),
                &["a-1", "a-2", "a-3", "a-4", "a-5", "a-6"]
            )
            .unwrap_err(),
            ResponseError::ItemCount { sent: 6, got: 5 }
        );
    }

    #[test]
    fn a_truncated_response_is_rejected() {
        let cut = &MIXED.as_bytes()[..MIXED.len() / 2];
        assert!(matches!(
            parse(cut, &MIXED_IDS),
            Err(ResponseError::NotJson(_))
        ));
        assert!(matches!(
            parse(b"<html>502</html>", &MIXED_IDS),
            Err(ResponseError::NotJson(_))
        ));
    }

    #[test]
    fn error_bodies_are_summarised() {
        let body = br#"{"error":{"root_cause":[{"type":"security_exception","reason":"unable to authenticate user [elastic] for REST request [/_bulk]"}],"type":"security_exception","reason":"unable to authenticate user [elastic] for REST request [/_bulk]","header":{"WWW-Authenticate":"Basic realm=\"security\""}},"status":401}"#;
        assert_eq!(
            error_summary(body),
            "security_exception: unable to authenticate user [elastic] for REST request [/_bulk]"
        );
        let text = br#"{"error":"Incorrect HTTP method for uri [/_bulk] and method [GET], allowed: [POST, PUT]","status":405}"#;
        assert_eq!(
            error_summary(text),
            "Incorrect HTTP method for uri [/_bulk] and method [GET], allowed: [POST, PUT]"
        );
        assert_eq!(error_summary(b"Bad Gateway\n"), "Bad Gateway");
        assert_eq!(error_summary(b""), "(empty body)");
    }

    fn item(id: Option<&str>, status: u16) -> String {
        let id = id.map(|i| format!(r#""_id":"{i}","#)).unwrap_or_default();
        let error = if status >= 300 {
            r#","error":{"type":"document_parsing_exception","reason":"bad"}"#
        } else {
            ""
        };
        format!(r#"{{"create":{{{id}"status":{status}{error}}}}}"#)
    }

    fn answer(items: &[String]) -> Vec<u8> {
        format!(r#"{{"errors":true,"items":[{}]}}"#, items.join(",")).into_bytes()
    }

    fn statuses<'a>(results: &'a [BulkItemResult<'a>]) -> Vec<(Option<&'a str>, u16)> {
        results
            .iter()
            .map(|r| (r.id.as_deref(), r.status))
            .collect()
    }

    #[test]
    fn a_reordered_answer_is_put_back_in_the_order_of_the_documents() {
        let body = answer(&[
            item(Some("c"), 201),
            item(Some("a"), 400),
            item(Some("b"), 201),
        ]);
        let results = parse(&body, &["a", "b", "c"]).unwrap();
        assert_eq!(
            statuses(&results),
            [(Some("a"), 400), (Some("b"), 201), (Some("c"), 201)],
            "the rejected document stays rejected"
        );
    }

    #[test]
    fn an_answer_naming_a_document_not_sent_is_refused() {
        let body = answer(&[item(Some("a"), 201), item(Some("x"), 201)]);
        assert!(matches!(
            parse(&body, &["a", "b"]),
            Err(ResponseError::Unmatched { position: 1, id: Some(ref id) }) if id == "x"
        ));
        // An item without an `_id` cannot be placed either.
        let body = answer(&[item(Some("a"), 201), item(None, 201)]);
        assert!(matches!(
            parse(&body, &["a", "b"]),
            Err(ResponseError::Unmatched { .. })
        ));
        // Nor one that answers a document twice while another gets nothing.
        let body = answer(&[item(Some("a"), 201), item(Some("a"), 400)]);
        assert!(matches!(
            parse(&body, &["a", "b"]),
            Err(ResponseError::Unmatched { position: 1, .. })
        ));
    }

    #[test]
    fn short_and_long_answers_are_refused() {
        let body = answer(&[item(Some("a"), 201)]);
        assert_eq!(
            parse(&body, &["a", "b"]).unwrap_err(),
            ResponseError::ItemCount { sent: 2, got: 1 }
        );
        let body = answer(&[item(Some("a"), 201), item(Some("b"), 201)]);
        assert_eq!(
            parse(&body, &["a"]).unwrap_err(),
            ResponseError::ItemCount { sent: 1, got: 2 }
        );
    }

    #[test]
    fn a_repeated_id_is_matched_by_its_position_among_its_namesakes() {
        let body = answer(&[
            item(Some("b"), 201),
            item(Some("a"), 409),
            item(Some("a"), 400),
        ]);
        let results = parse(&body, &["a", "b", "a"]).unwrap();
        assert_eq!(
            statuses(&results),
            [(Some("a"), 409), (Some("b"), 201), (Some("a"), 400)]
        );
    }

    #[test]
    fn failure_store_items_answered_with_their_own_id_fill_the_documents_left() {
        let fs = r#"{"create":{"_index":".fs-logs-a-default-2026.12.02-000002","_id":"Zx8_random","status":201,"failure_store":"used"}}"#;
        let body = answer(&[item(Some("c"), 400), fs.to_string(), item(Some("a"), 201)]);
        let results = parse(&body, &["a", "b", "c"]).unwrap();
        assert_eq!(results[0].status, 201);
        assert_eq!(results[1].failure_store.as_deref(), Some("used"));
        assert_eq!(results[2].status, 400);
        // A stranger that is not a failure-store success is not given to anyone.
        let body = answer(&[item(Some("zz"), 201), item(Some("a"), 201)]);
        assert!(parse(&body, &["a", "b"]).is_err());
    }

    #[test]
    fn reasons_are_cut_on_a_character_boundary_and_marked() {
        let long = "é".repeat(2000); // 4000 bytes, two per character
        let cut = shortened(&long, 1023);
        assert!(cut.starts_with(&"é".repeat(511)), "{cut}");
        assert!(cut.contains("… [cut: 4000 bytes in all]"), "{cut}");
        assert!(cut.len() < 1023 + 40);
        assert_eq!(shortened("short", 1024), "short");
        let e = ItemError {
            kind: "es_rejected_execution_exception".into(),
            reason: Some("x".repeat(5 * 1024 * 1024)),
            caused_by: None,
        };
        assert!(e.full_reason().len() < MAX_REASON_BYTES + 40);
        let body = format!(
            r#"{{"error":{{"type":"es_rejected_execution_exception","reason":"{}"}},"status":429}}"#,
            "y".repeat(3 * 1024 * 1024)
        );
        assert!(error_summary(body.as_bytes()).len() < MAX_REASON_BYTES + 100);
        let text = format!(r#"{{"error":"{}","status":400}}"#, "z".repeat(100_000));
        assert!(error_summary(text.as_bytes()).len() < MAX_REASON_BYTES + 40);
    }
}

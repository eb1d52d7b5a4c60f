//! Parsing Elasticsearch's answers: `_bulk` results and error bodies.
//!
//! Only the fields the retry rules need are read (`status`, `error.type`, `error.reason`,
//! `failure_store`, `_index`, `_id`); everything else is skipped without being built. The body
//! is always parsed whole: a response is never truncated to a buffer size (Fluent Bit's
//! fixed response buffer silently misreads large replies).

use serde::Deserialize;

/// One item of a `_bulk` response, whatever its action (`create`, `index`, ...).
#[derive(Debug, Deserialize, PartialEq, Eq)]
pub(crate) struct BulkItemResult {
    #[serde(rename = "_index", default)]
    pub(crate) index: Option<String>,
    #[serde(rename = "_id", default)]
    pub(crate) id: Option<String>,
    pub(crate) status: u16,
    #[serde(default)]
    pub(crate) error: Option<ItemError>,
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
    /// `reason`, followed by the reasons of its causes: the cause often says which field.
    pub(crate) fn full_reason(&self) -> String {
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
struct ItemEnvelope {
    #[serde(alias = "index", alias = "update", alias = "delete")]
    create: BulkItemResult,
}

/// Why a `_bulk` response cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum ResponseError {
    #[error("the _bulk response is not valid JSON: {0}")]
    NotJson(String),
    #[error("the _bulk response has {got} items for {sent} documents sent")]
    ItemCount { sent: usize, got: usize },
}

/// Parses a 2xx `_bulk` body, checking that it has one result per document sent.
pub(crate) fn parse_bulk(body: &[u8], sent: usize) -> Result<Vec<BulkItemResult>, ResponseError> {
    #[derive(Deserialize)]
    struct Raw {
        items: Vec<ItemEnvelope>,
    }
    let raw: Raw =
        serde_json::from_slice(body).map_err(|e| ResponseError::NotJson(e.to_string()))?;
    if raw.items.len() != sent {
        return Err(ResponseError::ItemCount {
            sent,
            got: raw.items.len(),
        });
    }
    Ok(raw.items.into_iter().map(|i| i.create).collect())
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
        }) => format!("{}: {}", e.kind, e.full_reason()),
        Ok(ErrorBody {
            error: ErrorField::Text(t),
        }) => t,
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

    #[test]
    fn every_item_of_a_mixed_response_is_read() {
        let items = parse_bulk(MIXED.as_bytes(), 5).unwrap();
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
        let items = parse_bulk(MIXED.as_bytes(), 5).unwrap();
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
        let items = parse_bulk(body, 1).unwrap();
        assert_eq!(items[0].status, 200);
    }

    #[test]
    fn a_response_with_a_different_item_count_is_rejected() {
        assert_eq!(
            parse_bulk(MIXED.as_bytes(), 6).unwrap_err(),
            ResponseError::ItemCount { sent: 6, got: 5 }
        );
    }

    #[test]
    fn a_truncated_response_is_rejected() {
        let cut = &MIXED.as_bytes()[..MIXED.len() / 2];
        assert!(matches!(parse_bulk(cut, 5), Err(ResponseError::NotJson(_))));
        assert!(matches!(
            parse_bulk(b"<html>502</html>", 5),
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
}

//! Sending documents again with the `_id`s they were first sent with: what `verify
//! --repair` and `dead-letters replay` do.
//!
//! Every action is a `create`, so a document already stored is answered 409 and is never
//! stored twice. Items answered 429 or 5xx are retried a few times with a growing pause (a
//! command should finish, not wait forever like the shipper); any other refusal is reported
//! with Elasticsearch's reason.

use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;

use crate::output::client::{bulk_answer_limit, EsClient, RequestBody};
use crate::output::request_builder::NDJSON;
use crate::output::response::{error_summary, parse_bulk};
use crate::output::service::BULK_PATH;

/// Attempts per document before an item answered 429/5xx is reported as not sent.
const ATTEMPTS: u32 = 5;

/// One document to send: its target, its `_id` and its source (one JSON line).
#[derive(Debug, Clone)]
pub(crate) struct Resend {
    pub(crate) index: String,
    pub(crate) id: String,
    pub(crate) source: Vec<u8>,
}

/// What became of one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Stored now.
    Created,
    /// Elasticsearch already had it (409).
    AlreadyThere,
    /// Refused, with the status and the reason.
    Refused { status: u16, reason: String },
}

/// Sends `docs` as `create` actions; one outcome per document, in order. A request that
/// gets no usable answer after the retries is an error (nothing is known of the batch).
pub(crate) async fn send(client: &EsClient, docs: &[Resend]) -> anyhow::Result<Vec<Outcome>> {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; docs.len()];
    let mut pending: Vec<usize> = (0..docs.len()).collect();
    let mut attempt = 0;
    while !pending.is_empty() {
        attempt += 1;
        let body = body_of(docs, &pending);
        let request = RequestBody {
            bytes: Bytes::from(body),
            content_type: NDJSON,
            gzip: false,
        };
        let retry_later = match client
            .send(
                Method::POST,
                BULK_PATH,
                Some(request),
                bulk_answer_limit(pending.len()),
            )
            .await
        {
            Err(e) if attempt < ATTEMPTS => {
                tracing::debug!("{e}; trying again");
                pending.clone()
            }
            Err(e) => anyhow::bail!("{e}"),
            Ok(reply) if !(200..300).contains(&reply.status) => {
                let why = format!("HTTP {}: {}", reply.status, error_summary(&reply.body));
                if attempt < ATTEMPTS && (reply.status == 429 || reply.status >= 500) {
                    pending.clone()
                } else {
                    anyhow::bail!("{} refused the _bulk request: {why}", reply.node.shown);
                }
            }
            Ok(reply) => {
                let ids: Vec<u64> = pending
                    .iter()
                    .map(|&i| crate::batch::id_hash(docs[i].id.as_bytes()))
                    .collect();
                let items = parse_bulk(&reply.body, &ids)?;
                let mut again = Vec::new();
                for (&i, item) in pending.iter().zip(items) {
                    match item.status {
                        200..=299 => outcomes[i] = Some(Outcome::Created),
                        409 => outcomes[i] = Some(Outcome::AlreadyThere),
                        429 | 500..=599 if attempt < ATTEMPTS => again.push(i),
                        status => {
                            let reason = item
                                .error
                                .map(|e| format!("{}: {}", e.kind, e.full_reason()))
                                .unwrap_or_default();
                            outcomes[i] = Some(Outcome::Refused { status, reason });
                        }
                    }
                }
                again
            }
        };
        pending = retry_later;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or(Outcome::Refused {
                status: 0,
                reason: "not sent".into(),
            })
        })
        .collect())
}

/// The NDJSON body of the documents `which`.
fn body_of(docs: &[Resend], which: &[usize]) -> Vec<u8> {
    let mut body = Vec::new();
    for &i in which {
        let d = &docs[i];
        let action = serde_json::json!({"create": {"_index": d.index, "_id": d.id}});
        // A Value of strings always serialises.
        let _ = serde_json::to_writer(&mut body, &action);
        body.push(b'\n');
        body.extend_from_slice(d.source.strip_suffix(b"\n").unwrap_or(&d.source));
        body.push(b'\n');
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_create_actions_with_the_original_ids() {
        let docs = vec![
            Resend {
                index: "logs-a-default".into(),
                id: "k1".into(),
                source: b"{\"m\":1}\n".to_vec(),
            },
            Resend {
                index: "logs-b-default".into(),
                id: "k2".into(),
                source: b"{\"m\":2}".to_vec(),
            },
        ];
        let body = String::from_utf8(body_of(&docs, &[1, 0])).unwrap();
        let lines: Vec<serde_json::Value> = body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0]["create"]["_id"], "k2");
        assert_eq!(lines[0]["create"]["_index"], "logs-b-default");
        assert_eq!(lines[1]["m"], 2);
        assert_eq!(lines[2]["create"]["_id"], "k1");
        assert_eq!(lines[3]["m"], 1);
        assert!(body.ends_with("}\n"));
    }
}

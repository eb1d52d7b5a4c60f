//! A hostile proxy in front of the server: `_bulk` answers rewritten on their way back (see
//! [`HostileAnswer`]). The request itself was executed by the server as Elasticsearch would;
//! only what the client reads is wrong, which is what a client must survive without running
//! out of memory or believing a wrong verdict.

use std::collections::HashMap;
use std::io::Write as _;
use std::pin::Pin;
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use http_body::Frame;
use serde_json::Value;

use crate::faults::HostileAnswer;

/// How every made-up answer starts: enough to look like a `_bulk` answer to a parser that
/// starts reading before it has the whole body.
const OPENING: &[u8] = br#"{"errors":false,"took":1,"items":["#;

/// Applies `answer` to the server's own answer `resp`.
pub async fn rewrite(resp: Response, answer: HostileAnswer) -> Response {
    match answer {
        HostileAnswer::HugeBody { bytes } => made_up(Body::new(Whitespace::new(bytes)), None),
        HostileAnswer::GzipBomb { bytes } => made_up(Body::from(gzip_bomb(bytes)), Some("gzip")),
        HostileAnswer::HugeError {
            status,
            reason_bytes,
        } => {
            let reason = "r".repeat(usize::try_from(reason_bytes).unwrap_or(usize::MAX));
            let body = serde_json::json!({
                "error": {"type": "es_rejected_execution_exception", "reason": reason},
                "status": status,
            });
            let mut resp = made_up(
                Body::from(serde_json::to_vec(&body).unwrap_or_default()),
                None,
            );
            *resp.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
            resp
        }
        HostileAnswer::ReorderedItems => edit_items(resp, |items| items.reverse()).await,
        HostileAnswer::ShortItems => {
            edit_items(resp, |items| {
                items.pop();
            })
            .await
        }
        HostileAnswer::LongItems => {
            edit_items(resp, |items| {
                if let Some(last) = items.last().cloned() {
                    items.push(last);
                }
            })
            .await
        }
    }
}

/// A 200 answer with `body`, as the proxy sends it (the caller may change the status).
fn made_up(body: Body, encoding: Option<&'static str>) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(encoding) = encoding {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
    }
    resp
}

/// The server's answer with its `items` array changed by `edit`; an answer that is not a
/// JSON object with `items` (an error) goes through unchanged.
async fn edit_items(resp: Response, edit: impl FnOnce(&mut Vec<Value>)) -> Response {
    let (mut parts, body) = resp.into_parts();
    // The server's own answers are small: the whole of it fits in memory.
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let mut value: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(_) => return Response::from_parts(parts, Body::from(bytes)),
    };
    match value.get_mut("items").and_then(Value::as_array_mut) {
        Some(items) => edit(items),
        None => return Response::from_parts(parts, Body::from(bytes)),
    }
    let edited = serde_json::to_vec(&value).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(edited))
}

/// A gzip stream that decompresses to [`OPENING`] and then whitespace, `bytes` bytes in all.
/// Even at its fastest level deflate compresses a run about two hundred to one, so 300 MiB
/// are sent as about 1.4 MiB. Built once per size and kept: compressing takes a moment.
pub fn gzip_bomb(bytes: u64) -> Bytes {
    static MADE: OnceLock<Mutex<HashMap<u64, Bytes>>> = OnceLock::new();
    let made = MADE.get_or_init(Mutex::default);
    if let Some(b) = made.lock().unwrap_or_else(|p| p.into_inner()).get(&bytes) {
        return b.clone();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let opening = &OPENING[..OPENING
        .len()
        .min(usize::try_from(bytes).unwrap_or(usize::MAX))];
    let _ = gz.write_all(opening);
    let spaces = vec![b' '; 1024 * 1024];
    let mut left = bytes.saturating_sub(opening.len() as u64);
    while left > 0 {
        let n = usize::try_from(left.min(spaces.len() as u64)).unwrap_or(spaces.len());
        let _ = gz.write_all(&spaces[..n]);
        left -= n as u64;
    }
    let bomb = Bytes::from(gz.finish().unwrap_or_default());
    made.lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(bytes, bomb.clone());
    bomb
}

/// A body of [`OPENING`] and then whitespace, `bytes` bytes in all, made as it is sent.
struct Whitespace {
    left: u64,
    opened: bool,
    chunk: Bytes,
}

impl Whitespace {
    fn new(bytes: u64) -> Self {
        Whitespace {
            left: bytes,
            opened: false,
            chunk: Bytes::from(vec![b' '; 64 * 1024]),
        }
    }
}

impl http_body::Body for Whitespace {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let next = if self.opened {
            self.chunk.clone()
        } else {
            self.opened = true;
            Bytes::from_static(OPENING)
        };
        let n = usize::try_from(self.left.min(next.len() as u64)).unwrap_or(next.len());
        self.left -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(next.slice(..n)))))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn the_bomb_is_small_and_expands_to_what_was_asked() {
        let size = 64 * 1024 * 1024;
        let bomb = gzip_bomb(size);
        assert!(bomb.len() < 1024 * 1024, "{} bytes", bomb.len());
        let mut expanded = Vec::new();
        flate2::read::GzDecoder::new(&bomb[..])
            .read_to_end(&mut expanded)
            .unwrap();
        assert_eq!(expanded.len() as u64, size);
        assert!(expanded.starts_with(OPENING));
        assert_eq!(gzip_bomb(size).as_ptr(), bomb.as_ptr(), "made once");
    }

    #[tokio::test]
    async fn the_huge_body_has_the_size_asked_for() {
        let body = Body::new(Whitespace::new(1_000_000));
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        assert_eq!(bytes.len(), 1_000_000);
        assert!(bytes.starts_with(OPENING));
    }

    #[tokio::test]
    async fn items_are_reordered_cut_or_repeated() {
        let answer = || {
            Response::new(Body::from(
                r#"{"errors":false,"items":[{"create":{"_id":"a","status":201}},{"create":{"_id":"b","status":201}}]}"#,
            ))
        };
        let ids = |resp: Response| async move {
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap();
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["create"]["_id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        let reordered = rewrite(answer(), HostileAnswer::ReorderedItems).await;
        assert_eq!(ids(reordered).await, ["b", "a"]);
        let short = rewrite(answer(), HostileAnswer::ShortItems).await;
        assert_eq!(ids(short).await, ["a"]);
        let long = rewrite(answer(), HostileAnswer::LongItems).await;
        assert_eq!(ids(long).await, ["a", "b", "b"]);
    }
}

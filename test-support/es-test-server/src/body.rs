//! Reading request bodies like Elasticsearch's HTTP layer: the
//! `http.max_content_length` limit (checked against `Content-Length` before
//! reading anything, and against the decoded size while reading), `gzip` /
//! `deflate` `Content-Encoding`, and the JSON media types it accepts.

use std::io::Read;

use axum::body::Body;
use axum::http::{header, HeaderMap};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::error::EsError;

/// A request body after decoding.
#[derive(Debug)]
pub struct DecodedBody {
    pub bytes: Bytes,
    pub wire_bytes: u64,
    pub gzip: bool,
}

/// The 413 Elasticsearch answers past `http.max_content_length`.
pub fn too_long(len: u64, limit: u64) -> EsError {
    EsError::new(
        413,
        "content_too_long_exception",
        format!("entity content is too long [{len}] for the configured buffer limit [{limit}]"),
    )
}

/// `Content-Length`, if present and numeric.
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse().ok())
}

fn encoding(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_ascii_lowercase())
}

pub fn is_gzip(headers: &HeaderMap) -> bool {
    matches!(encoding(headers).as_deref(), Some("gzip") | Some("x-gzip"))
}

/// Reads and decodes a body, enforcing `limit` on the decoded size.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: u64,
) -> Result<DecodedBody, EsError> {
    let enc = encoding(headers);
    let compressed = matches!(
        enc.as_deref(),
        Some("gzip") | Some("x-gzip") | Some("deflate")
    );
    if !compressed {
        if let Some(len) = content_length(headers) {
            if len > limit {
                return Err(too_long(len, limit));
            }
        }
    }
    // Compressed bodies are bounded by the same limit on the wire (they can
    // only grow when decoded) and then checked again after decoding.
    let collected = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX))
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<LengthLimitError>().is_some() {
                too_long(content_length(headers).unwrap_or(limit + 1), limit)
            } else {
                EsError::new(
                    400,
                    "illegal_argument_exception",
                    format!("failed to read the request body: {e}"),
                )
            }
        })?;
    let raw = collected.to_bytes();
    let wire_bytes = raw.len() as u64;
    let decoded = match enc.as_deref() {
        None | Some("identity") | Some("") => raw,
        Some("gzip") | Some("x-gzip") => {
            decode(flate2::read::MultiGzDecoder::new(&raw[..]), limit)?
        }
        Some("deflate") => decode(flate2::read::ZlibDecoder::new(&raw[..]), limit)?,
        Some(other) => {
            return Err(EsError::illegal_argument(format!(
                "Unsupported Content-Encoding [{other}]"
            )));
        }
    };
    Ok(DecodedBody {
        bytes: decoded,
        wire_bytes,
        gzip: compressed,
    })
}

fn decode(reader: impl Read, limit: u64) -> Result<Bytes, EsError> {
    let mut out = Vec::new();
    reader.take(limit + 1).read_to_end(&mut out).map_err(|e| {
        EsError::illegal_argument(format!("failed to decompress the request body: {e}"))
    })?;
    if out.len() as u64 > limit {
        return Err(too_long(out.len() as u64, limit));
    }
    Ok(Bytes::from(out))
}

/// Media types Elasticsearch parses as JSON (reference "API conventions":
/// `application/json`, `application/x-ndjson`, and the versioned vendor types
/// `application/vnd.elasticsearch+json;compatible-with=8|9`).
/// Returns Err with the 406 message otherwise.
pub fn check_json_content_type(headers: &HeaderMap, ndjson: bool) -> Result<(), String> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Err("Content-Type header is missing".to_string());
    };
    let ct = ct
        .to_str()
        .map_err(|_| "Content-Type header [?] is not supported".to_string())?;
    let mut parts = ct.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let ok = match essence.as_str() {
        "application/json" | "application/x-ndjson" => true,
        "application/vnd.elasticsearch+json" | "application/vnd.elasticsearch+x-ndjson" => {
            let version = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("compatible-with"))
                .map(|(_, v)| v.trim().to_string());
            matches!(version.as_deref(), Some("8") | Some("9"))
        }
        _ => false,
    };
    let _ = ndjson;
    if ok {
        Ok(())
    } else {
        Err(format!("Content-Type header [{ct}] is not supported"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use std::io::Write;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[tokio::test]
    async fn gzip_bodies_are_decoded_and_limited_on_decoded_size() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&vec![b'a'; 10_000]).unwrap();
        let gz = enc.finish().unwrap();
        let h = headers(&[("content-encoding", "gzip")]);
        let d = read_body(&h, Body::from(gz.clone()), 20_000).await.unwrap();
        assert_eq!(d.bytes.len(), 10_000);
        assert!(d.gzip);
        assert_eq!(d.wire_bytes, gz.len() as u64);
        let e = read_body(&h, Body::from(gz), 5_000).await.unwrap_err();
        assert_eq!(e.status, 413);
    }

    #[tokio::test]
    async fn content_length_above_limit_is_refused_before_reading() {
        let h = headers(&[("content-length", "1000")]);
        let e = read_body(&h, Body::empty(), 10).await.unwrap_err();
        assert_eq!(e.kind, "content_too_long_exception");
    }

    #[test]
    fn json_media_types_and_vendor_types_are_accepted() {
        assert!(check_json_content_type(
            &headers(&[("content-type", "application/x-ndjson")]),
            true
        )
        .is_ok());
        assert!(check_json_content_type(
            &headers(&[("content-type", "application/json; charset=UTF-8")]),
            true
        )
        .is_ok());
        assert!(check_json_content_type(
            &headers(&[(
                "content-type",
                "application/vnd.elasticsearch+x-ndjson;compatible-with=9"
            )]),
            true
        )
        .is_ok());
        assert!(check_json_content_type(
            &headers(&[(
                "content-type",
                "application/vnd.elasticsearch+x-ndjson;compatible-with=7"
            )]),
            true
        )
        .is_err());
        assert_eq!(
            check_json_content_type(&headers(&[("content-type", "text/plain")]), true).unwrap_err(),
            "Content-Type header [text/plain] is not supported"
        );
        assert!(check_json_content_type(&HeaderMap::new(), true).is_err());
    }
}

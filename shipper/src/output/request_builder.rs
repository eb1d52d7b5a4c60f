//! Turning a [`Batch`] into the body of a `_bulk` request.
//!
//! The batcher already wrote the NDJSON, so there is nothing to encode: the body is sent as
//! is, or gzipped. Uncompressed, the batch's buffer is lent to the request without a copy and
//! taken back afterwards (the batch must survive the request: its items may be retried).

use std::io::{self, Write};

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;

use super::client::RequestBody;
use crate::batch::Batch;

/// `_bulk` takes NDJSON.
pub(crate) const NDJSON: &str = "application/x-ndjson";

/// A `_bulk` body ready to send.
#[derive(Debug)]
pub(crate) struct BulkRequest {
    pub(crate) body: RequestBody,
    /// Size before compression (what `http.max_content_length` is compared with).
    #[cfg(test)]
    pub(crate) uncompressed_len: usize,
}

/// Builds the request for `batch`. Without compression this moves the batch's body into the
/// request: call [`give_back`] once the request is done.
pub(crate) fn build(batch: &mut Batch, gzip: bool) -> io::Result<BulkRequest> {
    #[cfg(test)]
    let uncompressed_len = batch.body.len();
    let (bytes, gzipped) = if gzip {
        (Bytes::from(gzip_bytes(&batch.body)?), true)
    } else {
        (Bytes::from(std::mem::take(&mut batch.body)), false)
    };
    Ok(BulkRequest {
        body: RequestBody {
            bytes,
            content_type: NDJSON,
            gzip: gzipped,
        },
        #[cfg(test)]
        uncompressed_len,
    })
}

/// Puts the body lent by [`build`] back into the batch (no copy once the HTTP client has
/// released its reference, which it has after the response).
pub(crate) fn give_back(batch: &mut Batch, request: BulkRequest) {
    if !request.body.gzip {
        batch.body = Vec::from(request.body.bytes);
    }
}

/// Gzip at the fastest level: log lines compress 5-10x even there, and the CPU is better
/// spent reading files than squeezing the last few percent.
pub(crate) fn gzip_bytes(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(data.len() / 4 + 64), Compression::fast());
    encoder.write_all(data)?;
    encoder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{BatchItem, Origin};
    use flate2::read::GzDecoder;
    use std::io::Read;

    pub(crate) fn batch_of(docs: &[(&str, &str)]) -> Batch {
        let mut b = Batch::default();
        for (i, (id, source)) in docs.iter().enumerate() {
            let action_start = b.body.len();
            b.body.extend_from_slice(
                format!(r#"{{"create":{{"_index":"logs-payment-default","_id":"{id}"}}}}"#)
                    .as_bytes(),
            );
            b.body.push(b'\n');
            let source_start = b.body.len();
            b.body.extend_from_slice(source.as_bytes());
            b.body.push(b'\n');
            b.items.push(BatchItem {
                action_start,
                source_start,
                end: b.body.len(),
                id_hash: crate::batch::id_hash(id.as_bytes()),
                origin: Origin {
                    file: 0,
                    seq: i as u64,
                    budget_bytes: 10,
                },
                may_be_stored: false,
            });
        }
        b
    }

    #[test]
    fn plain_body_is_the_batch_ndjson_and_comes_back() {
        let mut b = batch_of(&[("a", r#"{"m":1}"#), ("b", r#"{"m":2}"#)]);
        let original = b.body.clone();
        let req = build(&mut b, false).unwrap();
        assert_eq!(&req.body.bytes[..], &original[..]);
        assert_eq!(req.body.content_type, "application/x-ndjson");
        assert!(!req.body.gzip);
        assert_eq!(req.uncompressed_len, original.len());
        assert!(req.body.bytes.ends_with(b"\n"));
        give_back(&mut b, req);
        assert_eq!(b.body, original);
    }

    #[test]
    fn gzip_body_decompresses_to_the_batch_ndjson() {
        let docs: Vec<(String, String)> = (0..200)
            .map(|i| {
                (
                    format!("id-{i}"),
                    format!(r#"{{"message":"payment accepted {i}"}}"#),
                )
            })
            .collect();
        let refs: Vec<(&str, &str)> = docs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let mut b = batch_of(&refs);
        let original = b.body.clone();
        let req = build(&mut b, true).unwrap();
        assert!(req.body.gzip);
        assert!(req.body.bytes.len() < original.len() / 3);
        let mut out = Vec::new();
        GzDecoder::new(&req.body.bytes[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, original);
        give_back(&mut b, req);
        assert_eq!(b.body, original);
    }
}

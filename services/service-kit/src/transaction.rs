//! Transaction ids: one id per request, carried across services in `X-Transaction-ID`.
//!
//! An incoming id is accepted only when it is a sane token (at most 64 characters of
//! `[A-Za-z0-9._-]`, and no run of 13 or more digits): the header comes from outside, ends up
//! in every log line unmasked and is echoed in the response, so an unbounded or free-form
//! value would let a caller inject text into our logs, and a long run of digits may be a
//! card number (`4111-1111-1111-1111`). Anything else is replaced by a fresh UUID v7, whose
//! time-ordered prefix keeps ids of one period close together in the index.

use std::fmt;
use std::sync::Arc;

use axum::http::HeaderValue;

/// Longest id accepted from a caller.
pub const MAX_LEN: usize = 64;

/// Digits an id may hold in one run (digits joined by `.`, `-` or `_`): fewer than the
/// shortest card number.
pub const MAX_DIGIT_RUN: usize = ::redact::MIN_PAN_DIGITS - 1;

/// A request's transaction id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionId(Arc<str>);

impl TransactionId {
    /// A new UUID v7 that the other services accept back. About one UUID v7 in three
    /// hundred has a run of 13 digits across its leading groups; ids drawn in the same
    /// millisecond share that prefix and counter, so another is built with fresh random
    /// bits, and should the time prefix itself be the run, a random UUID v4 is used.
    pub fn generate() -> Self {
        let id = uuid::Uuid::now_v7().to_string();
        if is_sane(&id) {
            return Self(id.into());
        }
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut last = id;
        for attempt in 0..64 {
            let random = uuid::Uuid::new_v4().into_bytes();
            let mut counter_random = [0u8; 10];
            counter_random.copy_from_slice(&random[..10]);
            let id = if attempt < 32 {
                uuid::Builder::from_unix_timestamp_millis(millis, &counter_random)
                    .into_uuid()
                    .to_string()
            } else {
                uuid::Uuid::new_v4().to_string()
            };
            if is_sane(&id) {
                return Self(id.into());
            }
            last = id;
        }
        Self(last.into())
    }

    /// The caller's id when it is sane, otherwise a new one.
    pub fn from_header_or_generate(header: Option<&HeaderValue>) -> Self {
        header
            .and_then(|h| h.to_str().ok())
            .and_then(Self::parse)
            .unwrap_or_else(Self::generate)
    }

    /// `Some` when `text` is a sane id.
    pub fn parse(text: &str) -> Option<Self> {
        is_sane(text).then(|| Self(text.into()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a header value.
    pub fn header_value(&self) -> HeaderValue {
        // Only sane ids and UUIDs get here: visible ASCII, always a valid header value.
        HeaderValue::from_str(&self.0).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
    }
}

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a caller-supplied id may be used as is: bounded, safe characters, and no run of
/// digits as long as a card number, whatever its checksum (transaction ids are logged
/// verbatim, never masked).
pub fn is_sane(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && ::redact::longest_digit_run(text) <= MAX_DIGIT_RUN
}

tokio::task_local! {
    static CURRENT: TransactionId;
}

/// The transaction id of the request being handled on this task, if any.
///
/// The request layer sets it for the whole handler future, so outgoing calls can forward
/// it without every handler passing it along.
pub fn current() -> Option<TransactionId> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Runs `future` with `id` as the current transaction id.
pub async fn scope<F: std::future::Future>(id: TransactionId, future: F) -> F::Output {
    CURRENT.scope(id, future).await
}

/// Whether this thread is currently polling a request (used by the panic hook).
pub(crate) fn in_request() -> bool {
    CURRENT.try_with(|_| ()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_caller_ids_are_kept() {
        for id in [
            "abc",
            "0192f0c1-7b3e-7c2a-9a7e-2f1d4f1e8a9b",
            "A.b_c-1",
            &"x".repeat(64),
        ] {
            let h = HeaderValue::from_str(id).expect("header");
            assert_eq!(
                TransactionId::from_header_or_generate(Some(&h)).as_str(),
                id
            );
        }
    }

    #[test]
    fn unsafe_or_oversized_caller_ids_are_replaced_by_a_uuid_v7() {
        // From "4111...": card numbers in the forms that got past the old check, and runs
        // of 13 digits that are no card number (they could be one with another digit).
        for id in [
            "",
            "a b",
            "x\"}",
            "ü",
            &"x".repeat(65),
            "a/b",
            "a\tb",
            "4111111111111111",
            "4111-1111-1111-1111",
            "4111.1111.1111.1111",
            "x4111111111111111y",
            "4111_1111_1111_1111",
            "1234567890123",
            "ab-12.34-56.78-90.12-3",
        ] {
            let h = HeaderValue::from_bytes(id.as_bytes()).ok();
            let tx = TransactionId::from_header_or_generate(h.as_ref());
            assert_ne!(tx.as_str(), id);
            let uuid = uuid::Uuid::parse_str(tx.as_str()).expect("a UUID");
            assert!(matches!(uuid.get_version_num(), 7 | 4), "{uuid}");
        }
    }

    #[test]
    fn ids_with_twelve_digits_in_a_row_are_still_accepted() {
        for id in ["order-123456789012", "12345678.9012-x"] {
            let h = HeaderValue::from_str(id).expect("header");
            assert_eq!(
                TransactionId::from_header_or_generate(Some(&h)).as_str(),
                id
            );
        }
    }

    #[test]
    fn generated_ids_are_always_accepted_back() {
        for _ in 0..10_000 {
            let id = TransactionId::generate();
            assert!(is_sane(id.as_str()), "{id}");
        }
    }

    #[test]
    fn missing_header_gives_distinct_ids() {
        let a = TransactionId::from_header_or_generate(None);
        let b = TransactionId::from_header_or_generate(None);
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn current_id_is_visible_inside_the_scope_only() {
        assert!(current().is_none());
        let id = TransactionId::generate();
        let seen = scope(id.clone(), async { current() }).await;
        assert_eq!(seen, Some(id));
        assert!(current().is_none());
    }
}

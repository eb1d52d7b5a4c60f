//! Tags the shipper puts in `tags` when a line could not be shipped as written, and the
//! values of `log.flags`.
//!
//! Such a line is shipped as `{"message": <the line>, "tags": [...]}` so that nothing read is
//! lost; the tags say why it is not the structured document the service meant to write.

/// The line is not a JSON object (Logstash's spelling, so existing searches keep working).
pub const NOT_JSON: &str = "_jsonparsefailure";
/// The line is not valid UTF-8; its invalid bytes are replaced by U+FFFD.
pub const INVALID_UTF8: &str = "_invalid_utf8";
/// The line was longer than the limit and is cut to it.
pub const TRUNCATED: &str = "_truncated";
/// The last line of a file never got its newline before the file was finished.
pub const UNTERMINATED: &str = "_unterminated";

/// A line of a container log file (CRI or Docker json-file) that is not a record of its
/// runtime's format; shipped whole as `message`.
pub const CONTAINER_PARSE_FAILURE: &str = "_containerparsefailure";

/// Every tag above.
pub const ALL: [&str; 5] = [
    NOT_JSON,
    INVALID_UTF8,
    TRUNCATED,
    UNTERMINATED,
    CONTAINER_PARSE_FAILURE,
];

/// Value of `log.flags` (ECS) on a line that was cut to the length limit.
pub const FLAG_TRUNCATED: &str = "truncated";

#[cfg(test)]
mod tests {
    #[test]
    fn tags_are_unique_and_start_with_an_underscore() {
        let mut tags = super::ALL.to_vec();
        tags.sort_unstable();
        tags.dedup();
        assert_eq!(tags.len(), super::ALL.len());
        assert!(super::ALL.iter().all(|t| t.starts_with('_')));
    }
}

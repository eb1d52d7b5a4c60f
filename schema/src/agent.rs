//! Who ships the documents: the values of `agent.type` and `agent.name` the shipper writes,
//! and the product name it gives in its HTTP `User-Agent`.

/// `agent.type` of every shipped document, and the product in the shipper's `User-Agent`.
pub const TYPE: &str = "didban-shipper";

/// `agent.name` of every shipped document: the name of the shipper binary.
pub const NAME: &str = "shipper";

#[cfg(test)]
mod tests {
    #[test]
    fn type_and_name_are_distinct_plain_tokens() {
        for value in [super::TYPE, super::NAME] {
            assert!(!value.is_empty());
            assert!(
                value.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{value}"
            );
        }
        assert_ne!(super::TYPE, super::NAME);
    }
}

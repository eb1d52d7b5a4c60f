//! The alert engine's end of the document tap: runs on the reading thread.
//!
//! For each document it only compares a few strings against the rules' filters; a document
//! no rule counts (nearly all of them: ApplicationInfo) costs no allocation. A matching one
//! becomes a small owned [`LogEvent`] pushed with `try_send` into a bounded queue; when the
//! queue is full the event is dropped and counted, so alerting can lose an event under a
//! flood but can never slow shipping down.

use tokio::sync::mpsc;

use super::config::{LogRule, RuleFilter};
use super::telemetry as m;
use crate::feed::{DocumentTap, TappedDocument};

/// Longest text kept from a document field: enough for a message, bounded memory per event.
const MAX_FIELD_BYTES: usize = 512;

/// A document that at least one log rule counts.
#[derive(Debug, Clone)]
pub(crate) struct LogEvent {
    /// Bit `i` set: rule `i` counts this document.
    pub(crate) rules: u64,
    /// The alert instance it belongs to: `service.name`, else the dataset.
    pub(crate) group: String,
    pub(crate) timestamp: Option<String>,
    pub(crate) message: Option<String>,
    pub(crate) error_type: Option<String>,
    pub(crate) error_message: Option<String>,
    pub(crate) transaction_id: Option<String>,
}

/// The engine's [`DocumentTap`]: pushes matching documents to the log rule evaluator. The
/// reading thread owns it (see [`AlertEngine::take_tap`](crate::AlertEngine::take_tap)).
pub struct AlertTap {
    filters: Vec<RuleFilter>,
    tx: mpsc::Sender<LogEvent>,
}

impl AlertTap {
    pub(crate) fn new(rules: &[LogRule], tx: mpsc::Sender<LogEvent>) -> Self {
        AlertTap {
            filters: rules.iter().map(|r| r.filter.clone()).collect(),
            tx,
        }
    }
}

impl DocumentTap for AlertTap {
    fn observe(&mut self, doc: &TappedDocument<'_>) {
        let mut mask = 0u64;
        for (i, f) in self.filters.iter().enumerate().take(64) {
            if matches(f, doc) {
                mask |= 1 << i;
            }
        }
        if mask == 0 {
            return;
        }
        let group = doc.service_name.unwrap_or(doc.dataset);
        let event = LogEvent {
            rules: mask,
            group: clip(group),
            timestamp: doc.timestamp.map(clip),
            message: doc.message.map(clip),
            error_type: doc.error_type.map(clip),
            error_message: doc.error_message.map(clip),
            transaction_id: doc.transaction_id.map(clip),
        };
        match self.tx.try_send(event) {
            Ok(()) => metrics::counter!(m::EVENTS).increment(1),
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!(m::EVENTS_DROPPED).increment(1)
            }
            // The engine has stopped (shutdown): nothing to count.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

/// Whether `filter` counts `doc`. Category and level compare without case (`ERROR` and
/// `error` are the same level); a service matches `service.name` or the dataset made from it.
pub(crate) fn matches(filter: &RuleFilter, doc: &TappedDocument<'_>) -> bool {
    if let Some(s) = &filter.service {
        if doc.service_name != Some(s.as_str()) && doc.dataset != s {
            return false;
        }
    }
    if let Some(d) = &filter.dataset {
        if doc.dataset != d {
            return false;
        }
    }
    if let Some(c) = &filter.category {
        if !doc.category.is_some_and(|v| v.eq_ignore_ascii_case(c)) {
            return false;
        }
    }
    if let Some(l) = &filter.level {
        if !doc.level.is_some_and(|v| v.eq_ignore_ascii_case(l)) {
            return false;
        }
    }
    true
}

fn clip(text: &str) -> String {
    if text.len() <= MAX_FIELD_BYTES {
        return text.to_string();
    }
    let mut end = MAX_FIELD_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rule(filter: RuleFilter) -> LogRule {
        LogRule {
            name: "r".into(),
            filter,
            threshold: 1,
            window: Duration::from_secs(1),
            resolve_after: Duration::from_secs(1),
            channels: None,
        }
    }

    fn doc<'a>(service: &'a str, category: &'a str, level: &'a str) -> TappedDocument<'a> {
        TappedDocument {
            dataset: "loan_resource",
            service_name: Some(service),
            category: Some(category),
            level: Some(level),
            message: Some("boom"),
            transaction_id: Some("tx-1"),
            ..TappedDocument::default()
        }
    }

    #[test]
    fn each_filter_part_narrows_and_absent_parts_match_anything() {
        let any = RuleFilter::default();
        let sys = RuleFilter {
            category: Some("systemerror".into()),
            ..RuleFilter::default()
        };
        let loan_error = RuleFilter {
            service: Some("loan_resource".into()),
            level: Some("error".into()),
            ..RuleFilter::default()
        };
        let d = doc("loan-resource", "SystemError", "ERROR");
        assert!(matches(&any, &d));
        assert!(matches(&sys, &d));
        assert!(matches(&loan_error, &d), "service matches the dataset too");
        let info = doc("loan-resource", "ApplicationInfo", "INFO");
        assert!(!matches(&sys, &info));
        assert!(!matches(&loan_error, &info));
        let no_category = TappedDocument {
            category: None,
            ..d
        };
        assert!(!matches(&sys, &no_category));
    }

    #[test]
    fn only_matching_documents_are_queued_with_a_mask_of_their_rules() {
        let (tx, mut rx) = mpsc::channel(8);
        let rules = [
            rule(RuleFilter {
                category: Some("SystemError".into()),
                ..RuleFilter::default()
            }),
            rule(RuleFilter {
                level: Some("ERROR".into()),
                ..RuleFilter::default()
            }),
        ];
        let mut tap = AlertTap::new(&rules, tx);
        tap.observe(&doc("payment", "ApplicationInfo", "INFO"));
        tap.observe(&doc("payment", "BusinessError", "ERROR"));
        tap.observe(&doc("payment", "SystemError", "ERROR"));
        let first = rx.try_recv().unwrap();
        assert_eq!((first.rules, first.group.as_str()), (0b10, "payment"));
        assert_eq!(rx.try_recv().unwrap().rules, 0b11);
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_full_queue_drops_instead_of_blocking() {
        let (tx, _rx) = mpsc::channel(1);
        let mut tap = AlertTap::new(&[rule(RuleFilter::default())], tx);
        for _ in 0..1000 {
            tap.observe(&doc("payment", "SystemError", "ERROR"));
        }
    }

    #[test]
    fn long_fields_are_clipped_on_a_character_boundary() {
        let long = "é".repeat(400);
        let c = clip(&long);
        assert!(c.len() <= MAX_FIELD_BYTES + "…".len());
        assert!(c.ends_with('…'));
    }
}

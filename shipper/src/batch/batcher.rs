//! Gathers documents into batches bounded by count, bytes and age.
//!
//! A batch is sent when it holds `max_docs` documents or `max_bytes` of NDJSON, or when its
//! first document has waited `max_wait`, whichever comes first: big batches when lines pour in
//! (fewer requests, less CPU per line), and a bounded delay when they trickle.

use std::time::{Duration, Instant};

use super::{Batch, BatchItem, Origin};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchLimits {
    pub(crate) max_docs: usize,
    pub(crate) max_bytes: usize,
    pub(crate) max_wait: Duration,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_docs: 2000,
            max_bytes: 2 * 1024 * 1024,
            max_wait: Duration::from_millis(250),
        }
    }
}

pub(crate) struct Batcher {
    limits: BatchLimits,
    current: Batch,
    opened: Option<Instant>,
}

impl Batcher {
    pub(crate) fn new(limits: BatchLimits) -> Batcher {
        Batcher {
            limits,
            current: Batch::default(),
            opened: None,
        }
    }

    /// The body to append the next item to; call [`Batcher::commit`] once it is written.
    pub(crate) fn body(&mut self) -> &mut Vec<u8> {
        &mut self.current.body
    }

    /// Records the item just appended, from `action_start` to the end of the body, its `_id`
    /// hashed with [`super::id_hash`]; `may_be_stored` flags a line a previous run may
    /// already have stored.
    pub(crate) fn commit(
        &mut self,
        action_start: usize,
        source_start: usize,
        id_hash: u64,
        origin: Origin,
        may_be_stored: bool,
    ) {
        if self.current.items.is_empty() {
            self.opened = Some(Instant::now());
        }
        let end = self.current.body.len();
        self.current.items.push(BatchItem {
            action_start,
            source_start,
            end,
            id_hash,
            origin,
            may_be_stored,
        });
    }

    pub(crate) fn is_full(&self) -> bool {
        self.current.items.len() >= self.limits.max_docs
            || self.current.body.len() >= self.limits.max_bytes
    }

    /// Has the oldest document waited long enough?
    #[cfg(test)]
    pub(crate) fn is_due(&self, now: Instant) -> bool {
        self.opened
            .is_some_and(|opened| now.duration_since(opened) >= self.limits.max_wait)
    }

    /// When the current batch must be sent at the latest.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.opened.map(|opened| opened + self.limits.max_wait)
    }

    /// The current batch, leaving an empty one; `None` when there is nothing to send.
    pub(crate) fn take(&mut self) -> Option<Batch> {
        if self.current.items.is_empty() {
            self.current.body.clear();
            return None;
        }
        self.opened = None;
        let capacity = self.current.body.capacity();
        let items = self.current.items.capacity();
        let batch = std::mem::replace(
            &mut self.current,
            Batch {
                body: super::bodies::take(capacity.min(self.limits.max_bytes + 64 * 1024)),
                items: Vec::with_capacity(items.min(self.limits.max_docs)),
            },
        );
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(seq: u64) -> Origin {
        Origin {
            file: 0,
            seq,
            budget_bytes: 1,
        }
    }

    fn add(b: &mut Batcher, seq: u64, doc: &str) {
        let start = b.body().len();
        b.body().extend_from_slice(b"{\"create\":{}}\n");
        let source = b.body().len();
        b.body().extend_from_slice(doc.as_bytes());
        b.body().push(b'\n');
        b.commit(start, source, seq, origin(seq), seq == 2);
    }

    #[test]
    fn a_batch_is_full_by_count_or_bytes() {
        let mut b = Batcher::new(BatchLimits {
            max_docs: 2,
            max_bytes: 1000,
            max_wait: Duration::from_secs(60),
        });
        add(&mut b, 0, "{}");
        assert!(!b.is_full());
        add(&mut b, 1, "{}");
        assert!(b.is_full());
        let batch = b.take().unwrap();
        assert_eq!(batch.len(), 2);
        assert_eq!(batch.items[1].source(&batch.body), b"{}");
        assert!(b.take().is_none());

        let mut b = Batcher::new(BatchLimits {
            max_docs: 100,
            max_bytes: 30,
            max_wait: Duration::from_secs(60),
        });
        add(&mut b, 0, "{\"a\":\"0123456789\"}");
        assert!(b.is_full());
    }

    #[test]
    fn a_batch_is_due_after_max_wait() {
        let mut b = Batcher::new(BatchLimits {
            max_docs: 100,
            max_bytes: 1000,
            max_wait: Duration::from_millis(50),
        });
        assert!(!b.is_due(Instant::now()));
        add(&mut b, 0, "{}");
        assert!(!b.is_due(Instant::now()));
        assert!(b.is_due(Instant::now() + Duration::from_millis(60)));
    }

    #[test]
    fn subsets_keep_items_whole() {
        let mut b = Batcher::new(BatchLimits::default());
        add(&mut b, 0, "{\"n\":0}");
        add(&mut b, 1, "{\"n\":1}");
        add(&mut b, 2, "{\"n\":2}");
        let batch = b.take().unwrap();
        let sub = batch.subset([&batch.items[0], &batch.items[2]]);
        assert_eq!(
            sub.body,
            b"{\"create\":{}}\n{\"n\":0}\n{\"create\":{}}\n{\"n\":2}\n"
        );
        assert_eq!(sub.items[1].source(&sub.body), b"{\"n\":2}");
        assert_eq!(sub.items[1].action(&sub.body), b"{\"create\":{}}");
        assert_eq!(sub.items[1].origin.seq, 2);
        assert!(!batch.items[0].may_be_stored && batch.items[2].may_be_stored);
        assert!(sub.items[1].may_be_stored, "a subset keeps the replay flag");
        assert!(sub.in_replay_window());
        assert!(!batch.subset([&batch.items[0]]).in_replay_window());
    }
}

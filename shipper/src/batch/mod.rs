//! Batches: encoded documents waiting to become one `_bulk` request.
//!
//! The batcher writes each document straight into the NDJSON body of the request that will
//! carry it (action line + source line), so a document is encoded once and never copied into
//! an intermediate tree. Each item remembers where it sits in the body, so the output can
//! resend only the items that must be retried, split a batch in two on `413`, or copy one
//! document to the dead-letter file, without re-encoding anything.

mod batcher;
mod bodies;

pub(crate) use batcher::{BatchLimits, Batcher};

/// Where a document came from: enough for its acknowledgement to move that file's
/// checkpoint, and to give back the bytes it held in the memory budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    /// Slot of the source file in the acknowledgement table.
    pub file: u32,
    /// Position of the line among the lines read from that file (0, 1, 2, ...).
    pub seq: u64,
    /// Bytes the line held in the read budget.
    pub budget_bytes: u32,
}

/// A keyed hash of a document's `_id`, taken when its action line is written (the bytes are
/// still in the cache then), so the items of an answer are matched to the documents without
/// reading the action lines of a body of megabytes again: at thousands of documents per
/// answer, those scattered reads were a cache miss each, and a tenth of the output's CPU.
///
/// The key is random per process: an answer cannot be crafted to make another document's
/// `_id` match (the matching exists to catch hostile and reordered answers).
pub fn id_hash(id: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    static KEY: std::sync::OnceLock<std::hash::RandomState> = std::sync::OnceLock::new();
    KEY.get_or_init(std::hash::RandomState::new).hash_one(id)
}

/// One document in a [`Batch`] body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchItem {
    /// Byte offset of the action line (`{"create":{...}}\n`) in the body.
    pub action_start: usize,
    /// Byte offset of the source line in the body.
    pub source_start: usize,
    /// Byte offset just past the source line's `\n`.
    pub end: usize,
    /// [`id_hash`] of the document's `_id`, to match an answer's items with.
    pub id_hash: u64,
    pub origin: Origin,
    /// The document may already be stored: it was in a request whose answer was lost, or
    /// it was read again after a restart below the offset the previous run had reached.
    /// Such a document is looked up before it is sent (see `output::replay`), because a
    /// `create` answers 409 only while its `_id` is in the current write index.
    pub may_be_stored: bool,
}

impl BatchItem {
    /// The action line and the source line, both with their final `\n`.
    pub(crate) fn ndjson<'a>(&self, body: &'a [u8]) -> &'a [u8] {
        &body[self.action_start..self.end]
    }

    /// The action line without its `\n`.
    pub(crate) fn action<'a>(&self, body: &'a [u8]) -> &'a [u8] {
        &body[self.action_start..self.source_start - 1]
    }

    /// The document source without its `\n`.
    pub(crate) fn source<'a>(&self, body: &'a [u8]) -> &'a [u8] {
        &body[self.source_start..self.end - 1]
    }
}

/// A `_bulk` body ready to send, and what each of its items is.
#[derive(Debug, Default)]
pub struct Batch {
    /// NDJSON: for each item an action line and a source line, each ending in `\n`.
    pub body: Vec<u8>,
    pub items: Vec<BatchItem>,
}

impl Drop for Batch {
    fn drop(&mut self) {
        bodies::give_back(std::mem::take(&mut self.body));
    }
}

impl Batch {
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Some of its documents may already be stored and must be looked up before sending.
    pub(crate) fn in_replay_window(&self) -> bool {
        self.items.iter().any(|i| i.may_be_stored)
    }

    /// Every document may now be stored: the request carrying them got no usable answer.
    pub(crate) fn mark_may_be_stored(&mut self) {
        for item in &mut self.items {
            item.may_be_stored = true;
        }
    }

    /// A new batch holding copies of the given items of this one, in order.
    pub(crate) fn subset<'a>(&self, items: impl IntoIterator<Item = &'a BatchItem>) -> Batch {
        let mut out = Batch::default();
        for item in items {
            let start = out.body.len();
            out.body.extend_from_slice(item.ndjson(&self.body));
            out.items.push(BatchItem {
                action_start: start,
                source_start: start + (item.source_start - item.action_start),
                end: start + (item.end - item.action_start),
                id_hash: item.id_hash,
                origin: item.origin,
                may_be_stored: item.may_be_stored,
            });
        }
        out
    }
}

/// Receives the verdict "this document is safe" from the output.
///
/// Safe means: Elasticsearch created it, already had it (409 on `create`), stored it in the
/// failure store, or it was written to the dead-letter file. Only then may the source file's
/// checkpoint move past the line, and only then is its memory budget given back.
pub trait Acknowledge: Send + Sync + 'static {
    fn acknowledge(&self, origins: &[Origin]);
}

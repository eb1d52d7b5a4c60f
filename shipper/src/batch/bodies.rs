//! Request bodies, reused: a few megabytes allocated once, not once per batch.
//!
//! A batch's body is its `_bulk` request (2 MiB by default). Allocated for every batch and
//! freed after its response, these blocks either churned the allocator (fresh pages to
//! fault in and zero, hundreds of times a second at full speed) or, from the heap, left it
//! fragmented around the small per-file allocations between them, a high-water mark that
//! stayed in the RSS. Freed bodies wait here for the next batch instead; at most
//! [`KEEP`] of them: enough for the steady flow (a body freed as the next batch starts), and
//! no more, because a kept body is resident memory.

use std::sync::Mutex;

/// Bodies kept for reuse.
const KEEP: usize = 2;

/// Bodies larger than this are freed, not kept (a batch grown by an oversized document).
const KEEP_CAPACITY_UP_TO: usize = 16 * 1024 * 1024;

static FREE: Pool = Pool::new();

/// An empty body with room for at least `capacity` bytes.
pub(crate) fn take(capacity: usize) -> Vec<u8> {
    FREE.take(capacity)
}

/// A body no longer needed: kept for the next batch, or freed.
pub(crate) fn give_back(body: Vec<u8>) {
    FREE.give_back(body)
}

/// The bodies kept (one process-wide [`FREE`]; a value of its own in tests).
struct Pool(Mutex<Vec<Vec<u8>>>);

impl Pool {
    const fn new() -> Pool {
        Pool(Mutex::new(Vec::new()))
    }

    fn take(&self, capacity: usize) -> Vec<u8> {
        let reused = self.lock().pop();
        match reused {
            Some(mut body) => {
                body.reserve(capacity);
                body
            }
            None => Vec::with_capacity(capacity),
        }
    }

    fn give_back(&self, mut body: Vec<u8>) {
        if body.capacity() == 0 || body.capacity() > KEEP_CAPACITY_UP_TO {
            return;
        }
        body.clear();
        let mut free = self.lock();
        if free.len() < KEEP {
            free.push(body);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_given_back_is_taken_again_empty_and_with_its_room() {
        let pool = Pool::new();
        let mut body = Vec::with_capacity(1 << 20);
        body.extend_from_slice(b"{\"create\":{}}\n");
        let ptr = body.as_ptr();
        pool.give_back(body);
        let again = pool.take(1024);
        assert_eq!(again.as_ptr(), ptr, "the same allocation, not a new one");
        assert!(again.is_empty() && again.capacity() >= 1 << 20);
        assert!(
            pool.take(1024).capacity() >= 1024,
            "an empty pool allocates"
        );
    }

    #[test]
    fn at_most_keep_bodies_are_kept_and_never_huge_or_empty_ones() {
        let pool = Pool::new();
        for _ in 0..KEEP + 3 {
            pool.give_back(Vec::with_capacity(4096));
        }
        pool.give_back(Vec::new());
        pool.give_back(Vec::with_capacity(KEEP_CAPACITY_UP_TO + 1));
        assert_eq!(pool.lock().len(), KEEP);
        assert!(pool.lock().iter().all(|b| b.capacity() == 4096));
    }
}

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

static FREE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// An empty body with room for at least `capacity` bytes.
pub(crate) fn take(capacity: usize) -> Vec<u8> {
    let reused = lock().pop();
    match reused {
        Some(mut body) => {
            body.reserve(capacity);
            body
        }
        None => Vec::with_capacity(capacity),
    }
}

/// A body no longer needed: kept for the next batch, or freed.
pub(crate) fn give_back(mut body: Vec<u8>) {
    if body.capacity() == 0 || body.capacity() > KEEP_CAPACITY_UP_TO {
        return;
    }
    body.clear();
    let mut free = lock();
    if free.len() < KEEP {
        free.push(body);
    }
}

fn lock() -> std::sync::MutexGuard<'static, Vec<Vec<u8>>> {
    FREE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_given_back_is_taken_again_empty_and_with_its_room() {
        let mut body = Vec::with_capacity(1 << 20);
        body.extend_from_slice(b"{\"create\":{}}\n");
        let ptr = body.as_ptr();
        give_back(body);
        // Other tests may take bodies concurrently: look for ours among a few.
        let taken: Vec<Vec<u8>> = (0..KEEP).map(|_| take(1024)).collect();
        let ours = taken.iter().find(|b| b.as_ptr() == ptr);
        if let Some(b) = ours {
            assert!(b.is_empty() && b.capacity() >= 1 << 20);
        }
        assert!(taken.iter().all(|b| b.is_empty() && b.capacity() >= 1024));
        give_back(vec![0; 0]);
        give_back(Vec::with_capacity(KEEP_CAPACITY_UP_TO + 1));
    }
}

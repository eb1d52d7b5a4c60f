//! The memory budget that turns a slow Elasticsearch into paused reading.
//!
//! Every line read takes its size from the budget; the bytes come back only when the output
//! acknowledges the line's document. When the budget is spent, the reader waits. So however
//! long an outage lasts, the lines held in memory never exceed the budget: the rest stays in
//! the log files, which are the buffer. Counting bytes, not events, keeps the bound true for
//! lines of any size.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

pub(crate) struct ReadBudget {
    capacity: usize,
    used: Mutex<usize>,
    released: Condvar,
}

impl ReadBudget {
    pub(crate) fn new(capacity: usize) -> ReadBudget {
        ReadBudget {
            capacity: capacity.max(1),
            used: Mutex::new(0),
            released: Condvar::new(),
        }
    }

    pub(crate) fn used(&self) -> usize {
        *self.lock()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// What can be taken now.
    pub(crate) fn available(&self) -> usize {
        self.capacity.saturating_sub(*self.lock())
    }

    /// What a line of `bytes` costs: a line larger than the whole budget costs the whole
    /// budget, so it can still pass once everything else is acknowledged.
    pub(crate) fn cost(&self, bytes: usize) -> usize {
        bytes.clamp(1, self.capacity)
    }

    /// Takes `cost` if it is available now.
    pub(crate) fn try_take(&self, cost: usize) -> bool {
        let mut used = self.lock();
        if *used + cost <= self.capacity {
            *used += cost;
            true
        } else {
            false
        }
    }

    /// Takes `cost`, waiting up to `wait` for acknowledgements to free it.
    pub(crate) fn take_within(&self, cost: usize, wait: Duration) -> bool {
        let used = self.lock();
        let (mut used, _) = self
            .released
            .wait_timeout_while(used, wait, |used| *used + cost > self.capacity)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if *used + cost <= self.capacity {
            *used += cost;
            true
        } else {
            false
        }
    }

    /// Waits up to `wait` for some of the budget to be given back (or returns at once if
    /// nothing is taken).
    pub(crate) fn wait_released(&self, wait: Duration) {
        let used = self.lock();
        if *used == 0 {
            return;
        }
        let _ = self
            .released
            .wait_timeout(used, wait)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
    }

    pub(crate) fn give_back(&self, cost: usize) {
        if cost == 0 {
            return;
        }
        let mut used = self.lock();
        *used = used.saturating_sub(cost);
        drop(used);
        self.released.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, usize> {
        // The counter stays meaningful even if a holder panicked.
        self.used
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_budget_stops_at_its_capacity_and_refills_on_give_back() {
        let b = ReadBudget::new(100);
        assert!(b.try_take(60));
        assert!(!b.try_take(50));
        assert!(!b.take_within(50, Duration::from_millis(10)));
        b.give_back(60);
        assert!(b.try_take(100));
        assert_eq!(b.used(), 100);
    }

    #[test]
    fn an_oversized_line_costs_the_whole_budget() {
        let b = ReadBudget::new(100);
        assert_eq!(b.cost(1_000_000), 100);
        assert_eq!(b.cost(0), 1);
    }

    #[test]
    fn a_waiting_reader_wakes_when_bytes_come_back() {
        let b = Arc::new(ReadBudget::new(10));
        assert!(b.try_take(10));
        let b2 = Arc::clone(&b);
        let waiter = std::thread::spawn(move || b2.take_within(5, Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(20));
        b.give_back(5);
        assert!(waiter.join().unwrap());
    }
}

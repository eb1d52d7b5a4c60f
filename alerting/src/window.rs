//! A count of events over a sliding time window, in bounded memory.
//!
//! Events are counted in buckets of 1/20 of the window, so memory stays at about 21 buckets
//! per alert instance however heavy the burst (a log flood must not turn into a memory
//! flood), and the count is exact up to one bucket's width at the trailing edge, which is
//! far below what a threshold on a human time scale can tell apart.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

const BUCKETS: u32 = 20;

#[derive(Debug, Clone)]
pub(crate) struct SlidingCount {
    window: Duration,
    bucket: Duration,
    /// (start of the bucket, events in it), oldest first.
    buckets: VecDeque<(Instant, u64)>,
    total: u64,
}

impl SlidingCount {
    pub(crate) fn new(window: Duration) -> Self {
        SlidingCount {
            window,
            bucket: (window / BUCKETS).max(Duration::from_millis(1)),
            buckets: VecDeque::with_capacity(BUCKETS as usize + 1),
            total: 0,
        }
    }

    /// Counts `n` events at `now`.
    pub(crate) fn add(&mut self, now: Instant, n: u64) {
        self.expire(now);
        match self.buckets.back_mut() {
            Some((start, count)) if now.saturating_duration_since(*start) < self.bucket => {
                *count += n
            }
            _ => self.buckets.push_back((now, n)),
        }
        self.total += n;
    }

    /// Events within the window ending at `now`.
    pub(crate) fn count(&mut self, now: Instant) -> u64 {
        self.expire(now);
        self.total
    }

    pub(crate) fn is_empty(&mut self, now: Instant) -> bool {
        self.count(now) == 0
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(start, n)) = self.buckets.front() {
            if now.saturating_duration_since(start) < self.window {
                break;
            }
            self.buckets.pop_front();
            self.total -= n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_leave_the_count_once_they_are_older_than_the_window() {
        let t0 = Instant::now();
        let mut w = SlidingCount::new(Duration::from_secs(60));
        w.add(t0, 3);
        w.add(t0 + Duration::from_secs(30), 2);
        assert_eq!(w.count(t0 + Duration::from_secs(59)), 5);
        assert_eq!(w.count(t0 + Duration::from_secs(60)), 2);
        assert_eq!(w.count(t0 + Duration::from_secs(90)), 0);
        assert!(w.is_empty(t0 + Duration::from_secs(91)));
    }

    #[test]
    fn a_flood_uses_a_bounded_number_of_buckets() {
        let t0 = Instant::now();
        let mut w = SlidingCount::new(Duration::from_secs(10));
        for i in 0..100_000u64 {
            w.add(t0 + Duration::from_micros(i * 100), 1);
        }
        assert!(w.buckets.len() <= 21, "{}", w.buckets.len());
        assert_eq!(w.count(t0 + Duration::from_secs(9)), 100_000);
    }
}

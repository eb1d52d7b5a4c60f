//! At most one warning of a kind per interval in the shipper's own log.
//!
//! The output warns once per failed attempt, and during an overload or an outage every
//! delivery fails again after each backoff: without a bound, a 429 storm writes a line per
//! request. The first warning of a kind is written at once; the same kind is then held back
//! until the interval has passed, and the next one written says how many were held back. The
//! metrics still count every attempt. Hand-written: a map of instants and counters, where the
//! rate-limiting crates (governor, ...) count permits and say nothing about what was dropped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One warning of a kind per this long at most.
pub(crate) const WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// Which warnings were written when, and how many were held back since.
#[derive(Debug)]
pub(crate) struct LogThrottle {
    interval: Duration,
    kinds: Mutex<HashMap<(&'static str, &'static str), Kind>>,
}

#[derive(Debug)]
struct Kind {
    written: Instant,
    held_back: u64,
}

impl Default for LogThrottle {
    fn default() -> Self {
        LogThrottle::new(WARNING_INTERVAL)
    }
}

impl LogThrottle {
    pub(crate) fn new(interval: Duration) -> Self {
        LogThrottle {
            interval,
            kinds: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(held_back)` when a warning of `kind` (a retry reason, say) from `site` (what
    /// failed) may be written now, with the number held back since the last one written;
    /// `None` when this one is held back.
    pub(crate) fn admit(&self, site: &'static str, kind: &'static str) -> Option<u64> {
        self.admit_at((site, kind), Instant::now())
    }

    fn admit_at(&self, kind: (&'static str, &'static str), now: Instant) -> Option<u64> {
        let mut kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
        match kinds.get_mut(&kind) {
            Some(k) if now.saturating_duration_since(k.written) < self.interval => {
                k.held_back += 1;
                None
            }
            Some(k) => {
                let held_back = std::mem::take(&mut k.held_back);
                k.written = now;
                Some(held_back)
            }
            None => {
                kinds.insert(
                    kind,
                    Kind {
                        written: now,
                        held_back: 0,
                    },
                );
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_warning_is_written_and_repeats_are_held_back_then_counted() {
        let t = LogThrottle::new(Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(t.admit_at(("bulk", "429"), start), Some(0));
        for i in 1..=5 {
            assert_eq!(
                t.admit_at(("bulk", "429"), start + Duration::from_secs(i)),
                None
            );
        }
        // Another kind is not held back by the first.
        assert_eq!(
            t.admit_at(("bulk", "5xx"), start + Duration::from_secs(1)),
            Some(0)
        );
        assert_eq!(
            t.admit_at(("bulk", "429"), start + Duration::from_secs(10)),
            Some(5),
            "the next one says how many were held back"
        );
        assert_eq!(
            t.admit_at(("bulk", "429"), start + Duration::from_secs(11)),
            None
        );
        assert_eq!(
            t.admit_at(("bulk", "429"), start + Duration::from_secs(21)),
            Some(1)
        );
    }
}

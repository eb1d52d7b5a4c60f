//! A token bucket per channel: a burst of alerts gets through, a flood does not.
//!
//! The bucket holds one minute's allowance and refills continuously, so `per_minute`
//! messages can leave at once (an incident that hits every service) and then one every
//! `60 / per_minute` seconds.

use std::time::Instant;

#[derive(Debug)]
pub(crate) struct RateLimiter {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    pub(crate) fn per_minute(n: u32, now: Instant) -> Self {
        let capacity = f64::from(n.max(1));
        RateLimiter {
            capacity,
            per_second: capacity / 60.0,
            tokens: capacity,
            updated: now,
        }
    }

    /// Takes one token if there is one.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_passes_up_to_the_allowance_then_one_per_refill() {
        let t0 = Instant::now();
        let mut r = RateLimiter::per_minute(6, t0);
        assert_eq!((0..10).filter(|_| r.try_take(t0)).count(), 6);
        assert!(!r.try_take(t0 + Duration::from_secs(9)));
        assert!(r.try_take(t0 + Duration::from_secs(10)), "one every 10 s");
        assert!(!r.try_take(t0 + Duration::from_secs(11)));
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(
            (0..10).filter(|_| r.try_take(later)).count(),
            6,
            "never more than the capacity"
        );
    }
}

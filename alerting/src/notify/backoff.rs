//! The delay between two attempts of one delivery: capped exponential backoff with full
//! jitter, so channel workers that failed together do not retry in step.

use std::time::Duration;

use rand::Rng;

/// `initial`, doubled per retry, capped at `max`; the delay is drawn uniformly below that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff { initial, max }
    }

    /// The upper bound of the delay before retry number `retry` (0 for the first retry):
    /// `min(max, initial * 2^retry)`.
    pub(crate) fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// A random delay in `[0, ceiling(retry)]`.
    pub(crate) fn delay(&self, retry: u32) -> Duration {
        self.delay_with(retry, &mut rand::rng())
    }

    fn delay_with(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling(retry);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.random_range(0..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn the_ceiling_doubles_up_to_the_cap() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        assert_eq!(b.ceiling(0), Duration::from_secs(1));
        assert_eq!(b.ceiling(1), Duration::from_secs(2));
        assert_eq!(b.ceiling(3), Duration::from_secs(8));
        assert_eq!(b.ceiling(5), Duration::from_secs(30));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn delays_stay_within_the_ceiling_and_spread_below_it() {
        let b = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
        let mut rng = StdRng::seed_from_u64(7);
        for retry in 0..40 {
            let delays: Vec<Duration> = (0..50).map(|_| b.delay_with(retry, &mut rng)).collect();
            assert!(delays.iter().all(|d| *d <= b.ceiling(retry)), "{retry}");
            assert!(delays.iter().any(|d| *d < b.ceiling(retry) / 2), "{retry}");
        }
    }
}

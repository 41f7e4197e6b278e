//! Reconnection delays: linear backoff with jitter.
//!
//! The first retry comes almost at once (most drops are momentary); each later
//! one waits one step (`initial`) longer than the one before, up to a cap: the
//! shape of the official Python SDK's waits (0.5 s longer each time), at a
//! finer step. Measured against doubling, it is what brings a connector back
//! soon after a server that restarts within a few minutes is up again: the
//! wait in force when it comes back grows with the square root of how long it
//! was down, not in proportion (scripts/reconnect-timing.py, BENCHMARKS.md).
//! Each delay is drawn at random from its upper half ("equal jitter") so that
//! many connectors dropped together do not come back together.

use std::time::Duration;

/// The delays between reconnection attempts of one source.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// Delays starting at `initial`, never above `max`.
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            failures: 0,
        }
    }

    /// Failed attempts since the last success.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// The delay before the next attempt; counts one more failure.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let n = self.failures;
        self.failures = self.failures.saturating_add(1);
        if n == 0 {
            // First retry: at once, spread over a fraction of the initial delay.
            return jitter(Duration::ZERO, self.initial / 4);
        }
        let base = self.initial.saturating_mul(n).min(self.max);
        jitter(base / 2, base)
    }

    /// A connection succeeded: start again from the quick first retry.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }
}

/// A random duration in `[low, high]`.
fn jitter(low: Duration, high: Duration) -> Duration {
    let span = high.saturating_sub(low).as_micros() as u64;
    low + Duration::from_micros(fastrand::u64(0..=span))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_retry_is_quick_then_grows_by_one_step_to_the_cap() {
        let initial = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        let mut b = Backoff::new(initial, max);
        assert!(b.next_delay() <= initial / 4);
        for n in 1..=30u32 {
            let expected = (initial * n).min(max);
            let d = b.next_delay();
            assert!(
                d >= expected / 2 && d <= expected,
                "{d:?} not in [{:?}, {expected:?}]",
                expected / 2
            );
        }
        assert_eq!(b.failures(), 31);
        b.reset();
        assert!(b.next_delay() <= initial / 4);
    }

    #[test]
    fn never_overflows() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        for _ in 0..1000 {
            assert!(b.next_delay() <= Duration::from_secs(60));
        }
    }

    #[test]
    fn jitter_spreads_delays() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
            b.next_delay();
            seen.insert(b.next_delay());
        }
        assert!(seen.len() > 10, "delays should differ between connectors");
    }
}

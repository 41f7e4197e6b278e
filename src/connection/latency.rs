//! The query latency histogram: lock-free buckets each source's connection
//! fills and the metrics endpoint reads at scrape time.
//!
//! A query is timed from the arrival of its frame to the queueing of its
//! final answer (the SDK's whole part of a query's life). Timing is off until
//! a metrics endpoint starts serving, so a connector without one reads no
//! clock per query and keeps no buckets (a source costs one pointer); when on,
//! a query costs two clock reads and two relaxed atomic additions, never a
//! lock.

// Without the `metrics` feature nothing enables timing or reads it.
#![cfg_attr(not(feature = "metrics"), allow(dead_code))]

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::Instant;

/// The upper bounds of the buckets, in seconds (`le` of
/// `vantiq_connector_query_duration_seconds_bucket`): from 100 µs, where an
/// in-memory answer lands, to a minute, a slow database query's region.
pub(crate) const BUCKETS: [f64; 18] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

/// [`BUCKETS`] in nanoseconds, for the comparison on the hot path.
const BOUNDS_NS: [u64; 18] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
    60_000_000_000,
];

/// One source's query latencies: no buckets until timing is enabled.
#[derive(Debug, Default)]
pub(crate) struct QueryLatency {
    buckets: OnceLock<Box<Buckets>>,
}

#[derive(Debug, Default)]
struct Buckets {
    /// Per bucket (not cumulative); the last one is `+Inf`.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_ns: AtomicU64,
}

/// What a scrape reads of a [`QueryLatency`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LatencySnapshot {
    /// The sum of every observed latency, in seconds.
    pub(crate) sum: f64,
    /// Observations in all.
    pub(crate) count: u64,
    /// `(upper bound, observations in that bucket alone)`, `+Inf` last.
    pub(crate) buckets: Vec<(f64, u64)>,
}

impl QueryLatency {
    /// Starts timing queries (the metrics endpoint is serving).
    pub(crate) fn enable(&self) {
        self.buckets.get_or_init(Box::default);
    }

    /// The arrival time of a query, when timing is on.
    #[inline]
    pub(crate) fn start(&self) -> Option<Instant> {
        self.buckets.get().map(|_| Instant::now())
    }

    /// Records the latency of a query that arrived at `started`.
    #[inline]
    pub(crate) fn observe(&self, started: Instant) {
        self.observe_ns(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }

    fn observe_ns(&self, ns: u64) {
        // Always there: only a query timed by `start` is observed.
        if let Some(b) = self.buckets.get() {
            let bucket = BOUNDS_NS.partition_point(|&bound| bound < ns);
            b.counts[bucket].fetch_add(1, Relaxed);
            b.sum_ns.fetch_add(ns, Relaxed);
        }
    }

    /// The histogram as it is now. The count is the sum of the buckets, so
    /// the two always agree in one scrape.
    pub(crate) fn snapshot(&self) -> LatencySnapshot {
        let (counts, sum_ns) = match self.buckets.get() {
            Some(b) => (
                b.counts.each_ref().map(|c| c.load(Relaxed)),
                b.sum_ns.load(Relaxed),
            ),
            None => ([0; BUCKETS.len() + 1], 0),
        };
        let buckets: Vec<(f64, u64)> = BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(counts)
            .collect();
        LatencySnapshot {
            sum: sum_ns as f64 / 1e9,
            count: buckets.iter().map(|(_, n)| n).sum(),
            buckets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bounds_match_buckets() {
        for (s, ns) in BUCKETS.iter().zip(BOUNDS_NS) {
            assert_eq!((s * 1e9).round() as u64, ns);
        }
    }

    #[test]
    fn off_until_enabled() {
        let h = QueryLatency::default();
        assert!(h.start().is_none());
        assert_eq!(h.snapshot().count, 0);
        assert_eq!(h.snapshot().buckets.len(), BUCKETS.len() + 1);
        assert!(
            std::mem::size_of::<QueryLatency>() <= 16,
            "a disabled histogram is small"
        );
        h.enable();
        assert!(h.start().is_some());
    }

    #[test]
    fn observations_land_in_their_bucket() {
        let h = QueryLatency::default();
        h.enable();
        h.observe_ns(3_000_000); // (2.5 ms, 5 ms]
        h.observe_ns(5_000_000); // `le` is inclusive: still (2.5 ms, 5 ms]
        h.observe_ns(5_000_001); // (5 ms, 10 ms]
        h.observe_ns(120_000_000_000); // +Inf
        let snap = h.snapshot();
        assert_eq!(snap.count, 4);
        assert_eq!(snap.buckets.len(), BUCKETS.len() + 1);
        let at = |le: f64| snap.buckets.iter().find(|(b, _)| *b == le).unwrap().1;
        assert_eq!(at(0.005), 2);
        assert_eq!(at(0.01), 1);
        assert_eq!(at(f64::INFINITY), 1);
        assert_eq!(snap.buckets.iter().map(|b| b.1).sum::<u64>(), 4);
        assert!((snap.sum - 120.013000001).abs() < 1e-9, "{}", snap.sum);
    }

    #[test]
    fn observe_times_from_the_start() {
        let h = QueryLatency::default();
        h.enable();
        h.observe(Instant::now() - Duration::from_secs(90));
        assert_eq!(h.snapshot().buckets.last().unwrap().1, 1, "over 60 s: +Inf");
    }
}

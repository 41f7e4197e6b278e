//! Small statistics: the median and spread of a figure's rounds, and percentiles of a
//! round's latencies.

use serde_json::{json, Value};

/// One figure for one connector: the value of each round, summarised.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The value of each round, in the order measured.
    pub samples: Vec<f64>,
    /// The median of the samples.
    pub median: f64,
    /// The smallest sample.
    pub min: f64,
    /// The largest sample.
    pub max: f64,
}

impl Summary {
    /// Summarises `samples` (None if there are none).
    pub fn of(samples: &[f64]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Summary {
            samples: samples.to_vec(),
            median,
            min: sorted[0],
            max: sorted[n - 1],
        })
    }

    /// The summary as JSON: `{"median","min","max","samples"}`.
    pub fn to_json(&self) -> Value {
        json!({"median": self.median, "min": self.min, "max": self.max, "samples": self.samples})
    }
}

/// The `p`-th percentile (0..=100) of `values` by the nearest-rank method; `values` must
/// be sorted ascending and not empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    assert!(!sorted.is_empty(), "percentile of nothing");
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_spread() {
        let s = Summary::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        let s = Summary::of(&[4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(s.median, 2.5);
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[5.0], 99.0), 5.0);
    }
}

//! Latency samples and counters gathered by the workload, and their summaries.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// Latency samples of one kind of operation.
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    samples: Vec<Duration>,
}

/// Percentiles of a [`Latencies`], in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: usize,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Mean.
    pub mean_us: f64,
}

impl Latencies {
    /// Records one sample.
    pub fn record(&mut self, latency: Duration) {
        self.samples.push(latency);
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
    }

    /// Nearest-rank percentiles of the samples.
    pub fn summary(&self) -> LatencySummary {
        if self.samples.is_empty() {
            return LatencySummary::default();
        }
        let mut sorted = self.samples.clone();
        sorted.sort_unstable();
        let rank = |q: f64| {
            let index = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
            micros(sorted[index])
        };
        let total: Duration = sorted.iter().sum();
        LatencySummary {
            count: sorted.len(),
            p50_us: rank(0.50),
            p99_us: rank(0.99),
            mean_us: micros(total) / sorted.len() as f64,
        }
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Errors seen by the workload, counted by engine error kind name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ErrorCounts(pub BTreeMap<String, u64>);

impl ErrorCounts {
    /// Counts one error of `kind`.
    pub fn add(&mut self, kind: &str) {
        *self.0.entry(kind.to_string()).or_default() += 1;
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: ErrorCounts) {
        for (kind, count) in other.0 {
            *self.0.entry(kind).or_default() += count;
        }
    }
}

/// The short name of an engine error's kind, for reports.
pub fn kind_name(kind: &raftengine::ErrorKind) -> &'static str {
    use raftengine::ErrorKind as K;
    match kind {
        K::NotLeader { .. } => "not_leader",
        K::TransferInProgress { .. } => "transfer_in_progress",
        K::LeadershipLost => "leadership_lost",
        K::Timeout => "timeout",
        K::Unavailable => "unavailable",
        K::Busy => "busy",
        K::Rejected(_) => "rejected",
        K::Shutdown => "shutdown",
        K::Storage => "storage",
        K::Fatal => "fatal",
        K::Unsupported => "unsupported",
        _ => "other",
    }
}

/// The middle value (the mean of the two middle ones for an even count); `None` when empty.
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

/// The lowest and the highest value; `(+inf, -inf)` when there is none.
pub fn range(values: impl IntoIterator<Item = f64>) -> (f64, f64) {
    values
        .into_iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_takes_the_middle_or_the_mean_of_the_two_middles() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn range_is_the_lowest_and_highest_or_infinities_when_empty() {
        assert_eq!(range([3.0, 1.0, 2.0]), (1.0, 3.0));
        assert_eq!(range([]), (f64::INFINITY, f64::NEG_INFINITY));
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut latencies = Latencies::default();
        for micros in 1..=100u64 {
            latencies.record(Duration::from_micros(micros));
        }
        let summary = latencies.summary();
        assert_eq!(summary.count, 100);
        assert_eq!(summary.p50_us, 50.0);
        assert_eq!(summary.p99_us, 99.0);
        assert!((summary.mean_us - 50.5).abs() < 1e-9);
    }

    #[test]
    fn empty_latencies_summarize_to_zero() {
        assert_eq!(Latencies::default().summary(), LatencySummary::default());
    }

    #[test]
    fn error_counts_merge_by_kind() {
        let mut a = ErrorCounts::default();
        a.add("timeout");
        let mut b = ErrorCounts::default();
        b.add("timeout");
        b.add("not_leader");
        a.merge(b);
        assert_eq!(a.0["timeout"], 2);
        assert_eq!(a.0["not_leader"], 1);
    }
}

//! What the lease layer counts: hits, misses by reason, invalidations by cause, read latency by
//! path. Every event goes to the `metrics` facade (a no-op until the application installs a
//! recorder) **and** to in-process atomic counters, readable as a [`LeaseStats`] snapshot
//! without any recorder.
//!
//! Metric names (labels in brackets):
//! * `kv_lease_reads_total` \[`path` = `fast` | `slow`\]
//! * `kv_lease_misses_total` \[`reason` = [`MissReason::label`]\]
//! * `kv_lease_invalidations_total` \[`cause` = [`InvalidationCause::label`]\]
//! * `kv_lease_read_seconds` histogram \[`path`\]
//! * `kv_lease_slow_rounds_total` \[`result` = `ok` | `error`\]
//! * `kv_lease_ack_renewals_total`

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Which path served a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadPath {
    /// Served locally under a valid lease: no quorum round.
    Fast,
    /// Served after a `linearizable_read()` quorum round.
    Slow,
}

impl ReadPath {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Fast => "fast",
            Self::Slow => "slow",
        }
    }
}

/// Why the fast path refused a read. Checked in this order; the first that applies is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MissReason {
    /// The node does not lead.
    NotLeader,
    /// A leadership transfer is running (or the lease is suspect after one).
    Transferring,
    /// The lease was invalidated and nothing has renewed it yet.
    Invalidated,
    /// The lease was granted in an earlier term.
    TermChanged,
    /// No lease, or it ran out.
    Expired,
    /// The leader has not applied an entry of its current term yet.
    TermNotApplied,
}

impl MissReason {
    /// Every reason, in check order.
    pub const ALL: [Self; 6] = [
        Self::NotLeader,
        Self::Transferring,
        Self::Invalidated,
        Self::TermChanged,
        Self::Expired,
        Self::TermNotApplied,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::NotLeader => "not_leader",
            Self::Transferring => "transferring",
            Self::Invalidated => "invalidated",
            Self::TermChanged => "term_changed",
            Self::Expired => "expired",
            Self::TermNotApplied => "term_not_applied",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for MissReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// What invalidated (or suspended) a lease. Counted when an invalidation dropped a lease that
/// was held (granted since the previous invalidation, expired or not), when a transfer
/// suspended or ended, and on every explicit [`crate::Lease::invalidate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvalidationCause {
    /// The engine's leader-loss callback fired.
    LeaderLoss,
    /// A proposal or read failed with `NotLeader`.
    NotLeader,
    /// A proposal or read failed with `TransferInProgress`.
    TransferError,
    /// A proposal or read failed with `LeadershipLost`.
    LeadershipLost,
    /// The status showed a newer term than the lease's.
    TermChanged,
    /// The status showed this node is no longer leader.
    RoleChanged,
    /// A leadership transfer started (the lease is suspect until it ends).
    TransferStarted,
    /// A transfer ended without this node losing leadership: only later anchors grant again.
    TransferAborted,
    /// The engine or the lease layer shut down, or the engine failed fatally.
    Shutdown,
    /// The voter set changed: a quorum of the new configuration may not include the nodes
    /// whose acknowledgements granted the lease.
    MembershipChanged,
}

impl InvalidationCause {
    /// Every cause.
    pub const ALL: [Self; 10] = [
        Self::LeaderLoss,
        Self::NotLeader,
        Self::TransferError,
        Self::LeadershipLost,
        Self::TermChanged,
        Self::RoleChanged,
        Self::TransferStarted,
        Self::TransferAborted,
        Self::Shutdown,
        Self::MembershipChanged,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::LeaderLoss => "leader_loss",
            Self::NotLeader => "not_leader",
            Self::TransferError => "transfer_in_progress",
            Self::LeadershipLost => "leadership_lost",
            Self::TermChanged => "term_changed",
            Self::RoleChanged => "role_changed",
            Self::TransferStarted => "transfer_started",
            Self::TransferAborted => "transfer_aborted",
            Self::Shutdown => "shutdown",
            Self::MembershipChanged => "membership_changed",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for InvalidationCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A snapshot of a lease's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeaseStats {
    /// Reads served on the fast path.
    pub hits: u64,
    /// Reads the fast path refused, by reason (index = position in [`MissReason::ALL`]).
    pub misses_by_reason: [u64; 6],
    /// Invalidations by cause (index = position in [`InvalidationCause::ALL`]).
    pub invalidations_by_cause: [u64; 10],
    /// `linearizable_read()` rounds the read path ran.
    pub slow_rounds: u64,
    /// Of those, the ones that failed.
    pub slow_round_errors: u64,
    /// Leases granted or extended from `quorum_ack()`.
    pub ack_renewals: u64,
    /// Leases granted or extended after a successful proposal or read round.
    pub round_renewals: u64,
}

impl LeaseStats {
    /// All misses.
    pub fn misses(&self) -> u64 {
        self.misses_by_reason.iter().sum()
    }

    /// Misses for one reason.
    pub fn misses_for(&self, reason: MissReason) -> u64 {
        self.misses_by_reason[reason.index()]
    }

    /// All invalidations.
    pub fn invalidations(&self) -> u64 {
        self.invalidations_by_cause.iter().sum()
    }

    /// Invalidations for one cause.
    pub fn invalidations_for(&self, cause: InvalidationCause) -> u64 {
        self.invalidations_by_cause[cause.index()]
    }

    /// Hits over all reads, in `[0, 1]` (1 when there were no reads).
    pub fn hit_rate(&self) -> f64 {
        let total = self.hits + self.misses();
        if total == 0 {
            1.0
        } else {
            self.hits as f64 / total as f64
        }
    }

    /// The counters accumulated since `earlier` (saturating).
    pub fn since(&self, earlier: &LeaseStats) -> LeaseStats {
        self.combine(earlier, u64::saturating_sub)
    }

    /// The counters of two leases added together (e.g. every node of a cluster).
    pub fn plus(&self, other: &LeaseStats) -> LeaseStats {
        self.combine(other, u64::saturating_add)
    }

    /// Applies `op` counter by counter, so every field is covered in one place.
    fn combine(&self, other: &LeaseStats, op: fn(u64, u64) -> u64) -> LeaseStats {
        LeaseStats {
            hits: op(self.hits, other.hits),
            misses_by_reason: std::array::from_fn(|i| {
                op(self.misses_by_reason[i], other.misses_by_reason[i])
            }),
            invalidations_by_cause: std::array::from_fn(|i| {
                op(
                    self.invalidations_by_cause[i],
                    other.invalidations_by_cause[i],
                )
            }),
            slow_rounds: op(self.slow_rounds, other.slow_rounds),
            slow_round_errors: op(self.slow_round_errors, other.slow_round_errors),
            ack_renewals: op(self.ack_renewals, other.ack_renewals),
            round_renewals: op(self.round_renewals, other.round_renewals),
        }
    }
}

/// The live counters behind [`LeaseStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    hits: AtomicU64,
    misses: [AtomicU64; 6],
    invalidations: [AtomicU64; 10],
    slow_rounds: AtomicU64,
    slow_round_errors: AtomicU64,
    ack_renewals: AtomicU64,
    round_renewals: AtomicU64,
}

impl Counters {
    pub(crate) fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("kv_lease_reads_total", "path" => "fast").increment(1);
    }

    pub(crate) fn miss(&self, reason: MissReason) {
        self.misses[reason.index()].fetch_add(1, Ordering::Relaxed);
        metrics::counter!("kv_lease_misses_total", "reason" => reason.label()).increment(1);
    }

    pub(crate) fn slow_read(&self) {
        metrics::counter!("kv_lease_reads_total", "path" => "slow").increment(1);
    }

    pub(crate) fn invalidated(&self, cause: InvalidationCause) {
        self.invalidations[cause.index()].fetch_add(1, Ordering::Relaxed);
        metrics::counter!("kv_lease_invalidations_total", "cause" => cause.label()).increment(1);
    }

    pub(crate) fn slow_round(&self, ok: bool) {
        self.slow_rounds.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.slow_round_errors.fetch_add(1, Ordering::Relaxed);
        }
        let result = if ok { "ok" } else { "error" };
        metrics::counter!("kv_lease_slow_rounds_total", "result" => result).increment(1);
    }

    pub(crate) fn ack_renewal(&self) {
        self.ack_renewals.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("kv_lease_ack_renewals_total").increment(1);
    }

    pub(crate) fn round_renewal(&self) {
        self.round_renewals.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn latency(&self, path: ReadPath, elapsed: Duration) {
        metrics::histogram!("kv_lease_read_seconds", "path" => path.label()).record(elapsed);
    }

    pub(crate) fn snapshot(&self) -> LeaseStats {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        LeaseStats {
            hits: load(&self.hits),
            misses_by_reason: std::array::from_fn(|i| load(&self.misses[i])),
            invalidations_by_cause: std::array::from_fn(|i| load(&self.invalidations[i])),
            slow_rounds: load(&self.slow_rounds),
            slow_round_errors: load(&self.slow_round_errors),
            ack_renewals: load(&self.ack_renewals),
            round_renewals: load(&self.round_renewals),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn indices_follow_the_all_arrays() {
        for (i, reason) in MissReason::ALL.into_iter().enumerate() {
            assert_eq!(reason.index(), i);
        }
        for (i, cause) in InvalidationCause::ALL.into_iter().enumerate() {
            assert_eq!(cause.index(), i);
        }
    }

    #[test]
    fn snapshot_counts_and_differences() {
        let counters = Counters::default();
        counters.hit();
        counters.hit();
        counters.miss(MissReason::Expired);
        let before = counters.snapshot();
        counters.hit();
        counters.miss(MissReason::NotLeader);
        counters.invalidated(InvalidationCause::TermChanged);
        counters.slow_round(false);
        let now = counters.snapshot();
        assert_eq!(now.hits, 3);
        assert_eq!(now.misses(), 2);
        assert!((now.hit_rate() - 0.6).abs() < 1e-9);
        let delta = now.since(&before);
        assert_eq!(delta.hits, 1);
        assert_eq!(delta.misses_for(MissReason::NotLeader), 1);
        assert_eq!(delta.misses_for(MissReason::Expired), 0);
        assert_eq!(delta.invalidations_for(InvalidationCause::TermChanged), 1);
        assert_eq!((delta.slow_rounds, delta.slow_round_errors), (1, 1));
        assert_eq!(
            before.plus(&delta),
            now,
            "adding the difference back restores the total"
        );
        assert_eq!(delta.plus(&delta).misses_for(MissReason::NotLeader), 2);
    }
}

//! Plain data the contract speaks in: identities, roles, status, membership, timing.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

/// Identity of a node in a cluster. Zero is reserved (raft-rs uses it for "none").
pub type NodeId = u64;

/// The role a node currently plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Role {
    /// Leads the cluster in the current term.
    Leader,
    /// Follows a leader (or waits for one) as a voter.
    #[default]
    Follower,
    /// Campaigning for leadership.
    Candidate,
    /// Receives the log but does not vote.
    Learner,
    /// The engine has stopped.
    Shutdown,
}

/// Voters and learners of the cluster as this node knows them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Membership {
    /// Nodes that vote. In a joint configuration, the union of both voter sets.
    pub voters: BTreeSet<NodeId>,
    /// Nodes that replicate but do not vote.
    pub learners: BTreeSet<NodeId>,
    /// True while a joint (two-phase) configuration is in force.
    pub joint: bool,
}

impl Membership {
    /// Whether `id` is a voter or a learner.
    pub fn contains(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.learners.contains(&id)
    }
}

/// A snapshot of what a node knows, published after every change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    /// This node's id.
    pub id: NodeId,
    /// Current role.
    pub role: Role,
    /// Current term.
    pub term: u64,
    /// The leader of `term`, if known.
    pub leader: Option<NodeId>,
    /// Highest index known committed.
    pub commit_index: u64,
    /// Highest index applied to the local state machine.
    pub applied_index: u64,
    /// Term of the entry at `applied_index` (0 when nothing is applied). A leader whose
    /// `applied_term == term` has applied every entry committed before its term.
    pub applied_term: u64,
    /// Highest index in the local log.
    pub last_log_index: u64,
    /// Set while this node, as leader, is handing leadership to that node.
    pub transferring_to: Option<NodeId>,
    /// How many leadership transfers this node has started since it was constructed. Never
    /// decreases. A transfer that starts and aborts between two looks at `transferring_to` is
    /// still visible here, which matters to leases: a transfer's forced election ignores the
    /// followers' vote refusal.
    pub transfers_started: u64,
    /// The term in which this node, as leader, most recently started a leadership transfer.
    ///
    /// A transfer's forced election ignores the followers' vote refusal, and the message that
    /// triggers it may still be in flight (or, on openraft, the followers' refusal stays off)
    /// long after the transfer was aborted. So no acknowledgement of that term proves a lease:
    /// a lease layer grants none for the rest of the term (see
    /// [`Status::transfer_started_this_term`]). Engines publish this before the transfer's
    /// first message can leave the node.
    pub transfer_term: Option<u64>,
    /// Current membership, shared: cloning a `Status` (which readers do on every lease check)
    /// never copies the voter sets.
    pub membership: Arc<Membership>,
}

impl Status {
    /// True when this node started a leadership transfer in its current term: from then on
    /// nothing in this term may grant or extend a read lease.
    pub fn transfer_started_this_term(&self) -> bool {
        self.transfer_term == Some(self.term)
    }

    /// True when this node leads and has applied an entry of its own term, so every write
    /// committed before the term started is visible locally.
    pub fn is_ready_leader(&self) -> bool {
        self.role == Role::Leader
            && self.applied_term == self.term
            && self.transferring_to.is_none()
    }
}

/// A committed and locally applied proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Log index of the entry.
    pub index: u64,
    /// Term of the entry.
    pub term: u64,
    /// What the state machine's `apply` returned.
    pub response: Bytes,
}

/// Proof of a linearizable read point: the local state machine has applied `index`, which a
/// quorum confirmed as committed while this node led in `term`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadIndex {
    /// The confirmed read index.
    pub index: u64,
    /// The leader term that confirmed it.
    pub term: u64,
}

/// The newest message whose acknowledgement by a quorum of current voters proves leadership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuorumAck {
    /// The term the message was sent in.
    pub term: u64,
    /// When the message was **sent**, on this engine's clock. Never the receive time.
    pub sent_at: Instant,
}

/// Timing facts a lease layer needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Interval between leader heartbeats.
    pub heartbeat_interval: Duration,
    /// Smallest randomized election timeout.
    pub election_timeout_min: Duration,
    /// Largest randomized election timeout.
    pub election_timeout_max: Duration,
    /// How long a follower is guaranteed to refuse votes after acknowledging the leader
    /// (ignoring leadership-transfer elections, which the lease layer handles itself).
    pub vote_refusal_window: Duration,
    /// Assumed bound on the clock-rate difference between any two nodes (0.01 = 1%): over an
    /// interval that one node measures as `t`, another measures between `t × (1 − d)` and
    /// `t × (1 + d)`. A deployment whose clocks each drift by up to `e` from true time sets
    /// `d ≈ 2e`.
    pub max_clock_drift: f64,
}

impl Timing {
    /// Rejects timing a lease could not be safely derived from: the error names the setting.
    pub fn validate(&self) -> crate::Result<()> {
        let invalid = |what: &str| {
            Err(crate::Error::rejected(crate::RejectReason::InvalidConfig(
                what.into(),
            )))
        };
        if self.heartbeat_interval.is_zero() {
            return invalid("heartbeat_interval must be positive");
        }
        if self.election_timeout_min <= self.heartbeat_interval {
            return invalid("election_timeout_min must exceed heartbeat_interval");
        }
        if self.election_timeout_max < self.election_timeout_min {
            return invalid("election_timeout_max must be at least election_timeout_min");
        }
        if self.vote_refusal_window.is_zero() {
            return invalid("vote_refusal_window must be positive");
        }
        if self.vote_refusal_window > self.election_timeout_max {
            return invalid("vote_refusal_window cannot exceed election_timeout_max");
        }
        if !(self.max_clock_drift.is_finite() && (0.0..0.5).contains(&self.max_clock_drift)) {
            return invalid("max_clock_drift must be in [0, 0.5)");
        }
        Ok(())
    }
}

/// What a backend can do (and, in the conformance suite, what a case needs). An operation a
/// backend does not support fails with [`crate::ErrorKind::Unsupported`]; the suite reports the
/// cases that need it as ignored, never as passed.
///
/// Build it from the constants (`Capabilities::ALL`, or `NONE.and(...)`), so a capability added
/// later breaks no backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Capabilities {
    /// `transfer_leadership` works.
    pub leadership_transfer: bool,
    /// Membership changes work.
    pub membership_change: bool,
    /// `snapshot` builds snapshots and lagging followers install them.
    pub snapshots: bool,
    /// `quorum_ack` reports acknowledgements.
    pub quorum_ack: bool,
}

impl Capabilities {
    /// Nothing beyond the core contract (propose, reads, status, shutdown).
    pub const NONE: Self = Self {
        leadership_transfer: false,
        membership_change: false,
        snapshots: false,
        quorum_ack: false,
    };
    /// Everything this version of the contract knows.
    pub const ALL: Self = Self {
        leadership_transfer: true,
        membership_change: true,
        snapshots: true,
        quorum_ack: true,
    };
    /// `transfer_leadership`.
    pub const LEADERSHIP_TRANSFER: Self = Self {
        leadership_transfer: true,
        ..Self::NONE
    };
    /// `add_learner`, `promote_learner`, `remove_node`.
    pub const MEMBERSHIP_CHANGE: Self = Self {
        membership_change: true,
        ..Self::NONE
    };
    /// `snapshot` and snapshot install.
    pub const SNAPSHOTS: Self = Self {
        snapshots: true,
        ..Self::NONE
    };
    /// `quorum_ack`.
    pub const QUORUM_ACK: Self = Self {
        quorum_ack: true,
        ..Self::NONE
    };

    /// Both sets together.
    pub const fn and(self, other: Self) -> Self {
        Self {
            leadership_transfer: self.leadership_transfer || other.leadership_transfer,
            membership_change: self.membership_change || other.membership_change,
            snapshots: self.snapshots || other.snapshots,
            quorum_ack: self.quorum_ack || other.quorum_ack,
        }
    }

    /// This set without `other`'s capabilities.
    pub const fn without(self, other: Self) -> Self {
        Self {
            leadership_transfer: self.leadership_transfer && !other.leadership_transfer,
            membership_change: self.membership_change && !other.membership_change,
            snapshots: self.snapshots && !other.snapshots,
            quorum_ack: self.quorum_ack && !other.quorum_ack,
        }
    }

    /// The names of the capabilities in this set.
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.leadership_transfer, "leadership_transfer"),
            (self.membership_change, "membership_change"),
            (self.snapshots, "snapshots"),
            (self.quorum_ack, "quorum_ack"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }

    /// The capabilities of this set that `offered` lacks, by name.
    pub fn missing_from(&self, offered: &Self) -> Vec<&'static str> {
        self.without(*offered).names()
    }
}

/// A built snapshot's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Last log index covered by the snapshot.
    pub last_index: u64,
    /// Term of that entry.
    pub last_term: u64,
}

/// Why a node stopped leading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LossCause {
    /// Saw a higher term or lost an election.
    SteppedDown,
    /// No quorum acknowledged it for longer than a lease could be valid.
    QuorumLost,
    /// Handed leadership to another node.
    Transferred,
    /// The engine shut down.
    Shutdown,
    /// The engine failed fatally.
    Fatal,
}

/// One leader→non-leader edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderLoss {
    /// The term this node led in.
    pub term: u64,
    /// Why it ended.
    pub cause: LossCause,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> Timing {
        Timing {
            heartbeat_interval: Duration::from_millis(50),
            election_timeout_min: Duration::from_millis(300),
            election_timeout_max: Duration::from_millis(600),
            vote_refusal_window: Duration::from_millis(290),
            max_clock_drift: 0.01,
        }
    }

    #[test]
    fn sound_timing_validates() {
        timing().validate().unwrap();
    }

    #[test]
    fn unsafe_timing_names_the_setting() {
        type Breakage = (fn(&mut Timing), &'static str);
        let cases: [Breakage; 5] = [
            (
                |t| t.heartbeat_interval = Duration::ZERO,
                "heartbeat_interval",
            ),
            (
                |t| t.election_timeout_min = t.heartbeat_interval,
                "election_timeout_min",
            ),
            (
                |t| t.vote_refusal_window = Duration::ZERO,
                "vote_refusal_window",
            ),
            (
                |t| t.vote_refusal_window = Duration::from_secs(1),
                "vote_refusal_window",
            ),
            (|t| t.max_clock_drift = f64::NAN, "max_clock_drift"),
        ];
        for (break_it, setting) in cases {
            let mut t = timing();
            break_it(&mut t);
            let err = t.validate().unwrap_err();
            assert!(err.to_string().contains(setting), "{err}");
            assert!(matches!(
                err.kind(),
                crate::ErrorKind::Rejected(crate::RejectReason::InvalidConfig(_))
            ));
        }
    }

    #[test]
    fn a_ready_leader_has_applied_its_own_term() {
        let mut status = Status {
            role: Role::Leader,
            term: 3,
            applied_term: 2,
            ..Status::default()
        };
        assert!(!status.is_ready_leader());
        status.applied_term = 3;
        assert!(status.is_ready_leader());
        status.transferring_to = Some(2);
        assert!(!status.is_ready_leader());
    }
}

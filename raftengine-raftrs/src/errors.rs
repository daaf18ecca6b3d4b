//! The one place native raft-rs errors become [`raftengine::Error`]s.
//!
//! raft-rs overloads `ProposalDropped` (follower, candidate, transferring leader, leader removed
//! from the configuration, uncommitted-size limit), so the mapping needs the node's state at the
//! time of the call: [`NodeView`].

use raft::{StateRole, StorageError};
use raftengine::{Error, ErrorKind, RejectReason};

/// The node state a native error is classified against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NodeView {
    /// raft-rs role.
    pub(crate) role: StateRole,
    /// raft-rs `leader_id` (0 = unknown).
    pub(crate) leader_id: u64,
    /// raft-rs `lead_transferee`.
    pub(crate) lead_transferee: Option<u64>,
    /// Whether this node is in the current configuration's progress set.
    pub(crate) in_config: bool,
}

impl NodeView {
    /// Reads the view from a raft-rs core.
    pub(crate) fn of<T: raft::Storage>(raft: &raft::Raft<T>) -> Self {
        Self {
            role: raft.state,
            leader_id: raft.leader_id,
            lead_transferee: raft.lead_transferee,
            in_config: raft.prs().get(raft.id).is_some(),
        }
    }

    fn hint(&self) -> Option<u64> {
        (self.leader_id != raft::INVALID_ID).then_some(self.leader_id)
    }

    /// The refusal for a request that needs a leader, if this node cannot take it now:
    /// `NotLeader` (with the hint) off the leader, `TransferInProgress` during a transfer,
    /// `NotLeader { hint: None }` on a leader removed from the configuration.
    pub(crate) fn refuse_unless_leader(&self) -> Option<Error> {
        if self.role != StateRole::Leader {
            return Some(Error::not_leader(self.hint()));
        }
        if let Some(target) = self.lead_transferee {
            return Some(Error::transfer_in_progress(Some(target)));
        }
        if !self.in_config {
            return Some(
                Error::not_leader(None)
                    .with_context("this leader was removed from the configuration"),
            );
        }
        None
    }
}

/// Maps a native raft-rs error, given the node state when it happened.
pub(crate) fn map_error(err: raft::Error, view: &NodeView) -> Error {
    let kind = match &err {
        raft::Error::ProposalDropped => {
            if let Some(refusal) = view.refuse_unless_leader() {
                return refusal.with_source(err);
            }
            // A leader that leads, is not transferring and is in the configuration drops a
            // proposal only for the uncommitted-size limit: back-pressure, not leadership.
            return Error::new(ErrorKind::Busy)
                .with_context("the uncommitted-entries limit is reached")
                .with_source(err);
        }
        raft::Error::Exists { id, .. } => ErrorKind::Rejected(RejectReason::AlreadyMember(*id)),
        raft::Error::NotExists { id, .. } => ErrorKind::Rejected(RejectReason::UnknownNode(*id)),
        raft::Error::ConfChangeError(text) | raft::Error::ConfigInvalid(text) => {
            ErrorKind::Rejected(RejectReason::InvalidConfig(text.clone()))
        }
        raft::Error::StepLocalMsg | raft::Error::StepPeerNotFound => {
            ErrorKind::Rejected(RejectReason::MalformedMessage)
        }
        raft::Error::RequestSnapshotDropped => ErrorKind::Unavailable,
        raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable) => ErrorKind::Unavailable,
        raft::Error::Store(_) | raft::Error::Io(_) | raft::Error::CodecError(_) => {
            ErrorKind::Storage
        }
    };
    Error::new(kind).with_source(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use raftengine::WriteOutcome;

    fn view(role: StateRole) -> NodeView {
        NodeView {
            role,
            leader_id: if role == StateRole::Leader { 1 } else { 2 },
            lead_transferee: None,
            in_config: true,
        }
    }

    #[test]
    fn dropped_on_follower_is_not_leader_with_hint() {
        let err = map_error(raft::Error::ProposalDropped, &view(StateRole::Follower));
        assert_eq!(err.kind(), &ErrorKind::NotLeader { hint: Some(2) });
        assert!(err.is_leadership_loss());
        assert_eq!(err.outcome(), WriteOutcome::NotApplied);
    }

    #[test]
    fn dropped_on_leaderless_candidate_is_not_leader_without_hint() {
        let mut v = view(StateRole::Candidate);
        v.leader_id = 0;
        let err = map_error(raft::Error::ProposalDropped, &v);
        assert_eq!(err.kind(), &ErrorKind::NotLeader { hint: None });
        let mut pre = view(StateRole::PreCandidate);
        pre.leader_id = 0;
        assert_eq!(
            map_error(raft::Error::ProposalDropped, &pre).kind(),
            &ErrorKind::NotLeader { hint: None }
        );
    }

    #[test]
    fn dropped_during_transfer_is_transfer_in_progress() {
        let mut v = view(StateRole::Leader);
        v.lead_transferee = Some(3);
        let err = map_error(raft::Error::ProposalDropped, &v);
        assert_eq!(
            err.kind(),
            &ErrorKind::TransferInProgress { target: Some(3) }
        );
    }

    #[test]
    fn dropped_on_removed_leader_is_not_leader() {
        let mut v = view(StateRole::Leader);
        v.in_config = false;
        let err = map_error(raft::Error::ProposalDropped, &v);
        assert_eq!(err.kind(), &ErrorKind::NotLeader { hint: None });
    }

    #[test]
    fn dropped_on_healthy_leader_is_busy_not_leadership_loss() {
        let err = map_error(raft::Error::ProposalDropped, &view(StateRole::Leader));
        assert_eq!(err.kind(), &ErrorKind::Busy);
        assert!(!err.is_leadership_loss());
        assert_eq!(err.outcome(), WriteOutcome::NotApplied);
    }

    #[test]
    fn membership_errors_are_rejections() {
        let v = view(StateRole::Leader);
        assert_eq!(
            map_error(
                raft::Error::Exists {
                    id: 4,
                    set: "voters"
                },
                &v
            )
            .kind(),
            &ErrorKind::Rejected(RejectReason::AlreadyMember(4))
        );
        assert_eq!(
            map_error(
                raft::Error::NotExists {
                    id: 5,
                    set: "learners"
                },
                &v
            )
            .kind(),
            &ErrorKind::Rejected(RejectReason::UnknownNode(5))
        );
        assert!(matches!(
            map_error(raft::Error::ConfChangeError("joint".into()), &v).kind(),
            ErrorKind::Rejected(RejectReason::InvalidConfig(_))
        ));
        assert!(matches!(
            map_error(raft::Error::ConfigInvalid("ticks".into()), &v).kind(),
            ErrorKind::Rejected(RejectReason::InvalidConfig(_))
        ));
    }

    #[test]
    fn step_errors_are_malformed_messages() {
        let v = view(StateRole::Follower);
        assert_eq!(
            map_error(raft::Error::StepLocalMsg, &v).kind(),
            &ErrorKind::Rejected(RejectReason::MalformedMessage)
        );
        assert_eq!(
            map_error(raft::Error::StepPeerNotFound, &v).kind(),
            &ErrorKind::Rejected(RejectReason::MalformedMessage)
        );
    }

    #[test]
    fn storage_failures_are_storage_and_snapshot_delays_unavailable() {
        let v = view(StateRole::Leader);
        assert_eq!(
            map_error(raft::Error::Store(StorageError::Compacted), &v).kind(),
            &ErrorKind::Storage
        );
        assert_eq!(
            map_error(raft::Error::Io(std::io::Error::other("disk")), &v).kind(),
            &ErrorKind::Storage
        );
        assert_eq!(
            map_error(
                raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable),
                &v
            )
            .kind(),
            &ErrorKind::Unavailable
        );
        assert_eq!(
            map_error(raft::Error::RequestSnapshotDropped, &v).kind(),
            &ErrorKind::Unavailable
        );
    }

    #[test]
    fn refusal_prechecks_follow_the_same_rules() {
        assert!(view(StateRole::Leader).refuse_unless_leader().is_none());
        assert_eq!(
            view(StateRole::Follower)
                .refuse_unless_leader()
                .unwrap()
                .kind(),
            &ErrorKind::NotLeader { hint: Some(2) }
        );
    }
}

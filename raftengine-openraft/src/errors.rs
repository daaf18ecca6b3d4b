//! The one place openraft's errors become [`raftengine::Error`]s.
//!
//! | openraft | engine kind | write outcome |
//! |---|---|---|
//! | `ForwardToLeader { reason: NotLeader, leader_id }` | `NotLeader { hint: leader_id }` | not applied |
//! | `ForwardToLeader { reason: LeadershipTransfer, leader_id }` | `TransferInProgress { target: leader_id }` | not applied |
//! | `ForwardToLeader { reason: LeaseExpired }` | `NotLeader { hint: None }`: the leader has lost quorum contact, so it must not be treated as leading (the lease layer invalidates) | not applied |
//! | `LogEntryDiscarded` | `LeadershipLost` | unknown |
//! | `QuorumNotEnough` (reads) | `Unavailable` | not applied |
//! | `ChangeMembershipError::InProgress` | `Rejected(MembershipChangePending)` | not applied |
//! | `ChangeMembershipError::LearnerNotFound` | `Rejected(UnknownNode)` | not applied |
//! | `ChangeMembershipError::EmptyMembership` | `Rejected(InvalidConfig)` | not applied |
//! | `ChangeMembershipError::UnsupportedMembershipTransition` | `Rejected(InvalidConfig)` | not applied |
//! | `ChangeMembershipError::NodeMetadataChanged` | `Rejected(AlreadyMember)` | not applied |
//! | `ChangeMembershipError::UncommittedLeaderLog` | `Busy` (the new leader has not committed its first entry yet; retry shortly) | not applied |
//! | `PreconditionFailed` | `Rejected(InvalidConfig)` (the adapter sets no preconditions) | not applied |
//! | `InitializeError::NotInMembers` | `Rejected(InvalidConfig)` | not applied |
//! | `InitializeError::NotAllowed` | not an error for the adapter (already initialized) | |
//! | `Fatal::Stopped` | `Shutdown` | unknown |
//! | `Fatal::Panicked` | `Fatal` | unknown |
//! | `Fatal::StorageError` | `Storage` | unknown |
//! | `WaitError::Timeout` / caller deadline | `Timeout` | unknown |
//! | `WaitError::ShuttingDown` | `Shutdown` | unknown |

use std::fmt::Display;

use openraft::errors::{
    ChangeMembershipError, ClientWriteError, Fatal, ForwardReason, ForwardToLeader,
    InitializeError, LinearizableReadError, RaftError,
};
use openraft::metrics::WaitError;
use openraft::type_config::alias::CommittedLeaderIdOf;
use raftengine::{Error, ErrorKind, NodeId, RejectReason, WriteOutcome};

use crate::types::TypeConfig;

/// An openraft error the adapter knows how to classify.
pub(crate) trait NativeError {
    /// The engine error for this native error.
    fn into_engine_error(self) -> Error;
}

/// Classifies a native openraft error; the single entry point the adapter uses.
pub(crate) fn map_error(native: impl NativeError) -> Error {
    native.into_engine_error()
}

/// True for a write refused because this leader has no recent quorum acknowledgement: the
/// one refusal a freshly elected leader gives before its first heartbeat round answers.
pub(crate) fn is_lease_expired(native: &ClientWriteError<TypeConfig>) -> bool {
    matches!(
        native,
        ClientWriteError::ForwardToLeader(forward) if forward.reason == ForwardReason::LeaseExpired
    )
}

fn with_text(error: Error, native: &impl Display) -> Error {
    error.with_context(native.to_string())
}

impl NativeError for ForwardToLeader<TypeConfig> {
    fn into_engine_error(self) -> Error {
        match self.reason {
            ForwardReason::NotLeader => Error::not_leader(self.leader_id),
            ForwardReason::LeadershipTransfer => Error::transfer_in_progress(self.leader_id),
            ForwardReason::LeaseExpired => Error::not_leader(None)
                .with_context("the leader's lease expired: no quorum acknowledged it recently"),
        }
    }
}

impl NativeError for Fatal<TypeConfig> {
    fn into_engine_error(self) -> Error {
        match &self {
            Fatal::Stopped => Error::shutdown(),
            Fatal::Panicked => with_text(Error::new(ErrorKind::Fatal), &self),
            Fatal::StorageError(_) => with_text(Error::new(ErrorKind::Storage), &self),
        }
    }
}

impl NativeError for ChangeMembershipError<CommittedLeaderIdOf<TypeConfig>, NodeId> {
    fn into_engine_error(self) -> Error {
        let reason = match &self {
            ChangeMembershipError::InProgress(_) => RejectReason::MembershipChangePending,
            ChangeMembershipError::LearnerNotFound(e) => RejectReason::UnknownNode(e.node_id),
            ChangeMembershipError::NodeMetadataChanged(e) => RejectReason::AlreadyMember(e.node_id),
            ChangeMembershipError::UncommittedLeaderLog(_) => {
                return with_text(Error::new(ErrorKind::Busy), &self);
            }
            ChangeMembershipError::EmptyMembership(_)
            | ChangeMembershipError::UnsupportedMembershipTransition(_) => {
                RejectReason::InvalidConfig(self.to_string())
            }
        };
        with_text(Error::rejected(reason), &self)
    }
}

impl NativeError for ClientWriteError<TypeConfig> {
    fn into_engine_error(self) -> Error {
        match self {
            ClientWriteError::ForwardToLeader(forward) => map_error(forward),
            ClientWriteError::LogEntryDiscarded(forward) => {
                let error = Error::leadership_lost(WriteOutcome::Unknown);
                match forward.leader_id {
                    Some(leader) => error.with_context(format!(
                        "the entry was removed from this node's log; node {leader} leads now"
                    )),
                    None => error.with_context("the entry was removed from this node's log"),
                }
            }
            ClientWriteError::ChangeMembershipError(e) => map_error(e),
            ClientWriteError::PreconditionFailed(e) => {
                Error::rejected(RejectReason::InvalidConfig(e.to_string()))
            }
        }
    }
}

impl NativeError for LinearizableReadError<TypeConfig> {
    fn into_engine_error(self) -> Error {
        match self {
            LinearizableReadError::ForwardToLeader(forward) => map_error(forward),
            LinearizableReadError::QuorumNotEnough(e) => {
                with_text(Error::new(ErrorKind::Unavailable), &e)
            }
        }
    }
}

impl NativeError for InitializeError<TypeConfig> {
    fn into_engine_error(self) -> Error {
        Error::rejected(RejectReason::InvalidConfig(self.to_string()))
    }
}

impl<E: NativeError> NativeError for RaftError<TypeConfig, E> {
    fn into_engine_error(self) -> Error {
        match self {
            RaftError::APIError(e) => map_error(e),
            RaftError::Fatal(f) => map_error(f),
        }
    }
}

impl NativeError for openraft::errors::Infallible {
    fn into_engine_error(self) -> Error {
        match self {}
    }
}

impl NativeError for WaitError {
    fn into_engine_error(self) -> Error {
        match self {
            WaitError::Timeout(after, _) => Error::timeout(after),
            WaitError::ShuttingDown => Error::shutdown(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use openraft::errors::{
        EmptyMembership, ErrorSource, InProgress, LearnerNotFound, NodeMetadataChanged, NotAllowed,
        NotInMembers, PreconditionFailed, QuorumNotEnough, UncommittedLeaderLog,
        UnsupportedMembershipTransition,
    };
    use openraft::{EmptyNode, StorageError};

    use super::*;
    use crate::types::{Vote, log_id};

    type Forward = ForwardToLeader<TypeConfig>;
    type Membership = ChangeMembershipError<CommittedLeaderIdOf<TypeConfig>, NodeId>;

    fn forward(leader: Option<NodeId>, reason: ForwardReason) -> Forward {
        match leader {
            Some(id) => Forward::new(id, EmptyNode {}).with_reason(reason),
            None => Forward::empty().with_reason(reason),
        }
    }

    fn write(e: ClientWriteError<TypeConfig>) -> Error {
        map_error(RaftError::<TypeConfig, _>::APIError(e))
    }

    #[test]
    fn forward_not_leader_is_not_leader_with_hint() {
        let err = write(ClientWriteError::ForwardToLeader(forward(
            Some(2),
            ForwardReason::NotLeader,
        )));
        assert_eq!(err.kind(), &ErrorKind::NotLeader { hint: Some(2) });
        assert_eq!(err.outcome(), WriteOutcome::NotApplied);
        assert!(err.is_leadership_loss());
        let err = write(ClientWriteError::ForwardToLeader(forward(
            None,
            ForwardReason::NotLeader,
        )));
        assert_eq!(err.kind(), &ErrorKind::NotLeader { hint: None });
    }

    #[test]
    fn forward_for_transfer_is_transfer_in_progress_with_target() {
        let err = write(ClientWriteError::ForwardToLeader(forward(
            Some(3),
            ForwardReason::LeadershipTransfer,
        )));
        assert_eq!(
            err.kind(),
            &ErrorKind::TransferInProgress { target: Some(3) }
        );
        assert_eq!(err.outcome(), WriteOutcome::NotApplied);
        assert!(err.is_leadership_loss());
    }

    #[test]
    fn only_a_lease_expired_refusal_is_recognised_as_one() {
        let refusal = |reason| ClientWriteError::ForwardToLeader(forward(None, reason));
        assert!(is_lease_expired(&refusal(ForwardReason::LeaseExpired)));
        assert!(!is_lease_expired(&refusal(ForwardReason::NotLeader)));
        assert!(!is_lease_expired(&refusal(
            ForwardReason::LeadershipTransfer
        )));
        assert!(!is_lease_expired(&ClientWriteError::ChangeMembershipError(
            openraft::errors::ChangeMembershipError::EmptyMembership(
                openraft::errors::EmptyMembership {}
            )
        )));
    }

    #[test]
    fn lease_expired_is_not_leader_without_hint() {
        let err = write(ClientWriteError::ForwardToLeader(forward(
            None,
            ForwardReason::LeaseExpired,
        )));
        assert_eq!(err.kind(), &ErrorKind::NotLeader { hint: None });
        assert_eq!(err.outcome(), WriteOutcome::NotApplied);
        assert!(err.to_string().contains("lease expired"), "{err}");
    }

    #[test]
    fn discarded_entry_is_leadership_lost_with_unknown_outcome() {
        let err = write(ClientWriteError::LogEntryDiscarded(forward(
            Some(3),
            ForwardReason::NotLeader,
        )));
        assert_eq!(err.kind(), &ErrorKind::LeadershipLost);
        assert_eq!(err.outcome(), WriteOutcome::Unknown);
        assert!(err.is_leadership_loss());
        assert!(!err.is_safe_to_retry());
        assert_eq!(err.leader_hint(), None);
    }

    #[test]
    fn membership_errors_are_rejections() {
        let cases: Vec<(Membership, ErrorKind)> = vec![
            (
                ChangeMembershipError::InProgress(InProgress {
                    committed: Some(log_id(1, 3)),
                    membership_log_id: Some(log_id(1, 4)),
                }),
                ErrorKind::Rejected(RejectReason::MembershipChangePending),
            ),
            (
                ChangeMembershipError::LearnerNotFound(LearnerNotFound { node_id: 7 }),
                ErrorKind::Rejected(RejectReason::UnknownNode(7)),
            ),
            (
                ChangeMembershipError::NodeMetadataChanged(NodeMetadataChanged { node_id: 5 }),
                ErrorKind::Rejected(RejectReason::AlreadyMember(5)),
            ),
            (
                ChangeMembershipError::UncommittedLeaderLog(UncommittedLeaderLog {
                    committed: None,
                    leader_log_id: log_id(2, 9),
                }),
                ErrorKind::Busy,
            ),
        ];
        for (native, expected) in cases {
            let err = write(ClientWriteError::ChangeMembershipError(native));
            assert_eq!(err.kind(), &expected);
            assert_eq!(err.outcome(), WriteOutcome::NotApplied);
            assert!(!err.is_leadership_loss());
        }
        let invalid: Vec<Membership> = vec![
            ChangeMembershipError::EmptyMembership(EmptyMembership {}),
            ChangeMembershipError::UnsupportedMembershipTransition(
                UnsupportedMembershipTransition {
                    previous: vec![BTreeSet::from([1, 2])],
                    proposed: vec![BTreeSet::from([3]), BTreeSet::from([4])],
                },
            ),
        ];
        for native in invalid {
            let err = write(ClientWriteError::ChangeMembershipError(native));
            assert!(
                matches!(
                    err.kind(),
                    ErrorKind::Rejected(RejectReason::InvalidConfig(_))
                ),
                "{err:?}"
            );
        }
    }

    #[test]
    fn failed_precondition_is_a_rejection() {
        let err = write(ClientWriteError::PreconditionFailed(
            PreconditionFailed::LastLogIdMismatch {
                expected: Some(log_id(1, 1)),
                actual: None,
            },
        ));
        assert!(matches!(err.kind(), ErrorKind::Rejected(_)), "{err:?}");
    }

    #[test]
    fn read_errors_split_by_reason_and_quorum() {
        let read = |e: LinearizableReadError<TypeConfig>| {
            map_error(RaftError::<TypeConfig, _>::APIError(e))
        };
        let err = read(LinearizableReadError::ForwardToLeader(forward(
            Some(1),
            ForwardReason::NotLeader,
        )));
        assert_eq!(err.kind(), &ErrorKind::NotLeader { hint: Some(1) });
        let err = read(LinearizableReadError::ForwardToLeader(forward(
            Some(2),
            ForwardReason::LeadershipTransfer,
        )));
        assert_eq!(
            err.kind(),
            &ErrorKind::TransferInProgress { target: Some(2) }
        );
        let err = read(LinearizableReadError::QuorumNotEnough(QuorumNotEnough {
            cluster: "{1,2,3}".to_string(),
            got: BTreeSet::from([1]),
        }));
        assert_eq!(err.kind(), &ErrorKind::Unavailable);
        assert_eq!(err.outcome(), WriteOutcome::NotApplied);
        assert!(!err.is_leadership_loss());
    }

    #[test]
    fn fatal_errors_map_to_shutdown_fatal_and_storage() {
        let stopped =
            map_error(RaftError::<TypeConfig, ClientWriteError<TypeConfig>>::Fatal(Fatal::Stopped));
        assert_eq!(stopped.kind(), &ErrorKind::Shutdown);
        assert_eq!(stopped.outcome(), WriteOutcome::Unknown);
        assert_eq!(
            map_error(Fatal::<TypeConfig>::Panicked).kind(),
            &ErrorKind::Fatal
        );
        let storage = Fatal::<TypeConfig>::StorageError(StorageError::read(
            ErrorSource::from_string("disk gone"),
        ));
        let err = map_error(storage);
        assert_eq!(err.kind(), &ErrorKind::Storage);
        assert!(err.to_string().contains("disk gone"), "{err}");
    }

    #[test]
    fn wait_errors_map_to_timeout_and_shutdown() {
        let err = map_error(WaitError::Timeout(Duration::from_secs(1), "x".into()));
        assert_eq!(err.kind(), &ErrorKind::Timeout);
        assert_eq!(err.outcome(), WriteOutcome::Unknown);
        assert_eq!(
            map_error(WaitError::ShuttingDown).kind(),
            &ErrorKind::Shutdown
        );
    }

    #[test]
    fn initialize_errors_are_invalid_config() {
        let not_in_members = InitializeError::<TypeConfig>::NotInMembers(NotInMembers {
            node_id: 9,
            membership: openraft::Membership::new_with_defaults(vec![BTreeSet::from([1])], []),
        });
        let err = map_error(RaftError::<TypeConfig, _>::APIError(not_in_members));
        assert!(matches!(
            err.kind(),
            ErrorKind::Rejected(RejectReason::InvalidConfig(_))
        ));
        let not_allowed = InitializeError::<TypeConfig>::NotAllowed(NotAllowed {
            last_log_id: Some(log_id(1, 0)),
            vote: Vote::new(1, 1),
        });
        assert!(matches!(
            map_error(not_allowed).kind(),
            ErrorKind::Rejected(_)
        ));
    }
}

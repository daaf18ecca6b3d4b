//! Membership changes: validation against the current configuration and the raft-rs
//! `ConfChangeV2` each request becomes.
//!
//! Every request is one single-node change (raft-rs's simple protocol, no joint state). A joint
//! configuration can still appear (a change proposed by an older version, or raft-rs's
//! auto-leave not yet done when leadership moved); the driver then proposes the empty
//! `ConfChangeV2` that leaves it as soon as it leads and nothing is pending.

use raft::eraftpb::{
    ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2, ConfState,
};
use std::sync::Arc;

use raft::ProgressTracker;
use raftengine::{Error, Membership, RejectReason, Result};

/// A requested membership change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Add a learner.
    AddLearner(u64),
    /// Promote a learner to voter.
    Promote(u64),
    /// Remove a voter or learner.
    Remove(u64),
}

/// raft-rs's current configuration in the two shapes the driver reads on every iteration,
/// rebuilt only when the configuration itself changed (a change applied, a snapshot, a
/// restart): building them allocates. Even comparing (a few set lookups, twice an iteration)
/// showed in profiles, so the driver marks the cache stale at the only two places raft-rs
/// changes its configuration once running: applying a configuration change and stepping a
/// snapshot (raft-rs restores the snapshot's configuration inside `step`).
pub(crate) struct ConfCache {
    /// Whether a tracker's configuration still equals the one this cache was built from.
    /// (raft-rs does not export the configuration's type, so the copy lives in a closure.)
    unchanged: Box<dyn Fn(&ProgressTracker) -> bool + Send>,
    conf: ConfState,
    membership: Arc<Membership>,
    /// Whether the configuration may have changed since the last comparison.
    stale: bool,
}

impl ConfCache {
    /// The cache of `prs`'s configuration as it is now.
    pub(crate) fn of(prs: &ProgressTracker) -> Self {
        let source = prs.conf().clone();
        let conf = source.to_conf_state();
        Self {
            membership: Arc::new(membership_of(&conf)),
            conf,
            unchanged: Box::new(move |prs| *prs.conf() == source),
            stale: false,
        }
    }

    /// Notes that raft-rs may have changed its configuration: the next refresh compares.
    pub(crate) fn mark_stale(&mut self) {
        self.stale = true;
    }

    /// After [`ConfCache::mark_stale`], rebuilds the cache if `prs`'s configuration differs
    /// from the cached one.
    pub(crate) fn refresh(&mut self, prs: &ProgressTracker) {
        if std::mem::take(&mut self.stale) && !(self.unchanged)(prs) {
            *self = Self::of(prs);
        }
        debug_assert!(
            (self.unchanged)(prs),
            "raft-rs changed its configuration without a configuration change or a snapshot"
        );
    }

    /// The configuration as raft-rs's `ConfState`.
    pub(crate) fn conf_state(&self) -> &ConfState {
        &self.conf
    }

    /// The configuration as the engine's [`Membership`].
    pub(crate) fn membership(&self) -> &Arc<Membership> {
        &self.membership
    }

    /// Shares `published` instead of the cached copy when the two are equal, so the status
    /// that readers hold and the cache point at one allocation and compare by pointer.
    pub(crate) fn adopt(&mut self, published: &Arc<Membership>) {
        if !Arc::ptr_eq(&self.membership, published) && *self.membership == **published {
            self.membership = Arc::clone(published);
        }
    }
}

impl std::fmt::Debug for ConfCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfCache")
            .field("membership", &self.membership)
            .finish_non_exhaustive()
    }
}

/// The membership a raft-rs configuration describes.
pub(crate) fn membership_of(conf: &ConfState) -> Membership {
    Membership {
        voters: conf
            .get_voters()
            .iter()
            .chain(conf.get_voters_outgoing())
            .copied()
            .collect(),
        learners: conf
            .get_learners()
            .iter()
            .chain(conf.get_learners_next())
            .copied()
            .collect(),
        joint: !conf.get_voters_outgoing().is_empty(),
    }
}

/// Checks `change` against the current configuration, as seen by leader `self_id`.
pub(crate) fn validate(change: Change, conf: &ConfState, self_id: u64) -> Result<()> {
    let membership = membership_of(conf);
    if membership.joint {
        return Err(Error::rejected(RejectReason::MembershipChangePending)
            .with_context("the configuration is still joint"));
    }
    let is_voter = membership.voters.contains(&match change {
        Change::AddLearner(id) | Change::Promote(id) | Change::Remove(id) => id,
    });
    match change {
        Change::AddLearner(id) => {
            if id == 0 {
                return Err(Error::rejected(RejectReason::UnknownNode(0)));
            }
            if membership.contains(id) {
                return Err(Error::rejected(RejectReason::AlreadyMember(id)));
            }
        }
        Change::Promote(id) => {
            if is_voter {
                return Err(Error::rejected(RejectReason::NotALearner(id)));
            }
            if !membership.learners.contains(&id) {
                return Err(Error::rejected(RejectReason::UnknownNode(id)));
            }
        }
        Change::Remove(id) => {
            if !membership.contains(id) {
                return Err(Error::rejected(RejectReason::UnknownNode(id)));
            }
            if is_voter && membership.voters.len() == 1 {
                return Err(Error::rejected(RejectReason::LastVoter(id)));
            }
            if id == self_id {
                return Err(
                    Error::rejected(RejectReason::TargetIsSelf(id)).with_context(
                        "a leader does not remove itself: transfer leadership first, then remove \
                     this node through the new leader",
                    ),
                );
            }
        }
    }
    Ok(())
}

/// The raft-rs change for a request.
pub(crate) fn conf_change(change: Change) -> ConfChangeV2 {
    let (node_id, change_type) = match change {
        Change::AddLearner(id) => (id, ConfChangeType::AddLearnerNode),
        Change::Promote(id) => (id, ConfChangeType::AddNode),
        Change::Remove(id) => (id, ConfChangeType::RemoveNode),
    };
    let mut single = ConfChangeSingle {
        node_id,
        ..Default::default()
    };
    single.set_change_type(change_type);
    let mut cc = ConfChangeV2::default();
    cc.set_transition(ConfChangeTransition::Auto);
    cc.set_changes(vec![single].into());
    cc
}

#[cfg(test)]
mod tests {
    use super::*;
    use raftengine::ErrorKind;

    fn conf() -> ConfState {
        ConfState::from(([1, 2, 3], [4]))
    }

    fn reason(r: Result<()>) -> RejectReason {
        match r.unwrap_err().kind() {
            ErrorKind::Rejected(reason) => reason.clone(),
            other => panic!("not a rejection: {other:?}"),
        }
    }

    #[test]
    fn bad_requests_are_rejected_with_a_reason() {
        let c = conf();
        assert_eq!(
            reason(validate(Change::AddLearner(4), &c, 1)),
            RejectReason::AlreadyMember(4)
        );
        assert_eq!(
            reason(validate(Change::AddLearner(2), &c, 1)),
            RejectReason::AlreadyMember(2)
        );
        assert_eq!(
            reason(validate(Change::Promote(2), &c, 1)),
            RejectReason::NotALearner(2)
        );
        assert_eq!(
            reason(validate(Change::Promote(9), &c, 1)),
            RejectReason::UnknownNode(9)
        );
        assert_eq!(
            reason(validate(Change::Remove(9), &c, 1)),
            RejectReason::UnknownNode(9)
        );
        assert_eq!(
            reason(validate(Change::Remove(1), &c, 1)),
            RejectReason::TargetIsSelf(1)
        );
        let single = ConfState::from(([1], [4]));
        assert_eq!(
            reason(validate(Change::Remove(1), &single, 2)),
            RejectReason::LastVoter(1)
        );
        let mut joint = conf();
        joint.set_voters_outgoing(vec![1, 2]);
        assert_eq!(
            reason(validate(Change::AddLearner(7), &joint, 1)),
            RejectReason::MembershipChangePending
        );
    }

    #[test]
    fn good_requests_pass_and_become_single_changes() {
        let c = conf();
        validate(Change::AddLearner(5), &c, 1).unwrap();
        validate(Change::Promote(4), &c, 1).unwrap();
        validate(Change::Remove(4), &c, 1).unwrap();
        validate(Change::Remove(3), &c, 1).unwrap();
        let cc = conf_change(Change::Promote(4));
        assert_eq!(cc.get_changes().len(), 1);
        assert_eq!(
            cc.get_changes()[0].get_change_type(),
            ConfChangeType::AddNode
        );
        assert_eq!(membership_of(&c).learners.len(), 1);
    }
}

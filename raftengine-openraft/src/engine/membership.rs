//! Membership changes: validation into typed rejections, then openraft's `add_learner` and
//! `change_membership`, each under the request deadline.
//!
//! openraft changes voters in two steps (a joint configuration, then the final one) and never
//! leaves a committed joint configuration by itself. A change interrupted between the steps (a
//! deadline, a leader change, a shutdown) would leave every later change refused, so each
//! change first finishes a joint configuration it finds, and an error after the joint step
//! reports the outcome as unknown.

use std::collections::BTreeSet;

use openraft::{ChangeMembers, EmptyNode};
use raftengine::{Error, ErrorKind, Membership, NodeId, RejectReason, Result, WriteOutcome};

use super::OpenraftEngine;
use crate::errors::map_error;
use crate::status::membership_of;

impl OpenraftEngine {
    /// Adds `id` as a learner and waits (within the deadline) until it has caught up.
    pub(super) async fn join_learner(&self, id: NodeId) -> Result<Membership> {
        self.check_running()?;
        self.require_leader()?;
        let membership = self.leave_joint(self.current_membership()).await?;
        if membership.contains(id) {
            return Err(Error::rejected(RejectReason::AlreadyMember(id)));
        }
        let raft = self.inner.raft.clone();
        let response = self
            .guarded(self.inner.config.request_timeout, async move {
                raft.add_learner(id, EmptyNode {}, true)
                    .await
                    .map_err(map_error)
            })
            .await?;
        Ok(response
            .membership
            .map(|m| membership_of(&openraft::StoredMembership::new(Some(response.log_id), m)))
            .unwrap_or_else(|| self.current_membership()))
    }

    /// Turns learner `id` into a voter (joint consensus, then the final config).
    pub(super) async fn promote_to_voter(&self, id: NodeId) -> Result<Membership> {
        self.check_running()?;
        self.require_leader()?;
        let membership = self.leave_joint(self.current_membership()).await?;
        if membership.voters.contains(&id) {
            return Err(Error::rejected(RejectReason::NotALearner(id)));
        }
        if !membership.learners.contains(&id) {
            return Err(Error::rejected(RejectReason::UnknownNode(id)));
        }
        self.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])))
            .await
    }

    /// Removes voter or learner `id`; the last voter cannot be removed.
    pub(super) async fn remove_member(&self, id: NodeId) -> Result<Membership> {
        self.check_running()?;
        self.require_leader()?;
        let membership = self.leave_joint(self.current_membership()).await?;
        if !membership.contains(id) {
            return Err(Error::rejected(RejectReason::UnknownNode(id)));
        }
        let change = if membership.voters.contains(&id) {
            if membership.voters.len() == 1 {
                return Err(Error::rejected(RejectReason::LastVoter(id)));
            }
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        self.change_membership(change).await
    }

    /// Finishes a joint configuration left by an interrupted change (openraft flattens a joint
    /// configuration when asked for an empty change), and returns the membership to validate
    /// the next change against.
    async fn leave_joint(&self, membership: Membership) -> Result<Membership> {
        if !membership.joint {
            return Ok(membership);
        }
        tracing::info!(
            node = self.inner.id,
            ?membership,
            "finishing a joint configuration left by an interrupted membership change"
        );
        self.change_membership(ChangeMembers::AddVoterIds(BTreeSet::new()))
            .await
    }

    async fn change_membership(
        &self,
        change: ChangeMembers<NodeId, EmptyNode>,
    ) -> Result<Membership> {
        let before = self.current_membership();
        let raft = self.inner.raft.clone();
        let response = self
            .guarded(self.inner.config.request_timeout, async move {
                raft.change_membership(change, false)
                    .await
                    .map_err(map_error)
            })
            .await
            .map_err(|err| self.classify_interrupted(err, &before))?;
        Ok(response
            .membership
            .map(|m| membership_of(&openraft::StoredMembership::new(Some(response.log_id), m)))
            .unwrap_or_else(|| self.current_membership()))
    }

    /// An error after the joint step was appended is not "nothing happened": the change may
    /// still complete (the next change, on any leader, finishes it), so its outcome is unknown.
    fn classify_interrupted(&self, err: Error, before: &Membership) -> Error {
        let now = self.current_membership();
        if now == *before || err.outcome() == WriteOutcome::Unknown {
            return err;
        }
        let context = format!(
            "the membership change was interrupted after its joint step (membership now \
             {now:?}); it may still complete: {err}"
        );
        match err.kind() {
            ErrorKind::NotLeader { .. } | ErrorKind::TransferInProgress { .. } => {
                Error::leadership_lost(WriteOutcome::Unknown).with_context(context)
            }
            _ => err
                .with_outcome(WriteOutcome::Unknown)
                .with_context(context),
        }
    }
}

//! Membership changes: validation into typed rejections, then openraft's `add_learner` and
//! `change_membership`, each under the request deadline.

use std::collections::BTreeSet;

use openraft::{ChangeMembers, EmptyNode};
use raftengine::{Error, Membership, NodeId, RejectReason, Result};

use super::OpenraftEngine;
use crate::errors::map_error;
use crate::status::membership_of;

impl OpenraftEngine {
    /// Adds `id` as a learner and waits (within the deadline) until it has caught up.
    pub(super) async fn join_learner(&self, id: NodeId) -> Result<Membership> {
        self.check_running()?;
        self.require_leader()?;
        let membership = self.current_membership();
        if membership.contains(id) {
            return Err(Error::rejected(RejectReason::AlreadyMember(id)));
        }
        if membership.joint {
            return Err(Error::rejected(RejectReason::MembershipChangePending));
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
    pub(super) async fn promote_learner(&self, id: NodeId) -> Result<Membership> {
        self.check_running()?;
        self.require_leader()?;
        let membership = self.current_membership();
        if membership.voters.contains(&id) {
            return Err(Error::rejected(RejectReason::NotALearner(id)));
        }
        if !membership.learners.contains(&id) {
            return Err(Error::rejected(RejectReason::UnknownNode(id)));
        }
        if membership.joint {
            return Err(Error::rejected(RejectReason::MembershipChangePending));
        }
        self.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])))
            .await
    }

    /// Removes voter or learner `id`; the last voter cannot be removed.
    pub(super) async fn remove_member(&self, id: NodeId) -> Result<Membership> {
        self.check_running()?;
        self.require_leader()?;
        let membership = self.current_membership();
        if !membership.contains(id) {
            return Err(Error::rejected(RejectReason::UnknownNode(id)));
        }
        if membership.joint {
            return Err(Error::rejected(RejectReason::MembershipChangePending));
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

    async fn change_membership(
        &self,
        change: ChangeMembers<NodeId, EmptyNode>,
    ) -> Result<Membership> {
        let raft = self.inner.raft.clone();
        let response = self
            .guarded(self.inner.config.request_timeout, async move {
                raft.change_membership(change, false)
                    .await
                    .map_err(map_error)
            })
            .await?;
        Ok(response
            .membership
            .map(|m| membership_of(&openraft::StoredMembership::new(Some(response.log_id), m)))
            .unwrap_or_else(|| self.current_membership()))
    }
}
